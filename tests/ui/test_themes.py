"""Theme files: bundled themes load and apply, user themes override, bad files are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.color import Color

from rnn_tui.ui import themes
from rnn_tui.ui.themes import (
    DEFAULT_THEME,
    SERIES_VARIABLES,
    VARIABLE_DEFAULTS,
    ThemeError,
    load_theme_file,
    load_themes,
    register_themes,
    theme_dirs,
)
from rnn_tui.ui.widgets.heatmap import HiddenStateHeatmap
from rnn_tui.ui.widgets.loss_plot import LossPlot

REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"
REQUIRED_VARIABLES = (
    "plot-train",
    "plot-train-smooth",
    "plot-val",
    "heatmap-negative",
    "heatmap-zero",
    "heatmap-positive",
    *SERIES_VARIABLES,
)


@pytest.fixture(autouse=True)
def isolated_user_config(tmp_path, monkeypatch):
    """Never read the real ~/.config during tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "rnn-tui" / "themes"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_dir_is_the_repo_themes_folder_and_comes_first(isolated_user_config):
    dirs = theme_dirs()
    assert dirs[0] == REPO_THEMES
    assert dirs[1] == isolated_user_config
    assert {p.stem for p in REPO_THEMES.glob("*.toml")} >= {"rnn-dark", "rnn-light", "rnn-256"}


