"""What the explorer costs: the time to compute every view, and training speed with it open.

1. Every view of the explorer (all layers' states and gates, the cell finder, top-5 guesses, gate
   saturation, both memory curves) for a 2,000-character probe of Tiny Shakespeare, on the CPU,
   from a 2x512 model (and the default 2x256). Median of several runs after one warm-up.
2. Training speed in the live app with the explorer screen open and refreshing, against the same
   app on its main screen. Both run the trainer in its own process behind the same link, as
   ``rnn-tui`` does; the speed is steps per wall-clock second (the explorer's passes run between
   steps, so they show there). Rounds alternate.

    python -m benchmarks.explorer_speed                    # 2x512 timing; 2x256 app, 3 rounds of 60 s
    python -m benchmarks.explorer_speed --quick            # toy sizes: checks that it runs
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from benchmarks.common import hardware, table
from rnn_tui.core import events as ev
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.host.links import ProcessLink
from rnn_tui.host.request import TrainRequest


def time_views(hidden: int, layers: int, chars: int, runs: int) -> tuple[float, float]:
    """(median, min) seconds of explore() on a probe of ``chars``."""
    import torch

    from rnn_tui.core import explore as X
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.model import CharRNN, ModelConfig

    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=corpus.vocab.size, layers=layers, hidden=hidden, dropout=0.1))
    ids = X.passage(corpus.split(0.1)[1], chars, X.newline_index(corpus.vocab))
    X.explore(model, corpus.vocab, ids)  # warm-up: oneDNN builds its kernels for these shapes once
    times = []
    for _ in range(runs):
        times.append(X.explore(model, corpus.vocab, ids).seconds)
    return statistics.median(times), min(times)


class StepClock(ProcessLink):
    """Training steps per wall-clock second, from the trainer's Progress events."""

    def __init__(self, request):
        super().__init__(request)
        self.marks: list[tuple[float, int]] = []
        self.answers = 0

    def poll(self, limit: int = 1000):
        got = super().poll(limit)
        for e in got:
            if isinstance(e, ev.Progress) and e.steps:
                self.marks.append((time.monotonic(), e.step))
            elif isinstance(e, ev.Explored):
                self.answers += 1
        return got

    def measuring_for(self, skip: int = 3) -> float:
        return 0.0 if len(self.marks) <= skip else self.marks[-1][0] - self.marks[skip][0]

    def rate(self, skip: int = 3) -> float:
        (t0, s0), (t1, s1) = self.marks[skip], self.marks[-1]
        return (s1 - s0) / (t1 - t0)

    def stop(self) -> None:
        self.send(ev.Stop(save=False))
        self.join(60)
        self.close()


async def app_round(request, seconds: float, explorer_open: bool, size=(120, 40)) -> tuple[float, int]:
    from rnn_tui.ui.app import RnnTuiApp

    link = StepClock(request)
    link.start()
    app = RnnTuiApp(link)
    async with app.run_test(size=size) as pilot:
        if explorer_open:
            await pilot.press("e")
        while link.measuring_for() < seconds:
            await pilot.pause(0.5)
        rate = link.rate()
        link.stop()
        await pilot.pause(0.2)
    return rate, link.answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=512, help="the timed model's width")
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--app-hidden", type=int, default=256, help="the trained model's width in the app rounds")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="the trainer's torch threads in the app rounds (1: on a shared 2-core machine two-thread "
        "steps stall whenever another process runs, a noise far larger than the explorer's cost)",
    )
    ap.add_argument("--quick", action="store_true", help="toy sizes: checks that everything runs")
    args = ap.parse_args()
    if args.quick:
        args.hidden, args.chars, args.runs, args.app_hidden, args.seconds, args.rounds = 32, 300, 1, 32, 3.0, 1
    print(hardware(), flush=True)
    rows = []
    for hidden in sorted({args.hidden, 256} if not args.quick else {args.hidden}, reverse=True):
        med, low = time_views(hidden, 2, args.chars, args.runs)
        target = "< 1 s" if hidden == args.hidden else ""
        rows.append([f"every view, 2x{hidden}, {args.chars:,} chars, CPU (s)", f"{med:.3f} (min {low:.3f})", target])
        print(f"2x{hidden}: median {med:.3f} s, min {low:.3f} s", flush=True)
    request = TrainRequest(
        corpus_file=bundled_corpora()["tinyshakespeare"],
        runs_dir=Path("/tmp/rnn-tui-bench-runs"),
        overrides=dict(
            hidden=args.app_hidden,
            layers=2,
            batch_size=32,
            device="cpu",
            threads=args.threads,
            sample_every_s=15.0,
            eval_every=100_000,
            save_every_minutes=60,
        ),
    )
    ratios, answers = [], []
    for r in range(args.rounds):
        got: dict[bool, float] = {}
        for explorer_open in [True, False] if r % 2 == 0 else [False, True]:
            rate, n = asyncio.run(app_round(request, args.seconds, explorer_open))
            got[explorer_open] = rate
            if explorer_open:
                answers.append(n)
        ratios.append(got[True] / got[False])
        print(
            f"round {r + 1}: explorer closed {got[False]:.2f} steps/s, open {got[True]:.2f} steps/s "
            f"({answers[-1]} refreshes), ratio {ratios[-1]:.3f}",
            flush=True,
        )
    rows.append(
        [
            f"training with the explorer open / closed (2x{args.app_hidden}, in the app, {args.threads} thread)",
            f"{statistics.median(ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})",
            "≥ 0.97",
        ]
    )
    print()
    print(table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
