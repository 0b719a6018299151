"""Training faults: NaN/inf losses (roll back, lower the learning rate, go on; stop after repeated
failures with a good checkpoint) and saves that fail (disk full, read-only run directory)."""

import errno
import math
import os
import queue
import types

import pytest
import torch

from rnn_tui.core import atomic
from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer, load_for_inference
from tests.helpers import tiny_config


def make(corpus, path, **kw):
    return Trainer(tiny_config(**kw), read_corpus(corpus), run=RunDir(path))


def inject_nan(trainer, when):
    """Training forward passes return NaN logits when ``when(step)`` says so (step = steps done)."""
    real = trainer.model.forward

    def forward(x, state=None):
        logits, state = real(x, state)
        if trainer.model.training and when(trainer.step):
            logits = logits * math.nan
        return logits, state

    trainer.model.forward = forward


def once_at(step):
    fired = []

    def when(s):
        if s == step and not fired:
            fired.append(s)
            return True
        return False

    return when


def trajectory(events):
    """step -> loss as the run finally went (a rollback replays steps; the last report wins)."""
    out = {}
    for e in events:
        if isinstance(e, ev.Progress):
            out.update(zip(e.steps, e.losses))
    return out


def notices(events, level):
    return [e.message for e in events if isinstance(e, ev.Notice) and e.level == level]


