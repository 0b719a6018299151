"""`X` in a viewer: while the trainer saves and runs its final evaluation, the screen says what it
is doing and how far it is, not a frozen "stopping"."""

from __future__ import annotations

from rnn_tui.core import events as ev
from tests.helpers import app_wait, started_event
from tests.ui.fake_stream import ReplayLink


async def test_stopping_shows_the_final_save_and_evaluation_as_they_go():
    from rnn_tui.ui.app import RnnTuiApp

    link = ReplayLink([started_event(config=dict(cell="lstm", layers=1, hidden=8, batch_size=1, seq_len=1))])
    link.events.append(ev.StateChanged("training"))
    app = RnnTuiApp(link, viewer=True)
    async with app.run_test(size=(100, 32)) as pilot:
        await app_wait(pilot, lambda: not link.events, what="the start")
        await pilot.press("X", "y")
        assert link.sent == [ev.Stop(save=True)]
        stats = app.query_one("#stats")
        assert "● stopping" in str(stats.render())
        for event, shown in [
            (ev.StateChanged("saving", "final"), "● stopping · saving"),
            (ev.StateChanged("evaluating", "final"), "● stopping · evaluating"),
            (ev.StateChanged("evaluating", "final 40%"), "● stopping · evaluating 40%"),
            (ev.StateChanged("saving", "final"), "● stopping · saving"),
        ]:
            link.events.append(event)
            await app_wait(pilot, lambda shown=shown: shown in str(stats.render()), what=shown)
