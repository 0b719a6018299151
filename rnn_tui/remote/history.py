"""A run's loss curves read from its files, for the runs screen: several runs side by side.

``RunHistory`` reads ``metrics.jsonl`` once, then only the bytes appended since (a run still
training grows it a few times a second; the screen looks on a slow timer), and keeps the curves
as numpy arrays: training loss per step, validation loss per evaluation, and anchors (a step with
the run's training time and characters seen, logged with each evaluation and with the last step of
each of the trainer's posts) from which any step's place on the "characters seen" and "training
time" axes is interpolated. ``describe_runs`` names each run by what differs in its configuration.
No torch and no screen: the runs screen and ``rnn-tui compare`` use it, and tests read it alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_tui.core.config import TrainConfig
from rnn_tui.core.files import open_regular
from rnn_tui.core.runs import RunDir, RunDirError, finite_number, read_json_object

AXES = ("step", "chars", "time")  # what curves can be drawn against
AXIS_NAMES = {"step": "step", "chars": "characters seen", "time": "training time"}
READ_CHUNK = 4 << 20  # bytes parsed per round: a huge file is read in pieces, never all at once


@dataclasses.dataclass(frozen=True)
class Curves:
    """One run's curves as it stands; a new object after each read (readers never see a half update)."""

    train_step: np.ndarray
    train_loss: np.ndarray
    val_step: np.ndarray
    val_loss: np.ndarray
    anchor_step: np.ndarray  # steps at which the run's training time and characters seen are known
    anchor_time: np.ndarray
    anchor_chars: np.ndarray
    chars_per_step: int = 0  # batch x sequence length (config.json): places steps with no anchor

    @classmethod
    def empty(cls, chars_per_step: int = 0) -> Curves:
        nothing = np.empty(0)
        return cls(nothing, nothing, nothing, nothing, nothing, nothing, nothing, chars_per_step)

    @property
    def last_step(self) -> int:
        ends = [int(a[-1]) for a in (self.train_step, self.val_step) if len(a)]
        return max(ends, default=0)

    def has_axis(self, axis: str) -> bool:
        if axis == "time":
            return len(self.anchor_step) > 0
        return axis == "step" or len(self.anchor_step) > 0 or self.chars_per_step > 0

    def place(self, steps: np.ndarray, axis: str) -> np.ndarray:
        """Where ``steps`` lie on ``axis``: themselves, or characters seen / training seconds
        interpolated between anchors (from step 0 at 0), extrapolated at the last known rate."""
        steps = np.asarray(steps, dtype=np.float64)
        if axis == "step":
            return steps
        known = self.anchor_time if axis == "time" else self.anchor_chars
        xp = np.concatenate(([0.0], self.anchor_step))
        fp = np.concatenate(([0.0], known))
        if len(xp) == 1:  # no anchor: characters from the batch shape
            return steps * float(self.chars_per_step)
        rate = fp[-1] / xp[-1] if xp[-1] > 0 else 0.0
        if axis == "chars" and self.chars_per_step:
            rate = float(self.chars_per_step)
        out = np.interp(steps, xp, fp)
        beyond = steps > xp[-1]
        out[beyond] = fp[-1] + (steps[beyond] - xp[-1]) * rate
        return out


class _Rows:
    """New rows, gathered as lists before they join the arrays."""

    def __init__(self) -> None:
        self.train: tuple[list[float], list[float]] = ([], [])
        self.val: tuple[list[float], list[float]] = ([], [])
        self.anchors: tuple[list[float], list[float], list[float]] = ([], [], [])

    def add(self, row: dict[str, Any]) -> None:
        step = row["step"]
        kind = row.get("kind")
        if kind == "train" and _number(row.get("loss")):
            self.train[0].append(step)
            self.train[1].append(row["loss"])
        elif kind == "val" and _number(row.get("val_loss")):
            self.val[0].append(step)
            self.val[1].append(row["val_loss"])
        if _number(row.get("train_s")) and _number(row.get("tokens")):
            self.anchors[0].append(step)
            self.anchors[1].append(row["train_s"])
            self.anchors[2].append(row["tokens"])


