"""A deterministic event stream, as a trainer would send it, for screens that must not change."""

from __future__ import annotations

import math

import numpy as np

from rnn_tui.core import events as ev
from tests.helpers import started_event

SAMPLE = (
    "KING RICHARD II:\nWhat says my lord? the king is come to see\nThe blood of England, and the "
    "crown of war,\nAnd so the state of love is dead.\n"
)


def demo_events() -> list:
    rng = np.random.default_rng(7)
    cfg = dict(cell="lstm", layers=2, hidden=256, batch_size=32, seq_len=100)
    events: list = [
        started_event(
            run_dir="runs/tinyshakespeare-demo",
            corpus="/data/tinyshakespeare.txt",
            config=cfg,
            vocab_size=65,
            n_params=876_929,
            train_chars=1_003_855,
            val_chars=111_539,
            batches_per_epoch=313,
            max_minutes=10.0,
        ),
        ev.SamplingChanged(0.8, 0, "KING"),
        ev.StateChanged("training"),
    ]
    steps = list(range(1, 1201))
    losses = [1.45 + 2.75 * math.exp(-s / 120) + float(rng.normal(0, 0.04)) for s in steps]
    events.append(
        ev.Progress(
            steps=steps,
            losses=losses,
            step=1200,
            epoch=1200 / 313,
            lr=3.2e-3,
            grad_norm=0.41,
            chars_per_s=25_123.0,
            elapsed_s=153.0,
            tokens=1200 * 3200,
        )
    )
    for s in range(200, 1201, 200):
        val = 1.55 + 2.6 * math.exp(-s / 130)
        events.append(ev.Evaluated(step=s, val_loss=val, best_val=val, is_best=True, seconds=1.3))
    text = (SAMPLE * 2)[:160]
    t = np.arange(160)
    h = np.tanh(rng.normal(0, 1.0, (2, 160, 256)) + np.sin(t / 9.0)[None, :, None]).astype(np.float16)
    c = (h * 2.5).astype(np.float16)
    events.append(ev.Sampled(step=1200, prime="KING", text=SAMPLE[4:], temperature=0.8, top_k=0))
    events.append(ev.Probed(step=1200, text=text, h=h, c=c))
    return events


class ReplayLink:
    """Hands the app a fixed list of events on its first poll, then nothing; records commands."""

    def __init__(self, events: list):
        self.events = list(events)
        self.sent: list = []

    def start(self) -> None: ...

    def send(self, command) -> None:
        self.sent.append(command)

    def poll(self, limit: int = 1000) -> list:
        out, self.events = self.events[:limit], self.events[limit:]
        return out

    def alive(self) -> bool:
        return True

    def join(self, timeout=None) -> None: ...
