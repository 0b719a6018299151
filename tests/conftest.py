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


@pytest.fixture(autouse=True)
def _nothing_written_to_the_checkout():
    """Tests write only to temporary directories: a test that leaves a run in the checkout fails."""

    def runs() -> set[str]:
        try:
            return set(os.listdir(ROOT / "runs"))
        except OSError:
            return set()

    before = runs()
    yield
    left = runs() - before
    assert not left, f"this test left runs in the checkout: {sorted(left)}"


os.environ.setdefault("RNN_TUI_TESTING", "1")
