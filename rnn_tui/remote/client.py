"""The viewer's side: links the live app drives when it watches a run it did not start.

``SocketLink`` connects to a running trainer's control socket (``server.py``); ``HistoryLink``
shows a run that is no longer training, from its files. Both are ``TrainerLink``s
(``rnn_tui/host/links.py``), so the app is the same app whichever it drives.
"""

from __future__ import annotations

import queue
import socket
import threading
from pathlib import Path

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.runs import RunDir
from rnn_tui.remote import wire
from rnn_tui.remote.catchup import CatchUp
from rnn_tui.remote.status import live_trainer, read_status, run_info


class AttachError(RnnTuiError):
    pass


class SocketLink:
    """A viewer of a running trainer. Leaving (``close``) never stops the trainer."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.events: queue.Queue[ev.Event] = queue.Queue()
        self.sock: socket.socket | None = None
        self.trainer_pid: int | None = None
        self.send_lock = threading.Lock()
        self.reader: threading.Thread | None = None
        self.got_finished = False

    def start(self) -> None:
        status = live_trainer(self.run_dir)
        if status is None:
            raise AttachError(f"no trainer is running for {self.run_dir}")
        if not status.get("socket"):
            raise AttachError(
                f"the trainer of {self.run_dir} (pid {status.get('pid')}) serves no control socket "
                f"(it could not create one); follow its files instead: tail -f {RunDir(self.run_dir).metrics}"
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(status["socket"])
            frames: list[bytes] = []
            reader = wire.FrameReader(wire.MAX_EVENT_BYTES)
            while not frames:
                data = sock.recv(65536)
                if not data:
                    raise AttachError("the trainer closed the connection (another user's run?)")
                frames = reader.feed(data)
                if reader.error:
                    raise AttachError(f"the trainer sent a malformed message: {reader.error}")
        except OSError as exc:
            sock.close()
            raise AttachError(f"cannot connect to the trainer of {self.run_dir}: {exc.strerror or exc}") from None
        hello = wire.decode_event(frames[0])
        if isinstance(hello, wire.Refused):
            sock.close()
            raise AttachError(f"the trainer refused this viewer: {hello.reason}")
        if not isinstance(hello, wire.Hello) or hello.protocol != wire.PROTOCOL:
            sock.close()
            raise AttachError("the trainer speaks another protocol version (a different rnn-tui?)")
        self.trainer_pid = hello.pid
        sock.settimeout(None)
        self.sock = sock
        for frame in frames[1:]:
            self._accept(wire.decode_event(frame))
        self.reader = threading.Thread(target=self._read_loop, args=(reader,), name="viewer-read", daemon=True)
        self.reader.start()

    def _accept(self, e: object) -> None:
        if isinstance(e, wire.Refused):
            e = ev.Notice("warning", f"the trainer refused a command: {e.reason}")
        elif isinstance(e, wire.Hello):
            return
        if isinstance(e, ev.Finished):
            self.got_finished = True
        self.events.put(e)  # type: ignore[arg-type]  # an event: decode_event checked its type

    def _read_loop(self, reader: wire.FrameReader) -> None:
        sock = self.sock
        assert sock is not None
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    return
                for frame in reader.feed(data):
                    self._accept(wire.decode_event(frame))
                if reader.error:
                    return
        except (OSError, wire.WireError):
            return

    def send(self, command: ev.Command) -> None:
        if self.sock is None:
            return
        try:
            with self.send_lock:
                self.sock.sendall(wire.encode(command))
        except OSError:
            pass  # the trainer is gone: alive() says so and the app shows it

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        out: list[ev.Event] = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def alive(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self.reader is not None:
            self.reader.join(timeout)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    @property
    def exit_code(self) -> int | None:
        return None  # another process's trainer: its exit code is not ours to know


class HistoryLink:
    """A run that is not training now, replayed from its files: the loss history, the last
    samples, how it ended."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.pending: list[ev.Event] = []

    def start(self) -> None:
        info = run_info(self.run_dir)
        try:
            record = CatchUp.from_files(RunDir(self.run_dir), read_status(self.run_dir), info.state, info.step or 0)
        except (OSError, ValueError):
            raise AttachError(f"{self.run_dir} has no readable config.json; is it a run directory?") from None
        self.pending = record.events(RunDir(self.run_dir))
        if info.state == "damaged":
            self.pending.append(
                ev.Notice(
                    "warning",
                    "this run's config.json or trainer.json is damaged (not what a "
                    "trainer writes): what could be read is shown",
                )
            )

    def send(self, command: ev.Command) -> None:
        pass  # nothing to steer: the app greys the trainer's keys out once it has the Finished event

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        out, self.pending = self.pending[:limit], self.pending[limit:]
        return out

    def alive(self) -> bool:
        return bool(self.pending)

    def join(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def exit_code(self) -> int | None:
        return None


def link_for(run_dir: Path) -> SocketLink | HistoryLink:
    """A live link when the run is training, else its history."""
    return SocketLink(run_dir) if live_trainer(run_dir) is not None else HistoryLink(run_dir)
