"""Session behaviour a viewer relies on: a sample at the sender's own settings, and a note when
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


def test_sample_now_uses_the_senders_settings_once(small_corpus, tmp_path):
    session, seen, _ = run_with(
        small_corpus, tmp_path, [ev.SampleNow(temperature=0.0, top_k=5, prime="KING")], temperature=1.3
    )
    session.run()
    sampled = [e for e in seen if isinstance(e, ev.Sampled)]
    assert (sampled[0].temperature, sampled[0].top_k, sampled[0].prime) == (0.0, 5, "KING")
    assert session.temperature == 1.3 and session.prime == ""  # the trainer's own settings are unchanged


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
