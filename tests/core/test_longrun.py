"""Long runs: memory stays flat over thousands of steps, and metrics.jsonl grows by appends."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

from rnn_tui.core import events as ev
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow  # 6,000 training steps

STEPS = 6000
WARM = 1000  # steps before the baseline: allocator pools, oneDNN caches and the like settle


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bytes_written() -> int:
    """Bytes this process handed to write() so far (/proc/self/io, wchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_and_metrics_are_appended(small_corpus, tmp_path):
    cfg = tiny_config(
        hidden=16, embed=8, seq_len=8, batch_size=4, max_steps=STEPS, eval_every=500, eval_chars=2000, warmup_steps=10
    )
    t = Trainer(cfg, read_corpus(small_corpus), run=RunDir(tmp_path / "run"))
    metrics = tmp_path / "run" / "metrics.jsonl"
    marks: dict = {}

    def emit(e):
        if isinstance(e, ev.Progress) and e.step >= WARM and "rss" not in marks:
            marks.update(
                rss=rss_mb(),
                wchar=bytes_written(),
                size=metrics.stat().st_size,
                inode=metrics.stat().st_ino,
                head=metrics.read_bytes()[:4096],
            )

    # post often: every post logs rows, emits an event and may snapshot; thousands of them
    done = Session(t, queue.Queue(), emit, post_interval=0.002, snapshot_every_s=0.2).run()
    assert done.reason == "max-steps" and done.step == STEPS
    grown = rss_mb() - marks["rss"]
    assert grown < 30, f"resident memory grew {grown:.1f} MB over {STEPS - WARM} steps"

    # metrics.jsonl holds every step, and was only ever appended to: the same file, its start
    # unchanged, and the bytes written since the mark about what the file gained (rewriting
    # the file at each post would write it over and over: hundreds of times more)
    rows = t.run.read_metrics()
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, STEPS + 1))
    assert metrics.stat().st_ino == marks["inode"]
    assert metrics.read_bytes()[:4096] == marks["head"]
    gained = metrics.stat().st_size - marks["size"]
    checkpoints = sum(p.stat().st_size for p in t.run.checkpoints.iterdir()) * 4  # best.pt saves, latest.pt
    written = bytes_written() - marks["wchar"]
    assert written < 2 * gained + checkpoints + 2**20, f"wrote {written:,} bytes for {gained:,} of metrics"
