"""The trainer: one object that owns the model, the optimiser and the data position.

Use it from a script::

    corpus = read_corpus("input.txt")
    trainer = Trainer(TrainConfig(max_steps=1000), corpus, run=RunDir.create("runs", "input"))
    for _ in range(100):
        trainer.train_step()
    print(trainer.collect())          # [StepRecord(step, loss, grad_norm, lr, skipped), ...]
    print(trainer.evaluate())         # validation loss, nats/char
    print(trainer.sample(200).text)
    trainer.save("manual")

``session.Session`` drives a trainer from a queue of commands and reports events; every host of a
trainer (the live app's process, a background trainer, headless mode) runs one through
``rnn_tui.host.serve.serve_session``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt_io
from .batches import StripedBatches, eval_rows, min_chars
from .cluster import SOLO, Cluster
from .config import TrainConfig, check_device
from .corpus import Corpus, Vocab
from .errors import (
    CheckpointError,
    ConfigError,
    OutOfMemory,
    RnnTuiError,
    first_line,
    is_out_of_memory,
    out_of_memory_advice,
    out_of_memory_as_error,
)
from .model import (
    CharRNN,
    ModelConfig,
    detach_state,
    parameter_count,
    state_from_tensors,
    state_tensors,
    training_bytes,
    zero_state,
)
from .optimizer import parameter_groups, regrouped, set_weight_decay
from .precision import (
    ModelProbe,
    Precision,
    apply_precision,
    choose_precision,
    cpu_has_bf16,
    loss_scaler,
    tf32_available,
)
from .runs import RunDir
from .sampling import Sample, generate
from .threads import ThreadTuner, usable_cores

EVAL_LOGITS = 8 * 2**20  # logits computed at once by an evaluation (x 4 bytes: 32 MB)


def pick_device(name: str) -> torch.device:
    check_device(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is available here (try --device auto or cpu)")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("--device mps: Apple's Metal backend is not available here")
    return torch.device(name)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this process now: the GPU's, or the machine's (Linux's MemAvailable)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(model_cfg: ModelConfig, batch: int, seq_len: int, device: torch.device) -> None:
    """Refuse, in one line, a model that cannot fit: better than being killed by the kernel after
    minutes of swapping (which also starves everything else on a shared machine)."""
    need = training_bytes(model_cfg, batch, seq_len)
    free = available_bytes(device)
    if free is not None and need > 0.9 * free:
        raise OutOfMemory(
            f"this model needs about {need / 2**30:,.1f} GB to train ({parameter_count(model_cfg):,} parameters, "
            f"with gradients, optimiser moments and activations) and {free / 2**30:,.1f} GB is free on {device}; "
            f"try a smaller --hidden, --layers or --batch-size"
        )


WARMUP_SHARE = 0.1  # of a time budget: the longest its warm-up may take
# A time budget holds the peak rate and decays over its last 30 %: the averaged weights
# (--ema-window) already smooth the noise a long decay would, and a 1-minute budget decayed over
# the whole minute ended 0.03 nats above one that held the peak for 70 % of it (issue 14).
BUDGET_DECAY_SHARE = 0.3
# ... and never trains at a higher rate than the open-ended schedule would at the same step, over
# --decay-steps or this many passes over the training text, whichever is longer: past them a small
# corpus is memorised, not learnt, and a budget that held its peak there ended ~0.01 nats above the
# open-ended run read at the same minute (2-5 minutes of Tiny Shakespeare, issue 14); a large
# corpus's budget is not cut short by it.
BUDGET_CAP_EPOCHS = 16


def decay_position(step: int, warmup_steps: int, total_steps: int) -> float:
    """How far (0 to 1) a cosine decay from the end of the warm-up to ``total_steps`` is at ``step``."""
    return min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))


def lr_at(step: int, cfg: TrainConfig, progress: float | None = None, cap_steps: int | None = None) -> float:
    """Linear warmup, then cosine decay to ``lr * min_lr_ratio`` over the run, then flat.

    The decay follows ``progress`` (0 to 1) when given: a time budget's share already trained
    (see ``Trainer.time_budgeted``); the rate then holds its peak until ``BUDGET_DECAY_SHARE`` of
    the budget is left, but stays at or below a cosine over ``cap_steps`` steps when given (see
    ``BUDGET_CAP_EPOCHS``). Otherwise it is a pure function of the step (over ``--max-steps``, else
    ``--decay-steps``), so a resumed run follows exactly the same schedule.
    With a time budget the warm-up also ends by ``WARMUP_SHARE`` of it: on a slow machine its
    steps could be the whole budget, which would then end at the peak rate, never decayed.
    """
    if progress is not None:
        t = min(1.0, max(0.0, progress))
        if cfg.warmup_steps and step < cfg.warmup_steps and t < WARMUP_SHARE:
            return cfg.lr * max((step + 1) / cfg.warmup_steps, t / WARMUP_SHARE)
        t = max(0.0, (t - (1 - BUDGET_DECAY_SHARE)) / BUDGET_DECAY_SHARE)
        if cap_steps:  # the same cosine: the lower rate is the further position along it
            t = max(t, decay_position(step, cfg.warmup_steps, cap_steps))
    elif cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    else:
        t = decay_position(step, cfg.warmup_steps, cfg.max_steps if cfg.max_steps else cfg.decay_steps)
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * t))


# The passes over the training text over which the dropout rises from --dropout to
# --late-dropout: by then a small text starts to be memorised. Side by side on one core, Goethe's
# Faust (0.5 MB) at 10 minutes (48 passes) reached 1.4896 with the rise against 1.5231 with 0.1
# throughout, equal at 3 minutes; a dropout of 0.3 from the start lost 0.03-0.05 in the first
# 5 minutes of Tiny Shakespeare (issue 14).
DROPOUT_RISE_EPOCHS = (10.0, 30.0)


def dropout_at(epochs: float, cfg: TrainConfig) -> float:
    """The dropout after ``epochs`` passes over the training text: ``--dropout``, rising linearly
    to ``--late-dropout`` over ``DROPOUT_RISE_EPOCHS`` when that is higher (never falling)."""
    start, end = DROPOUT_RISE_EPOCHS
    t = min(1.0, max(0.0, (epochs - start) / (end - start)))
    return cfg.dropout + max(0.0, cfg.late_dropout - cfg.dropout) * t


class StepRecord(NamedTuple):
    """One training step as ``collect`` reports it."""

    step: int
    loss: float
    grad_norm: float  # before clipping; inf or NaN on a step the loss scaler skipped
    lr: float
    skipped: bool = False  # fp16: the loss scaler skipped this update (its gradients overflowed)


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        corpus: Corpus,
        run: RunDir | None = None,
        device: str | None = None,
        precision: Precision | None = None,
        cluster: Cluster | None = None,
    ):
        """``precision`` None: chosen from ``cfg.precision`` (on CUDA by a probe of the model).

        ``cluster``: the processes training this run together (``core/distributed.py``); each
        one builds a ``Trainer`` with ``cfg.batch_size`` rows of the global striped batch."""
        cfg.validate()
        self.cfg = cfg
        self.cluster = cluster or SOLO
        world = self.cluster.world
        self.corpus = corpus
        self.vocab: Vocab = corpus.vocab
        self.run = run.ensure() if run is not None else None
        self.device = pick_device(device or cfg.device)
        # CPU threads: measured on the training steps themselves (core/threads.py), or as given
        # (N processes on one machine's C cores: max(1, C // N) each, and the tuner picks among fewer)
        cores = None if self.cluster.local_world == 1 else max(1, usable_cores() // self.cluster.local_world)
        self.thread_tuner = (
            ThreadTuner(torch.set_num_threads, cores=cores, fixed=cfg.threads) if self.device.type == "cpu" else None
        )
        torch.manual_seed(cfg.seed)
        self.sample_gen = torch.Generator().manual_seed(cfg.seed + 1)

        train, val = corpus.split(cfg.val_fraction)
        self.batches = StripedBatches(
            train, cfg.batch_size * world, cfg.seq_len, "training", rows=self.cluster.rows(cfg.batch_size)
        )
        if len(val) < 33:
            raise ConfigError(
                f"the validation split has {len(val)} characters; it needs at least 33 "
                f"(corpus has {len(corpus):,}; at least {min_chars(cfg.batch_size, cfg.seq_len) + 400:,} are advised)"
            )
        self.val_x, self.val_y = eval_rows(val, max_rows=64, max_chars=cfg.eval_chars or None)
        if world > 1:  # each process evaluates its share of the rows; the sums are added up
            share = -(-self.val_x.size(0) // world)
            mine = slice(self.cluster.rank * share, (self.cluster.rank + 1) * share)
            self.val_x, self.val_y = self.val_x[mine], self.val_y[mine]
        self.train_chars, self.val_chars = len(train), len(val)
        self.chars_per_step = cfg.batch_size * cfg.seq_len * world  # every process's, together

        self.model_cfg = ModelConfig(
            vocab_size=self.vocab.size,
            cell=cfg.cell,
            layers=cfg.layers,
            hidden=cfg.hidden,
            embed=cfg.embed,
            dropout=cfg.dropout,
        )
        check_memory(self.model_cfg, cfg.batch_size, cfg.seq_len, self.device)
        with out_of_memory_as_error():
            self.model = CharRNN(self.model_cfg).to(self.device)
            self.dropout = cfg.dropout  # set each step from the passes over the text (dropout_at)
            # before the precision's probe, so the probe tries the model as it will train
            self.model.head_in_fp32 = self.device.type == "cpu"  # see CharRNN.head_in_fp32
            # The averaged model: evaluations, samples and checkpoints' readers use it (see ema_decay).
            self.ema_model: CharRNN | None = None
            if cfg.ema_window > 0:
                self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
            self._params: list[torch.Tensor] = list(self.model.parameters())
            self._ema_params: list[torch.Tensor] = (
                list(self.ema_model.parameters()) if self.ema_model is not None else []
            )
            self.precision = precision or choose_precision(
                cfg.precision,
                self.device.type,
                ModelProbe(self.model, self.vocab.size, cfg.seq_len),
                tf32_available=tf32_available(self.device),
                cell=cfg.cell,
                cpu_bf16=self.device.type == "cpu" and cpu_has_bf16(),
            )
            apply_precision(self.precision)
            self.autocast_dtype = self.precision.autocast or torch.bfloat16
            self.autocast_on = self.precision.autocast is not None
            # With loss scaling the optimiser is fused: the scaler then hands it the overflow flag
            # on the device and it skips the update there. With any other optimiser the scaler
            # reads that flag back on the host every step (a sync that stalls a GPU's queue).
            fused = self.precision.loss_scaling or self.device.type == "cuda"
            self.optimizer_flags = {"fused": True, "foreach": None} if fused else {"fused": None, "foreach": True}
            self.optimizer = torch.optim.AdamW(
                parameter_groups(self.model, cfg.weight_decay),
                lr=cfg.lr,
                betas=(0.9, 0.99),
                fused=self.optimizer_flags["fused"],
                foreach=self.optimizer_flags["foreach"],
            )
            self.scaler = (
                loss_scaler(self.device.type, self.precision.init_scale) if self.precision.loss_scaling else None
            )
            self._one = torch.ones((), device=self.device)
            # What a training step calls: the model itself, or (several processes, ``distribute``)
            # DDP's wrapper, whose backward averages the gradients over the processes.
            self.train_model: torch.nn.Module = self.model

        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.tokens = 0
        self.best_val = math.inf
        self.last_val: float | None = None
        self.last_val_step = -1
        # Each rollback after a NaN/inf loss (session.py) lowers the learning rate by a factor;
        # it is part of the state, so a resumed run keeps the lower rate and continues exactly.
        self.lr_scale = 1.0
        # How much of a time budget's decay is done (0 to 1): the session advances it with the
        # training time, so the decay ends when the budget does whatever the machine's load.
        self.schedule_progress = 0.0
        # Training time of the whole run, resumed parts included (the session keeps it up to date
        # before each save), so a resumed run's clock and its curves against time go on from here.
        self.trained_s = 0.0
        self.start_notes: list[str] = []  # warnings the session says when it starts (a resume's)
        cores = usable_cores()
        if self.device.type == "cpu" and cfg.threads is not None and cfg.threads > cores:
            self.start_notes.append(
                f"--threads {cfg.threads} on {cores} cores: threads waiting for a core slow every step "
                "(leave --threads out and the trainer measures what is fastest)"
            )
        self.resumed_from: Path | None = None  # the checkpoint this trainer was loaded from
        with out_of_memory_as_error():
            self.hidden = zero_state(self.model_cfg, cfg.batch_size, self.device)
        # (step, loss, grad norm, lr, skipped) per step; the tensors stay on the device
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor, float, torch.Tensor | None]] = []
        # A resume that could not carry the hidden state over (another layout of the streams)
        self.resume_note: str | None = None
        if self.cluster.rank:  # the same weights everywhere (same seed), but each its own dropout
            torch.manual_seed(cfg.seed + 7919 * self.cluster.rank)

    def distribute(self) -> None:
        """Train through DDP's wrapper from now on (several processes). Called once every process
        has built and loaded its trainer: DDP's constructor is a collective."""
        if self.cluster.world > 1:
            self.train_model = self.cluster.wrap(self.model)

    # ------------------------------------------------------------------ training
    @property
    def time_budgeted(self) -> bool:
        """Whether the learning rate decays over training time (--max-minutes without --max-steps)."""
        return self.cfg.max_minutes is not None and self.cfg.max_steps is None

    @property
    def lr(self) -> float:
        if not self.time_budgeted:
            return lr_at(self.step, self.cfg) * self.lr_scale
        return lr_at(self.step, self.cfg, self.schedule_progress, self.budget_cap_steps) * self.lr_scale

    @property
    def budget_cap_steps(self) -> int:
        """The open-ended schedule's length a time budget's rate stays under (``BUDGET_CAP_EPOCHS``)."""
        return max(self.cfg.decay_steps, BUDGET_CAP_EPOCHS * len(self.batches))

    def ema_decay(self, step: int) -> float:
        """The averaged weights follow the last ``ema_window`` of the steps so far (a window that
        grows with the run): an average over a trajectory that wanders at a high learning rate is
        what a decayed learning rate would give, at every moment of an open-ended run."""
        return max(0.0, 1.0 - 1.0 / max(1.0, self.cfg.ema_window * step))

    @property
    def eval_model(self) -> CharRNN:
        """The model evaluations and samples read: the averaged weights when there are any."""
        return self.ema_model if self.ema_model is not None else self.model

    @property
    def epoch_progress(self) -> float:
        return self.epoch + self.batch_index / len(self.batches)

    def train_step(self) -> None:
        """One optimiser step on the next striped batch; the hidden state carries over, detached."""
        if self.batch_index == 0:
            self.hidden = zero_state(self.model_cfg, self.cfg.batch_size, self.device)
        x, y = self.batches.get(self.batch_index, self.batches.epoch_offset(self.epoch, self.cfg.seed))
        dropout = dropout_at(self.epoch_progress, self.cfg)
        if dropout != self.dropout:
            self.model.set_dropout(dropout)
            self.dropout = dropout
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        lr = self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_on):
            logits, state = self.train_model(x, self.hidden)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        scaler, skipped = self.scaler, None
        if scaler is None:
            loss.backward()
            gnorm = self.clip_gradients()
            self.optimizer.step()
        else:
            # Loss scaling (fp16): gradients are unscaled before clipping; the scaler skips an
            # update whose gradients overflowed and halves the scale (that is how it finds the
            # scale, not a divergence). Nothing here waits for the device: the fused optimiser
            # skips on the device, and whether it did (the scale went down) is read in collect().
            before = scaler.scale(self._one)
            scaler.scale(loss).backward()
            scaler.unscale_(self.optimizer)
            gnorm = self.clip_gradients()
            scaler.step(self.optimizer)
            scaler.update()
            skipped = scaler.scale(self._one) < before
        if self.ema_model is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self._ema_params, self._params, 1.0 - self.ema_decay(self.step + 1))
        # carried in fp32 whatever autocast computed it in (a lossless round trip from bf16), so a
        # checkpoint's state resumes in any precision
        self.hidden = detach_state(state, torch.float32)
        self.step += 1
        self.tokens += self.chars_per_step
        self.batch_index += 1
        if self.batch_index == len(self.batches):
            self.batch_index = 0
            self.epoch += 1
        # Losses stay on the device until collect(): no host sync per step.
        self._pending.append((self.step, loss.detach(), gnorm.detach(), lr, skipped))

    def clip_gradients(self) -> torch.Tensor:
        """Clip to ``--grad-clip`` (0: no clipping); the total norm before clipping, on the device."""
        limit = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), limit, foreach=True)

    def collect(self) -> list[StepRecord]:
        """Each step since the last call, fetched from the device in one sync."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        # each process's own loss, averaged: the loss of the global batch
        losses = self.cluster.average(torch.stack([p[1] for p in pending]).float()).cpu().tolist()
        norms = torch.stack([p[2] for p in pending]).float().cpu().tolist()
        flags = [p[4] for p in pending if p[4] is not None]  # with loss scaling: every step has one
        skipped = torch.stack(flags).cpu().tolist() if len(flags) == len(pending) else [False] * len(pending)
        return [
            StepRecord(p[0], loss, norm, p[3], bool(skip))
            for p, loss, norm, skip in zip(pending, losses, norms, skipped)
        ]

    # ------------------------------------------------------------------ evaluation and sampling
    @torch.no_grad()
    def evaluate(self, chunk: int = 512, on_progress: Callable[[float], None] | None = None) -> float:
        """Mean cross-entropy (nats/char) over the validation split, state carried along each row;
        ``on_progress`` is told the fraction done after each chunk.

        With several processes each evaluates its share of the rows and the sums are added up:
        the same loss as one process, in a fraction of the time. Columns are taken ``chunk`` at a
        time, fewer for a big vocabulary: each chunk's logits are at most ``EVAL_LOGITS`` numbers
        (32 MB in float32; with the softmax cross-entropy's copies, about 100 MB), whatever the
        vocabulary."""
        rows = self.val_x.size(0)
        chunk = max(1, min(chunk, EVAL_LOGITS // max(1, rows * self.vocab.size)))
        model = self.eval_model
        # A GPU evaluates in its training precision; a CPU in fp32, as it samples: the loss is that
        # of the weights a checkpoint holds, measured the same way whatever the CPU (it costs
        # little there, evaluations are a small share of the time and outside the training time).
        eval_autocast = self.autocast_on and self.device.type != "cpu"
        was_training = model.training
        model.eval()
        try:
            total, count, state = 0.0, 0, None
            x_all, y_all = self.val_x.to(self.device), self.val_y.to(self.device)
            columns = x_all.size(1) if x_all.size(0) else 0  # a process may have no rows of its own
            for a in range(0, columns, chunk):
                if on_progress is not None:
                    on_progress(a / columns)
                x, y = x_all[:, a : a + chunk], y_all[:, a : a + chunk]
                with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=eval_autocast):
                    logits, state = model(x, state)
                total += F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), reduction="sum"
                ).item()
                count += y.numel()
        finally:
            model.train(was_training)
        if self.cluster.world > 1:
            total, count = self.cluster.total(torch.tensor([total, count], dtype=torch.float64)).tolist()
        val = total / count
        self.last_val = val
        self.last_val_step = self.step
        if val < self.best_val:
            self.best_val = val
        return val

    @torch.no_grad()
    def sample(
        self,
        length: int = 300,
        temperature: float | None = None,
        top_k: int | None = None,
        prime: str | None = None,
        seed: int | None = None,
        record: int = 0,
    ) -> Sample:
        """Text from the current weights; neither the training RNG nor its hidden state moves.

        Always in fp32, whatever the training precision (no autocast here): a sample reads the
        fp32 weights the optimiser keeps, with its own generator."""
        return generate(
            self.eval_model,
            self.vocab,
            length,
            temperature=self.cfg.temperature if temperature is None else temperature,
            top_k=self.cfg.top_k if top_k is None else top_k,
            prime=self.cfg.prime if prime is None else prime,
            seed=seed,
            record=record,
            generator=None if seed is not None else self.sample_gen,
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """This process's training state (its own rows' hidden state and RNG): a rollback point;
        ``checkpoint_state`` adds the other processes' for a checkpoint."""
        rng = {"torch": torch.get_rng_state(), "sample": self.sample_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": ckpt_io.FORMAT,
            "config": self.cfg.to_dict(),
            "model_config": self.model_cfg.to_dict(),
            "vocab": self.vocab.to_dict(),
            "corpus": str(self.corpus.path) if self.corpus.path else None,
            "model": self.model.state_dict(),
            **({"ema_model": self.ema_model.state_dict()} if self.ema_model is not None else {}),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "tokens": self.tokens,
            "best_val": self.best_val,
            "last_val": self.last_val,
            "lr_scale": self.lr_scale,
            "schedule_progress": self.schedule_progress,
            "trained_s": self.trained_s,
            "hidden": [t.detach().cpu() for t in state_tensors(self.hidden)],
            "rng": rng,
            "world_size": self.cluster.world,
            "batches_per_epoch": len(self.batches),
            "precision": self.precision.name,
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            "saved_at": time.time(),
        }

    def checkpoint_state(self) -> dict | None:
        """The state a checkpoint holds: with several processes, every process's hidden state
        (their rows side by side: the layout one process of the global batch has) and RNG
        states, on the leader; None on the others (only the leader writes)."""
        state = self.state_dict()
        if self.cluster.world == 1:
            return state
        parts = self.cluster.gather((state["hidden"], state["rng"]))
        if parts is None:
            return None
        state["hidden"] = [torch.cat([part[0][i] for part in parts], dim=1) for i in range(len(state["hidden"]))]
        state["rng_ranks"] = [part[1] for part in parts]
        return state

    def load_state_dict(self, ck: dict, own: bool = False) -> None:
        """Continue exactly where ``ck`` stopped (same model, data position, RNG and optimiser).

        ``own``: ``ck`` is this process's rollback point (``state_dict``), not a checkpoint."""
        theirs = ck.get("model_config", {})
        ours = self.model_cfg.to_dict()
        # dropout has no weights: a resumed run may change it
        diff = [f"{k} {theirs.get(k)!r} vs {ours[k]!r}" for k in ours if k != "dropout" and theirs.get(k) != ours[k]]
        if diff:
            raise CheckpointError("checkpoint does not match this model: " + ", ".join(diff))
        try:
            self.model.load_state_dict(ck["model"])
            if self.ema_model is not None:  # a checkpoint without averaged weights starts them afresh
                self.ema_model.load_state_dict(ck.get("ema_model", ck["model"]))
            self.optimizer.load_state_dict(regrouped(ck["optimizer"], self.model))
            set_weight_decay(self.optimizer, self.cfg.weight_decay)  # the saved settings yield to this run's
            for group in self.optimizer.param_groups:
                group.update(self.optimizer_flags)  # fused or not is this device's and precision's choice
            for p in self.model.parameters():  # a damaged file could fail only at the first step
                for key, value in self.optimizer.state.get(p, {}).items():
                    if key != "step" and (not isinstance(value, torch.Tensor) or value.shape != p.shape):
                        raise ValueError(f"optimizer state {key} has the wrong shape")
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise unloadable(exc, "checkpoint weights do not fit this model") from None
        try:
            self.step = int(ck["step"])
            self.epoch = int(ck["epoch"])
            self.batch_index = self._position(int(ck["batch_index"]), ck.get("batches_per_epoch"))
            self.tokens = int(ck.get("tokens", 0))
            self.best_val = float(ck.get("best_val", math.inf))
            last_val = ck.get("last_val")
            self.last_val = None if last_val is None else float(last_val)
            self.lr_scale = float(ck.get("lr_scale", 1.0))
            self.schedule_progress = min(1.0, max(0.0, float(ck.get("schedule_progress", 0.0))))
            self.trained_s = float(ck.get("trained_s", 0.0))
            self._load_hidden(ck, own)
            rng = ck.get("rng", {})
            ranks = ck.get("rng_ranks")
            if not own and self.cluster.world > 1:  # each process its own generator
                if isinstance(ranks, list) and len(ranks) == self.cluster.world:
                    rng = ranks[self.cluster.rank]
                elif not self.cluster.leader:
                    rng = {}  # another number of processes: the others keep their own seeds
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
            if "sample" in rng:
                self.sample_gen.set_state(rng["sample"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            # The loss scale found so far, for an exact continuation; a checkpoint of another
            # precision has none, and this run's scaler starts afresh.
            if self.scaler is not None and "scaler" in ck:
                self.scaler.load_state_dict(ck["scaler"])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise unloadable(exc, "checkpoint is damaged") from None

    def _position(self, batch_index: int, saved_per_epoch: object) -> int:
        """The batch to continue from: the same one, or, when the streams were cut another way
        (another global batch), the same share of the epoch."""
        if isinstance(saved_per_epoch, int) and saved_per_epoch > 0 and saved_per_epoch != len(self.batches):
            return min(len(self.batches) - 1, batch_index * len(self.batches) // saved_per_epoch)
        return batch_index % len(self.batches)

    def _load_hidden(self, ck: dict, own: bool) -> None:
        """The carried hidden state: this process's rows of the checkpoint's global batch when the
        streams are cut the same way; else a zero state, said in ``resume_note``."""
        # fp32 whatever the checkpoint's precision (one from a bf16 run before the state was kept in fp32)
        hidden = [t.to(self.device, torch.float32) for t in ck["hidden"]]
        layers, rows, width = self.cfg.layers, self.cfg.batch_size, self.cfg.hidden
        if own:
            if all(tuple(h.shape) == (layers, rows, width) for h in hidden):
                self.hidden = state_from_tensors(hidden, self.cfg.cell)
            return
        world, saved_world = self.cluster.world, int(ck.get("world_size", 1))
        saved_rows = hidden[0].size(1) if hidden else 0
        fits = len(hidden) == len(state_tensors(self.hidden)) and all(
            tuple(h.shape) == (layers, rows * world, width) for h in hidden
        )
        if fits:
            mine = self.cluster.rows(rows)
            self.hidden = state_from_tensors([h[:, mine].contiguous() for h in hidden], self.cfg.cell)
        # a resumed run may change the batch size: its rows then start from a zero state
        if saved_world != world:
            ran = f"{saved_world} process{'es' if saved_world > 1 else ''}"
            now = f"{world} process{'es' if world > 1 else ''}"
            self.resume_note = f"this run trained on {ran} and resumes on {now}: " + (
                f"the global batch is the same ({rows * world} streams), so the hidden state carries on"
                if fits
                else f"the stripes are cut anew for a global batch of {rows * world} streams "
                f"(was {saved_rows}) and the hidden state starts from zero"
            )

    def snapshot(self) -> dict:
        """The full training state copied to CPU memory: a rollback point (see ``restore``).

        A copy, not references: the optimiser updates its moments (and its step counts) in place.
        """
        return _copy_to_cpu(self.state_dict())

    def restore(self, snap: dict) -> None:
        """Go back to a ``snapshot``: weights, optimiser, data position, RNG and hidden state.

        The best validation loss is kept (best.pt on disk may be newer than the snapshot), and
        the steps not yet collected are dropped. ``snap`` stays usable for another restore.
        """
        best = self.best_val
        self.load_state_dict(_copy_to_cpu(snap), own=True)
        self.best_val = min(best, self.best_val)
        self._pending.clear()

    def weights_finite(self) -> bool:
        """One host sync: every parameter is a finite number (checked before each save)."""
        with torch.no_grad():
            return bool(torch.stack([torch.isfinite(p).all() for p in (*self._params, *self._ema_params)]).all())

    def save(self, reason: str = "manual", path: str | Path | None = None) -> Path | None:
        """Write the full training state atomically; to the run's latest.pt unless ``path`` is given.

        With several processes every one calls this (the state is gathered) and the leader
        writes; the others get None."""
        state = self.checkpoint_state()
        if state is None:
            return None
        if path is None:
            if self.run is None:
                raise CheckpointError("this trainer has no run directory; give a path to save to")
            path = self.run.best if reason == "best" else self.run.latest
        return ckpt_io.save_atomic(state, path)

    def config_record(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "model": self.model_cfg.to_dict(),
            "vocab_kind": self.vocab.kind,
            "vocab_size": self.vocab.size,
            "corpus": str(self.corpus.path) if self.corpus.path else None,
            "n_params": self.model.num_params(),
            "train_chars": self.train_chars,
            "val_chars": self.val_chars,
            "batches_per_epoch": len(self.batches),
            "device": str(self.device),
            "precision": self.precision.record(),
            "world_size": self.cluster.world,
        }


def unloadable(exc: BaseException, what: str) -> RnnTuiError:
    """Why a checkpoint could not be loaded: running out of memory is not a damaged file."""
    if is_out_of_memory(exc):
        return OutOfMemory(out_of_memory_advice(exc))
    return CheckpointError(f"{what} ({first_line(exc, 160)})")


def _copy_to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _copy_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy_to_cpu(v) for v in obj)
    return obj


def load_for_inference(path: str | Path, device: str = "cpu") -> tuple[CharRNN, Vocab, dict]:
    """Model, vocabulary and the raw checkpoint, on ``device`` (GPU checkpoints load on a CPU)."""
    dev = pick_device(device)
    ck = ckpt_io.load(path, map_location=dev)
    try:
        vocab = Vocab.from_dict(ck["vocab"])
        mcfg = ModelConfig(**ck["model_config"])
        model = CharRNN(mcfg).to(dev)
        model.load_state_dict(ck.get("ema_model", ck["model"]))  # the averaged weights, when kept
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is damaged or from another version ({str(exc).splitlines()[0][:120]})") from None
    model.eval()
    return model, vocab, ck
