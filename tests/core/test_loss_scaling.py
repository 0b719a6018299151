"""fp16's loss scaling on a CPU: the scaler's skipped steps against the NaN guard, exact resume,
no host sync per step, and checkpoints of every precision loading and sampling on a CPU.

A CPU has no fp16 LSTM (oneDNN refuses it), so these runs compute in fp32 with fp16's loss
scaler, and every gradient passes through float16 on its way to the optimiser, as a GPU's fp16
backward leaves it: past 65504 it is inf. With a huge initial scale the first steps overflow,
and the scaler skips them and lowers the scale until the gradients fit, as it does on a GPU.
"""

from __future__ import annotations

import dataclasses
import queue

import pytest
import torch

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.errors import ConfigError
from rnn_tui.core.model import state_tensors
from rnn_tui.core.precision import bf16, fp16, fp32
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer, load_for_inference
from rnn_tui.host.request import TrainRequest, build_trainer
from tests.core.test_faults import inject_nan, notices, once_at, trajectory
from tests.helpers import cpu_auto_precision, tiny_config

SCALED = dataclasses.replace(fp16("fp16's loss scaling, computed in fp32 on a CPU"), autocast=None, init_scale=2.0**30)


def fp16_gradients(trainer: Trainer) -> Trainer:
    """Every gradient goes through float16 (inf past 65504), as under fp16 autocast on a GPU."""
    for p in trainer.model.parameters():
        p.register_hook(lambda g: g.half().to(g.dtype))
    return trainer


def make(corpus, path, precision=SCALED, **kw) -> Trainer:
    return fp16_gradients(Trainer(tiny_config(**kw), read_corpus(corpus), run=RunDir(path), precision=precision))


def test_overflowing_steps_are_skipped_by_the_scaler_not_rolled_back(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run", max_steps=40)
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0, snapshot_every_s=0.0).run()
    assert done.reason == "max-steps" and done.step == 40 and done.error is None
    assert notices(seen, "warning") == [] and t.lr_scale == 1.0  # no rollback
    rows = [r for r in t.run.read_metrics() if r["kind"] == "train"]
    skipped = [r["step"] for r in rows if r.get("skipped")]
    assert skipped == list(range(1, len(skipped) + 1)) and 5 <= len(skipped) < 30  # the scale came down, then fit
    assert all(r["grad_norm"] is None for r in rows if r.get("skipped"))
    assert all(r["grad_norm"] > 0 for r in rows if not r.get("skipped"))
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress[-1].skipped_steps == len(skipped)
    assert all(e.grad_norm == e.grad_norm for e in progress if e.step > len(skipped))  # a real norm, not NaN
    assert t.scaler is not None and t.scaler.get_scale() == 2.0 ** (30 - len(skipped))
    assert sorted(trajectory(seen)) == list(range(1, 41))  # every step reported once, none replayed


def test_a_real_nan_with_loss_scaling_still_rolls_back(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run", max_steps=40)
    inject_nan(t, once_at(30))
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0, snapshot_every_s=0.0).run()
    assert done.reason == "max-steps" and done.step == 40
    (warning,) = notices(seen, "warning")
    assert "the loss became nan at step 31: went back to step 30" in warning
    assert t.lr_scale == 0.5


def test_resume_restores_the_loss_scale_and_continues_exactly(small_corpus, tmp_path):
    kw = dict(layers=2, dropout=0.1)
    straight = make(small_corpus, tmp_path / "a", **kw)
    for _ in range(30):
        straight.train_step()
    expected = straight.collect()

    first = make(small_corpus, tmp_path / "b", **kw)
    for _ in range(20):  # past the skipped steps: the scale found is in the checkpoint
        first.train_step()
    got = first.collect()
    assert any(r.skipped for r in got) and not got[-1].skipped
    path = first.save("manual")
    assert ckpt_io.load(path)["scaler"]["scale"] == first.scaler.get_scale() < SCALED.init_scale

    resumed = make(small_corpus, tmp_path / "c", seed=999, **kw)
    resumed.load_state_dict(ckpt_io.load(path))
    for _ in range(10):
        resumed.train_step()
    got += resumed.collect()
    assert [r.skipped for r in got] == [r.skipped for r in expected]  # a fresh scale would skip again
    assert [r.loss for r in got] == pytest.approx([r.loss for r in expected], abs=1e-6)
    assert resumed.scaler.get_scale() == straight.scaler.get_scale()


