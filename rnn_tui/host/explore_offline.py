"""``rnn-tui explore RUN|CHECKPOINT``: what to explore, checked before anything opens.

A run or a checkpoint file is resolved, its checkpoint loaded and the probe read (``--text`` or a
validation passage), so bad input is one line and exit code 2 before any screen appears. A run
that is training is explored live instead (its trainer answers the screen).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.events import EXPLORE_MAX_CHARS
from rnn_tui.core.runs import RunDir, RunDirError, resolve_checkpoint, run_dir_of
from rnn_tui.remote.status import live_trainer


@dataclass
class ExploreTarget:
    run_dir: Path | None  # None: a checkpoint outside any run directory
    checkpoint: Path | None  # None: a live run with no checkpoint yet
    live: bool  # the run is training: its trainer answers
    explorable: Any  # rnn_tui.core.explorer.Explorable (None when live)
    text: str | None  # the probe text (None: a validation passage)
    ids: Any = None  # the probe as vocabulary indices (not when live)


def check_chars(chars: int) -> int:
    if not 2 <= chars <= EXPLORE_MAX_CHARS:
        raise RnnTuiError(f"--chars must be between 2 and {EXPLORE_MAX_CHARS:,} (got {chars})")
    return chars


def resolve(arg: str, runs_dir: Path) -> tuple[Path | None, Path | None]:
    """(run directory, checkpoint) of a run directory, a run's name or a checkpoint file."""
    p = Path(arg)
    if p.is_file():
        return run_dir_of(p), p
    for candidate in (p, Path(runs_dir) / arg):
        if RunDir(candidate).is_run():
            try:
                return candidate, resolve_checkpoint(candidate, or_best=True)
            except RnnTuiError:
                if live_trainer(candidate) is not None:
                    return candidate, None  # training, no checkpoint yet: the trainer answers
                raise
    if p.is_dir():
        raise RunDirError(f"{p} is not a run directory (no config.json); give a run or a checkpoint file")
    raise RunDirError(f"no run or checkpoint {arg!r} (give a run directory, a name from: rnn-tui runs, or a .pt file)")


def open_target(arg: str, runs_dir: Path, text_file: Path | None, chars: int, *, live_ok: bool) -> ExploreTarget:
    """Everything checked: the checkpoint loads, the probe exists and the model knows its
    characters. With ``live_ok`` a training run is explored live (its checkpoint is not loaded)."""
    check_chars(chars)
    run_dir, checkpoint = resolve(arg, runs_dir)
    live = live_ok and run_dir is not None and live_trainer(run_dir) is not None
    if live:
        return ExploreTarget(run_dir, checkpoint, True, None, read_live_text(text_file, chars) if text_file else None)
    assert checkpoint is not None  # resolve() raised for a stopped run without one
    from rnn_tui.core.explore import probe_limit
    from rnn_tui.core.explorer import load_explorable, read_probe_file

    explorable = load_explorable(checkpoint)
    cfg = explorable.model.cfg
    limit = probe_limit(cfg.layers, cfg.hidden, chars)
    ids = read_probe_file(text_file, explorable.vocab, limit) if text_file else explorable.validation_ids(limit)
    text = explorable.vocab.decode(ids.tolist()) if text_file else None
    return ExploreTarget(run_dir, checkpoint, False, explorable, text, ids)


def read_live_text(path: Path, chars: int) -> str:
    """A probe text for a live trainer: UTF-8 and not empty (the trainer skips characters its
    model has never seen, and says so)."""
    from rnn_tui.core.explore_files import decode_probe, read_probe_bytes

    return decode_probe(read_probe_bytes(path, chars), path, chars)


def explore_to_json(arg: str, runs_dir: Path, text_file: Path | None, chars: int, save_npz: Path | None) -> dict:
    """The views of a checkpoint as ``rnn-tui explore --json`` prints them (and the .npz)."""
    target = open_target(arg, runs_dir, text_file, chars, live_ok=False)
    from rnn_tui.core.explore import explore
    from rnn_tui.core.explore_files import save_activations

    result = explore(target.explorable.model, target.explorable.vocab, target.ids)
    if save_npz is not None:
        save_activations(save_npz, result.symbols, result.h, result.c, result.gates)
    return result.to_json()
