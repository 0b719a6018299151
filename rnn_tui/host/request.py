"""What a trainer is asked to do, and building it there.

``TrainRequest`` is what the ``train`` command was asked to do: plain, picklable values, so it can
be handed to a trainer in a thread or in a spawned process. ``build_trainer`` turns it into a
``Trainer`` (reading the corpus, or resuming a checkpoint) wherever the training will run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.invocation import command

if TYPE_CHECKING:
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import Vocab
    from rnn_tui.core.runs import RunDir
    from rnn_tui.core.trainer import Trainer


class LaunchError(RnnTuiError):
    pass


@dataclass
class TrainRequest:
    corpus_file: Path | None = None
    corpus_name: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    runs_dir: Path = Path("runs")
    resume: str | None = None
    theme: str | None = None
    run_dir: Path | None = None  # a fresh run's directory when the caller made it (--detach, --nproc)
    nproc: int = 1  # data-parallel processes to start on this machine (host/launch.py)
    master_port: int | None = None  # their rendezvous port (None: a free one)

    def to_json(self) -> str:
        def plain(v: object) -> object:
            return str(Path(v).resolve()) if isinstance(v, Path) else v

        return json.dumps({k: plain(v) for k, v in vars(self).items()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainRequest:
        data = json.loads(text)
        for key in ("corpus_file", "runs_dir", "run_dir"):
            if data.get(key) is not None:
                data[key] = Path(data[key])
        return cls(**data)

    def corpus_path(self) -> Path | None:
        """The corpus to read; None when resuming without one (the checkpoint names it)."""
        from rnn_tui.core.resources import DEFAULT_CORPUS, bundled_corpora

        if self.corpus_file is not None and self.corpus_name is not None:
            raise LaunchError("give either a CORPUS file or --corpus NAME, not both")
        if self.corpus_file is not None:
            return self.corpus_file
        if self.corpus_name is not None:
            found = bundled_corpora()
            if self.corpus_name not in found:
                names = ", ".join(found) or "none"
                raise LaunchError(f"no bundled corpus named {self.corpus_name!r} (bundled: {names})")
            return found[self.corpus_name]
        if self.resume is not None:
            return None
        found = bundled_corpora()
        if DEFAULT_CORPUS not in found:
            raise LaunchError("no corpus given and the bundled corpora are missing; give a CORPUS file")
        return found[DEFAULT_CORPUS]

    def check(self) -> None:
        """Cheap checks that need no torch, so bad input is refused before any screen appears."""
        from rnn_tui.core.config import TrainConfig
        from rnn_tui.core.files import not_regular_reason

        path = self.corpus_path()
        if path is not None:
            try:
                st = path.stat()  # never opened here: a named pipe would block
            except OSError:
                raise LaunchError(f"corpus not found: {path}") from None
            if path.is_dir():
                raise LaunchError(f"corpus is a directory, not a file: {path}")
            reason = not_regular_reason(path, st.st_mode)
            if reason is not None:
                raise LaunchError(f"corpus {reason}; save it to a file first")
            if st.st_size == 0:
                raise LaunchError(f"corpus is empty: {path}")
        if self.resume is not None:
            from rnn_tui.core.runs import resolve_checkpoint, run_dir_of
            from rnn_tui.remote.status import live_trainer

            ck = resolve_checkpoint(self.resume)
            run_path = run_dir_of(ck)
            live = live_trainer(run_path) if run_path else None
            if live is not None:
                raise LaunchError(
                    f"{run_path} is training now (pid {live.get('pid')}); watch it with: {command('attach', run_path)}"
                )
        TrainConfig.from_dict({**TrainConfig().to_dict(), **self.overrides}).validate()
        if self.nproc < 1:
            raise LaunchError(f"--nproc must be at least 1 (got {self.nproc})")
        if self.master_port is not None and not 0 < self.master_port < 65536:
            raise LaunchError(f"--master-port must be a port number, 1 to 65535 (got {self.master_port})")
        if self.nproc > 1:
            from rnn_tui.core.cluster import launched

            if launched():
                raise LaunchError(
                    "--nproc starts the processes itself; under torchrun leave it out (--nproc-per-node says how many)"
                )

    def prepare_run_dir(self) -> tuple[Path, bool]:
        """The directory the run will write, and whether it was made just now (a fresh run's
        directory is made before its trainer starts when another process must know it)."""
        from rnn_tui.core.runs import RunDir, resolve_checkpoint, run_dir_of

        if self.run_dir is not None:
            return self.run_dir, False
        if self.resume is not None:
            existing = run_dir_of(resolve_checkpoint(self.resume))
            if existing is not None:
                return existing, False
        path = self.corpus_path()
        stem = path.stem if path is not None else Path(str(self.resume)).stem
        return RunDir.create(self.runs_dir, stem).path, True


def build_trainer(request: TrainRequest, made: list[Path] | None = None) -> Trainer:
    """A fresh trainer, or one that continues ``request.resume`` exactly. A run directory made
    for it is added to ``made`` the moment it exists (so the caller can remove it if the start
    is abandoned, even by a signal)."""
    from rnn_tui.core import checkpoint as ckpt_io
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.runs import RunDir, resolve_checkpoint
    from rnn_tui.core.trainer import Trainer

    corpus_path = request.corpus_path()
    if request.resume is None:
        assert corpus_path is not None  # a fresh run always has a corpus (the bundled one by default)
        cfg = TrainConfig(**request.overrides).validate()
        corpus = read_corpus(corpus_path, kind=cfg.vocab, max_vocab=cfg.max_vocab)
        run = (
            RunDir(request.run_dir).ensure()
            if request.run_dir
            else RunDir.create(request.runs_dir, corpus_path.stem, made=made)
        )
        try:
            return Trainer(cfg, corpus, run=run)
        except BaseException:
            forget_fresh_run(request, run)
            raise

    ck_path = resolve_checkpoint(request.resume)
    ck = ckpt_io.load(ck_path)
    cfg, vocab, corpus_path = resumed_config(request, ck, ck_path)
    corpus = read_corpus(corpus_path, kind=vocab.kind, vocab=vocab)
    run = resumed_run(request, corpus_path, ck_path, made)
    trainer = Trainer(cfg, corpus, run=run)
    trainer.load_state_dict(ck)
    check_resumed(trainer, ck, ck_path)
    return trainer


def forget_fresh_run(request: TrainRequest, run: RunDir) -> None:
    """A run that never started leaves no directory behind (unless the caller made it)."""
    if request.run_dir is None:
        import shutil

        run.close()
        shutil.rmtree(run.path, ignore_errors=True)


def resumed_config(request: TrainRequest, ck: dict, ck_path: Path) -> tuple[TrainConfig, Vocab, Path]:
    """A resumed run's options (the checkpoint's, with the ones given now), vocabulary and corpus."""
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import Vocab
    from rnn_tui.core.errors import CheckpointError

    saved = TrainConfig.from_dict(ck.get("config", {}))
    changed = [
        k for k in TrainConfig.ARCHITECTURE if k in request.overrides and request.overrides[k] != getattr(saved, k)
    ]
    if changed:
        raise CheckpointError("a resumed run keeps its model; cannot change " + ", ".join(f"--{k}" for k in changed))
    cfg = TrainConfig.from_dict({**saved.to_dict(), **request.overrides}).validate()
    vocab = Vocab.from_dict(ck["vocab"])
    corpus_path = request.corpus_path()
    if corpus_path is None:
        if not ck.get("corpus"):
            raise CheckpointError(f"{ck_path} does not name its corpus; give the CORPUS file too")
        corpus_path = Path(ck["corpus"])
    return cfg, vocab, corpus_path


def resumed_run(request: TrainRequest, corpus_path: Path, ck_path: Path, made: list[Path] | None = None) -> RunDir:
    """A resumed run continues in its run directory (a checkpoint outside one starts a new one)."""
    from rnn_tui.core.runs import RunDir, run_dir_of

    run_path = run_dir_of(ck_path)
    if run_path:
        return RunDir(run_path).ensure()
    if request.run_dir:
        return RunDir(request.run_dir).ensure()
    return RunDir.create(request.runs_dir, corpus_path.stem, made=made)


def check_resumed(trainer: Trainer, ck: dict, ck_path: Path) -> None:
    """A resumed run has steps left to train, remembers its best validation loss, and says so
    when it goes on with another corpus than the one it was trained on."""
    from rnn_tui.core import checkpoint as ckpt_io
    from rnn_tui.core.errors import CheckpointError

    cfg, run = trainer.cfg, trainer.run
    trainer.resumed_from = ck_path
    trained_on = ck.get("corpus")
    if isinstance(trained_on, str) and trained_on and Path(trained_on).resolve() != trainer.corpus.path:
        trainer.start_notes.append(
            f"this run was trained on {trained_on} and goes on with {trainer.corpus.path}: its losses from here on "
            f"are not comparable with the earlier ones"
        )
    if cfg.max_steps is not None and trainer.step >= cfg.max_steps:
        raise CheckpointError(
            f"this run is already at step {trainer.step:,}, its --max-steps; resume with a larger --max-steps"
        )
    # latest.pt may be older than best.pt (a stop after a bad stretch): never let a worse
    # model replace best.pt because the best loss was forgotten.
    if run is not None and run.best.exists() and run.best != ck_path:
        try:
            trainer.best_val = min(trainer.best_val, float(ckpt_io.load(run.best).get("best_val", math.inf)))
        except CheckpointError:
            pass
