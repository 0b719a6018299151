"""Inside the network: what every cell does over a probe text, and how far back the model looks.

``explore(model, vocab, ids)`` computes, from the model's current weights, everything the explorer
screen and ``rnn-tui explore`` show:

- every layer's hidden state ``h`` and (LSTM) cell state ``c`` and gates at every character;
- the cells whose activation tracks simple properties of the text best (``text_properties.py``),
  by Pearson correlation, ``h`` and raw ``c`` of every layer;
- the model's top guesses for each next character, and the probability it gave the actual one;
- (LSTM) how often each gate is saturated: below 0.1 or above 0.9, as in Karpathy, Johnson and
  Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015);
- the memory curves: for positions ``t``, the size of the gradient of the loss at ``t`` with respect
  to the input ``k`` characters back, and the change in the predicted distribution (total
  variation) when that character is replaced, for ``k = 1 … MEMORY_K``.

It never changes the model or the trainer: every layer runs through a detached copy of its weights
(no parameter gets a gradient), the model's own modules are never called in training mode (no
dropout, so the training RNG is not drawn from; the RNG state is restored anyway), and the
trainer's carried hidden state is not read. Every layer's states come from one pass of a one-layer
``nn.LSTM`` over the whole probe (fast), then every step's gates from one batched matrix product,
and ``c`` from a cheap elementwise scan.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .corpus import Vocab
from .errors import CorpusError
from .model import CharRNN
from .text_properties import PROPERTIES, text_properties

PROBE_CHARS = 2000  # the default probe: a passage of the validation split this long
MAX_PROBE_CHARS = 10_000  # the longest probe (a command's text field holds at most this many)
MAX_STATE_VALUES = 16_000_000  # layers x characters x hidden x 2 (h, c): an event stays ~45 MB on the wire
TOP_GUESSES = 5
MEMORY_K = 200  # the memory curves reach this many characters back
MEMORY_POSITIONS = 16  # positions of the probe the memory curves average over
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9
GATES = ("input", "forget", "output")  # the gates whose saturation is shown (PyTorch order: i, f, g, o)
_GATE_ROWS = (0, 1, 3)


@dataclass(frozen=True)
class CellMatch:
    """A cell and the property its activation follows: ``layer`` and ``unit`` index the state
    arrays (0-based); ``state`` is "h" or "c" (raw c)."""

    property: str
    layer: int
    state: str
    unit: int
    r: float

    def to_dict(self) -> dict:
        return {"property": self.property, "layer": self.layer, "state": self.state, "unit": self.unit, "r": self.r}


@dataclass
class Exploration:
    """Everything the explorer shows for one probe, from one set of weights."""

    symbols: str  # the probe, one character per position (a byte vocabulary shows bytes)
    ids: np.ndarray  # (T,) vocabulary indices
    cell: str  # "lstm", "gru" or "rnn"
    h: np.ndarray  # (layers, T, hidden) float32: the state after reading each character
    c: np.ndarray | None  # (layers, T, hidden) float32, raw (LSTM only)
    gates: np.ndarray | None  # (layers, T, 4, hidden) float32: i, f, g, o after their nonlinearity
    top_chars: str  # the likeliest next symbols after each position, top_k per position
    top_probs: np.ndarray  # (T, top_k) float32, likeliest first
    p_next: np.ndarray  # (T,) probability given to the actual next symbol; NaN at the last position
    loss: float  # mean cross-entropy over the probe, nats per character
    cells: list[CellMatch]  # the best cell for each property, highest |r| first
    saturation: np.ndarray | None  # (layers, 3 gates, 2: left/right, hidden) fractions (LSTM only)
    memory_k: np.ndarray  # (K,) 1 … K
    memory_grad: np.ndarray  # (K,) mean |d loss_t / d input_{t-k}|
    memory_flip: np.ndarray  # (K,) mean total variation of p(x_t) when x_{t-k} is replaced
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def top_k(self) -> int:
        return self.top_probs.shape[1]

    def guesses(self, t: int) -> list[tuple[str, float]]:
        """The model's top guesses for the symbol after position ``t``, likeliest first."""
        k = self.top_k
        return list(zip(self.top_chars[t * k : (t + 1) * k], self.top_probs[t].tolist()))

    def to_json(self) -> dict:
        """The ``rnn-tui explore --json`` object."""
        predictions = [
            {"pos": t, "char": self.symbols[t], "top": [[ch, round(p, 5)] for ch, p in self.guesses(t)]}
            for t in range(len(self.symbols))
        ]
        memory = [
            {"k": int(k), "grad": _finite(g), "flip": _finite(f)}
            for k, g, f in zip(self.memory_k.tolist(), self.memory_grad.tolist(), self.memory_flip.tolist())
        ]
        saturation = None
        if self.saturation is not None:
            saturation = {
                "low": SATURATION_LOW,
                "high": SATURATION_HIGH,
                "layers": [
                    {
                        "layer": k,
                        **{
                            gate: {
                                "left": np.round(self.saturation[k, g, 0], 4).tolist(),
                                "right": np.round(self.saturation[k, g, 1], 4).tolist(),
                            }
                            for g, gate in enumerate(GATES)
                        },
                    }
                    for k in range(self.saturation.shape[0])
                ],
            }
        return {
            "cells": [m.to_dict() for m in self.cells],
            "predictions": predictions,
            "memory": memory,
            "saturation": saturation,
        }


