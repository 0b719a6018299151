"""The trainer's side of the explorer: ``Explore`` requests answered between training steps.

A session hands every ``Explore`` command to its ``Explorer`` and asks it, between steps, whether
one is due. A request a person made (``refresh=False``) is answered at the next step; a timer's
refresh is put off until the explorer has used at most ``budget`` of the wall time since its last
answer, so an explorer left open costs training about that much whatever the model's size and
however many viewers watch. Requests that arrive together for the same probe are computed once;
the same weights and probe (a paused run) are answered from the last result at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import events as ev
from .corpus import Vocab
from .explore import PROBE_CHARS, Exploration, explore, newline_index, passage, probe_limit
from .model import CharRNN

EXPLORE_BUDGET = 0.02  # at most this share of wall time goes to timer refreshes while training


def to_event(result: Exploration, asker: str, step: int, seq_len: int, note: str = "") -> ev.Explored:
    """The ``Explored`` event of a result: states as float16 on the wire, the rest small."""
    return ev.Explored(
        asker=asker,
        step=step,
        text=result.symbols,
        cell=result.cell,
        h=result.h,
        c=result.c,
        top_chars=result.top_chars,
        top_probs=result.top_probs,
        p_next=result.p_next,
        loss=result.loss,
        cells=[m.to_dict() for m in result.cells],
        saturation=result.saturation,
        memory_k=result.memory_k.tolist(),
        memory_grad=result.memory_grad.tolist(),
        memory_flip=result.memory_flip.tolist(),
        seq_len=seq_len,
        seconds=round(result.seconds, 3),
        note=note,
    )


def probe_ids(vocab: Vocab, val_ids: np.ndarray, text: str | None, chars: int) -> tuple[np.ndarray, str]:
    """The probe for a request, and a note for the person when it is not quite what was asked:
    characters the model has never seen are skipped."""
    if text is None:
        return passage(val_ids, chars, newline_index(vocab)), ""
    known, unknown = vocab.split_known(text)
    if len(known) < 2:
        return (
            passage(val_ids, chars, newline_index(vocab)),
            "the probe text has no characters the model knows: showing the validation passage",
        )
    note = f"skipped characters the model has never seen: {' '.join(unknown[:20])}" if unknown else ""
    return np.asarray(known[:chars], dtype=np.int64), note


class Explorer:
    def __init__(self, budget: float = EXPLORE_BUDGET, clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self.clock = clock
        self.pending: dict[str, ev.Explore] = {}  # asker -> their newest request
        self.next_refresh = 0.0  # when a timer's refresh may be computed while training
        self.cached: tuple[tuple, Exploration, str] | None = None
        self.computed = 0  # results computed (not answered from the cache)
        self.seconds = 0.0  # time spent computing them

    def ask(self, request: ev.Explore) -> None:
        self.pending[request.asker] = request

    def due(self, training: bool) -> bool:
        """Whether to answer now: a person's request always, a refresh when the budget allows (or
        at once when the weights are not changing)."""
        if not self.pending:
            return False
        if not training or any(not r.refresh for r in self.pending.values()):
            return True
        return self.clock() >= self.next_refresh

    def serve(
        self, model: CharRNN, vocab: Vocab, val_ids: np.ndarray, step: int, seq_len: int, version: object
    ) -> list[ev.Explored]:
        """Answer every pending request from the current weights (``version`` names them: the same
        version and probe reuse the last result)."""
        requests, self.pending = self.pending, {}
        groups: dict[tuple[str | None, int], list[str]] = {}
        for asker, r in requests.items():
            groups.setdefault((r.text, r.chars), []).append(asker)
        answers: list[ev.Explored] = []
        for (text, chars), askers in groups.items():
            key = (version, text, chars)
            if self.cached is not None and self.cached[0] == key:
                result, note = self.cached[1], self.cached[2]
            else:
                cfg = model.cfg
                limit = probe_limit(cfg.layers, cfg.hidden, chars)
                ids, note = probe_ids(vocab, val_ids, text, limit)
                if limit < chars:
                    note = "; ".join(
                        filter(None, [note, f"probe cut to {limit:,} characters for a {cfg.layers}x{cfg.hidden} model"])
                    )
                start = self.clock()
                result = explore(model, vocab, ids)
                spent = self.clock() - start
                self.computed += 1
                self.seconds += spent
                self.next_refresh = self.clock() + spent / self.budget
                self.cached = (key, result, note)
            answers.extend(to_event(result, asker, step, seq_len, note) for asker in askers)
        return answers


__all__ = ["EXPLORE_BUDGET", "PROBE_CHARS", "Explorer", "probe_ids", "to_event"]
