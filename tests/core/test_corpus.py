import mmap
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.core.batches import StripedBatches
from rnn_tui.core.corpus import Vocab, read_corpus
from rnn_tui.core.errors import CorpusError
from tests.helpers import simple_encoding


def write(tmp_path, data: bytes, name="c.txt"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("text", ["hello world\n", "日本語のテキスト、漢字とかな。\n", "naïve café — ✓ 🎉"])
def test_char_vocab_round_trip(tmp_path, text):
    c = read_corpus(write(tmp_path, text.encode("utf-8")))
    assert c.vocab.decode(c.data.tolist()) == text
    assert c.vocab.size == len(set(text))
    assert c.data.dtype == np.uint8  # fewer than 256 symbols -> one byte each


def test_byte_vocab_round_trip_any_encoding(tmp_path):
    raw = "café\n".encode("latin-1") + bytes(range(0, 256, 7))
    c = read_corpus(write(tmp_path, raw), kind="byte")
    assert bytes(c.vocab.codes[i] for i in c.data) == raw
    assert c.vocab.size == len(set(raw))


def test_large_vocab_uses_uint16(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(600))
    c = read_corpus(write(tmp_path, text.encode()))
    assert c.data.dtype == np.uint16 and c.vocab.size == 600


def test_invalid_utf8_suggests_bytes(tmp_path):
    with pytest.raises(CorpusError, match="not valid UTF-8.*--bytes"):
        read_corpus(write(tmp_path, "café".encode("latin-1")))


def test_binary_file_suggests_bytes(tmp_path):
    with pytest.raises(CorpusError, match="binary.*--bytes"):
        read_corpus(write(tmp_path, b"\x7fELF\x00\x00\x01"))


def test_missing_empty_directory(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(write(tmp_path, b""))
    with pytest.raises(CorpusError, match="directory"):
        read_corpus(tmp_path)


def test_resume_vocab_must_cover_corpus(tmp_path):
    vocab = Vocab("char", tuple(ord(c) for c in "abc"))
    with pytest.raises(CorpusError, match="lacks"):
        read_corpus(write(tmp_path, b"abcd"), vocab=vocab)


def test_striped_batches_layout():
    # 0..49 in 2 rows of 24 (49 usable inputs), sequences of 4: row r is a contiguous stream.
    data = np.arange(50, dtype=np.uint8)
    b = StripedBatches(data, batch_size=2, seq_len=4)
    assert b.row_len == 24 and len(b) == 5  # one batch of slack per row for the epoch offset
    x0, y0 = b.get(0)
    x1, _ = b.get(1)
    assert x0.tolist() == [[0, 1, 2, 3], [24, 25, 26, 27]]
    assert y0.tolist() == [[1, 2, 3, 4], [25, 26, 27, 28]]
    assert x1.tolist() == [[4, 5, 6, 7], [28, 29, 30, 31]]  # each row continues where it stopped
    assert x0.dtype.is_floating_point is False
    # later epochs start each row at an offset (same for every row), deterministic per seed
    assert b.epoch_offset(0, seed=1) == 0
    offsets = {b.epoch_offset(e, seed=1) for e in range(1, 30)}
    assert offsets <= set(range(0, 4)) and len(offsets) > 1
    assert b.epoch_offset(5, seed=1) == b.epoch_offset(5, seed=1)
    xo, yo = b.get(1, offset=2)
    assert xo.tolist() == [[6, 7, 8, 9], [30, 31, 32, 33]] and yo.tolist() == [[7, 8, 9, 10], [31, 32, 33, 34]]


def test_too_little_data_says_how_much_is_needed():
    with pytest.raises(CorpusError, match="needs at least 3,201"):
        StripedBatches(np.zeros(1000, dtype=np.uint8), batch_size=32, seq_len=100)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_encode_decode_any_unicode(text):
    codes = sorted({ord(c) for c in text})
    vocab = Vocab("char", tuple(codes))
    ids = vocab.encode_array(text)
    assert vocab.decode(ids.tolist()) == text


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_encode_any_bytes(raw):
    vocab = Vocab("byte", tuple(sorted(set(raw))))
    ids = vocab.encode_array(raw)
    assert bytes(vocab.codes[i] for i in ids) == raw


# ---------------------------------------------------------------- streaming (issue 4: huge files)


SYMBOLS = "ab \n\tzé€😀漢" + "".join(chr(0x4E00 + i) for i in range(300))  # 1- to 4-byte UTF-8


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(SYMBOLS), min_size=2, max_size=400),
    bom=st.booleans(),
    chunk=st.sampled_from([4, 5, 6, 7, 13, 64, 1 << 20]),
    kind=st.sampled_from(["char", "byte"]),
)
def test_streamed_reading_matches_the_whole_file_method(tmp_path_factory, text, bom, chunk, kind):
    # Small chunks cut multi-byte characters (and the BOM) at every possible place; more than 256
    # distinct characters switch char mode to two passes and uint16.
    raw = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
    codes, ids = simple_encoding(raw, kind)
    path = tmp_path_factory.mktemp("s") / "c.txt"
    path.write_bytes(raw)
    if len(codes) < 2:
        with pytest.raises(CorpusError, match="only one distinct"):
            read_corpus(path, kind=kind, chunk_bytes=chunk)
        return
    c = read_corpus(path, kind=kind, chunk_bytes=chunk)
    assert c.vocab.codes == codes
    assert c.data.dtype == (np.uint8 if len(codes) <= 256 else np.uint16)
    assert np.array_equal(c.data, ids)


