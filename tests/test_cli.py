"""The rnn-tui command as a user runs it: a real subprocess, its exit code and what it prints."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import TINY_ARGS, assert_clean_error, rnn_tui

pytestmark = pytest.mark.slow  # the real command in subprocesses

TINY = TINY_ARGS


def test_help_lists_commands_and_is_fast():
    proc = rnn_tui("--help")
    assert proc.returncode == 0
    for cmd in ("train", "sample", "info", "corpora"):
        assert cmd in proc.stdout
    code = "import sys, rnn_tui.cli; print('torch' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.txt", ["not found"]),
        (lambda d: d, ["directory"]),
        (lambda d: ((d / "empty.txt").write_bytes(b"") and d / "empty.txt") or d / "empty.txt", ["empty"]),
        (lambda d: (d / "a.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 100) and d / "a.bin", ["--bytes"]),
        (
            lambda d: (d / "l1.txt").write_bytes("café olé\n".encode("latin-1") * 500) and d / "l1.txt",
            ["UTF-8", "--bytes"],
        ),
        (lambda d: (d / "tiny.txt").write_text("hello\n") and d / "tiny.txt", ["needs at least"]),
    ],
)
def test_bad_corpus_is_one_clean_line(tmp_path, make, words):
    path = make(tmp_path)
    proc = rnn_tui("train", path, "--headless", "--runs-dir", tmp_path / "runs")
    assert_clean_error(proc, *words)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--seq-len", "0"], ["--seq-len"]),
        (["--temperature", "-1"], ["--temperature"]),
        (["--device", "tpu"], ["--device"]),
        (["--cell", "transformer"], ["--cell"]),
        (["--dropout", "1.5"], ["--dropout"]),
        (["--late-dropout", "1.5"], ["--late-dropout"]),
        (["--dropout", "0.5", "--late-dropout", "0.2"], ["--late-dropout (0.2) must be at least --dropout (0.5)"]),
        (["--batch-size", "-4"], ["--batch-size"]),
    ],
)
def test_nonsense_options_are_refused(small_corpus, tmp_path, args, words):
    assert_clean_error(rnn_tui(small_corpus, "--headless", *args, "--runs-dir", tmp_path), *words)


def test_cuda_without_a_gpu_is_one_clean_line(small_corpus, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = rnn_tui(small_corpus, "--headless", "--device", "cuda", "--runs-dir", tmp_path)
    assert_clean_error(proc, "--device cuda", "no CUDA GPU")


def test_train_sample_info_resume(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    # plain `rnn-tui CORPUS` is the default command
    proc = rnn_tui(small_corpus, "--headless", "--max-steps", "30", "--eval-every", "15", *TINY, "--runs-dir", runs)
    assert proc.returncode == 0, proc.stderr
    assert "val" in proc.stdout and "bpc" in proc.stdout and "finished (max-steps) at step 30" in proc.stdout
    (run,) = runs.iterdir()
    for name in ("config.json", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt"):
        assert (run / name).exists(), name

    info = rnn_tui("info", run)
    assert info.returncode == 0 and "step         30" in info.stdout and "65 symbols" not in info.stdout

    s1 = rnn_tui("sample", run / "checkpoints" / "latest.pt", "--prime", "ROMEO:", "--length", "40", "--seed", "1")
    s2 = rnn_tui("sample", run, "--prime", "ROMEO:", "--length", "40", "--seed", "1")
    assert s1.returncode == 0 and s1.stdout == s2.stdout and s1.stdout.startswith("ROMEO:")
    assert len(s1.stdout) == len("ROMEO:") + 40 + 1

    more = rnn_tui("train", "--resume", run, "--headless", "--max-steps", "40", "--runs-dir", runs)
    assert more.returncode == 0, more.stderr
    assert "resumed at step 30" in more.stdout and "at step 40" in more.stdout
    assert len(list(runs.iterdir())) == 1  # continued in the same run directory


def test_dropout_alone_is_fixed_and_the_default_rises(small_corpus, tmp_path):
    """--dropout P alone means P throughout (char-rnn's meaning); the default rises to 0.3."""
    for args, late, runs in (([], 0.3, tmp_path / "a"), (["--dropout", "0.2"], 0.2, tmp_path / "b")):
        proc = rnn_tui(small_corpus, "--headless", "--max-steps", "2", *TINY, *args, "--runs-dir", runs)
        assert proc.returncode == 0, proc.stderr
        (run,) = runs.iterdir()
        assert json.loads((run / "config.json").read_text())["config"]["late_dropout"] == late
    # told once, when it starts to rise: a 4,000-character text is ~56 steps a pass at these sizes
    tiny = tmp_path / "tiny.txt"
    tiny.write_text(small_corpus.read_text(encoding="utf-8")[:4000], encoding="utf-8")
    told = rnn_tui(tiny, "--headless", "--max-steps", "800", *TINY, "--runs-dir", tmp_path / "c").stdout
    assert told.count("the dropout rises from 0.1") == 1 and "to 0.3 by pass 30" in told


def test_sample_skips_unknown_prime_characters_with_a_warning(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    assert rnn_tui(small_corpus, "--headless", "--max-steps", "2", *TINY, "--runs-dir", runs).returncode == 0
    (run,) = runs.iterdir()
    proc = rnn_tui("sample", run, "--prime", "ROMEO✓", "--length", "5")
    assert proc.returncode == 0 and proc.stdout.startswith("ROMEO")
    assert "warning" in proc.stderr and "✓" in proc.stderr


def test_checkpoint_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(300))
    assert_clean_error(rnn_tui("sample", bad), "not a readable checkpoint")
    assert_clean_error(rnn_tui("info", tmp_path / "nope.pt"), "not found")


def test_corpus_named_like_a_subcommand(tmp_path, small_corpus):
    (tmp_path / "info").write_text(small_corpus.read_text())
    runs = tmp_path / "runs"
    for spelling in (["train", "info"], ["./info"]):
        proc = rnn_tui(*spelling, "--headless", "--max-steps", "1", *TINY, "--runs-dir", runs, cwd=tmp_path)
        assert proc.returncode == 0 and "/info (54,000 train" in proc.stdout, proc.stderr
    # alone, the word is the file (the `info` subcommand would need a checkpoint anyway);
    # here there is no terminal, so the live app says how to train without one
    assert_clean_error(rnn_tui("info", cwd=tmp_path), "--headless")
    # with a checkpoint after it, `info` is the subcommand
    ckpt = next(runs.glob("*/checkpoints/latest.pt"))
    assert "step" in rnn_tui("info", ckpt, cwd=tmp_path).stdout


def test_corpora_lists_bundled():
    proc = rnn_tui("corpora")
    assert proc.returncode == 0 and "tinyshakespeare" in proc.stdout


def test_ctrl_c_saves_and_exits_cleanly(small_corpus, tmp_path):
    import signal

    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", small_corpus, "--headless", *TINY, "--runs-dir", runs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(runs.glob("*/metrics.jsonl")):
        time.sleep(0.1)  # polling the file system: there is no event to await across processes
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    (run,) = runs.iterdir()
    assert (run / "checkpoints" / "latest.pt").exists()
    assert "stopped at step" in out and "resume with:" in out


def test_resume_of_a_finished_run_says_what_to_do(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    assert rnn_tui(small_corpus, "--headless", "--max-steps", "3", *TINY, "--runs-dir", runs).returncode == 0
    (run,) = runs.iterdir()
    assert_clean_error(rnn_tui("train", "--resume", run, "--headless"), "larger --max-steps")
