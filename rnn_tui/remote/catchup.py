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
        rows = run.history()
        vals = [r["val_loss"] for r in rows if r.get("kind") == "val"]
        trains = [r for r in rows if r.get("kind") == "train"]
        anchors = [r for r in rows if _positive(r.get("train_s"))]  # time and characters, now and then
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
                train_chars=_int(record.get("train_chars")),
                val_chars=_int(record.get("val_chars")),
                batches_per_epoch=_int(record.get("batches_per_epoch")),
                step=step,
                best_val=min(vals) if vals else None,
                last_val=vals[-1] if vals else None,
                max_steps=max_steps if _int(max_steps) > 0 else None,
                max_minutes=max_minutes if _positive(max_minutes) else None,
                precision=_precision(record.get("precision")),
                world_size=max(1, _int(record.get("world_size", 1))),
            )
        )
        if trains:  # the stats panel's numbers as they were when the run ended
            last = trains[-1]
            total_s = float(anchors[-1]["train_s"]) if anchors else 0.0
            tokens = _int(anchors[-1].get("tokens")) if anchors else 0
            per_epoch = _int(record.get("batches_per_epoch")) * _int(cfg.get("batch_size")) * _int(cfg.get("seq_len"))
            found.observe(
                ev.Progress(
                    steps=[],
                    losses=[],
                    step=step,
                    epoch=tokens / per_epoch if per_epoch else 0.0,
                    lr=float(last["lr"]) if _positive(last.get("lr")) else 0.0,
                    grad_norm=float(last["grad_norm"]) if _positive(last.get("grad_norm")) else float("nan"),
                    chars_per_s=0.0,
                    elapsed_s=0.0,
                    tokens=tokens,
                    total_s=total_s,
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
        saved_step = status.get("saved_step")
        if run.latest.exists() and isinstance(saved_step, int) and not isinstance(saved_step, bool):
            found.observe(ev.CheckpointSaved(saved_step, str(run.latest), "periodic"))
        crashed = state == "crashed"
        # the same word as rnn-tui runs: a killed trainer's run is "crashed", not its last reason
        reason = state if state in ("crashed", "damaged") else str(status.get("reason") or "stopped")
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
