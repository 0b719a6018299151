"""Read a text file, build its vocabulary and encode it once into a compact integer array.

Two vocabularies: ``char`` (the Unicode characters of a UTF-8 file) and ``byte`` (the bytes
present in any file). The encoded corpus is a numpy ``uint8``/``uint16`` array, never one-hot
and never a Python list, so a large file costs about one or two bytes per character.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorpusError

VOCAB_KINDS = ("char", "byte")


@dataclass(frozen=True)
class Vocab:
    """Symbols in index order: Unicode code points (``char``) or byte values (``byte``)."""

    kind: str
    codes: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in VOCAB_KINDS:
            raise CorpusError(f"unknown vocabulary kind {self.kind!r}")

    @property
    def size(self) -> int:
        return len(self.codes)

    @property
    def dtype(self) -> type:
        return np.uint8 if self.size <= 256 else np.uint16 if self.size <= 65536 else np.uint32

    def encode_array(self, text: str | bytes) -> np.ndarray:
        """Encode a whole text at once (vectorised); every symbol must be in the vocabulary."""
        codes = _code_points(text, self.kind)
        table = np.asarray(self.codes, dtype=np.uint32)
        idx = np.searchsorted(table, codes)
        idx = np.minimum(idx, len(table) - 1)
        if not np.array_equal(table[idx], codes):
            missing = sorted(set(codes[table[idx] != codes].tolist()))
            raise CorpusError(f"symbols not in the vocabulary: {self.describe_codes(missing)}")
        return idx.astype(self.dtype)

    def split_known(self, text: str) -> tuple[list[int], list[str]]:
        """Indices of the known symbols of ``text`` and the list of unknown ones (in order seen)."""
        index = {code: i for i, code in enumerate(self.codes)}
        known: list[int] = []
        unknown: list[str] = []
        raw = text.encode("utf-8") if self.kind == "byte" else text
        for sym in raw:
            code = sym if isinstance(sym, int) else ord(sym)
            if code in index:
                known.append(index[code])
            else:
                shown = chr(code) if self.kind == "char" else f"0x{code:02x}"
                if shown not in unknown:
                    unknown.append(shown)
        return known, unknown

    def decode(self, ids) -> str:
        if self.kind == "char":
            return "".join(chr(self.codes[i]) for i in ids)
        return bytes(self.codes[i] for i in ids).decode("utf-8", errors="replace")

    def symbol(self, i: int) -> str:
        code = self.codes[i]
        return chr(code) if self.kind == "char" else (chr(code) if code < 128 else "\ufffd")

    def default_start(self) -> int:
        """The symbol a sample starts from when there is no prime: a newline, else a space."""
        for code in (10, 32):
            if code in self.codes:
                return self.codes.index(code)
        return 0

    def describe_codes(self, codes) -> str:
        if self.kind == "char":
            return " ".join(repr(chr(c)) for c in codes[:20])
        return " ".join(f"0x{c:02x}" for c in codes[:20])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "codes": list(self.codes)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        try:
            return cls(kind=str(d["kind"]), codes=tuple(int(c) for c in d["codes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorpusError(f"malformed vocabulary: {exc}") from None


def _code_points(text: str | bytes, kind: str) -> np.ndarray:
    if kind == "byte":
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        return np.frombuffer(raw, dtype=np.uint8).astype(np.uint32)
    assert isinstance(text, str)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


@dataclass
class Corpus:
    """An encoded text: ``data`` holds one vocabulary index per symbol."""

    path: Path | None
    vocab: Vocab
    data: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """The first part for training and the last ``val_fraction`` for validation."""
        n_val = int(len(self.data) * val_fraction)
        return self.data[: len(self.data) - n_val], self.data[len(self.data) - n_val :]


def read_corpus(path: str | Path, kind: str = "char", vocab: Vocab | None = None) -> Corpus:
    """Read and encode ``path``. With ``vocab`` (a resumed run) the file must fit that vocabulary."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"corpus not found: {p}")
    if p.is_dir():
        raise CorpusError(f"corpus is a directory, not a file: {p}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {p}: {exc.strerror or exc}") from None
    if not raw:
        raise CorpusError(f"corpus is empty: {p}")
    if kind == "char":
        if b"\x00" in raw[:65536]:
            raise CorpusError(f"{p} looks binary (it has NUL bytes); train on its bytes with --bytes")
        try:
            text: str | bytes = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{p} is not valid UTF-8 (byte {exc.start}); train on its bytes with --bytes"
            ) from None
        if text.startswith("\ufeff"):
            text = text[1:]
    elif kind == "byte":
        text = raw
    else:
        raise CorpusError(f"unknown vocabulary kind {kind!r}: use char or byte")
    codes = _code_points(text, kind)
    if vocab is None:
        vocab = Vocab(kind=kind, codes=tuple(int(c) for c in np.unique(codes)))
    elif vocab.kind != kind:
        raise CorpusError(f"the checkpoint uses a {vocab.kind} vocabulary; this run asked for {kind}")
    else:
        extra = np.setdiff1d(np.unique(codes), np.asarray(vocab.codes, dtype=np.uint32))
        if len(extra):
            raise CorpusError(
                f"{p} has {len(extra)} symbol(s) the checkpoint's vocabulary lacks: "
                f"{vocab.describe_codes(extra.tolist())}"
            )
    return Corpus(path=p.resolve(), vocab=vocab, data=vocab.encode_array(text))
