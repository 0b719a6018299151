"""``rnn-tui compare [RUN...]``: the runs screen on its own, without a trainer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from rnn_tui.ui.runner import check_terminal, check_theme
from rnn_tui.ui.runs_screen import RunsScreen
from rnn_tui.ui.themes import DEFAULT_THEME, VARIABLE_DEFAULTS, register_themes


class CompareApp(App[int]):
    TITLE = "rnn-tui compare"
    BINDINGS = [Binding("q,ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, runs_dir: Path, picked: Sequence[Path] = (), theme: str | None = None) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.picked = list(picked)
        self.theme_warnings: list[str] = []
        register_themes(self, warnings=self.theme_warnings)
        self.theme = theme or os.environ.get("TEXTUAL_THEME") or DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(self.runs_dir, self.picked), lambda _: self.exit(0))
        for warning in self.theme_warnings:
            self.notify(warning, severity="warning")


def run_compare_app(runs_dir: Path, picked: Sequence[Path] = (), theme: str | None = None) -> int:
    check_terminal("runs screen", "list the runs instead: rnn-tui runs")
    check_theme(theme)
    app = CompareApp(runs_dir, picked, theme=theme)
    app.run()
    return app.return_code or 0
