"""Sampling speed: characters per second generating text on the CPU, batch 1.

rnn-tui's ``generate`` (fused LSTM step on prepared weights, one thread, inverse-CDF draws)
against the obvious loop that calls ``nn.LSTM`` once per character, side by side on the same
model, rounds alternating. The "weights bound" column is what reading the weights alone allows:
the same per-character matrix-vector products (layer 0's recurrent weights, the other layers'
input and recurrent weights, the output layer) timed on their own, one thread, in the same run.
At batch 1 that, not FLOPs, is the floor: 2x512 reads 13 MB of weights per character.

    python -m benchmarks.sampling_speed --hidden 512 --length 2000
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import hardware, median, table
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.model import CharRNN, ModelConfig
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.sampling import _FusedLSTM, generate, pick


@torch.no_grad()
def module_loop(model: CharRNN, length: int, temperature: float = 0.8) -> None:
    gen = torch.Generator().manual_seed(0)
    x, state = torch.tensor([[0]]), None
    for _ in range(length):
        out, state = model.rnn(model.embed(x), state)
        nxt = pick(model.head(out[0, -1]), temperature, 0, gen)
        x = torch.tensor([[nxt]])


@torch.inference_mode()
def weights_bound(model: CharRNN, length: int) -> float:
    """Characters per second if a step did nothing but its matrix-vector products (one thread)."""
    step = _FusedLSTM(model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mats = [(step.x_proj[0], step.w[0], step.h[0])]
        mats += [(step.b[k], step.w[k], step.xh[k]) for k in range(1, step.layers)]
        mats.append((step.head_b, step.head_w, step.h[-1]))
        t0 = time.perf_counter()
        for _ in range(length):
            for b, w, x in mats:
                torch.addmv(b, w, x, out=step.gates if w is not step.head_w else step.logits)
        return length / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--length", type=int, default=2000)
    ap.add_argument(
        "--baseline-length",
        type=int,
        default=300,
        help="characters for the slow nn.LSTM loop (its rate is per character)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    vocab = read_corpus(bundled_corpora()["tinyshakespeare"]).vocab
    model = CharRNN(ModelConfig(vocab_size=vocab.size, layers=args.layers, hidden=args.hidden)).eval()
    print(f"hardware: {hardware()}")
    fused, plain, bound = [], [], []
    base_len = max(1, min(args.length, args.baseline_length))
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        generate(model, vocab, args.length, temperature=0.8, seed=1)
        fused.append(args.length / (time.perf_counter() - t0))
        bound.append(weights_bound(model, args.length))
        t0 = time.perf_counter()
        module_loop(model, base_len)
        plain.append(base_len / (time.perf_counter() - t0))
    step = _FusedLSTM(model)
    mb = (sum(w.numel() for w in step.w) + step.head_w.numel()) * 4 / 2**20  # weights read per character
    rows = [
        [
            f"{args.layers}x{args.hidden}, {args.length} chars, T 0.8",
            f"{median(fused):,.0f}",
            f"{median(plain):,.0f}",
            f"{median(fused) / median(plain):.1f}x",
            f"{median(bound):,.0f} ({mb:.0f} MB/char)",
            f"{median(fused) / median(bound):.2f}",
            "≥ 2,000 chars/s",
        ]
    ]
    print(
        table(
            rows,
            ["model", "rnn-tui chars/s", "nn.LSTM per char", "speed-up", "weights bound chars/s", "of bound", "target"],
        )
    )


if __name__ == "__main__":
    main()
