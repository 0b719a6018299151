"""HiddenStateHeatmap: what a user sees in an 80x24 (and resized) terminal."""

from __future__ import annotations

import numpy as np
import pytest
from rich.color import Color as RichColor
from textual.app import App, ComposeResult
from textual.color import Color

from rnn_tui.ui.themes import DEFAULT_THEME, register_themes
from rnn_tui.ui.widgets.heatmap import HALF_BLOCK, HiddenStateHeatmap, display_char


class HeatmapApp(App):
    def __init__(self, theme: str = DEFAULT_THEME) -> None:
        super().__init__()
        register_themes(self)
        self.theme = theme

    def compose(self) -> ComposeResult:
        yield HiddenStateHeatmap()


def rgb(value: str | RichColor | None) -> tuple[int, int, int]:
    if isinstance(value, RichColor):
        triplet = value.get_truecolor()
        return (triplet.red, triplet.green, triplet.blue)
    assert value is not None
    color = Color.parse(value)
    return (color.r, color.g, color.b)


def lines_text(widget: HiddenStateHeatmap) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


def alternating_probe(text: str, layers: int = 2, hidden: int = 2) -> np.ndarray:
    """Unit 0 = +1 at even t, -1 at odd t; unit 1 the opposite; other units smaller."""
    T = len(text)
    sign = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)
    h = np.zeros((layers, T, hidden), dtype=np.float32)
    for layer in range(layers):
        h[layer, :, 0] = sign
        h[layer, :, 1] = -sign
        for unit in range(2, hidden):
            h[layer, :, unit] = sign * (0.5 / unit)
    return h


