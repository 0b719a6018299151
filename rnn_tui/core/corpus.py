"""Read a text file, build its vocabulary and encode it once into a compact integer array.

Two vocabularies: ``char`` (the Unicode characters of a UTF-8 file) and ``byte`` (the bytes
present in any file). The encoded corpus is a numpy ``uint8``/``uint16`` array, never one-hot
and never a Python list, so a large file costs about one or two bytes per character. Files are
streamed in chunks (``read_corpus``): reading never holds the whole file as bytes or as a string,
so a 1 GB file needs about 1 GB of memory, not several.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorpusError
from .files import open_regular

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
    def from_dict(cls, d: dict) -> Vocab:
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
    # The file as it was read: (size, modification time in ns), to tell later whether it changed.
    file_stamp: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.data)

    def changed_on_disk(self) -> str | None:
        """A one-line note if the file is no longer what was read (edited, truncated, replaced,
        removed), else None. The run is unaffected either way: ``data`` is a private copy."""
        if self.path is None or self.file_stamp is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return f"{self.path} was removed or cannot be read; training goes on with the text read at the start"
        if (st.st_size, st.st_mtime_ns) != self.file_stamp:
            return f"{self.path} changed on disk; training goes on with the text read at the start"
        return None

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """The first part for training and the last ``val_fraction`` for validation."""
        n_val = int(len(self.data) * val_fraction)
        return self.data[: len(self.data) - n_val], self.data[len(self.data) - n_val :]


CHUNK_BYTES = 2 << 20
"""Bytes read, decoded and encoded at a time. Working memory is about 20x this on non-ASCII text
(decoded str, UTF-32 code points, index copies), 3x on ASCII; larger chunks measured no faster."""
_BOM = b"\xef\xbb\xbf"
_INDEX_BLOCK = 1 << 20  # code points per numpy indexing call (each makes an 8-byte index copy)
_BINARY_PROBE = 65536  # NUL bytes in this many leading bytes mean "binary" in char mode


Alloc = Callable[[int, Any], np.ndarray]


def read_corpus(
    path: str | Path,
    kind: str = "char",
    vocab: Vocab | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    alloc: Alloc = np.empty,
    max_vocab: int | None = None,
) -> Corpus:
    """Read and encode ``path``. With ``vocab`` (a resumed run) the file must fit that vocabulary.

    The file is streamed in ``chunk_bytes`` pieces, each decoded (char mode) and encoded as it
    is read into one preallocated array, so memory stays at the encoded array (one byte per
    symbol; two past 256 distinct characters) plus a few chunks, whatever the file's size, and no
    Python string of the whole file ever exists. Past 256 distinct characters, char mode counts
    them in a first pass and encodes in a second (a change of the file in between is detected).
    The array is the process's own memory, not a map of the file: a file that changes or is
    truncated while training runs changes nothing. ``alloc(n, dtype)`` makes the array (a map of
    a private file when several processes share one encoding: ``core/distributed.py``). A new
    vocabulary larger than ``max_vocab`` symbols is refused (with the advice to use bytes).
    """
    p = Path(path)
    if kind not in VOCAB_KINDS:
        raise CorpusError(f"unknown vocabulary kind {kind!r}: use char or byte")
    if vocab is not None and vocab.kind != kind:
        raise CorpusError(f"the checkpoint uses a {vocab.kind} vocabulary; this run asked for {kind}")
    chunk_bytes = max(4, int(chunk_bytes))
    # only a regular file: a FIFO would block here, a device (/dev/zero) would never end
    f = open_regular(p, CorpusError, "corpus")
    try:
        with f:
            before = os.fstat(f.fileno())
            chunks = _Utf8Chunks(f, p, chunk_bytes) if kind == "char" else _RawChunks(f, chunk_bytes)
            one_pass = _read_small_vocab(chunks, p, kind, before.st_size, chunk_bytes, vocab, alloc, max_vocab)
            if one_pass is not None:
                data, vocab = one_pass
            else:  # more than 256 characters: count them first, then encode into uint16
                present, n = _scan_chars(chunks)
                vocab = _check_vocab(p, kind, present, vocab, max_vocab)
                data = _encode_chars(chunks, p, vocab, n, alloc)
                after = os.fstat(f.fileno())
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    raise CorpusError(f"{p} changed while it was being read; try again")
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {p}: {exc.strerror or exc}") from None
    return Corpus(path=p.resolve(), vocab=vocab, data=data, file_stamp=(before.st_size, before.st_mtime_ns))


def _check_vocab(p: Path, kind: str, present: np.ndarray, vocab: Vocab | None, max_vocab: int | None = None) -> Vocab:
    """The vocabulary for the symbols ``present`` (sorted code points), or check a given one."""
    if len(present) == 0:
        raise CorpusError(f"corpus is empty: {p}")
    if len(present) == 1:
        what = "character" if kind == "char" else "byte value"
        shown = Vocab(kind, (int(present[0]),)).describe_codes([int(present[0])])
        raise CorpusError(
            f"{p} has only one distinct {what} ({shown}): there is nothing to learn; use a file with varied text"
        )
    if vocab is None:
        if kind == "char" and max_vocab is not None and len(present) > max_vocab:
            raise CorpusError(
                f"{p} has {len(present):,} distinct characters, more than --max-vocab {max_vocab:,}: "
                f"train on its bytes with --bytes (256 symbols, usually the better choice for such a "
                f"file), or allow it with --max-vocab {len(present)}"
            )
        return Vocab(kind=kind, codes=tuple(int(c) for c in present))
    extra = np.setdiff1d(present, np.asarray(vocab.codes, dtype=np.int64))
    if len(extra):
        raise CorpusError(
            f"{p} has {len(extra)} symbol(s) the checkpoint's vocabulary lacks: {vocab.describe_codes(extra.tolist())}"
        )
    return vocab


class _RawChunks:
    """The file's bytes, ``chunk_bytes`` at a time (byte mode): ``(raw bytes, None)`` pairs."""

    def __init__(self, f, chunk_bytes: int):
        self.f, self.chunk_bytes = f, chunk_bytes

    def __iter__(self):
        self.f.seek(0)
        while chunk := self.f.read(self.chunk_bytes):
            yield chunk, None


