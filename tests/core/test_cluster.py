"""The parts of data parallelism that need no second process: the striped rows each process
reads, the turn the processes agree on, a checkpoint of several processes resumed on one, the
options the processes must share, a launch refused before it starts, NVML's absence without CUDA,
and a run of one process that never touches torch.distributed's launcher or process group."""

from __future__ import annotations

import ast
import queue
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core.batches import StripedBatches
from rnn_tui.core.cluster import Solo
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.gpus import GpuMonitor
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session, Turn
from rnn_tui.core.trainer import Trainer
from rnn_tui.host.launch import check_launch
from rnn_tui.host.ranks import differences, options_of
from rnn_tui.host.request import LaunchError, TrainRequest
from tests.helpers import tiny_config


def test_each_process_reads_its_own_rows_of_the_global_batch():
    data = np.arange(10_000, dtype=np.uint16)
    whole = StripedBatches(data, 8, 16)
    halves = [StripedBatches(data, 8, 16, rows=slice(r * 4, (r + 1) * 4)) for r in range(2)]
    assert len(halves[0]) == len(whole)
    for i in (0, 5, len(whole) - 1):
        x, y = whole.get(i, 3)
        parts = [h.get(i, 3) for h in halves]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


def test_a_turn_travels_as_numbers_and_comes_back_the_same():
    turn = Turn(stop=True, stop_save=False, sample=True, evaluate=True, clock=123.25, every=7)
    assert Turn.from_values(turn.values()) == turn
    assert Turn.from_values(Turn().values()) == Turn()


def checkpoint_of_two_processes(small_corpus, tmp_path, steps: int = 6) -> dict:
    """A checkpoint as two processes of batch 4 leave it: a one-process run of batch 8 has the
    same streams, so its checkpoint, marked as two processes', is one."""
    t = Trainer(tiny_config(batch_size=8, dropout=0.0), read_corpus(small_corpus), run=RunDir(tmp_path / "two"))
    for _ in range(steps):
        t.train_step()
    ck = ckpt_io.load(t.save("manual"))
    ck["world_size"] = 2
    ck["rng_ranks"] = [ck["rng"], ck["rng"]]
    return ck


def test_a_checkpoint_of_two_processes_carries_on_on_one_with_the_same_global_batch(small_corpus, tmp_path):
    ck = checkpoint_of_two_processes(small_corpus, tmp_path)
    one = Trainer(tiny_config(batch_size=8, dropout=0.0), read_corpus(small_corpus), run=RunDir(tmp_path / "one"))
    one.load_state_dict(ck)
    assert torch.equal(one.hidden[0], ck["hidden"][0])  # every stream's state, in the same rows
    assert one.resume_note == (
        "this run trained on 2 processes and resumes on 1 process: "
        "the global batch is the same (8 streams), so the hidden state carries on"
    )


def test_a_checkpoint_of_two_processes_on_one_of_another_batch_starts_from_zero(small_corpus, tmp_path):
    ck = checkpoint_of_two_processes(small_corpus, tmp_path)
    one = Trainer(tiny_config(batch_size=4, dropout=0.0), read_corpus(small_corpus), run=RunDir(tmp_path / "one"))
    one.load_state_dict(ck)
    assert not one.hidden[0].any() and one.hidden[0].shape[1] == 4
    assert "the stripes are cut anew for a global batch of 4 streams (was 8)" in (one.resume_note or "")
    assert "hidden state starts from zero" in (one.resume_note or "")
    # the same share of the epoch: twice the batches per epoch, twice the batch index
    assert one.batch_index == min(len(one.batches) - 1, ck["batch_index"] * len(one.batches) // ck["batches_per_epoch"])
    seen: list = []  # the note is said once when the run starts
    one.cfg.max_steps = one.step + 2
    Session(one, queue.Queue(), seen.append).run()
    notes = [e.message for e in seen if isinstance(e, ev.Notice) and "resumes on 1 process" in e.message]
    assert len(notes) == 1


def test_options_that_differ_between_the_processes_are_named():
    a = TrainRequest(corpus_file=None, overrides={"hidden": 64, "lr": 0.01})
    b = TrainRequest(corpus_file=None, overrides={"hidden": 32, "lr": 0.01})
    assert differences([options_of(a), options_of(a)]) is None
    line = differences([options_of(a), options_of(a), options_of(b)])
    assert line == (
        "the processes were started with different options: --hidden is 64 in process 0 and 32 in "
        "process 2 (start every process with the same command)"
    )
    c = TrainRequest(corpus_file=None, overrides={"hidden": 64, "lr": 0.01, "dropout": 0.0})
    assert "--dropout is (not given) in process 0 and 0.0 in process 1" in (
        differences([options_of(a), options_of(c)]) or ""
    )


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"device": "cuda:1"}, "--device cuda:1 names one GPU"),
        ({"device": "mps"}, "MPS has no distributed backend"),
        ({"device": "cuda"}, "no CUDA GPU is available here"),
    ],
)
def test_a_launch_that_cannot_work_is_refused_before_it_starts(overrides, words):
    with pytest.raises(LaunchError, match=words):
        check_launch(TrainRequest(overrides=overrides, nproc=2))


