"""Hints show a command that works as typed: the way the program was invoked, not a bare
``rnn-tui`` that may not be on the PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_tui.core import invocation

SCRIPT = Path(sys.executable).parent / "rnn-tui"  # the console script of this environment


def hint_for_no_runs(argv: list[str], cwd: Path, path: str) -> str:
    """``attach`` with no runs refuses with a hint naming the command that starts one."""
    env = {k: v for k, v in os.environ.items() if k != invocation.ENV}
    proc = subprocess.run(
        [*argv, "attach", "--runs-dir", "empty"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PATH": path, "NO_COLOR": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    return proc.stderr.split("start one with: ", 1)[1].split(")")[0]


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
def test_a_console_script_run_by_its_path_is_named_by_that_path(tmp_path):
    typed = os.path.relpath(SCRIPT, tmp_path)  # as in .venv/bin/rnn-tui
    assert hint_for_no_runs([typed], tmp_path, "/usr/bin:/bin") == f"{typed} train CORPUS --detach"
    # the hint runs as typed, from where the person typed it
    proc = subprocess.run([typed, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
def test_a_console_script_on_the_path_is_named_rnn_tui(tmp_path):
    path = f"{SCRIPT.parent}:/usr/bin:/bin"
    assert hint_for_no_runs(["rnn-tui"], tmp_path, path) == "rnn-tui train CORPUS --detach"


def test_python_dash_m_is_named_as_typed(tmp_path):
    hint = hint_for_no_runs([sys.executable, "-m", "rnn_tui"], tmp_path, "/usr/bin:/bin")
    assert hint == f"{sys.executable} -m rnn_tui train CORPUS --detach"


def test_the_spelling_is_passed_to_the_processes_we_start(monkeypatch):
    monkeypatch.setenv(invocation.ENV, ".venv/bin/rnn-tui")
    assert invocation.command("attach", "runs/my run") == ".venv/bin/rnn-tui attach 'runs/my run'"
    monkeypatch.delenv(invocation.ENV)
    assert invocation.from_argv("/somewhere/else/rnn_tui/__main__.py").endswith(" -m rnn_tui")
    assert invocation.from_argv("pytest") == "rnn-tui"  # imported by something else: the documented name
