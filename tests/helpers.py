"""What several test modules share: running the real command, waiting without sleeping blindly,
a terminal (tmux) to read as a person would, and tiny models."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnn_tui.core import events as ev

# A model small enough to train in a test's seconds, as command-line options.
TINY_ARGS = (
    "--batch-size 4 --seq-len 16 --layers 1 --hidden 32 --embed 8 --device cpu --threads 1 --sample-every 3600".split()
)


def cpu_auto_precision() -> str:
    """What ``--precision auto`` trains an LSTM in on this machine's CPU (core/precision.py):
    bf16 where the CPU has bf16 instructions, else fp32. Tests run on both kinds of machine."""
    from rnn_tui.core.precision import cpu_has_bf16

    return "bf16" if cpu_has_bf16() else "fp32"


def tiny_config(**kw):
    from rnn_tui.core.config import TrainConfig

    base = dict(
        batch_size=8,
        seq_len=32,
        layers=1,
        hidden=64,
        embed=16,
        lr=1e-2,
        warmup_steps=5,
        eval_every=1000,
        eval_every_minutes=0,
        sample_every_s=3600,
        save_every_minutes=60,
        device="cpu",
        threads=1,
    )
    base.update(TrainConfig.fixed_dropout_when_alone(kw))  # as the command line does
    return TrainConfig(**base)


def rnn_tui(
    *args: object, cwd: Path | None = None, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess, as a user runs it (wide, colourless output)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rnn_tui", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )


def command(*args: object) -> str:
    """The real command as one shell line (for tmux)."""
    return " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "rnn_tui", *args])


def assert_clean_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """A refusal as the user sees it: non-zero exit, one line on stderr, no traceback."""
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err


def wait_until(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll files or processes (they offer no event to await) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def app_wait(pilot, condition: Callable[[], object], timeout: float = 90.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (events arrive through the app's own poll)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


class Tmux:
    """A real terminal: the command runs in a detached tmux session we type into and read."""

    def __init__(self, command: str, width: int = 80, height: int = 24, env: dict[str, str] | None = None):
        self.name = f"rnn-tui-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command],
            check=True,
            env={**os.environ, "TERM": "xterm-256color", **(env or {})},
        )

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)], check=True)

    def wait_for(self, predicate: Callable[[str], object], timeout: float = 90, what: str = "") -> str:
        """Poll the screen until ``predicate(screen)``: a terminal offers no event to await."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


class SilentLink:
    """A trainer that never answers: whatever the screen shows came from the app alone."""

    def __init__(self) -> None:
        self.sent: list[ev.Command] = []

    def start(self) -> None: ...
    def send(self, command: ev.Command) -> None:
        self.sent.append(command)

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        return []

    def alive(self) -> bool:
        return True

    def join(self, timeout: float | None = None) -> None: ...
    def close(self) -> None: ...

    @property
    def exit_code(self) -> int | None:
        return None


def simple_encoding(raw: bytes, kind: str) -> tuple[tuple[int, ...], np.ndarray]:
    """The obvious whole-file method (decode everything, sort the code points) as a reference."""
    if kind == "char":
        text = raw.decode("utf-8")
        text = text[1:] if text.startswith("\ufeff") else text
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    else:
        codes = np.frombuffer(raw, dtype=np.uint8)
    table = np.unique(codes)
    return tuple(int(c) for c in table), np.searchsorted(table, codes)


def detach_args(sample_every: float = 2) -> list[str]:
    """A tiny model for background runs that viewers watch: evaluations and samples come often."""
    tiny = "--batch-size 8 --seq-len 32 --layers 1 --hidden 48 --embed 16 --device cpu --threads 1"
    return [
        *tiny.split(),
        "--eval-every",
        "100",
        "--eval-chars",
        "4000",
        "--sample-every",
        str(sample_every),
        "--sample-length",
        "40",
    ]


# A tiny model for the live app's tests (a real trainer in its own process).
TINY_APP = dict(
    batch_size=4,
    seq_len=16,
    layers=2,
    hidden=32,
    embed=8,
    device="cpu",
    eval_every=40,
    sample_every_s=3600,
    save_every_minutes=60,
    sample_length=40,
)


def app_request(corpus: Path, tmp_path: Path, **overrides: object):
    from rnn_tui.host.request import TrainRequest

    return TrainRequest(corpus_file=corpus, overrides={**TINY_APP, **overrides}, runs_dir=tmp_path / "runs")


def started_event(**fields: object) -> ev.Started:
    """A ``Started`` event with plain values, any field overridden."""
    base: dict[str, object] = dict(
        run_dir="r",
        corpus="c.txt",
        config={},
        vocab_size=3,
        n_params=1,
        device="cpu",
        train_chars=1,
        val_chars=1,
        batches_per_epoch=1,
        step=0,
        best_val=None,
        last_val=None,
        max_steps=None,
        max_minutes=None,
    )
    return ev.Started(**{**base, **fields})  # type: ignore[arg-type]


def progress_event(**fields: object) -> ev.Progress:
    """A ``Progress`` event of one step, any field overridden."""
    base: dict[str, object] = dict(
        steps=[1],
        losses=[2.0],
        step=1,
        epoch=0.0,
        lr=1e-3,
        grad_norm=0.5,
        chars_per_s=20_000.0,
        elapsed_s=0.0,
        tokens=1,
    )
    return ev.Progress(**{**base, **fields})  # type: ignore[arg-type]


def fake_run(
    root: Path,
    name: str,
    steps: int = 300,
    *,
    corpus: str = "small.txt",
    vocab_size: int = 65,
    state: str = "finished",
    end_loss: float = 1.6,
    step_s: float = 0.1,
    **config: object,
) -> Path:
    """A run directory as a trainer leaves it (config.json, metrics.jsonl, trainer.json), written
    directly: curves of a known shape in an instant, for the runs screen and ``rnn-tui runs``."""
    import json

    from rnn_tui.core.config import TrainConfig

    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    cfg = {**TrainConfig(device="cpu").to_dict(), **config}
    record = {"config": cfg, "vocab_kind": "char", "vocab_size": vocab_size, "corpus": f"/data/{corpus}"}
    (run / "config.json").write_text(json.dumps(record), encoding="utf-8")
    rows = fake_rows(
        1,
        steps,
        chars_per_step=cfg["batch_size"] * cfg["seq_len"],
        eval_every=cfg["eval_every"],
        end_loss=end_loss,
        step_s=step_s,
    )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (run / "trainer.json").write_text(json.dumps({"state": state, "step": steps}), encoding="utf-8")
    return run


def fake_rows(
    first: int,
    last: int,
    *,
    chars_per_step: int = 3200,
    eval_every: int = 250,
    end_loss: float = 1.6,
    step_s: float = 0.1,
) -> list[dict]:
    """metrics.jsonl rows for steps ``first..last``: a loss falling from about 4.2 towards
    ``end_loss``, an anchor (time, characters) every 5 steps and a validation every ``eval_every``."""
    import math

    rows: list[dict] = []
    for step in range(first, last + 1):
        loss = end_loss + (4.2 - end_loss) * math.exp(-step / 60)
        anchor = {"train_s": round(step * step_s, 2), "tokens": step * chars_per_step}
        row: dict = {"kind": "train", "step": step, "loss": round(loss, 5), "grad_norm": 0.5, "lr": 0.004}
        rows.append({**row, **anchor} if step % 5 == 0 else row)
        if step % eval_every == 0:
            rows.append({"kind": "val", "step": step, "val_loss": round(loss + 0.1, 5), **anchor})
    return rows
