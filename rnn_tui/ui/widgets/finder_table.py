"""The explorer's interpretable-cell finder: the best cell for each property of the text, ranked
by how closely its activation follows the property over the probe (|r|, Pearson). Enter shows the
highlighted cell in the cell view."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from rnn_tui.core import events as ev
from rnn_tui.core.text_properties import PROPERTIES

BAR_WIDTH = 10


def bar(r: float, width: int = BAR_WIDTH) -> str:
    """|r| as a bar of eighth blocks."""
    eighths = round(min(1.0, abs(r)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


class FinderTable(DataTable):
    BINDINGS = [Binding("enter", "show_cell", "Show cell")]

    class ShowCell(Message):
        def __init__(self, layer: int, state: str, unit: int) -> None:
            super().__init__()
            self.layer, self.state, self.unit = layer, state, unit

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.cells: list[dict] = []

    def on_mount(self) -> None:
        self.add_columns("property", "layer", "state", "cell", "r", "|r|")

    def show_result(self, result: ev.Explored) -> None:
        row = self.cursor_row
        self.cells = list(result.cells)
        self.clear()
        layers = result.h.shape[0]
        for m in self.cells:
            self.add_row(
                PROPERTIES.get(m["property"], m["property"]),
                f"{m['layer'] + 1}/{layers}",
                m["state"],  # r is over the raw cell state c (the cell view draws tanh c)
                str(m["unit"]),
                f"{m['r']:+.2f}",
                bar(m["r"]),
            )
        if self.cells:
            self.move_cursor(row=min(max(0, row), len(self.cells) - 1))

    def action_show_cell(self) -> None:
        if 0 <= self.cursor_row < len(self.cells):
            m = self.cells[self.cursor_row]
            self.post_message(self.ShowCell(int(m["layer"]), str(m["state"]), int(m["unit"])))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_show_cell()
