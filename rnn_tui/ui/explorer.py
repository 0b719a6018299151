"""The explorer screen: inside the network, from the trainer's current weights.

Five views of one ``Explored`` answer: the cell view (the text coloured by one cell), the
interpretable-cell finder, the next-character guesses under a cursor (and surprise), the LSTM
gates' saturation, and the memory curves. The screen asks the trainer (``Explore``, through the
app's link) when it opens, when the person asks (``r``, a new probe text), and on a slow timer while
the weights change; the trainer answers between steps within its budget. It never waits on the
trainer: the last answer stays on screen until the next arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Static, TabbedContent, TabPane

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.explore_files import save_activations
from rnn_tui.ui.widgets.cell_view import CellView
from rnn_tui.ui.widgets.dialogs import HelpScreen
from rnn_tui.ui.widgets.explorer_dialogs import ProbeScreen
from rnn_tui.ui.widgets.finder_table import FinderTable
from rnn_tui.ui.widgets.gate_scatter import GateScatter
from rnn_tui.ui.widgets.memory_plot import HELP as MEMORY_HELP
from rnn_tui.ui.widgets.memory_plot import MemoryPlot
from rnn_tui.ui.widgets.prediction_view import PredictionView

VIEWS = ("cells", "finder", "predictions", "gates", "memory")
REFRESH_S = 5.0  # how often the screen asks for fresh views while the weights change
ANSWER_TIMEOUT_S = 120.0  # an answer this late is given up on, and asked for again


@dataclass(frozen=True)
class ExploreOptions:
    """What the explorer reads: ``text`` (None: a validation passage), at most ``chars`` long."""

    text: str | None = None
    chars: int = 2000


@dataclass(frozen=True)
class RunContext:
    """What the explorer needs to know of the run the app shows."""

    step: int
    training: bool  # the weights are changing
    run_dir: str


class ExplorerScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,e", "back", "Back"),
        Binding("tab", "view(1)", "Next view", priority=True),
        Binding("shift+tab", "view(-1)", "Prev view", show=False, priority=True),
        Binding("t", "probe_text", "Text"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("x", "export", "Export"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
    ]
    HELP_ROWS = [
        ("tab / shift+tab", "next / previous view: cells, finder, predictions, gates, memory"),
        ("← →", "cells: previous / next cell; predictions: move the cursor"),
        ("0-9", "cells: type a cell's number to jump to it"),
        ("n", "cells: next layer"),
        ("c", "cells: hidden state h or cell state c (drawn as tanh c)"),
        ("f", "cells: the next cell the finder found (best first)"),
        ("enter", "finder: show the highlighted cell in the cell view"),
        ("↑ ↓ home end", "predictions: move the cursor by line; cells: scroll"),
        ("m", "predictions: colour the text by surprise (how unlikely each character was)"),
        ("t", "the probe text: type or paste it, @FILE, or empty for the validation passage"),
        ("r", "recompute now from the current weights"),
        ("x", "export: the screen as SVG and the activations as .npz, into the run directory"),
        ("e, esc", "back to the main screen"),
    ]

    def __init__(
        self,
        send: Callable[[ev.Command], None],
        context: Callable[[], RunContext],
        text: str | None = None,
        chars: int = 2000,
    ) -> None:
        super().__init__()
        self.send = send
        self.context = context
        self.probe = text  # None: a passage of the validation split
        self.chars = chars
        self.result: ev.Explored | None = None
        self.asked_at: float | None = None  # an answer is awaited since then
        self.failure: str | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        self.title_label = Label("explorer", id="explorer-title")
        self.cells = CellView(id="cell-view")
        self.finder = FinderTable(id="finder-table")
        self.predictions = PredictionView(id="prediction-view")
        self.gates = GateScatter(id="gate-scatter")
        self.memory = MemoryPlot(id="memory-plot")
        self.memory_summary = Static("", id="memory-summary")
        yield self.title_label
        with TabbedContent(id="views", initial="cells"):
            with TabPane("Cells", id="cells"):
                yield self.cells
            with TabPane("Finder", id="finder"):
                yield Static(
                    "The best cell for each property of the text, by how closely it follows it (Pearson r "
                    "over the probe). enter: show it.",
                    classes="explorer-hint",
                )
                yield self.finder
            with TabPane("Predictions", id="predictions"):
                yield self.predictions
            with TabPane("Gates", id="gates"):
                yield self.gates
            with TabPane("Memory", id="memory"):
                with Vertical():
                    yield self.memory
                    yield self.memory_summary
                    yield Static(MEMORY_HELP, classes="explorer-hint", id="memory-help")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.tick)

    def on_screen_resume(self) -> None:
        """Opened (again): the last answer at once, a fresh one asked for when it is stale."""
        self.focus_view()
        ctx = self.context()
        if self.result is None or ctx.step != self.result.step:
            self.ask(refresh=False)
        self.show_title()

    # ------------------------------------------------------------------ asking and answers
    def ask(self, refresh: bool) -> None:
        self.asked_at = time.monotonic()
        self.failure = None
        self.send(ev.Explore(text=self.probe, chars=self.chars, refresh=refresh))
        self.show_title()

    def tick(self) -> None:
        """While the weights change, ask again now and then (the trainer keeps to its budget)."""
        if self.app.screen is not self:
            return
        now = time.monotonic()
        if self.asked_at is not None and now - self.asked_at < ANSWER_TIMEOUT_S:
            return
        ctx = self.context()
        if self.asked_at is not None or (self.result is not None and ctx.step != self.result.step):
            self.ask(refresh=ctx.training)

    def show_result(self, result: ev.Explored) -> None:
        self.result = result
        self.asked_at = None
        self.cells.show_result(result)
        self.finder.show_result(result)
        self.predictions.show_result(result)
        self.gates.show_result(result)
        self.memory.show_result(result)
        self.memory_summary.update(self.memory.summary())
        if result.note:
            self.notify(result.note, severity="warning", timeout=6)
        self.show_title()

    def show_failure(self, reason: str) -> None:
        self.asked_at = None
        self.failure = reason
        self.notify(reason, severity="error", timeout=10)
        self.show_title()

    def show_title(self) -> None:
        r = self.result
        parts = ["explorer"]
        # what is happening first: at 80 columns the end of the line is cut
        if self.asked_at is not None:
            parts.append("updating…")
        elif self.failure:
            parts.append("failed: " + self.failure)
        if r is not None:
            what = "validation passage" if self.probe is None else "your text"
            parts += [f"step {r.step:,}", f"loss {r.loss:.3f} nats/char", f"{what}, {len(r.text):,} chars"]
        self.title_label.update(" · ".join(parts))

    def on_cell_view_changed(self, _message: CellView.Changed) -> None:
        self.cells.border_title = self.cells.legend()
        self.cells.border_subtitle = self.cells.describe()

    def on_finder_table_show_cell(self, message: FinderTable.ShowCell) -> None:
        self.query_one(TabbedContent).active = "cells"
        self.cells.select(message.layer, message.state, message.unit)
        self.focus_view()

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self.focus_view()

    # ------------------------------------------------------------------ actions
    @property
    def view(self) -> str:
        return self.query_one(TabbedContent).active or "cells"

    def focus_view(self) -> None:
        target = {"cells": self.cells, "finder": self.finder, "predictions": self.predictions.text_view}.get(self.view)
        if target is not None:
            target.focus()

    def action_view(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = VIEWS[(VIEWS.index(self.view) + step) % len(VIEWS)]

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh_now(self) -> None:
        self.ask(refresh=False)

    def action_probe_text(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.probe = text or None
                self.ask(refresh=False)

        self.app.push_screen(ProbeScreen(self.probe), done)

    def action_help(self) -> None:
        title = "explorer keys · esc closes · ↑↓ scroll · the main screen's keys work here too"
        self.app.push_screen(HelpScreen(self.HELP_ROWS, title=title, note="memory curve: " + MEMORY_HELP))

    def action_export(self) -> None:
        """The screen as SVG and the activations as .npz, into the run directory's explorer/."""
        r = self.result
        if r is None:
            self.notify("nothing to export yet", severity="warning")
            return
        folder = Path(self.context().run_dir or ".") / "explorer"
        stem = f"step{r.step}-{self.view}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            svg = self.app.save_screenshot(filename=f"{stem}.svg", path=str(folder))
            npz = save_npz(folder / f"{stem}.npz", r)
        except OSError as exc:
            self.notify(f"export failed: {exc.strerror or exc}", severity="error")
            return
        except RnnTuiError as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify(f"saved {svg} and {npz.name}", timeout=6)


def save_npz(path: Path, r: ev.Explored) -> Path:
    """The activations the screen shows (see ``rnn_tui/core/explore_files.py``), and the other
    views' numbers."""
    return save_activations(
        path,
        r.text,
        r.h,
        r.c,
        top_chars=np.array(r.top_chars),
        top_probs=np.asarray(r.top_probs, dtype=np.float32),
        p_next=np.asarray(r.p_next, dtype=np.float32),
        memory_k=np.asarray(r.memory_k, dtype=np.int32),
        memory_grad=np.asarray(r.memory_grad, dtype=np.float64),
        memory_flip=np.asarray(r.memory_flip, dtype=np.float64),
        step=np.array(r.step),
        **({} if r.saturation is None else {"saturation": np.asarray(r.saturation, dtype=np.float32)}),
    )
