"""The runs screen (Pilot): runs picked in a list, their curves overlaid against step, characters
or training time, a legend naming each by what differs, live for a run still training, at 80x24,
from the app (r, esc) and in a viewer, and as `rnn-tui compare`."""

from __future__ import annotations

import json
import socket

import pytest
from textual.widgets import SelectionList

from rnn_tui.core import events as ev
from rnn_tui.remote.client import HistoryLink
from rnn_tui.remote.status import RunLock, write_status
from rnn_tui.ui import runs_screen
from rnn_tui.ui.app import RnnTuiApp
from rnn_tui.ui.compare import CompareApp
from rnn_tui.ui.runs_screen import RunsScreen
from tests.helpers import SilentLink, app_wait, fake_rows, fake_run, started_event


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    made = {
        "base": fake_run(root, "small-20261201-100000", 600, hidden=256, dropout=0.1, eval_every=100),
        "wide": fake_run(root, "small-20261201-110000", 500, hidden=512, dropout=0.2, eval_every=100, step_s=0.3),
        "cjk": fake_run(root, "cjk-20261201-120000", 400, corpus="cjk.txt", vocab_size=2400, eval_every=100),
    }
    return root, made


def text_of(widget) -> str:
    return str(widget.render())


async def loaded(pilot, screen: RunsScreen, n: int) -> None:
    await app_wait(
        pilot,
        lambda: len(screen.plot.runs) == n and all(r.curves.last_step for r in screen.plot.runs),
        what=f"{n} runs' curves",
    )


async def test_picked_runs_are_overlaid_with_a_legend_of_what_differs_at_80x24(runs):
    root, made = runs
    app = CompareApp(root, [made["base"], made["wide"]])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await loaded(pilot, screen, 2)
        legend = text_of(screen.legend)
        assert "hidden 256 · dropout 0.1" in legend and "hidden 512 · dropout 0.2" in legend
        assert "val 1.70" in legend  # each run's last validation loss
        assert not screen.note.display  # one corpus: the losses compare
        plot = text_of(screen.plot)
        assert "step" in plot and any(ch in plot for ch in "⣀⠉▀▄")
        # the two runs have their own colours from the theme's series palette
        colors = {r.color for r in screen.plot.runs}
        assert len(colors) == 2
        assert {c.hex6.lower() for c in colors} <= {v.lower() for v in app.theme_variables.values()}
        # every part fits in 80x24
        for widget in (screen.run_list, screen.plot, screen.legend):
            assert widget.region.bottom <= 23 and widget.region.right <= 80 and widget.region.height > 0
        # x switches the axis: characters seen, training time, back to steps
        await pilot.press("x")
        await pilot.pause()
        assert screen.plot.axis == "chars" and "characters seen" in text_of(screen.plot)
        await pilot.press("x")
        await pilot.pause()
        assert screen.plot.axis == "time" and "training time" in text_of(screen.plot)
        await pilot.press("x")
        assert screen.plot.axis == "step"
        # a third run picked with the keys (the list has focus): a different corpus gets a note
        run_list = app.screen.query_one(SelectionList)
        index = [str(o.value) for o in run_list.options].index(str(made["cjk"].resolve()))
        run_list.highlighted = index
        await pilot.press("space")
        await loaded(pilot, screen, 3)
        assert screen.note.display and "not comparable" in text_of(screen.note)
        assert "cjk.txt" in text_of(screen.legend)
        await pilot.press("escape")  # rnn-tui compare: esc leaves
    assert app.return_code == 0


async def test_a_run_still_training_is_followed_reading_only_what_it_appends(runs, monkeypatch):
    root, made = runs
    monkeypatch.setattr(runs_screen, "LIVE_INTERVAL", 0.1)
    run = made["base"]
    lock = RunLock(run).acquire()  # as its trainer does while it lives
    write_status(run, state="running", pid=1, host=socket.gethostname())
    try:
        app = CompareApp(root, [run])
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            await loaded(pilot, screen, 1)
            assert "training" in text_of(screen.legend)
            history = screen.histories[str(run.resolve())]
            before = history.bytes_read
            rows = fake_rows(601, 700, eval_every=100)
            text = "".join(json.dumps(r) + "\n" for r in rows)
            with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(text)
            await app_wait(pilot, lambda: screen.plot.runs[0].curves.last_step == 700, what="the new steps")
            assert history.bytes_read - before == len(text.encode())  # only the new bytes
            assert "val 1.70" in text_of(screen.legend) and screen.plot.runs[0].curves.val_step[-1] == 700
    finally:
        lock.release()


@pytest.mark.parametrize("viewer", [False, True])
async def test_r_opens_the_runs_screen_with_this_run_and_escape_comes_back(runs, viewer):
    root, made = runs
    run = made["wide"]
    if viewer:  # rnn-tui attach on a run that is not training: its files
        link = HistoryLink(run)
        link.start()
        app = RnnTuiApp(link, viewer=True)
    else:
        link = SilentLink()
        app = RnnTuiApp(link)
    async with app.run_test(size=(80, 24)) as pilot:
        if not viewer:
            app.handle_event(
                started_event(
                    run_dir=str(run),
                    config={"cell": "lstm", "layers": 2, "hidden": 512, "batch_size": 32, "seq_len": 100},
                )
            )
        await app_wait(pilot, lambda: app.started is not None, what="the run's start")
        assert ("r", app.DESCRIPTIONS["runs"]) in app.help_rows()
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert screen.picked == [str(run.resolve())]  # this run, among the others beside it
        assert len(screen.infos) == 3
        await loaded(pilot, screen, 1)
        assert app.check_action("command_palette", ()) and app.check_action("quit_save" if not viewer else "leave", ())
        # the trainer's keys wait for the main screen: space picks a run here, it does not pause
        await pilot.press("space", "g", "s")
        await pilot.pause()
        if not viewer:
            assert link.sent == []
        assert screen.picked != [str(run.resolve())]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RunsScreen)
        await pilot.press("space")  # the main screen's keys again
        if not viewer:
            assert link.sent == [ev.Pause()]
