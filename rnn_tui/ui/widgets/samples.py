"""The samples log: text from the model as it learns, each tagged with its step and temperature."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog


class SamplesLog(RichLog):
    DEFAULT_CSS = """
    SamplesLog { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    def __init__(self, **kw) -> None:
        # min_width: RichLog wraps at no less than this (78 by default, wider than the panel at 80x24)
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=2000, auto_scroll=True, min_width=20, **kw)
        self.count = 0

    def add_sample(self, step: int, prime: str, text: str, temperature: float, top_k: int) -> None:
        self.count += 1
        header = Text(f"── step {step:,} · T {temperature:.2f} · top-k {top_k or 'all'} ", style="dim")
        body = Text()
        if prime:
            body.append(prime, style="bold underline")
        body.append(text)
        self.write(header)
        self.write(body)
