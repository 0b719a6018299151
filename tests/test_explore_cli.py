"""`rnn-tui explore` as a user runs it: the JSON it prints, the .npz it saves, one clean line for
bad input, and the screen in a real terminal."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import TINY_ARGS, Tmux, assert_clean_error, command, rnn_tui

pytestmark = pytest.mark.slow  # the real command in subprocesses


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_corpus):
    runs = tmp_path_factory.mktemp("explore") / "runs"
    proc = rnn_tui(small_corpus, "--headless", "--max-steps", "40", *TINY_ARGS, "--runs-dir", runs)
    assert proc.returncode == 0, proc.stderr
    (run,) = runs.iterdir()
    return run


def test_json_has_the_shape_the_issue_gives(run_dir):
    proc = rnn_tui("explore", run_dir, "--json", "--chars", "600")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"cells", "predictions", "memory", "saturation"}
    assert doc["cells"] and all(set(c) == {"property", "layer", "state", "unit", "r"} for c in doc["cells"])
    assert all(c["state"] in ("h", "c") and -1 <= c["r"] <= 1 for c in doc["cells"])
    assert [abs(c["r"]) for c in doc["cells"]] == sorted((abs(c["r"]) for c in doc["cells"]), reverse=True)
    assert len(doc["predictions"]) == 600
    p = doc["predictions"][10]
    assert set(p) == {"pos", "char", "top"} and p["pos"] == 10 and len(p["top"]) == 5
    assert all(isinstance(ch, str) and 0 <= prob <= 1 for ch, prob in p["top"])
    assert all(set(m) == {"k", "grad", "flip"} for m in doc["memory"]) and doc["memory"][0]["k"] == 1
    assert len(doc["memory"]) == 200
    sat = doc["saturation"]
    assert sat["low"] == 0.1 and sat["high"] == 0.9 and len(sat["layers"]) == 1
    assert len(sat["layers"][0]["forget"]["left"]) == 32  # --hidden 32


def test_a_text_file_and_the_npz_of_its_activations(run_dir, tmp_path):
    probe = tmp_path / "probe.txt"
    probe.write_text("ROMEO:\nWhat light through yonder window breaks?\n", encoding="utf-8")
    out = tmp_path / "acts.npz"
    proc = rnn_tui("explore", run_dir / "checkpoints" / "latest.pt", "--text", probe, "--save-npz", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --save-npz alone: the file, no screen
    got = np.load(out)
    T = len(probe.read_text(encoding="utf-8"))
    assert got["h"].shape == (1, T, 32) and got["h"].dtype == np.float32
    assert got["c"].shape == (1, T, 32) and np.abs(got["c"]).max() > 0  # raw c
    assert got["gates"].shape == (1, T, 4, 32)
    assert str(got["text"]) == probe.read_text(encoding="utf-8")
    assert got["codes"].tolist() == [ord(ch) for ch in probe.read_text(encoding="utf-8")]


def test_a_checkpoint_outside_its_run_directory(run_dir, tmp_path):
    loose = tmp_path / "model.pt"
    shutil.copy(run_dir / "checkpoints" / "latest.pt", loose)
    proc = rnn_tui("explore", loose, "--json", "--chars", "300")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["predictions"]) == 300


def test_a_run_killed_before_its_first_periodic_save_is_explored_and_sampled_from_its_best(run_dir, tmp_path):
    """Only best.pt (kill -9 before latest.pt was written): explore and sample read it."""
    killed = tmp_path / "killed"
    shutil.copytree(run_dir, killed)
    (killed / "checkpoints" / "latest.pt").replace(killed / "checkpoints" / "best.pt")
    proc = rnn_tui("explore", killed, "--json", "--chars", "100")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["predictions"]) == 100
    sampled = rnn_tui("sample", killed, "--length", "20", "--seed", "1")
    assert sampled.returncode == 0, sampled.stderr


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda run, d: ["nope"], ["no run or checkpoint 'nope'"]),
        (lambda run, d: [(d / "junk.pt").write_bytes(b"junk") and d / "junk.pt"], ["not a readable checkpoint"]),
        (lambda run, d: [d], ["not a run directory"]),
        (lambda run, d: [run, "--text", d / "missing.txt"], ["probe text not found"]),
        (lambda run, d: [run, "--text", (d / "e.txt").write_text("") * 0 or d / "e.txt"], ["is empty"]),
        (lambda run, d: [run, "--text", (d / "b.txt").write_bytes(b"\xff\xfeab") and d / "b.txt"], ["not UTF-8"]),
        (
            lambda run, d: [run, "--text", (d / "f.txt").write_text("hello 漢字", encoding="utf-8") and d / "f.txt"],
            ["never seen", "'漢'"],
        ),
        (lambda run, d: [run, "--text", os.mkfifo(d / "fifo") or d / "fifo"], ["named pipe", "save it to a file"]),
        (lambda run, d: [run, "--chars", "1"], ["--chars must be between 2 and 10,000"]),
        (lambda run, d: [run, "--chars", "20000"], ["--chars"]),
    ],
)
def test_bad_input_is_one_clean_line(run_dir, tmp_path, make, words):
    assert_clean_error(rnn_tui("explore", *make(run_dir, tmp_path), "--json"), *words)


def test_a_checkpoint_whose_corpus_is_gone_needs_a_text(run_dir, tmp_path):
    import torch

    ck = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    ck["corpus"] = str(tmp_path / "gone.txt")
    torch.save(ck, tmp_path / "moved.pt")
    assert_clean_error(rnn_tui("explore", tmp_path / "moved.pt", "--json"), "gone.txt", "is not here", "--text")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_screen_in_a_real_terminal(run_dir):
    term = Tmux(command("explore", run_dir) + "; sleep 30", width=80, height=24)
    try:
        screen = term.wait_for(lambda s: "explorer · step 40" in s and "cell" in s, what="the explorer screen")
        assert "Cells" in screen and "Memory" in screen
        term.keys("Tab", "Tab", "Tab", "Tab")
        term.wait_for(lambda s: "--seq-len 16" in s and "k: characters back" in s, what="the memory view")
        term.keys("e")  # back (as escape is; a lone escape in tmux is taken as the start of alt+q)
        term.wait_for(lambda s: "hidden state" in s and "samples" in s, what="the main screen")
        term.keys("q")
        term.wait_for(lambda s: "explorer" not in s and "training" not in s, what="the command to end")
    finally:
        term.close()
