"""The main screen at 80x24, 160x48 and 200x60, and the help at 80x24, from a fixed event stream (update with --snapshot-update)."""

import pytest

from rnn_tui.ui.app import RnnTuiApp
from tests.ui.fake_stream import ReplayLink, demo_events

pytest.importorskip("pytest_textual_snapshot")


async def settle(pilot) -> None:
    app = pilot.app
    while app.link.events:
        await pilot.pause(0.05)
    app.plot.redraw()  # the plot redraws on its own 0.5 s clock; draw now
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48), (200, 60)])
def test_main_screen(snap_compare, size):
    app = RnnTuiApp(ReplayLink(demo_events()), theme="rnn-dark")
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_help_screen(snap_compare):
    app = RnnTuiApp(ReplayLink(demo_events()), theme="rnn-256")
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"], run_before=settle)


EXPLORER_VIEWS = {
    "cells": [],
    "finder": ["tab", "down"],
    "predictions": ["tab", "tab", "right", "right", "right", "down"],
    "surprise": ["tab", "tab", "m"],
    "gates": ["tab", "tab", "tab"],
    "memory": ["tab", "tab", "tab", "tab"],
}


def explorer_app(answer) -> RnnTuiApp:
    import dataclasses

    from tests.ui.explorer_data import ExploreReplayLink

    return RnnTuiApp(ExploreReplayLink(demo_events(), dataclasses.replace(answer, step=1200)), theme="rnn-dark")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("view", list(EXPLORER_VIEWS))
def test_explorer_views(snap_compare, explorer_answer, view, size):
    """Each view of the explorer from the answer for a fixed checkpoint (tests/ui/explorer_data.py)."""
    if view == "surprise" and size != (80, 24):
        pytest.skip("the prediction view's other colouring, once")
    app = explorer_app(explorer_answer)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("e")
        while app.explorer is None or app.explorer.result is None:
            await pilot.pause(0.05)
        for key in EXPLORER_VIEWS[view]:
            await pilot.press(key)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
