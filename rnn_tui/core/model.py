"""The model: embedding -> recurrent stack (LSTM, GRU or vanilla RNN) -> linear over the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        rnn_dropout = cfg.dropout if cfg.layers > 1 else 0.0
        self.rnn = CELLS[cfg.cell](cfg.embed, cfg.hidden, cfg.layers, batch_first=True, dropout=rnn_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)
        if cfg.cell == "lstm":
            # Forget-gate bias 1 (Jozefowicz et al. 2015): cells remember by default early in training.
            # PyTorch's gate order is input, forget, cell, output; the two biases add up.
            h = cfg.hidden
            with torch.no_grad():
                for k in range(cfg.layers):
                    getattr(self.rnn, f"bias_ih_l{k}")[h : 2 * h].fill_(1.0)
                    getattr(self.rnn, f"bias_hh_l{k}")[h : 2 * h].fill_(0.0)

    # The output layer in fp32 even under a lower-precision autocast (set for a CPU's bf16): its
    # logits rounded to bf16 (8 bits of mantissa) blur the loss the model refines late in
    # training, and it is a small share of the work.
    head_in_fp32 = False

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        out, state = self.rnn(self.embed(idx), state)
        out = self.drop(out)
        if self.head_in_fp32 and out.dtype != torch.float32:
            with torch.autocast(out.device.type, enabled=False):
                return self.head(out.float()), state
        return self.head(out), state

    def set_dropout(self, p: float) -> None:
        """Change the dropout (it has no weights): between the layers and before the output."""
        self.drop.p = p
        if self.cfg.layers > 1:
            self.rnn.dropout = p

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def zero_state(cfg: ModelConfig, batch: int, device: torch.device | str) -> State:
    z = lambda: torch.zeros(cfg.layers, batch, cfg.hidden, device=device)  # noqa: E731
    return (z(), z()) if cfg.cell == "lstm" else z()


def detach_state(state: State, dtype: torch.dtype | None = None) -> State:
    """``state`` cut from its graph (and in ``dtype`` when given)."""
    if isinstance(state, tuple):
        return tuple(s.detach().to(dtype) if dtype else s.detach() for s in state)  # type: ignore[return-value]
    return state.detach().to(dtype) if dtype else state.detach()


def state_tensors(state: State) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def state_from_tensors(tensors: list[torch.Tensor], cell: str) -> State:
    return (tensors[0], tensors[1]) if cell == "lstm" else tensors[0]


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def parameter_count(cfg: ModelConfig) -> int:
    """The model's parameters, computed from its shape (before any memory is taken)."""
    g, h = GATES[cfg.cell], cfg.hidden
    stack = sum(g * h * ((cfg.embed if k == 0 else h) + h) + 2 * g * h for k in range(cfg.layers))
    return cfg.vocab_size * cfg.embed + stack + h * cfg.vocab_size + cfg.vocab_size


def training_bytes(cfg: ModelConfig, batch: int, seq_len: int) -> int:
    """About how much memory training takes, float32: weights, gradients, two Adam moments and
    the averaged weights (5 copies), plus the activations kept for backward over one batch."""
    g = GATES[cfg.cell]
    activations = batch * seq_len * (cfg.layers * cfg.hidden * (2 * g + 4) + 3 * cfg.vocab_size + cfg.embed)
    return 4 * (5 * parameter_count(cfg) + activations)
