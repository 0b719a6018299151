"""End to end: the real `rnn-tui` command in a real terminal (tmux, 80x24), read as a person would."""

from __future__ import annotations

import shlex
import shutil
import sys
import time

import pytest

from tests.helpers import Tmux

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def test_live_app_in_tmux(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    done = tmp_path / "exit-code"
    cmd = " ".join(
        shlex.quote(str(a))
        for a in [
            sys.executable,
            "-m",
            "rnn_tui",
            small_corpus,
            "--batch-size",
            "8",
            "--seq-len",
            "32",
            "--hidden",
            "64",
            "--embed",
            "16",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--eval-every",
            "50",
            "--sample-every",
            "3",
            "--sample-length",
            "40",
            "--runs-dir",
            runs,
        ]
    )
    term = Tmux(f"{cmd}; echo $? > {shlex.quote(str(done))}; sleep 60")
    try:
        screen = term.wait_for(
            lambda s: "ema" in s and "── step" in s and "chars/s" in s, what="the loss plot, the stats and a sample"
        )
        for panel in ("loss", "samples", "hidden state", "Pause"):  # Pause: the footer lists keys
            assert panel in screen
        term.keys("space")
        term.wait_for(lambda s: "● paused" in s, what="the paused state")
        term.keys("s")
        latest = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and latest is None:
            found = list(runs.glob("*/checkpoints/latest.pt"))
            latest = found[0] if found else None
            time.sleep(0.1)
        assert latest is not None, "s did not write a checkpoint"
        term.wait_for(lambda s: "saved" in s and "latest.pt" in s, what="the save to show")
        term.keys("?")
        term.wait_for(lambda s: "what it does" in s, what="the help screen")
        term.keys("Escape")
        # (a key sent right after Escape would arrive as alt+key)
        term.wait_for(lambda s: "what it does" not in s, what="the help screen to close")
        term.keys("q")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.2)
        assert done.exists(), f"the app did not exit; screen:\n{term.screen()}"
        assert done.read_text().strip() == "0"
        after = term.screen()
        assert "Traceback" not in after
        # the hint spells the command as it was typed (here: python -m rnn_tui), so it works as shown
        assert f"resume with: {sys.executable} -m rnn_tui train --resume" in "".join(after.splitlines())
    finally:
        term.close()


def test_compare_shows_runs_side_by_side_in_tmux(tmp_path):
    """`rnn-tui compare` at 80x24 and then 200x60: the curves, the legend of what differs, x
    switching the axis, and esc leaving with exit code 0."""
    from tests.helpers import command, fake_run

    root = tmp_path / "runs"
    fake_run(root, "small-20261201-100000", 600, hidden=256, dropout=0.1, eval_every=100)
    fake_run(root, "small-20261201-110000", 500, hidden=512, dropout=0.2, eval_every=100)
    done = tmp_path / "exit-code"
    term = Tmux(f"{command('compare', '--runs-dir', root)}; echo $? > {shlex.quote(str(done))}; sleep 60")
    try:
        screen = term.wait_for(
            lambda s: "hidden 512 · dropout 0.2" in s and "hidden 256 · dropout 0.1" in s, what="the legend"
        )
        assert "step" in screen and "esc Back" in screen and "x Axis" in screen
        assert "small-20261201-100000" in screen  # the list names the runs in full at 80 columns
        term.keys("x")
        term.wait_for(lambda s: "characters seen" in s, what="the characters axis")
        term.keys("x")
        term.wait_for(lambda s: "training time" in s, what="the time axis")
        term.resize(200, 60)
        wide = term.wait_for(lambda s: max(map(len, s.splitlines())) > 150, what="the redraw at 200x60")
        assert "training time" in wide and "hidden 512 · dropout 0.2" in wide and "Traceback" not in wide
        term.keys("Escape")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.exists() and done.read_text().strip() == "0", term.screen()
    finally:
        term.close()
