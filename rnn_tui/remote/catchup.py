"""What a viewer that joins late is shown first: the run's state so far, as events.

One ``CatchUp`` is filled in two ways: a trainer's control server ``observe``s every event it
publishes (a live run), and ``from_files`` reads a run that is not training from its directory.
Either way ``events`` gives the same sequence, so the app needs no second way to show a run:
``Started`` brought up to date, the sampling settings, the stats panel's numbers, the loss
history (from ``metrics.jsonl``), the newest samples and hidden states, the last checkpoint, the
state, and how the run ended.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path
from typing import Any

from rnn_tui.core import events as ev
from rnn_tui.core.invocation import command
from rnn_tui.core.runs import RunDir

SAMPLES_KEPT = 3


@dataclasses.dataclass
class CatchUp:
    started: ev.Started | None = None
    progress: ev.Progress | None = None
    best_val: float | None = None
    last_val: float | None = None
    samples: collections.deque[ev.Sampled] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=SAMPLES_KEPT)
    )
    probed: ev.Probed | None = None
    saved: ev.CheckpointSaved | None = None
    state: ev.StateChanged | None = None
    sampling: ev.SamplingChanged | None = None
    finished: ev.Finished | None = None

    @property
    def step(self) -> int:
        """The last step the viewer will have been told about."""
        if self.progress is not None:
            return self.progress.step
        return self.started.step if self.started is not None else 0

    def observe(self, e: ev.Event) -> None:
        match e:
            case ev.Started():
                self.started, self.best_val, self.last_val = e, e.best_val, e.last_val
            case ev.Progress():
                self.progress = e
            case ev.Evaluated():
                self.best_val, self.last_val = e.best_val, e.val_loss
            case ev.Sampled():
                self.samples.append(e)
            case ev.Probed():
                self.probed = e
            case ev.CheckpointSaved():
                self.saved = e
            case ev.StateChanged():
                self.state = e
            case ev.SamplingChanged():
                self.sampling = e
            case ev.Finished():
                self.finished = e
            case _:
                pass  # History, Notice: of the moment; the history is read from the files

    def events(self, run: RunDir | None) -> list[ev.Event]:
        """The events that bring a new viewer to the run's present. The loss history comes from
        ``run``'s metrics up to ``step``: rows of later steps arrive as live ``Progress``."""
        out: list[ev.Event] = []
        if self.started is not None:
            out.append(
                dataclasses.replace(self.started, step=self.step, best_val=self.best_val, last_val=self.last_val)
            )
        if self.sampling is not None:
            out.append(self.sampling)
        if self.progress is not None:
            # the numbers of the stats panel; the points themselves are in the History
            out.append(dataclasses.replace(self.progress, steps=[], losses=[]))
        if run is not None and self.started is not None:
            out.append(run.history_event(upto=self.step))
        out.extend(self.samples)
        if self.probed is not None:
            out.append(self.probed)
        if self.saved is not None:
            # a late viewer is not told "saved" as if it had just happened
            quiet = self.saved.reason in ("manual", "final")
            out.append(dataclasses.replace(self.saved, reason="periodic") if quiet else self.saved)
        if self.state is not None:
            out.append(self.state)
        if self.finished is not None:
            out.append(self.finished)
        return out

    @classmethod
    def from_files(cls, run: RunDir, status: dict[str, Any], state: str, step: int) -> CatchUp:
        """A run that is not training, from what it left: config, samples, status.

        ``state`` is the run's listed state (e.g. "crashed"), ``step`` its last step trained."""
        record = json.loads(run.config.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("config.json is not an object")
        found_cfg = record.get("config")
        cfg: dict[str, Any] = found_cfg if isinstance(found_cfg, dict) else {}
        rows = run.history()
        vals = [r["val_loss"] for r in rows if r.get("kind") == "val" and isinstance(r.get("val_loss"), (int, float))]
        found = cls()
        found.observe(
            ev.Started(
                run_dir=str(run.path),
                corpus=str(record.get("corpus") or ""),
                config=cfg,
                vocab_size=_int(record.get("vocab_size")),
                n_params=_int(record.get("n_params")),
                device=str(record.get("device") or "?"),
                train_chars=0,
                val_chars=0,
                batches_per_epoch=0,
                step=step,
                best_val=min(vals) if vals else None,
                last_val=vals[-1] if vals else None,
                max_steps=cfg.get("max_steps"),
                max_minutes=cfg.get("max_minutes"),
            )
        )
        for s in _read_jsonl_tail(run.samples, SAMPLES_KEPT):
            try:
                found.observe(
                    ev.Sampled(
                        step=int(s["step"]),
                        prime=str(s.get("prime", "")),
                        text=str(s["text"]),
                        temperature=float(s.get("temperature", 0.0)),
                        top_k=int(s.get("top_k", 0)),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        crashed = state == "crashed"
        reason = str(status.get("reason") or ("crashed" if crashed else "stopped"))
        error = status.get("error")
        if not error and crashed:
            error = f"the trainer was killed; resume with: {command('train', '--resume', run.path)}"
        found.observe(
            ev.Finished(
                reason=reason,
                step=step,
                checkpoint=str(run.latest) if run.latest.exists() else None,
                error=str(error) if error else None,
            )
        )
        return found


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _read_jsonl_tail(path: Path, n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[-n:]
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
