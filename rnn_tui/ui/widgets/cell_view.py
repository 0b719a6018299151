"""The explorer's cell view: the probe text, each character's background coloured by one cell.

The cell is a unit of one layer's hidden state ``h`` or cell state ``c`` (drawn as tanh(c), what
the LSTM itself applies before its output gate). Keys: ←/→ the previous/next cell, ``n`` the next
layer, ``c`` h or c, ``f`` the next cell the finder found (starting with the best), and typing a
number jumps to that cell. ↑/↓ and the page keys scroll the text.
"""

from __future__ import annotations

import time

import numpy as np
from textual import events
from textual.binding import Binding
from textual.message import Message

from rnn_tui.core import events as ev
from rnn_tui.core.text_properties import PROPERTIES
from rnn_tui.ui.widgets.probe_text import LEVELS, ProbeText, diverging_colors

NUMBER_TIMEOUT = 1.5  # seconds after which a new digit starts a new number


class CellView(ProbeText):
    BINDINGS = [
        Binding("right", "unit(1)", "Next cell", key_display="→"),
        Binding("left", "unit(-1)", "Prev cell", key_display="←"),
        Binding("n", "next_layer", "Layer"),
        Binding("c", "toggle_state", "h/c"),
        Binding("f", "next_found", "Found cells"),
    ]

    class Changed(Message):
        """The cell shown changed (the screen updates its title)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result: ev.Explored | None = None
        self.layer_index = 0
        self.state = "h"
        self.unit = 0
        self.found_index = -1  # the finder's cell shown, if one is
        self.number = ""
        self.number_at = 0.0

    # ------------------------------------------------------------------ data
    def show_result(self, result: ev.Explored) -> None:
        first, shown = self.result is None, self.shown_property()
        self.result = result
        layers, _, hidden = result.h.shape
        self.set_text(result.text)
        if first and result.cells:
            self.select_found(0)
            return
        self.layer_index = min(self.layer_index, layers - 1)
        self.unit = min(self.unit, hidden - 1)
        if result.c is None:
            self.state = "h"
        # the same cell stays shown; what the finder says of it is looked up in the new answer
        # (another probe finds other cells, in another order)
        self.found_index = self.found_for(self.key(), shown)
        self.redraw()

    def shown_property(self) -> str | None:
        """The property of the finder's cell shown now, if one is."""
        r = self.result
        if r is None or not 0 <= self.found_index < len(r.cells):
            return None
        return str(r.cells[self.found_index]["property"])

    def found_for(self, key: tuple[int, str, int], prefer: str | None = None) -> int:
        """The finder's entry for the cell ``key`` (the one of property ``prefer`` when the cell
        follows several), or -1."""
        if self.result is None:
            return -1
        matches = [
            i for i, m in enumerate(self.result.cells) if (int(m["layer"]), str(m["state"]), int(m["unit"])) == key
        ]
        preferred = [i for i in matches if self.result.cells[i]["property"] == prefer]
        return (preferred or matches or [-1])[0]

    def select(self, layer: int, state: str, unit: int) -> None:
        if self.result is None:
            return
        layers, _, hidden = self.result.h.shape
        self.layer_index = max(0, min(layer, layers - 1))
        self.state = "c" if state == "c" and self.result.c is not None else "h"
        self.unit = max(0, min(unit, hidden - 1))
        self.found_index = self.found_for(self.key())
        self.redraw()

    def select_found(self, index: int) -> None:
        if self.result is None or not self.result.cells:
            return
        index %= len(self.result.cells)
        m = self.result.cells[index]
        self.select(int(m["layer"]), str(m["state"]), int(m["unit"]))
        self.found_index = index  # one cell can follow two properties: f steps through each
        self.post_message(self.Changed())

    def key(self) -> tuple[int, str, int]:
        return (self.layer_index, self.state, self.unit)

    def cell_values(self) -> np.ndarray | None:
        r = self.result
        if r is None:
            return None
        if self.state == "c" and r.c is not None:
            return np.tanh(np.asarray(r.c[self.layer_index, :, self.unit], dtype=np.float64))
        return np.asarray(r.h[self.layer_index, :, self.unit], dtype=np.float64)

    def redraw(self) -> None:
        self.set_values(self.cell_values())
        self.post_message(self.Changed())

    def legend(self) -> str:
        """The colour scale, as border title markup: the theme's colours for -1, 0 and +1."""
        colors = diverging_colors(self, self.background_colors[1])
        neg, zero, pos = (colors[i].hex for i in (0, LEVELS, 2 * LEVELS))
        return f"[{neg}]██[/] -1 [{zero}]██[/] 0 [{pos}]██[/] +1"

    def describe(self) -> str:
        """E.g. ``layer 2/2 · c · cell 17/256 · inside a comment r=+0.83``."""
        r = self.result
        if r is None:
            return ""
        layers, _, hidden = r.h.shape
        shown = "tanh(c)" if self.state == "c" else "h"
        parts = [f"layer {self.layer_index + 1}/{layers}", shown, f"cell {self.unit}/{hidden}"]
        if 0 <= self.found_index < len(r.cells):
            m = r.cells[self.found_index]
            parts.append(f"{PROPERTIES.get(m['property'], m['property'])} r={m['r']:+.2f}")
        return " · ".join(parts)

    # ------------------------------------------------------------------ keys
    def action_unit(self, step: int) -> None:
        if self.result is not None:
            self.select(self.layer_index, self.state, (self.unit + step) % self.result.h.shape[2])

    def action_next_layer(self) -> None:
        if self.result is not None:
            self.select((self.layer_index + 1) % self.result.h.shape[0], self.state, self.unit)

    def action_toggle_state(self) -> None:
        self.select(self.layer_index, "c" if self.state == "h" else "h", self.unit)

    def action_next_found(self) -> None:
        self.select_found(self.found_index + 1)

    def on_key(self, event: events.Key) -> None:
        """Typing a number jumps to that cell as it is typed (a pause starts a new number)."""
        if event.character is None or not event.character.isdigit() or self.result is None:
            self.number = ""
            return
        event.stop()
        now = time.monotonic()
        hidden = self.result.h.shape[2]
        number = self.number + event.character if now - self.number_at < NUMBER_TIMEOUT else event.character
        if int(number) >= hidden:
            number = event.character
        self.number, self.number_at = number, now
        self.select(self.layer_index, self.state, int(number))
