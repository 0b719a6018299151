"""A probe text drawn as text, each character on a background coloured by a value.

The text wraps as text does: at the last space that fits, else anywhere; newlines are kept (shown
as a dim "↵" at the end of their line, coloured like any character). Wide characters are drawn as
themselves, two cells wide; a character the terminal cannot show in one or two cells (a control
character, a combining mark) is drawn as a dim substitute, so every position can be coloured.

Values are drawn on the theme's diverging scale (``heatmap-negative`` … ``heatmap-zero`` …
``heatmap-positive``), quantised to 17 levels: values in [-1, 1]; NaN is uncoloured. A cursor
(one position) is drawn reversed. The widget scrolls; only visible lines are rendered (line API).

It imports neither torch nor ``rnn_tui.core``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

LEVELS = 8  # per sign: values map to -LEVELS … +LEVELS
_NEWLINE, _TAB, _OTHER = "↵", "→", "·"
_UNSHOWABLE = "□"


def glyph(ch: str) -> tuple[str, int, bool]:
    """How one character is drawn: (glyph, cells, substituted)."""
    if ch == "\n":
        return _NEWLINE, 1, True
    if ch == "\t":
        return _TAB, 1, True
    if ch == " ":
        return " ", 1, False
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return _OTHER, 1, True
    width = cell_len(ch)
    if width in (1, 2):
        return ch, width, False
    return _UNSHOWABLE, 1, True


def wrap(text: str, width: int) -> list[tuple[int, int]]:
    """Lines of ``text`` for ``width`` cells: (start, end) character ranges. A newline ends its
    line (and is part of it); a line too long breaks after its last space (or before a space that
    does not fit), else where it must. Every character keeps a cell, spaces too: each is coloured."""
    width = max(2, width)
    lines: list[tuple[int, int]] = []
    start = used = 0
    last_space = -1
    for i, ch in enumerate(text):
        w = glyph(ch)[1]
        if used + w > width and i > start:
            if ch == " ":  # the space that does not fit starts the next line
                lines.append((start, i))
                start, used = i, 0
            elif last_space >= start:
                lines.append((start, last_space + 1))
                start = last_space + 1
                used = sum(glyph(c)[1] for c in text[start:i])
            else:
                lines.append((start, i))
                start, used = i, 0
            last_space = -1
        used += w
        if ch == " ":
            last_space = i
        if ch == "\n":
            lines.append((start, i + 1))
            start, used, last_space = i + 1, 0, -1
    if start < len(text) or not lines:
        lines.append((start, len(text)))
    return lines


def diverging_colors(widget: Any, background: Color) -> list[Color]:
    """The theme's diverging scale, ``2 * LEVELS + 1`` colours from -1 to +1."""
    variables = getattr(widget.app, "theme_variables", {}) or {}

    def pick(names: tuple[str, ...], fallback: Color) -> Color:
        for name in names:
            try:
                color = Color.parse(variables[name])
            except (KeyError, Exception):
                continue
            return color if color.a >= 1.0 else background + color
        return fallback

    negative = pick(("heatmap-negative", "primary"), Color.parse("#3b82f6"))
    positive = pick(("heatmap-positive", "error"), Color.parse("#ef4444"))
    zero = pick(("heatmap-zero",), background)
    return [
        zero.blend(negative, -level / LEVELS) if level < 0 else zero.blend(positive, level / LEVELS)
        for level in range(-LEVELS, LEVELS + 1)
    ]


