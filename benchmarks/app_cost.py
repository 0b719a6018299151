"""What watching costs: training speed inside the running app against the same trainer with no UI.

Both sides run the trainer in its own process behind the same ``ProcessLink``; the only difference
is the app in this process (Textual's headless driver: every widget live, the loss plot redrawing,
a sample and a heatmap every few seconds, the stats panel updating). Rounds alternate.
Key-press latency is measured in a real terminal by benchmarks/key_latency.py (Pilot's own
waiting would dominate a measurement made here).

    python -m benchmarks.app_cost                      # 2x256, 3 rounds of 25 s
    python -m benchmarks.app_cost --seconds 5 --rounds 1 --hidden 64
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import median, table
from rnn_tui.core import events as ev
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.host.links import ProcessLink
from rnn_tui.host.request import TrainRequest


class MeasuringLink(ProcessLink):
    """Counts training chars and training seconds from the trainer's own Progress events."""

    def __init__(self, request):
        super().__init__(request)
        self.chars = 0
        self.train_s = 0.0
        self.first_progress: float | None = None
        self.chars_per_step = request.overrides["batch_size"] * request.overrides["seq_len"]

    def poll(self, limit: int = 1000):
        got = super().poll(limit)
        for e in got:
            if isinstance(e, ev.Progress) and e.chars_per_s > 0:
                if self.first_progress is None:
                    self.first_progress = time.monotonic()  # skip start-up and the first steps
                    continue
                chars = len(e.steps) * self.chars_per_step
                self.chars += chars
                self.train_s += chars / e.chars_per_s
        return got

    def rate(self) -> float:
        return self.chars / self.train_s if self.train_s else 0.0

    def measuring_for(self) -> float:
        # (at least one measured Progress: on a loaded machine the next may come late)
        return 0.0 if self.first_progress is None or not self.train_s else time.monotonic() - self.first_progress

    def stop(self) -> None:
        self.send(ev.Stop(save=False))
        self.join(60)
        self.close()


def headless_round(request, seconds: float) -> float:
    link = MeasuringLink(request)
    link.start()
    while link.measuring_for() < seconds:
        link.poll()
        time.sleep(0.1)
    link.stop()
    return link.rate()


async def app_round(request, seconds: float, size=(120, 40)) -> float:
    """The app as a person watches it: every panel live, samples and heatmaps arriving."""
    from rnn_tui.ui.app import RnnTuiApp

    link = MeasuringLink(request)
    link.start()
    app = RnnTuiApp(link)
    async with app.run_test(size=size) as pilot:
        while link.measuring_for() < seconds:
            await pilot.pause(0.5)
        link.stop()
        await pilot.pause(0.2)
    return link.rate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sample-every", type=float, default=3.0)
    args = ap.parse_args()
    request = TrainRequest(
        corpus_file=bundled_corpora()["tinyshakespeare"],
        runs_dir=__import__("pathlib").Path("/tmp/rnn-tui-bench-runs"),
        overrides=dict(
            hidden=args.hidden,
            layers=args.layers,
            batch_size=args.batch,
            device="cpu",
            sample_every_s=args.sample_every,
            eval_every=100_000,
            eval_every_minutes=0,
            save_every_minutes=60,
        ),
    )
    headless, in_app, ratios = [], [], []
    for r in range(args.rounds):
        order = ["headless", "app"] if r % 2 == 0 else ["app", "headless"]
        got = {}
        for which in order:
            if which == "headless":
                got[which] = headless_round(request, args.seconds)
            else:
                got[which] = asyncio.run(app_round(request, args.seconds))
        headless.append(got["headless"])
        in_app.append(got["app"])
        ratios.append(got["app"] / got["headless"])
        print(
            f"round {r + 1}: headless {got['headless']:,.0f} chars/s, app {got['app']:,.0f} chars/s, "
            f"ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print()
    rows = [
        [
            f"training in the app / headless ({args.layers}x{args.hidden} B{args.batch})",
            f"{median(ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})",
            "≥ 0.97",
        ],
    ]
    print(table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
