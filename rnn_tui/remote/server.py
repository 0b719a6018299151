"""The trainer's side of the control channel: a Unix socket in the run directory that viewers
(``rnn-tui attach``, browser tabs through ``rnn-tui serve``) connect to.

Every trainer process serves one, so any run can be watched and steered from another terminal.
Only the owner can connect: the run directory is 0700, the socket 0600, and a connecting peer's
uid (SO_PEERCRED) must be ours. Commands arrive as frames (see ``wire.py``) and go into the
session's inbox, so a viewer steers exactly as the app's own keys do. Events are encoded once on
the trainer thread and queued per viewer; sending happens on each viewer's own thread, so a slow
or stuck viewer cannot stall training (it is dropped when its queue fills).

A viewer that joins late first gets the run's state so far (``catchup.py``). The server only
serves: the trainer's state file (``trainer.json``) and the run's lock belong to the session's
host (``rnn_tui/host/serve.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rnn_tui.core import events as ev
from rnn_tui.core.runs import RunDir
from rnn_tui.core.text import visible
from rnn_tui.remote import wire
from rnn_tui.remote.catchup import CatchUp
from rnn_tui.remote.status import socket_path_for

MAX_VIEWERS = 16
LOG_BURST = 50  # control.log lines written at once before the rate limit applies ...
LOG_PER_S = 1.0  # ... then this many a second on average (the rest are counted, not written)
LOG_MAX_BYTES = 1 << 20  # control.log is moved to control.log.1 past this: at most 2 MB on disk
VIEWER_QUEUE = 2000  # frames (a few minutes of events) before a stuck viewer is dropped
_PEERCRED = struct.Struct("3i")
_viewer_ids = itertools.count(1)


class _Viewer:
    def __init__(self, server: ControlServer, conn: socket.socket, peer: str):
        self.server = server
        self.conn = conn
        self.peer = peer
        self.ident = f"viewer-{next(_viewer_ids)}"  # an explorer's answers go to this viewer only
        self.outbox: queue.Queue = queue.Queue(VIEWER_QUEUE)
        self.closed = threading.Event()
        threading.Thread(target=self._send_loop, name=f"viewer-send-{peer}", daemon=True).start()
        threading.Thread(target=self._read_loop, name=f"viewer-read-{peer}", daemon=True).start()

    def offer(self, frame: bytes | ev.Explored | ev.ExploreFailed) -> None:
        try:
            self.outbox.put_nowait(frame)
        except queue.Full:
            self.server.log(f"viewer {self.peer} is not reading; disconnected")
            self.close()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            try:
                self.outbox.put_nowait(None)  # wakes the sending thread
            except queue.Full:
                pass
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.server._forget(self)

    def _send_loop(self) -> None:
        try:
            while not self.closed.is_set():
                frame = self.outbox.get()
                if frame is None:
                    break
                self.conn.sendall(frame if isinstance(frame, bytes) else wire.encode(frame))
        except OSError:
            pass
        finally:
            self.close()
            self.conn.close()

    def _read_loop(self) -> None:
        reader = wire.FrameReader(wire.MAX_COMMAND_BYTES)
        try:
            while not self.closed.is_set():
                data = self.conn.recv(65536)
                if not data:
                    break
                for frame in reader.feed(data):
                    try:
                        command = wire.decode_command(frame)
                    except wire.WireError as exc:
                        self.refuse(str(exc))
                        continue
                    if isinstance(command, ev.Explore):  # whatever it says, the answer comes back here
                        command = dataclasses.replace(command, asker=self.ident)
                    self.server.submit(command)
                if reader.error:  # oversized: the stream cannot be followed any more
                    self.refuse(reader.error)
                    break
        except OSError:
            pass
        finally:
            # flush what is queued (a Refused, the Finished event), then close
            self.offer_end()

    def refuse(self, reason: str) -> None:
        self.server.log(f"refused a message from viewer {self.peer}: {reason}")
        self.offer(wire.encode(wire.Refused(reason)))

    def offer_end(self) -> None:
        try:
            self.outbox.put_nowait(None)
        except queue.Full:
            self.close()


class BoundedLog:
    """``control.log``: a flood of bad messages or connections cannot fill the disk or cost the
    trainer time. Lines are rate-limited (a token bucket: ``LOG_BURST`` at once, ``LOG_PER_S``
    after that; those dropped are counted in the next line written) and the file is rotated to
    ``.1`` past ``LOG_MAX_BYTES``. A write that fails (a full disk) is dropped."""

    def __init__(self, path: Path, burst: int = LOG_BURST, per_s: float = LOG_PER_S, max_bytes: int = LOG_MAX_BYTES):
        self.path = path
        self.burst, self.per_s, self.max_bytes = burst, per_s, max_bytes
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.dropped = 0
        self.lock = threading.Lock()

    def write(self, message: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_s)
            self.last = now
            if self.tokens < 1:
                self.dropped += 1
                return
            self.tokens -= 1
            # one line, and nothing a viewer sent can reach the terminal of whoever reads the log
            line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {visible(message[:500]).replace(chr(10), ' ')}\n"
            if self.dropped:
                line = (
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')} ({self.dropped:,} more lines not logged: too many)\n" + line
                )
            try:
                if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line)
                self.dropped = 0
            except OSError:
                self.dropped += 1


class ControlServer:
    """Serve ``run_dir``'s control socket; ``submit`` receives the viewers' commands."""

    def __init__(self, run_dir: str | Path, submit: Callable[[ev.Command], None], log_file: str | Path | None = None):
        self.run = RunDir(Path(run_dir).resolve())
        self.run_dir = self.run.path
        self.submit = submit
        self.log_path = Path(log_file) if log_file else self.run.control_log
        self.path: Path | None = None
        self.sock: socket.socket | None = None
        self.viewers: list[_Viewer] = []
        self.lock = threading.RLock()
        self.allowed_uid = os.getuid()
        self.record = CatchUp()  # what a late viewer is shown first
        self._log = BoundedLog(self.log_path)

    # ------------------------------------------------------------------ life
    def start(self) -> ControlServer:
        """Serve; a stale socket file (a killed trainer's) is replaced. One trainer per run is the
        caller's guard (the run's lock), not the socket's."""
        os.chmod(self.run_dir, 0o700)
        path = socket_path_for(self.run_dir)
        try:
            path.unlink()  # a stale socket from a trainer that was killed
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # born 0600: no moment when others could connect
        try:
            sock.bind(str(path))
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(MAX_VIEWERS)
        self.sock, self.path = sock, path
        threading.Thread(target=self._accept_loop, name="control-accept", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop serving: viewers get what is queued (the ``Finished`` event), then EOF."""
        if self.sock is not None:
            sock, self.sock = self.sock, None
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone may not)
            except OSError:
                pass
            sock.close()
        if self.path is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
        with self.lock:
            viewers = list(self.viewers)
        for v in viewers:
            v.offer_end()
        deadline = time.monotonic() + 2.0
        for v in viewers:
            v.closed.wait(max(0.0, deadline - time.monotonic()))

    def log(self, message: str) -> None:
        self._log.write(message)

    # ------------------------------------------------------------------ viewers
    def _accept_loop(self) -> None:
        sock = self.sock
        while sock is not None and self.sock is sock:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                self._welcome(conn)
            except OSError:
                conn.close()

    def _welcome(self, conn: socket.socket) -> None:
        pid, uid, _gid = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid != self.allowed_uid:
            self.log(f"refused a connection from uid {uid} (pid {pid}): only uid {self.allowed_uid} may connect")
            conn.close()
            return
        with self.lock:
            if len(self.viewers) >= MAX_VIEWERS:
                conn.sendall(wire.encode(wire.Refused(f"too many viewers (at most {MAX_VIEWERS})")))
                conn.close()
                return
            viewer = _Viewer(self, conn, f"pid {pid}")
            viewer.offer(wire.encode(wire.Hello(wire.PROTOCOL, os.getpid(), str(self.run_dir))))
            # Under the lock, so no event is published meanwhile: the history read now ends at
            # the step of the last Progress published (metrics.jsonl is written before each),
            # and every later event reaches this viewer live; no point is lost or shown twice.
            for e in self.record.events(self.run):
                viewer.offer(wire.encode(e))
            self.viewers.append(viewer)

    def _forget(self, viewer: _Viewer) -> None:
        with self.lock:
            if viewer in self.viewers:
                self.viewers.remove(viewer)

    @property
    def viewer_count(self) -> int:
        with self.lock:
            return len(self.viewers)

    # ------------------------------------------------------------------ events (trainer thread)
    def publish(self, e: ev.Event) -> None:
        if isinstance(e, (ev.Explored, ev.ExploreFailed)):  # an answer for one viewer (megabytes)
            with self.lock:
                asker = [v for v in self.viewers if v.ident == e.asker]
            for v in asker:
                v.offer(e)  # encoded on the viewer's sending thread, not the trainer's
            return
        with self.lock:
            self.record.observe(e)
            viewers = list(self.viewers)
        if viewers:
            frame = wire.encode(e)
            for v in viewers:
                v.offer(frame)
