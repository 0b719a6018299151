"""Data parallelism on the CPU (gloo): one process against two, side by side in one run.

On a machine of C cores, one process trains with C threads on the global batch; two processes
(``--nproc 2``) each train on half of it with C // 2 threads and average their gradients every
step. On two cores that moves the work around, it does not add any: this measures what it costs.

- chars/s of 1 process against 2 at the same global batch (the default model, 2x256, 32 streams);
- the communication share of a step of the 2 processes: the step with its gradient average
  against the same step without it (DDP's ``no_sync``);
- what the processes' agreement on each turn of the loop costs (one small all-reduce), and how
  many steps go between two turns at this speed;
- memory for the corpus: how much the processes' proportional set size (PSS) grows when they map
  the shared encoding of a generated corpus, against its size (1.0: one copy for all).

    python -m benchmarks.ddp_cpu                  # 2x256, batch 32 in all, 60 steps per measure
    python -m benchmarks.ddp_cpu --hidden 32 --steps 10 --corpus-mb 2   # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import hardware, table
from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.threads import usable_cores
from rnn_tui.core.trainer import Trainer

WARMUP = 3
ROUNDS = 4


def config(args: argparse.Namespace, batch: int, threads: int | None) -> TrainConfig:
    return TrainConfig(
        layers=2, hidden=args.hidden, batch_size=batch, seq_len=100, device="cpu", threads=threads, dropout=0.0
    )


def timed_steps(trainer: Trainer, steps: int, warmup: int = WARMUP) -> float:
    for _ in range(warmup):
        trainer.train_step()
    trainer.collect()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    trainer.collect()
    return time.perf_counter() - t0


def one_process(args: argparse.Namespace) -> tuple[float, int]:
    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])
    trainer = Trainer(config(args, args.batch, None), corpus)  # the threads the tuner measures best
    tuner = trainer.thread_tuner
    seconds = timed_steps(trainer, args.steps, warmup=30)  # (the tuner's trials are over by then)
    return args.steps * args.batch * 100 / seconds, tuner.threads if tuner else 0


def each_process(args: argparse.Namespace) -> dict:
    """(in each of the processes) chars/s of the run, a step with and without the gradient
    average, the cost of one turn's agreement."""
    from rnn_tui.core.distributed import join, shared_corpus

    cluster = join()
    try:
        corpus = shared_corpus(cluster, bundled_corpora()["tinyshakespeare"], "char", None)
        per = args.batch // cluster.world
        trainer = Trainer(config(args, per, max(1, usable_cores() // cluster.world)), corpus, cluster=cluster)
        trainer.distribute()
        # with and without the gradient average (DDP's no_sync), alternately: this machine is noisy
        per_round = max(2, args.steps // ROUNDS)
        timed_steps(trainer, 0)
        synced, alone = [], []
        for _ in range(ROUNDS):
            synced.append(timed_steps(trainer, per_round, warmup=1) / per_round)
            with trainer.train_model.no_sync():  # type: ignore[operator]
                alone.append(timed_steps(trainer, per_round, warmup=1) / per_round)
        turns = 200
        t0 = time.perf_counter()
        for _ in range(turns):
            cluster.share([0.0] * 11, [0.0])
        turn_s = (time.perf_counter() - t0) / turns
        step_s, alone_s = statistics.median(synced), statistics.median(alone)
        return {"chars_per_s": args.batch * 100 / step_s, "step_s": step_s, "alone_s": alone_s, "turn_s": turn_s}
    finally:
        cluster.close()


def pss_kb(only: str = "") -> int:
    """This process's proportional set size (a page mapped by k processes counts 1/k in each),
    of all its memory, or of the mappings whose line names ``only``."""
    if not only:
        with open("/proc/self/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if "-" in line.split(" ", 1)[0]:  # a mapping's first line
                inside = only in line
            elif inside and line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def corpus_memory(path: str) -> tuple[int, int]:
    """(in each process) its PSS of the mapped corpus, and how much its whole PSS grew."""
    from rnn_tui.core.distributed import join, shared_corpus

    cluster = join()
    try:
        before = pss_kb()
        corpus = shared_corpus(cluster, Path(path), "byte", None)
        int(corpus.data[::4096].sum())  # touch every page
        cluster.exchange(None)  # every process has touched them: each one's share is settled
        return pss_kb("rnn-tui-"), pss_kb() - before
    finally:
        cluster.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32, help="the global batch (each of 2 processes: half)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--corpus-mb", type=int, default=256)
    args = ap.parse_args()
    from rnn_tui.host.launch import _entry, elastic_launch_compat

    print(hardware())
    # alternately, as this machine is noisy: 1 process, 2, 1 again
    first, threads = one_process(args)
    lead = elastic_launch_compat(2, "SIGTERM")(_entry, each_process, args)[0]
    again, _ = one_process(args)
    one = (first + again) / 2
    print()
    rows = [
        [
            f"chars/s, 2x{args.hidden}, {args.batch} streams in all",
            f"{one:,.0f} ({threads} thread{'s' if threads != 1 else ''})",
            f"{lead['chars_per_s']:,.0f} ({max(1, usable_cores() // 2)} thread(s) each)",
            f"{lead['chars_per_s'] / one:.2f}",
        ],
        ["communication share of a step (2 processes)", "", f"{1 - lead['alone_s'] / lead['step_s']:.1%}", ""],
        ["a turn's agreement (one all-reduce of 12 numbers)", "", f"{lead['turn_s'] * 1e6:,.0f} µs", ""],
        ["steps between turns at this speed", "1", f"{max(1, min(64, int(0.05 / lead['step_s'])))}", ""],
    ]
    print(table(rows, ["what", "1 process", "2 processes", "2 / 1"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(args.corpus_mb):
                f.write(os.urandom(1 << 20))
        found = elastic_launch_compat(2, "SIGTERM")(_entry, corpus_memory, str(path))
    mapped = sum(f[0] for f in found.values()) / 1024
    grew = sum(f[1] for f in found.values()) / 1024
    print()
    what = f"{args.corpus_mb} MB corpus, 2 processes"
    print(
        table(
            [[what, f"{mapped:,.0f} MB", f"{grew:,.0f} MB", f"{mapped / args.corpus_mb:.2f}", "≈ 1"]],
            ["what", "PSS of the mapped corpus, both", "PSS growth, both", "copies", "target"],
        )
    )
    return 0


if __name__ == "__main__":
    torch.set_num_threads(usable_cores())
    raise SystemExit(main())
