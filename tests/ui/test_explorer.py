"""The explorer screen, driven by keys, on a fixed answer: navigation between views, cells, layers
and the cursor, the probe text, export, and back to the main screen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnn_tui.core import events as ev
from rnn_tui.core.errors import CorpusError
from rnn_tui.ui.app import RnnTuiApp
from rnn_tui.ui.explorer import ExplorerScreen
from rnn_tui.ui.widgets import cell_view
from rnn_tui.ui.widgets.explorer_dialogs import ProbeScreen, read_probe
from rnn_tui.ui.widgets.finder_table import bar
from rnn_tui.ui.widgets.prediction_view import surprise
from rnn_tui.ui.widgets.probe_text import glyph, wrap
from tests.helpers import app_wait
from tests.ui.explorer_data import ExploreReplayLink
from tests.ui.fake_stream import demo_events


def app_with(answer, tmp_path=None, events=None) -> RnnTuiApp:
    events = events if events is not None else demo_events()
    if tmp_path is not None:  # a run directory to export into
        events = [dataclasses.replace(e, run_dir=str(tmp_path)) if isinstance(e, ev.Started) else e for e in events]
    step = max(e.step for e in events if isinstance(e, ev.Progress))
    return RnnTuiApp(ExploreReplayLink(events, dataclasses.replace(answer, step=step)), theme="rnn-dark")


async def open_explorer(pilot) -> ExplorerScreen:
    app = pilot.app
    await app_wait(pilot, lambda: app.started is not None, what="the run")
    await pilot.press("e")
    await app_wait(pilot, lambda: app.explorer is not None and app.explorer.result is not None, what="an answer")
    await pilot.pause()
    assert isinstance(app.screen, ExplorerScreen)
    return app.explorer


async def test_e_opens_the_explorer_on_the_best_found_cell_and_escape_goes_back(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        asked = [c for c in app.link.sent if isinstance(c, ev.Explore)]
        assert asked == [ev.Explore(text=None, chars=2000, refresh=False)]
        best = explorer_answer.cells[0]
        assert screen.cells.key() == (best["layer"], best["state"], best["unit"])
        assert "r=" in screen.cells.border_subtitle and f"cell {best['unit']}/32" in screen.cells.border_subtitle
        assert screen.cells.text == explorer_answer.text
        await pilot.press("escape")
        assert not isinstance(app.screen, ExplorerScreen)
        await pilot.press("e")  # and back again: the last answer at once, not asked again (same step)
        assert app.screen is screen and len([c for c in app.link.sent if isinstance(c, ev.Explore)]) == 1


async def test_cell_keys_step_cells_layers_and_states_and_numbers_jump(explorer_answer, monkeypatch):
    monkeypatch.setattr(cell_view, "NUMBER_TIMEOUT", 600.0)  # digits typed on a busy machine are one number
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        cells = (await open_explorer(pilot)).cells
        cells.select(0, "h", 5)
        await pilot.press("right")
        assert cells.key() == (0, "h", 6)
        await pilot.press("left", "left")
        assert cells.key() == (0, "h", 4)
        await pilot.press("n")
        assert cells.key() == (1, "h", 4)
        await pilot.press("c")
        assert cells.key() == (1, "c", 4)
        np.testing.assert_allclose(cells.values, np.tanh(explorer_answer.c[1, :, 4]))  # drawn as tanh(c)
        await pilot.press("2", "7")
        assert cells.unit == 27
        await pilot.press("9")  # 279 is past the last cell: a new number
        assert cells.unit == 9
        cells.number_at -= 1000  # a pause: the next digit starts a new number
        await pilot.press("3")
        assert cells.unit == 3
        found = [(m["layer"], m["state"], m["unit"]) for m in explorer_answer.cells]
        cells.select_found(len(found) - 1)  # the finder's last cell: f goes round to its best
        await pilot.press("f")
        assert cells.key() == found[0] and cells.found_index == 0
        await pilot.press("f")
        assert cells.key() == found[1]
        await pilot.press("left")
        assert cells.unit == (found[1][2] - 1) % 32


async def test_the_finder_lists_the_best_cell_per_property_and_enter_shows_it(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        await pilot.press("tab")
        assert screen.view == "finder" and screen.finder.row_count == len(explorer_answer.cells) >= 5
        await pilot.press("down", "enter")
        assert screen.view == "cells"
        m = explorer_answer.cells[1]
        assert screen.cells.key() == (m["layer"], m["state"], m["unit"])


async def test_a_new_answer_with_fewer_found_cells_keeps_the_cell_and_says_only_what_it_finds(explorer_answer):
    """f to the last found cell, then an answer (another probe) that finds fewer cells, in
    another order: no crash, the same cell shown, and the border names the new answer's finding
    for it or none."""
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        found = explorer_answer.cells
        await pilot.press(*["f"] * (len(found) - 1))
        last = found[-1]
        assert screen.cells.key() == (last["layer"], last["state"], last["unit"])
        fewer = dataclasses.replace(explorer_answer, cells=[found[0]])
        screen.show_result(fewer)
        await pilot.pause()
        assert screen.cells.key() == (last["layer"], last["state"], last["unit"])
        subtitle = screen.cells.border_subtitle
        same = (found[0]["layer"], found[0]["state"], found[0]["unit"]) == screen.cells.key()
        assert ("r=" in subtitle) == same
        await pilot.press("f")  # steps through the new answer's cells
        assert screen.cells.key() == (found[0]["layer"], found[0]["state"], found[0]["unit"])


async def test_the_prediction_cursor_moves_and_shows_the_top_guesses(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        await pilot.press("tab", "tab")
        assert screen.view == "predictions"
        text_view = screen.predictions.text_view
        assert text_view.cursor == 0
        await pilot.press("right", "right", "right")
        assert text_view.cursor == 3
        guesses = str(screen.predictions.guesses.render())
        top = explorer_answer.top_chars[15:20]
        assert "position 3 · guesses" in guesses and f"{explorer_answer.top_probs[3, 0]:.1%}" in guesses
        assert "after /* r" in guesses  # the text up to the cursor
        assert guesses.count("%") >= len(top)
        await pilot.press("down")
        first_line_end = explorer_answer.text.index("\n")
        assert text_view.cursor > first_line_end
        await pilot.press("end")
        a, b = text_view.lines[text_view.line_of(text_view.cursor)]
        assert text_view.cursor == b - 1
        assert text_view.values is None
        await pilot.press("m")  # colour by surprise
        np.testing.assert_allclose(text_view.values[1:], surprise(explorer_answer.p_next)[1:])
        assert "surprise" in str(screen.predictions.guesses.render())


async def test_gates_and_memory_views_draw_their_charts(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        await pilot.press("tab", "tab", "tab")
        assert screen.view == "gates"
        drawn = str(screen.gates.render())
        assert "input gate" in drawn and "forget gate" in drawn and "output gate" in drawn and "layer 2" in drawn
        await pilot.press("tab")
        assert screen.view == "memory"
        drawn = str(screen.memory.render())
        assert "gradient" in drawn and "replaced character" in drawn and f"--seq-len {explorer_answer.seq_len}" in drawn
        assert "Training backpropagates through only --seq-len characters" in str(
            screen.query_one("#memory-help").render()
        )
        await pilot.press("shift+tab")
        assert screen.view == "gates"


async def test_a_probe_text_is_asked_for_and_a_refresh_on_r(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_explorer(pilot)
        await pilot.press("t")
        assert isinstance(app.screen, ProbeScreen)
        await pilot.press(*"int x;", "enter")
        await pilot.pause()
        await pilot.press("r")
        asked = [c for c in app.link.sent if isinstance(c, ev.Explore)]
        assert asked[-2:] == [ev.Explore(text="int x;", chars=2000), ev.Explore(text="int x;", chars=2000)]


async def test_export_saves_the_screen_and_the_activations_in_the_run_directory(explorer_answer, tmp_path):
    app = app_with(explorer_answer, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_explorer(pilot)
        await pilot.press("x")
        await pilot.pause()
    (svg,) = (tmp_path / "explorer").glob("*.svg")
    (npz,) = (tmp_path / "explorer").glob("*.npz")
    assert "<svg" in svg.read_text(encoding="utf-8")[:500] and "cells" in svg.name
    got = np.load(npz)
    assert got["h"].shape == explorer_answer.h.shape and got["h"].dtype == np.float32
    assert got["c"].shape == explorer_answer.c.shape and str(got["text"]) == explorer_answer.text
    assert got["codes"].tolist() == [ord(ch) for ch in explorer_answer.text]


async def test_the_screen_asks_again_while_training_and_not_while_paused(explorer_answer):
    app = app_with(explorer_answer)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_explorer(pilot)
        asked = lambda: [c for c in app.link.sent if isinstance(c, ev.Explore)]  # noqa: E731
        screen.tick()
        assert len(asked()) == 1  # the weights have not moved since the answer
        app.stats.step += 10
        screen.tick()
        assert asked()[-1] == ev.Explore(chars=2000, refresh=True)  # a timer's refresh: the trainer paces it
        await app_wait(pilot, lambda: screen.asked_at is None, what="the answer")
        app.trainer_state = "paused"
        app.stats.step += 1
        screen.tick()
        assert asked()[-1].refresh is False  # paused: nothing to pace


def test_text_wraps_at_spaces_keeps_newlines_and_wide_characters():
    assert wrap("ab cd ef", 4) == [(0, 3), (3, 6), (6, 8)]  # "ab ", "cd ", "ef"
    assert wrap("ab cd ef", 5) == [(0, 5), (5, 8)]  # "ab cd", " ef"
    assert wrap("abcdefgh", 3) == [(0, 3), (3, 6), (6, 8)]  # no space: anywhere
    assert wrap("a\nb\n", 10) == [(0, 2), (2, 4)]
    assert wrap("漢字漢字", 5) == [(0, 2), (2, 4)]  # two cells each
    assert glyph("漢") == ("漢", 2, False) and glyph("\n")[0] == "↵" and glyph("\x07")[2] is True
    assert glyph("\u0301")[1] == 1  # a combining mark gets a cell of its own
    assert wrap("", 10) == [(0, 0)]


def test_a_probe_text_is_typed_or_read_from_a_file(tmp_path):
    assert read_probe("") is None and read_probe("  ") is None
    assert read_probe(r"a\nb") == "a\nb"
    (tmp_path / "p.c").write_text("int main() {}\n", encoding="utf-8")
    assert read_probe("@p.c", cwd=tmp_path) == "int main() {}\n"
    (tmp_path / "bad").write_bytes(b"\xff\xfe")
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_probe("@bad", cwd=tmp_path)
    with pytest.raises(CorpusError, match="not found"):
        read_probe("@missing", cwd=tmp_path)
    with pytest.raises(CorpusError, match="at least 2"):
        read_probe("x")


def test_finder_bars_and_surprise():
    assert bar(1.0, 4) == "████" and bar(-0.5, 4) == "██  " and bar(0.0, 4) == "    "
    s = surprise(np.array([0.5, 1 / 256, 1.0, np.nan]))
    assert np.isnan(s[0]) and s[1] == pytest.approx(1 / 8) and s[2] == pytest.approx(1.0) and s[3] == 0.0
