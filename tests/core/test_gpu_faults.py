"""GPU faults a CPU can reproduce: a checkpoint saved on a GPU, loaded on a machine without one;
out of memory in the middle of a run."""

from __future__ import annotations

import queue

import pytest
import torch

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer, load_for_inference
from rnn_tui.host.request import TrainRequest, build_trainer
from tests.helpers import tiny_config


def make(corpus, path, **kw):
    return Trainer(tiny_config(**kw), read_corpus(corpus), run=RunDir(path / "run"))


def test_a_gpu_saved_checkpoint_loads_and_resumes_on_a_cpu(small_corpus, tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the file would load anyway")
    t = make(small_corpus, tmp_path)
    for _ in range(5):
        t.train_step()
    t.collect()
    # torch.save records where each tensor lived; make it record a GPU, as a CUDA run's file does
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        path = t.save("manual")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # what a loader without map_location would hit
    model, vocab, ck = load_for_inference(path, "cpu")
    assert next(model.parameters()).device.type == "cpu" and ck["step"] == 5
    resumed = build_trainer(
        TrainRequest(
            corpus_file=small_corpus, resume=str(path), overrides={"device": "cpu"}, runs_dir=tmp_path / "runs"
        )
    )
    assert resumed.step == 5
    resumed.train_step()
    assert resumed.collect()[0][0] == 6


def test_out_of_memory_stops_with_advice_and_keeps_the_checkpoint(small_corpus, tmp_path, monkeypatch):
    t = make(small_corpus, tmp_path)
    for _ in range(3):
        t.train_step()
    saved = t.save("manual")
    before = saved.read_bytes()
    real_step = t.train_step
    calls = {"n": 0}

    def step_then_oom():
        calls["n"] += 1
        if calls["n"] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real_step()

    monkeypatch.setattr(t, "train_step", step_then_oom)
    seen: list = []
    done = Session(t, queue.Queue(), seen.append).run()
    assert done.reason == "error"
    assert "out of memory" in done.error and "--batch-size" in done.error and "checkpoint is kept" in done.error
    assert any(isinstance(e, ev.Notice) and e.level == "error" for e in seen)
    assert saved.read_bytes() == before  # never replaced by a half-done state
    assert ckpt_io.load(saved)["step"] == 3


def out_of_memory(*args, **kw):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_at_start_is_one_line_of_advice_and_leaves_no_run(small_corpus, tmp_path, monkeypatch):
    from rnn_tui.core.model import CharRNN
    from rnn_tui.host.serve import serve_session

    monkeypatch.setattr(CharRNN, "to", out_of_memory)  # the model does not fit on the device
    seen: list = []
    done = serve_session(TrainRequest(corpus_file=small_corpus, runs_dir=tmp_path / "runs"), queue.Queue(), seen.append)
    assert done.reason == "refused" and "\n" not in done.error
    assert done.error.startswith("out of memory (CUDA out of memory.") and "--batch-size" in done.error
    assert not list((tmp_path / "runs").iterdir())


def test_out_of_memory_when_resuming_keeps_the_checkpoint(small_corpus, tmp_path, monkeypatch):
    from rnn_tui.host.serve import serve_session

    t = make(small_corpus, tmp_path)
    t.train_step()
    t.run.write_config(t.config_record())
    saved = t.save("manual")
    before = saved.read_bytes()
    # moving the optimiser's state onto the device runs out: not a damaged checkpoint
    monkeypatch.setattr(torch.optim.AdamW, "load_state_dict", out_of_memory)
    done = serve_session(TrainRequest(resume=str(saved)), queue.Queue(), lambda e: None)
    assert done.reason == "refused" and done.error.startswith("out of memory (CUDA out of memory.")
    assert "do not fit this model" not in done.error and "the last checkpoint is kept" in done.error
    assert saved.read_bytes() == before


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_parameter_count_is_known_before_any_memory_is_taken(cell):
    from rnn_tui.core.model import CharRNN, ModelConfig, parameter_count

    cfg = ModelConfig(vocab_size=65, cell=cell, layers=3, hidden=48, embed=16)
    assert parameter_count(cfg) == CharRNN(cfg).num_params()


def test_a_model_too_big_for_the_memory_is_refused_in_one_line_before_it_is_built(small_corpus, monkeypatch):
    """Asking for 4 billion parameters on a machine with 23 GB got the trainer killed by the
    kernel after minutes of swapping; now it is one line, at once."""
    from rnn_tui.core import trainer as trainer_module
    from rnn_tui.core.errors import OutOfMemory

    monkeypatch.setattr(trainer_module, "available_bytes", lambda device: 2 * 2**30)
    built = []
    monkeypatch.setattr(trainer_module, "CharRNN", lambda cfg: built.append(cfg))
    with pytest.raises(OutOfMemory, match=r"needs about .* GB to train .* and 2.0 GB is free.*smaller --hidden"):
        Trainer(tiny_config(hidden=8192, layers=8), read_corpus(small_corpus))
    assert not built
