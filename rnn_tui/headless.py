"""``rnn-tui train --headless``: the same session as the app, printed as a progress bar and lines."""

from __future__ import annotations

import math
import os
import queue
import signal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnn_tui.core import events as ev
from rnn_tui.launch import TrainRequest, build_trainer

LN2 = math.log(2)


def fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def run_headless(request: TrainRequest, console: Console | None = None) -> int:
    from rnn_tui.core.session import Session

    console = console or Console(stderr=False, highlight=False)
    trainer = build_trainer(request)
    inbox: queue.Queue = queue.Queue()
    cfg = trainer.cfg
    total = cfg.max_steps or None
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False,
        # No refresh thread: it would take the GIL from training ten times a second. The bar is
        # redrawn when progress arrives (twice a second).
        auto_refresh=False,
    )
    task = bar.add_task("training", total=total, completed=trainer.step, info="")
    last = {"loss": math.nan, "rate": 0.0, "lr": 0.0, "gnorm": 0.0, "epoch": 0.0}

    def emit(e: ev.Event) -> None:
        if isinstance(e, ev.Started):
            resumed = f", resumed at step {e.step}" if e.step else ""
            bar.console.print(
                f"run {e.run_dir}: {e.corpus} ({e.train_chars:,} train / {e.val_chars:,} val chars, "
                f"vocab {e.vocab_size}), {e.n_params:,} parameters on {e.device}{resumed}",
                soft_wrap=True,
            )
        elif isinstance(e, ev.Progress):
            last.update(loss=sum(e.losses) / len(e.losses), rate=e.chars_per_s, lr=e.lr, gnorm=e.grad_norm, epoch=e.epoch)
            bar.update(task, completed=e.step,
                       info=f"loss {last['loss']:.3f}  {fmt_rate(e.chars_per_s)} chars/s  epoch {e.epoch:.2f}")
            bar.refresh()
        elif isinstance(e, ev.Evaluated):
            best = " (best)" if e.is_best else ""
            bar.console.print(
                f"step {e.step:>6} | epoch {last['epoch']:5.2f} | train {last['loss']:.4f} ({last['loss'] / LN2:.3f} bpc) "
                f"| val {e.val_loss:.4f} ({e.val_loss / LN2:.3f} bpc){best} | {fmt_rate(last['rate'])} chars/s "
                f"| lr {last['lr']:.2e} | grad {last['gnorm']:.2f}",
                soft_wrap=True,
            )
        elif isinstance(e, ev.Sampled):
            bar.console.print(f"[dim]--- sample at step {e.step} (T={e.temperature:g}) ---[/dim]")
            bar.console.print(e.prime + e.text, markup=False, highlight=False)
            bar.console.print("[dim]---[/dim]")
        elif isinstance(e, ev.CheckpointSaved) and e.reason in ("manual", "final"):
            bar.console.print(f"saved {e.path} (step {e.step})", soft_wrap=True)
        elif isinstance(e, ev.Notice):
            bar.console.print(f"{e.level}: {e.message}", markup=False)
        elif isinstance(e, ev.Finished):
            if e.error:
                bar.console.print(f"stopped at step {e.step}: {e.error}", markup=False)

    def safe_emit(e: ev.Event) -> None:
        # Printing must never cost the run: after an SSH drop the terminal is gone (EIO), and a
        # closed pipe (| head) raises too. The session goes on and saves either way.
        try:
            emit(e)
        except (OSError, ValueError):
            pass

    # other terminals may watch and steer this run too (rnn-tui attach)
    from rnn_tui.control import fanout, open_control

    server = open_control(trainer.run.path, inbox.put, safe_emit) if trainer.run is not None else None
    session = Session(trainer, inbox, safe_emit if server is None else fanout(safe_emit, server.publish))
    interrupts = {"n": 0}

    def on_signal(signum, _frame) -> None:
        # The first signal stops cleanly between steps and saves; a second Ctrl+C quits at once.
        interrupts["n"] += 1
        if signum == signal.SIGINT and interrupts["n"] > 1:
            os._exit(130)
        session.stop_requested = ev.Stop(save=True)
        if signum == signal.SIGINT:
            try:
                bar.console.print("stopping after this step and saving… (Ctrl+C again quits without saving)")
            except (OSError, ValueError):
                pass

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    done = None
    try:
        with bar:
            done = session.run()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if server is not None:
            server.close(done)
    if done.error:
        return 1
    try:
        console.print(f"finished ({done.reason}) at step {done.step}; checkpoint {done.checkpoint}", soft_wrap=True)
    except (OSError, ValueError):
        pass
    return 0
