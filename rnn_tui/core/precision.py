"""Which floating-point precision the trainer runs in, chosen by what works on this machine.

On CUDA, ``auto`` tries the model itself, once at start (``ModelProbe``: one forward and backward
on a small batch of the real model shape): bf16 autocast if it runs and stays finite; else fp16
autocast with loss scaling (``torch.amp.GradScaler``), which cuDNN has run for LSTMs for years;
else fp32, with TF32 matmuls on GPUs that have them. Why a probe and not a capability flag:
``torch.cuda.is_bf16_supported()`` says nothing about the LSTM kernels, and PyTorch routes bf16
LSTMs to cuDNN only from cuDNN 9.13 on (pytorch/pytorch#164411); before that a bf16 LSTM fails
with ``"_thnn_fused_lstm_cell_cuda" not implemented for 'BFloat16'`` (#88136, #116925).

On a CPU, ``auto`` trains an LSTM in bf16 autocast when the CPU has bf16 instructions (AVX512-BF16
or AMX): oneDNN's LSTM then runs on them, and a training step took 0.5-0.6x the time of fp32's on
a 2-core AMD EPYC (issue 14: 1.6-1.9x the updates per minute, about the same loss per update for
the first few thousand, a little higher later; the output layer stays fp32, see CharRNN). Without
those instructions bf16 autocast of ``nn.LSTM`` was measured 7-26x slower, or failing in oneDNN, so
such a CPU trains in fp32, as does one that fails the probe. GRUs and vanilla RNNs have no oneDNN
bf16 path and stay fp32. fp16 fails on a CPU outright; Apple MPS trains in fp32. The choice is by the
CPU's features, not by timing, so every process of a run, and a resumed run on the same machine,
makes the same one.

The probe is a parameter of ``choose_precision``, so the choice is tested on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import PRECISIONS
from .errors import ConfigError, first_line, is_out_of_memory


@dataclass(frozen=True)
class Precision:
    """What a training step does: the autocast dtype (None: fp32), loss scaling, TF32 matmuls."""

    name: str  # "bf16", "fp16" or "fp32"
    reason: str  # why this one, in a few words (stats panel, config.json, headless output)
    autocast: torch.dtype | None = None
    loss_scaling: bool = False
    tf32: bool = False
    detail: str = ""  # what a candidate that was passed over said (its error's first line)
    init_scale: float = 2.0**16  # the loss scale to start from (GradScaler's default)

    @property
    def label(self) -> str:
        if self.loss_scaling:
            return f"{self.name} + loss scaling"
        return f"{self.name} + TF32 matmuls" if self.tf32 else self.name

    def record(self) -> dict:
        """Plain values for config.json and the ``Started`` event."""
        return {"name": self.name, "label": self.label, "reason": self.reason, "detail": self.detail}


def bf16(reason: str, detail: str = "") -> Precision:
    return Precision("bf16", reason, autocast=torch.bfloat16, detail=detail)


def fp16(reason: str, detail: str = "") -> Precision:
    return Precision("fp16", reason, autocast=torch.float16, loss_scaling=True, detail=detail)


def fp32(reason: str, tf32: bool = False, detail: str = "") -> Precision:
    return Precision("fp32", reason, tf32=tf32, detail=detail)


class ProbeFailed(Exception):
    """A precision ran but gave non-finite values, or the GPU lacks it."""


Probe = Callable[[Precision], None]  # raises when the model cannot train in that precision


def choose_precision(
    requested: str,
    device_type: str,
    probe: Probe,
    *,
    tf32_available: bool = False,
    cell: str = "lstm",
    cpu_bf16: bool = False,
) -> Precision:
    """The precision to train in, and why. ``requested`` is ``--precision``; on CUDA each
    candidate is tried with ``probe`` (out of memory says nothing about a precision: it is
    raised). An explicit choice that fails is a ``ConfigError`` naming the alternatives.
    ``cell`` names the model in the reasons (bf16 *GRU* not supported…). ``cpu_bf16``: the CPU
    has bf16 instructions (``cpu_has_bf16``)."""
    model = cell.upper()
    if device_type == "cpu":
        return choose_cpu_precision(requested, probe, cpu_bf16=cpu_bf16, cell=cell)
    if device_type != "cuda":
        if requested in ("bf16", "fp16"):
            raise ConfigError(
                f"--precision {requested} needs a CUDA GPU (this run is on {device_type}, which trains in fp32); "
                f"use --precision auto or fp32"
            )
        return fp32("as asked" if requested == "fp32" else "mixed precision is used on CUDA and CPUs only")
    if requested == "fp32":
        return fp32("as asked", tf32=tf32_available)
    if requested != "auto":
        candidate = bf16("as asked (probed)") if requested == "bf16" else fp16("as asked (probed)")
        failure = try_probe(probe, candidate, model)
        if failure is not None:
            others = " or ".join(", ".join(p for p in PRECISIONS if p != requested).rsplit(", ", 1))
            raise ConfigError(f"--precision {requested}: {failure[0]} ({failure[1]}); use --precision {others}")
        return candidate
    bf16_failure = try_probe(probe, bf16(""), model)
    if bf16_failure is None:
        return bf16(f"bf16 {model} runs on this GPU (probed)")
    fp16_failure = try_probe(probe, fp16(""), model)
    if fp16_failure is None:
        return fp16(f"{bf16_failure[0]}: using fp16 with loss scaling", detail=bf16_failure[1])
    return fp32(
        f"neither bf16 nor fp16 {model}s run here: using fp32" + (" with TF32 matmuls" if tf32_available else ""),
        tf32=tf32_available,
        detail=f"bf16: {bf16_failure[1]}; fp16: {fp16_failure[1]}",
    )


def choose_cpu_precision(requested: str, probe: Probe, *, cpu_bf16: bool, cell: str) -> Precision:
    """On a CPU: bf16 for an LSTM on a CPU with bf16 instructions that passes the probe, else fp32."""
    model = cell.upper()
    if requested == "fp32":
        return fp32("as asked")
    if requested == "fp16":
        others = "auto, bf16 or fp32" if cpu_bf16 and cell == "lstm" else "auto or fp32"
        raise ConfigError(f"--precision fp16 needs a CUDA GPU (this run is on a CPU); use --precision {others}")
    why_not = None
    if not cpu_bf16:
        why_not = "this CPU has no bf16 instructions: AVX512-BF16 or AMX"
    elif cell != "lstm":
        why_not = f"bf16 speeds up only LSTMs on a CPU, not {model}s"
    if requested == "bf16":
        if why_not is not None:
            raise ConfigError(f"--precision bf16 on a CPU: {why_not}; use --precision auto or fp32")
        failure = try_probe(probe, bf16(""), model, "torch/oneDNN")
        if failure is not None:
            raise ConfigError(f"--precision bf16: {failure[0]} ({failure[1]}); use --precision auto or fp32")
        return bf16("as asked, probed")
    if why_not is not None:
        return fp32(why_not)
    failure = try_probe(probe, bf16(""), model, "torch/oneDNN")
    if failure is not None:
        return fp32(f"{failure[0]}: using fp32", detail=failure[1])
    return bf16(f"{model} on this CPU's bf16 instructions, probed")


def cpu_has_bf16() -> bool:
    """The CPU has bf16 instructions that oneDNN computes with: AVX512-BF16 or AMX (torch's own checks)."""
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(torch.cpu, check)():
                return True
        except Exception:  # an older or newer torch without the check: no bf16 then
            continue
    return False


def try_probe(probe: Probe, candidate: Precision, model: str, backend: str = "torch/cuDNN") -> tuple[str, str] | None:
    """None if ``candidate`` works, else (why in a few words, the error's first line)."""
    try:
        probe(candidate)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        detail = first_line(exc, 160) or type(exc).__name__
        if isinstance(exc, ProbeFailed):
            return f"{candidate.name} {detail}", detail
        return f"{candidate.name} {model} not supported by this {backend}", detail
    return None


class ModelProbe:
    """One training forward and backward of the real model on a small batch, in a given
    precision; raises if it fails or gives non-finite values. It leaves no trace: the gradients
    are cleared and the random number generators (dropout) are where they were."""

    def __init__(self, model: torch.nn.Module, vocab_size: int, seq_len: int, batch: int = 2):
        self.model = model
        self.vocab_size = vocab_size
        self.shape = (batch, min(seq_len, 32))

    def __call__(self, precision: Precision) -> None:
        device = next(self.model.parameters()).device
        if device.type == "cuda" and precision.name == "bf16" and not bf16_native(device):
            raise ProbeFailed("is not supported natively by this GPU")
        n = self.shape[0] * self.shape[1]
        x = (torch.arange(n + 1, device=device) % self.vocab_size).view(-1)
        inputs, targets = x[:-1].view(self.shape), x[1:].view(self.shape)
        autocast = torch.autocast(device.type, dtype=precision.autocast) if precision.autocast else nullcontext()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            try:
                with autocast:
                    logits, _ = self.model(inputs)
                    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
                loss.backward()
                grads = [p.grad for p in self.model.parameters() if p.grad is not None]
                finite = torch.stack([torch.isfinite(loss), *(torch.isfinite(g).all() for g in grads)]).all()
                if not bool(finite):
                    raise ProbeFailed("gave non-finite values")
            finally:
                self.model.zero_grad(set_to_none=True)


def bf16_native(device: torch.device) -> bool:
    """The GPU computes in bf16 itself (newer torch also answers yes for an emulation)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch before 2.3 has no emulation and no such argument
        return bool(torch.cuda.is_bf16_supported())


def tf32_available(device: torch.device) -> bool:
    """TF32 tensor cores: NVIDIA Ampere (compute capability 8.0) and later."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def loss_scaler(device_type: str, init_scale: float) -> torch.amp.GradScaler:
    """A ``GradScaler`` for ``device_type`` (torch before 2.3 has only the CUDA one, under torch.cuda.amp)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device_type, init_scale=init_scale)
    return torch.cuda.amp.GradScaler(init_scale=init_scale)  # pragma: no cover - torch < 2.3


def apply_precision(precision: Precision) -> None:
    """Process-wide settings the precision needs (the trainer's process is the training's own)."""
    if precision.tf32:
        torch.set_float32_matmul_precision("high")  # TF32 for fp32 matmuls; cuDNN's RNNs allow it already
