"""The processes a run trains on: one (``SOLO``), or a data-parallel group (``core/distributed.py``).

The trainer and the session ask their ``Cluster`` the few things data parallelism changes: which
rows of the striped batch are this process's, how to average the losses and sum an evaluation
over the processes, and how the processes agree on what the loop does next (the leader, process 0,
decides; see ``Session``). ``SOLO`` answers for one process and costs nothing: a run without
``--nproc`` never imports ``torch.distributed``'s launcher or joins a process group.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class Cluster(Protocol):
    rank: int  # this process, 0 .. world - 1; process 0 leads
    world: int
    local_rank: int  # this process on its machine (its GPU on CUDA)
    local_world: int  # processes on this machine

    @property
    def leader(self) -> bool: ...

    def rows(self, batch_size: int) -> slice:
        """This process's rows of the global striped batch (``batch_size`` rows per process)."""
        ...

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module training steps call: one whose backward averages the gradients."""
        ...

    def average(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over the processes (the same on every one)."""
        ...

    def total(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over the processes (the same on every one)."""
        ...

    def share(self, leader: Sequence[float], anyone: Sequence[float]) -> tuple[list[float], list[float]]:
        """The leader's ``leader`` values, and ``anyone`` summed over the processes (a flag any
        process may raise: a stop signal)."""
        ...

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj`` in rank order, on the leader; None on the others."""
        ...

    def exchange(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` in rank order, on every process."""
        ...

    def orphaned(self) -> bool:
        """Whether the launcher that started this process is gone (then it stops, and saves)."""
        ...

    def failure(self, exc: BaseException) -> str | None:
        """What ``exc`` means if it is a collective that failed (another process died), else None."""
        ...

    def close(self) -> None: ...


class Solo:
    """One process: every answer is its own."""

    rank = 0
    world = 1
    local_rank = 0
    local_world = 1
    leader = True

    def rows(self, batch_size: int) -> slice:
        return slice(0, batch_size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def average(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def total(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def share(self, leader: Sequence[float], anyone: Sequence[float]) -> tuple[list[float], list[float]]:
        return list(leader), list(anyone)

    def gather(self, obj: Any) -> list[Any] | None:
        return [obj]

    def exchange(self, obj: Any) -> list[Any]:
        return [obj]

    def orphaned(self) -> bool:
        return False

    def failure(self, exc: BaseException) -> str | None:
        return None

    def close(self) -> None:
        pass


SOLO: Cluster = Solo()


def launched() -> bool:
    """Whether this process is one of several that a launcher started (torchrun, ``--nproc``):
    read from the environment, without importing torch."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False
