"""The explorer on real trainers: the live app's own (training, paused, finished), a viewer of a
background trainer, and a viewer of a run that is not training (answered from its checkpoint)."""

from __future__ import annotations

import contextlib

import pytest

from rnn_tui.core import events as ev
from rnn_tui.host.detached import start_detached
from rnn_tui.host.explore_link import ExploringLink
from rnn_tui.host.links import ProcessLink
from rnn_tui.remote.client import HistoryLink, SocketLink
from rnn_tui.remote.status import pid_alive
from rnn_tui.ui.app import RnnTuiApp
from rnn_tui.ui.explorer import ExplorerScreen
from tests.helpers import app_request, app_wait, wait_until

pytestmark = pytest.mark.slow  # real trainers in their own processes


async def explore(pilot, after_step: int = -1):
    """Open the explorer (or ask again) and wait for an answer newer than ``after_step``."""
    app = pilot.app
    if not isinstance(app.screen, ExplorerScreen):
        await pilot.press("e")
    else:
        await pilot.press("r")
    await app_wait(
        pilot, lambda: app.explorer.result is not None and app.explorer.result.step > after_step, what="an answer"
    )
    return app.explorer


@contextlib.asynccontextmanager
async def live_app(small_corpus, tmp_path, **overrides):
    """The live app on its own trainer process, as `rnn-tui CORPUS` runs it."""
    link = ExploringLink(ProcessLink(app_request(small_corpus, tmp_path, **overrides)))
    link.start()
    app = RnnTuiApp(link)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            yield app, pilot
    finally:
        link.close()


async def test_the_live_app_explores_while_training_and_paused(small_corpus, tmp_path):
    async with live_app(small_corpus, tmp_path, dropout=0.1) as (app, pilot):
        await app_wait(pilot, lambda: app.stats.step >= 5, what="training")
        screen = await explore(pilot)
        first = screen.result
        assert first.h.shape == (2, 2000, 32) and first.c.shape == first.h.shape and first.cells
        unit = screen.cells.unit
        await pilot.press("right", "n")
        assert screen.cells.unit == (unit + 1) % 32
        await pilot.press("tab", "tab", "right")
        assert screen.view == "predictions" and screen.predictions.text_view.cursor == 1
        await pilot.press("space")  # paused: answered at once, from the paused weights
        await app_wait(pilot, lambda: app.trainer_state == "paused", what="paused")
        await pilot.press("r")
        await app_wait(pilot, lambda: screen.asked_at is None, what="an answer while paused")
        assert screen.result.step == app.stats.step
        await pilot.press("space", "e")
        assert not isinstance(app.screen, ExplorerScreen)
        resumed_at = app.stats.step
        await app_wait(pilot, lambda: app.stats.step > resumed_at, what="training to go on")


async def test_a_finished_run_is_explored_from_its_final_checkpoint(small_corpus, tmp_path):
    async with live_app(small_corpus, tmp_path, max_steps=30) as (app, pilot):
        await app_wait(pilot, lambda: app.finished is not None, timeout=180, what="the run to finish")
        assert app.finished.step == 30
        screen = await explore(pilot)  # the trainer is gone: answered here, from latest.pt
        assert screen.result.step == 30 and screen.failure is None


async def test_a_viewer_explores_a_background_trainer(small_corpus, tmp_path):
    run_dir, pid = start_detached(app_request(small_corpus, tmp_path, sample_every_s=3600))
    link = ExploringLink(SocketLink(run_dir))
    link.start()
    app = RnnTuiApp(link, viewer=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await app_wait(pilot, lambda: app.started is not None, what="the run")
            screen = await explore(pilot)
            assert screen.result.h.shape[0] == 2 and screen.result.asker.startswith("viewer-")
            await pilot.press("c", "left")
            assert screen.cells.state == "c" or screen.result.c is None
            await pilot.press("tab")
            assert screen.view == "finder"
            await pilot.press("escape")
            assert not isinstance(app.screen, ExplorerScreen)
            assert app.stats.step > 0
    finally:
        link.close()  # the run goes on without the viewer; stop it
        stopper = SocketLink(run_dir)
        stopper.start()
        stopper.send(ev.Stop(save=False))
        stopper.close()
        wait_until(lambda: not pid_alive(pid), what="the background trainer to stop")


async def test_a_viewer_of_a_stopped_run_explores_its_checkpoint(small_corpus, tmp_path):
    from rnn_tui.host.headless import run_headless

    request = app_request(small_corpus, tmp_path, max_steps=30)
    assert run_headless(request) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    link = ExploringLink(HistoryLink(run_dir), local=True)
    link.start()
    app = RnnTuiApp(link, viewer=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await app_wait(pilot, lambda: app.finished is not None, what="the run's history")
            screen = await explore(pilot)
            assert screen.result.step == 30 and screen.failure is None
            await pilot.press("tab", "tab", "tab", "tab")
            assert screen.view == "memory" and "--seq-len 16" in str(screen.memory.render())
    finally:
        link.close()