def test_a_rollback_restores_the_loss_scale_of_the_good_state(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "run")
    for _ in range(20):
        t.train_step()
    t.collect()
    snap, scale = t.snapshot(), t.scaler.get_scale()
    t.scaler.update(new_scale=1.0)
    t.restore(snap)
    assert t.scaler.get_scale() == scale


def test_a_loss_scaled_step_never_waits_for_the_device(small_corpus, tmp_path, monkeypatch):
    """Reading a value back is a host sync on a GPU: a step must queue its work and return,
    skipped or not (the optimiser is fused, as on CUDA, where its step counts live on the device)."""
    t = make(small_corpus, tmp_path / "run")
    t.train_step()  # the first step sets up the optimiser's state

    def read_back(*args, **kw):
        raise AssertionError("a value was read back from the device during a step")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, read_back)
    for _ in range(3):
        t.train_step()
    monkeypatch.undo()
    assert len(t.collect()) == 4


def test_the_scaler_needs_a_fused_optimiser_or_it_syncs(small_corpus, tmp_path, monkeypatch):
    """Why the trainer's optimiser is fused with loss scaling: otherwise the scaler reads its
    overflow flag back on the host every step (the test above would fail)."""
    t = make(small_corpus, tmp_path / "run")
    t.optimizer = torch.optim.AdamW(t.model.parameters(), foreach=True)
    reads: list = []
    real = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(1) or real(self))
    t.train_step()
    assert reads


# What each precision leaves in a checkpoint: fp32 master weights (autocast never changes them),
# the precision's name and, with loss scaling, the scaler's state. The bf16 run computes in fp32
# here: oneDNN's bf16 LSTM fails at some shapes on CPUs without bf16 hardware.
PRECISIONS = [
    pytest.param(dataclasses.replace(bf16("test"), autocast=None), id="bf16"),
    pytest.param(SCALED, id="fp16"),
    pytest.param(fp32("test"), id="fp32"),
]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_checkpoint_of_any_precision_loads_samples_and_resumes_on_a_cpu(small_corpus, tmp_path, precision):
    t = make(small_corpus, tmp_path / "run", precision=precision)
    for _ in range(25):
        t.train_step()
    t.collect()
    path = t.save("manual")
    assert ckpt_io.load(path)["precision"] == precision.name
    assert ("scaler" in ckpt_io.load(path)) == precision.loss_scaling

    model, vocab, _ = load_for_inference(path, "cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # sampling is fp32 whatever the training precision: the trainer's sample is the loaded model's
    from rnn_tui.core.sampling import generate

    text = generate(model, vocab, 80, temperature=0.8, top_k=0, prime="", seed=5, record=0).text
    assert len(text) == 80 and t.sample(80, temperature=0.8, top_k=0, prime="", seed=5).text == text

    resumed = build_trainer(
        TrainRequest(resume=str(path), overrides={"device": "cpu"}, corpus_file=small_corpus, runs_dir=tmp_path)
    )
    assert resumed.precision.name == cpu_auto_precision() and resumed.scaler is None and resumed.step == 25
    resumed.train_step()
    (row,) = resumed.collect()
    assert row.step == 26 and row.loss == row.loss


def test_a_run_started_with_explicit_fp16_resumes_on_a_cpu_when_told_auto(small_corpus, tmp_path):
    t = Trainer(
        tiny_config(precision="fp16"), read_corpus(small_corpus), run=RunDir(tmp_path / "run"), precision=SCALED
    )
    t.train_step()
    t.run.write_config(t.config_record())  # a run directory, so the resumed run goes on in it
    path = t.save("manual")
    request = TrainRequest(resume=str(path), overrides={"device": "cpu"}, corpus_file=small_corpus)
    with pytest.raises(ConfigError, match="--precision fp16 needs a CUDA GPU.*use --precision auto.* or fp32$"):
        build_trainer(request)
    request.overrides["precision"] = "auto"
    assert build_trainer(request).precision.name == cpu_auto_precision()


def test_a_scaler_that_keeps_skipping_is_divergence(small_corpus, tmp_path):
    """Gradients that overflow at every scale would take the scale to 0 and train on in silence."""
    from rnn_tui.core.session import MAX_SKIPPED_IN_A_ROW

    t = make(small_corpus, tmp_path / "run", max_steps=120)
    backward_passes = []

    def overflow_for_a_while(g):
        backward_passes.append(1)
        return g * float("inf") if 20 < len(backward_passes) <= 20 + MAX_SKIPPED_IN_A_ROW + 1 else g

    t.model.head.bias.register_hook(overflow_for_a_while)
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0, snapshot_every_s=0.0).run()
    assert done.reason == "max-steps" and done.step == 120
    (warning,) = notices(seen, "warning")
    last_good = next(r["step"] for r in t.run.read_metrics() if r.get("skipped") and r["step"] > 20) - 1
    assert (
        f"the gradients overflowed at every loss scale ({MAX_SKIPPED_IN_A_ROW + 1} steps skipped in a row)" in warning
    )
    assert f"went back to step {last_good}" in warning  # before the run of skipped steps, not inside it
    assert t.lr_scale == 0.5


