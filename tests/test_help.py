"""`--help` of every command, as printed to a person (a real subprocess, 80 columns): no typer
artefacts (`<bool>` on flags, `[[CORPUS]]`, `{checkpoint}`, `<list[str]>`), usage lines that read
as typed, and every command listed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a dozen subprocesses

COMMANDS = ("train", "attach", "runs", "compare", "serve", "sample", "info", "corpora")
USAGE = {
    "": "rnn-tui [OPTIONS] COMMAND [ARGS]...",
    "train": "rnn-tui train [OPTIONS] [CORPUS]",
    "attach": "rnn-tui attach [OPTIONS] [RUN]",
    "runs": "rnn-tui runs [OPTIONS]",
    "compare": "rnn-tui compare [OPTIONS] [RUN]...",
    "serve": "rnn-tui serve [OPTIONS] [RUN]",
    "sample": "rnn-tui sample [OPTIONS] CHECKPOINT",
    "info": "rnn-tui info [OPTIONS] CHECKPOINT",
    "corpora": "rnn-tui corpora [OPTIONS]",
}


def help_of(command: str) -> str:
    """The installed command's help, as a person runs it in an 80-column terminal."""
    command_line = [str(Path(sys.executable).with_name("rnn-tui")), *([command] if command else []), "--help"]
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    proc = subprocess.run(command_line, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_typer_artefacts(command):
    text = help_of(command)
    assert f"Usage: {USAGE[command]}" in " ".join(text.split())
    for artefact in ("<bool>", "[[", "]]", "{", "}", "<list", "<text>"):
        assert artefact not in text, f"{artefact!r} in rnn-tui {command} --help:\n{text}"
    assert "Traceback" not in text


def test_the_command_list_names_every_command():
    text = help_of("")
    for command in COMMANDS:
        assert re.search(rf"│ {command}\s", text), command


def test_defaults_are_shown_once_and_read_from_the_config():
    text = help_of("train")
    for option, default in (("--hidden", "256"), ("--eval-every-minutes", "1"), ("--lr", "0.006")):
        block = text[text.index(option) :]
        assert f"[default: {default}]" in block[:400], option
    assert text.count("[default: runs]") == 1


def test_hints_name_the_runs_directory_only_when_it_is_not_the_default(small_corpus, tmp_path):
    from rnn_tui.remote.status import pid_alive
    from tests.helpers import TINY_ARGS, rnn_tui, wait_until

    for extra in ([], ["--runs-dir", str(tmp_path / "elsewhere")]):
        proc = rnn_tui("train", small_corpus, "--detach", *TINY_ARGS, "--max-steps", "3", *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        hint = next(line for line in proc.stdout.splitlines() if "list runs:" in line)
        assert hint.rstrip().endswith(" runs" + (f" --runs-dir {extra[1]}" if extra else "")), hint
        pid = int(re.search(r"\(pid (\d+)\)", proc.stdout).group(1))
        wait_until(lambda pid=pid: not pid_alive(pid), what="the 3-step run to end")
