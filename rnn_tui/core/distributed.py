"""Data-parallel training (DDP) on several processes, joined the way torchrun starts them.

Every process reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` (and the
rendezvous address) from its environment, set by ``torchrun`` or by ``rnn-tui --nproc`` through the
same elastic launcher (``rnn_tui/host/launch.py``), and joins one process group: NCCL for CUDA
tensors (one GPU per process), gloo for CPU tensors, so the small control messages never make a
GPU wait. Every collective has a bounded timeout (``COLLECTIVE_TIMEOUT_S``, not NCCL's ten
minutes): a process that died or hangs stops the others in bounded time, as ``PeerLost``.

Only this module (and the launcher) import ``torch.distributed``'s machinery: a run of one process
never loads it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .corpus import Corpus, Vocab, read_corpus
from .errors import ConfigError, RnnTuiError, first_line

# How long a collective may wait for the other processes. It bounds how long the others take to
# notice a process that hangs (a dead one is noticed at once: its sockets close); it must be longer
# than anything the leader does alone between two collectives (a checkpoint write, a sample).
COLLECTIVE_TIMEOUT_S = float(os.environ.get("RNN_TUI_COLLECTIVE_TIMEOUT", "120"))

T = TypeVar("T")


class PeerLost(RnnTuiError):
    """Another process of the run died or stopped answering: the run cannot go on (or save)."""


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise ConfigError(f"{name}={os.environ.get(name)!r} is not a number (is this a torchrun launch?)") from None


class Ddp:
    """A ``Cluster`` (core/cluster.py) of ``world`` processes in one process group."""

    def __init__(self, rank: int, world: int, local_rank: int, local_world: int):
        self.rank, self.world = rank, world
        self.local_rank, self.local_world = local_rank, local_world
        self.parent = os.getppid()  # the launcher: if it dies, this process stops (and saves)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def orphaned(self) -> bool:
        return os.getppid() != self.parent

    # ---------------------------------------------------------------- the trainer's questions
    def rows(self, batch_size: int) -> slice:
        return slice(self.rank * batch_size, (self.rank + 1) * batch_size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None  # CPU: device_ids must be None
        return self._guard(lambda: DistributedDataParallel(model, device_ids=ids))

    def average(self, values: torch.Tensor) -> torch.Tensor:
        return self.total(values) / self.world

    def total(self, values: torch.Tensor) -> torch.Tensor:
        out = values.clone()
        self._guard(lambda: dist.all_reduce(out))
        return out

    def share(self, leader: Sequence[float], anyone: Sequence[float]) -> tuple[list[float], list[float]]:
        mine = list(leader) if self.leader else [0.0] * len(leader)
        buf = torch.tensor([*mine, *anyone], dtype=torch.float64)  # CPU: gloo, whatever the device
        self._guard(lambda: dist.all_reduce(buf))
        values = buf.tolist()
        return values[: len(leader)], values[len(leader) :]

    def gather(self, obj: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.world if self.leader else None
        self._guard(lambda: dist.gather_object(obj, out, dst=0))
        return out

    def exchange(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        self._guard(lambda: dist.all_gather_object(out, obj))
        return out

    def broadcast(self, obj: T) -> T:
        """The leader's ``obj`` on every process."""
        box = [obj if self.leader else None]
        self._guard(lambda: dist.broadcast_object_list(box, src=0))
        return box[0]  # type: ignore[return-value]

    def agree(self, error: str | None) -> str | None:
        """The first process's error (by rank), on every process; None when none had one."""
        errors = self.exchange(error)
        first = next((r for r, e in enumerate(errors) if e), None)
        if first is None:
            return None
        return errors[first] if first == 0 else f"process {first} of {self.world}: {errors[first]}"

    def failure(self, exc: BaseException) -> str | None:
        """What a failed collective means, or None if ``exc`` is not one."""
        if isinstance(exc, PeerLost):
            return str(exc)
        if isinstance(exc, dist.DistError) or any(w in str(exc) for w in ("gloo", "NCCL", "Connection closed")):
            return lost_message(exc)
        return None

    def close(self) -> None:
        try:
            if dist.is_initialized():
                dist.destroy_process_group()
        except Exception:  # the others may be gone already: nothing left to tidy
            pass

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (RuntimeError, ValueError) as exc:
            raise PeerLost(lost_message(exc)) from None


def lost_message(exc: BaseException) -> str:
    return f"another process of this run stopped or stopped answering ({first_line(exc, 160)})"


