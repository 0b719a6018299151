"""`rnn-tui runs` and `rnn-tui compare` as a person runs them (real subprocesses). The listing
shows the last step trained and the step latest.pt holds, and says "no checkpoint" for a run that
has none; the trainer records the saved step in trainer.json, so the listing never opens a
checkpoint (that would need torch). `compare` refuses what it cannot show in one line."""

from __future__ import annotations

import json
import queue
import socket

import pytest

from rnn_tui.core import events as ev
from rnn_tui.host.serve import serve_session
from rnn_tui.remote.status import read_status
from tests.helpers import app_request, assert_clean_error, fake_run, rnn_tui

pytestmark = pytest.mark.slow  # the real command in subprocesses


def crashed(run, **status) -> None:
    """As a trainer killed with -9 leaves its run: "running" on file, its lock free."""
    (run / "trainer.json").write_text(
        json.dumps({"state": "running", "pid": 999_999_999, "host": socket.gethostname(), **status})
    )
    (run / "trainer.lock").touch()


def row(listing: str, name: str) -> list[str]:
    line = next(line for line in listing.splitlines() if line.startswith(name))
    return line.split()


def test_runs_shows_the_step_trained_and_the_step_saved(tmp_path):
    root = tmp_path / "runs"
    saved = fake_run(root, "saved-run", 88)
    crashed(saved, saved_step=75)
    (saved / "checkpoints" / "latest.pt").write_bytes(b"a checkpoint")
    unsaved = fake_run(root, "unsaved-run", 32)
    crashed(unsaved)
    proc = rnn_tui("runs", "--runs-dir", root)
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header[:5] == ["RUN", "CORPUS", "STATE", "STEP", "SAVED"]
    assert row(proc.stdout, "saved-run")[2:5] == ["crashed", "88", "75"]
    # killed before its first save: nothing for --resume to continue, and the list says so
    assert row(proc.stdout, "unsaved-run")[2:6] == ["crashed,", "no", "checkpoint", "32"]
    resume = rnn_tui("train", "--resume", unsaved, "--headless")
    assert resume.returncode == 2 and "no checkpoint" in resume.stderr


def test_the_trainer_records_the_step_latest_pt_holds(small_corpus, tmp_path):
    request = app_request(small_corpus, tmp_path, layers=1, eval_every=10, eval_every_minutes=0, max_steps=30)
    inbox: queue.Queue = queue.Queue()
    inbox.put(ev.SaveNow())  # latest.pt at step 0; best.pt follows each evaluation
    seen: list[tuple[int, object]] = []
    announced: list[tuple[int, object]] = []

    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.Progress) and e.step > 10:
            run_dir = next((tmp_path / "runs").iterdir())
            status = read_status(run_dir)
            seen.append((status.get("step"), status.get("saved_step")))
        if isinstance(e, ev.CheckpointSaved) and e.reason != "best":
            # a save the app is told about is on file already (rnn-tui runs agrees with the screen)
            run_dir = next((tmp_path / "runs").iterdir())
            announced.append((e.step, read_status(run_dir).get("saved_step")))

    done = serve_session(request, inbox, watch, control=False)
    assert done.reason == "max-steps"
    assert announced and all(step == saved for step, saved in announced), announced
    assert (10, 0) in seen or (20, 0) in seen  # best.pt saved at a later step: latest.pt is still step 0
    run_dir = next((tmp_path / "runs").iterdir())
    assert read_status(run_dir)["saved_step"] == 30
    listing = rnn_tui("runs", "--runs-dir", tmp_path / "runs").stdout
    assert row(listing, run_dir.name)[2:5] == ["finished", "30", "30"]


def test_compare_refuses_in_one_line_what_it_cannot_show(tmp_path):
    assert_clean_error(rnn_tui("compare", "--runs-dir", tmp_path / "none"), "no runs in", "rnn-tui train")
    fake_run(tmp_path / "runs", "a", 10)
    assert_clean_error(rnn_tui("compare", "nosuch", "--runs-dir", tmp_path / "runs"), "no run 'nosuch'")
    # no terminal (a pipe): it says what to use instead
    assert_clean_error(rnn_tui("compare", "a", "--runs-dir", tmp_path / "runs"), "no terminal", "rnn-tui runs")
