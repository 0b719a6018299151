"""Terminal faults from the catalogue: a huge or non-ASCII paste as the prime, a resize storm."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input

from rnn_tui.core import events as ev
from rnn_tui.host.links import ProcessLink
from rnn_tui.ui.app import RnnTuiApp
from rnn_tui.ui.widgets.dialogs import MAX_PRIME, PrimeScreen
from tests.helpers import SilentLink
from tests.helpers import app_request as request
from tests.helpers import app_wait as wait_for


async def paste_prime(app, pilot, text: str) -> None:
    await pilot.press("p")
    await wait_for(pilot, lambda: isinstance(app.screen, PrimeScreen), what="the prime editor")
    field = app.screen.query_one(Input)
    field.value = ""
    field.post_message(events.Paste(text))
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, PrimeScreen), what="the editor to close")


async def test_a_huge_paste_becomes_its_last_characters_with_a_note():
    link = SilentLink()
    app = RnnTuiApp(link)
    shown: list[str] = []
    app.notify = lambda message, **kw: shown.append(message)
    text = "".join(f"line {i}: to be or not to be\n" for i in range(40_000))  # ~1 MB, many lines
    async with app.run_test(size=(100, 32)) as pilot:
        await paste_prime(app, pilot, text)
        primes = [c.prime for c in link.sent if isinstance(c, ev.SetSampling) and c.prime is not None]
        assert primes, "the pasted prime never reached the trainer"
        assert len(primes[-1]) == MAX_PRIME and text.endswith(primes[-1])  # newlines kept, the end kept
        assert any("cut to its last" in m for m in shown)
        assert app.stats.prime == primes[-1]
        await pilot.press("space")  # still answering
        assert isinstance(link.sent[-1], ev.Pause)


async def test_a_non_ascii_prime_reaches_the_trainer_intact():
    link = SilentLink()
    app = RnnTuiApp(link)
    prime = "Ünïcødé ✓ 🙂\nKING:"
    async with app.run_test(size=(100, 32)) as pilot:
        await paste_prime(app, pilot, prime)
    sent = [c for c in link.sent if isinstance(c, ev.SetSampling)]
    assert sent[-1].prime == prime


@pytest.mark.slow
async def test_a_resize_storm_leaves_the_app_drawn_and_training(small_corpus, tmp_path):
    link = ProcessLink(request(small_corpus, tmp_path))
    link.start()
    app = RnnTuiApp(link)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.stats.step > 0, what="training")
            sizes = [(30, 10), (80, 24), (200, 60), (59, 17), (61, 18), (120, 40), (20, 5)]
            for i in range(70):  # a window dragged about: no pause between the resizes
                await pilot.resize_terminal(*sizes[i % len(sizes)])
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            assert not app.has_class("too-small") and app.query_one("#main").display
            step = app.stats.step
            await wait_for(pilot, lambda: app.stats.step > step + 5, what="training to go on")
            await pilot.press("space")
            await wait_for(pilot, lambda: app.stats.state == "paused", what="a key to work after the storm")
            assert app.plot.size.width > 0 and app.heatmap.size.width > 0
    finally:
        link.send(ev.Stop(save=False))
        link.join(30)
        link.close()
