"""The README's commands work as typed: its first command leaves `rnn-tui` on the PATH, and every
`rnn-tui ...` line of its shell blocks names a real command and real options (each is run, as
typed, with --help added: the parser checks every option name without training anything)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a subprocess for each command

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
COMMANDS = [
    line.split("  #")[0].strip() for block in BLOCKS for line in block.splitlines() if line.startswith("rnn-tui")
]


def test_the_first_command_sets_up_and_puts_rnn_tui_on_the_path():
    first = BLOCKS[0].strip()
    assert first.startswith("bash scripts/setup.sh")
    steps = [s.strip() for s in first.split("&&")]
    assert ". .venv/bin/activate" in steps and steps.index(". .venv/bin/activate") < steps.index("rnn-tui")
    assert (ROOT / ".venv" / "bin" / "activate").exists()  # what setup.sh made, and the line sources
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert ". .venv/bin/activate" in setup.splitlines()[-1]  # and what it says last


@pytest.mark.parametrize("line", COMMANDS)
def test_every_command_of_the_readme_parses(line, tmp_path):
    assert len(COMMANDS) >= 15
    words = shlex.split(line)
    rnn_tui = str(Path(sys.executable).with_name("rnn-tui"))
    proc = subprocess.run(
        [rnn_tui, *words[1:], "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
    )
    assert proc.returncode == 0, f"{line}\n{proc.stdout}{proc.stderr}"
    assert "Usage:" in proc.stdout
