"""End to end in a real terminal (tmux): a dropped terminal loses nothing, the app hands its run
to a background trainer, and `rnn-tui attach` steers that trainer from another terminal."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import time

import pytest

from rnn_tui.remote.status import _last_step, pid_alive, read_status
from tests.helpers import Tmux, command, detach_args, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

TINY = detach_args(sample_every=3)


def only_run(runs):
    found = [p for p in runs.iterdir() if p.is_dir()]
    return found[0] if len(found) == 1 else None


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("how", ["hangup", "sigterm"])
def test_a_dropped_terminal_leaves_a_fresh_checkpoint_that_resumes(small_corpus, tmp_path, how):
    runs = tmp_path / "runs"
    done = tmp_path / "exit-code"
    term = Tmux(f"{command(small_corpus, *TINY, '--runs-dir', runs)}; echo $? > {shlex.quote(str(done))}; sleep 60")
    try:
        term.wait_for(lambda s: "chars/s" in s and "── step" in s, what="training on screen")
        run_dir = only_run(runs)
        wait_until(lambda: (_last_step(run_dir / "metrics.jsonl") or 0) > 50, what="some steps")
        trainer_pid = read_status(run_dir)["pid"]
        signalled = time.time()
        if how == "sigterm":  # kill APP_PID: the app quits as q does and gives the terminal back
            os.kill(parent_of(trainer_pid), signal.SIGTERM)
            wait_until(done.exists, what="the app to exit")
            assert done.read_text().strip() == "0"
            screen = term.screen()
            resume = f"resume with: {sys.executable} -m rnn_tui train --resume"
            assert resume in "".join(screen.splitlines()) and "── step" not in screen
    finally:
        term.close()  # tmux sends SIGHUP, as a dropped SSH connection does
    wait_until(lambda: not pid_alive(trainer_pid), what="the trainer to save and exit")
    latest = run_dir / "checkpoints" / "latest.pt"
    assert latest.exists() and latest.stat().st_mtime >= signalled - 1
    assert read_status(run_dir)["state"] == "stopped"
    from rnn_tui.core import checkpoint as ckpt_io

    step = ckpt_io.load(latest)["step"]
    assert step > 50
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "train", "--resume", run_dir, "--headless", "--max-steps", str(step + 20)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"resumed at step {step}" in proc.stdout


def test_d_moves_training_to_the_background_and_attach_steers_it(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    done = tmp_path / "exit-code"
    app = Tmux(f"{command(small_corpus, *TINY, '--runs-dir', runs)}; echo $? > {shlex.quote(str(done))}; sleep 60")
    background_pid = None
    try:
        app.wait_for(lambda s: "chars/s" in s and "── step" in s, what="training on screen")
        run_dir = only_run(runs)
        first_pid = read_status(run_dir)["pid"]
        app.keys("d")
        screen = app.wait_for(lambda s: "training in the background" in s, what="the hand-over")
        background_pid = int(re.search(r"\(pid (\d+)\)", screen).group(1))
        assert background_pid != first_pid and f"{sys.executable} -m rnn_tui attach" in "".join(screen.splitlines())
        wait_until(done.exists, what="the app to exit")
        assert done.read_text().strip() == "0"
    finally:
        app.close()
    # the app's terminal is gone; the run goes on
    status = read_status(run_dir)
    assert status["state"] == "running" and status["pid"] == background_pid
    step = _last_step(run_dir / "metrics.jsonl")
    wait_until(lambda: _last_step(run_dir / "metrics.jsonl") > step, what="training to go on")

    viewer = Tmux(f"{command('attach', '--runs-dir', runs)}; sleep 60")
    try:
        viewer.wait_for(lambda s: "viewer" in s and "── step" in s, what="the viewer")
        viewer.keys("space")
        viewer.wait_for(lambda s: "● paused" in s, what="the trainer to pause")
        paused_at = _last_step(run_dir / "metrics.jsonl")
        viewer.keys("space")
        wait_until(lambda: _last_step(run_dir / "metrics.jsonl") > paused_at, what="training to resume")
        viewer.keys("q")
        viewer.wait_for(lambda s: "left the viewer; the run goes on" in s, what="the viewer to leave")
    finally:
        viewer.close()
        assert pid_alive(background_pid), "leaving the viewer stopped the trainer"
        os.kill(background_pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(background_pid), what="the background trainer to stop")
    assert read_status(run_dir)["state"] == "stopped"
