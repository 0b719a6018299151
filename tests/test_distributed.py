"""Data-parallel training on the CPU (gloo), as CI can run it: two processes started by
``--nproc 2`` (PyTorch's elastic launcher) or by hand as torchrun would, tiny models.

The core test: two processes of batch b give the same losses, step for step, as one process of
batch 2b, across an evaluation and a save/resume; and the resume continues exactly on two
processes, or on one with the same global batch. Then what happens when things go wrong: a
process killed, the launcher told to stop, options that differ, and a viewer pausing the run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.remote.status import pid_alive, read_status
from tests.helpers import app_wait, command, rnn_tui, wait_until

pytestmark = pytest.mark.slow  # every test starts two training processes (or more)

# A tiny model, no dropout (the processes would draw their own masks), evaluations every 20 steps
# fp32: N processes of batch b match one of batch N*b to float rounding; bf16 kernels (the default
# on a CPU with bf16 instructions) round differently at each batch shape
TINY = (
    "--seq-len 16 --layers 1 --hidden 32 --embed 8 --device cpu --threads 1 --sample-every 3600 "
    "--dropout 0 --eval-every 20 --eval-every-minutes 0 --eval-chars 4000 --warmup-steps 5 --precision fp32"
).split()
TIMEOUT = 300  # two processes importing torch on a busy 2-core machine


def train(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = rnn_tui("train", *args, "--headless", *TINY, cwd=cwd, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def losses(run: Path, kind: str = "train") -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    key = "loss" if kind == "train" else "val_loss"
    return {r["step"]: r[key] for r in rows if r["kind"] == kind}


def close(a: dict[int, float], b: dict[int, float], tol: float = 3e-5) -> bool:
    """The same steps, the same losses to within the order in which gradients are added up."""
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    worst = max(abs(a[s] - b[s]) for s in a)
    assert worst <= tol, f"largest difference {worst:g}"
    return True


def test_two_processes_of_batch_b_train_as_one_of_batch_2b_across_an_evaluation_and_a_resume(small_corpus, tmp_path):
    # one process, batch 8: 30 steps, stopped and saved; resumed to 60
    train(small_corpus, "--batch-size", "8", "--max-steps", "30", "--runs-dir", tmp_path / "one", cwd=tmp_path)
    one = only_run(tmp_path / "one")
    train("--resume", one, "--max-steps", "60", cwd=tmp_path)
    # two processes, batch 4 each: the same
    out = train(
        small_corpus,
        "--nproc",
        "2",
        "--batch-size",
        "4",
        "--max-steps",
        "30",
        "--runs-dir",
        tmp_path / "two",
        cwd=tmp_path,
    )
    assert out.stdout.startswith("starting 2 processes: gloo on the CPU, 1 thread each")
    two = only_run(tmp_path / "two")
    saved = ckpt_io.load(two / "checkpoints" / "latest.pt")
    assert saved["world_size"] == 2 and saved["hidden"][0].shape[1] == 8  # every process's streams
    assert len(saved["rng_ranks"]) == 2
    shutil.copytree(two, tmp_path / "elsewhere" / "same-global-batch")
    shutil.copytree(two, tmp_path / "elsewhere" / "another-batch")
    out = train("--resume", two, "--nproc", "2", "--max-steps", "60", cwd=tmp_path)
    assert "info: this run trained on" not in out.stdout  # the same processes: nothing to say

    assert len(losses(one)) == 60 and close(losses(one), losses(two))
    assert sorted(losses(one, "val")) == [20, 30, 40, 60]  # evaluations, at the stop and after the resume
    assert close(losses(one, "val"), losses(two, "val"))  # evaluated in halves, added up: the same loss

    # on one process with the same global batch (8 streams): every stream's state carries on, exactly
    same = tmp_path / "elsewhere" / "same-global-batch"
    out = train("--resume", same, "--batch-size", "8", "--max-steps", "60", cwd=tmp_path)
    assert "info: this run trained on 2 processes and resumes on 1 process: the global batch is the same" in " ".join(
        out.stdout.split()
    )
    assert close(losses(one), losses(same))

    # on one process of batch 4: the stripes are cut anew and the hidden state starts from zero
    other = tmp_path / "elsewhere" / "another-batch"
    out = train("--resume", other, "--batch-size", "4", "--max-steps", "40", cwd=tmp_path)
    said = " ".join(out.stdout.split())
    assert (
        "info: this run trained on 2 processes and resumes on 1 process: the stripes are cut anew for a "
        "global batch of 4 streams (was 8) and the hidden state starts from zero" in said
    )
    assert max(losses(other)) == 40 and ckpt_io.load(other / "checkpoints" / "latest.pt")["world_size"] == 1

    # a checkpoint of two processes reads like any other
    info = rnn_tui("info", two, cwd=tmp_path)
    assert (
        info.returncode == 0 and "processes    2 (data-parallel: --batch-size 4 each, 8 streams in all)" in info.stdout
    )
    sample = rnn_tui("sample", two, "--length", "30", "--seed", "1", cwd=tmp_path)
    assert sample.returncode == 0 and len(sample.stdout) >= 30


def start_headless(corpus: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """A two-process headless run that trains until stopped; its launcher and run directory once
    both processes train."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnn_tui",
            "train",
            str(corpus),
            "--headless",
            "--nproc",
            "2",
            "--batch-size",
            "4",
            *TINY,
            "--runs-dir",
            str(tmp_path / "runs"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )

    def training() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        runs = list((tmp_path / "runs").glob("*/trainer.json"))
        return bool(runs) and read_status(runs[0].parent).get("state") == "running"

    wait_until(training, timeout=TIMEOUT, what="two processes to train")
    return proc, next((tmp_path / "runs").iterdir())


