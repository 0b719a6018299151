"""The explorer's activations as a ``.npz`` file (numpy only: the screen writes it too).

Arrays: ``h`` and ``c`` shaped (layers, T, hidden) float32 (``c`` raw, not tanh; LSTM only),
``gates`` (layers, T, 4, hidden) in PyTorch's order input, forget, cell, output (LSTM, when
given), ``text`` (the probe as one string) and ``codes`` (its code points, one per position),
plus whatever else the caller adds (predictions, memory curves).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RnnTuiError


def save_activations(
    path: Path,
    text: str,
    h: np.ndarray,
    c: np.ndarray | None,
    gates: np.ndarray | None = None,
    **extra: np.ndarray,
) -> Path:
    arrays: dict[str, np.ndarray] = {
        "h": np.asarray(h, dtype=np.float32),
        "text": np.array(text),
        "codes": np.array([ord(ch) for ch in text], dtype=np.int32),
    }
    if c is not None:
        arrays["c"] = np.asarray(c, dtype=np.float32)
    if gates is not None:
        arrays["gates"] = np.asarray(gates, dtype=np.float32)
    arrays.update(extra)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # what numpy would do, said up front
    try:
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    except OSError as exc:
        raise RnnTuiError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
