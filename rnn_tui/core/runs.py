"""The run directory: everything a run writes, in one place.

runs/<name>/
    config.json          the options (rewritten atomically)
    metrics.jsonl        one line per training step ({"kind": "train"}) and evaluation ({"kind": "val"})
    samples.jsonl        every sample with its step and temperature
    checkpoints/latest.pt, checkpoints/best.pt
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .atomic import replace_atomically
from .errors import CheckpointError, RnnTuiError


class RunDirError(RnnTuiError):
    pass


def write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot use run directory {self.path}: {exc.strerror or exc}") from None
        self._metrics = None
        self._samples = None

    @classmethod
    def create(cls, root: str | Path, stem: str) -> "RunDir":
        root = Path(root)
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                name = base if n == 1 else f"{base}-{n}"
                try:
                    (root / name).mkdir()  # fails if it exists: two runs never share a directory
                    return cls(root / name)
                except FileExistsError:
                    continue
        except OSError as exc:
            raise RunDirError(f"cannot create a run directory in {root}: {exc.strerror or exc}") from None
        raise RunDirError(f"cannot find a free run directory name for {base} in {root}")

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def write_config(self, config: dict) -> None:
        write_text_atomic(self.path / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")

    def _append(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        f = getattr(self, name)
        if f is None:
            f = open(self.path / f"{name[1:]}.jsonl", "a", encoding="utf-8")
            setattr(self, name, f)
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()

    def log_metrics(self, rows: list[dict]) -> None:
        self._append("_metrics", rows)

    def log_sample(self, row: dict) -> None:
        self._append("_samples", [row])

    def read_metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        rows = []
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return rows

    def history(self, upto: int | None = None) -> list[dict]:
        """The metrics of the run as it stands: when a resumed run trained steps again (those
        after its checkpoint were lost with the process that logged them), the later rows win."""
        kept: list[dict] = []
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

    def close(self) -> None:
        for name in ("_metrics", "_samples"):
            f = getattr(self, name)
            if f is not None:
                f.close()
                setattr(self, name, None)


def resolve_checkpoint(arg: str | Path) -> Path:
    """A checkpoint file, or a run directory (its latest checkpoint)."""
    p = Path(arg)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "latest.pt", p / "latest.pt"):
            if candidate.exists():
                return candidate
        best = p / "checkpoints" / "best.pt"
        if best.exists():
            raise CheckpointError(f"no latest.pt in {p} (stopped before its first periodic save); "
                                  f"resume from its best: --resume {best}")
        raise CheckpointError(f"no checkpoint in {p} (looked for checkpoints/latest.pt)")
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory a checkpoint lives in, if it is in the standard layout."""
    if checkpoint.parent.name == "checkpoints" and (checkpoint.parent.parent / "config.json").exists():
        return checkpoint.parent.parent
    return None
