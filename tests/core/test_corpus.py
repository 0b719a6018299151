import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.core.batches import StripedBatches
from rnn_tui.core.corpus import Vocab, read_corpus
from rnn_tui.core.errors import CorpusError


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
