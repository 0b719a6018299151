"""Signals to ``rnn-tui train --headless`` (a real subprocess): SIGTERM and SIGHUP save and exit
cleanly; after ``kill -9`` the last periodic checkpoint is intact. Each run is then resumed.
(Ctrl+C is in test_cli.py.)"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from rnn_tui.core import checkpoint as ckpt_io
from tests.helpers import TINY_ARGS as TINY
from tests.helpers import rnn_tui

pytestmark = pytest.mark.slow  # real trainer processes


class Headless:
    """The CLI training in the background, its stdout read line by line as it comes."""

    def __init__(self, corpus, runs, *extra):
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rnn_tui",
                "train",
                str(corpus),
                "--headless",
                *TINY,
                "--runs-dir",
                str(runs),
                *map(str, extra),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                pytest.fail(
                    f"no line starting {prefix!r}; stdout: {''.join(self.out)}; stderr: {self.proc.stderr.read()}"
                )
            if line.startswith(prefix):
                return line

    def finish(self, timeout=60.0):
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.proc.kill()
        err = self.proc.stderr.read()
        while self.lines.get(timeout=10) is not None:  # the reader has seen the end
            pass
        return rc, "".join(self.out), err


def resume(run, steps):
    proc = rnn_tui("train", "--resume", run, "--headless", "--max-steps", steps)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_save_and_exit_cleanly(small_corpus, tmp_path, sig):
    runs = tmp_path / "runs"
    run = Headless(small_corpus, runs, "--eval-every", "10")
    seen = int(run.wait_for("step ").split()[1])  # an evaluation line: training is under way
    sent = time.time()
    run.proc.send_signal(sig)
    rc, out, err = run.finish()
    assert rc == 0, err
    assert "Traceback" not in out + err
    (run_dir,) = runs.iterdir()
    latest = run_dir / "checkpoints" / "latest.pt"
    step = ckpt_io.load(latest)["step"]
    assert step >= seen and latest.stat().st_mtime >= sent - 0.01  # saved after the signal
    assert f"stopped at step {step}; checkpoint {latest}" in out and "resume with:" in out
    more = resume(run_dir, step + 3)
    assert f"resumed at step {step}" in more and f"at step {step + 3}" in more


def test_kill_9_keeps_the_last_periodic_checkpoint(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    run = Headless(small_corpus, runs, "--save-every-minutes", "0.005")
    run.wait_for("run ")
    (run_dir,) = runs.iterdir()
    checkpoints = run_dir / "checkpoints"
    latest = checkpoints / "latest.pt"
    # Kill in the middle of a periodic save: one is under way while its temporary file exists
    # (written, flushed to disk, then renamed over latest.pt). Polled: no event crosses over.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = os.listdir(checkpoints)
        if "latest.pt" in names and any(n.endswith(".tmp") for n in names):
            break
        time.sleep(0)
    else:
        pytest.fail("never saw a periodic save under way")
    run.proc.send_signal(signal.SIGKILL)
    rc, _, _ = run.finish()
    assert rc == -signal.SIGKILL
    ck = ckpt_io.load(latest)  # intact: the cut-short save never touched latest.pt
    assert ck["step"] > 0
    more = resume(run_dir, ck["step"] + 3)
    assert f"resumed at step {ck['step']}" in more and f"at step {ck['step'] + 3}" in more
    # a save cut short by the kill may have left its temporary file; the next save removed it
    assert not list(checkpoints.glob("*.tmp"))
