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
def _nothing_written_to_the_checkout(tmp_path_factory):
    """Tests write only to temporary directories: a test that leaves a run in the checkout fails.
    (A run of the person's own, training in ./runs while the tests run, is not a test's.)"""
    base = str(tmp_path_factory.getbasetemp())

    def runs() -> set[str]:
        try:
            return set(os.listdir(ROOT / "runs"))
        except OSError:
            return set()

    def made_by_a_test(name: str) -> bool:
        run = ROOT / "runs" / name
        try:
            config = (run / "config.json").read_text(encoding="utf-8")
        except OSError:  # no config: a run that never started (or one starting this instant)
            return not (run / "trainer.json").exists()
        return base in config  # its corpus is one of the tests' temporary files

    before = runs()
    yield
    left = sorted(name for name in runs() - before if made_by_a_test(name))
    assert not left, f"this test left runs in the checkout: {left}"


os.environ.setdefault("RNN_TUI_TESTING", "1")