def join() -> Ddp:
    """Join the process group the environment describes (``init_process_group`` from env://)."""
    rank, world = env_int("RANK", 0), env_int("WORLD_SIZE", 1)
    local_rank, local_world = env_int("LOCAL_RANK", rank), env_int("LOCAL_WORLD_SIZE", world)
    cuda = torch.cuda.is_available()
    if cuda and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    except (RuntimeError, ValueError) as exc:
        raise PeerLost(f"could not join the other processes ({first_line(exc, 160)})") from None
    return Ddp(rank, world, local_rank, local_world)


def rank_device(name: str, cluster: Ddp) -> str:
    """The device of this process: its own GPU (``cuda:LOCAL_RANK``) on CUDA, else the CPU."""
    if name.startswith("cuda:"):
        raise ConfigError(f"--device {name} names one GPU; with several processes each takes its own (use cuda)")
    if name == "mps":
        raise ConfigError("--device mps cannot train on several processes (no distributed backend); use cpu")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return "cpu"
    gpus = torch.cuda.device_count()
    if cluster.local_world > gpus:
        where = "no CUDA GPU" if gpus == 0 else f"{gpus} CUDA GPU{'s' if gpus != 1 else ''}"
        raise ConfigError(
            f"{cluster.local_world} processes on this machine, and it has {where}: "
            f"one process per GPU (fewer processes, or --device cpu)"
        )
    return f"cuda:{cluster.local_rank}"


def cpu_threads(cluster: Ddp, cores: int) -> int:
    """Cores per process: N CPU processes on C cores share them, max(1, C // N) each."""
    return max(1, cores // max(1, cluster.local_world))


# ---------------------------------------------------------------- the corpus, once per machine


def shared_corpus(cluster: Ddp, path: Path, kind: str, vocab: Vocab | None, max_vocab: int | None = None) -> Corpus:
    """The corpus encoded once per machine, by its first process, into a file every process of
    that machine maps (read-only): eight processes on a 1 GB corpus use about 1 GB, not 8. The
    file is unlinked once all have mapped it, so nothing is left behind; the mappings keep it.

    Every process gets the same error if the corpus cannot be read (no process waits forever)."""
    error: str | None = None
    info: tuple[str, str, int, dict, tuple[int, int] | None] | None = None
    made: Path | None = None
    if cluster.local_rank == 0:
        try:
            made = _encoded_file()
            corpus = read_corpus(path, kind=kind, vocab=vocab, alloc=_file_alloc(made), max_vocab=max_vocab)
            info = (str(made), corpus.data.dtype.str, len(corpus.data), corpus.vocab.to_dict(), corpus.file_stamp)
            del corpus
        except RnnTuiError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot write the encoded corpus to {tempfile.gettempdir()}: {exc.strerror or exc}"
    found = cluster.exchange((error, info))
    first = cluster.rank - cluster.local_rank  # this machine's first process (ranks are contiguous per machine)
    failed = next((e for e, _ in found if e), None)
    mine = found[first][1]
    if failed is not None or mine is None:
        _remove(made)
        raise ConfigError(failed or "the corpus was not encoded")
    file, dtype, n, vocab_dict, stamp = mine
    data = np.memmap(file, dtype=np.dtype(dtype), mode="r", shape=(n,))
    cluster.exchange(None)  # every process has mapped it: the name can go
    _remove(made)
    return Corpus(path=Path(path).resolve(), vocab=Vocab.from_dict(vocab_dict), data=data, file_stamp=stamp)


def _encoded_file() -> Path:
    base = Path(tempfile.gettempdir()) / f"rnn-tui-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="corpus-", suffix=".bin", dir=base)
    os.close(fd)
    return Path(name)


def _file_alloc(file: Path) -> Callable[[int, Any], np.ndarray]:
    """An allocator that puts the encoded array in ``file`` (space reserved first: a full disk is
    an error now, not a crash when a page is written)."""

    def alloc(n: int, dtype: Any) -> np.ndarray:
        size = max(1, n) * np.dtype(dtype).itemsize
        with open(file, "r+b") as f:
            f.truncate(0)
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, size)
            else:  # macOS
                f.truncate(size)
        return np.memmap(file, dtype=dtype, mode="r+", shape=(max(1, n),))[:n]

    return alloc


def _remove(file: Path | None) -> None:
    if file is not None:
        try:
            file.unlink()
        except OSError:
            pass
