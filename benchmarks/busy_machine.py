"""Training on a machine that something else is using: the thread choice and the time budget.

1. Threads: with CPU-bound processes taking cores (one per ``--hogs``), the trainer's steps/s with
   its own thread choice (measured, core/threads.py) against every fixed ``--threads`` count, side
   by side in one run. Target: the default never below 0.8 of the best fixed count.
2. Time budget: a ``--max-minutes`` session on a quiet machine that becomes busy halfway; where its
   learning-rate decay ends against the budget. Target: within 5 % of the budget (the schedule
   follows training time, so the decay ends with the budget whatever the load).

    python -m benchmarks.busy_machine                    # 2x256, 20 s per measurement, ~3 minutes
    python -m benchmarks.busy_machine --quick
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import time

from benchmarks.common import hardware, table


def hog(stop) -> None:  # a CPU-bound neighbour: pure Python, one core
    x = 0
    parent = mp.parent_process()  # a benchmark killed outright leaves no neighbour spinning
    while not stop.is_set() and (parent is None or parent.is_alive()):
        for _ in range(100_000):
            x += 1


class Hogs:
    def __init__(self, n: int):
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.procs = [self.ctx.Process(target=hog, args=(self.stop,), daemon=True) for _ in range(n)]

    def __enter__(self) -> Hogs:
        for p in self.procs:
            p.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for p in self.procs:
            if p.pid is not None:  # (the time-budget run starts its neighbours halfway, if ever)
                p.join(5)


def steps_per_s(make_trainer, threads: int | None, seconds: float) -> float:
    """A trainer's training steps per second over ``seconds``, its thread tuner included."""
    trainer = make_trainer(threads)
    t_end = time.monotonic() + seconds
    n = 0
    t0 = time.monotonic()
    while time.monotonic() < t_end:
        s = time.monotonic()
        trainer.train_step()
        if trainer.thread_tuner is not None:
            trainer.thread_tuner.step_done(time.monotonic() - s)
        n += 1
        if n % 8 == 0:
            trainer.collect()
    trainer.collect()
    return n / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hogs", default="0,1", help="numbers of busy neighbours to measure with")
    ap.add_argument("--budget-s", type=float, default=40.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.hidden, args.seconds, args.budget_s = 32, 2.0, 4.0
    from rnn_tui.core import events as ev
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.resources import bundled_corpora
    from rnn_tui.core.session import Session
    from rnn_tui.core.threads import candidates, usable_cores
    from rnn_tui.core.trainer import Trainer

    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])

    def make_trainer(threads: int | None, **kw) -> Trainer:
        return Trainer(TrainConfig(hidden=args.hidden, device="cpu", threads=threads, **kw), corpus)

    print(f"hardware: {hardware()}")
    rows = []
    for n_hogs in (int(h) for h in args.hogs.split(",")):
        with Hogs(n_hogs):
            fixed = {c: steps_per_s(make_trainer, c, args.seconds) for c in candidates(usable_cores())}
            auto = steps_per_s(make_trainer, None, args.seconds)
        best = max(fixed, key=lambda c: fixed[c])
        rows.append(
            [
                f"{n_hogs} busy neighbour(s)",
                ", ".join(f"{c}: {v:.2f}" for c, v in fixed.items()),
                f"{auto:.2f}",
                f"{auto / fixed[best]:.2f}",
                "≥ 0.8",
            ]
        )
    print(table(rows, ["machine", "steps/s with --threads N", "steps/s, default", "default / best fixed", "target"]))

    # the time budget: quiet for half of it, then busy
    trainer = make_trainer(None, max_minutes=args.budget_s / 60, sample_every_s=1e9)
    lrs: list[tuple[float, float]] = []
    hogs = Hogs(usable_cores())

    def on_event(e) -> None:
        if isinstance(e, ev.Progress):
            lrs.append((e.elapsed_s, e.lr))
            if e.elapsed_s >= args.budget_s / 2 and not hogs.procs[0].is_alive() and hogs.procs[0].pid is None:
                hogs.__enter__()

    try:
        Session(trainer, queue.Queue(), on_event, post_interval=0.2).run()
    finally:
        hogs.__exit__()
    floor = trainer.cfg.lr * trainer.cfg.min_lr_ratio
    # (after the peak: the warm-up starts below the floor)
    peak = max(range(len(lrs)), key=lambda i: lrs[i][1]) if lrs else 0
    reached = next((t for t, lr in lrs[peak:] if lr <= floor * 1.02), None)
    end = lrs[-1][0] if lrs else float("nan")
    at = f"{reached / args.budget_s:.1%} of the budget" if reached is not None else "never"
    print(
        table(
            [
                [
                    "--max-minutes run, busy from halfway",
                    f"{trainer.step} steps",
                    at,
                    f"{trainer.schedule_progress:.3f}",
                    f"{end / args.budget_s:.1%}",
                    "floor within 95-105 %",
                ]
            ],
            [
                "what",
                "trained",
                "learning rate at its floor",
                "schedule progress at the end",
                "trained time / budget",
                "target",
            ],
        )
    )


if __name__ == "__main__":
    main()
