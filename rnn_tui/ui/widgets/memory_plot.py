"""The explorer's memory view: how far back the model's prediction depends on its input.

Two curves against k, the distance back in characters (log scale): the size of the gradient of
the loss at a position with respect to the input k characters earlier, and how much the predicted
distribution changes (total variation) when that character is replaced, both averaged over
positions of the probe and shown relative to their value at k = 1 (log scale). The training
window (``--seq-len``) is marked.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text

from rnn_tui.core import events as ev
from rnn_tui.ui import plot_text as pt

HELP = (
    "How much the prediction of the next character depends on the character k places back: "
    "the size of the gradient of the loss with respect to that input, and how far the predicted "
    "distribution moves when that character is replaced, averaged over the probe and relative to "
    "k = 1. Training backpropagates through only --seq-len characters (the dotted line), so the "
    "gradient curve shows what the model can learn to remember, and the replaced-character curve "
    "how far back its hidden state actually reaches."
)
FLOOR = -6.0  # log10 of the smallest relative value drawn


def relative_log10(values: list[float]) -> np.ndarray:
    """log10(value / value at k = 1), floored at FLOOR (0 and below: the floor)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v) or not v[0] > 0:
        return np.full(len(v), FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.where(v > 0, v / v[0], 0.0))
    out[~np.isfinite(out)] = FLOOR
    return np.maximum(out, FLOOR)


def reach(values: list[float], fraction: float = 0.01) -> int | None:
    """The last k at which the curve is still at least ``fraction`` of its value at k = 1."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v) or not v[0] > 0:
        return None
    above = np.flatnonzero(v >= fraction * v[0])
    return int(above[-1]) + 1 if len(above) else None


class MemoryPlot(pt.ExplorerChart):
    def summary(self) -> str:
        r = self.result
        if r is None:
            return ""
        g, f = reach(r.memory_grad), reach(r.memory_flip)
        say = lambda k: "-" if k is None else f"{k}"  # noqa: E731
        return f"above 1% of k=1 up to k = {say(g)} (gradient), {say(f)} (replaced); window {r.seq_len}"

    def draw(self, r: ev.Explored, width: int, height: int) -> Text:
        colors = pt.theme_colors(
            self,
            {"grad": ("plot-train-smooth", "#87d7ff"), "flip": ("plot-val", "#ffaf5f"), "mark": ("warning", "#f2c14e")},
        )
        k = np.asarray(r.memory_k, dtype=np.float64)
        x = np.log10(k)
        grad, flip = relative_log10(r.memory_grad), relative_log10(r.memory_flip)
        legend = Text(no_wrap=True, overflow="crop")
        legend.append("⣿", style=colors["grad"].hex6)
        legend.append(" gradient  ")
        legend.append("⣿", style=colors["flip"].hex6)
        legend.append(" replaced character  ")
        legend.append("┊", style=colors["mark"].hex6)
        legend.append(f" --seq-len {r.seq_len}   ")
        legend.append("relative to k = 1, log", style="dim")
        fig = self.figure
        pt.start(fig, width, height - 1, colors["text"])
        marker = pt.plotext.marker
        fig.draw(fig.signal(x.tolist(), grad.tolist(), marker=marker("braille", pt.rgb(colors["grad"]))).lines())
        fig.draw(fig.signal(x.tolist(), flip.tolist(), marker=marker("braille", pt.rgb(colors["flip"]))).lines())
        if 1 <= r.seq_len <= k[-1]:
            xs = math.log10(r.seq_len)
            fig.draw(fig.segment([xs, xs], [FLOOR, 0.0], marker=marker("┊", pt.rgb(colors["mark"]))))
        top = int(math.log10(k[-1])) if len(k) else 0
        fig.ruler("x").lim(0.0, max(0.3, float(x[-1]) if len(x) else 1.0))
        fig.ruler("x").ticks([float(i) for i in range(top + 1)], [str(10**i) for i in range(top + 1)])
        fig.ruler("y").lim(FLOOR - 0.1, 0.3)
        ys = [0, -2, -4, -6]
        fig.ruler("y").ticks([float(y) for y in ys], ["1", "1e-2", "1e-4", "1e-6"])
        fig.label("k: characters back", axis="x")
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(legend)
        out.append("\n")
        out.append_text(pt.finish(fig))
        return out
