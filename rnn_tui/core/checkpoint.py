"""Checkpoints: atomic writes, weights-only reads.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), written to a
temporary file in the same directory and renamed over the old one, so a kill at any moment leaves
either the old or the new file, never half of one. Reading uses ``torch.load(weights_only=True)``:
a file that carries pickled code is refused instead of executed.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .atomic import replace_atomically
from .errors import CheckpointError

FORMAT = "rnn-tui/1"


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    # Serialised in memory first, then written with one call: torch's writer turns a failing
    # write (a full disk) into "unexpected pos 64 vs 0"; a plain write says what happened.
    buf = io.BytesIO()
    torch.save(obj, buf)
    path = replace_atomically(path, lambda f: f.write(buf.getbuffer()))
    # A kill in the middle of an earlier save (kill -9, power cut) left its temporary file;
    # a checkpoint has one writer (the run's trainer), so once this one is in place they go.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a checkpoint file or a run directory")
    try:
        with warnings.catch_warnings():
            # a damaged file can make torch warn about its "pickle protocol" before it fails:
            # the one line below says what is wrong
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable checkpoint (not a torch checkpoint file)") from None
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refusing to load {path}: it carries pickled Python objects{what}, and rnn-tui only "
            f"loads plain weights (a checkpoint must not be able to run code)"
        ) from None
    except Exception as exc:  # a damaged file can fail in any layer of torch.load
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({msg[:120]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnn-tui checkpoint")
    problem = _malformed(ckpt)
    if problem:
        raise CheckpointError(f"{path} is damaged or from another version ({problem})")
    return ckpt


def _is(value: Any, *types: type) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _malformed(ck: dict) -> str | None:
    """What is wrong with a loaded checkpoint's structure, if anything: every reader (resume,
    sample, info) may then rely on the fields' types instead of failing somewhere deep."""
    import dataclasses

    from .config import CELLS, TrainConfig
    from .model import ModelConfig

    types: tuple[type, ...]
    for key, types in (
        ("config", (dict,)),
        ("model_config", (dict,)),
        ("vocab", (dict,)),
        ("model", (dict,)),
        ("optimizer", (dict,)),
        ("step", (int,)),
        ("epoch", (int,)),
        ("batch_index", (int,)),
        ("hidden", (list,)),
        ("rng", (dict,)),
    ):
        if not _is(ck.get(key), *types):
            return f"{key} is missing or malformed"
    for key, types in (
        ("tokens", (int,)),
        ("best_val", (int, float)),
        ("last_val", (int, float, type(None))),
        ("lr_scale", (int, float)),
        ("schedule_progress", (int, float)),
        ("corpus", (str, type(None))),
        ("saved_at", (int, float)),
        ("precision", (str,)),
        ("scaler", (dict,)),
        ("world_size", (int,)),
        ("batches_per_epoch", (int,)),
        ("rng_ranks", (list,)),
    ):
        if key in ck and not _is(ck[key], *types):
            return f"{key} is malformed"
    if ck.get("world_size", 1) < 1 or not all(isinstance(r, dict) for r in ck.get("rng_ranks", [])):
        return "the processes' state is malformed"
    if min(ck["step"], ck["epoch"], ck["batch_index"], ck.get("tokens", 0)) < 0:
        return "negative step counts"
    if "lr_scale" in ck and not 0 < ck["lr_scale"] <= 1:
        return "lr_scale out of range"
    if "scaler" in ck and not all(
        isinstance(k, str) and _is(v, int, float) and math.isfinite(v) and v >= 0 for k, v in ck["scaler"].items()
    ):
        return "loss scaler state is malformed"
    for key in ("model", "ema_model"):
        weights = ck.get(key, {})
        if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
        ):
            return "model weights are malformed"
    if not ck["hidden"] or not all(isinstance(t, torch.Tensor) and t.dim() == 3 for t in ck["hidden"]):
        return "hidden state is malformed"
    vocab = ck["vocab"]
    codes = vocab.get("codes")
    if vocab.get("kind") not in ("char", "byte") or not isinstance(codes, list) or not codes:
        return "vocabulary is malformed"
    top = 255 if vocab["kind"] == "byte" else 0x10FFFF
    if not all(_is(c, int) and 0 <= c <= top for c in codes) or codes != sorted(set(codes)):
        return "vocabulary is malformed"
    mc = ck["model_config"]
    for key, types in (
        ("vocab_size", (int,)),
        ("cell", (str,)),
        ("layers", (int,)),
        ("hidden", (int,)),
        ("embed", (int,)),
        ("dropout", (int, float)),
    ):
        if not _is(mc.get(key), *types):
            return f"model_config {key} is missing or malformed"
    if set(mc) - {f.name for f in dataclasses.fields(ModelConfig)}:
        return "model_config has unknown fields"
    if mc["vocab_size"] != len(codes):
        return "vocabulary size does not match the model"
    if mc["cell"] not in CELLS or min(mc["layers"], mc["hidden"], mc["embed"]) <= 0:
        return "model_config is malformed"
    cfg = ck["config"]
    if (
        any(k in cfg and cfg[k] != mc[k] for k in ("cell", "layers", "hidden", "embed"))
        or cfg.get("vocab", vocab["kind"]) != vocab["kind"]
    ):
        return "config does not match the model"
    defaults = TrainConfig().to_dict()
    for key, value in ck["config"].items():
        if key not in defaults:
            continue  # an option of another version: ignored on resume
        d = defaults[key]
        types = (int, float, type(None)) if d is None else (int, float) if isinstance(d, float) else (type(d),)
        if not _is(value, *types):
            return f"config {key} is malformed"
    return None
