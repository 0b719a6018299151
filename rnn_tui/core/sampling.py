"""Generate text one symbol at a time, and record the hidden states while doing it.

For LSTMs the step is hand-fused on weights prepared once per sample (layer 0's input projection
as a per-symbol table, one ``addmv`` per other layer, the gate math in place in preallocated
buffers): at batch 1 the per-call overhead of ``nn.LSTM`` (oneDNN) and, past that, reading the
weights from memory bound generation on a CPU, not FLOPs. GRU and vanilla RNN models step through
``nn.GRU``/``nn.RNN``. A symbol is drawn by inverse CDF from one uniform number, all of them drawn
up front in one call. Sampling uses its own ``torch.Generator``, so it never moves the training
RNG, and it never touches the training hidden state.
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
    """A batch-1 LSTM step on cached weights, written into preallocated buffers.

    Layer 0's input projection is looked up, not multiplied: ``emb @ W_ih0.T + b0`` is one table
    row per symbol, computed once. Every other layer is one ``addmv`` over ``[x, h]`` (weights
    concatenated once, row-major, so each gate is a dot product over contiguous memory), and the
    gate math runs in place. At batch 1 the time goes to streaming the weights through the cache
    (13 MB per character at 2x512), so the loop does nothing else it can avoid.
    """

    def __init__(self, model: CharRNN):
        rnn = model.rnn
        L = self.layers = rnn.num_layers
        H = self.hidden = rnn.hidden_size
        dev = model.embed.weight.device
        w_ih0 = rnn.weight_ih_l0.detach().float()
        b0 = (rnn.bias_ih_l0.detach() + rnn.bias_hh_l0.detach()).float()
        self.x_proj = torch.addmm(b0, model.embed.weight.detach().float(), w_ih0.t())  # (vocab, 4H)
        self.w = [rnn.weight_hh_l0.detach().float().contiguous()]  # (4H, H) for layer 0
        self.b: list[torch.Tensor] = [self.x_proj.new_empty(0)]  # layer 0 takes its bias from x_proj
        for k in range(1, L):
            w_ih = getattr(rnn, f"weight_ih_l{k}").detach().float()
            w_hh = getattr(rnn, f"weight_hh_l{k}").detach().float()
            self.w.append(torch.cat([w_ih, w_hh], dim=1).contiguous())  # (4H, 2H)
            b = getattr(rnn, f"bias_ih_l{k}").detach() + getattr(rnn, f"bias_hh_l{k}").detach()
            self.b.append(b.float())
        self.head_w = model.head.weight.detach().float().contiguous()  # (vocab, H)
        self.head_b = model.head.bias.detach().float()
        # xh[k] = [input of layer k, h of layer k]; layer 0 reads its input from x_proj instead.
        self.xh = [torch.zeros(2 * H, device=dev) for _ in range(L)]
        self.h = [xh[H:] for xh in self.xh]
        self.c = [torch.zeros(H, device=dev) for _ in range(L)]
        self.gates = torch.empty(4 * H, device=dev)
        self.act = torch.empty(4 * H, device=dev)
        self.tanh_c = torch.empty(H, device=dev)
        self.logits = torch.empty(self.head_w.size(0), device=dev)

    def step(self, idx: int) -> torch.Tensor:
        """Read symbol ``idx``; the logits of the next symbol (a buffer the next step overwrites)."""
        H, gates, act, tanh_c = self.hidden, self.gates, self.act, self.tanh_c
        for k in range(self.layers):
            if k == 0:
                torch.addmv(self.x_proj[idx], self.w[0], self.h[0], out=gates)
            else:
                torch.addmv(self.b[k], self.w[k], self.xh[k], out=gates)
            # PyTorch's gate order: input, forget, cell (g), output
            torch.sigmoid(gates, out=act)
            torch.tanh(gates[2 * H : 3 * H], out=act[2 * H : 3 * H])
            c = self.c[k]
            c.mul_(act[H : 2 * H]).addcmul_(act[:H], act[2 * H : 3 * H])  # c = f*c + i*g
            torch.tanh(c, out=tanh_c)
            torch.mul(act[3 * H :], tanh_c, out=self.h[k])  # h = o * tanh(c)
            if k + 1 < self.layers:
                self.xh[k + 1][:H].copy_(self.h[k])
        return torch.addmv(self.head_b, self.head_w, self.h[-1], out=self.logits)

    def states(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.stack(self.h), torch.stack(self.c)  # (layers, hidden) each, copies


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


def draw(logits: np.ndarray, temperature: float, top_k: int, u: float) -> int:
    """The symbol at quantile ``u`` (0 <= u < 1) of softmax(logits / temperature), restricted to the
    ``top_k`` largest logits when 0 < top_k < vocabulary size.

    With ``u`` uniform this samples the same distribution as ``torch.multinomial`` (inverse CDF),
    in a few numpy calls on a vocabulary-sized array instead of a dozen tensor operations.
    """
    idx = None
    if 0 < top_k < logits.size:
        idx = np.argpartition(logits, logits.size - top_k)[-top_k:]
        logits = logits[idx]
    weights = np.exp((logits.astype(np.float64) - logits.max()) * (1.0 / temperature))
    cdf = np.cumsum(weights)
    j = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(cdf) - 1)
    while weights[j] == 0.0:  # only if u * total rounded up to the total: never a zero-weight symbol
        j -= 1
    return int(idx[j]) if idx is not None else j


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> int:
    """One symbol from ``logits``. Temperature 0 is argmax; top_k 0 means the whole vocabulary."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    return draw(logits.detach().float().cpu().numpy(), temperature, top_k, u)


