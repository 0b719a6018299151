"""Which runs exist and which are alive: the run's lock, ``trainer.json``, and the listing.

A trainer holds an OS lock on ``trainer.lock`` (``flock``) for as long as its process lives, and
writes ``trainer.json`` (atomically) when it starts, after each evaluation and checkpoint, and
when it stops. The kernel drops the lock when the process dies, however it dies, so a run whose
file says "running" but whose lock is free (``kill -9``, a power cut) is shown as crashed, even
if another process has since taken its old pid; nothing ever has to clean up a stale file or
socket before a new start. Imports no torch: ``rnn-tui runs`` answers at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn_tui.core.files import read_regular
from rnn_tui.core.invocation import command
from rnn_tui.core.runs import RunDir, RunDirError, finite_number, read_json_object, read_jsonl, write_text_atomic
from rnn_tui.core.text import visible

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def socket_path_for(run_dir: Path) -> Path:
    """``run_dir/control.sock``, or a short path in a private directory when that is too long
    for a Unix socket (the status file records which)."""
    run_dir = Path(run_dir).resolve()
    path = RunDir(run_dir).socket
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        return path
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"rnn-tui-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    os.chmod(base, 0o700)
    return base / (hashlib.sha1(str(run_dir).encode()).hexdigest()[:16] + ".sock")


# trainer.json's fields and the types each may have; a field of another type is dropped on reading
STATUS_FIELDS: dict[str, tuple[type, ...]] = {
    "state": (str,),
    "pid": (int, type(None)),
    "host": (str, type(None)),
    "socket": (str, type(None)),
    "started": (int, float),
    "updated": (int, float),
    "error": (str, type(None)),
    "reason": (str, type(None)),
    "step": (int,),
    "best_val": (int, float, type(None)),
    "checkpoint": (str, type(None)),
    "saved_step": (int, type(None)),
}


def read_status_checked(run_dir: Path) -> tuple[dict[str, Any], bool]:
    """``trainer.json``'s fields that have their types, and whether the file is damaged (not a
    JSON object, or a field of the wrong type). A missing file is not damage: an empty dict."""
    path = RunDir(run_dir).status
    data = read_json_object(path)
    if data is None:
        return {}, path.exists()
    kept = {
        k: v
        for k, v in data.items()
        if k not in STATUS_FIELDS or (isinstance(v, STATUS_FIELDS[k]) and not isinstance(v, bool))
    }
    for k in ("started", "updated", "best_val"):
        if isinstance(kept.get(k), float) and not math.isfinite(kept[k]):
            del kept[k]
    return kept, len(kept) != len(data)


def read_status(run_dir: Path) -> dict[str, Any]:
    """``trainer.json``, its damaged fields left out (see ``read_status_checked``)."""
    return read_status_checked(run_dir)[0]


def write_status(run_dir: Path, in_place: bool = False, **fields: Any) -> dict[str, Any]:
    """Update ``trainer.json`` with ``fields``: atomically (a new file renamed over the old), or
    with ``in_place`` by rewriting the old file, which needs no new disk space (for the last
    word of a trainer on a full disk)."""
    data = {**read_status(run_dir), **fields, "updated": time.time()}
    text = json.dumps(data, indent=2) + "\n"
    path = RunDir(run_dir).status
    if not in_place:
        write_text_atomic(path, text)
        return data
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text.encode("utf-8"))
    return data


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not alive
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def socket_answers(path: object, timeout: float = 1.0) -> bool:
    if not isinstance(path, str) or not path:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


LOCK_WAIT_S = 1.0  # a listing's probe holds the lock shared for an instant: a new trainer waits it out


class RunLock:
    """The one-trainer-per-run guard: an exclusive ``flock`` on ``RUN/trainer.lock``, held by the
    trainer for as long as it lives. It needs no socket, status file or pid to be right."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = RunDir(run_dir).lock
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    pid = read_status(self.run_dir).get("pid")
                    who = f" (pid {pid})" if isinstance(pid, int) else ""
                    raise RunDirError(
                        f"{self.run_dir} is being trained already{who}; watch it with: {command('attach', self.run_dir)}"
                    ) from None
                time.sleep(0.02)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def lock_held(run_dir: Path) -> bool | None:
    """Whether a trainer holds ``run_dir``'s lock now; None for a run without a lock file."""
    try:
        fd = os.open(RunDir(run_dir).lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # and with it the shared lock, if we got it


def trainer_alive(run_dir: Path, status: dict[str, Any]) -> bool:
    """Whether the trainer that wrote ``status`` ("running") still lives."""
    held = lock_held(run_dir)
    if held is not None:
        return held
    # a run written before runs had locks: its pid, and its socket if it has one
    return pid_alive(status.get("pid")) and (not status.get("socket") or socket_answers(status.get("socket")))


def live_trainer(run_dir: Path) -> dict[str, Any] | None:
    """The status of the trainer training ``run_dir`` now, or None."""
    status = read_status(run_dir)
    if status.get("state") != "running" or status.get("host") != socket.gethostname():
        return None
    return status if trainer_alive(run_dir, status) else None


@dataclass
class RunInfo:
    path: Path
    corpus: str
    state: str  # running, finished, stopped, failed, crashed, starting
    pid: int | None
    step: int | None  # the last step trained (metrics.jsonl)
    best_val: float | None
    updated: float
    has_checkpoint: bool = False  # checkpoints/latest.pt exists: --resume RUN can continue it
    saved_step: int | None = None  # the step latest.pt holds (trainer.json), None if unknown
    world_size: int = 1  # data-parallel processes (then ``pid`` is their launcher's: a signal to it stops them all)

    @property
    def name(self) -> str:
        """The run's name as shown: its control characters made visible."""
        return visible(self.path.name)


def _last_step(metrics: Path) -> int | None:
    """The step of the last good line of metrics.jsonl, reading only its tail."""
    rows, _ = read_jsonl(metrics, tail_bytes=8192)
    for row in reversed(rows):
        step = row.get("step")
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < 2**53:
            return step
    return None


def _best_val(metrics: Path) -> float | None:
    """The lowest validation loss logged (for runs that kept no status file)."""
    data = read_regular(metrics)
    if data is None:
        return None
    best = None
    for line in data.split(b"\n"):
        if b'"val"' not in line:  # most lines are training steps: skip them unparsed
            continue
        try:
            v = json.loads(line)["val_loss"]
        except (ValueError, KeyError, TypeError, IndexError, RecursionError):
            continue
        if finite_number(v):
            best = v if best is None else min(best, v)
    return best


def run_info(run_dir: Path) -> RunInfo:
    """What ``rnn-tui runs`` shows of a run. Any bytes in its files are read: a config or state
    file that is not what a trainer writes makes the run "damaged", never an error."""
    run = RunDir(run_dir)
    run_dir = run.path
    status, status_damaged = read_status_checked(run_dir)
    config = read_json_object(run.config)
    damaged = status_damaged or (config is None and run.config.exists())
    config = config or {}
    state = status.get("state") or ("stopped" if run.latest.exists() else "unknown")
    pid = next((p for p in (status.get("launcher_pid"), status.get("pid")) if _is_int(p)), None)
    if state == "running":
        if status.get("host") not in (None, socket.gethostname()):
            state = f"running on {status['host']}"
        elif not trainer_alive(run_dir, status):
            state = "crashed"
    if damaged and state != "running":
        state = "damaged"
    metrics = run.metrics
    times = []
    for p in (metrics, run.status, run_dir):
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            pass
    best = status.get("best_val")
    if best is None and metrics.exists():
        best = _best_val(metrics)
    step = _last_step(metrics) if metrics.exists() else status.get("step")
    saved_step = status.get("saved_step")
    has_checkpoint = run.latest.exists()
    return RunInfo(
        path=run_dir,
        corpus=visible(Path(str(config.get("corpus") or "?")).name),
        state=state,
        pid=pid if state == "running" else None,
        step=step,
        best_val=best if finite_number(best) else None,
        updated=max(times) if times else 0.0,
        has_checkpoint=has_checkpoint,
        saved_step=saved_step if has_checkpoint and _is_int(saved_step) else None,
        world_size=status["world_size"] if _is_int(status.get("world_size")) else 1,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Runs under ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if RunDir(p).is_run()]
    return sorted((run_info(p) for p in found), key=lambda r: (r.updated, r.name))


def find_run(arg: str | None, runs_dir: Path) -> Path:
    """A run directory from a path, a name under ``runs_dir``, or (None) the newest running run,
    else the newest run."""
    if arg:
        p = Path(arg)
        for candidate in (p, Path(runs_dir) / arg):
            if RunDir(candidate).is_run():
                return candidate
        if p.is_file() and p.parent.name == "checkpoints":
            return p.parent.parent
        listing = command("runs") if Path(runs_dir) == Path("runs") else command("runs", "--runs-dir", runs_dir)
        raise RunDirError(f"no run {arg!r} (give a run directory, or a name from: {listing})")
    runs = list_runs(runs_dir)
    if not runs:
        raise RunDirError(f"no runs in {runs_dir}/ (start one with: {command('train', 'CORPUS', '--detach')})")
    running = [r for r in runs if r.state == "running"]
    return (running or runs)[-1].path


def format_age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"