def test_user_dir_defaults_to_dot_config(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert theme_dirs()[1] == tmp_path / ".config" / "rnn-tui" / "themes"


def test_installed_wheel_layout_is_preferred(monkeypatch, tmp_path):
    package = tmp_path / "site-packages" / "rnn_tui"
    data = package / "_data" / "themes"
    data.mkdir(parents=True)
    import rnn_tui.core.resources

    monkeypatch.setattr(rnn_tui.core.resources, "_PKG", package)
    assert theme_dirs()[0] == data


def test_every_bundled_theme_loads_with_all_variables():
    loaded = load_themes()
    assert DEFAULT_THEME in loaded
    assert {"rnn-dark", "rnn-light", "rnn-256"} <= set(loaded)
    for path in REPO_THEMES.glob("*.toml"):
        theme = load_theme_file(path)
        assert theme.name == path.stem  # file name and theme name agree
        for name in REQUIRED_VARIABLES:
            Color.parse(theme.variables[name])
    assert loaded["rnn-dark"].dark and not loaded["rnn-light"].dark


def _xterm_256() -> set[tuple[int, int, int]]:
    steps = (0x00, 0x5F, 0x87, 0xAF, 0xD7, 0xFF)
    cube = {(r, g, b) for r in steps for g in steps for b in steps}
    greys = {(8 + 10 * i,) * 3 for i in range(24)}
    return cube | greys


def test_rnn_256_uses_only_xterm_palette_colours():
    theme = load_theme_file(REPO_THEMES / "rnn-256.toml")
    palette = _xterm_256()
    values = [
        getattr(theme, field)
        for field in (
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
        )
    ] + [theme.variables[name] for name in REQUIRED_VARIABLES]
    for value in values:
        color = Color.parse(value)
        assert (color.r, color.g, color.b) in palette, value


class ThemedApp(App):
    """The real widgets under each theme: the test reads the colours they draw."""

    def __init__(self) -> None:
        super().__init__()
        self.registered = register_themes(self)
        self.theme = DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield LossPlot()
        yield HiddenStateHeatmap()


def rgb(value) -> tuple[int, int, int]:
    c = value if isinstance(value, Color) else Color.parse(value)
    return (c.r, c.g, c.b)


def plot_colours(plot: LossPlot) -> set[tuple[int, int, int]]:
    out = set()
    for span in plot.redraw().spans:
        color = span.style.color if not isinstance(span.style, str) else None
        if color is not None:
            t = color.get_truecolor()
            out.add((t.red, t.green, t.blue))
    return out


def heatmap_colours(heatmap: HiddenStateHeatmap) -> tuple[tuple[int, int, int], ...]:
    """The colours of -1, +1 (first line: top and bottom half) and 0 (second line, top half)."""
    first = next(seg for seg in heatmap.render_line(0) if seg.text.startswith("▀"))
    second = next(seg for seg in heatmap.render_line(1) if seg.text.startswith("▀"))
    return (
        rgb(Color.from_rich_color(first.style.color)),
        rgb(Color.from_rich_color(first.style.bgcolor)),
        rgb(Color.from_rich_color(second.style.color)),
    )


async def test_every_theme_colours_the_plot_and_heatmap_it_draws():
    app = ThemedApp()
    async with app.run_test(size=(100, 40)) as pilot:
        assert app.current_theme.name == DEFAULT_THEME
        assert set(app.registered) >= {"rnn-dark", "rnn-light", "rnn-256"}
        plot = app.query_one(LossPlot)
        plot.add_train(np.arange(1, 400), 4.0 - np.log(np.arange(1, 400)) / 3)
        plot.add_val(300, 2.5)
        heatmap = app.query_one(HiddenStateHeatmap)
        text = "abcdefghij"
        h = np.zeros((1, len(text), 3), dtype=np.float32)
        h[0, :, 0], h[0, :, 1] = -1.0, 1.0  # unit 2 stays at 0
        heatmap.set_probe(text, h)
        for name in app.registered:
            app.theme = name
            await pilot.pause()
            variables = app.current_theme.variables
            drawn = plot_colours(plot)
            for var in ("plot-train", "plot-train-smooth", "plot-val"):
                assert rgb(variables[var]) in drawn, (name, var)
            negative, positive, zero = heatmap_colours(heatmap)
            assert negative == rgb(variables["heatmap-negative"]), name
            assert positive == rgb(variables["heatmap-positive"]), name
            assert zero == rgb(variables["heatmap-zero"]), name
        # A built-in Textual theme without our variables still draws, with the defaults.
        app.theme = "textual-dark"
        await pilot.pause()
        assert rgb(VARIABLE_DEFAULTS["plot-val"]) in plot_colours(plot)


def test_user_theme_overrides_bundled_and_adds_new(isolated_user_config):
    write(
        isolated_user_config / "mine.toml",
        'name = "rnn-dark"\nprimary = "#123456"\n[variables]\nheatmap-positive = "#00ff00"\n',
    )
    write(isolated_user_config / "extra.toml", 'primary = "#abcdef"\ndark = false\n')
    loaded = load_themes()
    assert loaded["rnn-dark"].primary == "#123456"
    assert loaded["rnn-dark"].variables["heatmap-positive"] == "#00ff00"
    assert loaded["extra"].primary == "#abcdef"  # name defaults to the file name
    assert loaded["rnn-light"].primary != "#123456"  # others untouched


def test_malformed_toml_raises_theme_error_naming_the_file(tmp_path):
    bad = write(tmp_path / "broken.toml", 'name = "broken"\nprimary = "#ffffff\n')
    with pytest.raises(ThemeError) as info:
        load_theme_file(bad)
    message = str(info.value)
    assert str(bad) in message
    assert "TOML" in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "content, problem",
    [
        ('name = "x"\n', "missing required key 'primary'"),
        ('primary = "not-a-colour"\n', "'primary' is not a colour"),
        ('primary = "#fff"\nprimay = "#000"\n', "unknown key 'primay'"),
        ('primary = "#fff"\ndark = "yes"\n', "'dark' must be true or false"),
        ('primary = "#fff"\n[variables]\nheatmap-zero = "nope"\n', "'heatmap-zero' is not a colour"),
        ('primary = "#fff"\n[variables]\nplot-val = 3\n', "must be a string"),
        ('name = "two words"\nprimary = "#fff"\n', "must not contain spaces"),
    ],
)
def test_invalid_theme_content_is_explained(tmp_path, content, problem):
    path = write(tmp_path / "t.toml", content)
    with pytest.raises(ThemeError, match=problem) as info:
        load_theme_file(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file_is_a_theme_error(tmp_path):
    with pytest.raises(ThemeError, match="cannot read"):
        load_theme_file(tmp_path / "nothing.toml")


def test_bad_user_theme_is_skipped_with_a_warning(isolated_user_config):
    write(isolated_user_config / "bad.toml", "primary = [")
    write(isolated_user_config / "good.toml", 'primary = "#010203"\n')
    warnings: list[str] = []
    loaded = load_themes(warnings=warnings)
    assert "good" in loaded and "rnn-dark" in loaded
    assert len(warnings) == 1 and "bad.toml" in warnings[0]


def test_bad_bundled_theme_is_an_error(tmp_path):
    bundled = tmp_path / "bundled"
    write(bundled / "oops.toml", "primary = [")
    with pytest.raises(ThemeError, match="oops.toml"):
        load_themes([bundled, tmp_path / "user"])


def test_register_themes_returns_names(tmp_path):
    class Recorder:
        def __init__(self) -> None:
            self.themes = []

        def register_theme(self, theme) -> None:
            self.themes.append(theme)

    recorder = Recorder()
    names = register_themes(recorder)
    assert names == [t.name for t in recorder.themes]
    assert DEFAULT_THEME in names
    assert themes.DEFAULT_THEME == "rnn-dark"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"TERM": "tmux-256color"}, "rnn-256"),  # tmux without COLORTERM
        ({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, "rnn-dark"),
        ({"TERM": "xterm-256color", "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"}, "rnn-dark"),
        ({"TERM": "tmux-256color", "TEXTUAL_THEME": "rnn-light"}, "rnn-light"),  # the person's choice wins
    ],
)
async def test_the_default_theme_follows_the_terminals_colour_depth(monkeypatch, env, expected):
    from rnn_tui.ui.app import RnnTuiApp
    from tests.helpers import SilentLink

    for name in ("COLORTERM", "TEXTUAL_THEME", "TEXTUAL_DRIVER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = RnnTuiApp(SilentLink())
    assert app.theme == expected
    assert RnnTuiApp(SilentLink(), theme="rnn-dark").theme == "rnn-dark"  # --theme wins too
