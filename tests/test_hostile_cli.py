"""Hostile inputs met by the real commands (subprocesses, a pty, tmux): escape sequences from a
corpus never reach the terminal, a closed stdout loses no run, a stop signal during start-up
leaves nothing, a trainer that cannot make its socket still admits no second trainer, options
out of range and files that are not files are one line."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnn_tui.remote.status import _last_step, lock_held, read_status
from tests.helpers import TINY_ARGS, Tmux, assert_clean_error, command, rnn_tui, wait_until

pytestmark = pytest.mark.slow

OSC_TITLE = "\x1b]2;PWNED\x07"
HOSTILE = f"{OSC_TITLE}\x1b[2J\x1b[H\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\\x1b[?2004l\x9b31m"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[Path, Path, str]:
    """A run trained on a corpus full of escape sequences, sampled with a prime made of them;
    the headless output of that training. Its budget is in time, not steps, so that the sample
    due after 0.2 s comes however fast the machine is."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "escapes.txt"
    rng = random.Random(3)
    words = ["the", "cat", HOSTILE, "\n", "sat", "\x07", "\r"]
    corpus.write_text("".join(rng.choice(words) + " " for _ in range(12_000)), encoding="utf-8")
    runs = root / "runs"
    proc = rnn_tui(
        corpus, "--headless", *TINY_ARGS, "--sample-every", "0.2", "--max-minutes", "0.02", "--eval-every", "200",
        "--prime", HOSTILE, "--runs-dir", runs,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return next(runs.iterdir()), corpus, proc.stdout


def test_headless_output_shows_escapes_and_obeys_none(hostile_run):
    _, _, out = hostile_run
    assert "--- sample at step" in out  # a sample was printed, starting with the prime
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "␛]2;PWNED␇" in out


def read_pty(args: list[str]) -> bytes:
    """What a command writes to a terminal (a pty), byte for byte."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", *args],
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(master)
    assert proc.returncode == 0
    return out


def test_sample_shows_escapes_on_a_terminal_and_writes_them_raw_to_a_pipe_or_with_raw(hostile_run):
    run, _, _ = hostile_run
    args = ["sample", str(run), "--prime", HOSTILE, "--length", "300", "--seed", "1"]
    on_terminal = read_pty(args)
    assert b"\x1b" not in on_terminal and b"\xc2\x9b" not in on_terminal and b"\x07" not in on_terminal
    assert "␛]2;PWNED␇".encode() in on_terminal
    piped = rnn_tui(*args)
    assert piped.returncode == 0 and piped.stdout.startswith(HOSTILE)  # the text exactly, for a file
    assert OSC_TITLE.encode() in read_pty([*args, "--raw"])


def test_info_and_runs_show_escapes_from_a_checkpoint_and_run_files(hostile_run, tmp_path):
    run, _, _ = hostile_run
    info = rnn_tui("info", run)
    assert info.returncode == 0 and "\x1b" not in info.stdout and "␛]2;PWNED␇" in info.stdout
    runs = tmp_path / "runs"
    evil = runs / f"evil{OSC_TITLE}run"
    shutil.copytree(run, evil)
    record = json.loads((evil / "config.json").read_text())
    record["corpus"] = f"/x/{OSC_TITLE}corpus.txt"
    (evil / "config.json").write_text(json.dumps(record))
    listing = rnn_tui("runs", "--runs-dir", runs)
    assert listing.returncode == 0 and "\x1b" not in listing.stdout
    assert "evil␛]2;PWNED␇run" in listing.stdout and "␛]2;PWNED␇corpus.txt" in listing.stdout
    refused = rnn_tui("sample", evil / "checkpoints" / f"no{OSC_TITLE}.pt")
    assert_clean_error(refused, "not found")
    assert "\x1b" not in refused.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_viewer_of_a_hostile_damaged_run_shows_escapes_and_does_not_crash(hostile_run, tmp_path):
    """``rnn-tui attach`` in a real terminal on a run whose files carry escape sequences, markup
    and damaged lines: the pane's title is not changed, the escapes are shown, the app runs on."""
    run, _, _ = hostile_run
    target = tmp_path / "runs" / "damaged-run"
    shutil.copytree(run, target)
    with open(target / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "train", "step": NaN, "loss": 1}\n5\n\xff\xfe\n[[[[\n')
    record = json.loads((target / "config.json").read_text())
    record["corpus"] = f"/x/[b]{OSC_TITLE}[/i]corpus.txt"
    record["config"]["max_steps"] = "many"
    (target / "config.json").write_text(json.dumps(record))
    (target / "trainer.json").write_text(json.dumps({"state": "finished", "pid": "x", "step": [1]}))
    term = Tmux(f"{command('attach', target)}; echo EXIT=$?; sleep 60", width=120, height=40)
    try:
        screen = term.wait_for(lambda s: "viewer" in s and "PWNED" in s, what="the viewer")
        assert "␛]2;PWNED␇" in screen
        term.wait_for(lambda s: "4 damaged" in s, what="the damaged lines noted")
        title = subprocess.run(
            ["tmux", "display", "-p", "-t", term.name, "#{pane_title}"], capture_output=True, text=True
        )
        assert "PWNED" not in title.stdout
        term.keys("q")
        term.wait_for(lambda s: "EXIT=0" in s, what="the viewer to leave")
        assert "Traceback" not in term.screen()
    finally:
        term.close()


def test_a_closed_stdout_saves_and_stops_with_a_truthful_state(small_corpus, tmp_path):
    """``rnn-tui train --headless | head -2``: the run saves and stops as on SIGTERM, exit 0."""
    runs = tmp_path / "runs"
    line = command(small_corpus, "--headless", *TINY_ARGS, "--eval-every", "20", "--runs-dir", runs)
    proc = subprocess.run(
        ["bash", "-c", f"{line} | head -2; echo ${{PIPESTATUS[0]}} > {tmp_path / 'code'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert len(proc.stdout.splitlines()) == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "code").read_text().strip() == "0"
    run = next(runs.iterdir())
    status = read_status(run)
    assert status["state"] == "stopped" and (run / "checkpoints" / "latest.pt").exists()
    assert status["step"] == torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] > 0


def test_a_stop_signal_during_start_up_leaves_no_run_directory(small_corpus, tmp_path):
    """SIGTERM at any moment of the start (importing torch, reading the corpus, making the run
    directory and the model): either nothing is left, or a whole run that saved and stopped.
    The first signal comes the moment the run directory appears (the model is still being
    built), the others at moments spread over the start."""
    runs = tmp_path / "runs"
    for delay in (None, 0.5, 1.5, 3.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnn_tui", "train", str(small_corpus), "--headless", *TINY_ARGS,
             "--hidden", "1024", "--layers", "2", "--max-steps", "100000", "--runs-dir", str(runs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if delay is None:
            deadline = time.monotonic() + 120
            while not (runs.exists() and any(runs.iterdir())) and time.monotonic() < deadline:
                time.sleep(0.002)  # polling a directory: no event says it was made
            assert not (runs / "x").exists()
        else:
            time.sleep(delay)  # the moment of the signal is what varies; nothing is awaited
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        for run in list(runs.iterdir()) if runs.exists() else []:
            assert (run / "checkpoints" / "latest.pt").exists(), f"{run} left behind after SIGTERM ({delay})"
            assert read_status(run)["state"] == "stopped"
            shutil.rmtree(run)
        if delay is None:
            assert "while starting" in err  # it was the start that was stopped


def test_no_second_trainer_on_a_run_whose_trainer_has_no_socket(small_corpus, tmp_path):
    """Two real trainers, with a missing $XDG_RUNTIME_DIR and a run path too long for a socket
    beside it (so no control socket can be made): the second --resume is refused, the first
    trains on alone and its run's metrics are its own."""
    runs = tmp_path / ("r" * 120) / "runs"
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "gone" / "runtime")}
    first = rnn_tui(small_corpus, "--headless", *TINY_ARGS, "--max-steps", "30", "--runs-dir", runs, env=env)
    assert first.returncode == 0, first.stderr
    run = next(runs.iterdir())
    args = ["train", "--resume", str(run), "--headless", *TINY_ARGS, "--max-steps", "100000"]
    trainer = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        wait_until(lambda: lock_held(run) and (_last_step(run / "metrics.jsonl") or 0) > 40, 120, "the first trainer")
        assert read_status(run)["socket"] is None  # it could not make one
        second = rnn_tui(*args, env=env)
        assert_clean_error(second, "training now")
        assert trainer.poll() is None
        # the same race without the front end's check: the run's lock refuses it
        from rnn_tui.host.request import TrainRequest
        from rnn_tui.host.serve import serve_session

        done = serve_session(TrainRequest(resume=str(run), overrides={"max_steps": 10**5}), None, lambda e: None)  # type: ignore[arg-type]
        assert done.reason == "refused" and "being trained already" in (done.error or "")
        from rnn_tui.remote.client import AttachError, SocketLink

        with pytest.raises(AttachError, match="serves no control socket"):  # a viewer is told, not crashed
            SocketLink(run).start()
    finally:
        trainer.send_signal(signal.SIGTERM)
        trainer.wait(60)
    assert read_status(run)["state"] == "stopped"
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert steps == sorted(steps)  # one writer: never two interleaved streams of steps


@pytest.mark.parametrize(
    "args, words",
    [
        (["--lr", "nan"], ["--lr", "(0, 10]"]),
        (["--max-minutes", "inf"], ["--max-minutes"]),
        (["--seed", "-1"], ["--seed"]),
        (["--threads", "10000"], ["--threads"]),
        (["--hidden", "100000"], ["--hidden"]),
        (["--save-every-minutes", "nan"], ["--save-every-minutes"]),
    ],
)
def test_options_out_of_range_are_one_line(small_corpus, tmp_path, args, words):
    assert_clean_error(rnn_tui(small_corpus, "--headless", *args, "--runs-dir", tmp_path / "runs"), *words)
    assert not (tmp_path / "runs").exists()


def test_sample_options_out_of_range_and_stored_options_out_of_range_are_one_line(hostile_run, tmp_path):
    run, _, _ = hostile_run
    assert_clean_error(rnn_tui("sample", run, "--length", "2000000000"), "--length", "1,000,000")
    assert_clean_error(rnn_tui("sample", run, "--temperature", "nan"), "--temperature")
    assert_clean_error(rnn_tui("sample", run, "--top-k", "-3"), "--top-k")
    ck = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    ck["config"]["dropout"] = 5.0
    ck["model_config"]["dropout"] = 5.0
    bad = tmp_path / "dropout5.pt"
    torch.save(ck, bad)
    assert_clean_error(rnn_tui("info", bad), "dropout", "out of range")
    assert_clean_error(rnn_tui("sample", bad), "dropout", "out of range")
    assert_clean_error(rnn_tui("train", "--resume", bad, "--headless", "--runs-dir", tmp_path), "dropout")


def test_a_corpus_or_checkpoint_that_is_a_pipe_or_a_device_is_one_line_and_no_hang(hostile_run, tmp_path):
    run, _, _ = hostile_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    ck = torch.load(copy / "checkpoints" / "latest.pt", weights_only=True)
    ck["corpus"] = str(fifo)  # the corpus became a FIFO: --resume used to hang on it
    torch.save(ck, copy / "checkpoints" / "latest.pt")
    assert_clean_error(rnn_tui("train", "--resume", copy, "--headless", timeout=120), "named pipe")
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    assert_clean_error(
        rnn_tui(zero, "--headless", "--runs-dir", tmp_path / "runs"), "character device", "symbolic link"
    )
    assert_clean_error(rnn_tui("info", zero, timeout=120), "character device")
    assert_clean_error(rnn_tui("info", fifo, timeout=120), "named pipe")
