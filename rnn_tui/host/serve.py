"""Where a session runs: the one function every host of a trainer calls.

The live app's trainer process or thread (``links.py``), a background trainer (``detached.py``)
and headless mode (``headless.py``) run a session the same way, here: build the trainer from the
request, take the run's lock (no second trainer on one run, whatever the socket does), serve the
control socket so other terminals can watch and steer, keep ``trainer.json`` truthful, fan every
event out to the host's own sink and to the viewers, turn the host's signals into a clean stop,
and close all of it however the session ends.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.session import Emit, Inbox, Session
from rnn_tui.host.request import TrainRequest, build_trainer
from rnn_tui.remote.server import ControlServer
from rnn_tui.remote.status import RunLock, write_status

SignalHandler = Callable[[int, "FrameType | None"], Any] | int | None


class StatusFile:
    """``trainer.json`` kept truthful: running (with pid and socket) while the session lives,
    the step and best loss after each evaluation and checkpoint, and how it ended. A write that
    fails (a full disk) never stops training: the next one tries again."""

    def __init__(self, run_dir: Any):
        self.run_dir = run_dir
        self.best_val: float | None = None

    def write(self, **fields: Any) -> None:
        try:
            write_status(self.run_dir, **fields)
        except OSError:
            pass

    def observe(self, e: ev.Event) -> None:
        match e:
            case ev.Started():
                self.best_val = e.best_val
            case ev.Evaluated():
                self.best_val = e.best_val
                self.write(step=e.step, best_val=self.best_val)
            case ev.CheckpointSaved():
                # the step latest.pt holds (best.pt is the other file): rnn-tui runs shows it
                # without opening the checkpoint, which would need torch
                saved = {} if e.reason == "best" else {"saved_step": e.step}
                self.write(step=e.step, best_val=self.best_val, **saved)
            case _:
                pass

    def close(self, done: ev.Finished) -> None:
        state = "failed" if done.error else "stopped" if done.reason == "stopped" else "finished"
        self.write(state=state, step=done.step, reason=done.reason, error=done.error, checkpoint=done.checkpoint)


def fanout(*sinks: Emit) -> Emit:
    def emit(e: ev.Event) -> None:
        for sink in sinks:
            sink(e)

    return emit


def serve_session(
    request: TrainRequest,
    inbox: Inbox,
    emit: Emit,
    *,
    control: bool = True,
    stop_signals: Iterable[int] = (),
    ignore_signals: Iterable[int] = (),
    on_stop_signal: Callable[[int], None] | None = None,
    on_internal_error: Callable[[str], None] | None = None,
) -> ev.Finished:
    """Run ``request``'s session to its end; every outcome is a ``Finished`` event, emitted and
    returned (``reason="refused"`` when the trainer could not be built: bad input, a run that is
    training already).

    ``stop_signals`` save and stop between steps (then ``on_stop_signal`` is told which came);
    ``ignore_signals`` are ignored. Both are installed only for the session's lifetime, and only
    from the main thread (a trainer in a thread leaves signals to its process).
    """

    def refuse(message: str) -> ev.Finished:
        done = ev.Finished(reason="refused", step=0, checkpoint=None, error=message)
        emit(done)
        return done

    try:
        trainer = build_trainer(request)
    except RnnTuiError as exc:
        return refuse(str(exc))
    except Exception as exc:
        if on_internal_error is not None:
            on_internal_error(traceback.format_exc())
        return refuse(f"internal error: {exc!r}")
    run = trainer.run
    lock = None
    if run is not None:
        try:
            lock = RunLock(run.path).acquire()
        except (RnnTuiError, OSError) as exc:
            run.close()
            return refuse(str(exc) if isinstance(exc, RnnTuiError) else f"cannot lock {run.path}: {exc}")

    sinks = [emit]
    server = None
    status = None
    if run is not None:
        if control:
            try:
                server = ControlServer(run.path, inbox.put).start()
                sinks.append(server.publish)
            except OSError as exc:
                emit(ev.Notice("warning", f"other terminals cannot attach to this run: {exc.strerror or exc}"))
        status = StatusFile(run.path)
        status.write(
            state="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            socket=str(server.path) if server is not None else None,
            started=time.time(),
            error=None,
            reason=None,
        )
        sinks.append(status.observe)
    session = Session(trainer, inbox, fanout(*sinks))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        session.stop_requested = ev.Stop(save=True)
        if on_stop_signal is not None:
            on_stop_signal(signum)

    previous: dict[int, SignalHandler] = {}
    try:
        for s in stop_signals:
            previous[s] = signal.signal(s, on_signal)
        for s in ignore_signals:
            previous[s] = signal.signal(s, signal.SIG_IGN)
    except ValueError:
        pass  # not the main thread: signals stay with the process
    done: ev.Finished | None = None
    try:
        done = session.run()
    except Exception as exc:
        details = traceback.format_exc()
        where = ""
        if run is not None:
            try:
                run.error_log.write_text(details, encoding="utf-8")
                where = f" (details in {run.error_log})"
            except OSError:
                pass
        if on_internal_error is not None:
            on_internal_error(details)
        done = ev.Finished(reason="error", step=trainer.step, checkpoint=None, error=f"internal error: {exc!r}{where}")
        fanout(*sinks)(done)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if server is not None:
            server.close()
        if status is not None and done is not None:
            status.close(done)
        if lock is not None:
            lock.release()
    return done
