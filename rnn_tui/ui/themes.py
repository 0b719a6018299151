"""Theme files: TOML → :class:`textual.theme.Theme`.

Themes are looked up in :func:`theme_dirs`, in order:

1. the bundled themes: ``rnn_tui/_data/themes`` in an installed wheel (the wheel
   maps the repository's top-level ``themes/`` there), else ``<repo>/themes``;
2. the user's themes: ``$XDG_CONFIG_HOME/rnn-tui/themes``
   (``~/.config/rnn-tui/themes`` when ``XDG_CONFIG_HOME`` is unset or empty).

A later directory overrides an earlier one for a theme of the same name, so a
user file named ``rnn-dark`` replaces the bundled ``rnn-dark``.

File format (every colour is any value :meth:`textual.color.Color.parse` takes,
e.g. ``"#1e88e5"``, ``"rgb(30,136,229)"``, ``"ansi_bright_blue"``)::

    name = "my-theme"          # optional, defaults to the file name without .toml
    dark = true                # optional, default true
    primary = "#5aa9e6"        # required
    secondary = "#..."         # optional: secondary accent warning error success
    foreground = "#..."        #           foreground background surface panel boost
    # optional numbers: luminosity_spread (0..1), text_alpha (0..1); optional bool: ansi

    [variables]                # optional; any Textual CSS variable, plus these:
    plot-train = "#..."        # raw training-loss series
    plot-train-smooth = "#..." # smoothed training loss
    plot-val = "#..."          # validation loss
    plot-series-1 = "#..."     # the runs screen: one colour per run, plot-series-1 to plot-series-8
    heatmap-negative = "#..."  # hidden-state heatmap colour for −1
    heatmap-zero = "#..."      #                                  0
    heatmap-positive = "#..."  #                                 +1

Errors: :func:`load_theme_file` raises :class:`ThemeError` (a ``ValueError``)
whose message is one line, ``"<path>: <problem>"``. :func:`load_themes` and
:func:`register_themes` raise for a bad *bundled* file (that is a bug in
rnn-tui, caught by the tests) but skip a bad *user* file; each skipped file
adds one line to the ``warnings`` list the caller passes in (and is logged with
:mod:`logging`), so the app can show them, e.g. with ``app.notify``.

This module must not import torch or ``rnn_tui.core``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from rnn_tui.core.resources import bundled_dir

__all__ = [
    "DEFAULT_THEME",
    "PALETTE_THEME",
    "SERIES_VARIABLES",
    "VARIABLE_DEFAULTS",
    "ThemeError",
    "bundled_theme_dir",
    "default_theme",
    "load_theme_file",
    "load_themes",
    "register_themes",
    "theme_dirs",
    "user_theme_dir",
]

log = logging.getLogger(__name__)

DEFAULT_THEME = "rnn-dark"
PALETTE_THEME = "rnn-256"  # the default where the terminal has no true colour


def default_theme(color_system: str | None) -> str:
    """The theme to use when the person chose none, for the terminal's colour depth as Rich
    detects it (``Console.color_system``: "truecolor", "256", "standard", "windows" or None).
    Below true colour, the default theme's blends would be rounded to the terminal's palette
    (its blue–red heatmap scale to teal and olive steps): use the theme drawn in that palette."""
    return PALETTE_THEME if color_system in ("256", "standard", "windows") else DEFAULT_THEME


SERIES_VARIABLES = tuple(f"plot-series-{i}" for i in range(1, 9))
"""The runs screen's palette: the colour of each run's curves, in the order runs are picked."""

VARIABLE_DEFAULTS: dict[str, str] = {
    "plot-train": "#5f87af",
    "plot-train-smooth": "#87d7ff",
    "plot-val": "#ffaf5f",
    # Tableau 10's hues, lightened for dark backgrounds
    **dict(
        zip(SERIES_VARIABLES, ("#5fafff", "#ffaf5f", "#87d787", "#ff5f5f", "#d7afff", "#5fd7d7", "#ffd75f", "#ff87af"))
    ),
}
"""Fallbacks for rnn-tui's own plot variables, for themes that lack them (e.g.
Textual's built-in themes). Return these from ``App.get_theme_variable_defaults``
so CSS that uses ``$plot-train`` still parses under any theme. The heatmap
variables are deliberately absent: without them the heatmap derives its colours
from the theme's primary/error/background."""

_COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_FLOAT_FIELDS = ("luminosity_spread", "text_alpha")
_BOOL_FIELDS = ("dark", "ansi")
# Variables rnn-tui itself reads as colours: validate them strictly.
_COLOR_VARIABLES = (
    "plot-train",
    "plot-train-smooth",
    "plot-val",
    "heatmap-negative",
    "heatmap-zero",
    "heatmap-positive",
    *SERIES_VARIABLES,
)


class ThemeError(ValueError):
    """A theme file could not be read or is invalid. The message is one line."""