def _finite(x: float) -> float | None:
    return round(x, 8) if math.isfinite(x) else None


# ---------------------------------------------------------------------------- the probe


def passage(val_ids: np.ndarray, chars: int, newline: int | None) -> np.ndarray:
    """``chars`` symbols of the validation split, from the start of its first paragraph (after a
    blank line) or else of its first whole line, when one comes early enough: the probe reads like
    the text, not from mid-word."""
    start = 0
    if newline is not None:
        head = val_ids[: min(len(val_ids), 2000)] == newline
        blank = np.flatnonzero(head[:-1] & head[1:]) + 2  # after "\n\n"
        line = np.flatnonzero(head) + 1
        for starts in (blank, line):
            if len(starts) and len(val_ids) - starts[0] >= min(chars, len(val_ids)) // 2:
                start = int(starts[0])
                break
    return np.asarray(val_ids[start : start + chars])


def newline_index(vocab: Vocab) -> int | None:
    return vocab.codes.index(10) if 10 in vocab.codes else None


def encode_probe(vocab: Vocab, text: str, chars: int | None = None) -> np.ndarray:
    """A text given by the person as vocabulary indices; every symbol must be known (one line
    naming the ones that are not)."""
    if not text:
        raise CorpusError("the probe text is empty")
    try:
        ids = vocab.encode_array(text)
    except CorpusError as exc:
        raise CorpusError(f"the probe text has characters the model has never seen ({exc})") from None
    return ids[:chars] if chars else ids


