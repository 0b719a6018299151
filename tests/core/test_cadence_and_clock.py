"""Validation that follows training time as well as steps (a tiny corpus, slow steps), and the
run's training time kept in its checkpoints so the clock goes on after a resume.

Time is a fake clock that each training step moves on: the session's cadence is tested over
minutes of "training" in a second, with no sleeping."""

from __future__ import annotations

import itertools
import queue
import types

import pytest

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core import session as session_module
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer
from tests.conftest import SHAKESPEARE
from tests.helpers import tiny_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(
        session_module, "time", types.SimpleNamespace(monotonic=fake.monotonic, perf_counter=fake.monotonic)
    )
    return fake


def trainer(corpus, tmp_path, clock: FakeClock, step_s: float, **cfg) -> Trainer:
    """A trainer whose every step takes ``step_s`` seconds of the fake clock."""
    t = Trainer(tiny_config(**cfg), read_corpus(corpus), run=RunDir(tmp_path / "run"))
    real = t.train_step

    def step() -> None:
        real()
        clock.now += step_s

    t.train_step = step  # type: ignore[method-assign]
    return t


def run(t: Trainer) -> list[ev.Event]:
    seen: list[ev.Event] = []
    Session(t, queue.Queue(), seen.append).run()
    return seen


def val_times(t: Trainer) -> list[float]:
    return [r["train_s"] for r in t.run.read_metrics() if r["kind"] == "val"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """4.6k characters: with batch 32 x 100 one step is one epoch."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.txt"
    path.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:4600], encoding="utf-8")
    return path


def test_a_tiny_corpus_is_validated_every_minute_while_the_run_is_young(tiny_corpus, tmp_path, clock):
    t = trainer(
        tiny_corpus,
        tmp_path,
        clock,
        2.0,
        batch_size=32,
        seq_len=100,
        eval_every=250,
        eval_every_minutes=1.0,
        max_steps=100,
    )
    assert len(t.batches) == 1  # one step is one epoch
    seen = run(t)
    # 2 s a step: a validation each minute of training (30 steps), then the final one
    assert [e.step for e in seen if isinstance(e, ev.Evaluated)] == [30, 60, 90, 100]
    assert [e for e in seen if isinstance(e, ev.Progress)][-1].epoch == 100.0
    assert val_times(t) == [60.0, 120.0, 180.0, 200.0]


def test_the_gap_between_timed_validations_grows_with_the_run(small_corpus, tmp_path, clock):
    t = trainer(small_corpus, tmp_path, clock, 30.0, eval_every=10_000, eval_every_minutes=1.0, max_steps=100)
    run(t)
    times = val_times(t)[:-1]  # the last one: at the stop
    assert times[:3] == [60.0, 120.0, 180.0]  # every minute while the run is young
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= max(60.0, 0.1 * a) for gap, a in zip(gaps, times))
    assert gaps[-1] >= 240  # about a tenth of the training time by the end (3000 s)
    assert len(times) < 30  # against 50 at one a minute


def test_an_evaluation_that_takes_long_is_not_repeated_every_minute(small_corpus, tmp_path, clock):
    t = trainer(small_corpus, tmp_path, clock, 10.0, eval_every=10_000, eval_every_minutes=1.0, max_steps=80)
    real = t.evaluate

    def slow_evaluate(**kw) -> float:
        clock.now += 30.0  # each evaluation takes 30 s
        return real(**kw)  # (the session passes on_progress)

    t.evaluate = slow_evaluate  # type: ignore[method-assign]
    run(t)
    times = val_times(t)[:-1]
    assert len(times) >= 2 and all(b - a >= 300 for a, b in itertools.pairwise(times))  # ten times its cost


def test_steps_alone_when_timed_validation_is_off(small_corpus, tmp_path, clock):
    t = trainer(small_corpus, tmp_path, clock, 30.0, eval_every=25, eval_every_minutes=0, max_steps=60)
    assert [e.step for e in run(t) if isinstance(e, ev.Evaluated)] == [25, 50, 60]


def test_the_runs_training_time_goes_on_after_a_resume(small_corpus, tmp_path, clock):
    run(trainer(small_corpus, tmp_path, clock, 3.0, max_steps=20, eval_every=10))
    saved = ckpt_io.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert saved["trained_s"] == pytest.approx(60.0)
    # resumed with a budget of half a minute: --max-minutes counts this start's training only
    second = trainer(small_corpus, tmp_path, clock, 3.0, max_steps=1000, eval_every=10, max_minutes=0.5)
    second.load_state_dict(saved)
    seen = run(second)
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress[0].elapsed_s == pytest.approx(3.0) and progress[0].total_s == pytest.approx(63.0)
    done = next(e for e in seen if isinstance(e, ev.Finished))
    assert done.reason == "max-minutes" and done.step == 30
    assert progress[-1].total_s == pytest.approx(90.0) and progress[-1].elapsed_s == pytest.approx(30.0)
    assert ckpt_io.load(tmp_path / "run" / "checkpoints" / "latest.pt")["trained_s"] == pytest.approx(90.0)
    # the curves against time go on too: evaluations and anchors carry the run's time
    rows = RunDir(tmp_path / "run").history()
    assert [r["train_s"] for r in rows if r["kind"] == "val"] == [30.0, 60.0, 90.0]
    anchors = [r["train_s"] for r in rows if "train_s" in r and r["kind"] == "train"]
    assert anchors == sorted(anchors) and anchors[-1] == pytest.approx(90.0)
