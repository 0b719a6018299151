"""Running the app: the live app on its own trainer, a viewer of a run elsewhere, and the hand-over
to a background trainer (the ``d`` key). What the person sees in the shell after the app closes
is said here too.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.invocation import command
from rnn_tui.core.runs import RunDir
from rnn_tui.core.text import visible
from rnn_tui.host.request import LaunchError, TrainRequest

if TYPE_CHECKING:
    from rnn_tui.host.links import TrainerLink
    from rnn_tui.ui.app import RnnTuiApp


def check_terminal(what: str, hint: str) -> None:
    """A terminal the app can draw on, or one line saying what to use instead."""
    # textual-serve runs the app with pipes for stdin/stdout and its own driver
    if "TEXTUAL_DRIVER" not in os.environ and (not sys.stdout.isatty() or not sys.stdin.isatty()):
        raise LaunchError(f"no terminal here for the {what}; {hint}")
    if os.environ.get("TERM") == "dumb":
        raise LaunchError(f"this terminal (TERM=dumb) cannot show the {what}; {hint}")


def check_theme(theme: str | None) -> None:
    if theme is None:
        return
    from textual.theme import BUILTIN_THEMES

    from rnn_tui.ui.themes import load_themes

    names = set(load_themes()) | set(BUILTIN_THEMES)
    if theme not in names:
        raise LaunchError(f"unknown theme {theme!r} (available: {', '.join(sorted(names))})")


def run_live_app(request: TrainRequest) -> int:
    """Start the trainer process, run the app, and report how it ended (exit code)."""
    check_terminal("live app", "use --headless to train with plain output")
    check_theme(request.theme)
    from rnn_tui.host.explore_link import ExploringLink
    from rnn_tui.host.links import ProcessLink
    from rnn_tui.ui.app import RnnTuiApp

    link = ExploringLink(ProcessLink(request))  # a finished run is explored from its checkpoint
    link.start()  # before App.run(): see rnn_tui/host/links.py
    app = RnnTuiApp(link, theme=request.theme)
    try:
        app.run()
    finally:
        link.join(1 if request.nproc <= 1 else 15)  # (a launcher waits for its processes to exit)
        if link.alive():
            # the app crashed, or q was pressed twice: the trainer still saves before it stops
            print("rnn-tui: waiting for the trainer to stop…", file=sys.stderr)
        link.close()
    if app.exit_message:
        print(f"rnn-tui: error: {visible(app.exit_message)}", file=sys.stderr)
        return 2
    fin = app.finished
    if app.detach_requested and fin is not None and fin.checkpoint and fin.reason == "stopped":
        overrides = dict(request.overrides)
        budget = app.started.config.get("max_minutes") if app.started else None
        if budget:  # the background trainer trains for what is left of the budget, not all of it again
            overrides["max_minutes"] = max(0.01, budget - (app.stats.elapsed_s or 0.0) / 60)
        return hand_over_to_background(
            dataclasses.replace(request, overrides=overrides), Path(fin.checkpoint).parent.parent
        )
    if fin is not None and fin.checkpoint:
        run_dir = Path(fin.checkpoint).parent.parent
        print(f"rnn-tui: stopped at step {fin.step:,}; checkpoint {fin.checkpoint}")
        more = f" --max-steps {fin.step * 2}" if fin.reason == "max-steps" else ""
        if request.nproc > 1:
            more += f" --nproc {request.nproc}"
        print(f"resume with: {command('train', '--resume', run_dir)}{more}")
    elif fin is None and app.started is not None and app.started.run_dir:
        # left before the trainer said it had stopped (q twice): it saved on its way out
        run = RunDir(app.started.run_dir)
        if run.latest.exists():
            print(f"rnn-tui: the trainer saved {run.latest} and stopped")
            nproc = f" --nproc {request.nproc}" if request.nproc > 1 else ""
            print(f"resume with: {command('train', '--resume', run.path)}{nproc}")
    return app.return_code or 0


def hand_over_to_background(request: TrainRequest, run_dir: Path) -> int:
    """Continue the run the app just saved in a background trainer (the d key)."""
    from rnn_tui.host.detached import start_detached

    print(f"rnn-tui: starting a background trainer for {run_dir}…")
    try:
        run_dir, pid = start_detached(dataclasses.replace(request, resume=str(run_dir), run_dir=None))
    except RnnTuiError as exc:
        print(f"rnn-tui: error: could not continue in the background: {visible(str(exc))}", file=sys.stderr)
        print(f"resume with: {command('train', '--resume', run_dir)}", file=sys.stderr)
        return 2
    print(f"training in the background: {run_dir} (pid {pid})")
    print(f"  watch and steer it:  {command('attach', run_dir)}")
    return 0


def run_viewer_app(run_dir: Path, theme: str | None = None) -> int:
    """The live app on a run started elsewhere: live if it trains, else its history. Leaving it
    never stops the trainer."""
    from rnn_tui.ui.web import end_with_serve

    end_with_serve()  # a browser tab's viewer (rnn-tui serve) ends with the serve process
    check_terminal("viewer", f"follow the run's files instead (tail -f {RunDir(run_dir).metrics})")
    check_theme(theme)
    from rnn_tui.host.explore_link import ExploringLink
    from rnn_tui.remote.client import HistoryLink, link_for
    from rnn_tui.ui.app import RnnTuiApp

    inner = link_for(Path(run_dir))
    link = ExploringLink(inner, local=isinstance(inner, HistoryLink))  # not training: explored from its checkpoint
    link.start()
    app = RnnTuiApp(link, theme=theme, viewer=True)
    if run_viewer(app, link):
        return 2
    fin = app.finished
    if fin is None:
        print(f"rnn-tui: left the viewer; the run goes on. Come back with: {command('attach', run_dir)}")
    elif app.quitting and fin.checkpoint:
        print(f"rnn-tui: the trainer stopped at step {fin.step:,}; checkpoint {fin.checkpoint}")
        print(f"resume with: {command('train', '--resume', run_dir)}")
    return app.return_code or 0


def run_explorer_app(target: str, runs_dir: Path, text: Path | None, chars: int, theme: str | None = None) -> int:
    """``rnn-tui explore``: the app opened on its explorer screen; a run that trains is explored
    live, anything else from its checkpoint (loaded and checked before the screen opens)."""
    check_terminal("explorer", "use --json to print the views instead")
    check_theme(theme)
    from rnn_tui.host.explore_link import ExploringLink, FixedLink
    from rnn_tui.host.explore_offline import open_target
    from rnn_tui.remote.client import HistoryLink, SocketLink
    from rnn_tui.ui.app import RnnTuiApp
    from rnn_tui.ui.explorer import ExploreOptions

    found = open_target(target, runs_dir, text, chars, live_ok=True)
    inner: SocketLink | HistoryLink | FixedLink
    if found.live:
        assert found.run_dir is not None
        inner = SocketLink(found.run_dir)
    elif found.run_dir is not None:
        inner = HistoryLink(found.run_dir)
    else:
        from rnn_tui.core import events as ev

        x = found.explorable
        inner = FixedLink([x.started(), ev.Finished(reason="checkpoint", step=x.step, checkpoint=str(x.checkpoint))])
    link = ExploringLink(inner, checkpoint=found.checkpoint, local=not found.live, loaded=found.explorable)
    link.start()
    app = RnnTuiApp(link, theme=theme, viewer=True, explore=ExploreOptions(found.text, chars))
    if run_viewer(app, link):
        return 2
    return app.return_code or 0


def run_viewer(app: RnnTuiApp, link: TrainerLink) -> bool:
    """Run a viewer's app and let go of its link; True when it ended with an error (said here)."""
    try:
        app.run()
    finally:
        link.close()
    if app.exit_message:
        print(f"rnn-tui: error: {visible(app.exit_message)}", file=sys.stderr)
        return True
    return False
