"""Generate text one symbol at a time, and record the hidden states while doing it.

For LSTMs the step is hand-fused (one ``addmm`` per layer on weights concatenated once) because
per-symbol Python and oneDNN call overhead, not FLOPs, bound batch-1 generation on a CPU. GRU and
vanilla RNN models step through ``nn.GRU``/``nn.RNN``. Sampling uses its own ``torch.Generator``,
so it never moves the training RNG, and it never touches the training hidden state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .corpus import Vocab
from .model import CharRNN


@dataclass
class Sample:
    prime: str  # the prime as used (unknown symbols removed)
    text: str  # the generated continuation (without the prime)
    temperature: float
    top_k: int
    unknown: list[str] = field(default_factory=list)  # prime symbols not in the vocabulary, skipped
    # Hidden states over the last ``record`` symbols of prime + text: (layers, T, hidden) float16.
    probe_text: str = ""
    h: np.ndarray | None = None
    c: np.ndarray | None = None


class _FusedLSTM:
    """A batch-1 LSTM step on cached weights: gates = [x, h] @ W + b, one matmul per layer."""

    def __init__(self, model: CharRNN):
        rnn = model.rnn
        self.layers = rnn.num_layers
        self.hidden = rnn.hidden_size
        self.w = []
        self.b = []
        for k in range(self.layers):
            w_ih = getattr(rnn, f"weight_ih_l{k}").detach()
            w_hh = getattr(rnn, f"weight_hh_l{k}").detach()
            self.w.append(torch.cat([w_ih, w_hh], dim=1).t().contiguous())
            b = getattr(rnn, f"bias_ih_l{k}").detach() + getattr(rnn, f"bias_hh_l{k}").detach()
            self.b.append(b.unsqueeze(0))
        self.emb = model.embed.weight.detach()
        self.head_w = model.head.weight.detach().t().contiguous()
        self.head_b = model.head.bias.detach().unsqueeze(0)
        dev = self.emb.device
        self.h = [torch.zeros(1, self.hidden, device=dev) for _ in range(self.layers)]
        self.c = [torch.zeros(1, self.hidden, device=dev) for _ in range(self.layers)]

    def step(self, idx: int) -> torch.Tensor:
        x = self.emb[idx : idx + 1]
        H = self.hidden
        for k in range(self.layers):
            gates = torch.addmm(self.b[k], torch.cat([x, self.h[k]], dim=1), self.w[k])
            sig = gates.sigmoid()
            c = sig[:, H : 2 * H] * self.c[k] + sig[:, :H] * gates[:, 2 * H : 3 * H].tanh()
            h = sig[:, 3 * H :] * c.tanh()
            self.c[k], self.h[k] = c, h
            x = h
        return torch.addmm(self.head_b, x, self.head_w)[0]

    def states(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.h, 0), torch.cat(self.c, 0)  # (layers, hidden) each


class _ModuleStepper:
    """Generic stepper through the model's own recurrent module (GRU, RNN)."""

    def __init__(self, model: CharRNN):
        self.model = model
        self.state = None
        self.device = model.embed.weight.device

    def step(self, idx: int) -> torch.Tensor:
        x = torch.tensor([[idx]], device=self.device)
        out, self.state = self.model.rnn(self.model.embed(x), self.state)
        return self.model.head(out[0, -1])

    def states(self) -> tuple[torch.Tensor, None]:
        return self.state[:, 0, :], None  # type: ignore[index]


def _stepper(model: CharRNN):
    return _FusedLSTM(model) if model.cfg.cell == "lstm" else _ModuleStepper(model)


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> int:
    """Temperature 0 is argmax; top_k 0 means the whole vocabulary."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits.float() / temperature
    if 0 < top_k < logits.numel():
        vals, idx = torch.topk(logits, top_k)
        probs = torch.softmax(vals, dim=-1)
        return int(idx[torch.multinomial(probs.cpu(), 1, generator=gen)])
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=gen))


@torch.no_grad()
def generate(
    model: CharRNN,
    vocab: Vocab,
    length: int,
    temperature: float = 0.8,
    top_k: int = 0,
    prime: str = "",
    seed: int | None = None,
    record: int = 0,
    generator: torch.Generator | None = None,
) -> Sample:
    """Sample ``length`` symbols after ``prime``; record hidden states of the last ``record`` ones.

    Randomness comes from ``generator`` if given (the trainer keeps one so that samples differ from
    one another but never move the training RNG), else from a fresh generator seeded with ``seed``.
    """
    gen = generator
    if gen is None:
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
    known, unknown = vocab.split_known(prime)
    prime_used = vocab.decode(known)
    stepper = _stepper(model)
    inputs = known or [vocab.default_start()]
    hs: list[torch.Tensor] = []
    cs: list[torch.Tensor] = []
    seen: list[int] = []

    def feed(i: int) -> torch.Tensor:
        logits = stepper.step(i)
        if record:
            h, c = stepper.states()
            hs.append(h)
            if c is not None:
                cs.append(c)
            seen.append(i)
            if len(hs) > 2 * record:  # keep the lists short on long samples
                del hs[:-record], cs[:-record], seen[:-record]
        return logits

    # Eval mode: a GRU/RNN stepper runs the module itself, whose dropout would otherwise apply
    # and draw from the training RNG.
    was_training = model.training
    model.eval()
    try:
        for i in inputs[:-1]:
            feed(i)
        logits = feed(inputs[-1])
        out: list[int] = []
        for _ in range(length):
            nxt = pick(logits, temperature, top_k, gen)
            out.append(nxt)
            logits = feed(nxt)
    finally:
        model.train(was_training)
    sample = Sample(prime=prime_used, text=vocab.decode(out), temperature=temperature, top_k=top_k, unknown=unknown)
    if record and hs:
        # States after reading each symbol; the last `record` of them, aligned with `seen`.
        sample.probe_text = "".join(vocab.symbol(i) for i in seen[-record:])
        sample.h = torch.stack(hs[-record:], 1).cpu().numpy().astype(np.float16)
        if cs:
            sample.c = torch.stack(cs[-record:], 1).cpu().numpy().astype(np.float16)
    return sample
