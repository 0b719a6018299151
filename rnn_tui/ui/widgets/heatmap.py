"""Hidden-state heatmap: LSTM cells × probe characters, drawn with half blocks.

Each terminal line shows two hidden units: the glyph "▀" takes the upper unit's
colour as its foreground and the lower unit's colour as its background, and the
line's label names both ("97,5"). Each character of the probe text has its
column(s): one, or two for a wide character (CJK, emoji), which is shown as
itself on the text axis with two columns of heat above it, so the columns stay
aligned. When the text is wider than the widget, the most recent characters are
shown. The border's subtitle says how many units are drawn (set from what was
drawn, after every size change or probe).

Values are drawn on a diverging scale quantised to 17 levels (−8 … 0 … +8):

* ``kind == "h"`` draws the hidden state ``h`` (already in [−1, 1]);
* ``kind == "c"`` draws ``tanh(c)`` of the (unbounded) cell state, as in
  Karpathy et al., "Visualizing and Understanding Recurrent Networks". tanh is
  what the LSTM itself applies to ``c`` before the output gate, and it keeps
  the scale fixed, so colours are comparable between updates.

Colours come from the app theme variables ``heatmap-negative``,
``heatmap-zero`` and ``heatmap-positive`` when the theme defines them;
otherwise negative = ``$primary``, positive = ``$error`` and zero = the
widget's own background (so near-zero cells fade into it).

Which units are shown when there are more than fit: the units with the largest
variance over the probe (of the displayed quantity, for the shown layer).
When a new probe arrives for the same text, the units already on screen keep
their rows as long as they are still among the most variable; only the rows of
units that dropped out are given to newcomers. A new text re-sorts from scratch.

Rendering uses the line API. All strips are built in one pass and cached; the
cache is rebuilt only when the probe, layer, kind, size, theme or the widget's
style changes, and ``refresh()`` is called only for those events.

This module must not import torch or ``rnn_tui.core``; it takes numpy arrays.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["HALF_BLOCK", "LEVELS", "HiddenStateHeatmap", "display_char"]

HALF_BLOCK = "▀"
LEVELS = 8
"""Quantisation steps per sign: values map to the integers −LEVELS … +LEVELS."""
_N = 2 * LEVELS + 1  # number of colour levels (17)
_EMPTY = _N  # palette index of "no unit here" (the widget background)
_P = _N + 1  # palette size, including the empty slot
_RUN_KEY = 1 << 20  # segment cache key = pair code * _RUN_KEY + run length

_FALLBACK_NEGATIVE = Color.parse("#3b82f6")
_FALLBACK_POSITIVE = Color.parse("#ef4444")
_FALLBACK_BACKGROUND = Color.parse("#121212")

_SUBSTITUTES = {"\n": "↵", " ": "·", "\t": "→", "\r": "·"}
_ZERO_WIDTH_BASE = "◌"  # the usual stand-in a combining mark is shown on


def display_char(ch: str) -> tuple[str, bool]:
    """Return ``(glyph, substituted)`` for one probe character on the x axis.

    Newline → "↵", space → "·", tab → "→", other control characters → "·", a
    combining mark (no width of its own) → the mark on "◌". ``substituted`` is
    True for these, so they can be drawn dim and told apart from a literal "·"
    in the text. Wide characters (CJK, emoji) are themselves: two columns.
    """
    sub = _SUBSTITUTES.get(ch)
    if sub is not None:
        return sub, True
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\u00ad":
        return "·", True
    if cell_len(ch) == 0:
        return _ZERO_WIDTH_BASE + ch, True
    return ch, False


def glyph_width(ch: str) -> int:
    """Columns a probe character takes on the axis (and of heat): 1, or 2 if wide."""
    return 2 if cell_len(display_char(ch)[0]) == 2 else 1


def _opaque(color: Color, under: Color) -> Color:
    """Composite a possibly translucent colour over ``under``."""
    if color.a >= 1.0:
        return color
    return under + color


class HiddenStateHeatmap(Widget):
    """LSTM hidden-state heatmap (units × characters) using half-block glyphs.

    Call :meth:`set_probe` from the UI thread (e.g. from a message handler or a
    ``set_interval`` poll), never from a worker thread directly.
    """

    DEFAULT_CSS = """
    HiddenStateHeatmap {
        height: 1fr;
        width: 1fr;
    }
    """

    # Not named `layer`: Widget.layer is the compositor layer, and shadowing it stacks widgets.
    shown_layer: reactive[int] = reactive(0, init=False)
    """Shown layer, 0-based; clamped to the probe's layers. Until it is set, the
    first probe selects the top layer."""

    kind: reactive[str] = reactive("h", init=False)
    """"h" (hidden state) or "c" (cell state, drawn as tanh(c))."""

    # Class-level defaults so validators work before __init__ has finished.
    _n_layers: int = 0

    def __init__(
        self,
        *,
        gutter: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """
        Args:
            gutter: show unit indices in a left gutter when there is room.
        """
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.show_gutter = gutter
        self._text: str = ""
        self._h: np.ndarray | None = None
        self._c: np.ndarray | None = None
        self._step: int | None = None
        self._version = 0
        self._layer_explicit = False
        self._setting_layer_internally = False
        # (layer, kind) -> (version, order permutation of all units)
        self._orders: dict[tuple[int, str], tuple[int, np.ndarray]] = {}
        self._display_cache: dict[tuple[int, str], tuple[int, np.ndarray]] = {}
        self._strips: list[Strip] | None = None
        self._strips_key: tuple[Any, ...] | None = None
        self._units_shown = 0
        self._shown_units: list[int] = []
        # Palette / styles cache, keyed by the colours that produced it.
        self._palette_key: tuple[Any, ...] | None = None
        self._pair_styles: list[Style] = []
        self._run_cache: dict[int, Segment] = {}

    # ------------------------------------------------------------------ API

    def set_probe(
        self,
        text: str,
        h: np.ndarray,
        c: np.ndarray | None = None,
        step: int | None = None,
    ) -> None:
        """Show a new probe.

        Args:
            text: the probe text, one character per time step.
            h: hidden states, shape ``(layers, T, hidden)`` with ``T == len(text)``
                (a 2-D ``(T, hidden)`` array is taken as one layer). Values in [−1, 1].
            c: cell states, same shape as ``h``, or None. Drawn as ``tanh(c)``.
            step: training step the probe was taken at (shown by :meth:`describe`).
        """
        h_arr = np.array(h, dtype=np.float32, copy=True)
        if h_arr.ndim == 2:
            h_arr = h_arr[None]
        if h_arr.ndim != 3:
            raise ValueError(f"h must be shaped (layers, T, hidden), got {h_arr.shape}")
        if h_arr.shape[1] != len(text):
            raise ValueError(f"h has {h_arr.shape[1]} time steps but the text has {len(text)} characters")
        c_arr: np.ndarray | None = None
        if c is not None:
            c_arr = np.array(c, dtype=np.float32, copy=True)
            if c_arr.ndim == 2:
                c_arr = c_arr[None]
            if c_arr.shape != h_arr.shape:
                raise ValueError(f"c shape {c_arr.shape} differs from h shape {h_arr.shape}")

        first = self._h is None
        same = self._h is not None and text == self._text and self._h.shape == h_arr.shape
        if not same:
            self._orders.clear()
        self._text = text
        self._h = h_arr
        self._c = c_arr
        self._step = step
        self._version += 1
        self._display_cache.clear()
        self._n_layers = h_arr.shape[0]
        if first and not self._layer_explicit:
            self._set_layer_internal(self._n_layers - 1)
        else:
            self._set_layer_internal(self.shown_layer)  # re-clamp to the new layer count
        self._invalidate()

    def describe(self, width: int | None = None) -> str:
        """One-line summary of what is drawn, e.g. ``"layer 2/2 · h · step 1200 · 44/256 units"``;
        with ``width``, the longest spelling that fits (the unit count is always kept)."""
        if self._h is None:
            return "no probe"
        hidden = self._h.shape[2]
        shown = self._units_shown
        units = f"{hidden} units" if shown >= hidden else f"{shown}/{hidden} units" if shown else ""
        layer = f"{self.shown_layer + 1}/{self._n_layers}"
        step = f"step {self._step}" if self._step is not None else ""
        kind = self._effective_kind()
        spellings = [
            [f"layer {layer}", kind, step, units],
            [f"layer {layer}", kind, units],
            [f"L{layer}", kind, units],
            [units.replace(" units", "")],
        ]
        for parts in spellings:
            line = " · ".join(p for p in parts if p)
            if width is None or len(line) <= width:
                return line
        return line

    @property
    def has_probe(self) -> bool:
        return self._h is not None

    @property
    def probe_text(self) -> str:
        return self._text

    @property
    def visible_units(self) -> list[int]:
        """Unit indices currently drawn, top to bottom (after a render)."""
        return list(self._shown_units)

    def action_next_layer(self) -> None:
        """Show the next layer (wrapping round)."""
        self._layer_explicit = True
        if self._n_layers:
            self.shown_layer = (self.shown_layer + 1) % self._n_layers

    def action_toggle_kind(self) -> None:
        """Switch between h and tanh(c). Does nothing when the probe has no c."""
        if self._c is None:
            return
        self.kind = "c" if self.kind == "h" else "h"

    # ------------------------------------------------------------ reactives

    def validate_shown_layer(self, value: int) -> int:
        value = max(0, int(value))
        if self._n_layers:
            value = min(value, self._n_layers - 1)
        return value

    def validate_kind(self, value: str) -> str:
        if value not in ("h", "c"):
            raise ValueError(f"kind must be 'h' or 'c', not {value!r}")
        return value

    def watch_shown_layer(self, old: int, new: int) -> None:
        if not self._setting_layer_internally and old != new:
            self._layer_explicit = True
        self._invalidate()

    def watch_kind(self, _old: str, _new: str) -> None:
        self._invalidate()

    def _set_layer_internal(self, value: int) -> None:
        self._setting_layer_internally = True
        try:
            self.shown_layer = value
        finally:
            self._setting_layer_internally = False

    # --------------------------------------------------------------- events

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._update_title()

    def _on_theme_changed(self, _theme: object) -> None:
        self._palette_key = None
        self._strips = None
        self.refresh()

    def on_resize(self) -> None:
        # Textual repaints on resize; drop the cache (the key check in
        # render_lines would catch it too) and update the title's unit count.
        self._strips = None
        self._update_title()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self._h is None:
            return 3
        return (self._h.shape[2] + 1) // 2 + 2

    def get_content_width(self, container: Size, viewport: Size) -> int:
        if self._h is None:
            return 20
        return sum(map(glyph_width, self._text)) + self._gutter_width(container.width)[0]

    # ----------------------------------------------------------- internals

    def _invalidate(self) -> None:
        self._strips = None
        if self.is_mounted:
            self._update_title()
            self.refresh()

    def _update_title(self) -> None:
        """Keep ``border_subtitle`` saying what is shown (the unit count depends on the size)."""
        if self._h is not None and self.size.height > 0:
            self._units_shown = self._slots(self.size.height)
        self._set_subtitle()

    def _set_subtitle(self) -> None:
        # the border's own width, less its corners and the spaces around the subtitle
        subtitle = self.describe(max(8, self.outer_size.width - 6))
        if str(self.border_subtitle or "") != subtitle:
            self.border_subtitle = subtitle

    def _slots(self, height: int) -> int:
        """How many units a widget this tall draws."""
        return 0 if self._h is None else min(self._h.shape[2], 2 * self._layout_lines(height)[0])

    def _effective_kind(self) -> str:
        return "c" if self.kind == "c" and self._c is not None else "h"

    def _display_values(self) -> np.ndarray | None:
        """(T, hidden) values in [−1, 1] for the shown layer and kind."""
        if self._h is None:
            return None
        kind = self._effective_kind()
        key = (self.shown_layer, kind)
        cached = self._display_cache.get(key)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        if kind == "c":
            assert self._c is not None
            values = np.tanh(self._c[self.shown_layer])
        else:
            values = self._h[self.shown_layer]
        values = np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        self._display_cache[key] = (self._version, values)
        return values

    def _current_order(self, slots: int | None = None) -> np.ndarray | None:
        """Unit order for the shown layer/kind, most interesting first.

        ``slots`` is how many units fit; units already shown in those slots for
        the same text keep their positions if they are still in the top ``slots``.
        """
        values = self._display_values()
        if values is None:
            return None
        key = (self.shown_layer, self._effective_kind())
        prev = self._orders.get(key)
        if prev is not None and prev[0] == self._version:
            return prev[1]
        var = values.var(axis=0) if values.shape[0] else np.zeros(values.shape[1])
        # Stable sort so ties keep unit-index order.
        ranking = np.argsort(-var, kind="stable")
        hidden = ranking.shape[0]
        k = hidden if slots is None else max(0, min(slots, hidden))
        if prev is not None and k:
            old_top = prev[1][:k]
            new_top = ranking[:k]
            in_new = np.zeros(hidden, dtype=bool)
            in_new[new_top] = True
            in_old = np.zeros(hidden, dtype=bool)
            in_old[old_top] = True
            newcomers = iter(u for u in new_top.tolist() if not in_old[u])
            top = [u if in_new[u] else next(newcomers) for u in old_top.tolist()]
            chosen = np.zeros(hidden, dtype=bool)
            chosen[top] = True
            rest = [u for u in ranking.tolist() if not chosen[u]]
            order = np.array(top + rest, dtype=np.intp)
        else:
            order = ranking
        self._orders[key] = (self._version, order)
        return order

    def _layout_lines(self, height: int) -> tuple[int, bool, bool]:
        """Return (heat lines, axis row?, legend row?) for a widget height."""
        if height >= 4:
            return height - 2, True, True
        if height >= 2:
            return height - 1, True, False
        return max(0, height), False, False

    def _gutter_width(self, width: int) -> tuple[int, int]:
        """Return (gutter width, indices per line: 0 or 2). A line is two units, and its
        label names both ("123,45 "); a narrow widget has no labels rather than half of them."""
        if not self.show_gutter or self._h is None:
            return 0, 0
        digits = len(str(max(0, self._h.shape[2] - 1)))
        two = 2 * digits + 2
        if width >= two + 16:
            return two, 2
        return 0, 0

    def _theme_color(self, names: tuple[str, ...], fallback: Color, under: Color) -> Color:
        variables = getattr(self.app, "theme_variables", {}) or {}
        for name in names:
            value = variables.get(name)
            if not value:
                continue
            try:
                return _opaque(Color.parse(value), under)
            except Exception:
                continue
        return fallback

    def _ensure_palette(self, background: Color) -> None:
        variables = getattr(self.app, "theme_variables", {}) or {}
        key = (
            background,
            variables.get("heatmap-negative"),
            variables.get("heatmap-zero"),
            variables.get("heatmap-positive"),
            variables.get("primary"),
            variables.get("error"),
        )
        if key == self._palette_key:
            return
        neg = self._theme_color(("heatmap-negative", "primary"), _FALLBACK_NEGATIVE, background)
        pos = self._theme_color(("heatmap-positive", "error"), _FALLBACK_POSITIVE, background)
        zero = self._theme_color(("heatmap-zero",), background, background)
        colors: list[Color] = []
        for i in range(_N):
            level = i - LEVELS
            if level < 0:
                colors.append(zero.blend(neg, -level / LEVELS))
            elif level > 0:
                colors.append(zero.blend(pos, level / LEVELS))
            else:
                colors.append(zero)
        colors.append(background)  # _EMPTY
        rich_colors = [c.rich_color for c in colors]
        self._pair_styles = [
            Style(color=rich_colors[top], bgcolor=rich_colors[bottom]) for top in range(_P) for bottom in range(_P)
        ]
        self._run_cache = {}
        self._palette_key = key

    def _background(self) -> Color:
        bg = self.background_colors[1]
        if bg.a < 1.0:
            base = self._theme_color(("background",), _FALLBACK_BACKGROUND, _FALLBACK_BACKGROUND)
            bg = base + bg
        return bg

    def _cache_key(self) -> tuple[Any, ...]:
        return (
            self.size,
            self.app.theme,
            self.rich_style,
            self._version,
            self.shown_layer,
            self._effective_kind(),
        )

    def _ensure_strips(self) -> list[Strip]:
        key = self._cache_key()
        if self._strips is None or key != self._strips_key:
            self._strips = self._build_strips()
            self._strips_key = key
        return self._strips

    def render_lines(self, crop: Region) -> list[Strip]:
        # Called once per paint of this widget: validate the cache here so that
        # render_line (called per line) is a plain list lookup.
        self._ensure_strips()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        strips = self._strips if self._strips is not None else self._ensure_strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def render_all(self) -> list[Strip]:
        """Rebuild and return every line (used by tests and benchmarks)."""
        self._strips = None
        strips = self._ensure_strips()
        return [self.render_line(y) for y in range(len(strips))]

    def _build_strips(self) -> list[Strip]:
        width, height = self.size
        base = self.rich_style
        if width <= 0 or height <= 0:
            return []
        blank = Strip.blank(width, base)
        values = self._display_values()
        if values is None or values.shape[1] == 0:
            self._shown_units = []
            empty = [blank] * height
            message = "no probe yet"[:width]
            pad = (width - len(message)) // 2
            empty[height // 2] = Strip(
                [
                    Segment(" " * pad, base),
                    Segment(message, base + Style(dim=True)),
                    Segment(" " * (width - pad - len(message)), base),
                ],
                width,
            )
            return empty

        background = self._background()
        self._ensure_palette(background)
        styles = self._pair_styles
        if len(self._run_cache) > 50_000:
            self._run_cache.clear()
        run_cache = self._run_cache
        dim = base + Style(dim=True)

        heat_lines, axis_row, legend_row = self._layout_lines(height)
        gutter, _ = self._gutter_width(width)
        cols = max(0, width - gutter)
        hidden = values.shape[1]
        slots = min(hidden, 2 * heat_lines)
        order = self._current_order(slots)
        assert order is not None
        if slots != self._units_shown:
            self._units_shown = slots
            self.call_after_refresh(self._set_subtitle)  # the subtitle counts what was drawn
        shown = order[:slots]
        self._shown_units = shown.tolist()
        # The newest characters whose columns fit; a wide character has two columns of heat.
        widths = [glyph_width(ch) for ch in self._text]
        start, used = values.shape[0], 0
        while start > 0 and used + widths[start - 1] <= cols:
            start -= 1
            used += widths[start]
        n_chars = used  # heat columns

        strips: list[Strip] = []
        used_lines = (slots + 1) // 2
        if used_lines and n_chars:
            window = np.repeat(values[start:, shown], widths[start:], axis=0)  # (n_chars, slots)
            levels = np.rint(window * LEVELS).astype(np.intp) + LEVELS
            if slots % 2:
                levels = np.concatenate([levels, np.full((n_chars, 1), _EMPTY, dtype=np.intp)], axis=1)
            codes = (levels[:, 0::2] * _P + levels[:, 1::2]).T  # (used_lines, n_chars)
            # Run-length encode each line so equal neighbours share one segment.
            change = codes[:, 1:] != codes[:, :-1]
            digits = len(str(max(0, hidden - 1)))
            shown_list = shown.tolist()
            tail = width - gutter - n_chars
            tail_seg = Segment(" " * tail, base) if tail > 0 else None
            for line in range(used_lines):
                segments: list[Segment] = []
                if gutter:  # the line's two units: the upper half's, then the lower half's
                    top_unit = shown_list[2 * line]
                    if 2 * line + 1 < slots:
                        label = f"{top_unit:>{digits}},{shown_list[2 * line + 1]:<{digits}}"
                    else:
                        label = f"{top_unit:>{digits}}" + " " * (digits + 1)
                    segments.append(Segment(label.ljust(gutter), dim))
                row = codes[line]
                bounds = np.flatnonzero(change[line]) + 1
                starts = [0, *bounds.tolist()]
                ends = [*bounds.tolist(), n_chars]
                for s, e, code in zip(starts, ends, row[starts].tolist()):
                    seg_key = code * _RUN_KEY + e - s
                    segment = run_cache.get(seg_key)
                    if segment is None:
                        segment = run_cache[seg_key] = Segment(HALF_BLOCK * (e - s), styles[code])
                    segments.append(segment)
                if tail_seg is not None:
                    segments.append(tail_seg)
                strips.append(Strip(segments, width))
        strips.extend([blank] * (heat_lines - len(strips)))

        if axis_row:
            segments = [Segment(" " * gutter, base)] if gutter else []
            run: list[str] = []
            run_dim: bool | None = None
            for ch in self._text[start:]:
                glyph, sub = display_char(ch)
                if sub != run_dim and run:
                    segments.append(Segment("".join(run), dim if run_dim else base))
                    run = []
                run_dim = sub
                run.append(glyph)
            if run:
                segments.append(Segment("".join(run), dim if run_dim else base))
            strips.append(Strip(segments).adjust_cell_length(width, base))
        if legend_row:
            strips.append(self._legend(width, gutter, base, dim))
        return strips[:height]

    def _legend(self, width: int, gutter: int, base: Style, dim: Style) -> Strip:
        styles = self._pair_styles

        def block(level: int) -> Segment:
            i = level + LEVELS
            return Segment(HALF_BLOCK, styles[i * _P + i])

        label = "tanh(c)" if self._effective_kind() == "c" else "h"
        segments = [Segment(" " * gutter, base)] if gutter else []
        segments.append(Segment("−1 ", base))
        segments.extend(block(level) for level in range(-LEVELS, 0))
        segments.append(Segment(" 0 ", base))
        segments.extend(block(level) for level in range(1, LEVELS + 1))
        segments.append(Segment(" +1", base))
        segments.append(Segment(f"  {label}", dim))
        return Strip(segments).adjust_cell_length(width, base)