def levels(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] as palette indices 0 … 2 * LEVELS (NaN: -1, uncoloured)."""
    out = np.full(len(values), -1, dtype=np.int64)
    finite = np.isfinite(values)
    out[finite] = np.rint(np.clip(values[finite], -1.0, 1.0) * LEVELS).astype(np.int64) + LEVELS
    return out


class ProbeText(ScrollView, can_focus=True):
    """The probe, wrapped, coloured by ``values`` (one per character), with an optional cursor."""

    DEFAULT_CSS = """
    ProbeText { height: 1fr; width: 1fr; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.text = ""
        self.values: np.ndarray | None = None
        self.cursor: int | None = None
        self._levels: np.ndarray | None = None
        self._glyphs: list[tuple[str, int, bool]] = []
        self._lines: list[tuple[int, int]] = []
        self._line_of: np.ndarray = np.zeros(0, dtype=np.int64)
        self._wrapped_for = -1
        self._styles: dict[tuple[int, bool, bool], Style] = {}
        self._palette_key: tuple | None = None

    # ------------------------------------------------------------------ API
    def set_text(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self._glyphs = [glyph(ch) for ch in text]
            self._wrapped_for = -1
            if self.cursor is not None:
                self.cursor = min(self.cursor, max(0, len(text) - 1))
        self._rewrap()
        self.refresh()

    def set_values(self, values: np.ndarray | None) -> None:
        self.values = values
        self._levels = None if values is None else levels(np.asarray(values, dtype=np.float64))
        self.refresh()

    def set_cursor(self, pos: int | None) -> None:
        self.cursor = None if pos is None else max(0, min(pos, len(self.text) - 1))
        if self.cursor is not None:
            self._rewrap()
            line = int(self._line_of[self.cursor]) if len(self._line_of) else 0
            self.scroll_to_region_line(line)
        self.refresh()

    def line_of(self, pos: int) -> int:
        self._rewrap()
        return int(self._line_of[pos]) if 0 <= pos < len(self._line_of) else 0

    @property
    def lines(self) -> list[tuple[int, int]]:
        self._rewrap()
        return self._lines

    def scroll_to_region_line(self, line: int) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_offset.y)
        if line < top:
            self.scroll_to(y=line, animate=False)
        elif line >= top + height:
            self.scroll_to(y=line - height + 1, animate=False)

    # ------------------------------------------------------------------ layout
    def _rewrap(self) -> None:
        width = max(2, self.scrollable_content_region.width or self.size.width or 80)
        if width == self._wrapped_for:
            return
        self._wrapped_for = width
        self._lines = wrap(self.text, width)
        self._line_of = np.zeros(len(self.text), dtype=np.int64)
        for n, (a, b) in enumerate(self._lines):
            self._line_of[a:b] = n
        self.virtual_size = Size(width, len(self._lines))

    def on_resize(self) -> None:
        self._wrapped_for = -1
        self._rewrap()
        if self.cursor is not None:
            self.scroll_to_region_line(int(self._line_of[self.cursor]) if len(self._line_of) else 0)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette_key = None

    # ------------------------------------------------------------------ drawing
    def _style(self, level: int, substituted: bool, cursor: bool) -> Style:
        background = self.background_colors[1]
        foreground = self.styles.color if self.styles.color.a > 0 else Color.parse("#e0e0e0")
        key = (background.hex, foreground.hex, getattr(self.app, "theme", ""))
        if key != self._palette_key:
            self._palette_key = key
            self._styles = {}
            self._palette = [c.rich_color for c in diverging_colors(self, background)]
            self._fg = (background + foreground).rich_color
            self._dim = background.blend(background + foreground, 0.55).rich_color
        style_key = (level, substituted, cursor)
        style = self._styles.get(style_key)
        if style is None:
            style = Style(
                color=self._dim if substituted else self._fg,
                bgcolor=self._palette[level] if level >= 0 else None,
                reverse=cursor,
                bold=cursor,
            )
            self._styles[style_key] = style
        return style

    def render_line(self, y: int) -> Strip:
        self._rewrap()
        width = self.scrollable_content_region.width
        line = int(self.scroll_offset.y) + y
        if line >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        a, b = self._lines[line]
        segments: list[Segment] = []
        run_text: list[str] = []
        run_style: Style | None = None
        for i in range(a, b):
            g, _, substituted = self._glyphs[i]
            level = int(self._levels[i]) if self._levels is not None and i < len(self._levels) else -1
            style = self._style(level, substituted, i == self.cursor)
            if style is not run_style and run_text:
                segments.append(Segment("".join(run_text), run_style))
                run_text = []
            run_style = style
            run_text.append(g)
        if run_text:
            segments.append(Segment("".join(run_text), run_style))
        return Strip(segments).extend_cell_length(width, self.rich_style).crop(0, width)
