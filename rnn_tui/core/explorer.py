"""The trainer's side of the explorer: ``Explore`` requests answered between training steps.

A session hands every ``Explore`` command to its ``Explorer`` and asks it, between steps, whether
one is due. A request a person made (``refresh=False``) is answered at the next step; a timer's
refresh is put off until the explorer has used at most ``budget`` of the wall time since its last
answer, so an explorer left open costs training about that much whatever the model's size and
however many viewers watch. Requests that arrive together for the same probe are computed once;
the same weights and probe (a paused run) are answered from the last result at once.
"""

from __future__ import annotations

import codecs
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import events as ev
from .config import TrainConfig
from .corpus import Vocab
from .errors import CorpusError, RnnTuiError
from .explore import Exploration, encode_probe, explore, newline_index, passage, probe_limit
from .explore_files import decode_probe, read_probe_bytes
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
    ) -> list[ev.Explored | ev.ExploreFailed]:
        """Answer every pending request from the current weights (``version`` names them: the same
        version and probe reuse the last result). A failure (out of memory, say) is an answer too:
        training goes on."""
        requests, self.pending = self.pending, {}
        groups: dict[tuple[str | None, int], list[str]] = {}
        for asker, r in requests.items():
            groups.setdefault((r.text, r.chars), []).append(asker)
        answers: list[ev.Explored | ev.ExploreFailed] = []
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
                try:
                    result = explore(model, vocab, ids)
                except (RuntimeError, ValueError, RnnTuiError) as exc:
                    reason = f"the explorer could not compute its views: {(str(exc).splitlines() or [''])[0][:200]}"
                    answers.extend(ev.ExploreFailed(asker, reason) for asker in askers)
                    continue
                spent = self.clock() - start
                self.computed += 1
                self.seconds += spent
                self.next_refresh = self.clock() + spent / self.budget
                self.cached = (key, result, note)
            answers.extend(to_event(result, asker, step, seq_len, note) for asker in askers)
        return answers


# ---------------------------------------------------------------------------- from a checkpoint


@dataclass
class Explorable:
    """A checkpoint's model, ready to explore offline (``rnn-tui explore``, a finished run)."""

    checkpoint: Path
    model: CharRNN
    vocab: Vocab
    step: int
    seq_len: int
    val_fraction: float
    corpus: Path | None
    record: dict  # the checkpoint's plain values (config, losses), for the screen's title

    def validation_ids(self, chars: int) -> np.ndarray:
        """A passage of the validation split, read from the end of the corpus file (the file itself
        may be huge: only what the probe needs is read)."""
        if self.corpus is None or not self.corpus.is_file():
            raise CorpusError(
                f"the checkpoint's corpus {self.corpus or '(unknown)'} is not here; give a probe text with --text FILE"
            )
        size = self.corpus.stat().st_size
        start = int(size * (1 - self.val_fraction))
        want = chars * 4 + 8192  # room for the start of a line and multi-byte characters
        with open(self.corpus, "rb") as f:
            f.seek(start)
            raw = f.read(want)
        if self.vocab.kind == "char":
            while raw and 0x80 <= raw[0] < 0xC0:  # the tail of a character cut by the seek
                raw = raw[1:]
            text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(raw, final=len(raw) < want)
            known, unknown = self.vocab.split_known(text)
        else:
            index = {code: i for i, code in enumerate(self.vocab.codes)}
            known = [index[b] for b in raw if b in index]
            unknown = ["?"] if len(known) < len(raw) else []
        if unknown:
            raise CorpusError(f"{self.corpus} has changed since this checkpoint (it has symbols the model never saw)")
        ids = np.asarray(known, dtype=np.int64)
        found = passage(ids, chars, newline_index(self.vocab))
        if len(found) < 2:
            raise CorpusError(f"{self.corpus} is too short for a probe; give one with --text FILE")
        return found

    def probe(self, text: str | None, chars: int) -> tuple[np.ndarray, str]:
        """The probe for a request: ``text`` (unknown characters skipped, with a note) or a
        validation passage."""
        limit = probe_limit(self.model.cfg.layers, self.model.cfg.hidden, chars)
        if text is None:
            return self.validation_ids(limit), ""
        ids, note = probe_ids(self.vocab, np.zeros(0, dtype=np.int64), text, limit)
        if not len(ids):
            return self.validation_ids(limit), note
        return ids, note

    def answer(self, request: ev.Explore) -> ev.Explored | ev.ExploreFailed:
        try:
            ids, note = self.probe(request.text, request.chars)
            result = explore(self.model, self.vocab, ids)
        except (RuntimeError, ValueError, RnnTuiError) as exc:
            return ev.ExploreFailed(request.asker, (str(exc).splitlines() or ["failed"])[0][:300])
        return to_event(result, request.asker, self.step, self.seq_len, note)

    def started(self) -> ev.Started:
        """The checkpoint as a run the app can show (it is not training)."""
        cfg = self.record.get("config", {})
        best = self.record.get("best_val")
        return ev.Started(
            run_dir=str(self.checkpoint.parent),
            corpus=str(self.corpus or ""),
            config=cfg,
            vocab_size=self.vocab.size,
            n_params=self.model.num_params(),
            device="cpu",
            train_chars=0,
            val_chars=0,
            batches_per_epoch=0,
            step=self.step,
            best_val=best if isinstance(best, float) and math.isfinite(best) else None,
            last_val=self.record.get("last_val"),
            max_steps=cfg.get("max_steps"),
            max_minutes=cfg.get("max_minutes"),
        )


def load_explorable(path: Path) -> Explorable:
    """A checkpoint on the CPU, checked (one line for anything wrong with it)."""
    from .trainer import load_for_inference

    model, vocab, ck = load_for_inference(path, "cpu")
    cfg = ck.get("config", {})
    corpus = ck.get("corpus")
    return Explorable(
        checkpoint=Path(path),
        model=model,
        vocab=vocab,
        step=int(ck["step"]),
        seq_len=int(cfg.get("seq_len", TrainConfig().seq_len)),
        val_fraction=float(cfg.get("val_fraction", 0.1)),
        corpus=Path(corpus) if isinstance(corpus, str) and corpus else None,
        record={k: ck.get(k) for k in ("config", "best_val", "last_val")},
    )


def read_probe_file(path: Path, vocab: Vocab, chars: int) -> np.ndarray:
    """``--text FILE``: its first ``chars`` characters (bytes, for a byte vocabulary), each one the
    model knows."""
    raw = read_probe_bytes(path, chars)
    try:
        if vocab.kind == "byte":
            return vocab.encode_array(raw[:chars]).astype(np.int64)
        return encode_probe(vocab, decode_probe(raw, path, chars))
    except CorpusError as exc:
        message = str(exc)
        raise CorpusError(message if str(path) in message else f"{path}: {message}") from None
