"""A run's curves read from its files for the runs screen (rnn_tui/remote/history.py): only the
new bytes of a growing metrics.jsonl, the timeline a resume retrained, the x axes, the legend."""

from __future__ import annotations

import json

import numpy as np

from rnn_tui.remote.history import RunHistory, comparable_key, describe_runs
from tests.helpers import fake_rows, fake_run


def append(run, rows, end="\n") -> int:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    text = text[:-1] + end
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(text)
    return len(text.encode())


def test_a_growing_file_is_read_from_where_the_last_read_stopped(tmp_path):
    run = fake_run(tmp_path, "a", 100, eval_every=50)
    history = RunHistory(run)
    assert history.read_new()
    size = (run / "metrics.jsonl").stat().st_size
    assert history.bytes_read == size
    assert history.curves.last_step == 100 and list(history.curves.val_step) == [50, 100]
    assert not history.read_new()  # nothing new: nothing read
    assert history.bytes_read == size
    # a line being written (no newline yet) waits for its end
    added = append(run, fake_rows(101, 110, eval_every=50), end="")
    assert history.read_new()
    assert history.bytes_read == size + added
    assert history.curves.last_step == 109
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    history.read_new()
    assert history.curves.last_step == 110
    assert history.bytes_read == size + added + 1  # every byte read once


def test_a_resumed_run_retrains_steps_and_the_later_rows_win(tmp_path):
    run = fake_run(tmp_path, "a", 120, eval_every=50)
    # the trainer was killed at step 120 and resumed from its checkpoint at step 75
    append(run, [{**r, "loss": 9.0} for r in fake_rows(76, 90, eval_every=50) if r["kind"] == "train"])
    history = RunHistory(run)
    history.read_new()
    c = history.curves
    assert list(c.train_step) == list(range(1, 91))
    assert np.all(c.train_loss[75:] == 9.0) and np.all(c.train_loss[:75] < 9.0)
    assert list(c.val_step) == [50]  # the evaluation at 100 was of the lost timeline
    assert c.anchor_step.max() <= 90


def test_steps_are_placed_on_characters_and_training_time_by_the_anchors(tmp_path):
    run = fake_run(tmp_path, "a", 100, eval_every=50, batch_size=4, seq_len=10, step_s=0.5)
    history = RunHistory(run)
    history.read_new()
    c = history.curves
    steps = np.array([1.0, 5.0, 7.0, 100.0, 110.0])
    assert list(c.place(steps, "step")) == list(steps)
    assert np.allclose(c.place(steps, "chars"), steps * 40)
    assert np.allclose(c.place(steps, "time"), steps * 0.5)  # beyond the last anchor: at its rate
    # a run from before anchors were logged has no time axis, but characters from its batch shape
    old = fake_run(tmp_path, "old", 20, batch_size=4, seq_len=10)
    (old / "metrics.jsonl").write_text(
        "".join(json.dumps({"kind": "train", "step": s, "loss": 2.0}) + "\n" for s in range(1, 21))
    )
    h = RunHistory(old)
    h.read_new()
    assert not h.curves.has_axis("time") and h.curves.has_axis("chars")
    assert h.curves.place(np.array([10.0]), "chars")[0] == 400


def test_a_damaged_or_replaced_file_is_read_without_complaint(tmp_path):
    run = fake_run(tmp_path, "a", 30, eval_every=10)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "train", "step": "x"}\n\xff\xfe not json\n{"kind": "val"}\n[1, 2]\n')
    history = RunHistory(run)
    history.read_new()
    assert history.curves.last_step == 30
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1, "loss": 3.0}) + "\n")
    assert history.read_new()  # shorter than what was read: a new file, read from its start
    assert list(history.curves.train_step) == [1]


def test_runs_are_named_by_what_differs_in_their_configuration(tmp_path):
    a = RunHistory(fake_run(tmp_path, "a", 10, hidden=256, dropout=0.1))
    b = RunHistory(fake_run(tmp_path, "b", 10, hidden=512, dropout=0.2))
    c = RunHistory(fake_run(tmp_path, "c", 10, hidden=512, dropout=0.2, seed=7))
    assert describe_runs([a, b]) == ["hidden 256 · dropout 0.1", "hidden 512 · dropout 0.2"]
    assert describe_runs([a, b, c]) == [
        "hidden 256 · dropout 0.1 · seed 1337",
        "hidden 512 · dropout 0.2 · seed 1337",
        "hidden 512 · dropout 0.2 · seed 7",
    ]
    same = RunHistory(fake_run(tmp_path, "same", 10, hidden=256, dropout=0.1))
    assert describe_runs([a, same]) == ["a", "same"]  # nothing differs: their names
    # cadence and sampling settings change no curve: they never name a run
    d = RunHistory(fake_run(tmp_path, "d", 10, temperature=1.2, eval_every=10, sample_every_s=3.0))
    assert describe_runs([a, d]) == ["a", "d"]
    other = RunHistory(fake_run(tmp_path, "o", 10, corpus="cjk.txt", vocab_size=2400))
    assert describe_runs([a, other]) == ["small.txt", "cjk.txt"]
    assert comparable_key(a.record) != comparable_key(other.record)
    assert comparable_key(a.record) == comparable_key(b.record)


def test_twins_are_told_apart_by_name_and_a_fitted_decay_names_no_run(tmp_path):
    a = RunHistory(fake_run(tmp_path, "a", 10, hidden=96))
    b = RunHistory(fake_run(tmp_path, "b", 10, hidden=96))
    c = RunHistory(fake_run(tmp_path, "c", 10, hidden=128, max_minutes=0.5, decay_steps=1234))
    assert describe_runs([a, b, c]) == [
        "a · hidden 96 · decay 10000 · no time limit",
        "b · hidden 96 · decay 10000 · no time limit",
        "hidden 128 · 0.5 min",
    ]
    # run names differ at their end (the time they started): that end comes first, so a legend
    # cut at the edge still tells them apart
    t1 = RunHistory(fake_run(tmp_path, "tinyshakespeare-20261129-105153", 10, hidden=96))
    t2 = RunHistory(fake_run(tmp_path, "tinyshakespeare-20261129-105742", 10, hidden=96))
    labels = describe_runs([t1, t2, c])
    assert labels[0].startswith("…105153 · hidden 96") and labels[1].startswith("…105742 · hidden 96")
