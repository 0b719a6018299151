"""Several runs' loss curves on one plot: validation loss (lines through each evaluation, bright)
and smoothed training loss (dim), in each run's colour, against step, characters seen or
training time.

Drawn with plotext 6 as the live loss plot is (``loss_plot.py``), from ``Curves`` that
``rnn_tui/remote/history.py`` reads; smoothing, downsampling and ticks come from ``plot_data.py``.
The y range leaves out the first tenth of the x range (where every run falls from its initial
loss), unless ``whole_range`` is set. Rebuilt only when the runs or the view change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import plotext
from rich.text import Text
from textual.color import Color
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.remote.history import AXES, AXIS_NAMES, Curves
from rnn_tui.ui.plot_data import (
    _nice_step,
    downsample_mean,
    ema,
    format_step,
    linear_ticks,
    loss_ticks,
)

SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
START_SKIPPED = 0.1  # the share of the x range left out of the y range (the initial fall)
_THEME_NAME = "rnn-tui-runs-plot"


@dataclasses.dataclass(frozen=True)
class PlottedRun:
    key: str
    color: Color
    curves: Curves


def duration_ticks(lo: float, hi: float, target: int) -> tuple[list[float], list[str]]:
    """Ticks for seconds of training, labelled in seconds, minutes or hours by the span."""
    span = hi - lo
    unit, suffix = (1.0, "s") if span < 180 else (60.0, "m") if span < 3 * 3600 else (3600.0, "h")
    ticks = linear_ticks(lo / unit, hi / unit, target)
    return [t * unit for t in ticks], [f"{t:g}{suffix}" for t in ticks]


class RunsPlot(Widget):
    DEFAULT_CSS = """
    RunsPlot { width: 1fr; height: 1fr; min-height: 6; }
    """

    axis: reactive[str] = reactive("step", init=False)
    show_train: reactive[bool] = reactive(True, init=False)
    smoothing: reactive[float] = reactive(0.9, init=False)
    log_y: reactive[bool] = reactive(False, init=False)
    whole_range: reactive[bool] = reactive(False, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs: list[PlottedRun] = []
        self._version = 0
        self._cache: Text | None = None
        self._cache_key: tuple | None = None
        self._figure = None
        self.render_count = 0

    # ------------------------------------------------------------------ what is shown
    def set_runs(self, runs: list[PlottedRun]) -> None:
        self.runs = runs
        self._version += 1
        self.refresh()

    def without_axis(self) -> list[PlottedRun]:
        """The runs that cannot be placed on the current x axis (older runs kept no times)."""
        return [r for r in self.runs if not r.curves.has_axis(self.axis)]

    def describe(self) -> str:
        """The view in a few words: the axis, then only what differs from the defaults."""
        parts = [AXIS_NAMES[self.axis], f"smooth {self.smoothing:g}" if self.smoothing else "no smoothing"]
        parts += ["train hidden"] * (not self.show_train) + ["log-y"] * self.log_y + ["whole range"] * self.whole_range
        return " · ".join(parts)

    def next_axis(self) -> None:
        self.axis = AXES[(AXES.index(self.axis) + 1) % len(AXES)]

    def smoother(self, direction: int) -> None:
        i = min(range(len(SMOOTHING)), key=lambda k: abs(SMOOTHING[k] - self.smoothing))
        self.smoothing = SMOOTHING[max(0, min(len(SMOOTHING) - 1, i + direction))]

    def _changed(self) -> None:
        self._version += 1
        self.refresh()

    watch_axis = watch_show_train = watch_smoothing = watch_log_y = watch_whole_range = _changed

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._changed())

    # ------------------------------------------------------------------ drawing
    def render(self) -> Text:
        size = self.content_size
        key = (self._version, max(1, size.width), max(1, size.height))
        if self._cache is None or self._cache_key != key:
            self._cache = self._build(*key[1:])
            self._cache_key = key
            self.render_count += 1
        return self._cache

    def _background(self) -> tuple[Color, Color]:
        variables = self.app.theme_variables or self.app.get_css_variables()
        background = Color.parse(variables.get("background", "#121212"))
        foreground = Color.parse(variables.get("foreground", "#e0e0e0")).with_alpha(1.0)
        return background, background.blend(foreground, 0.75)

    def _lines(self) -> list[tuple[Color, np.ndarray, np.ndarray, str]]:
        """(colour, x, y, kind) for every curve to draw, kind "train" or "val", x on the axis."""
        out = []
        for run in self.runs:
            c = run.curves
            if not c.has_axis(self.axis):
                continue
            if self.show_train and len(c.train_step):
                out.append((run.color, c.place(c.train_step, self.axis), ema(c.train_loss, self.smoothing), "train"))
            if len(c.val_step):
                out.append((run.color, c.place(c.val_step, self.axis), c.val_loss, "val"))
        return out

    def _build(self, width: int, height: int) -> Text:
        background, text_color = self._background()
        lines = self._lines()
        if not lines:
            message = "space picks runs (↑ ↓ move)" if not self.runs else "no curves yet"
            if self.runs and self.without_axis():
                message = f"no {AXIS_NAMES[self.axis]} recorded for these runs (x: another axis)"
            return Text(message, style=f"dim {text_color.hex6}", justify="center")
        x_lo = min(float(x.min()) for _, x, _, _ in lines)
        x_hi = max(float(x.max()) for _, x, _, _ in lines)
        if x_hi - x_lo < 1e-9:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
        buckets = max(16, 2 * (width - 9))  # braille: two dots a column
        drawn = []
        for color, x, y, kind in lines:
            x, y = downsample_mean(x, y, x_lo, x_hi, buckets if kind == "train" else buckets // 2)
            if self.log_y:
                keep = y > 0
                x, y = x[keep], np.log10(y[keep])
            drawn.append((color, x, y, kind))
        y_lo, y_hi = self._y_range(drawn, x_lo, x_hi)

        y_pos, y_labels = loss_ticks(y_lo, y_hi, max(2, min(6, (height - 3) // 3)), self.log_y)
        x_pos, x_labels = self._x_ticks(x_lo, x_hi, max(2, min(8, (width - 8) // 11)))

        fig = self._plotext_figure()
        fig.clear()
        fig.plot_size(width, height)
        plotext.add_theme(_THEME_NAME, text=_rgb(text_color))
        fig.theme(_THEME_NAME)
        fig.canvas("default")
        marker = plotext.marker
        for color, x, y, kind in sorted(drawn, key=lambda d: d[3] == "val"):  # validation on top
            if not len(x):
                continue
            if kind == "train":
                dim = background.blend(color, 0.5)
                fig.draw(fig.signal(x.tolist(), y.tolist(), marker=marker("braille", _rgb(dim))).lines())
                continue
            fig.draw(fig.signal(x.tolist(), y.tolist(), marker=marker("hd", _rgb(color))).lines())
            if len(x) <= width // 8:  # each evaluation marked while there is room
                fig.draw(fig.signal(x.tolist(), y.tolist(), marker=marker("●", _rgb(color))))
        fig.ruler("x").lim(x_lo, x_hi)
        fig.ruler("y").lim(y_lo, y_hi)
        fig.ruler("x").ticks(x_pos, x_labels)
        fig.ruler("y").ticks(y_pos, y_labels)
        fig.label(AXIS_NAMES[self.axis], axis="x")
        return Text.from_ansi(fig.build().string().rstrip("\n"), no_wrap=True, overflow="crop")

    def _x_ticks(self, lo: float, hi: float, target: int) -> tuple[list[float], list[str]]:
        """Ticks for the x axis: at least two where the width allows (round steps can leave one)."""
        for t in range(target, target + 4):
            if self.axis == "time":
                pos, labels = duration_ticks(lo, hi, t)
            else:
                pos = linear_ticks(lo, hi, t)
                labels = [format_step(v, _nice_step(hi - lo, t)) for v in pos]
            if len(pos) >= 2:
                break
        return pos, labels

    def _y_range(self, drawn: list, x_lo: float, x_hi: float) -> tuple[float, float]:
        cut = x_lo if self.whole_range else x_lo + START_SKIPPED * (x_hi - x_lo)
        ys = [y[x >= cut] for _, x, y, _ in drawn]
        if not any(len(y) for y in ys):
            ys = [y for _, _, y, _ in drawn]
        ys = [y for y in ys if len(y)]
        if not ys:
            return 0.0, 1.0
        lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
        pad = (hi - lo) * 0.04 if hi - lo > 1e-9 else max(abs(hi) * 0.05, 0.05)
        return lo - pad, hi + pad

    def _plotext_figure(self):
        """A plotext figure of this widget's own (see LossPlot._figure)."""
        if self._figure is None:
            term = type(plotext.terminal)()
            term.limit(False, False)  # sizes come from Textual
            self._figure = term._master
        return self._figure


def _rgb(color: Color) -> tuple[int, int, int]:
    return (int(color.r), int(color.g), int(color.b))
