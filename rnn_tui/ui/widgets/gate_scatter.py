"""The explorer's gate saturation view (LSTM): for each gate (input, forget, output), one dot per
cell at (fraction of the probe the gate is left-saturated, below 0.1; fraction right-saturated,
above 0.9), coloured by layer, as in Karpathy, Johnson and Fei-Fei (2015), figure 3. A cell near
the top left is a gate almost always open, one on the diagonal toward (0, 0) a gate that
responds to its input; a forget gate at the top remembers."""

from __future__ import annotations

import numpy as np
from rich.text import Text

from rnn_tui.core import events as ev
from rnn_tui.ui import plot_text as pt

GATES = ("input gate", "forget gate", "output gate")
LAYER_COLORS = (("plot-train-smooth", "#87d7ff"), ("plot-val", "#ffaf5f"), ("success", "#57c785"), ("error", "#e5534b"))
TICKS = [0.0, 0.5, 1.0]


class GateScatter(pt.ExplorerChart):
    def draw(self, r: ev.Explored, width: int, height: int) -> Text:
        colors = pt.theme_colors(self, {f"layer{k}": LAYER_COLORS[k % len(LAYER_COLORS)] for k in range(8)})
        if r.saturation is None:
            return pt.centred(f"gate saturation is shown for LSTMs (this model is a {r.cell.upper()})", width, height)
        sat = np.asarray(r.saturation, dtype=np.float64)  # (layers, 3, 2, hidden)
        layers = sat.shape[0]
        legend = Text("  ".join(f"● layer {k + 1}" for k in range(layers)) + "   ", no_wrap=True)
        for k in range(layers):
            start = sum(len(f"● layer {j + 1}  ") for j in range(k))
            legend.stylize(colors[f"layer{k}"].hex6, start, start + 1)
        legend.append("x: share of the text below 0.1 · y: above 0.9", style="dim")
        panel_w = max(12, width // 3)
        panels = [self._panel(g, sat[:, g], panel_w, height - 1, colors) for g in range(3)]
        lines = [p.split("\n") for p in panels]
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(legend)
        for row in range(max(len(p) for p in lines)):
            out.append("\n")
            for p in lines:
                piece = p[row] if row < len(p) else Text(" " * panel_w)
                piece.pad_right(panel_w - piece.cell_len)
                out.append_text(piece)
        return out

    def _panel(self, gate: int, sat: np.ndarray, width: int, height: int, colors: dict) -> Text:
        fig = self.figure
        pt.start(fig, width, height, colors["text"])
        for k in range(sat.shape[0]):
            marker = pt.plotext.marker("dot", pt.rgb(colors[f"layer{k}"]))
            fig.draw(fig.signal(sat[k, 0].tolist(), sat[k, 1].tolist(), marker=marker))
        fig.ruler("x").lim(-0.02, 1.02)
        fig.ruler("y").lim(-0.02, 1.02)
        fig.ruler("x").ticks(TICKS, ["0", ".5", "1"])
        fig.ruler("y").ticks(TICKS, ["0", ".5", "1"])
        fig.title(GATES[gate])
        return pt.finish(fig)
