"""One truth for the sampling settings: the trainer's. Every screen shows them, a key press in any
screen changes them for all, the pressing screen shows it at once, and the trainer's answer to an
older press never undoes a newer one."""

from __future__ import annotations

import pytest

from rnn_tui.core import events as ev
from rnn_tui.host.links import ProcessLink
from rnn_tui.remote.client import SocketLink
from rnn_tui.remote.status import live_trainer
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import app_request, app_wait
from tests.ui.fake_stream import ReplayLink


def stats_text(app: RnnTuiApp) -> str:
    return str(app.query_one("#stats").render())


async def delivered(pilot, link: ReplayLink, *events: ev.Event) -> None:
    """Hand the app events as a trainer would, and wait until it has taken them."""
    link.events.extend(events)
    await app_wait(pilot, lambda: not link.events, what="the app to take the events")
    await pilot.pause()


async def test_a_key_press_shows_at_once_and_older_answers_do_not_undo_it():
    link = ReplayLink([ev.SamplingChanged(0.8, 0, "")])
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await delivered(pilot, link)
        await pilot.press("minus", "minus")
        assert "T 0.60" in stats_text(app)  # at once, before the trainer answers
        first, second = link.sent
        assert isinstance(first, ev.SetSampling) and first.ticket and first.ticket != second.ticket
        await delivered(pilot, link, ev.SamplingChanged(0.7, 0, "", first.ticket))
        assert "T 0.60" in stats_text(app), "the answer to the older press undid the newer one"
        await delivered(pilot, link, ev.SamplingChanged(0.6, 0, "", second.ticket))
        assert "T 0.60" in stats_text(app)
        # another screen's change: the trainer's settings are the truth here too
        await delivered(pilot, link, ev.SamplingChanged(1.1, 5, "KING", "someone-else-1"))
        assert "T 1.10" in stats_text(app) and "top-k 5" in stats_text(app) and "KING" in stats_text(app)
        await pilot.press("g")
        assert link.sent[-1] == ev.SampleNow()  # no settings of its own: the trainer's


async def test_a_change_while_an_older_press_is_unanswered_is_shown_after_the_answer():
    link = ReplayLink([ev.SamplingChanged(0.8, 0, "")])
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await delivered(pilot, link)
        await pilot.press("k")
        (press,) = link.sent
        # another screen set T 1.2 before this press reached the trainer: the answer carries both
        await delivered(pilot, link, ev.SamplingChanged(1.2, 0, "", "other-1"))
        assert "top-k 5" in stats_text(app)
        await delivered(pilot, link, ev.SamplingChanged(1.2, 5, "", press.ticket))
        assert "T 1.20" in stats_text(app) and "top-k 5" in stats_text(app)


@pytest.mark.slow
async def test_a_key_in_a_viewer_changes_the_settings_of_the_app_and_of_the_next_sample(small_corpus, tmp_path):
    """The app with its trainer, and a viewer on the trainer's control socket: `-` in the viewer
    shows in the app, `+` in the app shows in the viewer, and samples come out at that setting."""
    owner_link = ProcessLink(app_request(small_corpus, tmp_path))
    owner_link.start()
    owner = RnnTuiApp(owner_link)
    try:
        async with owner.run_test(size=(100, 32)) as owner_pilot:
            await app_wait(owner_pilot, lambda: owner.started is not None, what="the trainer to start")
            run_dir = owner.started.run_dir
            await app_wait(owner_pilot, lambda: live_trainer(run_dir) is not None, what="the control socket")
            viewer_link = SocketLink(run_dir)
            viewer_link.start()
            viewer = RnnTuiApp(viewer_link, viewer=True)
            async with viewer.run_test(size=(100, 32)) as viewer_pilot:
                await app_wait(viewer_pilot, lambda: "T 0.80" in stats_text(viewer), what="the viewer's settings")
                await viewer_pilot.press("minus")
                assert "T 0.70" in stats_text(viewer)
                await app_wait(owner_pilot, lambda: "T 0.70" in stats_text(owner), what="the app to show the change")
                await owner_pilot.press("g")
                for app, pilot in ((owner, owner_pilot), (viewer, viewer_pilot)):
                    await app_wait(pilot, lambda app=app: app.samples.count >= 1, what="a sample")
                    assert app.samples.newest_header().startswith("step ")
                    assert "T 0.70" in app.samples.newest_header()
                await owner_pilot.press("plus", "plus")
                await app_wait(viewer_pilot, lambda: "T 0.90" in stats_text(viewer), what="the viewer to follow")
                await viewer_pilot.press("k")
                await app_wait(owner_pilot, lambda: "top-k 5" in stats_text(owner), what="top-k in the app")
                assert "T 0.90" in stats_text(owner)
            viewer_link.close()
    finally:
        if owner_link.alive():
            owner_link.send(ev.Stop(save=False))
            owner_link.join(30)
        owner_link.close()
