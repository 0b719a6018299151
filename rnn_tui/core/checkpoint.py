"""Checkpoints: atomic writes, weights-only reads.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), written to a
temporary file in the same directory and renamed over the old one, so a kill at any moment leaves
either the old or the new file, never half of one. Reading uses ``torch.load(weights_only=True)``:
a file that carries pickled code is refused instead of executed.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .atomic import replace_atomically
from .errors import CheckpointError, ConfigError
from .files import open_regular

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
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a checkpoint file or a run directory")
    # a FIFO or a device (/dev/zero) is refused before anything is read from it
    with open_regular(path, CheckpointError, "checkpoint") as f:
        check_archive(f, path)  # sizes that lie are refused before torch allocates them
        f.seek(0)
        ckpt = _torch_load(f, path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnn-tui checkpoint")
    problem = _malformed(ckpt)
    if problem:
        raise CheckpointError(f"{path} is damaged or from another version ({problem})")
    return ckpt


def _torch_load(f: BinaryIO, path: Path, map_location: str | torch.device) -> Any:
    try:
        with warnings.catch_warnings():
            # a damaged file can make torch warn about its "pickle protocol" before it fails:
            # the one line below says what is wrong
            warnings.simplefilter("ignore")
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refusing to load {path}: it carries pickled Python objects{what}, and rnn-tui only "
            f"loads plain weights (a checkpoint must not be able to run code)"
        ) from None
    except Exception as exc:  # a damaged file can fail in any layer of torch.load
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({msg[:120]})") from None


# ---------------------------------------------------------------- the archive, before torch reads it

MAX_PICKLE_BYTES = 16 * 2**20  # the pickled structure (options, vocabulary, tensor headers); ~1 MB in practice
ARCHIVE_SLACK_BYTES = 2**20  # zip headers, rng states, optimiser step counts
_ITEMSIZE = {
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "DoubleStorage": 8,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
}


def check_archive(f: BinaryIO, path: Path) -> None:
    """Refuse an archive whose declared sizes would make loading it take more memory than it
    should: memory is bounded by the file's own size (torch stores its records uncompressed, so
    a record that inflates is a lie) and by what the model shape it describes needs (its
    weights, the optimiser's two moments and the hidden state, in float32, twice over)."""
    size = os.fstat(f.fileno()).st_size
    try:
        archive = zipfile.ZipFile(f)
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise CheckpointError(f"{path} is not a readable checkpoint (not a torch checkpoint file)") from None
    declared = sum(e.file_size for e in entries)
    if declared > size + ARCHIVE_SLACK_BYTES:
        raise CheckpointError(
            f"{path} is not a readable checkpoint: its records declare {declared:,} bytes in a file of {size:,} "
            f"(torch stores them uncompressed; a compressed or lying archive is refused before it is read)"
        )
    pickles = [e for e in entries if e.filename.endswith("/data.pkl") or e.filename == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{path} is not a readable checkpoint (not a torch checkpoint file)")
    if pickles[0].file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(
            f"{path} is not a readable checkpoint: its structure declares {pickles[0].file_size:,} bytes "
            f"(at most {MAX_PICKLE_BYTES:,})"
        )
    try:
        peek = _Peek(archive.read(pickles[0]))
        obj = peek.load()
    except Exception:
        return  # torch.load says what is wrong (it refuses pickled code with the reason)
    need = _bytes_needed(obj)
    if need is None:
        return  # not ours or damaged: checked after loading, within the file-size bound
    held = sum(peek.storages.values())
    if held > need:
        raise CheckpointError(
            f"{path} is damaged or hostile: it holds {held:,} bytes of tensors where its model needs at most {need:,}"
        )
    prefix = pickles[0].filename[: -len("data.pkl")]
    by_name = {e.filename: e for e in entries}
    for key, nbytes in peek.storages.items():
        entry = by_name.get(f"{prefix}data/{key}")
        if entry is not None and entry.file_size > nbytes:
            raise CheckpointError(
                f"{path} is damaged or hostile: record {key} declares {entry.file_size:,} bytes for {nbytes:,}"
            )


class _Peek(pickle.Unpickler):
    """Reads the checkpoint's structure without its tensors: only the globals torch.save writes
    for a dict of tensors are known (anything else stops the peek), tensors become None, and
    each storage's size is recorded from its header."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.storages: dict[str, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return _Dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _no_tensor
        if module == "torch" and name in _ITEMSIZE:
            return name
        raise pickle.UnpicklingError(f"unknown global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        _, storage_type, key, _location, numel = pid
        self.storages[str(key)] = int(numel) * _ITEMSIZE[storage_type]
        return None


class _Dict(dict):
    """A state dict in the peek (torch pickles its ``_metadata`` attribute along)."""


def _no_tensor(*_args: Any) -> None:
    return None


def _bytes_needed(obj: Any) -> int | None:
    """The most bytes of tensors a checkpoint of the model shape in ``obj`` holds, or None when
    the shape cannot be read (then only the file-size bound applies)."""
    from .config import RANGES

    if not isinstance(obj, dict) or not isinstance(obj.get("model_config"), dict):
        return None
    mc, cfg = obj["model_config"], obj.get("config")
    try:
        vocab, embed, hidden, layers = (int(mc[k]) for k in ("vocab_size", "embed", "hidden", "layers"))
        gates = {"lstm": 4, "gru": 3, "rnn": 1}[mc["cell"]]
        batch = cfg.get("batch_size", 1) if isinstance(cfg, dict) else 1
    except (KeyError, TypeError, ValueError):
        return None
    for name, value in (("embed", embed), ("hidden", hidden), ("layers", layers), ("batch_size", batch)):
        if not RANGES[name].contains(value):
            return None  # refused with the reason after loading (the file-size bound holds meanwhile)
    if not 0 < vocab <= RANGES["max_vocab"].high:
        return None
    params = vocab * embed + vocab * hidden + vocab
    for layer in range(layers):
        params += gates * hidden * ((embed if layer == 0 else hidden) + hidden + 2)
    floats = 3 * params + 2 * layers * batch * hidden  # weights, two Adam moments, hidden and cell state
    return 2 * 4 * floats + ARCHIVE_SLACK_BYTES


def _is(value: Any, *types: type) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _malformed(ck: dict) -> str | None:
    """What is wrong with a loaded checkpoint's structure, if anything: every reader (resume,
    sample, info) may then rely on the fields' types instead of failing somewhere deep."""
    import dataclasses

    from .config import CELLS, RANGES, TrainConfig
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
    for key in ("layers", "hidden", "embed", "dropout"):
        if not RANGES[key].contains(mc[key]):
            return f"its model's {key} is {mc[key]!r}, out of range {RANGES[key]}"
    try:
        TrainConfig.from_dict({**defaults, **ck["config"]}).validate()
    except ConfigError as exc:
        return f"a stored option is out of range: {exc}"
    return None