def test_a_checkpoint_whose_carried_state_is_bf16_resumes_in_fp32(small_corpus, tmp_path):
    """A bf16 run on one CPU resumed on another without bf16 instructions (or with --precision
    fp32): the carried hidden state saved in bf16 (as runs of the first CPU bf16 build did) used
    to crash the fp32 LSTM in oneDNN at the first step."""
    t = make(small_corpus, tmp_path / "run", precision=fp32("test"))
    for _ in range(3):
        t.train_step()
    t.collect()
    t.run.write_config(t.config_record())
    path = t.save("manual")
    ck = ckpt_io.load(path)
    ck["hidden"] = [h.to(torch.bfloat16) for h in ck["hidden"]]
    ckpt_io.save_atomic(ck, path)
    resumed = build_trainer(
        TrainRequest(resume=str(path), overrides={"precision": "fp32"}, corpus_file=small_corpus, runs_dir=tmp_path)
    )
    assert all(h.dtype == torch.float32 for h in state_tensors(resumed.hidden))
    resumed.train_step()
    (row,) = resumed.collect()
    assert row.step == 4 and row.loss == row.loss


@pytest.mark.skipif(cpu_auto_precision() != "bf16", reason="this CPU has no bf16 instructions")
def test_a_bf16_run_on_a_cpu_carries_and_saves_its_state_in_fp32_and_resumes_in_fp32(small_corpus, tmp_path):
    t = Trainer(tiny_config(), read_corpus(small_corpus), run=RunDir(tmp_path / "run"))
    assert t.precision.name == "bf16" and t.model.head_in_fp32
    for _ in range(3):
        t.train_step()
    t.collect()
    assert all(h.dtype == torch.float32 for h in state_tensors(t.hidden))
    t.run.write_config(t.config_record())
    path = t.save("manual")
    assert all(h.dtype == torch.float32 for h in ckpt_io.load(path)["hidden"])
    request = TrainRequest(resume=str(path), overrides={"precision": "fp32"}, corpus_file=small_corpus)
    resumed = build_trainer(request)
    assert resumed.precision.name == "fp32"
    resumed.train_step()
    (row,) = resumed.collect()
    assert row.step == 4 and row.loss == row.loss
