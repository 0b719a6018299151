"""rnn-tui's trainer against a minimal PyTorch loop of the same model, batch and sequence.

Rounds alternate between the two (this machine is noisy), and the ratio is taken per round.
Prints chars/s, the ratio, and achieved GFLOP/s against the matmul peak measured in the same run.

    python benchmarks/trainer_speed.py                 # 2x128, 2x256, 2x512 at batch 32, seq 50 (the default)
    python benchmarks/trainer_speed.py --sizes 256 --seconds 3 --rounds 1
    python benchmarks/trainer_speed.py --precision fp32    # on a CPU with bf16 instructions: the fp32 path

The plain loop computes in the precision the trainer chose (on a CPU with bf16 instructions, bf16
autocast: core/precision.py), so the ratio is the trainer's overhead, not the precision's gain
(under bf16 the trainer also computes its output layer in fp32, a little more work than the plain
loop's bf16 one: the ratio is then a little below the overhead alone).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import hardware, matmul_peak_gflops, median, table, train_flops_per_char
from rnn_tui.core.batches import StripedBatches
from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.trainer import Trainer


class PlainLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def plain_step(model: PlainLSTM, opt: torch.optim.Optimizer, x, y, state, autocast: torch.dtype | None = None):
    """One step as a person writes it by hand: forward, loss, backward, clip, update, the loss
    read every step. The carried state, detached. ``autocast``: a lower precision to compute in."""
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    loss.item()  # a plain loop reads its loss every step
    return tuple(s.detach() for s in state)


def plain_loop(corpus, layers, hidden, embed, batch, seq, seconds, precision: str) -> float:
    """The loop a person would write by hand: chars/s over ``seconds``."""
    train, _ = corpus.split(0.1)
    batches = StripedBatches(train, batch, seq)
    model = PlainLSTM(corpus.vocab.size, embed, hidden, layers)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    state, i, n = None, 0, 0
    t0 = None
    autocast = torch.bfloat16 if precision == "bf16" else None
    while True:
        x, y = batches.get(i % len(batches))
        state = plain_step(model, opt, x, y, state, autocast)
        i += 1
        if i == 3:
            t0 = time.perf_counter()  # after warm-up
        elif t0 is not None:
            n += 1
            if time.perf_counter() - t0 >= seconds:
                return n * batch * seq / (time.perf_counter() - t0)


def build_trainer(corpus, layers, hidden, embed, batch, seq, precision: str) -> Trainer:
    # dropout 0 like the plain loop: the same model, the same work
    cfg = TrainConfig(
        layers=layers,
        hidden=hidden,
        embed=embed,
        batch_size=batch,
        seq_len=seq,
        dropout=0.0,
        device="cpu",
        precision=precision,
    )
    return Trainer(cfg, corpus)


def trainer_loop(corpus, layers, hidden, embed, batch, seq, seconds, precision: str) -> float:
    trainer = build_trainer(corpus, layers, hidden, embed, batch, seq, precision)
    for _ in range(3):
        trainer.train_step()
    trainer.collect()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        trainer.train_step()
        n += 1
        if n % 8 == 0:
            trainer.collect()  # as the session does, a few times a second
    trainer.collect()
    return n * batch * seq / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=50, help="default: the trainer's default sequence length")
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = ap.parse_args()
    corpus = read_corpus(bundled_corpora()["tinyshakespeare"])
    print(f"hardware: {hardware()}")
    # what the trainer computes in here (auto: by the CPU's features); the plain loop does the same
    chosen = build_trainer(corpus, 1, 8, 8, 2, 8, args.precision).precision
    print(f"precision: {chosen.name} ({chosen.reason})")
    peak = matmul_peak_gflops()
    print(f"matmul peak (1024x1024 fp32): {peak:.0f} GFLOP/s")
    rows = []
    for hidden in [int(s) for s in args.sizes.split(",")]:
        plain, ours, ratios = [], [], []
        for r in range(args.rounds):
            # alternate which goes first, so drift in machine load does not favour either
            pair = [("plain", plain_loop), ("rnn-tui", trainer_loop)]
            if r % 2:
                pair.reverse()
            got = {}
            for name, fn in pair:
                got[name] = fn(corpus, args.layers, hidden, args.embed, args.batch, args.seq, args.seconds, chosen.name)
            plain.append(got["plain"])
            ours.append(got["rnn-tui"])
            ratios.append(got["rnn-tui"] / got["plain"])
        flops = train_flops_per_char(args.layers, hidden, args.embed, corpus.vocab.size)
        gflops = median(ours) * flops / 1e9
        rows.append(
            [
                f"{args.layers}x{hidden} B{args.batch} T{args.seq}",
                f"{median(plain):,.0f}",
                f"{median(ours):,.0f}",
                f"{median(ratios):.3f}",
                "≥ 0.98",
                f"{gflops:.0f}",
                f"{gflops / peak:.0%}",
            ]
        )
        print(f"  {rows[-1][0]}: ratio per round {', '.join(f'{x:.3f}' for x in ratios)}", flush=True)
    print()
    print(table(rows, ["model", "plain chars/s", "rnn-tui chars/s", "ratio", "target", "GFLOP/s", "of peak"]))


if __name__ == "__main__":
    main()
