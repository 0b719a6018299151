"""The stats panel (Pilot, the real app with a silent trainer): epochs on a tiny corpus, and the
run's training time after a resume."""

from __future__ import annotations

from rnn_tui.core import events as ev
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import SilentLink, progress_event, started_event

CONFIG = {"cell": "lstm", "layers": 2, "hidden": 256, "batch_size": 32, "seq_len": 100}


async def stats_after(batches_per_epoch: int, size: tuple[int, int] = (100, 30), **progress: object) -> str:
    """The stats panel's text once a run of ``batches_per_epoch`` trains and reports ``progress``."""
    app = RnnTuiApp(SilentLink())
    async with app.run_test(size=size) as pilot:
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


# One GPU's counters as core/gpus.py reads them from NVML (an H100 under training load)
RECORDED_GPU = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "util": 97,
    "mem_used_mb": 12595.4,
    "mem_total_mb": 81559.0,
    "temp_c": 64,
    "power_w": 312.4,
    "power_limit_w": 700.0,
}


async def test_each_gpu_shows_its_utilisation_memory_temperature_and_power():
    gpus = [RECORDED_GPU, {**RECORDED_GPU, "index": 1, "util": 95}]
    text = await stats_after(313, size=(200, 60), step=10, gpus=gpus)
    assert "gpu 0  97% · 12.3/80 GB · 64°C · 312/700 W" in text
    assert "gpu 1  95% · 12.3/80 GB · 64°C · 312/700 W" in text
    narrow = await stats_after(313, step=10, gpus=gpus)  # a narrower panel: shorter, never cut
    assert "gpu 0  97% · 12.3/80 GB · 64°C\n" in narrow + "\n" and "…" not in narrow


async def test_many_gpus_show_as_one_row_of_ranges():
    gpus = [{**RECORDED_GPU, "index": i, "util": 90 + i, "temp_c": 60 + i} for i in range(8)]
    text = await stats_after(313, size=(200, 60), step=10, gpus=gpus)
    assert "gpus   8 · 90–97% · 12.3/80 GB · 60–67°C · 2.50 kW" in text  # the power of all 8
    assert "gpu 0" not in text


async def test_a_counter_the_gpu_lacks_is_left_out():
    lacking = {**RECORDED_GPU, "power_w": None, "power_limit_w": None, "temp_c": None}
    text = await stats_after(313, step=10, gpus=[lacking])
    assert "gpu 0  97% · 12.3/80 GB\n" in text + "\n"


async def test_no_gpu_rows_without_cuda():
    text = await stats_after(313, step=10, gpus=None)
    assert "gpu" not in text


async def test_several_processes_show_their_number_beside_the_speed_of_all():
    app = RnnTuiApp(SilentLink())
    async with app.run_test(size=(100, 30)) as pilot:
        app.handle_event(started_event(config=CONFIG, batches_per_epoch=313, world_size=2))
        app.handle_event(ev.StateChanged("training"))
        app.handle_event(progress_event(chars_per_s=46_300.0))
        app.refresh_stats()
        await pilot.pause()
        text = str(app.stats_panel.render())
        assert "speed  46.3k chars/s · 2 processes" in text
        assert "cpu x 2" in str(app.title_bar.render())
