"""Sampling speed: characters per second generating text on the CPU, batch 1.

rnn-tui's fused LSTM step (one addmm per layer on cached weights) against the obvious loop that
calls ``nn.LSTM`` once per character, side by side on the same model.

    python -m benchmarks.sampling_speed --hidden 512 --length 2000
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import hardware, median, table
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.model import CharRNN, ModelConfig
from rnn_tui.core.sampling import generate, pick
from rnn_tui.resources import bundled_corpora


@torch.no_grad()
def module_loop(model: CharRNN, length: int, temperature: float = 0.8) -> None:
    gen = torch.Generator().manual_seed(0)
    x, state = torch.tensor([[0]]), None
    for _ in range(length):
        out, state = model.rnn(model.embed(x), state)
        nxt = pick(model.head(out[0, -1]), temperature, 0, gen)
        x = torch.tensor([[nxt]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--length", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    vocab = read_corpus(bundled_corpora()["tinyshakespeare"]).vocab
    model = CharRNN(ModelConfig(vocab_size=vocab.size, layers=args.layers, hidden=args.hidden)).eval()
    print(f"hardware: {hardware()}")
    fused, plain = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        generate(model, vocab, args.length, temperature=0.8, seed=1)
        fused.append(args.length / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        module_loop(model, args.length)
        plain.append(args.length / (time.perf_counter() - t0))
    rows = [[f"{args.layers}x{args.hidden}, {args.length} chars, T 0.8", f"{median(fused):,.0f}",
             f"{median(plain):,.0f}", f"{median(fused) / median(plain):.2f}x", "≥ 2,000 chars/s"]]
    print(table(rows, ["model", "rnn-tui chars/s", "nn.LSTM per char", "speed-up", "target"]))


if __name__ == "__main__":
    main()
