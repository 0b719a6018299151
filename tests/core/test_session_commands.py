"""Session behaviour a viewer relies on: one truth for the sampling settings, and a note when
the corpus file changes under a running trainer."""

from __future__ import annotations

import queue

from rnn_tui.core import events as ev
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer
from tests.helpers import tiny_config


def run_with(small_corpus, tmp_path, commands, **kw):
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    t = Trainer(
        tiny_config(max_steps=30, sample_length=20, **kw), read_corpus(corpus_file), run=RunDir(tmp_path / "run")
    )
    inbox: queue.Queue = queue.Queue()
    for c in commands:
        inbox.put(c)
    seen: list = []
    return Session(t, inbox, seen.append), seen, corpus_file


def test_sampling_settings_are_the_trainers_and_every_change_is_answered_with_its_ticket(small_corpus, tmp_path):
    session, seen, _ = run_with(
        small_corpus,
        tmp_path,
        [ev.SetSampling(temperature=0.5, ticket="a-1"), ev.SetSampling(prime="KING", ticket="b-1"), ev.SampleNow()],
        temperature=1.3,
    )
    session.run()
    changes = [e for e in seen if isinstance(e, ev.SamplingChanged)]
    assert [(c.temperature, c.prime, c.ticket) for c in changes] == [
        (1.3, "", ""),
        (0.5, "", "a-1"),
        (0.5, "KING", "b-1"),
    ]
    sampled = [e for e in seen if isinstance(e, ev.Sampled)]
    assert (sampled[0].temperature, sampled[0].top_k, sampled[0].prime) == (0.5, 0, "KING")
    assert (session.t.cfg.temperature, session.t.cfg.prime) == (0.5, "KING")  # kept in checkpoints


def test_a_corpus_edited_while_training_is_noted_once_and_ignored(small_corpus, tmp_path):
    session, seen, corpus_file = run_with(small_corpus, tmp_path, [], eval_every=10)
    real_step = session.t.train_step
    calls = {"n": 0}

    def step_and_edit():
        calls["n"] += 1
        if calls["n"] == 5:
            corpus_file.write_text("something else entirely", encoding="utf-8")
        real_step()

    session.t.train_step = step_and_edit
    done = session.run()
    notes = [e.message for e in seen if isinstance(e, ev.Notice) and "changed on disk" in e.message]
    assert len(notes) == 1 and done.error is None and done.step == 30


def test_a_stop_reports_the_progress_of_its_final_save_and_evaluation(monkeypatch, tmp_path):
    """`X` in a viewer: the final evaluation can take a while on a loaded CPU; every screen is
    told how far it is instead of a frozen "stopping"."""
    from rnn_tui.core import session as session_module
    from tests.conftest import SHAKESPEARE

    monkeypatch.setattr(session_module, "EVENT_PROGRESS_EVERY_S", 0.0)  # report every chunk
    t = Trainer(tiny_config(eval_every=1000, max_steps=3), read_corpus(SHAKESPEARE), run=RunDir(tmp_path / "run"))
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0).run()  # stops as X does: save, evaluate
    assert done.reason == "max-steps" and done.checkpoint
    states = [(e.state, e.detail) for e in seen if isinstance(e, ev.StateChanged)]
    final = states[states.index(("saving", "final")) :]
    assert final[1] == ("evaluating", "final")
    shown = [int(detail[6:-1]) for state, detail in final if state == "evaluating" and detail.endswith("%")]
    assert len(shown) >= 2 and shown == sorted(shown) and shown[0] < shown[-1], states  # "final 25%", ...
    assert final[-1] == ("finished", "")
