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

import json
import time
from pathlib import Path
from typing import IO, Any

from .atomic import replace_atomically
from .errors import CheckpointError, RnnTuiError
from .events import History


class RunDirError(RnnTuiError):
    pass


def write_text_atomic(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    replace_atomically(path, lambda f: f.write(data))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self._metrics: IO[str] | None = None
        self._samples: IO[str] | None = None

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
    def create(cls, root: str | Path, stem: str) -> RunDir:
        root = Path(root)
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                name = base if n == 1 else f"{base}-{n}"
                try:
                    (root / name).mkdir()  # fails if it exists: two runs never share a directory
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
    def write_config(self, config: dict[str, Any]) -> None:
        write_text_atomic(self.config, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def _append(self, path: Path, handle: IO[str] | None, rows: list[dict[str, Any]]) -> IO[str]:
        f = handle if handle is not None else open(path, "a", encoding="utf-8")
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        return f

    def log_metrics(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._metrics = self._append(self.metrics, self._metrics, rows)

    def log_sample(self, row: dict[str, Any]) -> None:
        self._samples = self._append(self.samples, self._samples, [row])

    def close(self) -> None:
        for f in (self._metrics, self._samples):
            if f is not None:
                f.close()
        self._metrics = self._samples = None

    # ------------------------------------------------------------------ reading
    def read_metrics(self) -> list[dict[str, Any]]:
        try:
            text = self.metrics.read_text(encoding="utf-8")
        except OSError:
            return []
        rows = []
        for line in text.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return rows

    def history(self, upto: int | None = None) -> list[dict[str, Any]]:
        """The metrics of the run as it stands: when a resumed run trained steps again (those
        after its checkpoint were lost with the process that logged them), the later rows win."""
        kept: list[dict[str, Any]] = []
        last_train = 0
        for r in self.read_metrics():
            step = r.get("step")
            if not isinstance(step, int) or (upto is not None and step > upto):
                continue
            if r.get("kind") == "train":
                if step <= last_train:  # a resumed process starts again here
                    kept = [k for k in kept if k["step"] < step]
                last_train = step
            kept.append(r)
        return kept

    def history_event(self, upto: int | None = None) -> History:
        """The loss curves so far as one event: what a resumed run or a late viewer plots first."""
        rows = self.history(upto)
        train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and _number(r.get("loss"))]
        val = [(r["step"], r["val_loss"]) for r in rows if r.get("kind") == "val" and _number(r.get("val_loss"))]
        return History(
            steps=[s for s, _ in train],
            losses=[float(v) for _, v in train],
            val_steps=[s for s, _ in val],
            val_losses=[float(v) for _, v in val],
        )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_checkpoint(arg: str | Path) -> Path:
    """A checkpoint file, or a run directory (its latest checkpoint)."""
    p = Path(arg)
    if p.is_dir():
        run = RunDir(p)
        for candidate in (run.latest, p / "latest.pt"):
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
