"""Every training option in one dataclass: the CLI builds it, the run directory stores it."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from .errors import ConfigError

CELLS = ("lstm", "gru", "rnn")  # spelled here, not imported from .model: no torch at start-up
PRECISIONS = ("auto", "bf16", "fp16", "fp32")  # what each means: core/precision.py


MAX_PRIME = 10_000  # characters of prime text: what a command on the control channel may carry too
MAX_VOCAB = 1_114_112  # every Unicode code point


def option_name(field: str) -> str:
    return "--" + {"sample_every_s": "sample-every"}.get(field, field.replace("_", "-"))


@dataclass(frozen=True)
class Range:
    """The values an option accepts: a whole number or a finite number between two bounds."""

    kind: type  # int or float
    low: float
    high: float
    low_open: bool = False  # the low bound itself is excluded
    high_open: bool = False

    def __str__(self) -> str:
        def num(x: float) -> str:
            return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"

        return f"{'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}{')' if self.high_open else ']'}"

    def contains(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, option: str, value: object) -> None:
        if not self.contains(value):
            what = "a whole number" if self.kind is int else "a number"
            raise ConfigError(f"{option} must be {what} in {self} (got {value!r})")


# Every numeric option's accepted values. The bounds keep a run from crashing later (a negative
# seed at the first epoch, a NaN learning rate at the first step) or from asking for absurd
# resources (--threads 10000, --hidden 100000); they are wide enough for any real run.
RANGES: dict[str, Range] = {
    "val_fraction": Range(float, 0.0, 0.5, low_open=True, high_open=True),
    "batch_size": Range(int, 1, 4096),
    "seq_len": Range(int, 1, 10_000),
    "layers": Range(int, 1, 16),
    "hidden": Range(int, 1, 8192),
    "embed": Range(int, 1, 8192),
    "dropout": Range(float, 0.0, 1.0, high_open=True),
    "late_dropout": Range(float, 0.0, 1.0, high_open=True),
    "lr": Range(float, 0.0, 10.0, low_open=True),
    "min_lr_ratio": Range(float, 0.0, 1.0),
    "warmup_steps": Range(int, 0, 10**9),
    "decay_steps": Range(int, 1, 10**12),
    "weight_decay": Range(float, 0.0, 10.0),
    "grad_clip": Range(float, 0.0, 1e6),
    "seed": Range(int, 0, 2**32 - 2),  # numpy wants a non-negative seed; the sampler uses seed + 1
    "eval_every": Range(int, 1, 10**12),
    "eval_every_minutes": Range(float, 0.0, 1e6),  # 0: off
    "eval_chars": Range(int, 0, 10**12),
    "save_every_minutes": Range(float, 0.0, 1e6, low_open=True),
    "sample_every_s": Range(float, 0.0, 1e9, low_open=True),
    "sample_length": Range(int, 1, 1_000_000),
    "temperature": Range(float, 0.0, 10.0),
    "top_k": Range(int, 0, MAX_VOCAB),
    "max_vocab": Range(int, 2, MAX_VOCAB),
    "max_steps": Range(int, 1, 10**12),
    "max_minutes": Range(float, 0.0, 1e7, low_open=True),
    "threads": Range(int, 1, 1024),
    "ema_window": Range(float, 0.0, 1.0),
}
OPTIONAL = {"max_steps", "max_minutes", "threads"}  # None: no limit, or all cores


def check_prime(prime: object) -> str:
    if not isinstance(prime, str) or len(prime) > MAX_PRIME:
        shown = f"{len(prime):,} characters" if isinstance(prime, str) else repr(prime)
        raise ConfigError(f"--prime must be text of at most {MAX_PRIME:,} characters (got {shown})")
    return prime


def check_device(name: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps (got {name!r})")
    return name


@dataclass
class TrainConfig:
    """The defaults were measured on Tiny Shakespeare on a 2-core CPU (see README, "How fast it
    learns"): 2x256 with dropout 0.1 beat smaller and wider models, no dropout and dropout
    0.2-0.25 at the 3- and 10-minute marks. Sequences of 50 (not char-rnn's 100) and lr 6e-3 (not
    4e-3) learn more per minute (issue 14): twice the updates for the same characters, each a
    little faster on the CPU (the activations kept for backward stay in cache), with the carried
    state still giving unbounded context; the decay spans the same characters as before. The
    dropout rises to ``late_dropout`` from the 10th to the 30th pass over the text: a fast machine
    reads a small text dozens of times in minutes (issue 14; see trainer.dropout_at). A weight
    decay of 0.1 on the weight matrices (not the biases: core/optimizer.py) learns more in every
    minute past the first: 0.03 and 0.05 nats lower after 3 and 5 minutes' worth of steps (issue 14)."""

    # data
    vocab: str = "char"  # "char" or "byte"
    val_fraction: float = 0.1
    batch_size: int = 32
    seq_len: int = 50
    # model
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.1
    # rises to this from the 10th to the 30th pass over the text (see trainer.dropout_at)
    late_dropout: float = 0.3
    # optimisation
    lr: float = 6e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    decay_steps: int = 10_000  # cosine decay length without --max-steps/--max-minutes (16M characters)
    weight_decay: float = 0.1  # AdamW, on the weight matrices only (core/optimizer.py)
    ema_window: float = 0.1  # evaluate and sample an average of the weights over this fraction of the steps (0: off)
    grad_clip: float = 5.0
    seed: int = 1337
    # cadence
    eval_every: int = 500  # steps (800,000 characters at the default batch and sequence)
    eval_every_minutes: float = 1.0  # ... or this much training time without an evaluation (0: off)
    eval_chars: int = 250_000  # validation characters per evaluation (0: all); Tiny Shakespeare has 111k
    save_every_minutes: float = 2.0
    sample_every_s: float = 15.0
    sample_length: int = 300
    temperature: float = 0.8
    top_k: int = 0
    prime: str = ""
    # a character vocabulary larger than this is refused (--bytes has 256 symbols): the model's
    # input and output layers, and the memory of every step, grow with it
    max_vocab: int = 20_000
    # limits and device
    max_steps: int | None = None
    max_minutes: float | None = None
    device: str = "auto"
    precision: str = "auto"  # on CUDA: bf16, else fp16 with loss scaling, else fp32, by a probe at start
    threads: int | None = None

    def validate(self) -> TrainConfig:
        """Every option in its range (``RANGES``), or a ``ConfigError`` naming the first that is not.

        The one place options are checked: the command line, a resumed checkpoint's stored options
        and the trainer all come through here. NaN and infinities are out of every range."""
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            allowed.check(option_name(name), value)
        if self.vocab not in ("char", "byte"):
            raise ConfigError(f"vocabulary must be char or byte (got {self.vocab!r})")
        if self.cell not in CELLS:
            raise ConfigError(f"--cell must be one of {', '.join(CELLS)} (got {self.cell!r})")
        if not isinstance(self.device, str):
            raise ConfigError(f"--device must be a device name (got {self.device!r})")
        check_device(self.device)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        check_prime(self.prime)
        if self.late_dropout < self.dropout:  # it would be ignored: the dropout only rises
            raise ConfigError(
                f"--late-dropout ({self.late_dropout:g}) must be at least --dropout ({self.dropout:g}): "
                "the dropout only rises (give --dropout alone for a fixed one)"
            )
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def fixed_dropout_when_alone(overrides: dict) -> dict:
        """``overrides`` with ``late_dropout`` equal to ``dropout`` when only the dropout is given:
        ``--dropout P`` alone is the dropout throughout, as a char-rnn user means it."""
        if "dropout" in overrides and "late_dropout" not in overrides:
            return {**overrides, "late_dropout": overrides["dropout"]}
        return overrides

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        # a run saved before the rise has no late dropout: it keeps its dropout fixed
        return cls(**cls.fixed_dropout_when_alone({k: v for k, v in d.items() if k in names}))

    # Options that define the model and data layout: a resumed run must keep them.
    ARCHITECTURE = ("vocab", "cell", "layers", "hidden", "embed")