def _join(old: np.ndarray, new: list[float]) -> np.ndarray:
    return np.concatenate((old, np.asarray(new, dtype=np.float64))) if new else old


def _before(steps: np.ndarray, step: float) -> int:
    return int(np.searchsorted(steps, step, side="left"))


def _merge(c: Curves, rows: _Rows) -> Curves:
    return dataclasses.replace(
        c,
        train_step=_join(c.train_step, rows.train[0]),
        train_loss=_join(c.train_loss, rows.train[1]),
        val_step=_join(c.val_step, rows.val[0]),
        val_loss=_join(c.val_loss, rows.val[1]),
        anchor_step=_join(c.anchor_step, rows.anchors[0]),
        anchor_time=_join(c.anchor_time, rows.anchors[1]),
        anchor_chars=_join(c.anchor_chars, rows.anchors[2]),
    )


def _cut(c: Curves, step: float) -> Curves:
    """Forget every point at ``step`` and after: a resumed (or rolled back) trainer trains them again."""
    t, v, a = _before(c.train_step, step), _before(c.val_step, step), _before(c.anchor_step, step)
    return dataclasses.replace(
        c,
        train_step=c.train_step[:t],
        train_loss=c.train_loss[:t],
        val_step=c.val_step[:v],
        val_loss=c.val_loss[:v],
        anchor_step=c.anchor_step[:a],
        anchor_time=c.anchor_time[:a],
        anchor_chars=c.anchor_chars[:a],
    )


class RunHistory:
    """A run's configuration and curves, kept up to date by ``read_new`` (thread-safe)."""

    def __init__(self, run_dir: str | Path):
        self.run = RunDir(run_dir)
        self.path = self.run.path
        self.record = _read_record(self.run)
        batch, seq = self.config.get("batch_size"), self.config.get("seq_len")
        self.curves = Curves.empty(batch * seq if isinstance(batch, int) and isinstance(seq, int) else 0)
        self.bytes_read = 0  # of metrics.jsonl, in all: a live run's re-reads add only what it appended
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._partial = b""
        self._last_train = -1.0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        found = self.record.get("config")
        return found if isinstance(found, dict) else {}

    def read_new(self) -> bool:
        """Read what was appended to ``metrics.jsonl`` since the last call; whether the curves changed."""
        with self._lock:
            try:  # a regular file only: a named pipe would block this reader for good
                f = open_regular(self.run.metrics, RunDirError, "metrics")
            except RunDirError:
                return False
            with f:
                st = os.fstat(f.fileno())
                identity = (st.st_dev, st.st_ino)
                start_over = identity != self._identity or st.st_size < self._offset
                if start_over:  # a new file, or one cut short: read it again from its start
                    self._identity, self._offset, self._partial, self._last_train = identity, 0, b"", -1.0
                    self.curves = Curves.empty(self.curves.chars_per_step)
                if st.st_size == self._offset:
                    return start_over
                f.seek(self._offset)
                while chunk := f.read(READ_CHUNK):
                    self._offset += len(chunk)
                    self.bytes_read += len(chunk)
                    self._parse(self._partial + chunk)
            return True

    def _parse(self, data: bytes) -> None:
        lines = data.split(b"\n")
        self._partial = lines.pop()  # the last line is complete only once its newline is written
        rows = _Rows()
        curves = self.curves
        for line in lines:
            try:
                row = json.loads(line)
                step = row["step"]
                if not _number(step):
                    continue
            except (ValueError, KeyError, TypeError, RecursionError, OverflowError, IndexError):
                continue  # a line cut short by a kill, or not a row: any bytes are read
            if row.get("kind") == "train":
                if step <= self._last_train:  # a resumed trainer starts again here: later rows win
                    curves = _cut(_merge(curves, rows), step)
                    rows = _Rows()
                self._last_train = step
            rows.add(row)
        self.curves = _merge(curves, rows)