def bundled_theme_dir() -> Path:
    """The directory of themes shipped with rnn-tui."""
    return bundled_dir("themes")


def user_theme_dir() -> Path:
    """``$XDG_CONFIG_HOME/rnn-tui/themes`` (default ``~/.config/rnn-tui/themes``)."""
    config = os.environ.get("XDG_CONFIG_HOME") or ""
    base = Path(config) if config.strip() else Path.home() / ".config"
    return base / "rnn-tui" / "themes"


def theme_dirs() -> list[Path]:
    """Theme directories, lowest priority first: bundled, then user."""
    return [bundled_theme_dir(), user_theme_dir()]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_theme_file(path: str | os.PathLike[str]) -> Theme:
    """Read one TOML theme file.

    Raises:
        ThemeError: the file cannot be read, is not valid TOML, or describes an
            invalid theme. The message is ``"<path>: <problem>"`` on one line.
    """
    path = Path(path)

    def fail(problem: str) -> ThemeError:
        return ThemeError(f"{path}: {_one_line(problem)}")

    try:
        raw = path.read_bytes()
    except OSError as error:
        raise fail(f"cannot read file ({error.strerror or error})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise fail(f"invalid TOML: {error}") from None

    fields: dict[str, Any] = {}
    name = data.pop("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise fail("'name' must be a non-empty string")
    if any(ch.isspace() for ch in name) or "," in name:
        raise fail(f"'name' must not contain spaces or commas: {name!r}")
    fields["name"] = name

    variables = data.pop("variables", {})
    if not isinstance(variables, dict):
        raise fail("[variables] must be a table")

    if "primary" not in data:
        raise fail("missing required key 'primary'")

    for key, value in data.items():
        if key in _COLOR_FIELDS:
            if not isinstance(value, str):
                raise fail(f"'{key}' must be a colour string, not {type(value).__name__}")
            try:
                Color.parse(value)
            except (ColorParseError, ValueError):
                raise fail(f"'{key}' is not a colour: {value!r}") from None
            fields[key] = value
        elif key in _FLOAT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise fail(f"'{key}' must be a number")
            if not 0.0 <= float(value) <= 1.0:
                raise fail(f"'{key}' must be between 0 and 1, not {value}")
            fields[key] = float(value)
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise fail(f"'{key}' must be true or false")
            fields[key] = value
        elif isinstance(value, dict):
            raise fail(f"unknown table [{key}] (only [variables] is allowed)")
        else:
            known = ", ".join(("name", *_COLOR_FIELDS, *_FLOAT_FIELDS, *_BOOL_FIELDS))
            raise fail(f"unknown key '{key}' (known keys: {known}, [variables])")

    clean_variables: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(value, str):
            raise fail(f"variable '{key}' must be a string, not {type(value).__name__}")
        if key in _COLOR_VARIABLES:
            try:
                Color.parse(value)
            except (ColorParseError, ValueError):
                raise fail(f"variable '{key}' is not a colour: {value!r}") from None
        clean_variables[key] = value
    fields["variables"] = clean_variables

    theme = Theme(**fields)
    try:
        theme.to_color_system().generate()
    except Exception as error:  # a value Textual's colour system rejects
        raise fail(f"Textual cannot build the theme: {error}") from None
    return theme


def _theme_files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".toml" and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def load_themes(
    dirs: Iterable[str | os.PathLike[str]] | None = None,
    *,
    warnings: list[str] | None = None,
) -> dict[str, Theme]:
    """Load every ``*.toml`` theme from ``dirs`` (default :func:`theme_dirs`).

    Later directories override earlier ones for the same theme name. The first
    directory is the bundled one: a bad file there raises :class:`ThemeError`.
    A bad file in a later (user) directory is skipped, and its one-line message
    is appended to ``warnings`` when given, and logged.

    Returns:
        Themes by name, in load order (bundled first).
    """
    directories = [Path(d) for d in (theme_dirs() if dirs is None else dirs)]
    themes: dict[str, Theme] = {}
    for index, directory in enumerate(directories):
        strict = index == 0
        for path in _theme_files(directory):
            try:
                theme = load_theme_file(path)
            except ThemeError as error:
                if strict:
                    raise
                message = f"skipped theme {error}"
                log.warning(message)
                if warnings is not None:
                    warnings.append(message)
                continue
            themes.pop(theme.name, None)  # re-insert so the order shows the override
            themes[theme.name] = theme
    return themes


def register_themes(
    app: Any,
    dirs: Iterable[str | os.PathLike[str]] | None = None,
    *,
    warnings: list[str] | None = None,
) -> list[str]:
    """Load themes (see :func:`load_themes`) and register them with ``app``.

    Can be called in ``App.__init__`` (after ``super().__init__()``), before
    setting ``self.theme``. Returns the registered theme names.
    """
    themes = load_themes(dirs, warnings=warnings)
    for theme in themes.values():
        app.register_theme(theme)
    return list(themes)
