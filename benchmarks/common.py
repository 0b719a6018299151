"""Shared bits of the benchmark scripts: hardware line, matmul peak, FLOP counts, a table printer."""

from __future__ import annotations

import os
import platform
import statistics
import time


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def matmul_peak_gflops(seconds: float = 2.0, n: int = 1024, device: str = "cpu") -> float:
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def train_flops_per_char(layers: int, hidden: int, embed: int, vocab: int, cell: str = "lstm") -> float:
    """Multiply-adds x2 of the recurrent stack and the output layer, forward + backward (x3)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    fwd = 0
    for layer in range(layers):
        inp = embed if layer == 0 else hidden
        fwd += 2 * gates * hidden * (inp + hidden)
    fwd += 2 * hidden * vocab
    return 3 * fwd


def median(xs):
    return statistics.median(xs)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
