from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT / "corpora" / "tinyshakespeare.txt"


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """The first 60k characters of Tiny Shakespeare: enough to learn something in seconds."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests share a 2-core machine; one torch thread keeps them from fighting each other.
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_config(**kw):
    from rnn_tui.core.config import TrainConfig

    base = dict(batch_size=8, seq_len=32, layers=1, hidden=64, embed=16, lr=1e-2, warmup_steps=5,
                eval_every=1000, sample_every_s=3600, save_every_minutes=60, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


os.environ.setdefault("RNN_TUI_TESTING", "1")
