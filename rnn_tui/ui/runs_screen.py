"""The runs screen: several runs' curves side by side (``r`` in the app, ``rnn-tui compare``).

The person picks runs in a list (space); their validation curves and smoothed training curves are
overlaid in one plot against step, characters seen or training time (``x``), with a legend that
names each run by what differs in its configuration. Runs still training are followed: every few
seconds each picked run's ``metrics.jsonl`` is read from where the last read stopped, in a worker
thread (a long run's first read can take a moment; the screen never waits for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from rnn_tui.core.text import visible
from rnn_tui.remote.history import RunHistory, comparable_key, describe_runs
from rnn_tui.remote.status import RunInfo, list_runs, live_trainer, run_info
from rnn_tui.ui.themes import SERIES_VARIABLES, VARIABLE_DEFAULTS
from rnn_tui.ui.widgets.runs_plot import PlottedRun, RunsPlot

LIVE_INTERVAL = 5.0  # seconds between looks at the picked runs' files (a run appends twice a second)
PICKED_BY_DEFAULT = 4  # with no run named, the newest this-many runs are picked


class RunsScreen(Screen[None]):
    CSS_PATH = "runs_screen.tcss"
    BINDINGS = [
        Binding("escape,r", "close", "Back"),
        Binding("x", "axis", "Axis"),
        Binding("t", "plot('show_train')", "Train"),
        Binding("left_square_bracket", "smooth(-1)", "Smooth-", key_display="["),
        Binding("right_square_bracket", "smooth(1)", "Smooth+", key_display="]"),
        Binding("l", "plot('log_y')", "Log y"),
        Binding("o", "plot('whole_range')", "Range"),
    ]

    def __init__(self, runs_dir: Path, picked: Sequence[Path] = ()) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.infos: dict[str, RunInfo] = {}
        for info in list_runs(self.runs_dir):
            self.infos[str(info.path.resolve())] = info
        for path in picked:  # a run named from elsewhere is listed too
            self.infos.setdefault(str(Path(path).resolve()), run_info(Path(path)))
        if picked:
            self.picked = [str(Path(p).resolve()) for p in picked]
        else:
            newest = sorted(self.infos.values(), key=lambda r: r.updated)[-PICKED_BY_DEFAULT:]
            self.picked = [str(r.path.resolve()) for r in newest]
        self.histories: dict[str, RunHistory] = {}
        self.palette_index: dict[str, int] = {}  # run -> its index in the series palette, kept while picked
        for key in self.picked:
            self._give_color(key)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        self.title_bar = Label("", id="runs-title")
        self.run_list: SelectionList[str] = SelectionList(
            *(Selection(self.infos[key].name, key, key in self.picked) for key in self.infos), id="runs-list"
        )
        self.plot = RunsPlot(id="runs-plot")
        self.legend = Static("", id="runs-legend")
        self.note = Static("", id="runs-note")
        yield self.title_bar
        with Horizontal(id="runs-body"):
            yield self.run_list
            with Vertical(id="runs-right"):
                yield self.plot
                yield self.legend
                yield self.note
        yield Footer()

    def on_mount(self) -> None:
        self.run_list.border_title = "runs (space picks)"
        self.plot.border_title = "validation loss ● · training loss, smoothed"
        self.plot.border_subtitle = self.plot.describe()
        self.run_list.focus()
        self.show()
        self.read_runs()
        self.set_interval(LIVE_INTERVAL, self.read_runs)

    # ------------------------------------------------------------------ runs and colours
    def _give_color(self, key: str) -> None:
        if key not in self.palette_index:
            used = set(self.palette_index.values())
            self.palette_index[key] = next(i for i in range(len(self.palette_index) + 1) if i not in used)

    def color(self, key: str) -> Color:
        name = SERIES_VARIABLES[self.palette_index.get(key, 0) % len(SERIES_VARIABLES)]
        value = self.app.theme_variables.get(name) or VARIABLE_DEFAULTS[name]
        return Color.parse(value)

    def _prompt(self, key: str) -> Text:
        """The run's colour while picked, its name (the middle left out where it is too long:
        names differ in their ends) and a dot while it trains."""
        info = self.infos[key]
        mark = ("■ ", self.color(key).hex6) if key in self.picked else "  "
        live = (" ●", "green") if info.state == "running" else ""
        room = max(9, self.run_list.scrollable_content_region.width - 4 - len(mark) - len(live))  # 4: the box
        name = info.name if len(info.name) <= room else f"{info.name[: room // 3]}…{info.name[1 - room + room // 3 :]}"
        return Text.assemble(mark, name, live, no_wrap=True, overflow="ellipsis")

    @on(SelectionList.SelectedChanged, "#runs-list")
    def _picked_changed(self) -> None:
        self.picked = list(self.run_list.selected)
        for key in list(self.palette_index):
            if key not in self.picked:
                del self.palette_index[key]
        for key in self.picked:
            self._give_color(key)
        self._refresh_prompts()
        self.show()
        self.read_runs()

    def on_resize(self) -> None:
        self.call_after_refresh(self._refresh_prompts)  # the names are fitted to the list's width

    def _refresh_prompts(self) -> None:
        for index, key in enumerate(self.infos):
            self.run_list.replace_option_prompt_at_index(index, self._prompt(key))

    # ------------------------------------------------------------------ reading (a worker thread)
    @work(thread=True, exclusive=True, group="runs-read", exit_on_error=False)
    def read_runs(self) -> None:
        """Read what the picked runs appended since the last look; learn which are still training."""
        changed = False
        for key in list(self.picked):
            history = self.histories.get(key)
            if history is None:
                history = self.histories[key] = RunHistory(key)
            changed = history.read_new() or changed
        states = {key: ("running" if live_trainer(Path(key)) else None) for key in list(self.picked)}
        self.app.call_from_thread(self._after_read, changed, states)

    def _after_read(self, changed: bool, states: dict[str, str | None]) -> None:
        stale = False
        for key, live in states.items():
            info = self.infos.get(key)
            if info is not None and (live == "running") != (info.state == "running"):
                self.infos[key] = run_info(Path(key))  # started or ended since the list was made
                stale = True
        if stale:
            self._refresh_prompts()
        if changed or stale:
            self.show()

    # ------------------------------------------------------------------ drawing
    def show(self) -> None:
        histories = [self.histories[k] for k in self.picked if k in self.histories]
        self.plot.set_runs([PlottedRun(str(h.path), self.color(str(h.path)), h.curves) for h in histories])
        self.plot.border_subtitle = self.plot.describe()
        self.legend.update(self._legend(histories))
        notes = []
        if len({comparable_key(h.record) for h in histories}) > 1:
            notes.append("⚠ not comparable: other corpora or vocabularies")
        missing = [self.infos[r.key].name for r in self.plot.without_axis() if r.key in self.infos]
        if missing:
            notes.append(f"not on this axis (no times recorded): {', '.join(missing)}")
        self.note.update(Content("\n".join(notes)))  # run names are shown as named, never as markup
        self.note.display = bool(notes)
        self.title_bar.update(
            Content(
                visible(
                    f"rnn-tui · runs side by side · {len(self.picked)} of {len(self.infos)} picked · {self.runs_dir}"
                )
            )
        )

    def _legend(self, histories: list[RunHistory]) -> Text:
        """A line a run: its colour, its last validation loss, what tells it apart."""
        lines = []
        for history, label in zip(histories, describe_runs(histories)):
            key = str(history.path)
            c = history.curves
            last = f"val {c.val_loss[-1]:.3f}" if len(c.val_loss) else "no val yet"
            live = " · training" if self.infos.get(key) and self.infos[key].state == "running" else ""
            # the label quotes the runs' options (a prime, a corpus name): shown, never obeyed
            lines.append(
                Text.assemble(("━━ ", self.color(key).hex6), (last, "bold"), "  ", visible(label), (live, "dim"))
            )
        if not lines:
            return Text("pick runs in the list (space) to compare them", style="dim")
        return Text("\n").join(lines)

    # ------------------------------------------------------------------ keys
    def action_close(self) -> None:
        self.dismiss(None)

    def action_axis(self) -> None:
        self.plot.next_axis()
        self.show()

    def action_plot(self, setting: str) -> None:
        setattr(self.plot, setting, not getattr(self.plot, setting))
        self.plot.border_subtitle = self.plot.describe()

    def action_smooth(self, direction: int) -> None:
        self.plot.smoother(direction)
        self.plot.border_subtitle = self.plot.describe()
