"""The seam between a front end and a trainer: send commands, poll events.

``ProcessLink`` runs the trainer in its own (spawned) process: the UI's Python never holds the
trainer's GIL, torch is imported there and not in the UI, and a dropped terminal can be survived.
``ThreadLink`` runs the same loop in a thread of this process (for tests and scripts). Both expose
the same four methods, so the app does not know which one it drives.

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
import traceback
from typing import Protocol

from rnn_tui.core import events as ev


class TrainerLink(Protocol):
    def start(self) -> None: ...
    def send(self, command: ev.Command) -> None: ...
    def poll(self, limit: int = 1000) -> list[ev.Event]: ...
    def alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...


class _ParentWatchingInbox:
    """The trainer's inbox; if the process that started it dies, it asks the trainer to save and stop."""

    def __init__(self, inner, parent_pid: int | None, outbox=None):
        self.inner = inner
        self.parent_pid = parent_pid
        self.outbox = outbox
        self.orphaned = False

    def get(self, block: bool = True, timeout: float | None = None):
        if self.parent_pid is not None and not self.orphaned and os.getppid() != self.parent_pid:
            self.orphaned = True
            if hasattr(self.outbox, "cancel_join_thread"):
                # nobody will read the events now: do not wait for them to drain at exit
                self.outbox.cancel_join_thread()
            return ev.Stop(save=True)
        return self.inner.get(block, timeout)


def trainer_main(request, inbox, outbox, parent_pid: int | None = None, in_process: bool = False,
                 serve: bool = True) -> None:
    """Build the trainer and run its session; every outcome ends with a ``Finished`` event.

    With ``serve`` the trainer also serves its run's control socket, so other terminals can
    attach to it (``rnn-tui attach``) while this front end drives it."""
    from rnn_tui.control import fanout, open_control
    from rnn_tui.core.errors import RnnTuiError
    from rnn_tui.core.session import Session
    from rnn_tui.launch import build_trainer

    put = outbox.put
    server = None
    try:
        trainer = build_trainer(request)
        if serve and trainer.run is not None:
            server = open_control(trainer.run.path, inbox.put, put)
    except RnnTuiError as exc:
        put(ev.Finished(reason="error", step=0, checkpoint=None, error=str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - reported to the UI, never a traceback on screen
        put(ev.Finished(reason="error", step=0, checkpoint=None, error=f"internal error: {exc!r}"))
        return
    emit = put if server is None else fanout(put, server.publish)
    session = Session(trainer, _ParentWatchingInbox(inbox, parent_pid, outbox), emit)
    if not in_process:
        # Ctrl+C belongs to the UI (it arrives there as a key); SIGTERM and SIGHUP (a dropped SSH
        # connection) stop the trainer between steps, after saving.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

        def stop(_signum, _frame) -> None:
            session.stop_requested = ev.Stop(save=True)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, stop)
    done = None
    try:
        done = session.run()
    except Exception as exc:  # noqa: BLE001
        log = None
        if trainer.run is not None:
            log = trainer.run.path / "error.log"
            log.write_text(traceback.format_exc(), encoding="utf-8")
        where = f" (details in {log})" if log else ""
        done = ev.Finished(reason="error", step=trainer.step, checkpoint=None,
                           error=f"internal error: {exc!r}{where}")
        emit(done)
    finally:
        if server is not None:
            server.close(done)


def _drain(q, limit: int) -> list[ev.Event]:
    out: list[ev.Event] = []
    while len(out) < limit:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            break
    return out


class ProcessLink:
    def __init__(self, request):
        self.request = request
        self.ctx = mp.get_context("spawn")  # fork + torch (and CUDA) do not mix
        self.commands = self.ctx.Queue()
        self.events = self.ctx.Queue()
        self.process = self.ctx.Process(
            target=trainer_main, args=(request, self.commands, self.events, os.getpid()),
            name="rnn-tui-trainer", daemon=False,
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
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def terminate(self) -> None:
        """SIGTERM (the trainer saves and stops), then SIGKILL if it does not go within 10 s."""
        if self.process.is_alive():
            self.process.terminate()
            self.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class ThreadLink:
    def __init__(self, request):
        self.request = request
        self.commands: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(
            target=trainer_main, args=(request, self.commands, self.events, None, True),
            name="rnn-tui-trainer", daemon=True,
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

    def terminate(self) -> None:
        self.commands.put(ev.Stop(save=False))
