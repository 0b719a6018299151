"""The live app driven by Pilot, with a real (tiny) trainer in its own process, as in production.

(A trainer thread in the test process would compete with the UI for the GIL; the app runs its
trainer in a spawned process for exactly that reason.)"""

from __future__ import annotations

import re

import pytest

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.host.links import ProcessLink
from rnn_tui.host.request import TrainRequest
from rnn_tui.ui.app import RnnTuiApp
from rnn_tui.ui.widgets.heatmap import HiddenStateHeatmap
from rnn_tui.ui.widgets.loss_plot import LossPlot
from rnn_tui.ui.widgets.samples import SamplesLog
from tests.helpers import TINY_APP, SilentLink
from tests.helpers import app_request as request
from tests.helpers import app_wait as wait_for

pytestmark = pytest.mark.slow  # a real trainer in its own process

TINY = TINY_APP


class RecordingLink(ProcessLink):
    """A ProcessLink that also remembers every event the app received."""

    def __init__(self, request):
        super().__init__(request)
        self.seen: list = []

    def poll(self, limit: int = 1000):
        got = super().poll(limit)
        self.seen.extend(got)
        return got


@pytest.fixture
def started_app(small_corpus, tmp_path):
    link = RecordingLink(request(small_corpus, tmp_path))
    link.start()
    app = RnnTuiApp(link)
    yield app, link
    if link.alive():
        link.send(ev.Stop(save=False))
        link.join(30)
    link.close()


async def test_training_shows_loss_stats_and_samples(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(
            pilot, lambda: app.stats.step >= 40 and app.stats.val_loss is not None, what="steps and a val loss"
        )
        assert app.query_one(LossPlot).train_points >= 40
        assert app.stats.state in ("training", "evaluating", "saving", "sampling")
        stats_text = str(app.query_one("#stats").render())
        assert "chars/s" in stats_text and "bpc" in stats_text
        await pilot.press("g")
        await wait_for(pilot, lambda: app.query_one(SamplesLog).count >= 1, what="a sample")
        await wait_for(pilot, lambda: app.query_one(HiddenStateHeatmap).has_probe, what="a probe")
        assert "lstm 2x32" in str(app.query_one("#title-bar").render())


async def test_space_pauses_training_and_resumes(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats.step >= 5, what="first steps")
        await pilot.press("space")
        assert app.stats.state in ("pausing", "paused")
        await wait_for(pilot, lambda: app.trainer_state == "paused", what="paused")
        paused_at = max(s for e in link.seen if isinstance(e, ev.Progress) for s in e.steps)
        # the trainer polls its inbox every 0.1 s while paused; give it several rounds
        for _ in range(8):
            await pilot.pause(0.05)
        later = [s for e in link.seen if isinstance(e, ev.Progress) for s in e.steps]
        assert max(later) == paused_at, "steps were taken while paused"
        await pilot.press("space")
        await wait_for(pilot, lambda: app.stats.step > paused_at + 3, what="training to resume")


async def test_temperature_and_prime_reach_the_sampler(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.started is not None, what="start")
        await pilot.press("plus", "plus", "minus", "plus")
        assert app.stats.temperature == pytest.approx(1.0)
        assert "T 1.00" in str(app.query_one("#stats").render())
        await pilot.press("p")
        await pilot.press("ctrl+a", *"KING:")  # replace whatever was there
        await pilot.press("enter")
        await pilot.press("g")
        primed = lambda: [e for e in link.seen if isinstance(e, ev.Sampled) and e.prime]  # noqa: E731
        await wait_for(pilot, primed, what="a sample with the prime")
        sample = primed()[0]
        assert sample.temperature == pytest.approx(1.0)
        assert sample.prime == "KING:" and sample.text
        assert "KING:" in str(app.query_one("#stats").render())
        for _ in range(30):
            await pilot.press("plus")
        assert app.sampling.shown.temperature == 2.0  # clamped
        for _ in range(30):
            await pilot.press("minus")
        assert app.sampling.shown.temperature == 0.0


async def test_save_writes_a_loadable_checkpoint(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats.step >= 3, what="first steps")
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: any(isinstance(e, ev.CheckpointSaved) and e.reason == "manual" for e in link.seen),
            what="save",
        )
        saved = next(e for e in link.seen if isinstance(e, ev.CheckpointSaved) and e.reason == "manual")
        ck = ckpt_io.load(saved.path)
        assert ck["step"] == saved.step >= 3
        assert app.stats.last_saved  # the stats panel says what was saved last (latest.pt or best.pt)


async def test_quit_saves_then_exits(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats.step >= 3, what="first steps")
        await pilot.press("q")
        assert app.check_action("toggle_pause", ()) is None  # greyed while stopping
        await wait_for(pilot, lambda: app.finished is not None, what="the trainer to finish")
    assert app.return_code == 0
    assert app.finished.checkpoint and ckpt_io.load(app.finished.checkpoint)["step"] == app.finished.step


async def test_quit_without_saving_asks_first(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.started is not None, what="start")
        await pilot.press("Q")
        assert "Quit without saving" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        assert not app.quitting
        await pilot.press("Q", "y")
        await wait_for(pilot, lambda: app.finished is not None, what="the trainer to stop")
    assert app.finished.checkpoint is None


