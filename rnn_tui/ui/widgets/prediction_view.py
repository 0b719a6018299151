"""The explorer's prediction view: a cursor moves through the probe; beside it, the model's five
likeliest next characters after the one under the cursor, with their probabilities, and the
probability it gave the character that came. ``m`` colours the whole text by surprise instead:
each character by how unlikely the model found it (bits, -log2 p; 8 bits or more is full colour).
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from rnn_tui.core import events as ev
from rnn_tui.ui.widgets.probe_text import ProbeText, glyph

SURPRISE_FULL_BITS = 8.0


def shown(ch: str) -> str:
    """A character as the guesses list shows it: visible even when it is a space or a newline."""
    return {" ": "␠", "\n": "↵", "\t": "→"}.get(ch, glyph(ch)[0])


def surprise(p_next: np.ndarray) -> np.ndarray:
    """Per character, the surprise of the model when it came: -log2 p / 8, capped at 1 (the
    first character was not predicted: NaN)."""
    p = np.asarray(p_next, dtype=np.float64)
    out = np.full(len(p), np.nan)
    with np.errstate(divide="ignore"):
        out[1:] = np.minimum(1.0, -np.log2(np.maximum(p[:-1], 1e-30)) / SURPRISE_FULL_BITS)
    return out


class PredictionText(ProbeText):
    BINDINGS = [
        Binding("right", "move(1)", "→", show=False),
        Binding("left", "move(-1)", "←", show=False),
        Binding("down", "line(1)", "↓", show=False),
        Binding("up", "line(-1)", "↑", show=False),
        Binding("home", "edge(0)", "Line start", show=False),
        Binding("end", "edge(1)", "Line end", show=False),
        Binding("m", "toggle_surprise", "Surprise"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.surprise_mode = False
        self.p_next: np.ndarray | None = None

    def show_probe(self, text: str, p_next: np.ndarray) -> None:
        self.set_text(text)
        self.p_next = p_next
        self.set_values(surprise(p_next) if self.surprise_mode else None)
        self.set_cursor(0 if self.cursor is None else self.cursor)

    def action_move(self, step: int) -> None:
        if self.text:
            self.set_cursor((self.cursor or 0) + step)
            self.parent_view().update_guesses()

    def action_line(self, step: int) -> None:
        if not self.text:
            return
        pos = self.cursor or 0
        lines = self.lines
        here = self.line_of(pos)
        target = max(0, min(len(lines) - 1, here + step))
        column = pos - lines[here][0]
        a, b = lines[target]
        self.set_cursor(min(a + column, b - 1))
        self.parent_view().update_guesses()

    def action_edge(self, end: int) -> None:
        if self.text:
            a, b = self.lines[self.line_of(self.cursor or 0)]
            self.set_cursor(b - 1 if end else a)
            self.parent_view().update_guesses()

    def action_toggle_surprise(self) -> None:
        self.surprise_mode = not self.surprise_mode
        if self.p_next is not None:
            self.set_values(surprise(self.p_next) if self.surprise_mode else None)
        self.parent_view().update_guesses()

    def parent_view(self) -> PredictionView:
        view = self.parent
        assert isinstance(view, PredictionView)
        return view


class PredictionView(Horizontal):
    DEFAULT_CSS = """
    PredictionView { height: 1fr; }
    PredictionView > #guesses { width: 30; height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result: ev.Explored | None = None
        self.text_view = PredictionText(id="prediction-text")
        self.guesses = Static("", id="guesses")

    def compose(self) -> ComposeResult:
        yield self.text_view
        yield self.guesses

    def show_result(self, result: ev.Explored) -> None:
        self.result = result
        self.text_view.show_probe(result.text, result.p_next)
        self.update_guesses()

    def update_guesses(self) -> None:
        r = self.result
        t = self.text_view.cursor
        if r is None or t is None:
            return
        k = r.top_probs.shape[1]
        out = Text(no_wrap=True, overflow="ellipsis")
        context = "".join(ch if ch == " " else shown(ch) for ch in r.text[max(0, t - 11) : t + 1])
        out.append("after ", style="dim")
        out.append(("…" if t > 11 else "") + context, style="bold")
        out.append(f"\nposition {t:,} · guesses:\n", style="dim")
        for ch, p in zip(r.top_chars[t * k : (t + 1) * k], r.top_probs[t].tolist()):
            filled = round(p * 12)
            out.append(f" {shown(ch):2s} {p:5.1%} ")
            out.append("█" * filled, style="bold")
            out.append("\n")
        if t + 1 < len(r.text):
            p = float(r.p_next[t])
            bits = -math.log2(max(p, 1e-30))
            out.append("\nnext came ", style="dim")
            out.append(shown(r.text[t + 1]), style="bold")
            out.append(f"\n p {p:.1%} · {bits:.1f} bits\n")
        out.append(f"\nloss on this text {r.loss:.3f}\n", style="dim")
        if self.text_view.surprise_mode:
            out.append(f"colour: surprise (-log2 p)\nfull at ≥ {SURPRISE_FULL_BITS:g} bits · m: off", style="dim")
        else:
            out.append("m: colour by surprise", style="dim")
        self.guesses.update(out)