def test_a_port_in_use_is_refused_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LaunchError, match=f"--master-port {port} is in use; choose another"):
            check_launch(TrainRequest(overrides={"device": "cpu"}, nproc=2, master_port=port))


def test_no_gpu_counters_without_cuda(small_corpus, tmp_path):
    assert GpuMonitor(torch.device("cpu")).sample() is None
    t = Trainer(tiny_config(max_steps=3), read_corpus(small_corpus), run=RunDir(tmp_path / "run"))
    seen: list = []
    session = Session(t, queue.Queue(), seen.append, post_interval=0.0)
    session.run()
    assert session.gpu_monitor is None
    assert [e.gpus for e in seen if isinstance(e, ev.Progress)] == [None] * 3


def test_one_process_never_starts_torch_distributed(small_corpus, tmp_path):
    """No launcher, no process group, not even the modules that would make one."""
    code = f"""
import queue, sys
from pathlib import Path
from rnn_tui.host.request import TrainRequest
from rnn_tui.host.serve import serve_session
done = serve_session(TrainRequest(corpus_file=Path({str(small_corpus)!r}), runs_dir=Path({str(tmp_path)!r}),
    overrides=dict(max_steps=3, batch_size=4, seq_len=16, layers=1, hidden=16, embed=8, device="cpu", threads=1)),
    queue.Queue(), lambda e: None)
import torch.distributed as dist
print([done.reason, dist.is_initialized(), sorted(m for m in sys.modules if m in (
    "rnn_tui.core.distributed", "rnn_tui.host.launch", "rnn_tui.host.ranks",
    "torch.distributed.launcher.api", "torch.distributed.elastic.agent.server.api"))])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert ast.literal_eval(out.stdout.strip().splitlines()[-1]) == ["max-steps", False, []]


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(LaunchError, match=r"--nproc 4: this machine has 2 CUDA GPUs and each process takes one"):
        check_launch(TrainRequest(nproc=4))
    check_launch(TrainRequest(nproc=2))  # one each: fine
    check_launch(TrainRequest(nproc=2, overrides={"device": "cpu"}))  # CPU processes: as many as cores


def test_more_cpu_processes_than_cores_is_refused(monkeypatch):
    from rnn_tui.core import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    check_launch(TrainRequest(nproc=4, overrides={"device": "cpu"}))
    with pytest.raises(LaunchError, match=r"--nproc 1000: CPU processes beyond this machine's 4 cores"):
        check_launch(TrainRequest(nproc=1000, overrides={"device": "cpu"}))


def test_nproc_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LaunchError, match="under torchrun leave it out"):
        TrainRequest(nproc=2).check()


class TwoOnThisMachine(Solo):
    """One process as the trainer sees it, but with another beside it on this machine."""

    local_world = 2


def test_cpu_processes_share_the_cores(small_corpus, tmp_path):
    from rnn_tui.core.threads import candidates, usable_cores

    t = Trainer(tiny_config(threads=None), read_corpus(small_corpus), cluster=TwoOnThisMachine())
    assert t.thread_tuner is not None
    assert t.thread_tuner.options == candidates(max(1, usable_cores() // 2))
