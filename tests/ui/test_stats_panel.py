"""The stats panel (Pilot, the real app with a silent trainer): epochs on a tiny corpus, and the
run's training time after a resume."""

from __future__ import annotations

from rnn_tui.core import events as ev
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import SilentLink, progress_event, started_event

CONFIG = {"cell": "lstm", "layers": 2, "hidden": 256, "batch_size": 32, "seq_len": 100}


async def stats_after(batches_per_epoch: int, **progress: object) -> str:
    """The stats panel's text once a run of ``batches_per_epoch`` trains and reports ``progress``."""
    app = RnnTuiApp(SilentLink())
    async with app.run_test(size=(100, 30)) as pilot:
        app.handle_event(started_event(config=CONFIG, batches_per_epoch=batches_per_epoch))
        app.handle_event(ev.StateChanged("training"))
        app.handle_event(progress_event(**progress))
        app.refresh_stats()
        await pilot.pause()
        return str(app.stats_panel.render())


async def test_a_corpus_of_one_step_an_epoch_shows_whole_epochs():
    text = await stats_after(1, step=83, epoch=83.0)
    assert "83 · epoch 83" in text and "%" not in text
    assert "to next epoch" not in text  # an epoch is a step: no eta to it


async def test_a_big_corpus_shows_how_far_into_the_epoch():
    text = await stats_after(313, step=432, epoch=1.38)
    assert "epoch 1.38 (38%)" in text and "since this start" not in text


async def test_a_resumed_run_shows_its_whole_training_time_and_this_starts():
    text = await stats_after(313, step=5100, epoch=16.3, elapsed_s=30.0, total_s=930.0)
    assert "time   15:30" in text  # the run's, not 0:30
    assert "start  0:30 since this start" in text
