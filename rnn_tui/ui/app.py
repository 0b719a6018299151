"""The live app: loss curves, stats, samples and hidden states of a trainer it steers by keys.

The app never touches the model. It sends commands through a ``TrainerLink`` and drains the
link's events five times a second; widgets redraw on their own clocks (the plot at most once a
second), so a busy UI cannot slow the trainer and a busy trainer cannot freeze the UI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from rnn_tui.core import events as ev
from rnn_tui.core.text import visible_fields
from rnn_tui.host.links import TrainerLink
from rnn_tui.ui.explorer import ExploreOptions, ExplorerScreen, RunContext
from rnn_tui.ui.runs_screen import RunsScreen
from rnn_tui.ui.sampling import SharedSampling
from rnn_tui.ui.themes import VARIABLE_DEFAULTS, default_theme, register_themes
from rnn_tui.ui.widgets.dialogs import ConfirmScreen, HelpScreen, PrimeScreen
from rnn_tui.ui.widgets.heatmap import HiddenStateHeatmap
from rnn_tui.ui.widgets.loss_plot import LossPlot
from rnn_tui.ui.widgets.samples import SamplesLog
from rnn_tui.ui.widgets.stats import RunStats, StatsPanel
from rnn_tui.ui.widgets.title import TitleBar

MIN_SIZE = (60, 18)
TEMPERATURE_STEP = 0.1
MAX_TEMPERATURE = 2.0
TOP_K_LADDER = (0, 5, 10, 20, 40)
POLL_INTERVAL = 0.2  # seconds between event drains: the trainer posts progress twice a second


class RnnTuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    ENABLE_COMMAND_PALETTE = True

    # The footer shows only what a person needs first ("?" lists everything, and ctrl+p runs it):
    # at 80 columns every shown key fits, "? Help" first.
    TEMPERATURE = Binding.Group("Temp", compact=True)
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("g", "sample_now", "Sample"),
        Binding("s", "save", "Save"),
        Binding("plus,equals_sign", "temperature(1)", "Temp +", key_display="+", group=TEMPERATURE),
        Binding("minus,underscore", "temperature(-1)", "Temp -", key_display="-", group=TEMPERATURE),
        Binding("r", "runs", "Runs"),
        # not in the footer: at 80 columns it would push q out (? lists it, and the palette)
        Binding("e", "explore", "Explore", show=False),
        Binding("k", "cycle_top_k", "Top-k", show=False),
        Binding("p", "edit_prime", "Prime", show=False),
        Binding("l", "plot('toggle_log_y')", "Log y", show=False),
        Binding("left_square_bracket", "plot('smoothing_down')", "Smooth -", key_display="[", show=False),
        Binding("right_square_bracket", "plot('smoothing_up')", "Smooth +", key_display="]", show=False),
        Binding("w", "plot('toggle_window')", "Window", show=False),
        Binding("y", "plot('toggle_y_range')", "Y range", show=False),
        Binding("n", "heatmap('next_layer')", "Layer", show=False),
        Binding("c", "heatmap('toggle_kind')", "h/c", show=False),
        Binding("d", "detach", "Detach", show=False),
        Binding("X", "stop_trainer", "Stop trainer", show=False),
        # q and ctrl+c: the app that started the trainer stops it (after saving); a viewer leaves
        Binding("q", "quit_save", "Quit"),
        Binding("q", "leave", "Leave"),
        Binding("ctrl+c", "quit_save", "Quit", show=False, priority=True),
        Binding("ctrl+c", "leave", "Leave", show=False, priority=True),
        Binding("Q", "quit_no_save", "Quit, no save", show=False),
    ]
    # the main screen's keys that the runs screen leaves alone (the others would steer the trainer
    # from a screen that does not show it, or clash with the runs screen's own keys)
    KEPT_ON_RUNS_SCREEN = {"quit_save", "leave", "quit_no_save"}
    MAIN_SCREEN_ACTIONS = {b.action.split("(")[0] for b in BINDINGS if isinstance(b, Binding)} - KEPT_ON_RUNS_SCREEN
    # actions only the app that owns the trainer has, and only a viewer has
    OWNER_ONLY = {"quit_save", "quit_no_save"}
    VIEWER_ONLY = {"leave", "stop_trainer"}

    # What each action does, for the help screen and the command palette.
    DESCRIPTIONS = {
        "toggle_pause": "Pause or resume training (takes effect within one step)",
        "sample_now": "Sample text from the current weights now",
        "save": "Save a checkpoint now (checkpoints/latest.pt)",
        "temperature(1)": f"Raise the sampling temperature by {TEMPERATURE_STEP}",
        "temperature(-1)": f"Lower the sampling temperature by {TEMPERATURE_STEP}",
        "cycle_top_k": "Sample from the k likeliest characters: all, 5, 10, 20, 40",
        "edit_prime": "Edit the prime text samples start from",
        "plot('toggle_log_y')": "Loss plot: logarithmic y axis on/off",
        "plot('smoothing_down')": "Loss plot: less smoothing",
        "plot('smoothing_up')": "Loss plot: more smoothing",
        "plot('toggle_window')": "Loss plot: whole run or the last steps",
        "plot('toggle_y_range')": "Loss plot: y axis robust (outliers ignored) or whole range",
        "heatmap('next_layer')": "Heatmap: show the next layer",
        "heatmap('toggle_kind')": "Heatmap: hidden state h or cell state c",
        "runs": "Runs side by side: this run's curves with other runs'",
        "explore": "Explorer: cells, finder, guesses, gates, memory (esc: back)",
        "detach": "Detach: training goes on in the background (attach returns)",
        "leave": "Leave: close this viewer; the trainer goes on (ctrl+c too)",
        "stop_trainer": "Stop the trainer for everyone (saves a checkpoint; asks first)",
        "help": "Show this help",
        "quit_save": "Save a checkpoint and quit (ctrl+c too)",
        "quit_no_save": "Quit without saving (asks first)",
    }

    def __init__(
        self,
        link: TrainerLink,
        theme: str | None = None,
        title: str = "",
        viewer: bool = False,
        explore: ExploreOptions | None = None,
    ) -> None:
        super().__init__()
        self.link = link
        self.viewer = viewer  # watching a trainer started elsewhere (rnn-tui attach)
        self.detach_requested = False
        self.theme_warnings: list[str] = []
        register_themes(self, warnings=self.theme_warnings)
        self.theme = theme or os.environ.get("TEXTUAL_THEME") or default_theme(self.terminal_color_system())
        self.run_title = title
        self.trainer_state = "starting"
        self.trainer_detail = ""  # e.g. how far the trainer's final evaluation is
        self.paused = False
        self.finished: ev.Finished | None = None
        self.started: ev.Started | None = None
        self.quitting = False
        self.exit_message: str | None = None
        self.sampling = SharedSampling()
        self.events_seen = 0
        self.last_best_toast = time.monotonic()
        self.warned_unknown: list[str] = []
        # the explorer screen, made on first use (rnn-tui explore opens on it)
        self.explorer: ExplorerScreen | None = None
        self.explore_options = explore or ExploreOptions()
        self.explore_first = explore is not None

    def terminal_color_system(self) -> str | None:
        """The terminal's colour depth as Rich detects it (COLORTERM, TERM); a browser tab
        (textual-serve's driver) has true colour whatever the server's terminal had."""
        if "TEXTUAL_DRIVER" in os.environ:
            return "truecolor"
        return self.console.color_system

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Kept as attributes: query_one() searches the active screen, which is a modal at times.
        self.title_bar = TitleBar(self.run_title or "rnn-tui", id="title-bar")
        self.plot = LossPlot(id="loss")
        self.stats_panel = StatsPanel(id="stats")
        self.heatmap = HiddenStateHeatmap(id="heatmap")
        self.samples = SamplesLog(id="samples")
        with Vertical(id="main"):
            yield self.title_bar
            with Horizontal(id="top"):
                yield self.plot
                yield self.stats_panel
            with Horizontal(id="bottom"):
                yield self.heatmap
                yield self.samples
        self.too_small = Static("", id="too-small")
        yield self.too_small
        yield Footer()

    def on_mount(self) -> None:
        self.plot.border_title = "loss"
        self.stats_panel.border_title = "training"
        self.heatmap.border_title = "hidden state"
        self.samples.border_title = "samples"
        self.set_interval(POLL_INTERVAL, self.pump)
        self.call_after_refresh(self.show_plot_view)
        self.refresh_stats()
        for w in self.theme_warnings:
            self.notify(w, severity="warning")
        self.check_size()
        if self.explore_first:
            self.action_explore()
        if not self.is_headless:
            # `kill PID` (SIGTERM) quits as q does: the trainer saves, the terminal is restored
            import asyncio
            import signal

            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.on_terminate_signal)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def on_terminate_signal(self) -> None:
        if self.viewer or self.finished is not None:
            self.exit(return_code=0 if self.finished is None or not self.finished.error else 1)
        elif not self.quitting:
            self.action_quit_save()

    def on_resize(self, event) -> None:
        self.check_size(event.size)  # self.size is not updated yet while this runs
        self.call_after_refresh(self.show_plot_view)  # after the layout: the border's new width

    def check_size(self, size=None) -> None:
        w, h = size or self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        self.set_class(small, "too-small")
        if small:
            q = "q leaves; the trainer goes on" if self.viewer else "q saves and quits"
            self.too_small.update(
                f"Terminal too small: {w}x{h}.\nrnn-tui needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.\n"
                f"Training goes on; enlarge the window ({q})."
            )

    # ------------------------------------------------------------------ events from the trainer
    def pump(self) -> None:
        """Drain the link's events; a dead trainer that said nothing is an error."""
        events = self.link.poll()
        for e in events:
            self.events_seen += 1
            # Strings from the trainer come from a corpus, a checkpoint or run files: their
            # control characters are shown, never obeyed (the heatmap shows its probe text
            # character by character, each made visible there).
            self.handle_event(e if isinstance(e, ev.Probed) else visible_fields(e))
        if events:
            self.refresh_stats()
        if self.finished is None and not events and not self.link.alive():
            code = self.link.exit_code
            how = f" (exit code {code}; killed for memory?)" if code and code < 0 else ""
            self.on_finished(
                ev.Finished(
                    reason="error",
                    step=self.stats.step,
                    checkpoint=None,
                    error=f"the trainer stopped unexpectedly{how}",
                )
            )

    @property
    def stats(self) -> RunStats:
        return self.stats_panel.stats

    def handle_event(self, e: ev.Event) -> None:
        s = self.stats
        match e:
            case ev.Progress():
                s.step, s.epoch, s.lr, s.grad_norm = e.step, e.epoch, e.lr, e.grad_norm
                s.skipped_steps = e.skipped_steps
                if e.losses:  # a viewer's catch-up Progress carries numbers only
                    self.plot.add_train(e.steps, e.losses)
                    s.train_loss = sum(e.losses) / len(e.losses)
                    s.speed_history.append(e.chars_per_s)
                s.chars_per_s, s.elapsed_s, s.gpu_mem_mb = e.chars_per_s, e.elapsed_s, e.gpu_mem_mb
                s.tokens, s.total_s = e.tokens, e.total_s
                if e.threads is not None:
                    s.threads = e.threads  # the tuner's choice, as it changes
                s.gpus = e.gpus
            case ev.History():
                self.plot.add_train(e.steps, e.losses)
                if e.losses and s.train_loss is None:
                    s.train_loss = e.losses[-1]  # a run that is not training: where it stopped
                for step, loss in zip(e.val_steps, e.val_losses):
                    self.plot.add_val(step, loss)
                s.val_history[:0] = e.val_losses  # the evaluations before this screen joined
            case ev.Evaluated():
                self.plot.add_val(e.step, e.val_loss)
                s.val_loss, s.best_val = e.val_loss, e.best_val
                s.val_history.append(e.val_loss)
                # A toast for a new best, at most every two minutes: each evaluation is often a new best.
                now = time.monotonic()
                if e.is_best and e.step > 0 and now - self.last_best_toast > 120:
                    self.last_best_toast = now
                    self.notify(f"new best validation loss {e.val_loss:.4f} at step {e.step:,}", timeout=3)
            case ev.Sampled():
                self.samples.add_sample(e.step, e.prime, e.text, e.temperature, e.top_k)
                if e.unknown and e.unknown != self.warned_unknown:  # once per prime, not every sample
                    self.warned_unknown = e.unknown
                    self.notify(
                        "skipped prime characters the model has not seen: " + " ".join(e.unknown),
                        severity="warning",
                        markup=False,
                    )
            case ev.Probed():
                self.heatmap.set_probe(
                    e.text, e.h.astype("float32"), None if e.c is None else e.c.astype("float32"), e.step
                )
            case ev.StateChanged():
                self.trainer_state, self.trainer_detail = e.state, e.detail
                s.state = self.shown_state(e.state)
                s.state_detail = self.shown_detail()
            case ev.SamplingChanged():
                if self.sampling.accept(e):
                    self.show_sampling()
            case ev.CheckpointSaved():
                # shown in the stats panel's "saved" row, which even a short panel keeps
                s.last_saved = f"{Path(e.path).name} at step {e.step:,}"
            case ev.Notice():
                severity = {"info": "information", "warning": "warning"}.get(e.level, "error")
                self.notify(e.message, severity=severity, timeout=6, markup=False)  # type: ignore[arg-type]
            case ev.Explored() | ev.ExploreFailed() if self.explorer is not None:
                if isinstance(e, ev.Explored):
                    self.explorer.show_result(e)
                else:
                    self.explorer.show_failure(e.reason)
            case ev.Started():
                self.on_started(e)
            case ev.Finished():
                self.on_finished(e)
            case _:
                pass

    def on_started(self, e: ev.Started) -> None:
        self.started = e
        s = self.stats
        s.device, s.n_params, s.run_dir, s.threads = e.device, e.n_params, e.run_dir, e.threads
        s.precision, s.precision_reason = e.precision.get("label", ""), e.precision.get("reason", "")
        s.batches_per_epoch, s.max_steps, s.max_minutes = e.batches_per_epoch, e.max_steps, e.max_minutes
        s.best_val, s.val_loss = e.best_val, e.last_val
        s.step = e.step
        cfg = e.config
        s.world_size = e.world_size
        batch, seq = cfg.get("batch_size"), cfg.get("seq_len")  # a damaged run's config may lack them
        s.chars_per_step = batch * seq * e.world_size if isinstance(batch, int) and isinstance(seq, int) else 0
        corpus = Path(e.corpus).name
        role = " · viewer" if self.viewer else ""
        model = f"{cfg.get('cell', '?')} {cfg.get('layers', '?')}x{cfg.get('hidden', '?')}"
        device = f"{e.device} x {e.world_size}" if e.world_size > 1 else e.device
        self.title_bar.show([f"rnn-tui{role}", corpus, model, device], run_dir=e.run_dir)

    def on_finished(self, e: ev.Finished) -> None:
        if self.finished is not None:
            return  # told twice (a --nproc launcher's account of a crash the trainer reported already)
        self.finished = e
        # the words rnn-tui runs uses: stopped (it can go on), crashed, damaged, failed, finished
        if e.reason in ("stopped", "crashed", "damaged"):
            self.stats.state = e.reason
        else:
            self.stats.state = "failed" if e.error else "finished"
        self.stats.state_detail = ""
        self.refresh_bindings()
        if self.quitting or self.started is None:
            if e.error:
                self.exit_message = e.error
            self.exit(return_code=1 if e.error else 0)
            return
        if e.error:
            self.notify(f"training stopped: {e.error}", severity="error", timeout=30, markup=False)
        elif self.explore_first:
            pass  # rnn-tui explore: not a run ending now; the explorer's title says what it shows
        elif self.viewer:
            self.notify(
                f"this run is not training: it ended at step {e.step:,} ({e.reason}). q leaves.",
                timeout=8,
                markup=False,
            )
        else:
            where = f"; checkpoint {e.checkpoint}" if e.checkpoint else ""
            self.notify(f"training finished at step {e.step:,} ({e.reason}){where}. q quits.", timeout=8, markup=False)

    def refresh_stats(self) -> None:
        self.stats_panel.show()

    # ------------------------------------------------------------------ actions (keys)
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, RunsScreen) and action in self.MAIN_SCREEN_ACTIONS:
            return False  # the runs screen has its own keys; the trainer's wait for the main screen
        if isinstance(self.screen, ExplorerScreen) and action.split("(")[0] in {"plot", "heatmap", "runs"}:
            return False  # keys for panels the explorer hides (its own n, c, r come first)
        if action in (self.VIEWER_ONLY if not self.viewer else self.OWNER_ONLY):
            return False  # not shown, and the key falls through to the other binding
        trainer_actions = {
            "toggle_pause",
            "sample_now",
            "save",
            "temperature",
            "cycle_top_k",
            "edit_prime",
            "detach",
            "stop_trainer",
        }
        if action in trainer_actions and (self.finished is not None or self.quitting):
            return None  # greyed out in the footer
        return True

    def shown_state(self, trainer_state: str) -> str:
        """The trainer's state, or what the user asked for while the trainer has not caught up."""
        if trainer_state in ("finished", "failed"):
            return trainer_state
        if self.quitting:
            return "stopping"
        if self.paused and trainer_state == "training":
            return "pausing"
        if not self.paused and trainer_state == "paused":
            return "resuming"
        return trainer_state

    def shown_detail(self) -> str:
        """More about the shown state: the trainer's detail, or while stopping what the trainer
        does meanwhile (its final save and evaluation, with how far it is)."""
        shown = self.stats.state
        if shown == self.trainer_state:
            return self.trainer_detail
        if shown == "stopping" and self.trainer_state in ("saving", "evaluating"):
            return f"{self.trainer_state} {self.trainer_detail.removeprefix('final').strip()}".strip()
        return ""

    def action_toggle_pause(self) -> None:
        # `paused` is what the user asked for; the trainer confirms with a StateChanged event
        self.paused = not self.paused
        self.link.send(ev.Pause() if self.paused else ev.Resume())
        self.stats.state = "pausing" if self.paused else "resuming"  # shown at once
        self.stats.state_detail = ""
        self.refresh_stats()

    def action_sample_now(self) -> None:
        # with the trainer's settings, which every screen shows (a SetSampling sent before this
        # is applied before it)
        self.link.send(ev.SampleNow())
        self.notify("sampling…", timeout=1.5)

    def action_save(self) -> None:
        self.link.send(ev.SaveNow())
        self.notify("saving a checkpoint…", timeout=1.5)

    def action_temperature(self, direction: int) -> None:
        now = self.sampling.shown.temperature
        self.set_sampling(temperature=round(min(MAX_TEMPERATURE, max(0.0, now + direction * TEMPERATURE_STEP)), 2))

    def action_cycle_top_k(self) -> None:
        now = self.sampling.shown.top_k
        i = TOP_K_LADDER.index(now) if now in TOP_K_LADDER else 0
        self.set_sampling(top_k=TOP_K_LADDER[(i + 1) % len(TOP_K_LADDER)])

    def set_sampling(
        self, temperature: float | None = None, top_k: int | None = None, prime: str | None = None
    ) -> None:
        """Show the new setting at once; the trainer applies it for every screen (and answers)."""
        self.link.send(self.sampling.change(temperature=temperature, top_k=top_k, prime=prime))
        self.show_sampling()

    def show_sampling(self) -> None:
        s, shown = self.stats, self.sampling.shown
        s.temperature, s.top_k, s.prime = shown.temperature, shown.top_k, shown.prime
        self.refresh_stats()

    def action_edit_prime(self) -> None:
        def done(value: str | None) -> None:
            if value is not None:
                self.set_sampling(prime=value)

        self.push_screen(PrimeScreen(self.sampling.shown.prime), done)

    def action_plot(self, name: str) -> None:
        getattr(self.plot, f"action_{name}")()
        self.show_plot_view()

    def show_plot_view(self) -> None:
        """The loss plot's settings in its border (the longest spelling that fits)."""
        self.plot.border_subtitle = self.plot.describe(max(8, self.plot.outer_size.width - 6))

    def action_heatmap(self, name: str) -> None:
        getattr(self.heatmap, f"action_{name}")()

    def action_explore(self) -> None:
        if self.explorer is None:
            options = self.explore_options
            self.explorer = ExplorerScreen(self.link.send, self.explorer_context, options.text, options.chars)
        if not self.is_screen_installed("explorer"):
            self.install_screen(self.explorer, name="explorer")
        if self.screen is not self.explorer:
            self.push_screen("explorer")

    def explorer_context(self) -> RunContext:
        training = self.finished is None and self.trainer_state not in ("paused", "finished", "failed")
        run_dir = self.started.run_dir if self.started is not None else ""
        return RunContext(step=self.stats.step or 0, training=training, run_dir=run_dir)

    def bindings(self) -> list[Binding]:
        return [b for b in self.BINDINGS if isinstance(b, Binding)]

    # Pairs of keys that share one row of the help (it fits 80x24 that way).
    HELP_PAIRS = {
        "temperature(1)": ("temperature(-1)", f"Sampling temperature up / down by {TEMPERATURE_STEP} (0 … 2)"),
        "plot('smoothing_down')": ("plot('smoothing_up')", "Loss plot: less / more smoothing"),
        "heatmap('next_layer')": ("heatmap('toggle_kind')", "Heatmap: next layer / hidden state h or cell state c"),
    }

    def help_rows(self) -> list[tuple[str, str]]:
        keys: dict[str, str] = {}
        for b in self.bindings():
            if b.action in self.DESCRIPTIONS and b.action not in keys and self.check_action(b.action, ()) is not False:
                keys[b.action] = b.key_display or b.key.split(",")[0]
        rows: list[tuple[str, str]] = []
        paired = {second for second, _ in self.HELP_PAIRS.values()}
        for action, key in keys.items():
            if action in self.HELP_PAIRS:
                second, text = self.HELP_PAIRS[action]
                rows.append((f"{key} {keys[second]}", text))
            elif action not in paired:
                # in a viewer, d leaves as q does (the trainer is not this screen's to move)
                what = "leave" if self.viewer and action == "detach" else action
                rows.append((key, self.DESCRIPTIONS[what]))
        rows.append(("ctrl+p", "Command palette (actions, themes)"))
        return rows

    def action_runs(self) -> None:
        """The runs screen, this run picked, among the runs beside it (its runs directory)."""
        if len(self.screen_stack) > 1:
            return  # from the main screen only (not over the help or a question)
        run_dir = Path(self.started.run_dir) if self.started is not None and self.started.run_dir else None
        runs_dir = run_dir.parent if run_dir is not None else Path("runs")
        self.push_screen(RunsScreen(runs_dir, picked=[run_dir] if run_dir is not None else []))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows()))

    def action_quit_save(self) -> None:
        if self.finished is not None:
            self.exit(return_code=1 if self.finished.error else 0)
            return
        if self.quitting:
            # a second q / ctrl+c: leave now; the trainer process finishes its save on its own
            self.exit_message = None
            self.exit(return_code=0)
            return
        self.stop_training("saving a checkpoint and quitting…")

    def stop_training(self, message: str) -> None:
        """Ask the trainer to save and stop; the app exits when its Finished event arrives."""
        self.quitting = True
        self.stats.state = "stopping"
        self.stats.state_detail = self.shown_detail()
        self.refresh_stats()
        self.refresh_bindings()
        self.link.send(ev.Stop(save=True))
        self.notify(message, timeout=10)

    def action_detach(self) -> None:
        if self.viewer:
            self.action_leave()
            return
        # The trainer saves and stops; a background trainer resumes that checkpoint exactly
        # (rnn_tui/detached.py). Handing over keeps the background process free of this
        # terminal: no inherited file descriptors, session or signals.
        self.detach_requested = True
        self.stop_training("saving; training goes on in the background…")

    def action_leave(self) -> None:
        self.exit(return_code=0)

    def action_stop_trainer(self) -> None:
        def done(yes: bool | None) -> None:
            if yes and self.finished is None:
                self.stop_training("the trainer is saving and stopping…")

        self.push_screen(
            ConfirmScreen("Stop the trainer? It saves a checkpoint and stops training for every viewer."), done
        )

    def action_quit_no_save(self) -> None:
        def done(yes: bool | None) -> None:
            if yes:
                if self.finished is not None:
                    self.exit(return_code=0)
                    return
                self.quitting = True
                self.link.send(ev.Stop(save=False))

        self.push_screen(ConfirmScreen("Quit without saving? Training since the last checkpoint is lost."), done)

    def get_system_commands(self, screen: Screen[Any]) -> Iterator[SystemCommand]:
        yield from (c for c in super().get_system_commands(screen) if c.title != "Quit")
        seen: set[str] = set()
        for b in self.bindings():
            if (
                b.action in self.DESCRIPTIONS
                and b.action != "help"
                and b.action not in seen
                and self.check_action(b.action, ()) is not False
            ):
                seen.add(b.action)
                yield SystemCommand(
                    b.description, self.DESCRIPTIONS[b.action], lambda action=b.action: self.run_action(action)
                )

    @on(LossPlot.ViewChanged)
    def _plot_view_changed(self) -> None:
        self.show_plot_view()
