"""Every precision on a CUDA GPU: the default model (2x256, batch 32, sequence 50) on Tiny
Shakespeare for 200 steps in bf16, fp16 (loss scaling) and fp32, from the same seed. For each:
whether it runs, the loss over the last steps against fp32's, the steps the loss scaler skipped,
peak GPU memory, and chars/s against a plain cuDNN ``nn.LSTM`` loop in the same precision (the
plain loop never reads a value back until the end, the fastest a hand-written loop can be). First
it says what ``--precision auto`` picks on this GPU, and why (the real probe).

    python -m benchmarks.gpu_smoke                 # 200 steps per precision
    python -m benchmarks.gpu_smoke --steps 20      # a quick check

Without CUDA it says so and exits 0: there is nothing to measure. ``--device cpu`` runs the
script itself on a CPU at toy sizes (fp32 only; bf16 and fp16 say why they do not run): a check
of the script, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from benchmarks.common import table
from benchmarks.trainer_speed import PlainLSTM
from rnn_tui.core.batches import StripedBatches
from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import Corpus, read_corpus
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.trainer import Trainer

WARMUP = 5  # steps before the clock starts (cuDNN picks its kernels, memory is allocated)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def config(args: argparse.Namespace, precision: str) -> TrainConfig:
    return TrainConfig(
        layers=args.layers,
        hidden=args.hidden,
        batch_size=args.batch,
        seq_len=args.seq,
        device=args.device,
        precision=precision,
        dropout=0.0,  # the plain loop has none: the same work
    )


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def trainer_run(corpus: Corpus, args: argparse.Namespace, precision: str) -> dict:
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(config(args, precision), corpus)
    rows = []
    for step in range(args.steps):
        if step == WARMUP:
            sync(args.device)
            t0 = time.perf_counter()
        trainer.train_step()
        if step % 8 == 7:
            rows += trainer.collect()  # as the session does, a few times a second
    rows += trainer.collect()
    seconds = time.perf_counter() - t0
    last = [r.loss for r in rows[-20:]]
    return {
        "chars_per_s": (args.steps - WARMUP) * args.batch * args.seq / seconds,
        "loss": sum(last) / len(last),
        "skipped": sum(r.skipped for r in rows),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else 0.0,
        "label": trainer.precision.label,
    }


def plain_run(corpus: Corpus, args: argparse.Namespace, precision: str) -> float:
    """chars/s of a hand-written loop: nn.LSTM (cuDNN), autocast and GradScaler as the docs show."""
    torch.manual_seed(0)
    train, _ = corpus.split(0.1)
    batches = StripedBatches(train, args.batch, args.seq)
    model = PlainLSTM(corpus.vocab.size, 64, args.hidden, args.layers).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, fused=args.device == "cuda")
    dtype = DTYPES[precision]
    scaler = torch.amp.GradScaler(args.device) if precision == "fp16" else None
    state = None
    for step in range(args.steps):
        if step == WARMUP:
            sync(args.device)
            t0 = time.perf_counter()
        x, y = (t.to(args.device, non_blocking=True) for t in batches.get(step % len(batches)))
        autocast = torch.autocast(args.device, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            scaler.step(opt)
            scaler.update()
        state = tuple(s.detach() for s in state)
    sync(args.device)
    return (args.steps - WARMUP) * args.batch * args.seq / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=50, help="default: the trainer's default sequence length")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: check the script itself")
    args = ap.parse_args()
    args.steps = max(args.steps, WARMUP + 20)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_smoke needs a CUDA GPU; torch {torch.__version__} sees none here: nothing measured")
        print()
        print(table([["every precision on a CUDA GPU", "skipped: no CUDA GPU", ""]], ["what", "measured", "target"]))
        return 0
    if args.device == "cuda":
        capability = ".".join(map(str, torch.cuda.get_device_capability()))
        print(f"GPU {torch.cuda.get_device_name()}, compute capability {capability}")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])
    auto = Trainer(config(args, "auto"), corpus).precision
    print(f"--precision auto picks {auto.label}: {auto.reason}" + (f" ({auto.detail})" if auto.detail else ""))
    print()
    results: dict[str, dict] = {}
    rows = []
    for name in ("fp32", "bf16", "fp16"):  # fp32 first: the others' losses are compared with it
        try:
            got = results[name] = trainer_run(corpus, args, name)
        except RnnTuiError as exc:  # an explicit precision that does not run here: one line
            rows.append([name, f"does not run: {exc}", "", "", "", "", "", ""])
            continue
        plain = plain_run(corpus, args, name)
        base = results.get("fp32", got)["loss"]
        rows.append(
            [
                got["label"],
                f"{got['loss']:.4f}",
                f"{got['loss'] - base:+.4f}",
                str(got["skipped"]),
                f"{got['peak_mb']:,.0f}",
                f"{got['chars_per_s']:,.0f}",
                f"{plain:,.0f}",
                f"{got['chars_per_s'] / plain:.3f}",
            ]
        )
        print(f"  {name}: done", flush=True)
    print()
    header = ["precision", f"loss (last 20 of {args.steps})", "vs fp32", "skipped", "peak MB"]
    print(table(rows, [*header, "rnn-tui chars/s", "plain loop chars/s", "ratio"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
