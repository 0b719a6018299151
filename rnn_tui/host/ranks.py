"""One process of a data-parallel run: building its trainer in step with the others.

Each process (``RANK`` of ``WORLD_SIZE``, started by torchrun or ``--nproc``) runs the same session
host as a single process would (``serve.py``); here it builds its own trainer. Every step that can
fail is taken by all processes together, and they agree on the outcome before the next one, so a
bad corpus, a damaged checkpoint, a rank count larger than the GPUs or options that differ between
the processes give every process the same one-line error, and none waits for another that gave up.

Process 0 (the leader) owns the run directory; the others write nothing. The checkpoint of a
resumed run is read by the leader and sent to the others (other machines need no copy of it); the
corpus is encoded once per machine and mapped by its processes (``core/distributed.py``).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.host.request import (
    LaunchError,
    TrainRequest,
    check_resumed,
    forget_fresh_run,
    resumed_config,
    resumed_run,
)

if TYPE_CHECKING:
    from rnn_tui.core.distributed import Ddp
    from rnn_tui.core.runs import RunDir
    from rnn_tui.core.trainer import Trainer

T = TypeVar("T")


def together(cluster: Ddp, what: Callable[[], T]) -> T:
    """``what()`` on every process, then the same outcome everywhere: its value, or the first
    process's error (raised as a ``LaunchError`` on all of them)."""
    value: Any = None
    error: str | None = None
    try:
        value = what()
    except RnnTuiError as exc:
        error = str(exc)
    except Exception as exc:  # a bug: its details on this process's stderr, one line everywhere
        traceback.print_exc()
        error = f"internal error: {exc!r}"
    error = cluster.agree(error)
    if error is not None:
        raise LaunchError(error)
    return value


def options_of(request: TrainRequest) -> dict[str, Any]:
    """What must be the same on every process: the options, the corpus, the run to resume."""
    return {
        **{f"--{k.replace('_', '-')}": v for k, v in sorted(request.overrides.items())},
        "CORPUS": str(request.corpus_file) if request.corpus_file else None,
        "--corpus": request.corpus_name,
        "--resume": request.resume,
    }


def differences(options: list[dict[str, Any]]) -> str | None:
    """One line naming the first option that differs between the processes, if any."""
    leader = options[0]
    for rank, theirs in enumerate(options[1:], start=1):
        for key in sorted(set(leader) | set(theirs)):
            if leader.get(key) != theirs.get(key):
                shown = {
                    r: "(not given)" if o.get(key) is None else json.dumps(o.get(key))
                    for r, o in ((0, leader), (rank, theirs))
                }
                return (
                    f"the processes were started with different options: {key} is {shown[0]} in process 0 "
                    f"and {shown[rank]} in process {rank} (start every process with the same command)"
                )
    return None


def build_rank_trainer(request: TrainRequest, cluster: Ddp) -> Trainer:
    """This process's trainer, built in step with the others (see the module's docstring)."""
    from rnn_tui.core import checkpoint as ckpt_io
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.distributed import rank_device, shared_corpus
    from rnn_tui.core.runs import RunDir, resolve_checkpoint
    from rnn_tui.core.trainer import Trainer

    difference = differences(cluster.exchange(options_of(request)))
    if difference:
        raise LaunchError(difference)

    # the options, the vocabulary and the corpus (a resumed run's from its checkpoint)
    ck: dict | None = None
    ck_path = None
    if request.resume is not None:
        ck_path = together(cluster, lambda: resolve_checkpoint(request.resume or ""))
        ck = cluster.broadcast(together(cluster, lambda: ckpt_io.load(ck_path) if cluster.leader else None))
        assert ck is not None and ck_path is not None
        cfg, vocab, corpus_path = together(cluster, lambda: resumed_config(request, ck, ck_path))
        kind = vocab.kind
    else:
        fresh_path = request.corpus_path()
        assert fresh_path is not None  # a fresh run always has a corpus (the bundled one by default)
        corpus_path = fresh_path
        cfg = together(cluster, lambda: TrainConfig(**request.overrides).validate())
        vocab, kind = None, cfg.vocab
    device = together(cluster, lambda: rank_device(cfg.device, cluster))
    corpus = shared_corpus(cluster, corpus_path, kind, vocab, None if vocab is not None else cfg.max_vocab)
    same = {"symbols": len(corpus.vocab.codes), "characters": len(corpus)}
    for rank, theirs in enumerate(cluster.exchange(same)):
        if theirs != same:  # another machine's copy of the corpus differs
            raise LaunchError(
                f"the corpus differs between the processes: {same} in process {cluster.rank}, "
                f"{theirs} in process {rank} (every machine needs the same file at {corpus_path})"
            )

    # the leader's run directory; every process's trainer; the checkpoint's state in each
    run: RunDir | None = None
    if cluster.leader:
        if ck_path is not None:
            run = together(cluster, lambda: resumed_run(request, corpus_path, ck_path))
        else:
            run = together(
                cluster,
                lambda: (
                    RunDir(request.run_dir).ensure()
                    if request.run_dir
                    else RunDir.create(request.runs_dir, corpus_path.stem)
                ),
            )
    else:
        together(cluster, lambda: None)
    try:
        trainer = together(cluster, lambda: Trainer(cfg, corpus, run=run, device=device, cluster=cluster))
        if ck is not None and ck_path is not None:
            together(cluster, lambda: trainer.load_state_dict(ck))
            together(cluster, lambda: check_resumed(trainer, ck, ck_path) if cluster.leader else None)
        precisions = cluster.exchange(trainer.precision.name)
        if len(set(precisions)) > 1:
            raise LaunchError(
                f"the processes chose different precisions ({', '.join(precisions)}): "
                "give every one the same --precision"
            )
        together(cluster, trainer.distribute)
    except BaseException:
        if run is not None and ck_path is None:
            forget_fresh_run(request, run)
        raise
    return trainer
