"""Modal screens: help, prime text editor, quit without saving."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

MAX_PRIME = 2000


class HelpScreen(ModalScreen[None]):
    """Every key of the app, read from its bindings so the list cannot go stale. The rows fit
    80x24; a shorter terminal scrolls them (the box has the focus: arrows, page keys, home, end)."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(
        self,
        rows: list[tuple[str, str]],
        title: str = "rnn-tui keys · esc closes · ↑↓ scroll",
        note: str = "",
    ) -> None:
        super().__init__()
        self.rows = rows
        self.title_text = title
        self.note = note

    def compose(self) -> ComposeResult:
        width = max((len(key) for key, _ in self.rows), default=3) + 2
        lines = [f"[b]{'key':<{width}}what it does[/b]"]
        lines += [f"[b $accent]{escape(key):<{width}}[/]{escape(text)}" for key, text in self.rows]
        with VerticalScroll(id="help-box"):
            yield Label(self.title_text, id="help-title")
            yield Static("\n".join(lines), id="help-rows")
            if self.note:
                yield Static(self.note, id="help-note", markup=False)


class PrimeInput(Input):
    """An Input that takes a pasted text whole: newlines kept (as \\n), a huge paste cut to
    its last MAX_PRIME characters (the end is what a sample continues from), with a note."""

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # Input's own handler would insert the first line again
        if not event.text:
            return
        text = event.text.replace("\r\n", "\n")
        if len(text) > MAX_PRIME:
            text = text[-MAX_PRIME:]
            self.app.notify(f"pasted text cut to its last {MAX_PRIME:,} characters", severity="warning")
        text = text.replace("\n", "\\n")
        if self.selection.is_empty:
            self.insert_text_at_cursor(text)
        else:
            self.replace(text, *self.selection)


class PrimeScreen(ModalScreen[str | None]):
    """Edit the text samples start from."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prime: str) -> None:
        super().__init__()
        self.prime = prime

    def compose(self) -> ComposeResult:
        with Vertical(id="prime-box"):
            yield Label("Prime text (samples start from it; enter applies, esc cancels)")
            yield PrimeInput(value=self.prime.replace("\n", "\\n"), placeholder="e.g. ROMEO:", id="prime-input")
            yield Label(r"\n is a newline · characters the model has not seen are skipped", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        prime = event.value.replace("\\n", "\n")
        if len(prime) > MAX_PRIME:
            self.app.notify(f"prime cut to its last {MAX_PRIME:,} characters", severity="warning")
        self.dismiss(prime[-MAX_PRIME:])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid(id="confirm-box"):
            yield Label(self.question, id="confirm-question")
            yield Button("Yes (y)", variant="error", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
