"""``rnn-tui serve``: the viewer in browser tabs, through textual-serve (one viewer process per tab)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from rnn_tui.host.request import LaunchError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve_viewer(run_dir: Path, host: str, port: int) -> None:
    """Serve a viewer of ``run_dir`` until Ctrl+C; each browser tab is a viewer, never a trainer."""
    if host not in LOCAL_HOSTS:
        typer.echo(
            f"rnn-tui: warning: serving on {host}: anyone who can reach this port can watch and "
            f"steer the run; there is no authentication",
            err=True,
        )
    try:
        from textual_serve.server import Server
    except ImportError:
        raise LaunchError("rnn-tui serve needs textual-serve: pip install textual-serve") from None
    command = f"{shlex.quote(sys.executable)} -m rnn_tui attach {shlex.quote(str(run_dir))}"
    typer.echo(f"serving a viewer of {run_dir} on http://{host}:{port}/ (Ctrl+C stops serving; the run goes on)")
    Server(command, host=host, port=port, title=f"rnn-tui · {run_dir.name}").serve()
