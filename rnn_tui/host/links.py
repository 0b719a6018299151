"""The seam between a front end and a trainer: commands in, events out.

``TrainerLink`` is all the live app knows of a trainer. ``ProcessLink`` runs the session in its
own (spawned) process: the UI's Python never holds the trainer's GIL, torch is imported there
and not in the UI, and a dropped terminal can be survived. ``ThreadLink`` runs the same session
in a thread of this process (tests and scripts). A viewer's links (``rnn_tui/remote/client.py``)
are ``TrainerLink``s too.

Create a ``ProcessLink`` and call ``start()`` *before* ``App.run()``: Textual replaces stderr with an
object whose ``fileno()`` is -1, and multiprocessing cannot start a process after that.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from typing import Any, Protocol

from rnn_tui.core import events as ev
from rnn_tui.host.request import TrainRequest


class TrainerLink(Protocol):
    """A trainer as a front end sees it, wherever it runs."""

    def start(self) -> None:
        """Start the trainer (or connect to it); raises ``RnnTuiError`` with a one-line reason."""

    def send(self, command: ev.Command) -> None:
        """Queue a command; never blocks, never raises (a trainer that is gone shows in ``alive``)."""

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        """The events that arrived since the last call, at most ``limit``; never blocks."""
        ...

    def alive(self) -> bool:
        """Whether events may still come (the trainer runs, or some are queued)."""
        ...

    def join(self, timeout: float | None = None) -> None:
        """Wait for the trainer to end (up to ``timeout`` seconds)."""

    def close(self) -> None:
        """Let go of the trainer: a viewer leaves it running; an owner's trainer is stopped."""

    @property
    def exit_code(self) -> int | None:
        """The trainer process's exit code once it ended, when it is this link's own process."""
        ...


class _ParentWatchingInbox:
    """The trainer's inbox; if the process that started it dies, it asks the trainer to save and stop."""

    def __init__(self, inner: Any, parent_pid: int, outbox: Any):
        self.inner = inner
        self.parent_pid = parent_pid
        self.outbox = outbox
        self.orphaned = False

    def get(self, block: bool = True, timeout: float | None = None) -> ev.Command:
        if not self.orphaned and os.getppid() != self.parent_pid:
            self.orphaned = True
            # nobody will read the events now: do not wait for them to drain at exit
            self.outbox.cancel_join_thread()
            return ev.Stop(save=True)
        command: ev.Command = self.inner.get(block, timeout)
        return command

    def put(self, command: ev.Command) -> None:
        self.inner.put(command)


def trainer_process_main(request: TrainRequest, inbox: Any, outbox: Any, parent_pid: int) -> None:
    """The spawned trainer process of the live app (``ProcessLink``)."""
    from rnn_tui.host.serve import serve_session

    # Ctrl+C belongs to the UI (it arrives there as a key); SIGTERM and SIGHUP (a dropped SSH
    # connection) stop the trainer between steps, after saving.
    serve_session(
        request,
        _ParentWatchingInbox(inbox, parent_pid, outbox),
        outbox.put,
        stop_signals=(signal.SIGTERM, signal.SIGHUP),
        ignore_signals=(signal.SIGINT,),
    )


def launcher_process_main(request: TrainRequest, inbox: Any, outbox: Any, parent_pid: int) -> None:
    """The live app's trainer with ``--nproc N``: this spawned process is the launcher of N
    processes (its main thread takes the launcher's signals); the first of them talks to the app
    through the same queues as a single trainer would."""
    from rnn_tui.core.errors import RnnTuiError
    from rnn_tui.host.launch import Stopped, launch

    def watch_parent() -> None:  # the app is gone: save and stop, as a single trainer does
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        inbox.put(ev.Stop(save=True))

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    try:
        launch(request, app_process, inbox, outbox, log_to_run=True)
    except Stopped:
        pass
    except RnnTuiError as exc:  # refused before the processes started, or one of them died
        outbox.put(ev.Finished(reason="error", step=0, checkpoint=None, error=str(exc)))


def app_process(request: TrainRequest, inbox: Any, outbox: Any) -> None:
    """One process of the live app's ``--nproc`` run: the first one is the app's trainer; the
    others train in step with it (they get no commands and send no events)."""
    if os.environ.get("RANK", "0") == "0":
        trainer_process_main(request, inbox, outbox, os.getppid())
        return
    from rnn_tui.host.serve import serve_session

    serve_session(
        request,
        queue.Queue(),
        lambda e: None,
        stop_signals=(signal.SIGTERM, signal.SIGHUP),
        ignore_signals=(signal.SIGINT,),
    )


def trainer_thread_main(request: TrainRequest, inbox: queue.Queue[ev.Command], outbox: queue.Queue[ev.Event]) -> None:
    from rnn_tui.host.serve import serve_session

    serve_session(request, inbox, outbox.put)


def _drain(q: Any, limit: int) -> list[ev.Event]:
    out: list[ev.Event] = []
    while len(out) < limit:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            break
    return out


class ProcessLink:
    def __init__(self, request: TrainRequest):
        self.request = request
        self.ctx = mp.get_context("spawn")  # fork + torch (and CUDA) do not mix
        self.commands = self.ctx.Queue()
        self.events = self.ctx.Queue()
        self.process = self.ctx.Process(
            # --nproc N: a launcher process between the app and the trainers (see launch.py)
            target=trainer_process_main if request.nproc <= 1 else launcher_process_main,
            args=(request, self.commands, self.events, os.getpid()),
            name="rnn-tui-trainer",
            daemon=False,
        )
        self._backlog: list[ev.Event] = []

    def start(self) -> None:
        self.process.start()

    def send(self, command: ev.Command) -> None:
        self.commands.put(command)

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        if self._backlog:
            out, self._backlog = self._backlog[:limit], self._backlog[limit:]
            return out + _drain(self.events, limit - len(out))
        return _drain(self.events, limit)

    def alive(self) -> bool:
        return self.process.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the trainer to exit, reading its events meanwhile: a process cannot exit while
        its queue still holds events nobody reads (they are kept for ``poll``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.process.is_alive() and (deadline is None or time.monotonic() < deadline):
            self._backlog.extend(_drain(self.events, 10_000))
            self.process.join(0.05)

    @property
    def exit_code(self) -> int | None:
        return self.process.exitcode

    def close(self) -> None:
        """Make sure the trainer has stopped: it is asked to save and stop, then SIGTERM (it saves
        too), then SIGKILL if it does not go."""
        if self.process.is_alive():
            self.send(ev.Stop(save=True))
            self.join(120)
        if self.process.is_alive():
            self.process.terminate()
            self.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class ThreadLink:
    def __init__(self, request: TrainRequest):
        self.request = request
        self.commands: queue.Queue[ev.Command] = queue.Queue()
        self.events: queue.Queue[ev.Event] = queue.Queue()
        self.thread = threading.Thread(
            target=trainer_thread_main,
            args=(request, self.commands, self.events),
            name="rnn-tui-trainer",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()

    def send(self, command: ev.Command) -> None:
        self.commands.put(command)

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        return _drain(self.events, limit)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def close(self) -> None:
        self.commands.put(ev.Stop(save=False))

    @property
    def exit_code(self) -> int | None:
        return None