def probe_limit(layers: int, hidden: int, chars: int) -> int:
    """The probe length actually used: at most ``chars``, ``MAX_PROBE_CHARS``, and what keeps the
    states of a big model within ``MAX_STATE_VALUES``."""
    return max(2, min(chars, MAX_PROBE_CHARS, MAX_STATE_VALUES // (2 * layers * hidden)))


# ---------------------------------------------------------------------------- the passes


def _layer_copies(model: CharRNN) -> list[nn.Module]:
    """One-layer modules holding detached copies of each layer's weights (built on the meta device,
    so making them draws nothing from the RNG). A one-layer module has no dropout."""
    rnn = model.rnn
    kind = type(rnn)
    device = model.embed.weight.device
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    copies = []
    for k in range(rnn.num_layers):
        size_in = rnn.input_size if k == 0 else rnn.hidden_size
        layer = kind(size_in, rnn.hidden_size, 1, batch_first=True, device="meta", **extra).to_empty(device=device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, f"{name}_l0").copy_(getattr(rnn, f"{name}_l{k}").float())
        layer.requires_grad_(False)
        layer.float()
        if hasattr(layer, "flatten_parameters"):
            layer.flatten_parameters()
        copies.append(layer)
    return copies


def _head(model: CharRNN, h: torch.Tensor) -> torch.Tensor:
    return F.linear(h, model.head.weight.detach().float(), model.head.bias.detach().float())


def _embed(model: CharRNN, ids: torch.Tensor) -> torch.Tensor:
    return F.embedding(ids, model.embed.weight.detach().float())


def _initial_states(h: torch.Tensor, c: torch.Tensor | None, starts: np.ndarray) -> list:
    """Each layer's state before windows that start at positions ``starts``: the probe's own state
    after the character before (zeros for a window at position 0)."""
    idx = torch.as_tensor(starts, device=h.device)  # row s of the padded states = after position s-1

    def before(states: torch.Tensor, k: int) -> torch.Tensor:
        padded = torch.cat([states.new_zeros(1, states.size(2)), states[k]])
        return padded.index_select(0, idx).unsqueeze(0).contiguous()

    return [(before(h, k), before(c, k)) if c is not None else before(h, k) for k in range(h.size(0))]


def _run_stack(layers: list[nn.Module], x: torch.Tensor, init: list) -> torch.Tensor:
    for layer, state in zip(layers, init):
        x, _ = layer(x, state)
    return x


def _correlations(series: np.ndarray, props: np.ndarray) -> np.ndarray:
    """Pearson r of every column of ``series`` (T, N) with every column of ``props`` (T, P); 0 where
    either is constant."""
    a = series - series.mean(0)
    p = props - props.mean(0)
    a_norm = np.sqrt((a * a).sum(0))
    p_norm = np.sqrt((p * p).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a.T @ p) / np.outer(a_norm, p_norm)
    r[~np.isfinite(r)] = 0.0
    return np.clip(r, -1.0, 1.0)


def find_cells(symbols: str, h: np.ndarray, c: np.ndarray | None) -> list[CellMatch]:
    """The best cell (layer, h or c, unit) for each property that varies over ``symbols``, highest
    |r| first."""
    props = text_properties(symbols)
    names = [n for n in PROPERTIES if props[n].std() > 0]
    if not names:
        return []
    matrix = np.stack([props[n] for n in names], 1)
    found: list[CellMatch] = []
    best: dict[str, CellMatch] = {}
    for state, values in (("h", h), ("c", c)):
        if values is None:
            continue
        for layer in range(values.shape[0]):
            r = _correlations(values[layer].astype(np.float64), matrix)
            for j, name in enumerate(names):
                unit = int(np.argmax(np.abs(r[:, j])))
                match = CellMatch(name, layer, state, unit, round(float(r[unit, j]), 4))
                if name not in best or abs(match.r) > abs(best[name].r):
                    best[name] = match
    found = sorted(best.values(), key=lambda m: -abs(m.r))
    return found


@torch.no_grad()
def _probe_pass(model: CharRNN, layers: list[nn.Module], ids: torch.Tensor):
    """Every layer's h (and for an LSTM c and the gates) at every position, and the logits."""
    cell = model.cfg.cell
    x = _embed(model, ids).unsqueeze(0)  # (1, T, E)
    hs, cs, gates = [], [], []
    for layer in layers:
        out, _ = layer(x)
        h = out[0]
        hs.append(h)
        if cell == "lstm":
            w = dict(layer.named_parameters())
            h_prev = torch.cat([h.new_zeros(1, h.size(1)), h[:-1]])
            act = torch.addmm(w["bias_ih_l0"] + w["bias_hh_l0"], x[0], w["weight_ih_l0"].t())
            act.addmm_(h_prev, w["weight_hh_l0"].t())
            act = act.view(len(h), 4, -1)  # (T, 4, H): i, f, g, o
            act[:, :2].sigmoid_()
            act[:, 2].tanh_()
            act[:, 3].sigmoid_()
            gates.append(act)
            # c_t = f_t c_{t-1} + i_t g_t, scanned in numpy (thousands of tiny steps: numpy's are cheaper)
            f_np = act[:, 1].double().cpu().numpy()
            ig = (act[:, 0] * act[:, 2]).double().cpu().numpy()
            c = np.empty_like(f_np)
            prev = np.zeros(f_np.shape[1])
            for t in range(len(c)):
                prev = f_np[t] * prev + ig[t]
                c[t] = prev
            cs.append(torch.from_numpy(c).float().to(h.device))
        x = out
    logits = _head(model, hs[-1])
    return (
        torch.stack(hs),
        torch.stack(cs) if cs else None,
        torch.stack(gates) if gates else None,
        logits,
    )


def _memory_grad(
    model: CharRNN, layers: list[nn.Module], ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, K: int, M: int
) -> np.ndarray:
    """Mean over M positions t of |d loss_t / d e_{t-k}| (the embedding of the input k back),
    k = 1 … K: one backward pass through a batch of windows, each ending at its t."""
    T = len(ids)
    targets = np.unique(np.linspace(K, T - 1, M).round().astype(np.int64))
    starts = targets - K  # a window holds the inputs starts … t-1
    windows = torch.stack([ids[s : s + K] for s in starts.tolist()])
    with torch.enable_grad():
        e = _embed(model, windows).requires_grad_(True)
        out = _run_stack(layers, e, _initial_states(h, c, starts))
        logits = _head(model, out[:, -1])
        goal = ids[torch.as_tensor(targets, device=ids.device)]
        loss = F.cross_entropy(logits, goal, reduction="sum")
        (grad,) = torch.autograd.grad(loss, e)
    return grad.norm(dim=2).mean(0).flip(0).double().cpu().numpy()  # k = 1 first


@torch.no_grad()
def _memory_flip(
    model: CharRNN,
    layers: list[nn.Module],
    ids: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor | None,
    probs: torch.Tensor,
    K: int,
    M: int,
) -> np.ndarray:
    """Mean over M positions s of the total variation between the predicted distributions with and
    without the character at s replaced, k characters later, k = 1 … K: one forward pass through
    a batch of windows, each starting at its replaced character."""
    T = len(ids)
    starts = np.unique(np.linspace(0, T - K - 1, M).round().astype(np.int64))
    rng = np.random.default_rng(0)  # its own generator: the training RNG never moves
    pool = ids.cpu().numpy()
    windows = torch.stack([ids[s : s + K] for s in starts.tolist()]).clone()
    for m, s in enumerate(starts.tolist()):
        others = pool[pool != pool[s]]  # a character of this text, not the one it replaces
        windows[m, 0] = int(rng.choice(others)) if len(others) else (int(pool[s]) + 1) % model.cfg.vocab_size
    out = _run_stack(layers, _embed(model, windows), _initial_states(h, c, starts))
    changed = _head(model, out).softmax(-1)  # (M, K, V): predictions of s+1 … s+K
    base = torch.stack([probs[s : s + K] for s in starts.tolist()])
    return (0.5 * (changed - base).abs().sum(-1)).mean(0).double().cpu().numpy()


def explore(
    model: CharRNN,
    vocab: Vocab,
    ids: np.ndarray,
    *,
    memory_k: int = MEMORY_K,
    memory_positions: int = MEMORY_POSITIONS,
) -> Exploration:
    """Every view of the explorer for the probe ``ids`` (vocabulary indices), from ``model``'s
    current weights; the model, its gradients and the RNG are left exactly as they were."""
    t0 = time.perf_counter()
    device = model.embed.weight.device
    ids_np = np.asarray(ids, dtype=np.int64)
    if len(ids_np) < 2:
        raise CorpusError("the probe text needs at least 2 characters")
    ids_t = torch.as_tensor(ids_np, device=device)
    # One thread on a CPU, as for sampling: the passes are thousands of small steps, and with two
    # threads each step waits for a descheduled one whenever another process wants the cores.
    threads = torch.get_num_threads()
    single = device.type == "cpu" and threads > 1
    if single:
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
            result = _explore(model, vocab, ids_np, ids_t, memory_k, memory_positions)
    finally:
        if single:
            torch.set_num_threads(threads)
    result.seconds = time.perf_counter() - t0
    return result


def _explore(
    model: CharRNN, vocab: Vocab, ids_np: np.ndarray, ids_t: torch.Tensor, memory_k: int, memory_positions: int
) -> Exploration:
    device = ids_t.device
    symbols = "".join(vocab.symbol(i) for i in ids_np.tolist())
    layers = _layer_copies(model)
    h, c, gates, logits = _probe_pass(model, layers, ids_t)
    logp = torch.log_softmax(logits.float(), -1)
    probs = logp.exp()
    k_top = min(TOP_GUESSES, logits.size(-1))
    top_probs, top_ids = probs.topk(k_top, -1)
    nll = -logp[:-1].gather(1, ids_t[1:, None])[:, 0]
    p_next = torch.full((len(ids_np),), float("nan"), device=device)
    p_next[:-1] = (-nll).exp()
    K = max(1, min(memory_k, len(ids_np) - 1))
    M = max(1, memory_positions)
    grad = _memory_grad(model, layers, ids_t, h, c, K, M)
    flip = _memory_flip(model, layers, ids_t, h, c, probs, K, M)
    h_np = h.cpu().numpy()
    c_np = None if c is None else c.cpu().numpy()
    gates_np = None if gates is None else gates.cpu().numpy()  # (L, T, 4, H)
    saturation = None
    if gates_np is not None:
        picked = gates_np[:, :, _GATE_ROWS, :]  # (L, T, 3, H)
        saturation = np.stack([(picked < SATURATION_LOW).mean(1), (picked > SATURATION_HIGH).mean(1)], 2)
    return Exploration(
        symbols=symbols,
        ids=ids_np,
        cell=model.cfg.cell,
        h=h_np,
        c=c_np,
        gates=gates_np,
        top_chars="".join(vocab.symbol(i) for i in top_ids.flatten().tolist()),
        top_probs=top_probs.cpu().numpy(),
        p_next=p_next.cpu().numpy(),
        loss=float(nll.mean()),
        cells=find_cells(symbols, h_np, c_np),
        saturation=None if saturation is None else saturation.astype(np.float32),
        memory_k=np.arange(1, K + 1),
        memory_grad=grad,
        memory_flip=flip,
    )
