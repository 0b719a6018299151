"""Frame time of the two drawn widgets: the loss plot with 100k points, and the hidden-state heatmap.

Each widget fills the screen of a headless Textual app (``App.run_test(size=...)``), at 80x24 and
200x60 (a whole screen is more than the panel either gets in rnn-tui's layout: a worst case).
A frame is what the UI thread does when the widget has new data:

* loss plot: append 50 new steps (about one 2 Hz progress post at full speed), then what its
  1 Hz redraw timer does (``_tick``: mark the new data for drawing), then the paint;
* heatmap: a new probe (2 layers x 160 characters x 256 units, as after every sample), then the
  paint.

The paint is Textual's own path, called synchronously: the compositor collects the dirty region
(which renders the widget's lines: the plot's chart build, downsampling and plotext included),
and the update is encoded into the escape sequences a terminal would get. Only the final write
to the terminal is left out. Reported: mean and p95 per frame, and the widget's own build time.

    python -m benchmarks.render_speed
    python -m benchmarks.render_speed --frames 5 --points 2000 --sizes 80x24
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time

import numpy as np
from textual.app import App, ComposeResult

from benchmarks.common import table
from rnn_tui.ui.widgets.heatmap import HiddenStateHeatmap
from rnn_tui.ui.widgets.loss_plot import LossPlot

FRAME_TARGET_MS = 50.0  # a frame must not hold the UI thread longer than a key press may wait


class One(App):
    """A screen with one widget, nothing else."""

    CSS = "Screen { layout: vertical; }"

    def __init__(self, widget):
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def paint(app: App, widget) -> int:
    """Textual's repaint of ``widget``'s dirty region, synchronously; returns the bytes of output."""
    screen = app.screen
    screen._dirty_widgets.add(widget)  # what the widget's Update message does
    screen._compositor.update_widgets(screen._dirty_widgets)
    screen._dirty_widgets.clear()
    update = screen._compositor.render_update(screen_stack=app._background_screens)
    if update is None:
        return 0
    return len(update.render_segments(app.console).encode("utf-8"))


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)]


async def plot_frames(size: tuple[int, int], points: int, frames: int) -> dict:
    rng = np.random.default_rng(0)
    plot = LossPlot()
    app = One(plot)
    async with app.run_test(size=size) as pilot:
        steps = np.arange(1, points + 1)
        losses = 1.4 + 2.8 * np.exp(-steps / 3000) + rng.normal(0, 0.05, points)
        plot.add_train(steps, losses)
        for s in range(250, points + 1, 250):
            plot.add_val(s, 1.5 + 2.7 * math.exp(-s / 3000))
        plot._tick()
        paint(app, plot)  # first build (plotext set-up) not counted
        await pilot.pause()
        times, builds, sizes = [], [], []
        step = points
        for _ in range(frames):
            new = np.arange(step + 1, step + 51)
            step += 50
            plot.add_train(new, 1.4 + rng.normal(0, 0.05, 50))
            count = plot.render_count
            t0 = time.perf_counter()
            plot._tick()
            sizes.append(paint(app, plot))
            times.append((time.perf_counter() - t0) * 1000)
            assert plot.render_count == count + 1, "the frame did not rebuild the chart"
            builds.append(plot.last_render_ms)
            await pilot.pause()
        return {"times": times, "build": builds, "bytes": sizes, "stored": plot.stored_points}


async def heatmap_frames(size: tuple[int, int], frames: int, hidden: int = 256, chars: int = 160) -> dict:
    rng = np.random.default_rng(0)
    heatmap = HiddenStateHeatmap()
    app = One(heatmap)
    text = ("KING RICHARD II:\nWhat says my lord? the king is come to see\nThe blood of England, " * 3)[:chars]
    async with app.run_test(size=size) as pilot:

        def probe():
            h = np.tanh(rng.normal(0, 1.0, (2, chars, hidden))).astype(np.float16)
            return h.astype(np.float32), (h * 2.5).astype(np.float32)

        h, c = probe()
        heatmap.set_probe(text, h, c, step=1)
        paint(app, heatmap)
        await pilot.pause()
        times, builds, sizes = [], [], []
        for i in range(frames):
            h, c = probe()
            t0 = time.perf_counter()
            heatmap.set_probe(text, h, c, step=i + 2)
            sizes.append(paint(app, heatmap))
            times.append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            heatmap.render_all()  # the widget's own part: rebuild every line
            builds.append((time.perf_counter() - t1) * 1000)
            await pilot.pause()
        return {"times": times, "build": builds, "bytes": sizes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000, help="training steps in the loss plot")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--sizes", default="80x24,200x60")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    for w, h in sizes:
        r = asyncio.run(plot_frames((w, h), args.points, args.frames))
        rows.append(
            [
                f"loss plot, {args.points:,} steps ({r['stored']:,} stored)",
                f"{w}x{h}",
                f"{statistics.mean(r['times']):.1f}",
                f"{p95(r['times']):.1f}",
                f"{statistics.mean(r['build']):.1f}",
                f"{statistics.mean(r['bytes']) / 1024:.1f}",
                f"≤ {FRAME_TARGET_MS:.0f} ms, ≤ 1/s",
            ]
        )
        r = asyncio.run(heatmap_frames((w, h), args.frames))
        rows.append(
            [
                "heatmap, 2x160x256 probe",
                f"{w}x{h}",
                f"{statistics.mean(r['times']):.1f}",
                f"{p95(r['times']):.1f}",
                f"{statistics.mean(r['build']):.1f}",
                f"{statistics.mean(r['bytes']) / 1024:.1f}",
                f"≤ {FRAME_TARGET_MS:.0f} ms, per sample",
            ]
        )
    print(table(rows, ["widget", "screen", "frame mean ms", "frame p95 ms", "widget build ms", "KiB out", "target"]))
    print(
        f"{args.frames} frames each; a frame = new data + Textual's paint of the widget (compositor and "
        f"escape sequences; the terminal write excluded); widget build = its own part of that"
    )


if __name__ == "__main__":
    main()