def test_snapshot_restore_is_exact_and_repeatable(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run", layers=2, dropout=0.2)
    for _ in range(3):
        t.train_step()
    t.collect()
    snap = t.snapshot()
    runs = []
    for _ in range(3):  # the optimiser updates its state in place: the snapshot must be a copy
        t.restore(snap)
        for _ in range(6):
            t.train_step()
        runs.append([r[1] for r in t.collect()])
    assert runs[0] == runs[1] == runs[2]
    assert t.step == 9


def test_nan_rolls_back_lowers_lr_and_resume_is_exact(small_corpus, tmp_path):
    kw = dict(max_steps=40, layers=2, dropout=0.1)
    # A: one NaN at step 21, rolled back to the last good state (step 0 here), on to step 40
    a = make(small_corpus, tmp_path / "a", **kw)
    inject_nan(a, once_at(20))
    seen_a: list = []
    done = Session(a, queue.Queue(), seen_a.append, post_interval=0.0, snapshot_every_s=3600).run()
    assert done.reason == "max-steps" and done.step == 40 and done.error is None
    (warning,) = notices(seen_a, "warning")
    assert "loss became nan at step 21" in warning and "went back to step 0" in warning
    assert "(x0.5); training goes on" in warning
    assert a.lr_scale == 0.5
    steps_a = [s for e in seen_a if isinstance(e, ev.Progress) for s in e.steps]
    assert steps_a == list(range(1, 21)) + list(range(1, 41))  # the NaN step itself is never reported
    lrs = [e.lr for e in seen_a if isinstance(e, ev.Progress)]
    assert lrs[20] == pytest.approx(lrs[0] * 0.5)  # step 1 again, at half the rate
    ck = ckpt_io.load(a.run.latest)
    assert ck["lr_scale"] == 0.5 and ck["step"] == 40
    rows = a.run.read_metrics()
    (rollback,) = [r for r in rows if r["kind"] == "rollback"]
    assert (rollback["step"], rollback["from_step"], rollback["lr_scale"]) == (0, 21, 0.5)

    # B: the same run stopped (and saved) at step 30, after the rollback; C resumes it to 40
    b = make(small_corpus, tmp_path / "b", **kw)
    inject_nan(b, once_at(20))
    inbox: queue.Queue = queue.Queue()
    seen_b: list = []

    def emit_b(e):
        seen_b.append(e)
        if isinstance(e, ev.Progress) and e.step >= 30:
            inbox.put(ev.Stop(save=True))

    done = Session(b, inbox, emit_b, post_interval=0.0, snapshot_every_s=3600).run()
    assert done.reason == "stopped" and done.step == 30
    c = make(small_corpus, tmp_path / "c", seed=999, **kw)
    c.load_state_dict(ckpt_io.load(b.run.latest))
    assert c.lr_scale == 0.5
    seen_c: list = []
    done = Session(c, queue.Queue(), seen_c.append, post_interval=0.0).run()
    assert done.step == 40
    resumed = {**trajectory(seen_b), **trajectory(seen_c)}
    straight = trajectory(seen_a)
    assert sorted(resumed) == sorted(straight) == list(range(1, 41))
    assert [resumed[s] for s in range(1, 41)] == pytest.approx([straight[s] for s in range(1, 41)], abs=1e-6)


def test_repeated_nans_stop_with_a_good_checkpoint(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run", max_steps=60)
    inject_nan(t, lambda step: step >= 10)  # every step from the 11th on
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0, snapshot_every_s=0.0).run()
    warnings = notices(seen, "warning")
    assert len(warnings) == 3 and all("at step 11: went back to step 10" in w for w in warnings)
    assert [w.split("(x")[1].split(")")[0] for w in warnings] == ["0.5", "0.25", "0.125"]
    assert done.reason == "error" and len(done.error.splitlines()) == 1
    assert "loss became nan at step 11, after 3 rollbacks" in done.error
    assert "saved in" in done.error and "try a lower --lr" in done.error
    assert notices(seen, "error") == [done.error]
    # the good state (step 10) is on disk, finite, loadable, and resumes at the lowest rate tried
    model, _, ck = load_for_inference(t.run.latest)
    assert ck["step"] == 10 and ck["lr_scale"] == 0.125
    assert all(torch.isfinite(p).all() for p in model.parameters())
    fresh = make(small_corpus, tmp_path / "again", max_steps=60)
    fresh.load_state_dict(ck)
    fresh.train_step()
    assert math.isfinite(fresh.collect()[0][1])


def test_nan_weights_at_a_save_roll_back_instead_of_saving(small_corpus, tmp_path):
    # The loss of the last step was finite but its update broke the weights: a save asked for
    # now must neither write them nor stop the run.
    t = make(small_corpus, tmp_path / "run", max_steps=20)
    inbox: queue.Queue = queue.Queue()
    seen: list = []
    real_step = t.optimizer.step
    when = once_at(11)

    def step_then_break(*a, **k):
        out = real_step(*a, **k)
        if when(t.step):  # the 12th update
            with torch.no_grad():
                t.model.head.bias.fill_(math.inf)
            inbox.put(ev.SaveNow())
        return out

    t.optimizer.step = step_then_break
    done = Session(t, inbox, seen.append, post_interval=3600, snapshot_every_s=3600).run()
    assert done.reason == "max-steps" and done.error is None
    (warning,) = notices(seen, "warning")
    assert "weights became NaN or infinite at step 12: went back to step 0" in warning
    saved = [e for e in seen if isinstance(e, ev.CheckpointSaved)]
    assert saved[0].reason == "manual" and saved[0].step == 0
    model, _, ck = load_for_inference(t.run.latest)
    assert ck["step"] == 20 and all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------- saves that fail


class _DiskFull:
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, b):
        if len(b) > self.room:
            self.f.write(bytes(memoryview(b)[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _break_saves(monkeypatch, fault, broken):
    """While ``broken["on"]``, checkpoint writes fail: a full disk (mid-write) or a read-only
    directory (the temporary file cannot be created). Root ignores chmod, so both are simulated."""
    if fault == "ENOSPC":
        real = os.fdopen

        def fdopen(fd, *a, **k):
            f = real(fd, *a, **k)
            return _DiskFull(f, 1000) if broken["on"] else f

        monkeypatch.setattr(atomic, "os", types.SimpleNamespace(**{**vars(os), "fdopen": fdopen}))
    else:
        real = atomic.tempfile.mkstemp

        def mkstemp(*a, **k):
            if broken["on"]:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real(*a, **k)

        monkeypatch.setattr(atomic, "tempfile", types.SimpleNamespace(mkstemp=mkstemp))


@pytest.mark.parametrize("lasting", [False, True], ids=["then-recovers", "to-the-end"])
@pytest.mark.parametrize("fault", ["ENOSPC", "EROFS"])
def test_failed_save_keeps_the_previous_checkpoint_and_training_goes_on(
    small_corpus, tmp_path, monkeypatch, fault, lasting
):
    t = make(small_corpus, tmp_path / "run", max_steps=30)
    broken = {"on": False}
    _break_saves(monkeypatch, fault, broken)
    inbox: queue.Queue = queue.Queue()
    seen: list = []
    checks = {}

    def emit(e):
        seen.append(e)
        if not isinstance(e, ev.Progress):
            return
        if e.step == 5:
            inbox.put(ev.SaveNow())  # a good checkpoint
        elif e.step == 10:
            checks["before"] = t.run.latest.read_bytes()
            broken["on"] = True
            inbox.put(ev.SaveNow())  # fails
        elif e.step == 15:
            checks["after"] = t.run.latest.read_bytes()
            checks["loads"] = ckpt_io.load(t.run.latest)["step"]
            checks["litter"] = sorted(p.name for p in t.run.checkpoints.iterdir())
            broken["on"] = lasting

    done = Session(t, inbox, emit, post_interval=0.0).run()
    assert checks["after"] == checks["before"] and checks["loads"] == 5
    assert checks["litter"] == ["latest.pt"]  # no temporary file left behind
    why = os.strerror(errno.ENOSPC if fault == "ENOSPC" else errno.EROFS)
    errors = notices(seen, "error")
    assert errors[0] == f"saving manual checkpoint failed ({why}); training goes on"
    assert t.step == 30  # training went on after the failed save
    if lasting:
        assert done.error == f"saving final checkpoint failed ({why})"  # exit code 1 in the CLI
        assert t.run.latest.read_bytes() == checks["before"]
    else:
        assert done.reason == "max-steps" and done.error is None
        assert ckpt_io.load(t.run.latest)["step"] == 30
    assert not [p for p in t.run.checkpoints.iterdir() if p.suffix == ".tmp"]


def test_a_save_removes_temporary_files_of_an_interrupted_save(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run")
    stale = t.run.checkpoints / ".latest.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")  # what a kill -9 in the middle of a save leaves
    other = t.run.checkpoints / "notes.txt"
    other.write_text("mine")
    t.save("manual")
    assert not stale.exists() and other.exists()
    assert ckpt_io.load(t.run.latest)["step"] == 0