async def test_plot_and_heatmap_keys(started_app):
    app, link = started_app
    async with app.run_test(size=(100, 32)) as pilot:
        plot = app.query_one(LossPlot)
        await pilot.press("l")
        assert plot.log_y
        before = plot.smoothing
        await pilot.press("right_square_bracket")
        assert plot.smoothing > before
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert plot.smoothing < before
        await pilot.press("w")
        assert plot.window == "recent"
        assert "log" in app.query_one("#loss").border_subtitle
        await pilot.press("g")
        heat = app.query_one(HiddenStateHeatmap)
        await wait_for(pilot, lambda: heat.has_probe, what="a probe")
        layer = heat.shown_layer
        await pilot.press("n")
        assert heat.shown_layer != layer
        await pilot.press("c")
        assert heat.kind == "c"


async def test_help_lists_every_key(started_app):
    app, _ = started_app
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        rows = str(app.screen.query_one("#help-rows").render())
        # the key column ("+ -" is one row), then two spaces or more, then what it does
        keys = [key for line in rows.splitlines()[1:] for key in re.split(r"\s{2,}", line)[0].split()]
        for key in ("space", "g", "s", "+", "-", "p", "l", "[", "]", "n", "c", "q", "y"):
            assert key in keys
        await pilot.press("escape")
        assert not app.screen.query("#help-rows")


async def test_too_small_terminal_says_what_it_needs(started_app):
    app, _ = started_app
    async with app.run_test(size=(50, 15)) as pilot:
        await pilot.pause()
        msg = str(app.query_one("#too-small").render())
        assert "50x15" in msg and "60x18" in msg
        assert app.query_one("#too-small").display


async def test_trainer_start_error_exits_with_message(tmp_path):
    bad = tmp_path / "tiny.txt"
    bad.write_text("too short\n")
    link = ProcessLink(TrainRequest(corpus_file=bad, overrides=TINY, runs_dir=tmp_path / "runs"))
    link.start()
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.finished is not None, what="the error")
    assert app.return_code == 1 and "needs at least" in app.exit_message


async def test_finished_run_greys_out_trainer_keys(small_corpus, tmp_path):
    link = RecordingLink(request(small_corpus, tmp_path, max_steps=5))
    link.start()
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.finished is not None, what="the run to finish")
        assert app.stats.state == "finished"
        for action in ("toggle_pause", "sample_now", "save"):
            assert app.check_action(action, ()) is None
        await pilot.press("q")
    assert app.return_code == 0


async def test_keys_show_their_effect_before_the_trainer_answers():
    link = SilentLink()
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("space")
        assert "pausing" in str(app.query_one("#stats").render())
        await pilot.press("plus")
        assert "T 0.90" in str(app.query_one("#stats").render())
        await pilot.press("k")
        assert "top-k 5" in str(app.query_one("#stats").render())
        await pilot.press("g", "s")
    assert [type(c).__name__ for c in link.sent] == ["Pause", "SetSampling", "SetSampling", "SampleNow", "SaveNow"]


async def test_resume_in_the_app_shows_the_history(small_corpus, tmp_path):
    import queue

    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.runs import RunDir
    from rnn_tui.core.session import run_session

    run = RunDir(tmp_path / "runs" / "earlier")
    from rnn_tui.core.trainer import Trainer

    trainer = Trainer(TrainConfig(**{**TINY, "max_steps": 30, "eval_every": 15}), read_corpus(small_corpus), run=run)
    run_session(trainer, queue.Queue(), lambda e: None, post_interval=0.0)

    link = RecordingLink(TrainRequest(resume=str(run.path), overrides={"max_steps": 40}, runs_dir=tmp_path / "runs"))
    link.start()
    app = RnnTuiApp(link)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.finished is not None, what="the resumed run to finish")
        started = next(e for e in link.seen if isinstance(e, ev.Started))
        assert started.step == 30 and started.run_dir == str(run.path)
        assert app.plot.train_points == 40  # 30 from metrics.jsonl, then 10 live
        await pilot.press("q")


async def test_too_small_message_follows_resizes():
    app = RnnTuiApp(SilentLink())
    async with app.run_test(size=(100, 32)) as pilot:
        assert not app.has_class("too-small")
        await pilot.resize_terminal(50, 15)
        await pilot.pause()
        assert app.has_class("too-small") and "50x15" in str(app.too_small.render())
        await pilot.resize_terminal(30, 10)
        await pilot.pause()
        assert "30x10" in str(app.too_small.render())
        await pilot.resize_terminal(100, 32)
        await pilot.pause()
        assert not app.has_class("too-small")


async def test_prime_warning_is_shown_once_per_prime():
    from tests.ui.fake_stream import ReplayLink

    samples = [ev.Sampled(step=i, prime="KING", text="x", temperature=0.8, top_k=0, unknown=["🙂"]) for i in range(3)]
    app = RnnTuiApp(ReplayLink(samples))
    shown: list[str] = []
    app.notify = lambda message, **kw: shown.append(message)  # record what would pop up
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.samples.count == 3, what="three samples")
    assert len([m for m in shown if "not seen" in m and "🙂" in m]) == 1
