"""The main screen and the help at 80x24 (everything reachable) and at 200x60 (the space used),
read as a person reads them: the text on the screen."""

from __future__ import annotations

import contextlib
import dataclasses
import re

import pytest

from rnn_tui.core import events as ev
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import app_wait
from tests.ui.fake_stream import ReplayLink, demo_events


def screen_lines(app: RnnTuiApp) -> list[str]:
    """Every line of the terminal, as the person sees it (modal screens over the main one)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def panel_lines(app: RnnTuiApp, widget) -> list[str]:
    """The lines inside a bordered panel."""
    region = widget.content_region
    lines = screen_lines(app)[region.y : region.bottom]
    return [line[region.x : region.right] for line in lines]


async def settled(pilot, link: ReplayLink) -> None:
    await app_wait(pilot, lambda: not link.events, what="the events")
    pilot.app.plot.redraw()
    await pilot.pause()


@contextlib.asynccontextmanager
async def demo_app(size: tuple[int, int], viewer: bool = False):
    """The app on the demo event stream, drawn at ``size``: (app, pilot, link)."""
    link = ReplayLink(demo_events())
    app = RnnTuiApp(link, viewer=viewer)
    async with app.run_test(size=size) as pilot:
        await settled(pilot, link)
        yield app, pilot, link


@pytest.mark.parametrize("viewer", [False, True])
async def test_help_at_80x24_shows_every_key(viewer):
    async with demo_app((80, 24), viewer) as (app, pilot, _):
        await pilot.press("question_mark")
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        rows = app.help_rows()
        for key, description in rows:
            assert f"{key} " in text and description[:30] in text, (key, description)
        keys = [key for key, _ in rows]
        assert "ctrl+p" in keys and ("X" in keys if viewer else "Q" in keys)
        assert app.screen.query_one("#help-box").max_scroll_y == 0  # nothing hidden below


async def test_help_scrolls_when_the_terminal_is_shorter_than_the_list():
    async with demo_app((80, 18)) as (app, pilot, _):
        await pilot.press("question_mark")
        await pilot.pause()
        box = app.screen.query_one("#help-box")
        assert box.max_scroll_y > 0
        assert not any("ctrl+p  Command palette" in line for line in screen_lines(app))
        await pilot.press("end")  # (the box has the focus: the arrow keys, page up/down, home, end scroll it)
        await app_wait(
            pilot, lambda: any("ctrl+p  Command palette" in line for line in screen_lines(app)), what="the last row"
        )


@pytest.mark.parametrize("viewer", [False, True])
async def test_the_footer_at_80_columns_shows_every_key_it_lists(viewer):
    async with demo_app((80, 24), viewer) as (app, pilot, _):
        footer = screen_lines(app)[-1]
        assert footer.lstrip().startswith("? Help")
        quit_key = "q Leave" if viewer else "q Quit"
        for shown in ("space Pause", "g Sample", "s Save", "+- Temp", quit_key, "^p palette"):
            assert shown in footer, (shown, footer)


async def test_the_title_fits_80_columns_without_a_dangling_separator():
    long_dir = "runs/" + "a-rather-long-corpus-name-" * 3 + "20261129-171204"
    events = [dataclasses.replace(demo_events()[0], run_dir=long_dir), *demo_events()[1:]]
    link = ReplayLink(events)
    app = RnnTuiApp(link, viewer=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, link)
        title = screen_lines(app)[0].strip()
        assert title.startswith("rnn-tui · viewer · tinyshakespeare.txt · lstm 2x256")
        assert not title.endswith("·") and "…" not in title
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        await pilot.pause()
        assert screen_lines(app)[0].strip().endswith(long_dir)  # all of it where there is room


async def test_the_newest_samples_header_stays_in_view_and_wrapped_lines_are_marked():
    async with demo_app((80, 24)) as (app, pilot, link):
        code = "#define BUFFER_SIZE_FOR_THE_NETWORK_LAYER (PAGE_SIZE * 4 + HEADER_BYTES)\nint x;\n"
        for step in (1300, 1400, 1500):
            link.events.append(ev.Sampled(step=step, prime="", text=code * 3, temperature=0.8, top_k=0))
        await settled(pilot, link)
        inside = panel_lines(app, app.samples)
        assert inside[0].startswith("── step 1,500 · T 0.80 · top-k all")  # the newest, first
        assert inside[1].startswith("#define")
        assert inside[2].startswith("↪ BUFFER_SIZE"), inside  # the wrapped tail of the #define, marked
        assert inside[3].startswith("↪ (PAGE_SIZE") and inside[4].startswith("int x;"), inside
        # a person reading an older sample is not moved by a new one
        app.samples.scroll_to(y=12, animate=False)
        await pilot.pause()
        before = panel_lines(app, app.samples)
        link.events.append(ev.Sampled(step=1600, prime="", text="new\n", temperature=0.8, top_k=0))
        await settled(pilot, link)
        assert [line[:-1] for line in panel_lines(app, app.samples)] == [line[:-1] for line in before]  # (scrollbar)
        assert app.samples.newest_header().startswith("step 1,600")


async def test_a_save_shows_in_the_stats_panel_even_on_a_short_screen():
    link = ReplayLink([dataclasses.replace(demo_events()[0], threads=2), *demo_events()[1:]])
    app = RnnTuiApp(link)
    shown: list[str] = []
    app.notify = lambda message, **kw: shown.append(message)  # what would pop up
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, link)
        await pilot.press("s")
        link.events.append(ev.CheckpointSaved(step=1200, path="runs/x/checkpoints/latest.pt", reason="manual"))
        await settled(pilot, link)
        inside = panel_lines(app, app.stats_panel)
        assert any(line.startswith("saved  latest.pt at step 1,200") for line in inside), inside
        for row in ("state", "step", "train", "val", "sample", "time"):
            assert any(line.startswith(row) for line in inside), (row, inside)
        assert any(line.startswith("speed") and "2 threads" in line for line in inside), inside
        assert not any("saved" in message for message in shown)  # not a pop-up: the row says it
        assert all(len(line.rstrip()) <= len(inside[0]) for line in inside)  # nothing wraps


async def test_a_wide_screen_uses_its_space_for_the_stats_and_their_history():
    events = [dataclasses.replace(demo_events()[0], threads=2), *demo_events()[1:]]
    link = ReplayLink(events)
    app = RnnTuiApp(link)
    async with app.run_test(size=(200, 60)) as pilot:
        await settled(pilot, link)
        for speed in (20_000.0, 24_000.0, 25_000.0, 23_500.0):
            link.events.append(
                ev.Progress([1201], [1.6], 1201, 3.84, 3e-3, 0.4, speed, 154.0, 1201 * 3200, gpu_mem_mb=None)
            )
        await settled(pilot, link)
        panel = app.stats_panel
        assert panel.outer_size.width >= 50  # wider than the 40 columns at 80x24
        inside = panel_lines(app, panel)
        text = "\n".join(inside)
        assert re.search(r"time   2:3\d · eta 7:2\d to the end", text), text  # on one line
        assert "2 threads" in text
        assert "per evaluation" in text and "chars/s" in text  # history: validation and speed
        assert any(set(line.strip()) & set("▁▂▃▄▅▆▇█") for line in inside)
        empty = sum(not line.strip() for line in inside)
        assert empty <= 8, inside  # the tall panel is used, not left blank
