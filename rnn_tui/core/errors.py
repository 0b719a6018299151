"""The one exception type users see as a clean one-line message (no traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class RnnTuiError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class CorpusError(RnnTuiError):
    pass


class CheckpointError(RnnTuiError):
    pass


class ConfigError(RnnTuiError):
    pass


class OutOfMemory(RnnTuiError):
    """The device ran out of memory: one line of advice (the run's last checkpoint is kept)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:limit]


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA), or a RuntimeError that says so (older torch, MPS, CPU)."""
    return "OutOfMemory" in type(exc).__name__ or "out of memory" in first_line(exc).lower()


def out_of_memory_advice(exc: BaseException) -> str:
    """The one line shown for running out of memory, at start or in the middle of a run."""
    return (
        f"out of memory ({first_line(exc)}); try a smaller --batch-size, --seq-len or --hidden "
        f"(the last checkpoint is kept)"
    )


@contextmanager
def out_of_memory_as_error() -> Iterator[None]:
    """Out of memory inside becomes ``OutOfMemory``: a run that cannot start says why in one line."""
    try:
        yield
    except Exception as exc:
        if is_out_of_memory(exc):
            raise OutOfMemory(out_of_memory_advice(exc)) from None
        raise
