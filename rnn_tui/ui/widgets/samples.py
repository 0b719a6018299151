"""The samples log: text from the model as it learns, newest first, each under a header that says
the step and the settings it was drawn with.

Newest first, so the newest sample's header is the panel's first line and never scrolls out of
view (a person who scrolled down to read an older sample stays where they are). Lines are wrapped
here, at the panel's width, and a wrapped line's continuation rows start with a dim "↪ ": a
long line of code (``#define X`` and its tail) is not mistaken for two lines.
"""

from __future__ import annotations

import collections
import dataclasses

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

CONTINUATION = "↪ "
MAX_SAMPLES = 50


@dataclasses.dataclass(frozen=True)
class Sample:
    step: int
    prime: str
    text: str
    temperature: float
    top_k: int

    def header(self) -> str:
        return f"step {self.step:,} · T {self.temperature:.2f} · top-k {self.top_k or 'all'}"


def wrap_line(line: str, width: int) -> list[tuple[int, int]]:
    """Where to cut one line (no newlines) into rows: (start, end) character offsets. The first
    row is ``width`` cells wide, the others ``width - len(CONTINUATION)`` (they carry the marker).
    Cuts after the last space that fits, else inside the word; a wide character is never split."""
    rows: list[tuple[int, int]] = []
    start, n = 0, len(line)
    if n == 0:
        return [(0, 0)]
    while start < n:
        room = max(2, width if not rows else width - cell_len(CONTINUATION))
        used, end, last_space = 0, start, -1
        while end < n:
            w = cell_len(line[end])
            if used + w > room:
                break
            used += w
            if line[end] == " ":
                last_space = end
            end += 1
        if end < n and last_space >= start and line[end] != " ":
            end = last_space + 1  # the space stays at the end of the row
        elif end < n and line[end] == " ":
            end += 1  # a space that would start the next row ends this one (past the edge, unseen)
        end = max(end, start + 1)
        rows.append((start, end))
        start = end
    return rows


class SamplesLog(ScrollView, can_focus=False):
    DEFAULT_CSS = """
    SamplesLog { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; overflow-y: auto; scrollbar-gutter: stable; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.samples: collections.deque[Sample] = collections.deque(maxlen=MAX_SAMPLES)
        self.count = 0
        self._lines: list[Strip] = []
        self._lines_key: tuple | None = None

    def add_sample(self, step: int, prime: str, text: str, temperature: float, top_k: int) -> None:
        self.count += 1
        self.samples.appendleft(Sample(step, prime, text, temperature, top_k))
        before = len(self._lines)
        self._build()
        if self.scroll_y > 0:  # reading an older sample: keep it where it was
            self.scroll_to(y=self.scroll_y + len(self._lines) - before, animate=False)
        self.refresh()

    def newest_header(self) -> str:
        return self.samples[0].header() if self.samples else ""

    # ------------------------------------------------------------------ drawing
    def on_resize(self) -> None:
        self._build()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines_key = None

    def _width(self) -> int:
        # (the scrollbar's column is always kept: the width does not change when it appears)
        return max(8, self.scrollable_content_region.width or self.size.width)

    def _build(self) -> None:
        width = self._width()
        key = (width, self.count, self.rich_style)
        if key == self._lines_key:
            return
        base = self.rich_style
        dim = base + Style(dim=True)
        prime_style = base + Style(bold=True, underline=True)
        lines: list[Strip] = []
        for i, sample in enumerate(self.samples):
            if i:
                lines.append(Strip.blank(width, base))
            title = f"── {sample.header()} "
            lines.append(Strip([Segment(title + "─" * max(0, width - cell_len(title)), dim)]).crop(0, width))
            body = sample.prime + sample.text
            offset = 0
            for line in body.split("\n"):
                for r, (a, b) in enumerate(wrap_line(line, width)):
                    segments = [Segment(CONTINUATION, dim)] if r else []
                    cut = max(a, min(b, len(sample.prime) - offset))  # the prime is underlined
                    if cut > a:
                        segments.append(Segment(line[a:cut], prime_style))
                    if b > cut:
                        segments.append(Segment(line[cut:b], base))
                    lines.append(Strip(segments).adjust_cell_length(width, base))
                offset += len(line) + 1
        self._lines = lines
        self._lines_key = key
        self.virtual_size = Size(width, len(lines))

    def render_line(self, y: int) -> Strip:
        if self._lines_key is None or self._lines_key[0] != self._width():
            self._build()
        index = self.scroll_offset.y + y
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.size.width, self.rich_style)

    def text(self) -> str:
        """What the panel holds, as plain lines (for tests)."""
        return "\n".join(strip.text.rstrip() for strip in self._lines)