async def test_empty_state_says_no_probe_yet():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        await pilot.pause()
        text = lines_text(widget)
        middle = text[widget.size.height // 2]
        assert middle.strip() == "no probe yet"
        # centred
        assert abs(middle.index("n") - (80 - len("no probe yet")) // 2) <= 1
        assert widget.describe() == "no probe"
        assert HALF_BLOCK not in "".join(text)


async def test_axis_row_shows_probe_characters_in_order():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "to be, or\tnot\nto be "
        widget.set_probe(text, alternating_probe(text), step=1200)
        await pilot.pause()
        lines = lines_text(widget)
        axis, legend = lines[-2], lines[-1]
        assert "to·be,·or→not↵to·be·" in axis
        # Each character is in the column right above... i.e. its heat column:
        # the first heat row's half blocks start where the axis text starts.
        first_row = lines[0]
        assert first_row.index(HALF_BLOCK) == axis.index("t")
        assert first_row.count(HALF_BLOCK) == len(text)
        assert "−1" in legend and " 0 " in legend and "+1" in legend
        assert legend.count(HALF_BLOCK) == 16


async def test_long_probe_shows_most_recent_characters_that_fit():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "".join(chr(ord("a") + i % 26) for i in range(300)) + "THE-END"
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        lines = lines_text(widget)
        axis = lines[-2]
        assert axis.rstrip().endswith("THE-END")
        shown = axis.strip()
        assert text.endswith(shown)
        assert len(axis) == 80
        # heat columns == visible characters
        assert lines[0].count(HALF_BLOCK) == len(shown)
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        wider = lines_text(widget)[-2].strip()
        assert len(wider) > len(shown) and text.endswith(wider)


async def test_positive_and_negative_values_get_the_theme_colours():
    app = HeatmapApp("rnn-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "abcdefgh"
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        variables = app.theme_variables
        x0 = widget.render_line(0).text.index(HALF_BLOCK)
        even = widget.get_style_at(x0, 0)  # unit 0 = +1 (top), unit 1 = -1 (bottom)
        odd = widget.get_style_at(x0 + 1, 0)
        assert rgb(even.color) == rgb(variables["heatmap-positive"])
        assert rgb(even.bgcolor) == rgb(variables["heatmap-negative"])
        assert rgb(odd.color) == rgb(variables["heatmap-negative"])
        assert rgb(odd.bgcolor) == rgb(variables["heatmap-positive"])
        assert rgb(even.color) != rgb(odd.color)


async def test_colours_fall_back_to_theme_primary_and_error():
    app = HeatmapApp("textual-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        assert "heatmap-positive" not in app.theme_variables
        text = "abcdefgh"
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        x0 = widget.render_line(0).text.index(HALF_BLOCK)
        style = widget.get_style_at(x0, 0)
        assert rgb(style.color) == rgb(app.theme_variables["error"])
        assert rgb(style.bgcolor) == rgb(app.theme_variables["primary"])


async def test_theme_switch_recolours_the_heatmap():
    app = HeatmapApp("rnn-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "abcdefgh"
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        x0 = widget.render_line(0).text.index(HALF_BLOCK)
        dark = rgb(widget.get_style_at(x0, 0).color)
        app.theme = "rnn-light"
        await pilot.pause()
        await pilot.pause()
        light = rgb(widget.get_style_at(x0, 0).color)
        assert dark != light
        assert light == rgb(app.theme_variables["heatmap-positive"])


async def test_layer_switching_clamps_and_changes_the_picture():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "abcdefgh"
        h = alternating_probe(text, layers=2)
        h[1] = -h[1]  # layer 2 is the negative of layer 1
        widget.set_probe(text, h, step=7)
        await pilot.pause()
        # The top layer is shown by default.
        assert widget.shown_layer == 1
        assert widget.describe().startswith("layer 2/2 · h · step 7")
        x0 = widget.render_line(0).text.index(HALF_BLOCK)
        top_layer = widget.get_style_at(x0, 0).color

        widget.shown_layer = 99
        assert widget.shown_layer == 1
        widget.shown_layer = -5
        assert widget.shown_layer == 0
        await pilot.pause()
        assert widget.describe().startswith("layer 1/2")
        assert widget.border_subtitle == widget.describe()
        first_layer = widget.get_style_at(x0, 0).color
        assert rgb(first_layer) != rgb(top_layer)

        widget.action_next_layer()
        assert widget.shown_layer == 1
        widget.action_next_layer()  # wraps round
        assert widget.shown_layer == 0

        # A later probe with fewer layers clamps the layer.
        widget.shown_layer = 1
        widget.set_probe(text, h[:1])
        assert widget.shown_layer == 0


async def test_kind_toggle_shows_cell_state():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "abcdefgh"
        h = alternating_probe(text)
        c = -3.0 * h  # tanh(c) has the opposite sign of h
        widget.set_probe(text, h, c)
        await pilot.pause()
        x0 = widget.render_line(0).text.index(HALF_BLOCK)
        h_style = widget.get_style_at(x0, 0)
        widget.action_toggle_kind()
        await pilot.pause()
        assert widget.kind == "c"
        assert " · c · " in widget.describe()
        assert "tanh(c)" in widget.render_line(widget.size.height - 1).text
        c_style = widget.get_style_at(x0, 0)
        assert rgb(c_style.color) != rgb(h_style.color)
        assert rgb(c_style.color) == rgb(app.theme_variables["heatmap-negative"])
        widget.action_toggle_kind()
        assert widget.kind == "h"

        # Without c, toggling does nothing.
        widget.set_probe(text, h)
        widget.action_toggle_kind()
        assert widget.kind == "h"
        with pytest.raises(ValueError):
            widget.kind = "x"


async def test_shows_most_variable_units_with_indices_in_gutter():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "hello world, " * 4
        T, hidden = len(text), 100
        rng = np.random.default_rng(1)
        scale = np.full(hidden, 0.01)
        scale[[97, 5, 42]] = [0.9, 0.8, 0.7]  # the interesting cells
        h = np.tanh(rng.normal(size=(1, T, hidden)) * scale).astype(np.float32)
        widget.set_probe(text, h)
        await pilot.pause()
        # 24 rows - axis - legend = 22 lines x 2 units
        assert widget.visible_units[:3] == [97, 5, 42]
        assert len(widget.visible_units) == 44
        assert "44/100 units" in widget.describe()
        first = widget.render_line(0).text
        second = widget.render_line(1).text
        assert first.startswith("97,5 ")
        assert second.lstrip().startswith("42,")


async def test_unit_rows_stay_put_for_the_same_probe_text():
    app = HeatmapApp()
    async with app.run_test(size=(80, 12)) as pilot:  # 10 heat lines -> 20 slots
        widget = app.query_one(HiddenStateHeatmap)
        text = "stable rows please"
        T, hidden = len(text), 64
        # Unit u's variance over the probe is exactly scale[u] ** 2.
        pattern = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)[None, :, None]
        scale = np.linspace(0.9, 0.1, hidden)
        widget.set_probe(text, pattern * scale)
        await pilot.pause()
        before = widget.visible_units
        assert len(before) == 20
        # Training moves variances a little: the shown set barely changes, the
        # order by variance would. Rows of retained units must not move.
        scale2 = scale.copy()
        scale2[:20] = scale2[:20][::-1]  # reverse the ranking of the top 20
        scale2[60] = 1.0  # a newcomer beats everyone
        widget.set_probe(text, pattern * scale2)
        await pilot.pause()
        after = widget.visible_units
        assert 60 in after
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert len(moved) == 1  # only the unit that dropped out was replaced
        assert before[moved[0]] == 0 and after[moved[0]] == 60
        # A different text re-sorts from scratch: the strongest unit comes first.
        pattern2 = np.where(np.arange(T + 1) % 2 == 0, 1.0, -1.0)[None, :, None]
        widget.set_probe(text + "!", pattern2 * scale2)
        await pilot.pause()
        assert widget.visible_units[0] == 60


async def test_redraws_only_when_something_changed():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        builds = 0
        original = widget._build_strips

        def counting():
            nonlocal builds
            builds += 1
            return original()

        widget._build_strips = counting  # type: ignore[method-assign]
        text = "abcdefgh"
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        assert builds == 1
        for _ in range(5):
            await pilot.pause()
        assert builds == 1
        widget.set_probe(text, alternating_probe(text))
        await pilot.pause()
        assert builds == 2


async def test_small_and_odd_shapes_do_not_crash():
    app = HeatmapApp()
    async with app.run_test(size=(10, 3)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        widget.set_probe("", np.zeros((1, 0, 3)))
        await pilot.pause()
        widget.set_probe("x", np.full((1, 1, 3), np.nan))
        await pilot.pause()
        assert len(lines_text(widget)) == 3
        with pytest.raises(ValueError):
            widget.set_probe("abc", np.zeros((1, 2, 3)))
        with pytest.raises(ValueError):
            widget.set_probe("ab", np.zeros((1, 2, 3)), np.zeros((2, 2, 3)))


def test_display_char_substitutions():
    assert display_char("\n") == ("↵", True)
    assert display_char(" ") == ("·", True)
    assert display_char("\t") == ("→", True)
    assert display_char("\x07") == ("·", True)
    assert display_char("a") == ("a", False)
    assert display_char("é") == ("é", False)
    assert display_char("漢") == ("漢", False)  # wide: itself, in two columns
    assert display_char("\u0301") == ("◌\u0301", True)  # a combining mark, on a dotted circle


async def test_wide_characters_are_shown_as_themselves_over_two_heat_columns():
    from rich.cells import cell_len

    app = HeatmapApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(HiddenStateHeatmap)
        text = "春眠不覺曉, spring"
        widget.set_probe(text, alternating_probe(text, layers=1, hidden=4))
        await pilot.pause()
        lines = lines_text(widget)
        axis, first = lines[-2], lines[0]
        assert "春眠不覺曉,·spring" in axis and "□" not in axis
        assert first.count(HALF_BLOCK) == cell_len("春眠不覺曉, spring")  # 10 + 8 columns
        # every character sits under its own heat: the axis starts where the heat starts
        assert first.index(HALF_BLOCK) == axis.index("春")
        # and columns stay aligned after the wide characters ("s" is the 8th char, at cell 12)
        s_cell = cell_len(axis[: axis.index("s")])
        heat_cells = [i for i, ch in enumerate(first) if ch == HALF_BLOCK]
        assert heat_cells[12] == s_cell
        # a wide character's two columns carry its one value: unit 0 alternates with the characters
        row = widget.render_line(0)
        colours = [seg.style.color for seg in row if HALF_BLOCK in seg.text for _ in seg.text]
        assert colours[0] == colours[1] and colours[1] != colours[2]
        # a narrow widget drops the oldest characters whole (never half of a wide one)
        await pilot.resize_terminal(21, 12)
        await pilot.pause()
        axis = lines_text(widget)[-2]
        assert axis.rstrip().endswith("spring") and cell_len(axis) == 21


async def test_row_labels_name_both_units_of_each_line():
    app = HeatmapApp()
    async with app.run_test(size=(38, 12)) as pilot:  # the heatmap's width at 80x24
        widget = app.query_one(HiddenStateHeatmap)
        text = "hello world, " * 4
        rng = np.random.default_rng(3)
        widget.set_probe(text, np.tanh(rng.normal(size=(1, len(text), 256))).astype(np.float32))
        await pilot.pause()
        units = widget.visible_units
        for line in range(len(units) // 2):
            label = widget.render_line(line).text.split()[0]
            assert label == f"{units[2 * line]},{units[2 * line + 1]}", (line, label)


async def test_the_subtitle_counts_the_units_drawn_in_a_viewer_and_after_resizes():
    """The count follows the drawing: a viewer gets its probe at once, then the terminal grows."""
    from rnn_tui.ui.app import RnnTuiApp
    from tests.helpers import app_wait
    from tests.ui.fake_stream import ReplayLink, demo_events

    link = ReplayLink(demo_events())
    app = RnnTuiApp(link, theme="rnn-dark", viewer=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await app_wait(pilot, lambda: not link.events, what="the catch-up events")
        heatmap = app.heatmap
        for size in [(80, 24), (200, 60), (120, 40), (80, 24)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            drawn = sum(HALF_BLOCK in heatmap.render_line(y).text for y in range(heatmap.size.height - 1))
            subtitle = str(heatmap.border_subtitle)
            assert f"{2 * drawn}/256 units" in subtitle, (size, subtitle, drawn)
            assert len(subtitle) <= heatmap.outer_size.width - 4, subtitle  # shown whole, not cut


async def test_the_subtitle_is_right_when_the_probe_came_before_the_first_layout():
    class EarlyProbe(HeatmapApp):
        def on_mount(self) -> None:
            text = "abcdefgh" * 4
            self.query_one(HiddenStateHeatmap).set_probe(text, np.zeros((1, len(text), 256), dtype=np.float32))

    app = EarlyProbe()
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        await pilot.pause()
        widget = app.query_one(HiddenStateHeatmap)
        assert len(widget.visible_units) == 20
        assert "20/256 units" in str(widget.border_subtitle)
