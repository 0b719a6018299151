"""The GPU path, measured: what a CUDA machine gives rnn-tui, each figure side by side in one run.

- the trainer against a plain cuDNN ``nn.LSTM`` loop (the default 2x256 and 2x1024; target ≥ 0.98);
- bf16 autocast against fp32: speed, and the loss after the same steps (where cuDNN's bf16 LSTM
  is not available, ``--precision auto`` falls back, and the table says so);
- no host sync per step: training steps run under ``torch.cuda.set_sync_debug_mode("error")``,
  which raises at the first operation that makes the host wait for the GPU;
- 1 GPU against all of them at 2x1024 (``--nproc``'s data parallelism, NCCL), the same batch per
  GPU: the efficiency per GPU, chars/s of N GPUs / (N x chars/s of one) (target ≥ 0.9).

    python -m benchmarks.gpu                    # on a CUDA machine
    python -m benchmarks.gpu --steps 30         # quicker
    python -m benchmarks.gpu --device cpu --hidden 32 --big 64 --steps 12   # the script itself, on a CPU

Without CUDA it says so and exits 0 (nothing to measure). ``--device cpu`` runs every part at
toy sizes on the CPU (two gloo processes for the scaling part): a check of the script, not a figure.
See also ``benchmarks/gpu_smoke.py`` (every precision, fp16 with loss scaling).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from benchmarks.common import table
from benchmarks.gpu_smoke import plain_run, sync, trainer_run
from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.trainer import Trainer

WARMUP = 5


def shape(args: argparse.Namespace, hidden: int, steps: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        layers=2, hidden=hidden, batch=args.batch, seq=50, device=args.device, steps=steps or args.steps
    )


def host_syncs(corpus, args: argparse.Namespace) -> str:
    """Training steps with CUDA's sync debug mode on: "none", or what synchronised."""
    if args.device != "cuda":
        return "not measured (CPU: nothing to wait for)"
    cfg = TrainConfig(layers=2, hidden=args.hidden, batch_size=args.batch, device="cuda", dropout=0.0)
    trainer = Trainer(cfg, corpus)
    for _ in range(WARMUP):
        trainer.train_step()
    trainer.collect()
    sync("cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            trainer.train_step()
    except RuntimeError as exc:
        return f"a sync: {str(exc).splitlines()[0][:120]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    trainer.collect()
    return "none in 20 steps"


def each_gpu(args: SimpleNamespace) -> float:
    """(in each process of the scaling run) chars/s of the run, all processes together."""
    from rnn_tui.core.distributed import join, rank_device, shared_corpus

    cluster = join()
    try:
        corpus = shared_corpus(cluster, bundled_corpora()["tinyshakespeare"], "char", None)
        device = rank_device(args.device, cluster)
        cfg = TrainConfig(layers=2, hidden=args.hidden, batch_size=args.batch, device=device, dropout=0.0, threads=1)
        trainer = Trainer(cfg, corpus, device=device, cluster=cluster)
        trainer.distribute()
        return timed(trainer, args.steps) * cluster.world
    finally:
        cluster.close()


def timed(trainer: Trainer, steps: int) -> float:
    """chars/s of one process over ``steps`` steps (a report every 8 steps, as the session)."""
    for _ in range(WARMUP):
        trainer.train_step()
    trainer.collect()
    sync(trainer.device.type)
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.train_step()
        if i % 8 == 7:
            trainer.collect()
    trainer.collect()
    sync(trainer.device.type)
    return steps * trainer.cfg.batch_size * trainer.cfg.seq_len / (time.perf_counter() - t0)


def scaling(corpus, args: argparse.Namespace) -> list[str]:
    """1 GPU against all of them (on the CPU: 1 process against 2), the same batch each."""
    from rnn_tui.host.launch import _entry, elastic_launch_compat

    n = torch.cuda.device_count() if args.device == "cuda" else 2
    one_cfg = TrainConfig(layers=2, hidden=args.big, batch_size=args.batch, device=args.device, dropout=0.0, threads=1)
    one = timed(Trainer(one_cfg, corpus), args.steps)
    if n < 2:
        return [f"1 vs all GPUs, 2x{args.big}", f"{one:,.0f}", "one GPU only", "", "≥ 0.9"]
    each = SimpleNamespace(hidden=args.big, batch=args.batch, steps=args.steps, device=args.device)
    many = elastic_launch_compat(n, "SIGTERM")(_entry, each_gpu, each)[0]
    what = "GPUs" if args.device == "cuda" else "CPU processes (gloo)"
    return [f"1 vs {n} {what}, 2x{args.big}", f"{one:,.0f}", f"{many:,.0f}", f"{many / (n * one):.2f}", "≥ 0.9"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=256, help="the default model's width")
    ap.add_argument("--big", type=int, default=1024, help="the wide model's width (scaling)")
    ap.add_argument("--batch", type=int, default=32, help="streams per process")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: check the script itself")
    args = ap.parse_args()
    args.steps = max(args.steps, WARMUP + 7)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu.py needs a CUDA GPU; torch {torch.__version__} sees none here: nothing measured")
        print()
        rows = [
            [what, "skipped: no CUDA GPU", ""]
            for what in ("trainer / plain cuDNN loop", "bf16 vs fp32", "host syncs per step", "1 vs all GPUs at 2x1024")
        ]
        print(table(rows, ["what", "measured", "target"]))
        return 0
    if args.device == "cuda":
        print(
            f"GPU {torch.cuda.get_device_name()} x {torch.cuda.device_count()}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        )
    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])
    auto = Trainer(TrainConfig(device=args.device, hidden=args.hidden), corpus).precision
    rows = []
    for hidden in (args.hidden, args.big):
        got = trainer_run(corpus, shape(args, hidden), auto.name)
        plain = plain_run(corpus, shape(args, hidden), auto.name)
        rows.append(
            [
                f"trainer / plain loop, 2x{hidden} ({got['label']})",
                f"{got['chars_per_s']:,.0f}",
                f"{plain:,.0f}",
                f"{got['chars_per_s'] / plain:.3f}",
                "≥ 0.98",
            ]
        )
    print()
    print(table(rows, ["what", "rnn-tui chars/s", "plain chars/s", "ratio", "target"]))
    precision_rows = []
    fp32 = trainer_run(corpus, shape(args, args.hidden), "fp32")
    try:
        bf16 = trainer_run(corpus, shape(args, args.hidden), "bf16")
        precision_rows.append(["bf16 / fp32, speed", f"{bf16['chars_per_s'] / fp32['chars_per_s']:.2f}", ""])
        precision_rows.append(
            [f"loss after {args.steps} steps, bf16 - fp32", f"{bf16['loss'] - fp32['loss']:+.4f}", "≈ 0"]
        )
    except RnnTuiError as exc:
        precision_rows.append(["bf16", f"does not run here, fp32 used ({exc})", ""])
    precision_rows.append(["host syncs per training step", host_syncs(corpus, args), "none"])
    print()
    print(table(precision_rows, ["what", "measured", "target"]))
    print()
    print(table([scaling(corpus, args)], ["what", "1 chars/s", "all chars/s", "per-GPU efficiency", "target"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