class _Utf8Chunks:
    """The file's text, one chunk at a time, checked as UTF-8 (char mode).

    A chunk of pure ASCII comes as ``(its bytes, None)`` (the bytes are the code points: no
    decoding); any other as ``(None, uint32 code points of its decoded text)``. A sequence cut
    by a chunk boundary is carried to the next chunk by the incremental decoder. A leading
    byte-order mark is skipped. Invalid UTF-8, and NUL bytes near the start, raise CorpusError.
    """

    def __init__(self, f, p: Path, chunk_bytes: int):
        self.f, self.p, self.chunk_bytes = f, p, chunk_bytes

    def __iter__(self):
        f, p = self.f, self.p
        f.seek(0)
        head = f.read(_BINARY_PROBE)
        if b"\x00" in head:
            raise CorpusError(f"{p} looks binary (it has NUL bytes); train on its bytes with --bytes")
        pos = len(_BOM) if head.startswith(_BOM) else 0  # file offset of the next chunk
        f.seek(pos)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        while True:
            chunk = f.read(self.chunk_bytes)
            carried = len(decoder.getstate()[0])  # bytes of a sequence cut by the last chunk's end
            if not carried and chunk.isascii():
                if not chunk:
                    return
                yield chunk, None
            else:
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"{p} is not valid UTF-8 (byte {pos - carried + exc.start}); train on its bytes with --bytes"
                    ) from None
                if text:
                    yield None, np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                if not chunk:
                    return
            pos += len(chunk)


