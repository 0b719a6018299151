"""The explorer's modal screens: the probe text editor and the explorer's help."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from rnn_tui.core.events import EXPLORE_MAX_CHARS
from rnn_tui.ui.widgets.dialogs import PrimeInput
from rnn_tui.ui.widgets.memory_plot import HELP as MEMORY_HELP


class ProbeTextError(ValueError):
    pass


def read_probe(value: str, cwd: Path | None = None) -> str | None:
    """What the person typed: ``@FILE`` reads a file (UTF-8, its first EXPLORE_MAX_CHARS
    characters), ``\\n`` is a newline, empty means the validation passage (None)."""
    if not value.strip():
        return None
    if value.startswith("@"):
        path = (cwd or Path.cwd()) / Path(value[1:].strip()).expanduser()
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(EXPLORE_MAX_CHARS)
        except UnicodeDecodeError:
            raise ProbeTextError(f"{path} is not UTF-8 text") from None
        except OSError as exc:
            raise ProbeTextError(f"cannot read {path}: {exc.strerror or exc}") from None
    else:
        text = value.replace("\\n", "\n")[:EXPLORE_MAX_CHARS]
    if len(text) < 2:
        raise ProbeTextError("the probe text needs at least 2 characters")
    return text


class ProbeScreen(ModalScreen[str | None]):
    """Edit the text the explorer reads (dismissed with the text, "" for the validation passage,
    or None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, text: str | None) -> None:
        super().__init__()
        self.text = text or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="probe-box"):
            yield Label("Probe text (enter applies, esc cancels)")
            yield PrimeInput(value=self.text.replace("\n", "\\n"), placeholder="text, or @FILE", id="probe-input")
            yield Label(
                r"\n is a newline · @path reads a file · empty: a passage of the validation split", classes="hint"
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            text = read_probe(event.value)
        except ProbeTextError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.dismiss(text or "")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExplorerHelp(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label("explorer keys  (esc closes; the main screen's keys work here too)", id="help-title")
            table: DataTable = DataTable(show_cursor=False, zebra_stripes=True)
            table.add_columns("key", "what it does")
            for key, text in self.rows:
                table.add_row(key, text)
            yield table
            yield Static("memory curve: " + MEMORY_HELP, id="help-memory")
