"""The live app where it cannot run: a dumb terminal, no terminal at all. One line, a pointer to
--headless, exit 2, and no run directory left behind."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def test_term_dumb_points_to_headless(small_corpus, tmp_path):
    controller, terminal = pty.openpty()  # a real terminal, of a kind that cannot draw the app
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rnn_tui", str(small_corpus), "--runs-dir", str(tmp_path / "runs")],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "TERM": "dumb"},
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "TERM=dumb" in proc.stderr and "--headless" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_no_terminal_points_to_headless_for_the_app_and_to_the_files_for_a_viewer(small_corpus, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", str(small_corpus), "--runs-dir", str(tmp_path / "runs")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--headless" in proc.stderr and "Traceback" not in proc.stderr
    run_dir = tmp_path / "runs" / "some-run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "attach", str(run_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "metrics.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def test_a_corpus_too_short_for_one_batch_says_how_long_and_leaves_no_run(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be")
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "train", str(short), "--headless", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "needs at least 1,601" in proc.stderr and "Traceback" not in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