def _read_small_vocab(
    chunks,
    p: Path,
    kind: str,
    size: int,
    chunk_bytes: int,
    vocab: Vocab | None,
    alloc: Alloc = np.empty,
    max_vocab: int | None = None,
) -> tuple[np.ndarray, Vocab] | None:
    """One pass: encode each chunk as it is read, into a ``uint8`` array of at most ``size``.

    Symbols get provisional indices in order of first appearance (or the given vocabulary's
    indices), renumbered in code-point order at the end when that order differs (rarely: each
    chunk's new symbols are numbered in sorted order). Returns None as soon as more than 256
    distinct symbols are seen (char mode only; the caller then makes two passes and uses uint16).
    """
    if vocab is not None and vocab.dtype != np.uint8:
        return None
    changed = f"{p} changed while it was being read; try again"
    # A character is at least one byte, so `size` bounds the count; pages past the end of the
    # text are never touched, so they cost no memory.
    data = alloc(size, np.uint8)
    ids = np.full(0x110000 if kind == "char" else 256, -1, dtype=np.int16)  # code -> provisional index
    codes: list[int] = []  # provisional index -> code
    table = bytearray(256)  # byte -> provisional index, for bytes.translate
    seen = bytearray()  # byte values (ASCII in char mode) with an index

    def add(new) -> bool:
        for code in new:
            code = int(code)
            if ids[code] < 0:
                if len(codes) == 256:
                    return False  # a 257th symbol: two passes and a wider array (a chunk may bring thousands)
                ids[code] = len(codes)
                codes.append(code)
                if code < 256:
                    table[code] = ids[code]
                    seen.append(code)
        return len(codes) <= 256

    if vocab is not None:
        add(vocab.codes)
    at = 0
    for raw, block in chunks:
        if raw is not None:  # bytes that are their own code points: bytes.translate encodes them
            k = len(raw)
            if at + k > size:
                raise CorpusError(changed)
            new = raw.translate(None, bytes(seen)) if len(seen) < 256 else b""
            if new and not add(sorted(set(new))):
                return None
            data[at : at + k] = np.frombuffer(raw.translate(table), dtype=np.uint8)
        else:
            k = len(block)
            if at + k > size:
                raise CorpusError(changed)
            for a in range(0, k, _INDEX_BLOCK):  # numpy copies indices to intp: in blocks
                b = min(k, a + _INDEX_BLOCK)
                part = ids[block[a:b]]
                if part.min() < 0:
                    if not add(np.unique(block[a:b][part < 0]).tolist()):
                        return None
                    part = ids[block[a:b]]
                data[at + a : at + b] = part
        at += k
    data = data[:at]
    vocab = _check_vocab(p, kind, np.array(sorted(codes), dtype=np.int64), vocab, max_vocab)
    final = {code: i for i, code in enumerate(vocab.codes)}
    order = bytes(final[code] for code in codes)
    if order != bytes(range(len(codes))):  # renumber in place, a chunk at a time
        order += bytes(256 - len(order))
        view = memoryview(data)  # type: ignore[arg-type]  # numpy arrays are buffers
        for a in range(0, at, chunk_bytes):
            part = view[a : a + chunk_bytes]
            part[:] = part.tobytes().translate(order)
    return data, vocab


def _scan_chars(chunks) -> tuple[np.ndarray, int]:
    """First of two passes: the sorted code points present and the number of characters."""
    ascii_seen = bytearray()
    counts: np.ndarray | None = None  # occurrences per code point, from non-ASCII chunks
    n = 0
    for raw, block in chunks:
        if raw is not None:
            n += len(raw)
            new = raw.translate(None, bytes(ascii_seen)) if len(ascii_seen) < 128 else b""
            if new:
                ascii_seen.extend(set(new))
            continue
        n += len(block)
        for a in range(0, len(block), _INDEX_BLOCK):
            c = np.bincount(block[a : a + _INDEX_BLOCK])
            if counts is None or len(counts) < len(c):
                grown = np.zeros(len(c), dtype=np.int64)
                if counts is not None:
                    grown[: len(counts)] = counts
                counts = grown
            counts[: len(c)] += c
    present = set(ascii_seen)
    if counts is not None:
        present.update(np.flatnonzero(counts).tolist())
    return np.array(sorted(present), dtype=np.int64), n


def _encode_chars(chunks, p: Path, vocab: Vocab, n: int, alloc: Alloc = np.empty) -> np.ndarray:
    """Second of two passes: every character's index, written into one preallocated array.

    A file edited between the passes is caught by the caller's size/mtime check; here it must
    only not crash (a code point beyond the table, more characters than counted).
    """
    changed = f"{p} changed while it was being read; try again"
    data: np.ndarray = alloc(n, vocab.dtype)
    codes_arr = np.asarray(vocab.codes, dtype=np.int64)
    lut: np.ndarray = np.zeros(max(128, int(codes_arr.max()) + 1), dtype=vocab.dtype)
    lut[codes_arr] = np.arange(len(codes_arr), dtype=vocab.dtype)
    at = 0
    for raw, block in chunks:
        if raw is not None:
            block = np.frombuffer(raw, dtype=np.uint8)
        k = len(block)
        if at + k > n or int(block.max()) >= len(lut):
            raise CorpusError(changed)
        for a in range(0, k, _INDEX_BLOCK):
            b = min(k, a + _INDEX_BLOCK)
            data[at + a : at + b] = lut[block[a:b]]
        at += k
    if at != n:
        raise CorpusError(changed)
    return data