def test_a_killed_process_stops_the_others_and_the_run_resumes(small_corpus, tmp_path):
    proc, run = start_headless(small_corpus, tmp_path, "--save-every-minutes", "0.01")
    wait_until(lambda: read_status(run).get("saved_step"), timeout=TIMEOUT, what="a periodic checkpoint")
    pids = read_status(run)["pids"]
    os.kill(pids[1], signal.SIGKILL)
    killed = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - killed < 60  # bounded: the launcher stops the others at once
    assert not any(pid_alive(p) for p in pids)
    assert proc.returncode == 2
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1] == (
        f"rnn-tui: error: process 1 of 2 was killed by SIGKILL; the run stopped "
        f"(continue it with: rnn-tui train --resume {run} --nproc 2)"
    )
    listing = rnn_tui("runs", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert f"{run.name}" in listing.stdout and " crashed " in listing.stdout
    saved = ckpt_io.load(run / "checkpoints" / "latest.pt")["step"]
    resumed = rnn_tui(
        "train", "--resume", run, "--nproc", "2", "--headless", "--max-steps", saved + 5, cwd=tmp_path, timeout=TIMEOUT
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed at step {saved}" in resumed.stdout
    assert ckpt_io.load(run / "checkpoints" / "latest.pt")["step"] == saved + 5


def test_sigterm_to_the_launcher_saves_and_stops_every_process(small_corpus, tmp_path):
    proc, run = start_headless(small_corpus, tmp_path)
    wait_until(lambda: (read_status(run).get("step") or 0) >= 20, timeout=TIMEOUT, what="an evaluation")
    pids = read_status(run)["pids"]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err  # as one process: saved and stopped cleanly
    assert not any(pid_alive(p) for p in pids)
    status = read_status(run)
    assert status["state"] == "stopped" and status["saved_step"] == status["step"]
    assert ckpt_io.load(run / "checkpoints" / "latest.pt")["step"] == status["step"]
    assert "Traceback" not in out + err
    assert f"resume with: {command('train', '--resume', run, '--nproc', '2')}" in out  # exactly: as many again


def test_a_killed_launcher_leaves_no_process_behind(small_corpus, tmp_path):
    """kill -9 of a background run's launcher: its processes notice, save and end (torch's
    wrapper would otherwise wait forever for the dead launcher to read their result)."""
    started = rnn_tui(
        "train", small_corpus, "--detach", "--nproc", "2", *TINY, "--batch-size", "4",
        "--runs-dir", tmp_path / "runs", cwd=tmp_path, timeout=TIMEOUT,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    run = only_run(tmp_path / "runs")
    wait_until(lambda: (read_status(run).get("step") or 0) >= 20, timeout=TIMEOUT, what="training")
    status = read_status(run)
    os.kill(status["launcher_pid"], signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in status["pids"]), timeout=TIMEOUT, what="the processes to end")
    assert read_status(run)["state"] == "stopped"
    assert ckpt_io.load(run / "checkpoints" / "latest.pt")["step"] >= 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_torchrun(rank: int, port: int, *args: object, cwd: Path) -> subprocess.Popen[str]:
    """One process as torchrun starts it: its rank and the rendezvous in its environment."""
    env = {
        **os.environ,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "COLUMNS": "200",
        "RNN_TUI_COLLECTIVE_TIMEOUT": "60",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def test_processes_started_with_different_options_refuse_in_one_line(small_corpus, tmp_path):
    port = free_port()
    common = [small_corpus, "--headless", *TINY, "--batch-size", "4", "--runs-dir", tmp_path / "runs"]
    first = as_torchrun(0, port, *common, "--lr", "0.01", cwd=tmp_path)
    second = as_torchrun(1, port, *common, "--lr", "0.02", cwd=tmp_path)
    (out0, err0), (out1, err1) = first.communicate(timeout=TIMEOUT), second.communicate(timeout=TIMEOUT)
    assert first.returncode == second.returncode == 2
    assert err0.strip() == (
        "rnn-tui: error: the processes were started with different options: --lr is 0.01 in process 0 and "
        "0.02 in process 1 (start every process with the same command)"
    )
    assert err1.strip() == "" and "Traceback" not in out0 + out1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_torchrun_runs_rnn_tui_as_pytorch_users_expect(small_corpus, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "rnn_tui",
            "train",
            str(small_corpus),
            "--headless",
            *TINY,
            "--batch-size",
            "4",
            "--max-steps",
            "12",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TIMEOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("finished (max-steps) at step 12") == 1  # process 0 speaks for the run
    ck = ckpt_io.load(only_run(tmp_path / "runs") / "checkpoints" / "latest.pt")
    assert ck["world_size"] == 2 and ck["step"] == 12


def corpus_as_each_process_sees_it(path: str) -> tuple[str, str, bool, str]:
    """(run in each process) the corpus through ``shared_corpus``: its kind of array, the file
    it maps, whether that file still has a name, and a digest of the data."""
    from rnn_tui.core.distributed import join, shared_corpus

    cluster = join()
    try:
        corpus = shared_corpus(cluster, Path(path), "char", None)
        cluster.exchange(None)  # every process is past the corpus: the first one has unlinked the file
        data = corpus.data
        name = str(getattr(data, "filename", ""))
        return type(data).__name__, name, os.path.exists(name), hashlib.sha1(np.asarray(data).tobytes()).hexdigest()
    finally:
        cluster.close()


def test_the_corpus_is_encoded_once_and_mapped_by_every_process(small_corpus):
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.host.launch import _entry, elastic_launch_compat

    seen = elastic_launch_compat(2, "SIGTERM")(_entry, corpus_as_each_process_sees_it, str(small_corpus))
    expected = hashlib.sha1(read_corpus(small_corpus).data.tobytes()).hexdigest()
    assert seen[0][1] == seen[1][1]  # one file, mapped by both
    assert [s[0] for s in seen.values()] == ["memmap", "memmap"]
    assert [s[2] for s in seen.values()] == [False, False]  # and unlinked once mapped: nothing left behind
    assert [s[3] for s in seen.values()] == [expected, expected]


async def test_a_viewer_pauses_every_process(small_corpus, tmp_path):
    """The app attached to a two-process run (``--detach --nproc 2``): pause stops both
    processes' steps (the second one sleeps: its CPU time stands still), resume starts them; the
    explorer is answered by the leader while both train on."""
    from rnn_tui.remote.client import SocketLink
    from rnn_tui.ui.app import RnnTuiApp

    started = rnn_tui(
        "train",
        small_corpus,
        "--detach",
        "--nproc",
        "2",
        *TINY,
        "--batch-size",
        "4",
        "--sample-length",
        "20",
        "--runs-dir",
        tmp_path / "runs",
        cwd=tmp_path,
        timeout=TIMEOUT,
    )
    assert started.returncode == 0, started.stderr
    run = only_run(tmp_path / "runs")
    status = read_status(run)
    launcher, pids = status["launcher_pid"], status["pids"]
    assert f"(pid {launcher})" in started.stdout

    def cpu_seconds(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def last_step() -> int:
        return max(losses(run)) if (run / "metrics.jsonl").exists() and losses(run) else 0

    link = SocketLink(run)
    link.start()
    app = RnnTuiApp(link, viewer=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await app_wait(pilot, lambda: app.stats.step > 0, what="steps")
            assert "2 processes" in str(app.stats_panel.render())
            await pilot.press("space")
            await app_wait(pilot, lambda: app.trainer_state == "paused", what="the pause")
            step, cpu = last_step(), cpu_seconds(pids[1])
            await pilot.press("g")  # the leader answers while paused: a turn of its loop has gone by
            await app_wait(pilot, lambda: (run / "samples.jsonl").exists(), what="a sample while paused")
            await app_wait(pilot, lambda: app.trainer_state == "paused", what="paused again after the sample")
            assert last_step() == step and app.stats.step == step
            assert cpu_seconds(pids[1]) - cpu < 1.0  # the second process waits without working
            await pilot.press("space")
            await app_wait(pilot, lambda: last_step() > step, what="training again")
            # the explorer while both train: every process takes part in the turn, the leader answers
            await pilot.press("e")
            await app_wait(
                pilot, lambda: app.explorer.result is not None and app.explorer.result.step > 0, what="an answer"
            )
            assert app.explorer.result.h.shape[1] > 0
            explored_at = last_step()
            await app_wait(pilot, lambda: last_step() > explored_at, what="training on after the answer")
    finally:
        link.close()
        os.kill(launcher, signal.SIGTERM)
        wait_until(
            lambda: not any(pid_alive(p) for p in [launcher, *pids]), timeout=TIMEOUT, what="every process to stop"
        )
    assert read_status(run)["state"] == "stopped"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_live_app_on_two_processes_saves_and_moves_to_the_background(small_corpus, tmp_path):
    """``rnn-tui CORPUS --nproc 2`` in a real terminal: it trains, a pause and a save reach both
    processes, and d hands the run over to two background processes, which train on."""
    from tests.helpers import Tmux

    done = tmp_path / "exit-code"
    args = [small_corpus, "--nproc", "2", *TINY, "--batch-size", "4", "--runs-dir", tmp_path / "runs"]
    # 40 rows: the stats panel's "saved" row comes after the dtype and its reason (cut off at 30)
    term = Tmux(f"{command(*args)}; echo $? > {done}; sleep 120", width=100, height=40)
    try:
        term.wait_for(
            lambda s: "2 processes" in s and "step   " in s and "● training" in s, timeout=TIMEOUT, what="training"
        )
        run = only_run(tmp_path / "runs")
        pids = read_status(run)["pids"]
        term.keys("space")
        term.wait_for(lambda s: "● paused" in s, what="the pause")
        term.keys("s")
        term.wait_for(lambda s: "latest.pt at step" in s, what="the checkpoint")
        saved = ckpt_io.load(run / "checkpoints" / "latest.pt")
        assert saved["world_size"] == 2 and saved["step"] == read_status(run)["saved_step"]
        term.keys("space", "d")
        screen = term.wait_for(lambda s: "training in the background" in s, timeout=TIMEOUT, what="the hand-over")
        wait_until(done.exists, what="the app to exit")
        assert done.read_text().strip() == "0"
        assert not any(pid_alive(p) for p in pids)  # the app's processes saved and stopped
        status = read_status(run)
        # (the line names the run directory in full: a long temp path wraps it, anywhere)
        said = re.search(r"\(pid (\d+)\)", screen.replace("\n", ""))
        assert said is not None, screen
        background = int(said[1])
        assert status["state"] == "running" and status["launcher_pid"] == background and status["world_size"] == 2
        listing = rnn_tui("runs", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
        assert f"running (pid {background}, 2 processes)" in listing.stdout
        step = status.get("step") or 0
        wait_until(
            lambda: max(losses(run)) > max(step, saved["step"]) + 5,
            timeout=TIMEOUT,
            what="training on in the background",
        )
        os.kill(background, signal.SIGTERM)
        wait_until(lambda: not pid_alive(background), timeout=TIMEOUT, what="the background run to stop")
        assert read_status(run)["state"] == "stopped"
    finally:
        term.close()
        # whatever failed above, no run of this test trains on (it would slow every later test)
        for status in [read_status(r) for r in (tmp_path / "runs").glob("*")]:
            for pid in [status.get("launcher_pid"), *(status.get("pids") or [])]:
                if isinstance(pid, int) and pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_a_time_budget_ends_every_process_at_once(small_corpus, tmp_path):
    """--max-minutes: process 0's clock decides for all (and the learning rate's decay with it)."""
    budget = "--nproc 2 --batch-size 4 --max-minutes 0.1".split()
    out = train(small_corpus, *budget, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert "finished (max-minutes)" in out.stdout
    ck = ckpt_io.load(only_run(tmp_path / "runs") / "checkpoints" / "latest.pt")
    assert ck["schedule_progress"] == pytest.approx(1.0, abs=0.05) and ck["trained_s"] >= 6


def test_a_gpu_named_by_index_is_refused_in_one_line(small_corpus, tmp_path):
    from tests.helpers import assert_clean_error

    proc = rnn_tui("train", small_corpus, "--headless", "--nproc", "2", "--device", "cuda:1", cwd=tmp_path)
    assert_clean_error(proc, "--device cuda:1 names one GPU")
    assert not (tmp_path / "runs").exists()
