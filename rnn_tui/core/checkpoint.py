"""Checkpoints: atomic writes, weights-only reads.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), written to a
temporary file in the same directory and renamed over the old one, so a kill at any moment leaves
either the old or the new file, never half of one. Reading uses ``torch.load(weights_only=True)``:
a file that carries pickled code is refused instead of executed.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .atomic import replace_atomically
from .errors import CheckpointError

FORMAT = "rnn-tui/1"


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    return replace_atomically(path, lambda f: torch.save(obj, f))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a checkpoint file or a run directory")
    try:
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
    return ckpt
