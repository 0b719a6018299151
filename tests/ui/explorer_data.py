"""A fixed checkpoint, made deterministically, and the explorer's answer for it, for the explorer
screen's tests and snapshots."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rnn_tui.core import events as ev
from tests.ui.fake_stream import ReplayLink

SHAKESPEARE = Path(__file__).resolve().parents[2] / "corpora" / "tinyshakespeare.txt"

# Prose with a little code in it, so that quotes, comments and brackets occur in the probe too.
CODE = (
    "/* read a line */\nint read_line(char *buf, int n) {\n    int i = 0; // count\n    while (i < n) {\n"
    '        if (buf[i] == "\\n"[0]) { return i; }\n        i++;\n    }\n    return -1;\n}\n\n'
)


def corpus_text() -> str:
    return SHAKESPEARE.read_text(encoding="utf-8")[:30_000] + CODE * 40


def make_checkpoint(folder: Path) -> Path:
    """A small LSTM trained for a few seconds on one thread, always the same way."""
    import torch

    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.runs import RunDir
    from rnn_tui.core.trainer import Trainer
    from tests.helpers import tiny_config

    corpus_file = folder / "corpus.txt"
    corpus_file.write_text(corpus_text(), encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # ema_window=0 (the raw weights), a fixed decay, no weight decay and fp32: these screens do not change with
        # the defaults, nor with the CPU (one with bf16 instructions would train in bf16 otherwise)
        cfg = tiny_config(
            precision="fp32",
            layers=2,
            hidden=32,
            embed=16,
            batch_size=16,
            seq_len=64,
            dropout=0.0,
            seed=7,
            lr=1e-2,
            ema_window=0.0,
            decay_steps=5000,
            weight_decay=0.0,
        )
        trainer = Trainer(cfg, read_corpus(corpus_file), run=RunDir(folder / "run"))
        for _ in range(150):
            trainer.train_step()
        return trainer.save("manual")
    finally:
        torch.set_num_threads(threads)


def explored(checkpoint: Path, chars: int = 1200) -> ev.Explored:
    """The explorer's answer for the checkpoint, rounded so that a screen drawn from it does not
    change with the last bits of another machine's arithmetic."""
    import torch

    from rnn_tui.core.explore import explore
    from rnn_tui.core.explorer import load_explorable, to_event

    x = load_explorable(checkpoint)
    prose = SHAKESPEARE.read_text(encoding="utf-8")[29_000:30_000]
    ids = x.vocab.encode_array((CODE + prose[prose.index("\n\n") + 2 :] + CODE * 3)[:chars])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        e = to_event(explore(x.model, x.vocab, ids), "", x.step, x.seq_len)
    finally:
        torch.set_num_threads(threads)
    sig = lambda v: [float(f"{x:.2g}") for x in v]  # noqa: E731
    return dataclasses.replace(
        e,
        h=np.round(e.h, 2),
        c=None if e.c is None else np.round(e.c, 2),
        top_probs=np.round(e.top_probs, 3),
        p_next=np.round(e.p_next, 3),
        saturation=None if e.saturation is None else np.round(e.saturation, 2),
        cells=[{**m, "r": round(m["r"], 2)} for m in e.cells],
        memory_grad=sig(e.memory_grad),
        memory_flip=sig(e.memory_flip),
        loss=round(e.loss, 3),
        seconds=0.0,
    )


class ExploreReplayLink(ReplayLink):
    """A fixed event stream that answers every ``Explore`` with the same ``Explored``."""

    def __init__(self, events: list, answer: ev.Explored):
        super().__init__(events)
        self.answer = answer

    def send(self, command) -> None:
        super().send(command)
        if isinstance(command, ev.Explore):
            self.events.append(dataclasses.replace(self.answer, asker=command.asker))
