"""Where a session runs: the one function every host of a trainer calls.

The live app's trainer process or thread (``links.py``), a background trainer (``detached.py``)
and headless mode (``headless.py``) run a session the same way, here: build the trainer from the
request, take the run's lock (no second trainer on one run, whatever the socket does), serve the
control socket so other terminals can watch and steer, keep ``trainer.json`` truthful, fan every
event out to the host's own sink and to the viewers, turn the host's signals into a clean stop,
and close all of it however the session ends.

A data-parallel run (torchrun, ``--nproc``) runs this in every process: each joins the process group
and builds its own trainer (``ranks.py``); process 0, the leader, takes the lock, serves the socket,
writes the status and emits the events; the others train in step and write nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.session import Emit, Inbox, Session
from rnn_tui.host.request import TrainRequest, build_trainer
from rnn_tui.remote.server import ControlServer
from rnn_tui.remote.status import RunLock, write_status

if TYPE_CHECKING:
    from rnn_tui.core.distributed import Ddp

# The stop signal this process's last session got (None: none). A process of a ``--nproc`` run
# that was told to stop by a signal exits by that signal once it has saved (see launch.py).
stop_signal: int | None = None

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
        state = (
            "crashed"  # another process died: nothing could be saved (--resume continues the last checkpoint)
            if done.reason == "crashed"
            else "failed"
            if done.error
            else "stopped"
            if done.reason == "stopped"
            else "finished"
        )
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

    from rnn_tui.core.cluster import launched

    if not launched():
        return _serve(
            request, inbox, emit, None, control, stop_signals, ignore_signals, on_stop_signal, on_internal_error
        )
    from rnn_tui.core.distributed import join

    try:
        cluster = join()
    except RnnTuiError as exc:
        done = ev.Finished(reason="refused", step=0, checkpoint=None, error=str(exc))
        emit(done)
        return done
    try:
        quiet: Emit = lambda e: None  # noqa: E731  (the leader speaks for the run)
        sink = emit if cluster.leader else quiet
        done = _serve(
            request, inbox, sink, cluster, control, stop_signals, ignore_signals, on_stop_signal, on_internal_error
        )
    finally:
        cluster.close()
    return done


def _serve(
    request: TrainRequest,
    inbox: Inbox,
    emit: Emit,
    cluster: Ddp | None,
    control: bool,
    stop_signals: Iterable[int],
    ignore_signals: Iterable[int],
    on_stop_signal: Callable[[int], None] | None,
    on_internal_error: Callable[[str], None] | None,
) -> ev.Finished:
    def refuse(message: str) -> ev.Finished:
        done = ev.Finished(reason="refused", step=0, checkpoint=None, error=message)
        emit(done)
        return done

    try:
        if cluster is None:
            trainer = build_trainer(request)
        else:
            from rnn_tui.host.ranks import build_rank_trainer

            trainer = build_rank_trainer(request, cluster)
    except RnnTuiError as exc:
        return refuse(str(exc))
    except Exception as exc:
        if on_internal_error is not None:
            on_internal_error(traceback.format_exc())
        return refuse(f"internal error: {exc!r}")
    run = trainer.run
    lock = None
    refused = None
    if run is not None:
        try:
            lock = RunLock(run.path).acquire()
        except (RnnTuiError, OSError) as exc:
            refused = str(exc) if isinstance(exc, RnnTuiError) else f"cannot lock {run.path}: {exc}"
    pids = [os.getpid()]
    if cluster is not None:  # a run trained already refuses every process, not only the leader
        try:
            refused = cluster.agree(refused)
            pids = cluster.exchange(os.getpid())
        except RnnTuiError as exc:
            refused = str(exc)
    if refused is not None:
        if lock is not None:
            lock.release()
        if run is not None:
            run.close()
        return refuse(refused)

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
            # several processes: how many, and the launcher (torchrun, --nproc) that a signal
            # stops them all through (it passes it on to every process)
            **({"world_size": len(pids), "pids": pids, "launcher_pid": os.getppid()} if cluster is not None else {}),
        )
        # first: what the app or a viewer is told (a save, an evaluation) is on file already,
        # so `rnn-tui runs` in another terminal never lags behind the screen
        sinks.insert(0, status.observe)
    session = Session(trainer, inbox, fanout(*sinks))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        global stop_signal
        stop_signal = signum
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
