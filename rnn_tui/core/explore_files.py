"""The explorer's files (numpy only: the screen and the command line use them without torch).

Probe texts are read with one line for anything wrong with them. Activations are saved as .npz
arrays: ``h`` and ``c`` shaped (layers, T, hidden) float32 (``c`` raw, not tanh; LSTM only),
``gates`` (layers, T, 4, hidden) in PyTorch's order input, forget, cell, output (LSTM, when
given), ``text`` (the probe as one string) and ``codes`` (its code points, one per position),
plus whatever else the caller adds (predictions, memory curves).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np

from .errors import CorpusError, RnnTuiError
from .files import open_regular


def read_probe_bytes(path: Path, chars: int) -> bytes:
    """The start of a probe text file: enough bytes for ``chars`` characters (one line for a
    missing, unreadable or empty file)."""
    # only a regular file: a named pipe would wait for a writer forever, a device never end
    with open_regular(path, CorpusError, "probe text") as f:
        try:
            raw = f.read(chars * 4 + 4)
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw:
        raise CorpusError(f"the probe text {path} is empty")
    return raw


def decode_probe(raw: bytes, path: Path, chars: int) -> str:
    """The first ``chars`` characters of ``raw`` as UTF-8 (a character cut at the end is dropped)."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=len(raw) < chars * 4 + 4)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8 text (byte {exc.start}); the model reads UTF-8 characters") from None
    text = text.removeprefix("\ufeff")[:chars]
    if len(text) < 2:
        raise CorpusError(f"the probe text {path} is too short (it needs 2 characters)")
    return text


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
