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
import shutil
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.runs import RunDirError
from rnn_tui.core.session import Emit, Inbox, Session
from rnn_tui.host.request import TrainRequest, build_trainer
from rnn_tui.remote.server import ControlServer
from rnn_tui.remote.status import RunLock, write_status

if TYPE_CHECKING:
    from rnn_tui.core.distributed import Ddp
    from rnn_tui.core.trainer import Trainer

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
        fields: dict[str, Any] = dict(
            state=state, step=done.step, reason=done.reason, error=done.error, checkpoint=done.checkpoint
        )
        try:
            write_status(self.run_dir, **fields)
        except OSError:
            # A full disk refuses the new file an atomic write needs: the last state is written
            # over the old file instead, so it never says "running" for a trainer that stopped.
            try:
                write_status(self.run_dir, in_place=True, **fields)
            except OSError:
                pass


def fanout(*sinks: Emit) -> Emit:
    def emit(e: ev.Event) -> None:
        for sink in sinks:
            sink(e)

    return emit


def own_answers(emit: Emit) -> Emit:
    """The host's own sink: the explorer's answers to viewers go to them alone (the control server
    routes those)."""

    def sink(e: ev.Event) -> None:
        if not (isinstance(e, (ev.Explored, ev.ExploreFailed)) and e.asker):
            emit(e)

    return sink


class StartInterrupted(BaseException):
    """A stop signal came while the session was starting: the start is abandoned, nothing kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


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
    returned (``reason="refused"`` when it could not start: bad input, a run that is training
    already, a run directory that cannot be written, a stop signal during start-up).

    ``stop_signals`` save and stop between steps (then ``on_stop_signal`` is told which came);
    during start-up they abandon the start, and a run directory made for it is removed.
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
        return _serve(
            request, inbox, sink, cluster, control, stop_signals, ignore_signals, on_stop_signal, on_internal_error
        )
    finally:
        cluster.close()


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
    session: Session | None = None
    giving_up = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if giving_up:
            return  # a second signal while a failed start is cleaned up changes nothing
        global stop_signal
        stop_signal = signum
        if session is None:
            raise StartInterrupted(signum)
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
    try:
        start = _Start(request, inbox, emit, control, cluster)
        try:
            session = start.run()
        except BaseException as exc:
            giving_up = True
            start.abandon()
            if isinstance(exc, StartInterrupted):
                return start.refuse(f"stopped by {signal.Signals(exc.signum).name} while starting; nothing was kept")
            if isinstance(exc, RnnTuiError):
                return start.refuse(str(exc))
            if not isinstance(exc, Exception):
                raise
            if on_internal_error is not None:
                on_internal_error(traceback.format_exc())
            return start.refuse(f"internal error: {exc!r}")
        return start.finish(session, on_internal_error)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Start:
    """A session's start and end: what it took (the run's lock, its socket, its state file, a
    run directory it made) and how each is given back, so that a start that fails halfway leaves
    nothing behind."""

    def __init__(self, request: TrainRequest, inbox: Inbox, emit: Emit, control: bool, cluster: Ddp | None = None):
        self.request, self.inbox, self.emit, self.control = request, inbox, emit, control
        self.cluster = cluster
        self.made: list[Path] = []  # a run directory made by this start
        self.trainer: Trainer | None = None
        self.lock: RunLock | None = None
        self.server: ControlServer | None = None
        self.status: StatusFile | None = None
        self.sinks: list[Emit] = [own_answers(emit)]

    def refuse(self, message: str) -> ev.Finished:
        done = ev.Finished(reason="refused", step=0, checkpoint=None, error=message)
        self.emit(done)
        return done

    def run(self) -> Session:
        cluster = self.cluster
        if cluster is None:
            trainer = self.trainer = build_trainer(self.request, made=self.made)
        else:
            from rnn_tui.host.ranks import build_rank_trainer

            trainer = self.trainer = build_rank_trainer(self.request, cluster)
        run = trainer.run
        refused: str | None = None
        if run is not None:
            try:
                self.lock = RunLock(run.path).acquire()
                try:  # a start that cannot write its run directory says so, and leaves nothing behind
                    run.write_config(trainer.config_record(), strict=True)
                except OSError as exc:
                    refused = f"cannot write to {run.path}: {exc.strerror or exc}"
            except RnnTuiError as exc:
                refused = str(exc)
            except OSError as exc:
                refused = f"cannot lock {run.path}: {exc.strerror or exc}"
        pids = [os.getpid()]
        if cluster is not None:  # a run trained already refuses every process, not only the leader
            refused = cluster.agree(refused)
            pids = cluster.exchange(os.getpid())
        if refused is not None:
            raise RunDirError(refused)
        if run is not None:
            if self.control:
                try:
                    self.server = ControlServer(run.path, self.inbox.put).start()
                    self.sinks.append(self.server.publish)
                except OSError as exc:
                    self.emit(ev.Notice("warning", f"other terminals cannot attach to this run: {exc.strerror or exc}"))
            self.status = StatusFile(run.path)
            self.status.write(
                state="running",
                pid=os.getpid(),
                host=socket.gethostname(),
                socket=str(self.server.path) if self.server is not None else None,
                started=time.time(),
                error=None,
                reason=None,
                # several processes: how many, and the launcher (torchrun, --nproc) that a signal
                # stops them all through (it passes it on to every process)
                **(
                    {"world_size": len(pids), "pids": pids, "launcher_pid": os.getppid()} if cluster is not None else {}
                ),
            )
            # first: what the app or a viewer is told (a save, an evaluation) is on file already,
            # so `rnn-tui runs` in another terminal never lags behind the screen
            self.sinks.insert(0, self.status.observe)
        return Session(trainer, self.inbox, fanout(*self.sinks))

    def abandon(self) -> None:
        """Give back what the start took; a run directory it made goes entirely."""
        run = self.trainer.run if self.trainer is not None else None
        if self.server is not None:
            self.server.close()
        if run is not None:
            run.close()
        if self.status is not None and not self.made:  # an existing run: its state says it is not training
            self.status.write(state="stopped", reason="stopped", error=None)
        for path in self.made:
            shutil.rmtree(path, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()

    def finish(self, session: Session, on_internal_error: Callable[[str], None] | None) -> ev.Finished:
        """Run the session to its end and close what the start took."""
        trainer, run = session.t, session.t.run
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
            done = ev.Finished(
                reason="error", step=trainer.step, checkpoint=None, error=f"internal error: {exc!r}{where}"
            )
            fanout(*self.sinks)(done)
        finally:
            if self.server is not None:
                self.server.close()
            if self.status is not None and done is not None:
                self.status.close(done)
            if self.lock is not None:
                self.lock.release()
        return done
