"""The explorer's probe text editor (a modal screen)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from rnn_tui.core.errors import CorpusError
from rnn_tui.core.events import EXPLORE_MAX_CHARS
from rnn_tui.core.explore_files import decode_probe, read_probe_bytes
from rnn_tui.ui.widgets.dialogs import PrimeInput


def read_probe(value: str, cwd: Path | None = None) -> str | None:
    """What the person typed: ``@FILE`` reads a file (UTF-8, its first EXPLORE_MAX_CHARS
    characters), ``\\n`` is a newline, empty means the validation passage (None). A text that
    cannot be used raises ``CorpusError`` with one line."""
    if not value.strip():
        return None
    if value.startswith("@"):
        path = (cwd or Path.cwd()) / Path(value[1:].strip()).expanduser()
        return decode_probe(read_probe_bytes(path, EXPLORE_MAX_CHARS), path, EXPLORE_MAX_CHARS)
    text = value.replace("\\n", "\n")[:EXPLORE_MAX_CHARS]
    if len(text) < 2:
        raise CorpusError("the probe text needs at least 2 characters")
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
        except CorpusError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.dismiss(text or "")

    def action_cancel(self) -> None:
        self.dismiss(None)
