"""Live training-loss chart: raw and EMA-smoothed train loss plus validation loss.

Uses plotext 6 (``plotext>=6,<7``). Measured on the 2-core box, one 80x22 chart with three
series: plotext 6 builds in 4-6 ms at 300-1k points, plotext 5.3.2 in 13-29 ms (10k: 34 ms vs 180 ms).
Log-y is plotted here as log10 values with our own tick labels: both versions raise
``ValueError: math domain error`` on a value <= 0 in a log-scale plot.

The widget keeps the whole history in bounded numpy buffers (halving their resolution past
``MAX_POINTS``; see ``rnn_tui/ui/plot_data.py``), downsamples to a few hundred points per series
before plotting, and redraws at most once a second, and only when something changed. Its colours
are the theme's ``plot-train``, ``plot-train-smooth`` and ``plot-val`` variables. It imports
neither torch nor ``rnn_tui.core``. All methods must be called from the UI thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import plotext
from rich.text import Text
from textual.color import Color
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.plot_data import (
    Series,
    _nice_step,
    downsample_envelope,
    downsample_mean,
    ema,
    format_step,
    linear_ticks,
    loss_ticks,
    robust_range,
)
from rnn_tui.ui.themes import VARIABLE_DEFAULTS

__all__ = ["SMOOTHING_LADDER", "LossPlot"]

SMOOTHING_LADDER: tuple[float, ...] = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)
SMOOTHING_MAX = 0.999
EMPTY_TEXT = "waiting for the first steps…"
Y_LABEL = "loss (nats/char)"
_THEME_NAME = "rnn-tui-loss-plot"  # re-registered before every build, so one global name is enough


# --------------------------------------------------------------------------- colours


def _rgb(color: Color) -> tuple[int, int, int]:
    return (int(color.r), int(color.g), int(color.b))


def _style(color: Color) -> str:
    return color.hex6


# --------------------------------------------------------------------------- widget


class LossPlot(Widget):
    """Train loss (raw, dim; EMA, bright) and validation loss against the step."""

    DEFAULT_CSS = """
    LossPlot {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    MAX_POINTS = 200_000  # stored points per series before halving the resolution
    RECENT_STEPS = 2_000  # the "recent" window
    REDRAW_INTERVAL = 1.0  # seconds: at most one data redraw a second (each costs 15-35 ms of CPU)

    log_y: reactive[bool] = reactive(False, init=False)
    smoothing: reactive[float] = reactive(0.9, init=False)
    window: reactive[str] = reactive("all", init=False)
    y_range: reactive[str] = reactive("robust", init=False)
    """"robust": the y axis ignores outliers (the first steps' high losses); "all": every point."""

    class ViewChanged(Message):
        """Posted when log_y, smoothing or window changes, so a footer can show describe()."""

        def __init__(self, loss_plot: LossPlot) -> None:
            super().__init__()
            self.loss_plot = loss_plot

        @property
        def control(self) -> LossPlot:
            return self.loss_plot

    def __init__(
        self,
        *,
        max_points: int | None = None,
        recent_steps: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        cap = self.MAX_POINTS if max_points is None else max_points
        self.recent_steps = self.RECENT_STEPS if recent_steps is None else int(recent_steps)
        self._train = Series(cap)
        self._val = Series(cap)
        self._ema: np.ndarray = np.empty(0)
        self._ema_key: tuple | None = None  # (series version, weight) the cache is valid for
        self._ema_n = 0
        self._data_version = 0  # bumps on every add
        self._shown_version = 0  # the data version render() may show (advanced by the timer)
        self._view_version = 0  # bumps on settings or theme changes
        self._cache: Text | None = None
        self._cache_key: tuple | None = None
        self._palette: dict[str, Color] | None = None
        self._plt_figure = None
        self.nonfinite_dropped = 0
        self.render_count = 0  # number of actual chart builds (for tests / diagnostics)
        self.last_render_ms = 0.0

    # ------------------------------------------------------------------ public API

    def add_train(self, steps: Sequence[int], losses: Sequence[float]) -> None:
        """Append training points (any number at once). Drawn at the next redraw tick."""
        x = np.asarray(steps, dtype=np.float64).ravel()
        y = np.asarray(losses, dtype=np.float64).ravel()
        if len(x) != len(y):
            raise ValueError(f"add_train: {len(x)} steps but {len(y)} losses")
        keep = np.isfinite(x) & np.isfinite(y)
        if not keep.all():
            self.nonfinite_dropped += int((~keep).sum())
            x, y = x[keep], y[keep]
        if len(x):
            last = self._train.last_x()
            if last is not None and x[0] <= last:
                # steps counted again: the trainer rolled back to a good state after a NaN
                self._train.truncate_from(x[0])
                self._val.truncate_from(x[0])
                self._ema = np.empty(0)
                self._ema_key = None
                self._ema_n = 0
            self._train.extend(x, y)
            self._data_version += 1

    def add_val(self, step: int, loss: float) -> None:
        """Append one validation point (one at an earlier step replaces those after it)."""
        if not (math.isfinite(step) and math.isfinite(loss)):
            self.nonfinite_dropped += 1
            return
        last = self._val.last_x()
        if last is not None and step <= last:
            self._val.truncate_from(step)
        self._val.extend(np.array([float(step)]), np.array([float(loss)]))
        self._data_version += 1

    def clear_history(self) -> None:
        """Forget all points (e.g. a new run); shows the empty state at once."""
        self._train.clear()
        self._val.clear()
        self._ema = np.empty(0)
        self._ema_key = None
        self._ema_n = 0
        self.nonfinite_dropped = 0
        self._data_version += 1
        self._shown_version = self._data_version
        self.refresh()

    def describe(self, width: int | None = None) -> str:
        """The view's settings in one line, e.g. "robust y · smooth 0.90 · all"; with ``width``,
        the longest spelling that fits."""
        s = self.smoothing
        smooth = "off" if s == 0 else (f"{s:.2f}" if round(s, 2) == s else f"{s:.3f}")
        recent = self._fmt_count(self.recent_steps)
        window = "all" if self.window == "all" else f"last {recent} steps"
        y = ("log " if self.log_y else "") + ("robust y" if self.y_range == "robust" else "full y")
        spellings = [
            f"{y} · smooth {smooth} · {window}",
            f"{y} · ema {smooth} · {'all' if self.window == 'all' else 'last ' + recent}",
            y,
        ]
        return next((line for line in spellings if width is None or len(line) <= width), spellings[-1])

    def action_toggle_log_y(self) -> None:
        self.log_y = not self.log_y

    def action_smoothing_up(self) -> None:
        higher = [v for v in SMOOTHING_LADDER if v > self.smoothing + 1e-9]
        if higher:
            self.smoothing = higher[0]

    def action_smoothing_down(self) -> None:
        lower = [v for v in SMOOTHING_LADDER if v < self.smoothing - 1e-9]
        if lower:
            self.smoothing = lower[-1]

    def action_toggle_window(self) -> None:
        self.window = "recent" if self.window == "all" else "all"

    def action_toggle_y_range(self) -> None:
        self.y_range = "all" if self.y_range == "robust" else "robust"

    @property
    def train_points(self) -> int:
        """Raw training points received so far (not the stored, possibly halved, count)."""
        return self._train.total

    @property
    def stored_points(self) -> int:
        """Points held in memory, train and validation together."""
        return self._train.n + self._val.n

    @property
    def stored_bytes(self) -> int:
        return self._train.nbytes + self._val.nbytes + self._ema.nbytes

    def redraw(self) -> Text:
        """Build the chart now from all data received (skipping the throttle) and return it."""
        self._shown_version = self._data_version
        self.refresh()
        return self._get_text()

    # ------------------------------------------------------------------ reactives

    def validate_smoothing(self, value: float) -> float:
        value = float(value)
        if not math.isfinite(value):
            return 0.0
        return min(SMOOTHING_MAX, max(0.0, value))

    def validate_y_range(self, value: str) -> str:
        if value not in ("robust", "all"):
            raise ValueError(f"y_range must be 'robust' or 'all', not {value!r}")
        return value

    def validate_window(self, value: str) -> str:
        if value not in ("all", "recent"):
            raise ValueError(f"window must be 'all' or 'recent', not {value!r}")
        return value

    def _view_changed(self) -> None:
        self._view_version += 1
        self.refresh()
        if self.is_attached:
            self.post_message(self.ViewChanged(self))

    def watch_log_y(self) -> None:
        self._view_changed()

    def watch_smoothing(self) -> None:
        self._view_changed()

    def watch_window(self) -> None:
        self._view_changed()

    def watch_y_range(self) -> None:
        self._view_changed()

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.set_interval(self.REDRAW_INTERVAL, self._tick, name="loss-plot-redraw")
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)

    def _on_theme_changed(self, _theme: object) -> None:
        self._palette = None
        self._view_version += 1
        self.refresh()

    def _tick(self) -> None:
        if self._shown_version != self._data_version:
            self._shown_version = self._data_version
            self.refresh()  # render() rebuilds only if the widget is actually painted

    def render(self) -> Text:
        return self._get_text()

    # ------------------------------------------------------------------ building

    def _get_text(self) -> Text:
        size = self.content_size
        width, height = max(1, size.width), max(1, size.height)
        key = (self._shown_version, self._view_version, width, height)
        if self._cache is None or self._cache_key != key:
            start = time.perf_counter()
            self._cache = self._build(width, height)
            self.last_render_ms = (time.perf_counter() - start) * 1000.0
            self.render_count += 1
            self._cache_key = key
        return self._cache

    def _colors(self) -> dict[str, Color]:
        if self._palette is not None:
            return self._palette
        app = self.app
        variables = dict(app.theme_variables) or app.get_css_variables()

        def get(name: str, fallback: str) -> Color:
            try:
                return Color.parse(variables.get(name) or fallback)
            except Exception:
                return Color.parse(fallback)

        background = get("background", "#121212")
        try:
            _, widget_background = self.background_colors
            if widget_background.a > 0:
                background = background.blend(widget_background, widget_background.a)
        except Exception:
            pass
        foreground = get("foreground", "#e0e0e0").with_alpha(1.0)
        raw = get("plot-train", VARIABLE_DEFAULTS["plot-train"])
        smooth = get("plot-train-smooth", VARIABLE_DEFAULTS["plot-train-smooth"])
        val = get("plot-val", VARIABLE_DEFAULTS["plot-val"])
        if getattr(app, "no_color", False):
            # Colour is stripped to grey levels: keep clearly different brightnesses.
            raw, smooth, val = background.blend(foreground, 0.5), foreground, foreground
        palette = {
            "background": background,
            "text": background.blend(foreground, 0.75),
            "raw": raw,
            "ema": smooth,
            "val": val,
        }
        self._palette = palette
        return palette

    @staticmethod
    def _fmt_count(n: float) -> str:
        return f"{n / 1000:g}k" if n >= 1000 else f"{n:g}"

    def _figure(self):
        """A plotext figure of our own (plotext 6 has no public constructor for one, so fall back to
        the global figure, which is safe too: every build clears and sets up the figure again)."""
        if self._plt_figure is None:
            try:
                term = type(plotext.terminal)()
                term.limit(False, False)  # sizes come from Textual, not from the real terminal
                self._plt_figure = term._master
            except Exception:  # pragma: no cover - a plotext release without these internals
                plotext.terminal.limit(False, False)
                self._plt_figure = plotext.figure
        return self._plt_figure

    def _smoothed(self) -> np.ndarray:
        """EMA of the stored train series, extended incrementally; the smoothing is given per raw
        step, so the weight per stored point is ``smoothing ** stride``."""
        series = self._train
        weight = self.smoothing**series.stride
        key = (series.version, weight)
        if self._ema_key != key:
            self._ema_key = key
            self._ema_n = 0
        n = series.n
        if len(self._ema) < n:
            grown = np.empty(max(n, 2 * len(self._ema), 1024))
            grown[: self._ema_n] = self._ema[: self._ema_n]
            self._ema = grown
        if self._ema_n < n:
            start = float(self._ema[self._ema_n - 1]) if self._ema_n else None
            self._ema[self._ema_n : n] = ema(series.y[self._ema_n : n], weight, start)
            self._ema_n = n
        return self._ema[:n]

    def _build(self, width: int, height: int) -> Text:
        colors = self._colors()
        train, val = self._train, self._val
        if train.n == 0 and val.n == 0 and train.pending() is None:
            return self._empty_text(width, height, colors)

        # x range of the view
        x_last = max(v for v in (train.last_x(), val.last_x()) if v is not None)
        x_first = min(v for v in (train.first_x(), val.first_x()) if v is not None)
        x_lo, x_hi = x_first, x_last
        if self.window == "recent":
            x_lo = max(x_first, x_last - self.recent_steps)
        if x_hi - x_lo < 1:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5

        # Raw train points, and the EMA over the whole stored history (so the view does not change it)
        tx, ty = train.window(x_lo, x_hi)
        ex = ey = np.empty(0)
        if train.n or train.pending() is not None:
            smooth = self._smoothed()
            pending = train.pending()
            pending_smooth = None
            if pending is not None:
                w = self.smoothing**train.stride
                pending_smooth = w * float(smooth[-1]) + (1 - w) * pending[1] if len(smooth) else pending[1]
            ex, ey = train.window(x_lo, x_hi, smooth, pending_smooth)
        vx, vy = val.window(x_lo, x_hi)

        header_rows = 1
        plot_h = height - header_rows
        compact = width < 24 or plot_h < 5
        latest_ema = float(ey[-1]) if len(ey) else None
        latest_val = float(vy[-1]) if len(vy) else (float(val.y[val.n - 1]) if val.n else None)
        header = self._header(width, colors, latest_ema, latest_val, train.n > 0 or train.pending() is not None)
        if compact:
            return header

        robust = None
        if self.y_range == "robust":
            # (on the full-resolution points, before downsampling; log values on a log axis)
            pairs = [(tx, ty), (ex, ey), (vx, vy)]
            if self.log_y:
                pairs = [self._log_points(px, py) for px, py in pairs]
            robust = robust_range(pairs[0], pairs[1:], x_lo, x_hi)

        tick_w = 7  # typical y tick label width + axis, used only to choose the bucket count
        buckets = max(16, 2 * (width - tick_w - 2))  # braille: two dot columns per cell
        rx, ry = downsample_envelope(tx, ty, x_lo, x_hi, buckets)
        ex, ey = downsample_mean(ex, ey, x_lo, x_hi, buckets)
        vx, vy = downsample_mean(vx, vy, x_lo, x_hi, buckets // 2)

        if self.log_y:
            rx, ry = self._log_points(rx, ry)
            ex, ey = self._log_points(ex, ey)
            vx, vy = self._log_points(vx, vy)
        ys = [a for a in (ry, ey, vy) if len(a)]
        if not ys:
            return Text.assemble(
                header, "\n", self._centred("no positive losses to show on log-y", width, plot_h, colors)
            )
        y_lo = min(float(a.min()) for a in ys)
        y_hi = max(float(a.max()) for a in ys)
        if robust is not None:
            y_lo, y_hi = robust
            # points beyond the range are drawn on its edge (the first steps enter from the top)
            ry, ey, vy = (np.clip(a, y_lo, y_hi) for a in (ry, ey, vy))
        if y_hi - y_lo < 1e-9:
            pad = max(abs(y_hi) * 0.05, 0.05 if not self.log_y else 0.01)
            y_lo, y_hi = y_lo - pad, y_hi + pad
        else:
            pad = (y_hi - y_lo) * 0.04
            y_lo, y_hi = y_lo - pad, y_hi + pad

        x_label = plot_h >= 12  # a short plot gives the "step" label's row to the curves
        canvas_rows = max(2, plot_h - 3 - x_label)  # frame (2), x ticks (1), label bar (1)
        y_pos, y_labels = loss_ticks(y_lo, y_hi, max(2, min(6, canvas_rows // 3)), self.log_y)
        label_w = max((len(s) for s in y_labels), default=3)
        x_target = max(2, min(8, (width - label_w - 2) // 11))
        x_pos = linear_ticks(x_lo, x_hi, x_target, min_step=1.0)  # steps are whole numbers
        x_step = max(1.0, _nice_step(x_hi - x_lo, x_target))
        x_labels = [format_step(v, x_step) for v in x_pos]

        fig = self._figure()
        fig.clear()
        fig.plot_size(width, plot_h)
        plotext.add_theme(_THEME_NAME, text=_rgb(colors["text"]))
        fig.theme(_THEME_NAME)
        fig.canvas("default")
        marker = plotext.marker
        if len(rx):
            fig.draw(fig.signal(rx.tolist(), ry.tolist(), marker=marker("braille", _rgb(colors["raw"]))).lines())
        if len(ex):
            fig.draw(fig.signal(ex.tolist(), ey.tolist(), marker=marker("hd", _rgb(colors["ema"]))).lines())
        if len(vx):
            sig = fig.signal(vx.tolist(), vy.tolist(), marker=marker("●", _rgb(colors["val"])))
            fig.draw(sig)
        fig.ruler("x").lim(x_lo, x_hi)
        fig.ruler("y").lim(y_lo, y_hi)
        fig.ruler("x").ticks(x_pos, x_labels)
        fig.ruler("y").ticks(y_pos, y_labels)
        if x_label:
            fig.label("step", axis="x")
        ansi = fig.build().string().rstrip("\n")
        chart = Text.from_ansi(ansi, no_wrap=True, overflow="crop")
        return Text.assemble(header, "\n", chart, no_wrap=True, overflow="crop")

    @staticmethod
    def _log_points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = y > 0
        if not keep.all():
            x, y = x[keep], y[keep]
        return x, np.log10(y)

    def _header(
        self, width: int, colors: dict[str, Color], latest_ema: float | None, latest_val: float | None, has_train: bool
    ) -> Text:
        """One line: the y label on the left, a legend with the latest values on the right."""
        parts: list[tuple[str, str] | str] = []
        if has_train:
            parts += [("⣿", _style(colors["raw"])), " train  ", ("▀▄", _style(colors["ema"])), " ema"]
            if latest_ema is not None:
                parts += [(f" {latest_ema:.3f}", "bold")]
        if latest_val is not None:
            parts += ["  " if parts else "", ("●", _style(colors["val"])), " val", (f" {latest_val:.3f}", "bold")]
        text_style = _style(colors["text"])
        legend = Text.assemble(*parts, style=text_style, no_wrap=True, overflow="crop")
        label = Y_LABEL + (" · log" if self.log_y else "")
        if legend.cell_len + len(label) + 2 <= width:
            gap = width - legend.cell_len - len(label) - 1
            line = Text.assemble((label, text_style), " " * gap, legend, " ", no_wrap=True, overflow="crop")
        else:
            line = legend
        line.truncate(width)
        return line

    def _centred(self, message: str, width: int, height: int, colors: dict[str, Color]) -> Text:
        top = max(0, (height - 1) // 2)
        line = message if len(message) <= width else message[: max(1, width - 1)] + "…"
        text = Text("\n" * top, no_wrap=True, overflow="crop")
        text.append(" " * max(0, (width - len(line)) // 2) + line, style=f"dim {_style(colors['text'])}")
        return text

    def _empty_text(self, width: int, height: int, colors: dict[str, Color]) -> Text:
        return self._centred(EMPTY_TEXT, width, height, colors)
