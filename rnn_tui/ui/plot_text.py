"""What the explorer's plotext charts share: a base widget, a private figure, theme colours,
ANSI → Rich text."""

from __future__ import annotations

from typing import Any

import plotext
from rich.text import Text
from textual.color import Color
from textual.widget import Widget

from rnn_tui.core import events as ev
from rnn_tui.ui.themes import VARIABLE_DEFAULTS

THEME_NAME = "rnn-tui-explorer"


def new_figure() -> Any:
    """A plotext figure of our own, sized by the caller (not by the real terminal)."""
    try:
        term = type(plotext.terminal)()
        term.limit(False, False)
        return term._master
    except Exception:  # pragma: no cover - a plotext release without these internals
        plotext.terminal.limit(False, False)
        return plotext.figure


def rgb(color: Color) -> tuple[int, int, int]:
    return (int(color.r), int(color.g), int(color.b))


def theme_colors(widget: Any, names: dict[str, tuple[str, str]]) -> dict[str, Color]:
    """``{key: (theme variable, fallback)}`` → colours, plus "background" and "text"."""
    app = widget.app
    variables = dict(getattr(app, "theme_variables", {}) or {}) or app.get_css_variables()

    def get(name: str, fallback: str) -> Color:
        try:
            return Color.parse(variables.get(name) or VARIABLE_DEFAULTS.get(name) or fallback)
        except Exception:
            return Color.parse(fallback)

    background = get("background", "#121212")
    foreground = get("foreground", "#e0e0e0").with_alpha(1.0)
    out = {key: get(var, fallback) for key, (var, fallback) in names.items()}
    out["background"] = background
    out["text"] = background.blend(foreground, 0.75)
    return out


def start(fig: Any, width: int, height: int, text: Color) -> None:
    fig.clear()
    fig.plot_size(max(10, width), max(5, height))
    plotext.add_theme(THEME_NAME, text=rgb(text))
    fig.theme(THEME_NAME)
    fig.canvas("default")


def finish(fig: Any) -> Text:
    return Text.from_ansi(fig.build().string().rstrip("\n"), no_wrap=True, overflow="crop")


def centred(message: str, width: int, height: int, style: str = "dim") -> Text:
    top = max(0, (height - 1) // 2)
    line = message if len(message) <= width else message[: max(1, width - 1)] + "…"
    text = Text("\n" * top, no_wrap=True, overflow="crop")
    text.append(" " * max(0, (width - len(line)) // 2) + line, style=style)
    return text


class ExplorerChart(Widget):
    """A chart of the explorer's latest answer; a subclass draws it (``draw``)."""

    DEFAULT_CSS = "ExplorerChart { height: 1fr; width: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result: ev.Explored | None = None
        self.figure = new_figure()

    def show_result(self, result: ev.Explored) -> None:
        self.result = result
        self.refresh()

    def render(self) -> Text:
        width, height = max(10, self.content_size.width), max(5, self.content_size.height)
        if self.result is None:
            return centred("waiting for the explorer…", width, height)
        return self.draw(self.result, width, height)

    def draw(self, result: ev.Explored, width: int, height: int) -> Text:
        raise NotImplementedError
