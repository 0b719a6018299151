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
