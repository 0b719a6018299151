"""The command as the person invoked it, so that every hint we print works when typed.

After ``.venv/bin/rnn-tui`` there may be no ``rnn-tui`` on the PATH, and after
``python -m rnn_tui`` there may be none at all: a hint saying ``rnn-tui attach RUN`` would fail.
``command(...)`` spells a command the way this process was started. The CLI records that spelling
in the environment (``remember``) so the processes it starts (the trainer, a background trainer,
browser tabs) give the same hints. No torch here: ``rnn-tui --help`` stays fast.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys

ENV = "RNN_TUI_COMMAND"
NAME = "rnn-tui"


def _on_path(name: str, path: str) -> bool:
    """Whether typing ``name`` runs ``path`` (the same file name, not merely a symlink to it: a
    virtual environment's python is a symlink to a python that lacks our packages)."""
    found = shutil.which(name)
    return found is not None and os.path.abspath(found) == os.path.abspath(path)


def _python() -> str:
    typed = (getattr(sys, "orig_argv", None) or [sys.executable])[0]
    if os.sep in typed or _on_path(typed, sys.executable):
        return typed
    return sys.executable


def from_argv(argv0: str) -> str:
    """The spelling for a process whose ``sys.argv[0]`` is ``argv0``."""
    base = os.path.basename(argv0)
    if base == "__main__.py" or argv0 == "-m":  # python -m rnn_tui
        return f"{shlex.quote(_python())} -m rnn_tui"
    if base == NAME:  # the console script, found on the PATH or typed as a path
        return NAME if os.sep not in argv0 or _on_path(NAME, argv0) else shlex.quote(argv0)
    return NAME  # imported by something else (tests, a script): the documented name


def invoked() -> str:
    """How to run rnn-tui, as this process (or the command that started it) was run."""
    return os.environ.get(ENV) or from_argv(sys.argv[0] if sys.argv else "")


def command(*args: object) -> str:
    """A command line to show in a hint, e.g. ``command("attach", run_dir)``."""
    return " ".join([invoked(), *(shlex.quote(str(a)) for a in args)])


def remember() -> None:
    """Record this process's spelling for the processes it starts."""
    os.environ.setdefault(ENV, invoked())
