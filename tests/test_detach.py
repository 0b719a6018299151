"""Runs that survive the terminal: a background trainer (the real ``rnn-tui train --detach``),
viewers attached to it with Pilot, ``rnn-tui runs``, kill -9 and resume, and ``rnn-tui serve``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_tui.core import events as ev
from rnn_tui.remote.client import HistoryLink, SocketLink, link_for
from rnn_tui.remote.status import _last_step, pid_alive, read_status, run_info
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import app_wait, detach_args, rnn_tui, wait_until

pytestmark = pytest.mark.slow  # real trainer processes

TINY = detach_args(sample_every=2)


def detach(corpus, runs: Path, *extra) -> tuple[Path, int]:
    proc = rnn_tui("train", corpus, "--detach", *TINY, "--runs-dir", runs, *extra)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"training in the background: (\S+) \(pid (\d+)\)", proc.stdout)
    assert m, proc.stdout
    return Path(m.group(1)), int(m.group(2))


def last_step(run_dir: Path) -> int:
    return _last_step(run_dir / "metrics.jsonl") or 0


@pytest.fixture
def cleanup():
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_viewers_steer_a_detached_trainer_and_leave_it_running(small_corpus, tmp_path, cleanup):
    run_dir, pid = detach(small_corpus, tmp_path / "runs")
    cleanup.append(pid)
    listing = rnn_tui("runs", "--runs-dir", tmp_path / "runs").stdout
    assert run_dir.name in listing and f"running (pid {pid})" in listing

    async def first_viewer():
        link = SocketLink(run_dir)
        link.start()
        app = RnnTuiApp(link, viewer=True)
        async with app.run_test(size=(100, 32)) as pilot:
            await app_wait(pilot, lambda: app.stats.step > 0 and app.samples.count > 0, what="steps and a sample")
            assert "viewer" in str(app.title_bar.render())
            await pilot.press("space")
            await app_wait(pilot, lambda: app.stats.state == "paused", what="the trainer to pause")
            paused_at = last_step(run_dir)
            await pilot.pause(1.0)  # the trainer posts metrics twice a second when it trains
            assert last_step(run_dir) == paused_at, "the step counter moved while paused"
            await pilot.press("space")
            await app_wait(pilot, lambda: last_step(run_dir) > paused_at, what="training to resume")
            await pilot.press("s")
            await app_wait(pilot, lambda: (run_dir / "checkpoints" / "latest.pt").exists(), what="a checkpoint")
            await pilot.press("q")  # leaves the viewer
            await app_wait(pilot, lambda: not app.is_running, what="the viewer to close")
        link.close()
        return app

    app = asyncio.run(first_viewer())
    assert app.return_code == 0
    step = last_step(run_dir)
    wait_until(lambda: last_step(run_dir) > step, what="the trainer to go on without a viewer")
    assert pid_alive(pid)

    async def second_viewer():
        other = SocketLink(run_dir)  # a third party watching at the same time
        other.start()
        link = link_for(run_dir)
        link.start()
        app = RnnTuiApp(link, viewer=True)
        async with app.run_test(size=(100, 32)) as pilot:
            # the history so far, read from the run's metrics
            await app_wait(pilot, lambda: app.plot.train_points > 0 and app.stats.step >= step, what="the history")
            await pilot.press("X")
            await pilot.press("y")  # "Stop the trainer?"
            await app_wait(pilot, lambda: not app.is_running, what="the trainer to stop and the viewer to close")
        link.close()
        seen = other.poll(100_000)
        other.close()
        return app, seen

    app, seen = asyncio.run(second_viewer())
    assert app.finished is not None and app.finished.reason == "stopped" and app.finished.checkpoint
    assert any(isinstance(e, ev.Finished) for e in seen), "the other viewer was not told"
    wait_until(lambda: not pid_alive(pid), what="the trainer process to exit")
    assert read_status(run_dir)["state"] == "stopped"
    assert run_info(run_dir).state == "stopped"


def test_kill_9_leaves_a_crashed_run_that_resumes_in_the_background(small_corpus, tmp_path, cleanup):
    run_dir, pid = detach(small_corpus, tmp_path / "runs", "--save-every-minutes", "0.01")
    cleanup.append(pid)
    latest = run_dir / "checkpoints" / "latest.pt"
    wait_until(latest.exists, what="a periodic checkpoint")
    # a second trainer on a live run is refused, never started
    busy = rnn_tui("train", "--resume", run_dir, "--headless", "--max-steps", "100000")
    assert busy.returncode == 2 and "is training now" in busy.stderr and "Traceback" not in busy.stderr
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), what="the kill")
    assert Path(read_status(run_dir)["socket"]).exists()  # stale, and must not matter
    listing = rnn_tui("runs", "--runs-dir", tmp_path / "runs").stdout
    assert "crashed" in listing
    proc = rnn_tui("train", "--resume", run_dir, "--detach")
    assert proc.returncode == 0, proc.stderr
    pid2 = int(re.search(r"\(pid (\d+)\)", proc.stdout).group(1))
    cleanup.append(pid2)
    assert pid2 != pid and str(run_dir) in proc.stdout  # the same run goes on
    step = last_step(run_dir)
    wait_until(lambda: last_step(run_dir) > step, what="the resumed trainer to train")
    assert run_info(run_dir).state == "running"
    # garbage on its control socket is refused; the trainer trains on
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(read_status(run_dir)["socket"])
    s.sendall(b"\x00\x00\x00\x05hello" + b'\x00\x00\x00\x10{"type": "Exec"}' + b"\xff" * 64)
    s.close()
    step = last_step(run_dir)
    control_log = run_dir / "control.log"  # written by the server's thread: waited for, not raced
    wait_until(
        lambda: control_log.exists() and "refused a message" in control_log.read_text(), what="the refusal logged"
    )
    wait_until(lambda: last_step(run_dir) > step + 10, what="training to go on after garbage")
    os.kill(pid2, signal.SIGTERM)  # saves, then stops
    wait_until(lambda: not pid_alive(pid2), what="SIGTERM to stop the trainer")
    status = read_status(run_dir)
    assert status["state"] == "stopped" and status["checkpoint"].endswith("latest.pt")


def test_a_bad_corpus_fails_the_detach_with_one_line_and_leaves_no_run(tmp_path):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 400)
    proc = rnn_tui("train", binary, "--detach", "--runs-dir", tmp_path / "runs")
    assert proc.returncode == 2
    assert proc.stderr.startswith("rnn-tui: error:") and "--bytes" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "runs").glob("*"))


def test_attach_to_a_finished_run_shows_its_history(small_corpus, tmp_path):
    runs = tmp_path / "runs"
    proc = rnn_tui("train", small_corpus, "--headless", *TINY, "--max-steps", "120", "--runs-dir", runs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = runs.iterdir()
    link = link_for(run_dir)
    assert isinstance(link, HistoryLink)
    link.start()

    async def view():
        app = RnnTuiApp(link, viewer=True)
        async with app.run_test(size=(100, 32)) as pilot:
            await app_wait(pilot, lambda: app.finished is not None, what="the run's end")
            assert app.plot.train_points >= 100 and app.stats.step == 120
            assert app.stats.best_val is not None
            assert app.check_action("toggle_pause", ()) is None  # nothing to steer
            await pilot.press("q")
        return app

    assert asyncio.run(view()).return_code == 0
    listing = rnn_tui("runs", "--runs-dir", runs).stdout
    assert re.search(r"finished\s+120\s", listing), listing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_localhost_and_browser_tabs_are_viewers(small_corpus, tmp_path, cleanup):
    aiohttp = pytest.importorskip("aiohttp")
    runs = tmp_path / "runs"
    run_dir, pid = detach(small_corpus, runs)
    cleanup.append(pid)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", run_dir.name, "--runs-dir", str(runs), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RNN_TUI_SERVE_TOKEN": "a-token-of-the-owner-0123"},
    )
    cleanup.append(server.pid)

    async def browse():
        # the page sets the token as a cookie for its websocket (kept for an IP address, as browsers do)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/?token=a-token-of-the-owner-0123") as r:
                        page = await r.text()
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            assert "ws" in page and run_dir.name in page
            tabs = []
            for _ in range(2):  # two browser tabs
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30")
                await ws.send_json(["resize", {"width": 100, "height": 30}])
                tabs.append(ws)
            screens = [b"", b""]
            deadline = time.monotonic() + 90
            while not all(b"viewer" in s for s in screens) and time.monotonic() < deadline:
                for i, ws in enumerate(tabs):
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        screens[i] += msg.data
            for ws in tabs:
                await ws.close()
            return screens

    try:
        screens = asyncio.run(browse())
        assert all(b"viewer" in s for s in screens), "a browser tab did not show the run's viewer"
        assert [p.name for p in runs.iterdir()] == [run_dir.name]  # no second run was started
        assert read_status(run_dir)["pid"] == pid and pid_alive(pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    assert pid_alive(pid), "closing the server stopped the trainer"


def test_serve_says_what_is_wrong_and_warns_when_open_to_the_network(tmp_path):
    proc = rnn_tui("serve", "--runs-dir", tmp_path / "none")
    assert proc.returncode == 2 and "no runs" in proc.stderr and "Traceback" not in proc.stderr
    run_dir = tmp_path / "runs" / "old-run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    server = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", str(run_dir), "--host", "0.0.0.0", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = server.stderr.readline()
    finally:
        server.kill()
        server.wait()
    assert "warning" in first and "learns the token" in first and "not encrypted" in first