@pytest.mark.parametrize(
    "raw, offset",
    [
        (b"abc\xffdef", 3),
        ("héllo wörld".encode()[:-1] + b"\xc3", 12),  # a sequence cut by the end of the file
        (b"ab" * 10 + b"\xe2\x82x", 20),  # a sequence cut by a bad byte, across chunk boundaries
        (b"\xef\xbb\xbfok\xc3(", 5),  # offsets count the byte-order mark
    ],
)
@pytest.mark.parametrize("chunk", [4, 5, 7, 1 << 20])
def test_invalid_utf8_names_the_byte_whatever_the_chunks(tmp_path, raw, offset, chunk):
    with pytest.raises(CorpusError, match=rf"not valid UTF-8 \(byte {offset}\); train on its bytes with --bytes"):
        read_corpus(write(tmp_path, raw), chunk_bytes=chunk)


def test_one_distinct_symbol_is_refused(tmp_path):
    with pytest.raises(CorpusError, match=r"only one distinct character \('a'\): there is nothing to learn"):
        read_corpus(write(tmp_path, b"a" * 5000))
    with pytest.raises(CorpusError, match=r"only one distinct byte value \(0x00\)"):
        read_corpus(write(tmp_path, b"\x00" * 5000), kind="byte")


def test_byte_order_mark_alone_is_empty(tmp_path):
    with pytest.raises(CorpusError, match="corpus is empty"):
        read_corpus(write(tmp_path, b"\xef\xbb\xbf"))


def test_resume_vocab_with_uint16_and_missing_symbols(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300)) + "ab\n"
    path = write(tmp_path, text.encode())
    wider = Vocab("char", tuple(sorted({ord(c) for c in text} | {ord("Z"), 0x1F600})))
    c = read_corpus(path, vocab=wider, chunk_bytes=7)
    assert c.vocab is wider and c.data.dtype == np.uint16
    assert "".join(chr(wider.codes[i]) for i in c.data) == text
    narrow = Vocab("char", tuple(sorted({ord(c) for c in text} - {ord("a")})))
    with pytest.raises(CorpusError, match=r"1 symbol\(s\) the checkpoint's vocabulary lacks: 'a'"):
        read_corpus(path, vocab=narrow)
    small = Vocab("char", (ord("a"), ord("b")))  # a uint8 vocabulary: the one-pass reader
    with pytest.raises(CorpusError, match=r"301 symbol\(s\) the checkpoint's vocabulary lacks"):
        read_corpus(path, vocab=small, chunk_bytes=5)


def test_file_changed_between_the_two_passes_is_detected(tmp_path, monkeypatch):
    from rnn_tui.core import corpus as corpus_mod

    text = "".join(chr(0x4E00 + i) for i in range(300)) * 3  # > 256 symbols: two passes
    path = write(tmp_path, text.encode())
    scan = corpus_mod._scan_chars

    def scan_then_edit(chunks):
        result = scan(chunks)
        path.write_bytes(text[::-1].encode())  # same size, same symbols, new text
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return result

    monkeypatch.setattr(corpus_mod, "_scan_chars", scan_then_edit)
    with pytest.raises(CorpusError, match="changed while it was being read; try again"):
        read_corpus(path)


def test_encoded_array_is_private_memory_not_a_view_of_the_file(tmp_path):
    for kind in ("char", "byte"):
        path = write(tmp_path, b"hello world\n" * 1000)
        c = read_corpus(path, kind=kind)
        before = c.data.copy()
        with open(path, "r+b") as f:  # rewrite in place (same inode), then truncate
            f.write(b"HELLO WORLD\n" * 1000)
            f.flush()
            f.truncate(10)
        assert np.array_equal(c.data, before)
        base = c.data
        while base is not None:
            assert not isinstance(base, np.memmap) and not isinstance(base, mmap.mmap)
            base = getattr(base, "base", None)


def test_a_changed_file_is_noticed_but_not_reread(tmp_path):
    path = write(tmp_path, b"hello world\n" * 100)
    c = read_corpus(path)
    before = c.data.copy()
    assert c.changed_on_disk() is None
    path.write_bytes(b"HELLO WORLD\n" * 100)  # same size: the modification time tells
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert "changed on disk; training goes on with the text read at the start" in c.changed_on_disk()
    path.unlink()
    assert "was removed" in c.changed_on_disk()
    assert np.array_equal(c.data, before)


def test_a_pipe_is_refused_with_a_clear_line(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer end, so opening to read does not block
    try:
        with pytest.raises(CorpusError, match="not a regular file"):
            read_corpus(fifo)
    finally:
        os.close(fd)
