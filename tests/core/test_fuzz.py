"""Fuzz: random bytes as a corpus (char and byte vocabularies) and as a checkpoint, and damaged or
reshaped real checkpoints, through every reader (read_corpus, build_trainer, checkpoint.load,
load_for_inference, resume, ``rnn-tui info``). Success or a clean RnnTuiError; nothing else."""

from __future__ import annotations

import random

import pytest
import torch
from typer.testing import CliRunner

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.trainer import load_for_inference
from rnn_tui.host.request import TrainRequest, build_trainer

TINY = dict(batch_size=2, seq_len=8, layers=1, hidden=8, embed=4, device="cpu", eval_chars=64, sample_every_s=3600)


def random_text(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 2, 17, 40, 300, 600, 1500, 4000])
    kind = rng.randrange(7)
    if kind == 0:  # any bytes
        return rng.randbytes(n)
    if kind == 1:  # printable ASCII
        return bytes(rng.randrange(32, 127) for _ in range(n))
    if kind == 2:  # valid UTF-8 from all of Unicode (no surrogates)
        cps = [
            rng.choice([rng.randrange(0x20, 0x80), rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x110000)])
            for _ in range(n // 3)
        ]
        return "".join(map(chr, cps)).encode("utf-8")
    if kind == 3:  # one symbol repeated
        return (rng.choice(["a", "\n", "é", "🎉", "\x00"]) * n).encode("utf-8")
    if kind == 4:  # text with a BOM, CRLF and a stray byte somewhere
        body = bytearray(("\ufeff" + "line one\r\nline two\r\n" * (n // 20 + 1)).encode("utf-8"))
        if rng.random() < 0.5 and body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        return bytes(body)
    if kind == 5:  # UTF-8 cut in the middle of a character
        return ("żółw 🐢 " * (n // 8 + 1)).encode("utf-8")[: max(1, n - 1)]
    return bytes(rng.randrange(256) for _ in range(n)).replace(b"\x00", b"")  # binary without NULs


def test_random_corpus_files_fail_cleanly_or_train(tmp_path):
    rng = random.Random(4)
    trained = refused = 0
    for i in range(90):
        path = tmp_path / f"corpus{i}.txt"
        path.write_bytes(random_text(rng))
        for vocab in ("char", "byte"):
            request = TrainRequest(corpus_file=path, overrides={**TINY, "vocab": vocab}, runs_dir=tmp_path / "runs")
            try:
                request.check()
                trainer = build_trainer(request)
                trainer.train_step()
                assert all(map(torch.isfinite, map(torch.tensor, trainer.collect()[0][1:3])))
                trained += 1
            except RnnTuiError as exc:
                assert str(exc) and "\n" not in str(exc)
                refused += 1
    assert trained > 20 and refused > 20  # both outcomes were exercised


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory, small_corpus):
    runs = tmp_path_factory.mktemp("fuzzruns")
    trainer = build_trainer(TrainRequest(corpus_file=small_corpus, overrides=TINY, runs_dir=runs))
    for _ in range(3):
        trainer.train_step()
    return trainer.save("manual"), small_corpus


ODD_VALUES = [
    None,
    "x",
    -1,
    0,
    2**40,
    3.5,
    float("nan"),
    True,
    [],
    {},
    [1, "a"],
    {"k": 1},
    torch.zeros(2),
    torch.zeros(1, 1, 1, dtype=torch.int64),
]


def mutate(ck: dict, rng: random.Random) -> dict:
    """The checkpoint dict with one field (maybe one nested field) deleted or replaced."""
    ck = dict(ck)
    key = rng.choice(sorted(ck))
    if isinstance(ck[key], dict) and ck[key] and rng.random() < 0.6:
        inner = dict(ck[key])
        sub = rng.choice(sorted(inner, key=str))
        if rng.random() < 0.3:
            del inner[sub]
        else:
            inner[sub] = rng.choice(ODD_VALUES)
        ck[key] = inner
    elif rng.random() < 0.3:
        del ck[key]
    else:
        ck[key] = rng.choice(ODD_VALUES)
    return ck


def damage(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    how = rng.randrange(3)
    if how == 0:
        return bytes(data[: rng.randrange(len(data))])  # truncated
    for _ in range(rng.choice([1, 4, 64])):  # bytes flipped
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    if how == 2:  # and a random block pasted in
        at = rng.randrange(len(data))
        data[at : at + 64] = rng.randbytes(64)
    return bytes(data)


def every_reader(path, corpus, tmp_path):
    """Each way a user hands rnn-tui a checkpoint; returns how many accepted it."""
    ok = 0
    try:
        ckpt_io.load(path)
        ok += 1
    except RnnTuiError:
        pass
    try:
        load_for_inference(path)
        ok += 1
    except RnnTuiError:
        pass
    try:
        trainer = build_trainer(
            TrainRequest(
                corpus_file=corpus, resume=str(path), overrides={"max_steps": 10**6}, runs_dir=tmp_path / "runs"
            )
        )
        trainer.train_step()
        trainer.collect()
        ok += 1
    except RnnTuiError:
        pass
    from rnn_tui.cli import app

    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return ok


def test_random_and_damaged_checkpoints_fail_cleanly(real_checkpoint, tmp_path):
    path, corpus = real_checkpoint
    raw = path.read_bytes()
    rng = random.Random(7)
    target = tmp_path / "checkpoints" / "x.pt"  # not in a run directory: resume makes a new one
    target.parent.mkdir()
    accepted = 0
    for i in range(40):
        target.write_bytes(rng.randbytes(rng.choice([0, 1, 10, 500, 5000])) if i % 4 == 0 else damage(raw, rng))
        accepted += every_reader(target, corpus, tmp_path)
    assert accepted < 40 * 3  # most damage was noticed


def test_checkpoints_with_reshaped_fields_fail_cleanly(real_checkpoint, tmp_path):
    path, corpus = real_checkpoint
    ck = torch.load(path, weights_only=True)
    rng = random.Random(11)
    target = tmp_path / "y.pt"
    for _ in range(60):
        torch.save(mutate(ck, rng), target)
        every_reader(target, corpus, tmp_path)
    # options that disagree with the weights (a resume builds its model from the options)
    # and stored options out of range (a batch size of 2**40, dropout 5, a negative seed, NaN)
    for key, value in [
        ("hidden", 2**40),
        ("layers", 3),
        ("cell", "gru"),
        ("vocab", "byte"),
        ("batch_size", 2**40),
        ("dropout", 5.0),
        ("seed", -1),
        ("lr", float("nan")),
    ]:
        torch.save({**ck, "config": {**ck["config"], key: value}}, target)
        assert every_reader(target, corpus, tmp_path) == 0, key
