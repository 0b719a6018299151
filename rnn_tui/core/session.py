"""The training session: a trainer driven by commands, reporting events.

``Session`` is the loop every host of a trainer runs (``rnn_tui/host/serve.py``): the headless CLI
(events printed), the live app's trainer process (events shown on screen) and a background
trainer (events to viewers). It reads commands between steps
without blocking, sends ``Progress`` on a clock (``post_interval``), not every step, and does the
periodic work (evaluation, samples, checkpoints) on the trainer's own thread, between steps.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import events as ev
from .errors import RnnTuiError, first_line, is_out_of_memory, out_of_memory_advice
from .explorer import Explorer
from .gpus import GpuMonitor
from .trainer import BUDGET_CAP_EPOCHS, BUDGET_DECAY_SHARE, DROPOUT_RISE_EPOCHS, StepRecord, Trainer


class Inbox(Protocol):
    """Where commands wait for the session (a queue): the host and viewers ``put``, the session ``get``s."""

    def get(self, block: bool = True, timeout: float | None = None) -> ev.Command: ...

    def put(self, command: ev.Command) -> None: ...


Emit = Callable[[ev.Event], None]

EVENT_PROGRESS_EVERY_S = 0.5  # how often long work (an evaluation) reports how far it is
PROBE_CHARS = 160  # hidden states recorded for the last this-many characters of each sample

# A NaN or infinite loss (or gradient, or weights) rolls the trainer back to its last good state,
# kept in memory, and lowers the learning rate; training goes on.
SNAPSHOT_EVERY_S = 30.0  # training seconds between in-memory good states (and one at each save)
LR_CUT = 0.5  # each rollback halves the learning rate ...
MAX_ROLLBACKS = 3  # ... at most this many times in a row (no good stretch between) ...
MIN_LR_SCALE = 1 / 64  # ... and never below this fraction of the schedule; then the run stops
# fp16's loss scaler skips a step whose gradients overflowed and halves the scale: a few in a row
# at the start, one now and then later. This many in a row (the scale divided by 2^50) is divergence.
MAX_SKIPPED_IN_A_ROW = 50

# Validation follows time as well as steps: a run whose steps are slow (a big model, a loaded
# machine) or whose corpus is tiny still shows a validation loss every --eval-every-minutes while
# it is young. The gap then grows with the run, so a long run spends little time evaluating.
EVAL_GAP_FRACTION = 0.1  # a time-triggered evaluation at most every tenth of the run's training time ...
EVAL_COST_FACTOR = 10  # ... and at most every ten times what the last evaluation took

# Several processes agree on each turn of the loop (a small message to all of them): about every
# this much training time when steps are fast, so a pause or a stop still lands within it.
TURN_EVERY_S = 0.05
GPU_SAMPLE_EVERY = 4  # reports (twice a second) between two samples of the GPUs' counters
MAX_STEPS_BETWEEN_TURNS = 64


class Diverged(RnnTuiError):
    """Training kept producing NaN/inf after rollbacks: the run stops with its last good state."""


class Session:
    def __init__(
        self,
        trainer: Trainer,
        inbox: Inbox,
        emit: Emit,
        *,
        post_interval: float = 0.5,
        start_paused: bool = False,
        snapshot_every_s: float = SNAPSHOT_EVERY_S,
    ):
        self.t = trainer
        self.cluster = trainer.cluster
        self.inbox = inbox
        self.emit = emit
        self.post_interval = post_interval
        self.paused = start_paused
        self.stop_requested: ev.Stop | None = None
        cfg = trainer.cfg
        self.temperature = cfg.temperature
        self.top_k = cfg.top_k
        self.prime = cfg.prime
        self.sample_requested = False
        self.corpus_change_noted = False
        self.save_requested = False
        self.active_s = 0.0  # this session's training wall time, paused time excluded
        self.earlier_s = trainer.trained_s  # the run's training time before this session (a resume)
        self._train_s = 0.0  # training time and steps since the last Progress
        self._train_steps = 0
        self.save_error: str | None = None
        self._state: tuple[str, str] = ("", "")
        # the last good state (Trainer.snapshot, on the CPU) and the rollbacks made since it
        self.snapshot_every_s = snapshot_every_s
        self.good: dict | None = None
        self.good_step = -1
        self.next_snapshot = 0.0  # in clock (the training time all processes agree on)
        self.rollbacks = 0  # in a row: reset by a good state past the step that failed
        self.fail_step = -1
        self.total_rollbacks = 0
        self.skipped_steps = 0  # updates the loss scaler skipped (fp16), this session
        self.rise_told = False  # the notice that the dropout starts to rise (tell_dropout_rise)
        self.skipped_in_a_row = 0
        # the last evaluation: its step (on the --eval-every grid at the start), when, what it cost
        self.last_eval_step = trainer.step - trainer.step % trainer.cfg.eval_every
        self.last_eval_at = 0.0  # in active_s
        self.last_eval_cost = 0.0
        # the training time every process reads at this turn (the leader's: see take_turn)
        self.clock = 0.0
        self._last_step_s = 0.0
        # every GPU of the run (NVML), sampled every few reports and gathered on the leader
        self.gpu_monitor = GpuMonitor(trainer.device) if trainer.device.type == "cuda" else None
        self.gpus: list[dict] | None = None
        self.reports = 0
        self.explorer = Explorer()  # the explorer screen's requests, answered between steps

    @property
    def total_s(self) -> float:
        """The run's training time, resumed parts included."""
        return self.earlier_s + self.active_s

    # ------------------------------------------------------------------ helpers
    def tell_file_notes(self) -> None:
        """Say what went wrong (once) or right again writing the run's files: a full disk or a
        read-only directory never stops training, but the person watching should know."""
        if self.t.run is not None and self.t.run.notes:
            for level, message in self.t.run.take_notes():
                self.emit(ev.Notice(level, message))

    def set_state(self, state: str, detail: str = "") -> None:
        if (state, detail) != self._state:
            self._state = (state, detail)
            self.emit(ev.StateChanged(state, detail))

    def progress_reporter(self, state: str, what: str) -> Callable[[float], None]:
        """A callback for long work (an evaluation): says how far it is, at most twice a second,
        so a screen waiting on it (a stop) shows progress instead of a frozen state."""
        last = [time.monotonic()]

        def report(done: float) -> None:
            now = time.monotonic()
            if now - last[0] >= EVENT_PROGRESS_EVERY_S and done < 1.0:
                last[0] = now
                self.set_state(state, f"{what}{done:.0%}")

        return report

    def handle(self, cmd: ev.Command) -> None:
        match cmd:
            case ev.Pause():
                self.paused = True
            case ev.Resume():
                self.paused = False
            case ev.SampleNow():
                self.sample_requested = True
            case ev.SaveNow():
                self.save_requested = True
            case ev.SetSampling():
                if cmd.temperature is not None:
                    self.temperature = max(0.0, float(cmd.temperature))
                if cmd.top_k is not None:
                    self.top_k = max(0, int(cmd.top_k))
                if cmd.prime is not None:
                    self.prime = cmd.prime
                # kept in the config, so checkpoints (and a resumed run) remember them
                cfg = self.t.cfg
                cfg.temperature, cfg.top_k, cfg.prime = self.temperature, self.top_k, self.prime
                self.emit(ev.SamplingChanged(self.temperature, self.top_k, self.prime, cmd.ticket))
            case ev.Stop():
                self.stop_requested = cmd
            case ev.Explore():
                self.explorer.ask(cmd)
            case _:
                self.emit(ev.Notice("warning", f"ignored unknown command {type(cmd).__name__}"))

    def drain(self, timeout: float | None = None) -> None:
        """Handle every queued command; wait up to ``timeout`` for the first one if given."""
        try:
            cmd = self.inbox.get(timeout=timeout) if timeout else self.inbox.get(block=False)
        except queue.Empty:
            return
        while True:
            self.handle(cmd)
            try:
                cmd = self.inbox.get(block=False)
            except queue.Empty:
                return

    def post_progress(self) -> None:
        """Fetch the pending steps' losses (one host sync) and report them.

        This is where a NaN/inf loss or gradient norm is seen (never per step: no host sync
        there): the trainer goes back to its last good state with a lower learning rate. With
        every step checked, a good state is recorded now and then (``snapshot_every_s``).

        A step the loss scaler skipped (fp16) has a non-finite gradient norm by design: its
        update was not applied, and the scaler lowered the scale. That is not a divergence; a
        non-finite loss still is (then the scaler skips too, and the run rolls back).
        """
        t = self.t
        t0 = time.monotonic()
        rows = t.collect()
        # On a GPU, train_step returns before the work is done and collect() waits for it: that
        # wait is training time too, or chars/s, --max-minutes and the fitted schedule run fast.
        synced = time.monotonic() - t0
        self.active_s += synced
        train_s, self._train_s = self._train_s + synced, 0.0
        steps, self._train_steps = self._train_steps, 0
        failure = self.first_failure(rows)
        bad = None if failure is None else failure[0]
        good_rows = rows if bad is None else rows[:bad]
        if good_rows:
            self.skipped_steps += sum(r.skipped for r in good_rows)
            if t.run is not None:
                logged = [metrics_row(r) for r in good_rows]
                if good_rows[-1].step == t.step:
                    # where the run is in time and characters, a few times a second: what curves
                    # against training time or characters seen are drawn from (rnn_tui/remote/history.py)
                    logged[-1].update(train_s=round(self.total_s, 2), tokens=t.tokens)
                t.run.log_metrics(logged)
            gpu_mb = None
            if t.device.type == "cuda":
                import torch

                gpu_mb = torch.cuda.max_memory_allocated(t.device) / 2**20
            self.sample_gpus()
            chars = steps * t.chars_per_step  # every process's: the run's speed
            self.emit(
                ev.Progress(
                    steps=[r[0] for r in good_rows],
                    losses=[r[1] for r in good_rows],
                    step=t.step if bad is None else good_rows[-1].step,
                    epoch=t.epoch_progress,
                    lr=good_rows[-1].lr,
                    # the newest update's norm (a skipped step's is inf: nothing was applied)
                    grad_norm=next((r.grad_norm for r in reversed(good_rows) if not r.skipped), math.nan),
                    chars_per_s=chars / train_s if train_s > 0 else 0.0,
                    elapsed_s=self.active_s,
                    total_s=self.total_s,
                    tokens=t.tokens,
                    gpu_mem_mb=gpu_mb,
                    skipped_steps=self.skipped_steps,
                    threads=t.thread_tuner.threads if t.thread_tuner is not None else None,
                    gpus=self.gpus,
                )
            )
        self.tell_dropout_rise()
        if failure is not None:
            self.rollback(rows[failure[0]].step, failure[1])
        elif self.clock >= self.next_snapshot and self.good_step != t.step and not self.skipped_in_a_row:
            self.take_snapshot()  # (not in a run of skipped steps: the scale there may be on its way to 0)
        self.tell_file_notes()

    def tell_dropout_rise(self) -> None:
        """Once, when the dropout starts to rise (``DROPOUT_RISE_EPOCHS``): what and why."""
        t, cfg = self.t, self.t.cfg
        start, end = DROPOUT_RISE_EPOCHS
        if self.rise_told or cfg.late_dropout <= cfg.dropout or not start <= t.epoch_progress < end:
            return
        self.rise_told = True
        self.emit(
            ev.Notice(
                "info",
                f"pass {t.epoch_progress:.0f} over the training text: the dropout rises from {cfg.dropout:g} "
                f"(now {t.dropout:.2f}) to {cfg.late_dropout:g} by pass {end:g}, so the model does not memorise it",
            )
        )

    def sample_gpus(self) -> None:
        """Every GPU's utilisation, memory, temperature and power, every ``GPU_SAMPLE_EVERY``
        reports (each process reads its own GPU; the leader gathers them)."""
        if self.gpu_monitor is None:
            return
        self.reports += 1
        if self.reports % GPU_SAMPLE_EVERY != 1:
            return
        found = self.cluster.gather(self.gpu_monitor.sample())
        if found is not None:
            self.gpus = [g for g in found if g] or None

    # ------------------------------------------------------------------ NaN/inf recovery
    def first_failure(self, rows: list[StepRecord]) -> tuple[int, str] | None:
        """The first step that diverged, and how: a non-finite loss, a non-finite gradient norm
        on an update that was applied, or a loss scaler that kept skipping (gradients that
        overflow even at a vanishing scale are not finite: unstopped, the scale would reach 0
        and training would go on silently with zero gradients)."""
        for i, r in enumerate(rows):
            if not math.isfinite(r.loss):
                return i, f"the loss became {r.loss}"
            if not r.skipped:
                self.skipped_in_a_row = 0
                if not math.isfinite(r.grad_norm):
                    return i, f"the gradient norm became {r.grad_norm}"
                continue
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
                return (
                    i,
                    f"the gradients overflowed at every loss scale ({self.skipped_in_a_row} steps skipped in a row)",
                )
        return None

    def take_snapshot(self, weights_checked: bool = False) -> None:
        """Record the current state as the last good one (every collected step was finite).

        The weights are checked too (one host sync): the last step's update can make them
        non-finite after a finite loss; then this is a failure, not a good state.
        """
        t = self.t
        if not weights_checked and not t.weights_finite():
            self.rollback(t.step, "the weights became NaN or infinite")
            return
        self.good = t.snapshot()
        self.good_step = t.step
        self.next_snapshot = self.clock + self.snapshot_every_s
        if t.step > self.fail_step:
            self.rollbacks = 0  # a good stretch past the failure: the next one starts afresh

    def rollback(self, bad_step: int, what: str) -> None:
        """Back to the last good state with the learning rate cut by ``LR_CUT``, and say so;
        after too many failures in a row, save that good state and stop (``Diverged``)."""
        t = self.t
        t.collect()  # the abandoned steps' losses, if any, are not reported
        self.skipped_in_a_row = 0
        if self.good is None:
            raise Diverged(
                f"{what} at step {bad_step}, with no good state to go back to; "
                f"try a lower --lr (the last checkpoint is kept)"
            )
        self.rollbacks += 1
        self.fail_step = max(self.fail_step, bad_step)
        scale = t.lr_scale * LR_CUT
        if self.rollbacks > MAX_ROLLBACKS or scale < MIN_LR_SCALE:
            self.give_up(bad_step, what)
        t.restore(self.good)
        t.lr_scale = scale
        self.last_eval_step = min(self.last_eval_step, t.step)
        self.total_rollbacks += 1
        if t.run is not None:
            t.run.log_metrics(
                [{"kind": "rollback", "step": t.step, "from_step": bad_step, "lr_scale": scale, "lr": t.lr}]
            )
        self.emit(
            ev.Notice(
                "warning",
                f"{what} at step {bad_step}: went back to step {t.step} and "
                f"lowered the learning rate to {t.lr:.2e} (x{scale:g}); training goes on",
            )
        )

    def give_up(self, bad_step: int, what: str) -> None:
        t = self.t
        lowest = t.lr_scale
        assert self.good is not None  # rollback() gives up only from a good state
        t.restore(self.good)
        t.lr_scale = lowest  # a resume goes on at the lowest rate tried
        where = "the last checkpoint is kept"
        if t.run is not None or self.cluster.world > 1:
            try:
                t.trained_s = self.total_s
                path = t.save("final")
                self.emit(ev.CheckpointSaved(t.step, str(path), "final"))
                where = f"the last good state (step {t.step}) is saved in {path}"
            except (OSError, RuntimeError) as exc:
                where += f" (saving the last good state failed: {getattr(exc, 'strerror', None) or exc})"
        n = self.total_rollbacks
        raise Diverged(
            f"{what} at step {bad_step}, after {n} rollback{'' if n == 1 else 's'} that lowered "
            f"the learning rate to {t.lr:.2e}; {where}; "
            f"try a lower --lr or --grad-clip"
        )

    def evaluation_due(self) -> bool:
        """Every --eval-every steps since the last evaluation, or after --eval-every-minutes of
        training without one (a gap that grows with the run: see EVAL_GAP_FRACTION)."""
        t, cfg = self.t, self.t.cfg
        if t.step - self.last_eval_step >= cfg.eval_every:
            return True
        if not cfg.eval_every_minutes or t.step == self.last_eval_step:
            return False
        gap = max(
            cfg.eval_every_minutes * 60,
            EVAL_GAP_FRACTION * self.total_s,
            EVAL_COST_FACTOR * self.last_eval_cost,
        )
        return self.active_s - self.last_eval_at >= gap

    def evaluate(self, final: bool = False) -> None:
        step = self.t.step
        self.post_progress()  # the weights to evaluate are good (or this rolls back)
        if self.t.step != step:
            return
        self.note_corpus_change()
        what = "final " if final else ""  # a final evaluation: the trainer is stopping
        self.set_state("evaluating", what.strip())
        t0 = time.perf_counter()
        before = self.t.best_val
        val = self.t.evaluate(on_progress=self.progress_reporter("evaluating", what))
        if not math.isfinite(val):
            self.rollback(step, f"the validation loss became {val}")
            return
        is_best = val < before
        self.last_eval_step, self.last_eval_at = step, self.active_s
        self.last_eval_cost = time.perf_counter() - t0
        if self.t.run is not None:
            self.t.run.log_metrics(
                [
                    {
                        "kind": "val",
                        "step": self.t.step,
                        "val_loss": round(val, 5),
                        "train_s": round(self.total_s, 1),
                        "tokens": self.t.tokens,
                    }
                ]
            )
        self.emit(ev.Evaluated(self.t.step, val, self.t.best_val, is_best, time.perf_counter() - t0))
        self.tell_file_notes()
        if is_best and (self.t.run is not None or self.cluster.world > 1):
            self.save("best")

    def note_corpus_change(self) -> None:
        """Say once if the corpus file changed since it was read (the run keeps its copy)."""
        if not self.corpus_change_noted:
            changed = self.t.corpus.changed_on_disk()
            if changed:
                self.corpus_change_noted = True
                self.emit(ev.Notice("info", changed))

    def sample(self) -> None:
        """A sample with the session's settings: the ones every screen shows."""
        self.post_progress()  # sample from good weights (NaN probabilities cannot be sampled)
        if not self.cluster.leader:
            return  # the leader samples; the others only took part in the report above
        self.set_state("sampling")
        s = self.t.sample(self.t.cfg.sample_length, self.temperature, self.top_k, self.prime, record=PROBE_CHARS)
        if self.t.run is not None:
            self.t.run.log_sample(
                {"step": self.t.step, "temperature": s.temperature, "top_k": s.top_k, "prime": s.prime, "text": s.text}
            )
        self.emit(ev.Sampled(self.t.step, s.prime, s.text, s.temperature, s.top_k, s.unknown))
        self.tell_file_notes()
        if s.h is not None:
            self.emit(ev.Probed(self.t.step, s.probe_text, s.h, s.c))

    def explore(self) -> None:
        """Answer the explorer's requests from the weights samples use (the averaged ones, as
        ``rnn-tui explore`` reads them from a checkpoint). Its passes run on copies of them and
        leave the training state (gradients, optimiser, hidden state, RNG) untouched. With
        several processes, all take part in the report first; the leader answers."""
        self.post_progress()  # explore good weights (this rolls back from NaN ones)
        if not self.cluster.leader:
            return
        t = self.t
        val = t.corpus.split(t.cfg.val_fraction)[1]
        version = (t.step, self.active_s, self.total_rollbacks)  # the weights: a rollback repeats steps
        for answer in self.explorer.serve(t.eval_model, t.vocab, val, t.step, t.cfg.seq_len, version):
            self.emit(answer)

    def save(self, reason: str) -> str | None:
        """Write a checkpoint (with several processes, all of them take part; the leader writes)."""
        if self.t.run is None and self.cluster.world == 1:
            return None
        # Report (and check) the steps since the last post first: weights that produced a NaN
        # must never replace the last good checkpoint; a rollback saves the good state instead.
        self.post_progress()
        if not self.t.weights_finite():
            self.rollback(self.t.step, "the weights became NaN or infinite")
        elif self.good_step != self.t.step and not self.skipped_in_a_row:
            self.take_snapshot(weights_checked=True)
        self.set_state("saving", "final" if reason == "final" else "")
        try:
            self.t.trained_s = self.total_s
            path = self.t.save(reason)
        except (OSError, RuntimeError) as exc:
            self.save_error = f"saving {reason} checkpoint failed ({getattr(exc, 'strerror', None) or exc})"
            self.emit(ev.Notice("error", self.save_error + ("" if reason == "final" else "; training goes on")))
            return None
        if path is None:  # not the leader: it wrote nothing
            return None
        self.emit(ev.CheckpointSaved(self.t.step, str(path), reason))
        return str(path)

    # ------------------------------------------------------------------ the loop
    def plan(self, next_post: float, next_sample: float, next_save: float) -> Turn:
        """What this turn of the loop does, from the clocks and the commands (the leader's)."""
        now = time.monotonic()
        due = Turn(
            post=now >= next_post,
            evaluate=self.evaluation_due(),
            periodic_save=self.active_s >= next_save,
            clock=self.active_s,
            every=self.steps_between_turns(),
        )
        return self.obey(due, next_sample)

    def obey(self, turn: Turn, next_sample: float) -> Turn:
        """``turn`` with the commands received so far (and the time limit)."""
        cfg, stop = self.t.cfg, self.stop_requested
        return dataclasses.replace(
            turn,
            stop=stop is not None,
            stop_save=stop is None or stop.save,
            save=self.save_requested,
            sample=self.sample_requested or time.monotonic() >= next_sample,
            explore=self.explorer.due(training=not self.paused),
            paused=self.paused,
            out_of_time=cfg.max_minutes is not None and self.active_s >= cfg.max_minutes * 60,
        )

    def steps_between_turns(self) -> int:
        """One process: a turn every step. Several: about every ``TURN_EVERY_S`` of training, so
        the processes' agreement (a message to all of them) costs little when steps are fast."""
        if self.cluster.world == 1 or self._last_step_s <= 0:
            return 1
        return max(1, min(MAX_STEPS_BETWEEN_TURNS, int(TURN_EVERY_S / self._last_step_s)))

    def take_turn(self, next_post: float, next_sample: float, next_save: float) -> Turn:
        """This turn's plan, the same on every process: the leader's, with a stop that any
        process may ask for (a signal it got, or its launcher gone)."""
        mine = self.plan(next_post, next_sample, next_save)
        if self.cluster.world == 1:
            self.clock = mine.clock
            return mine
        local_stop = self.stop_requested is not None or self.cluster.orphaned()
        leader, anyone = self.cluster.share(mine.values(), [1.0 if local_stop else 0.0])
        turn = Turn.from_values(leader)
        if anyone[0] and not turn.stop:
            turn = dataclasses.replace(turn, stop=True, stop_save=True)
        self.clock = turn.clock
        if not self.cluster.leader:
            self.active_s = turn.clock
        return turn

    def run(self) -> ev.Finished:
        t, cfg = self.t, self.t.cfg
        leader = self.cluster.leader
        if t.run is not None:
            t.run.write_config(t.config_record())
        self.emit(
            ev.Started(
                run_dir=str(t.run.path) if t.run else "",
                corpus=str(t.corpus.path or ""),
                config=cfg.to_dict(),
                vocab_size=t.vocab.size,
                n_params=t.model.num_params(),
                device=str(t.device),
                train_chars=t.train_chars,
                val_chars=t.val_chars,
                batches_per_epoch=len(t.batches),
                step=t.step,
                best_val=t.best_val if math.isfinite(t.best_val) else None,
                last_val=t.last_val,
                max_steps=cfg.max_steps,
                max_minutes=cfg.max_minutes,
                precision=t.precision.record(),
                world_size=self.cluster.world,
                threads=cpu_threads() if t.device.type == "cpu" else None,
            )
        )
        if t.run is not None and t.step > 0:  # a resumed run: the curves so far, then live
            self.emit(t.run.history_event(upto=t.step))
            if t.resumed_from is not None and t.resumed_from == t.run.latest:  # the last save, so far
                self.emit(ev.CheckpointSaved(t.step, str(t.run.latest), "resumed"))
        if t.resume_note:
            self.emit(ev.Notice("info", t.resume_note))
        for note in t.start_notes:
            self.emit(ev.Notice("warning", note))
        self.emit(ev.SamplingChanged(self.temperature, self.top_k, self.prime))
        next_post = time.monotonic() + self.post_interval
        next_sample = time.monotonic() + min(cfg.sample_every_s, 5.0)  # the first sample comes early
        next_save = self.active_s + cfg.save_every_minutes * 60
        reason, error = "stopped", None
        # A time budget (and no step budget) decays the learning rate over training time: the
        # schedule's progress follows the share of the budget trained, so the decay ends with the
        # budget however fast the steps go. A resumed run goes on from where its decay was.
        budget_s = cfg.max_minutes * 60 if t.time_budgeted and cfg.max_minutes else None
        progress_from = t.schedule_progress
        if budget_s is not None:
            self.emit(
                ev.Notice(
                    "info",
                    f"the learning rate decays over the last {BUDGET_DECAY_SHARE:.0%} of the "
                    f"{cfg.max_minutes:g}-minute budget of training time, whatever the machine's load, "
                    f"or by step {t.budget_cap_steps:,} if sooner (--decay-steps or {BUDGET_CAP_EPOCHS} passes over the text)",
                )
            )
        path = None
        final_save = True
        next_turn = t.step  # the step at which the next turn is taken (every step on one process)
        try:
            if t.weights_finite():  # the first good state: where a NaN early on goes back to
                self.take_snapshot(weights_checked=True)
            while True:
                if t.step >= next_turn:
                    if leader and self.cluster.world > 1:
                        self.drain()  # several processes: the commands are part of the shared turn
                    turn = self.take_turn(next_post, next_sample, next_save)
                    # (and never past a step an evaluation is due at)
                    next_turn = min(t.step + turn.every, self.last_eval_step + cfg.eval_every)
                    # the work due after the steps just trained: report, evaluate, save
                    if turn.post:
                        stepped = t.step
                        self.post_progress()
                        next_post = time.monotonic() + self.post_interval
                        if t.step != stepped:
                            next_turn = t.step
                            continue  # rolled back: this step's evaluation and save are moot
                    if turn.evaluate:
                        self.evaluate()
                    if turn.periodic_save:
                        self.save("periodic")
                        next_save = self.active_s + cfg.save_every_minutes * 60
                    if self.cluster.world == 1:
                        # one process: the commands as they stand now (one sent on the report
                        # just made lands before the next step)
                        self.drain()
                        turn = self.obey(turn, next_sample)
                    # then the commands
                    if turn.stop:
                        final_save = turn.stop_save
                        break
                    if turn.save:
                        self.save_requested = False
                        self.save("manual")
                    if turn.sample:
                        self.sample_requested = False
                        self.sample()
                        next_sample = time.monotonic() + cfg.sample_every_s
                    if turn.explore:
                        self.explore()
                    if turn.paused:
                        self.post_progress()
                        self.set_state("paused")
                        if leader:
                            self.drain(timeout=0.1)
                        next_turn = t.step
                        continue
                    if turn.out_of_time:
                        reason = "max-minutes"
                        break
                    self.set_state("training")
                    if budget_s is not None:
                        t.schedule_progress = progress_from + (1 - progress_from) * min(1.0, self.clock / budget_s)
                if cfg.max_steps is not None and t.step >= cfg.max_steps:
                    reason = "max-steps"
                    break
                t0 = time.monotonic()
                t.train_step()
                now = time.monotonic()
                if t.thread_tuner is not None:
                    t.thread_tuner.step_done(now - t0)
                self._last_step_s = now - t0
                self._train_s += now - t0
                self._train_steps += 1
                self.active_s += now - t0
            self.post_progress()
            if final_save:
                # Save first: an evaluation can take a while, and a stop must not wait for it.
                path = self.save("final")
                failed = path is None and t.run is not None
                if failed:
                    error = self.save_error
                # (several processes evaluate together whatever the leader's disk did)
                if (
                    (not failed or self.cluster.world > 1)
                    and t.step > 0
                    and t.step
                    not in (
                        self.last_eval_step,
                        t.last_val_step,
                    )
                ):
                    self.evaluate(final=True)
                    path = self.save("final") or path  # again, so the checkpoint knows this val loss
        except Exception as exc:
            lost = self.cluster.failure(exc)
            if lost is not None:
                reason, error = "crashed", f"{lost}; the run stopped without saving (the last checkpoint is kept)"
            elif isinstance(exc, RnnTuiError):
                reason, error = "error", str(exc)
            else:
                reason, error = "error", describe_failure(exc)
                if t.run is not None:
                    try:
                        (t.run.path / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
                        error += f"; details in {t.run.path / 'error.log'}"
                    except OSError:
                        pass
            self.emit(ev.Notice("error", error))
        if t.run is not None:
            t.run.close()  # what a full disk kept in memory is written now if it can be
            self.tell_file_notes()
        self.set_state("failed" if error else "finished")
        done = ev.Finished(reason=reason, step=t.step, checkpoint=path, error=error)
        self.emit(done)
        return done


@dataclass(frozen=True)
class Turn:
    """What one turn of the session's loop does. The leader (the only process with one, or
    process 0 of several) decides from its commands and clocks; the others do the same, in
    the same order, so every collective (a gradient average, an evaluation, a checkpoint's
    gathering) is met by all of them."""

    stop: bool = False
    stop_save: bool = True
    save: bool = False  # a checkpoint asked for
    sample: bool = False  # asked for, or due
    explore: bool = False  # the explorer's requests (the leader's) are answered
    paused: bool = False
    post: bool = False  # report the steps since the last report (and check them for NaN)
    evaluate: bool = False
    periodic_save: bool = False
    out_of_time: bool = False  # --max-minutes
    clock: float = 0.0  # the leader's training time: what every process's time-based choices read
    every: int = 1  # training steps until the next turn

    def values(self) -> list[float]:
        return [float(getattr(self, f.name)) for f in dataclasses.fields(self)]

    @classmethod
    def from_values(cls, values: list[float]) -> Turn:
        v = dict(zip((f.name for f in dataclasses.fields(cls)), values))
        flag = {name: v[name] != 0 for name in FLAGS}
        return cls(**flag, clock=v["clock"], every=int(v["every"]))


FLAGS = [f.name for f in dataclasses.fields(Turn) if f.type == "bool"]


def metrics_row(row: StepRecord) -> dict[str, Any]:
    """metrics.jsonl's line for a step; a step the loss scaler skipped says so (and has no norm)."""
    grad_norm = None if row.skipped else round(row.grad_norm, 4)
    line = {"kind": "train", "step": row.step, "loss": round(row.loss, 5), "grad_norm": grad_norm, "lr": row.lr}
    return {**line, "skipped": True} if row.skipped else line


def cpu_threads() -> int:
    import torch

    return torch.get_num_threads()


def describe_failure(exc: BaseException) -> str:
    if is_out_of_memory(exc):
        return out_of_memory_advice(exc)
    return f"training stopped: {type(exc).__name__}: {first_line(exc)} (the last checkpoint is kept)"


def run_session(trainer: Trainer, inbox: Inbox, emit: Emit, **kw: Any) -> ev.Finished:
    return Session(trainer, inbox, emit, **kw).run()
