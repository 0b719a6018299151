"""Every training option in one dataclass: the CLI builds it, the run directory stores it."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from .errors import ConfigError

CELLS = ("lstm", "gru", "rnn")  # spelled here, not imported from .model: no torch at start-up


def check_device(name: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps (got {name!r})")
    return name


@dataclass
class TrainConfig:
    """The defaults were measured on Tiny Shakespeare on a 2-core CPU (see README, "How fast it
    learns"): 2x256 with dropout 0.1 and lr 4e-3 decaying over ~10 minutes beat smaller and wider
    models, no dropout and dropout 0.2-0.25 at the 3- and 10-minute marks."""

    # data
    vocab: str = "char"  # "char" or "byte"
    val_fraction: float = 0.1
    batch_size: int = 32
    seq_len: int = 100
    # model
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.1
    # optimisation
    lr: float = 4e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    decay_steps: int = 5000  # cosine decay length without --max-steps/--max-minutes (~10 min on 2 CPU cores)
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 1337
    # cadence
    eval_every: int = 250  # steps
    eval_every_minutes: float = 1.0  # ... or this much training time without an evaluation (0: off)
    eval_chars: int = 250_000  # validation characters per evaluation (0: all); Tiny Shakespeare has 111k
    save_every_minutes: float = 2.0
    sample_every_s: float = 15.0
    sample_length: int = 300
    temperature: float = 0.8
    top_k: int = 0
    prime: str = ""
    # limits and device
    max_steps: int | None = None
    max_minutes: float | None = None
    device: str = "auto"
    threads: int | None = None

    def validate(self) -> TrainConfig:
        def positive(name: str) -> None:
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive (got {getattr(self, name)})")

        for name in (
            "batch_size",
            "seq_len",
            "layers",
            "hidden",
            "embed",
            "lr",
            "eval_every",
            "sample_length",
            "decay_steps",
        ):
            positive(name)
        if self.vocab not in ("char", "byte"):
            raise ConfigError(f"vocabulary must be char or byte (got {self.vocab!r})")
        if self.cell not in CELLS:
            raise ConfigError(f"--cell must be one of {', '.join(CELLS)} (got {self.cell!r})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"--val-fraction must be in (0, 0.5) (got {self.val_fraction})")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0 (got {self.temperature})")
        if self.top_k < 0:
            raise ConfigError(f"--top-k must be >= 0 (got {self.top_k})")
        if self.grad_clip < 0:
            raise ConfigError(f"--grad-clip must be >= 0 (got {self.grad_clip})")
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0 (got {self.warmup_steps})")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"--max-steps must be positive (got {self.max_steps})")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"--max-minutes must be positive (got {self.max_minutes})")
        check_device(self.device)
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"--threads must be positive (got {self.threads})")
        if self.save_every_minutes <= 0:
            raise ConfigError(f"--save-every-minutes must be positive (got {self.save_every_minutes})")
        if self.sample_every_s <= 0:
            raise ConfigError(f"--sample-every must be positive (got {self.sample_every_s})")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0 (got {self.weight_decay})")
        if not (self.eval_every_minutes >= 0 and math.isfinite(self.eval_every_minutes)):
            raise ConfigError(f"--eval-every-minutes must be >= 0 (got {self.eval_every_minutes})")
        if self.eval_chars < 0:
            raise ConfigError(f"--eval-chars must be >= 0 (got {self.eval_chars})")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    # Options that define the model and data layout: a resumed run must keep them.
    ARCHITECTURE = ("vocab", "cell", "layers", "hidden", "embed")
