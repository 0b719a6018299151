"""char-rnn's striped batch layout for truncated backpropagation through time.

The split is cut into ``batch_size`` contiguous rows; batch ``i`` is columns
``[offset + i*seq_len, offset + (i+1)*seq_len)`` of every row. Row ``r`` of batch ``i+1`` continues
exactly where row ``r`` of batch ``i`` ended, so the hidden state can be carried from one batch to
the next (detached) and the model sees unbounded context.

``offset`` (0 <= offset < seq_len) changes from epoch to epoch (``epoch_offset``), so the model
does not see the same text cut at the same places every epoch: a small-corpus run goes through
the data many times, and identical chunks are easier to memorise than to generalise from.

With several processes (data parallelism) the layout is the global one, ``batch_size`` x the
number of processes rows, and each process reads its own contiguous ``rows`` of it: two processes
of batch b see exactly the streams one process of batch 2b would.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import CorpusError


def min_chars(batch_size: int, seq_len: int) -> int:
    """The fewest symbols a split needs for one striped batch."""
    return batch_size * seq_len + 1


class StripedBatches:
    def __init__(
        self, data: np.ndarray, batch_size: int, seq_len: int, what: str = "training", rows: slice | None = None
    ):
        """``batch_size`` rows in all; this process reads ``rows`` of them (default: all)."""
        need = min_chars(batch_size, seq_len)
        if len(data) < need:
            raise CorpusError(
                f"the {what} split has {len(data):,} characters; batch size {batch_size} x "
                f"sequence length {seq_len} needs at least {need:,} "
                f"(use a larger file or smaller --batch-size/--seq-len)"
            )
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.row_len = (len(data) - 1) // batch_size
        # leave seq_len - 1 symbols of slack at the end of each row for the epoch offset
        # (rows too short for that get no offset)
        with_slack = (self.row_len - (seq_len - 1)) // seq_len
        self.per_epoch = with_slack if with_slack >= 1 else self.row_len // seq_len
        used = self.row_len * batch_size
        mine = rows or slice(0, batch_size)
        # x and y as (batch, row_len) views of the compact array; converted to int64 per batch.
        self._x = data[:used].reshape(batch_size, self.row_len)[mine]
        self._y = data[1 : used + 1].reshape(batch_size, self.row_len)[mine]

    def __len__(self) -> int:
        return self.per_epoch

    def epoch_offset(self, epoch: int, seed: int) -> int:
        """Where epoch ``epoch``'s chunks start in each row: 0 for the first, then pseudo-random."""
        slack = self.row_len - self.per_epoch * self.seq_len
        if epoch == 0 or slack <= 0:
            return 0
        return int(np.random.default_rng([seed, epoch]).integers(0, min(slack, self.seq_len - 1) + 1))

    def get(self, i: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``i`` (0 <= i < len(self)) as int64 tensors of shape (batch_size, seq_len)."""
        a, b = offset + i * self.seq_len, offset + (i + 1) * self.seq_len
        x = torch.from_numpy(self._x[:, a:b].astype(np.int64))
        y = torch.from_numpy(self._y[:, a:b].astype(np.int64))
        return x, y


def eval_rows(data: np.ndarray, max_rows: int, max_chars: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation split as ``rows`` long contiguous streams, for one batched forward pass.

    ``x`` and ``y`` are views of one int64 copy (``y`` is ``x`` shifted by one symbol), so the
    copy costs 8 bytes per validation symbol, not 16.
    """
    if max_chars is not None and len(data) > max_chars + 1:
        data = data[: max_chars + 1]
    rows = max(1, min(max_rows, (len(data) - 1) // 32))
    row_len = (len(data) - 1) // rows
    if row_len < 1:
        raise CorpusError(f"the validation split has {len(data)} characters; it needs at least 2")
    n = rows * row_len
    flat = torch.from_numpy(data[: n + 1].astype(np.int64))
    return flat[:n].view(rows, row_len), flat[1 : n + 1].view(rows, row_len)
