"""The trainer's interface to any front end: commands in, events out.

Both are small frozen dataclasses of plain values (and numpy arrays for hidden states), so they
cross a thread queue or a process pipe unchanged. A front end sends ``Command``s and receives
``Event``s; it never calls into the model directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

# ---------------------------------------------------------------- commands (front end -> trainer)


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class SampleNow:
    """Sample now, with the trainer's sampling settings: the ones every screen shows."""


@dataclass(frozen=True)
class SaveNow:
    pass


@dataclass(frozen=True)
class SetSampling:
    """Sampling settings for the next samples, for every screen; ``None`` leaves a setting
    unchanged. ``ticket`` (the sender's choice) comes back in the ``SamplingChanged`` that
    answers this command, so a screen can tell the echo of its newest key press from older ones."""

    temperature: float | None = None
    top_k: int | None = None
    prime: str | None = None
    ticket: str = ""


@dataclass(frozen=True)
class Stop:
    """Stop training; with ``save`` the trainer writes ``latest.pt`` first."""

    save: bool = True


EXPLORE_MAX_CHARS = 10_000  # the longest probe text; core/explore.py may shorten it for a big model


@dataclass(frozen=True)
class Explore:
    """Compute the explorer's views (``rnn_tui/core/explore.py``) from the current weights, on
    ``text`` (``None``: a passage of the validation split), at most ``chars`` characters long.
    ``refresh`` marks a timer's request, which the trainer may put off to stay within its budget
    of training time. ``asker`` is set by the control server to route the answer to the viewer
    that asked ("" is the trainer's own front end)."""

    text: str | None = None
    chars: int = 2000
    refresh: bool = False
    asker: str = ""

    def __post_init__(self) -> None:
        if not 2 <= self.chars <= EXPLORE_MAX_CHARS:
            raise ValueError(f"chars must be between 2 and {EXPLORE_MAX_CHARS:,} (got {self.chars})")
        if self.text is not None and not 2 <= len(self.text) <= EXPLORE_MAX_CHARS:
            raise ValueError(f"text must have between 2 and {EXPLORE_MAX_CHARS:,} characters")
        if len(self.asker) > 64:
            raise ValueError("asker is longer than 64 characters")


Command = Union[Pause, Resume, SampleNow, SaveNow, SetSampling, Stop, Explore]

# ---------------------------------------------------------------- events (trainer -> front end)

STATES = ("starting", "training", "paused", "evaluating", "sampling", "saving", "finished", "failed")


@dataclass(frozen=True)
class Started:
    run_dir: str
    corpus: str
    config: dict
    vocab_size: int
    n_params: int
    device: str
    train_chars: int
    val_chars: int
    batches_per_epoch: int
    step: int  # > 0 when resumed
    best_val: float | None
    last_val: float | None
    max_steps: int | None
    max_minutes: float | None
    # what the trainer computes in, and why: {"name", "label", "reason", "detail"} (core/precision.py)
    precision: dict = field(default_factory=dict)
    world_size: int = 1  # data-parallel processes training together (--nproc, torchrun)
    threads: int | None = None  # torch's CPU threads, when training on the CPU


@dataclass(frozen=True)
class Progress:
    """Training steps since the previous ``Progress`` (sent a few times a second, not per step)."""

    steps: list[int]
    losses: list[float]
    step: int
    epoch: float  # fractional epochs done
    lr: float
    grad_norm: float
    chars_per_s: float  # over the steps in this message, training time only
    elapsed_s: float  # wall time of this session's training (what --max-minutes counts)
    tokens: int  # characters trained on so far (this run, including resumed part)
    gpu_mem_mb: float | None = None
    total_s: float = 0.0  # the run's training time, resumed parts included
    skipped_steps: int = 0  # updates the fp16 loss scaler skipped so far (overflowed gradients: normal)
    threads: int | None = None  # CPU threads training now (chosen by measurement unless --threads)
    # every GPU of the run, from NVML (core/gpus.py); None without CUDA
    gpus: list[dict] | None = None


@dataclass(frozen=True)
class Evaluated:
    step: int
    val_loss: float
    best_val: float
    is_best: bool
    seconds: float


@dataclass(frozen=True)
class Sampled:
    step: int
    prime: str
    text: str
    temperature: float
    top_k: int
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Probed:
    """Hidden states while reading ``text``: ``h`` and ``c`` shaped (layers, len(text), hidden)."""

    step: int
    text: str
    h: np.ndarray
    c: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Explored:
    """The explorer's views for one probe (answer to ``Explore``; see ``core/explore.py``).

    ``text`` has one character per position; ``h`` and ``c`` are shaped (layers, len(text), hidden)
    (``c`` raw, LSTM only); ``top_chars`` holds ``top_probs.shape[1]`` guesses per position for
    the character after it; ``p_next[t]`` is the probability given to ``text[t + 1]``;
    ``saturation`` is (layers, 3 gates: input/forget/output, 2: below 0.1/above 0.9, hidden)."""

    asker: str
    step: int
    text: str
    cell: str
    h: np.ndarray
    c: np.ndarray | None
    top_chars: str
    top_probs: np.ndarray
    p_next: np.ndarray
    loss: float
    cells: list[dict]  # {"property", "layer", "state", "unit", "r"}, best per property, highest |r| first
    saturation: np.ndarray | None
    memory_k: list[int]
    memory_grad: list[float]
    memory_flip: list[float]
    seq_len: int
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class ExploreFailed:
    """The explorer's views could not be computed for ``asker`` (out of memory, say)."""

    asker: str
    reason: str


@dataclass(frozen=True)
class History:
    """The loss curves logged so far (metrics.jsonl): sent when a resumed run starts, and to a
    viewer that joins late, before the live ``Progress`` events that follow them."""

    steps: list[int]
    losses: list[float]
    val_steps: list[int]
    val_losses: list[float]


@dataclass(frozen=True)
class StateChanged:
    state: str
    detail: str = ""  # more about it: "final" (the trainer is stopping), how far it is ("final 40%")


@dataclass(frozen=True)
class SamplingChanged:
    """The trainer's sampling settings (the one truth every screen shows): sent at the start
    and after every ``SetSampling``, whose ``ticket`` it carries ("" for none)."""

    temperature: float
    top_k: int
    prime: str
    ticket: str = ""


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    reason: str  # "manual", "periodic", "best", "final"; "resumed": the checkpoint a resumed run went on from


@dataclass(frozen=True)
class Notice:
    level: str  # "info", "warning", "error"
    message: str


@dataclass(frozen=True)
class Finished:
    # "max-steps", "max-minutes", "stopped", "error"; "refused": bad input, never started;
    # "crashed": another process of a data-parallel run died (nothing could be saved)
    reason: str
    step: int
    checkpoint: str | None
    error: str | None = None


Event = Union[
    Started,
    Progress,
    History,
    Evaluated,
    Sampled,
    Probed,
    Explored,
    ExploreFailed,
    StateChanged,
    SamplingChanged,
    CheckpointSaved,
    Notice,
    Finished,
]
