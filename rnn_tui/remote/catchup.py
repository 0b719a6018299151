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
import math
from typing import Any

from rnn_tui.core import events as ev
from rnn_tui.core.invocation import command
from rnn_tui.core.runs import RunDir, read_json_object, read_jsonl

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
            history, skipped = run.history_event_counted(upto=self.step)
            out.append(history)
            if skipped:
                out.append(
                    ev.Notice("warning", f"{run.metrics.name}: {skipped:,} damaged line{'s' * (skipped != 1)} skipped")
                )
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
        """A run that is not training, from what it left: config, samples, status. Any bytes in
        those files are read: what is damaged is left out, never an error.

        ``state`` is the run's listed state (e.g. "crashed"), ``step`` its last step trained."""
        record = read_json_object(run.config) or {}
        found_cfg = record.get("config")
        cfg: dict[str, Any] = found_cfg if isinstance(found_cfg, dict) else {}
        vals = [r["val_loss"] for r in run.history() if r.get("kind") == "val"]
        max_steps = cfg.get("max_steps")
        max_minutes = cfg.get("max_minutes")
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
                max_steps=max_steps if _int(max_steps) > 0 else None,
                max_minutes=max_minutes if _positive(max_minutes) else None,
                precision=_precision(record.get("precision")),
            )
        )
        samples, _ = read_jsonl(run.samples, tail_bytes=SAMPLES_TAIL_BYTES)
        for s in samples[-SAMPLES_KEPT:]:
            step_of = s.get("step")
            if not (isinstance(step_of, int) and not isinstance(step_of, bool) and step_of >= 0):
                continue
            if not isinstance(s.get("text"), str):
                continue
            temperature, top_k = s.get("temperature", 0.0), s.get("top_k", 0)
            found.observe(
                ev.Sampled(
                    step=step_of,
                    prime=str(s.get("prime", "")),
                    text=s["text"],
                    temperature=float(temperature) if _positive(temperature) else 0.0,
                    top_k=_int(top_k),
                )
            )
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


SAMPLES_TAIL_BYTES = 1 << 20  # the newest samples are at the end; a sample is at most a few hundred KB


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _precision(found: Any) -> dict[str, str]:
    """config.json's precision record, its text fields only (a hand-edited file may hold anything)."""
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if k in ("name", "label", "reason", "detail") and isinstance(v, str)}
