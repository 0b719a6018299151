"""The title line: what is training where, fitted to the terminal's width.

Parts are joined with " · " and, when they do not fit, the least needed go first (the run
directory shrinks to its name, then goes; then the device), so a narrow terminal never shows a
part cut in half or a separator with nothing after it.
"""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len
from textual.widgets import Label

SEPARATOR = " · "


def fit_title(parts: list[str], width: int, run_dir: str = "") -> str:
    """``parts`` (most important first) and ``run_dir`` in at most ``width`` cells."""
    tries = []
    if run_dir:
        tries += [[*parts, run_dir], [*parts, Path(run_dir).name]]
    tries += [parts[:n] for n in range(len(parts), 0, -1)]
    for candidate in tries:
        line = SEPARATOR.join(p for p in candidate if p)
        if cell_len(line) <= width:
            return line
    first = parts[0] if parts else ""
    return first if cell_len(first) <= width else first[: max(0, width - 1)] + "…"


class TitleBar(Label):
    def __init__(self, text: str, **kw) -> None:
        super().__init__(text, markup=False, **kw)  # file names are not markup
        self.parts = [text]
        self.run_dir = ""

    def show(self, parts: list[str], run_dir: str = "") -> None:
        self.parts, self.run_dir = parts, run_dir
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width = self.content_size.width or self.app.size.width - 2
        self.update(fit_title(self.parts, width, self.run_dir))
