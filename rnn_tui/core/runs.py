"""The run directory: every path a run writes, in one place.

runs/<name>/
    config.json          the options (rewritten atomically)
    metrics.jsonl        one line per training step ({"kind": "train"}) and evaluation ({"kind": "val"})
    samples.jsonl        every sample with its step and temperature
    checkpoints/latest.pt, checkpoints/best.pt
    trainer.json         the trainer's state, pid and control socket (rnn_tui/remote/status.py)
    trainer.lock         locked by the run's one trainer while it lives
    control.sock         the control socket (rnn_tui/remote/server.py), control.log its refusals
    request.json, trainer.log   a background trainer's request and output (rnn_tui/host/detached.py)
    error.log            the traceback of an internal error, if one happened

Constructing a ``RunDir`` touches nothing on disk: readers (``rnn-tui runs``, viewers) use the
same paths as the trainer. ``create`` makes a fresh directory, ``ensure`` readies one for writing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import replace_atomically
from .errors import CheckpointError, RnnTuiError
from .events import History
from .files import read_regular


class RunDirError(RnnTuiError):
    pass


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait (are blocked) for the duration; delivered after it."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_text_atomic(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    replace_atomically(path, lambda f: f.write(data))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self._metrics = AppendFile(self.metrics)
        self._samples = AppendFile(self.samples)
        # what went wrong (or right again) writing the run's files, to be said once: (level, message)
        self.notes: list[tuple[str, str]] = []
        self._config_failed = False

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def status(self) -> Path:
        return self.path / "trainer.json"

    @property
    def lock(self) -> Path:
        return self.path / "trainer.lock"

    @property
    def socket(self) -> Path:
        return self.path / "control.sock"

    @property
    def control_log(self) -> Path:
        return self.path / "control.log"

    @property
    def request(self) -> Path:
        return self.path / "request.json"

    @property
    def trainer_log(self) -> Path:
        return self.path / "trainer.log"

    @property
    def error_log(self) -> Path:
        return self.path / "error.log"

    def is_run(self) -> bool:
        """Whether this directory looks like a run (a trainer wrote its config or its state)."""
        return self.path.is_dir() and (self.config.exists() or self.status.exists())

    # ------------------------------------------------------------------ making
    @classmethod
    def create(cls, root: str | Path, stem: str, made: list[Path] | None = None) -> RunDir:
        """A fresh run directory under ``root``, named after ``stem`` and the time. Its path is
        added to ``made`` in the same breath as it is created (stop signals held meanwhile), so
        whoever abandons the start knows what to remove."""
        root = Path(root)
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                name = base if n == 1 else f"{base}-{n}"
                try:
                    with _stop_signals_held():
                        (root / name).mkdir()  # fails if it exists: two runs never share a directory
                        if made is not None:
                            made.append(root / name)
                    return cls(root / name).ensure()
                except FileExistsError:
                    continue
        except OSError as exc:
            raise RunDirError(f"cannot create a run directory in {root}: {exc.strerror or exc}") from None
        raise RunDirError(f"cannot find a free run directory name for {base} in {root}")

    def ensure(self) -> RunDir:
        """Make the directory (and its checkpoints folder) if needed, for a trainer to write."""
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot use run directory {self.path}: {exc.strerror or exc}") from None
        return self

    # ------------------------------------------------------------------ the trainer's writes
    def write_config(self, config: dict[str, Any], strict: bool = False) -> None:
        """Write config.json (atomically). A failure (a full disk, a read-only directory) raises
        with ``strict`` (a start that cannot write refuses); otherwise it is noted once in
        ``notes`` and training goes on: the next write tries again."""
        try:
            write_text_atomic(self.config, json.dumps(config, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            if strict:
                raise
            if not self._config_failed:
                self._config_failed = True
                self.notes.append(
                    ("warning", f"cannot write {self.config.name} ({exc.strerror or exc}); training goes on")
                )
            return
        if self._config_failed:
            self._config_failed = False
            self.notes.append(("info", f"{self.config.name} is written again"))

    def log_metrics(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._metrics.append(rows, self.notes)

    def log_sample(self, row: dict[str, Any]) -> None:
        self._samples.append([row], self.notes)

    def take_notes(self) -> list[tuple[str, str]]:
        notes, self.notes = self.notes, []
        return notes

    def close(self) -> None:
        """Write what is still kept in memory, if the files can take it now, and close them."""
        for f in (self._metrics, self._samples):
            f.close(self.notes)

    # ------------------------------------------------------------------ reading
    def read_metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics)[0]

    def history_rows(self, upto: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """The metrics of the run as it stands, and how many lines were skipped as damaged.

        When a resumed run trained steps again (those after its checkpoint were lost with the
        process that logged them), the later rows win. A line that is not a JSON object, or
        whose step or loss is not a finite number of the right kind, is skipped and counted: any
        bytes in the file are read, none crashes the reader."""
        rows, skipped = read_jsonl(self.metrics)
        kept: list[dict[str, Any]] = []
        last_train = 0
        for r in rows:
            step = r.get("step")
            kind = r.get("kind")
            if not isinstance(step, int) or not _count(step) or (kind == "train" and not finite_number(r.get("loss"))):
                skipped += 1
                continue
            if kind == "val" and not finite_number(r.get("val_loss")):
                skipped += 1
                continue
            if upto is not None and step > upto:
                continue
            if kind == "train":
                if step <= last_train:  # a resumed process starts again here
                    kept = [k for k in kept if k["step"] < step]
                last_train = step
            kept.append(r)
        return kept, skipped

    def history(self, upto: int | None = None) -> list[dict[str, Any]]:
        return self.history_rows(upto)[0]

    def history_event(self, upto: int | None = None) -> History:
        """The loss curves so far as one event: what a resumed run or a late viewer plots first."""
        return self.history_event_counted(upto)[0]

    def history_event_counted(self, upto: int | None = None) -> tuple[History, int]:
        """``history_event`` and the number of damaged lines skipped to make it."""
        rows, skipped = self.history_rows(upto)
        train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train"]
        val = [(r["step"], r["val_loss"]) for r in rows if r.get("kind") == "val"]
        history = History(
            steps=[s for s, _ in train],
            losses=[float(v) for _, v in train],
            val_steps=[s for s, _ in val],
            val_losses=[float(v) for _, v in val],
        )
        return history, skipped


def _count(value: object) -> bool:
    """A step number as a trainer writes it (a float holds it exactly: plots and ticks use floats)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def finite_number(value: object) -> bool:
    """Whether ``value`` (read from a file) is a number that is finite as a float: not a bool, not
    NaN or infinite, not an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def read_jsonl(path: Path, tail_bytes: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSON-lines file, one per line, and how many lines were skipped: not
    UTF-8, not JSON, not an object, nested too deeply, numbers too long to read. A missing or
    unreadable file has none. With ``tail_bytes``, only the file's last bytes are read (the
    first, possibly partial, line of them is dropped)."""
    data = read_regular(path, tail_bytes=None if tail_bytes is None else tail_bytes + 1)
    if data is None:
        return [], 0
    if tail_bytes is not None and len(data) > tail_bytes:
        data = data.partition(b"\n")[2]  # the file goes on before this: its first line may be cut
    rows: list[dict[str, Any]] = []
    skipped = 0
    lines = data.split(b"\n")
    if not data.endswith(b"\n"):
        lines.pop()  # being written now, or cut short by a kill: not damage
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            skipped += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file that should hold an object (config.json, trainer.json): the object, or None
    if the file is missing, unreadable, not JSON or not an object."""
    raw = read_regular(path, limit=MAX_JSON_FILE_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


MAX_JSON_FILE_BYTES = 16 * 2**20  # config.json and trainer.json are a few KB
MAX_UNWRITTEN_BYTES = 16 * 2**20  # lines kept in memory while a run file cannot be written


class AppendFile:
    """A JSON-lines file the trainer appends to, that survives a full disk or a read-only
    directory: lines that cannot be written are kept in memory (the newest
    ``MAX_UNWRITTEN_BYTES`` of them) and written, exactly once and in order, by the next append
    that succeeds. Written with ``os.write`` on an ``O_APPEND`` descriptor, so the bytes that
    reached the file are known and a line cut by the failure is continued, not repeated."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.pending = bytearray()
        self.failing: str | None = None  # why the last write failed
        self.dropped = 0  # lines dropped from memory since the failure began
        self.torn = False  # the file ends inside a line whose rest was dropped
        self.written_part = 0  # bytes of the first pending line already in the file

    def append(self, rows: list[dict[str, Any]], notes: list[tuple[str, str]]) -> None:
        self.pending += "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if len(self.pending) > MAX_UNWRITTEN_BYTES:  # the oldest whole lines go
            cut = self.pending.find(b"\n", len(self.pending) - MAX_UNWRITTEN_BYTES) + 1
            self.dropped += self.pending.count(b"\n", 0, cut)
            if self.written_part:
                self.torn, self.written_part = True, 0
            del self.pending[:cut]
        self.flush(notes)

    def flush(self, notes: list[tuple[str, str]]) -> None:
        try:
            if self.fd is None:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                self.fd = os.open(self.path, flags, 0o644)
            if self.torn:
                os.write(self.fd, b"\n")  # end the cut line: readers skip it as damaged
                self.torn = False
            while self.pending:
                n = os.write(self.fd, self.pending)
                last = self.pending.rfind(b"\n", 0, n)
                self.written_part = n - (last + 1) if last >= 0 else self.written_part + n
                del self.pending[:n]
        except OSError as exc:
            if self.failing is None:
                self.failing = exc.strerror or str(exc)
                notes.append(
                    (
                        "warning",
                        f"cannot write {self.path.name} ({self.failing}); training goes on, its newest lines are "
                        f"kept in memory and written when it can",
                    )
                )
            return
        if self.failing is not None:
            lost = f"; {self.dropped:,} older lines were dropped" if self.dropped else ""
            notes.append(("info", f"{self.path.name} is written again{lost}"))
            self.failing, self.dropped = None, 0

    def close(self, notes: list[tuple[str, str]]) -> None:
        if self.pending:
            self.flush(notes)
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def resolve_checkpoint(arg: str | Path, or_best: bool = False) -> Path:
    """A checkpoint file, or a run directory (its latest checkpoint; with ``or_best``, its best
    when it has no latest: a run killed before its first periodic save can still be read)."""
    p = Path(arg)
    if p.is_dir():
        run = RunDir(p)
        for candidate in (run.latest, p / "latest.pt", *([run.best] if or_best else [])):
            if candidate.exists():
                return candidate
        if run.best.exists():
            raise CheckpointError(
                f"no latest.pt in {p} (stopped before its first periodic save); "
                f"resume from its best: --resume {run.best}"
            )
        raise CheckpointError(f"no checkpoint in {p} (looked for checkpoints/latest.pt)")
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory a checkpoint lives in, if it is in the standard layout."""
    if checkpoint.parent.name == "checkpoints" and RunDir(checkpoint.parent.parent).config.exists():
        return checkpoint.parent.parent
    return None
