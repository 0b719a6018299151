"""``rnn-tui train --headless``: the same session as the app, printed as a progress bar and lines.

Its output may close under it (``| head``, a reader that quits): the run then saves and stops,
as on SIGTERM, and exits 0 with ``trainer.json`` saying "stopped"; nothing more is printed.
Every string from the corpus or a checkpoint is printed with its control characters made
visible (``rnn_tui.core.text``).
"""

from __future__ import annotations

import math
import os
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnn_tui.core import events as ev
from rnn_tui.core.cluster import launched
from rnn_tui.core.invocation import command
from rnn_tui.core.text import visible, visible_fields
from rnn_tui.host.request import LaunchError, TrainRequest
from rnn_tui.host.serve import serve_session

LN2 = math.log(2)


def fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


class OutputConsole(Console):
    """A console that tells ``on_closed`` when its output closes, where rich would raise
    ``SystemExit(1)`` from whatever line printed (and lose the run)."""

    def __init__(self, on_closed: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.on_closed = on_closed

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more is written
        try:  # and the interpreter's last flush of stdout at exit finds somewhere to go
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        self.on_closed()


def run_headless(request: TrainRequest, console: Console | None = None) -> int:
    """``_run_headless``; a process torchrun started then ends at once, its output flushed.

    Why at once: an interpreter that finalises with gloo's worker threads still holding work
    (DDP's last gradient buckets) can abort ("terminate called without an active exception"),
    and torchrun then reports a run that finished well as failed (pytorch/pytorch#179291)."""
    code = _run_headless(request, console)
    if launched() and request.nproc <= 1:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _run_headless(request: TrainRequest, console: Console | None = None) -> int:
    """Train with plain output; the exit code (a request refused raises ``LaunchError``).

    With ``--nproc N`` this process launches N processes that each run this function (the first
    one prints); under torchrun each process runs it directly."""
    if request.nproc > 1 and not launched():
        return launch_headless(request)
    leader = os.environ.get("RANK", "0") == "0"  # the other processes of a data-parallel run print nothing
    inbox: queue.Queue[ev.Command] = queue.Queue()
    # a closed output stops the run as SIGTERM does: saved, then stopped
    console = console or OutputConsole(
        lambda: inbox.put(ev.Stop(save=True)), stderr=False, highlight=False, quiet=not leader
    )
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        # No refresh thread: it would take the GIL from training ten times a second. The bar is
        # redrawn when progress arrives (twice a second).
        auto_refresh=False,
    )
    task = bar.add_task("training", total=None, info="")
    last = {"loss": math.nan, "rate": 0.0, "lr": 0.0, "gnorm": 0.0, "epoch": 0.0}
    said: dict[str, object] = {"saved": None}
    print_line = bar.console.print

    def show(e: ev.Event) -> None:
        match e:
            case ev.Started():
                bar.update(task, total=e.max_steps or None, completed=e.step)
                bar.start()
                resumed = f", resumed at step {e.step}" if e.step else ""
                print_line(
                    f"run {e.run_dir}: {e.corpus} ({e.train_chars:,} train / {e.val_chars:,} val chars, "
                    f"vocab {e.vocab_size}), {e.n_params:,} parameters on {e.device}{resumed}",
                    soft_wrap=True,
                    markup=False,
                )
                if e.precision:  # said once: what the trainer computes in, and why
                    detail = f"; {e.precision['detail']}" if e.precision.get("detail") else ""
                    print_line(f"precision: {e.precision['label']} ({e.precision['reason']}{detail})", markup=False)
            case ev.Progress():
                last.update(loss=sum(e.losses) / len(e.losses), rate=e.chars_per_s, lr=e.lr, epoch=e.epoch)
                if math.isfinite(e.grad_norm):  # not when every step since the last was a skipped fp16 step
                    last["gnorm"] = e.grad_norm
                bar.update(
                    task,
                    completed=e.step,
                    info=f"loss {last['loss']:.3f}  {fmt_rate(e.chars_per_s)} chars/s  epoch {e.epoch:.2f}",
                )
                bar.refresh()
            case ev.Evaluated():
                best = " (best)" if e.is_best else ""
                print_line(
                    f"step {e.step:>6} | epoch {last['epoch']:5.2f} | train {last['loss']:.4f} "
                    f"({last['loss'] / LN2:.3f} bpc) | val {e.val_loss:.4f} ({e.val_loss / LN2:.3f} bpc){best} "
                    f"| {fmt_rate(last['rate'])} chars/s | lr {last['lr']:.2e} | grad {last['gnorm']:.2f}",
                    soft_wrap=True,
                )
            case ev.Sampled():
                print_line(f"[dim]--- sample at step {e.step} (T={e.temperature:g}) ---[/dim]")
                print_line(e.prime + e.text, markup=False, highlight=False)
                print_line("[dim]---[/dim]")
            case ev.CheckpointSaved() if e.reason in ("manual", "final") and (e.path, e.step) != said["saved"]:
                # (a stop saves, evaluates, then saves the same step again with its loss: said once)
                said["saved"] = (e.path, e.step)
                print_line(f"saved {e.path} (step {e.step})", soft_wrap=True, markup=False)
            case ev.Notice():
                print_line(f"{e.level}: {e.message}", markup=False)
            case ev.Finished() if e.error and e.reason != "refused":
                print_line(f"stopped at step {e.step}: {e.error}", markup=False)
            case _:
                pass

    def emit(e: ev.Event) -> None:
        # Printing must never cost the run: after an SSH drop the terminal is gone (EIO); a
        # closed pipe (| head) stops the run through OutputConsole. The session saves either way.
        if isinstance(e, ev.Probed):
            return  # hidden states are for the app's heatmap
        try:
            show(visible_fields(e))
        except (OSError, ValueError):
            pass

    interrupts = 0

    def on_stop_signal(signum: int) -> None:
        # The first signal stops cleanly between steps and saves; a second Ctrl+C quits at once.
        nonlocal interrupts
        interrupts += 1
        if signum == signal.SIGINT and interrupts > 1:
            os._exit(130)
        if signum == signal.SIGINT and leader:
            try:
                print_line("stopping after this step and saving… (Ctrl+C again quits without saving)")
            except (OSError, ValueError):
                pass

    try:
        done = serve_session(
            request,
            inbox,
            emit,
            stop_signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
            on_stop_signal=on_stop_signal,
        )
    finally:
        if bar.live.is_started:  # (stopping a bar never started prints an empty line)
            bar.stop()
    if done.reason == "refused":
        if not leader:
            return 2  # every process was refused alike: the first one says why
        raise LaunchError(done.error or "the run could not start")
    if done.error:
        return 1
    how = "stopped" if done.reason == "stopped" else f"finished ({done.reason})"
    lines = [f"{how} at step {done.step}; checkpoint {done.checkpoint}"]
    if done.checkpoint:
        more = ["--max-steps", str(done.step * 2)] if done.reason == "max-steps" else []
        if request.nproc > 1:  # as many processes again: the run then continues exactly
            more += ["--nproc", str(request.nproc)]
        run_dir = Path(done.checkpoint).parent.parent
        if launched() and request.nproc <= 1:  # started by torchrun, not by --nproc
            lines.append(f"resume with: the same torchrun command, with: -m rnn_tui train --resume {run_dir}")
        else:
            lines.append(f"resume with: {command('train', '--resume', run_dir, *more)}")
    try:
        for line in lines:
            console.print(visible(line), soft_wrap=True, markup=False)
    except (OSError, ValueError):
        pass
    return 0


def launch_headless(request: TrainRequest) -> int:
    """``--nproc N --headless``: this process launches N that train and print (the first one)."""
    from rnn_tui.host.launch import Stopped, describe, launch

    print(describe(request), flush=True)
    try:
        outcome = launch(request, headless_process)
    except Stopped:
        return 0  # every process was passed the signal, saved and stopped: as one process would
    if isinstance(outcome, str):
        raise LaunchError(outcome)
    return int(outcome or 0)


def headless_process(request: TrainRequest) -> int | str:
    """One process of ``--nproc N --headless``: its exit code, or why the run was refused."""
    try:
        return run_headless(request)
    except LaunchError as exc:
        return str(exc)