def _read_record(run: RunDir) -> dict[str, Any]:
    return read_json_object(run.config) or {}


def _number(value: object) -> bool:
    return finite_number(value)


# ---------------------------------------------------------------- naming runs by what differs

# The options that tell runs apart, most telling first, as the legend writes them ({} is the
# value; a second form is for no value). Sampling, cadence and thread settings change no curve,
# so they never name a run.
LABELS: dict[str, tuple[str, str]] = {
    "corpus": ("{}", "?"),
    "vocab": ("{}", "?"),
    "cell": ("{}", "?"),
    "layers": ("layers {}", "?"),
    "hidden": ("hidden {}", "?"),
    "embed": ("embed {}", "?"),
    "dropout": ("dropout {}", "?"),
    "late_dropout": ("late dropout {}", "?"),
    "lr": ("lr {}", "?"),
    "min_lr_ratio": ("min lr x{}", "?"),
    "warmup_steps": ("warmup {}", "?"),
    "decay_steps": ("decay {}", "?"),
    "weight_decay": ("wd {}", "?"),
    "grad_clip": ("clip {}", "?"),
    "batch_size": ("batch {}", "?"),
    "seq_len": ("seq {}", "?"),
    "val_fraction": ("val {}", "?"),
    "eval_chars": ("eval {} chars", "?"),
    "seed": ("seed {}", "?"),
    "max_steps": ("{} steps", "no step limit"),
    "max_minutes": ("{} min", "no time limit"),
    "device": ("{}", "?"),
}


def _value(key: str, v: object) -> str:
    form, missing = LABELS[key]
    if v is None:
        return missing
    return form.format(f"{v:g}" if isinstance(v, float) else v)


def settings(record: dict[str, Any]) -> dict[str, str]:
    """What a run was trained with and on, as the legend writes it."""
    found = record.get("config")
    cfg: dict[str, Any] = found if isinstance(found, dict) else {}
    cfg = TrainConfig.fixed_dropout_when_alone(cfg)  # a run saved before the rise: its dropout was fixed
    shown = {k: _value(k, cfg.get(k)) for k in LABELS if k in cfg and k not in ("vocab", "device")}
    if cfg.get("max_steps") or cfg.get("max_minutes"):
        shown.pop("decay_steps", None)  # fitted to the budget by the trainer: follows from it
    shown["corpus"] = Path(str(record.get("corpus") or "?")).name
    kind = "bytes" if record.get("vocab_kind") == "byte" else "chars"
    shown["vocab"] = f"{record.get('vocab_size', '?')} {kind}"
    shown["device"] = str(record.get("device") or "?")
    return shown


def comparable_key(record: dict[str, Any]) -> tuple[str, str]:
    """Runs with the same key measure loss on the same symbols of the same text."""
    shown = settings(record)
    return shown["corpus"], shown["vocab"]


def describe_runs(histories: Sequence[RunHistory]) -> list[str]:
    """A label per run naming what differs among them ("hidden 512 · dropout 0.2"); the run's
    name where nothing does, and its name added where two labels would read the same."""
    shown = [settings(h.record) for h in histories]
    keys = [k for k in LABELS if len({s.get(k) for s in shown}) > 1]
    if "corpus" in keys and "vocab" in keys:
        keys.remove("vocab")  # another text has other symbols: the corpus says it
    labels = []
    for s, h in zip(shown, histories):
        labels.append(" · ".join(s[k] for k in keys if k in s) or h.name)
    names = [h.name for h in histories]
    return [
        f"{short_name(h.name, names)} · {label}" if labels.count(label) > 1 and label != h.name else label
        for label, h in zip(labels, histories)
    ]


def short_name(name: str, names: Sequence[str]) -> str:
    """The end of ``name`` that tells it from the other ``names`` (run names differ at their
    end, the time they started): "…105153" rather than a name a legend would cut."""
    others = [n for n in names if n != name]
    for n in range(6, len(name)):
        if not any(o.endswith(name[-n:]) for o in others):
            return "…" + name[-n:]
    return name