@torch.inference_mode()
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
    One uniform number per symbol is drawn up front, in one call (none at temperature 0).
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
    greedy = temperature <= 0
    uniforms = [] if greedy or length <= 0 else torch.rand(length, generator=gen, dtype=torch.float64).tolist()
    on_cpu = model.embed.weight.device.type == "cpu"
    hs: list[torch.Tensor] = []
    cs: list[torch.Tensor] = []
    seen: list[int] = []
    first_recorded = len(inputs) + length - record  # feeds from this one on are recorded

    def feed(t: int, i: int) -> torch.Tensor:
        logits = stepper.step(i)
        if record and t >= first_recorded:
            h, c = stepper.states()
            hs.append(h)
            if c is not None:
                cs.append(c)
            seen.append(i)
        return logits

    # Eval mode: a GRU/RNN stepper runs the module itself, whose dropout would otherwise apply
    # and draw from the training RNG.
    was_training = model.training
    model.eval()
    # One thread on a CPU: at batch 1 every op is tiny, and torch still splits some (tanh) across
    # its threads; when another process wants the cores (the app, next to its trainer) each such
    # op waits milliseconds for a descheduled thread. Measured on 2 busy cores, 2x512: ~140
    # chars/s with 2 threads, ~1,400 with 1. Restored afterwards (training keeps its threads).
    threads = torch.get_num_threads()
    single = on_cpu and threads > 1
    if single:
        torch.set_num_threads(1)
    try:
        for t, i in enumerate(inputs[:-1]):
            feed(t, i)
        t = len(inputs) - 1
        logits = feed(t, inputs[-1])
        out: list[int] = []
        for n in range(length):
            if greedy:
                nxt = int(torch.argmax(logits))
            else:
                values = logits.float().numpy() if on_cpu else logits.float().cpu().numpy()
                nxt = draw(values, temperature, top_k, uniforms[n])
            out.append(nxt)
            t += 1
            logits = feed(t, nxt)
    finally:
        model.train(was_training)
        if single:
            torch.set_num_threads(threads)
    sample = Sample(prime=prime_used, text=vocab.decode(out), temperature=temperature, top_k=top_k, unknown=unknown)
    if record and hs:
        # States after reading each symbol; the last `record` of them, aligned with `seen`.
        sample.probe_text = "".join(vocab.symbol(i) for i in seen[-record:])
        sample.h = torch.stack(hs[-record:], 1).cpu().numpy().astype(np.float16)
        if cs:
            sample.c = torch.stack(cs[-record:], 1).cpu().numpy().astype(np.float16)
    return sample
