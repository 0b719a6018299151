"""``rnn-tui serve`` as a browser meets it: a real server process, a real HTTP and websocket client
(aiohttp), reached through a forwarded port that is not the server's (as ``ssh -L 9000:localhost:8000``
does). Only the token's holder gets anything; every tab's viewer process ends with its tab, and all
of them with serve, however serve ends."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import assert_clean_error, rnn_tui, wait_until

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789abcdef"
RUN_NAME = "secretcorpus-20260101-000000"


def finished_run(tmp_path: Path) -> Path:
    """A run that trained and finished, as its files say (a viewer of it needs no trainer)."""
    run = tmp_path / "runs" / RUN_NAME
    (run / "checkpoints").mkdir(parents=True)
    config = {"batch_size": 4, "seq_len": 16, "cell": "lstm", "layers": 1, "hidden": 32, "embed": 8}
    record = {"config": config, "corpus": "/data/secretcorpus.txt", "vocab_size": 65, "n_params": 7918}
    (run / "config.json").write_text(json.dumps(record))
    rows = [{"kind": "train", "step": s, "loss": 4.0 - s / 100, "grad_norm": 1.0, "lr": 1e-3} for s in range(1, 51)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "trainer.json").write_text(json.dumps({"state": "finished", "step": 50, "reason": "max-steps"}))
    return run


def start_serve(*args: object, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """``rnn-tui serve ... --port 0``, and the port it printed in its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", *map(str, args), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        while True:
            line = lines.get(timeout=60)
            if "open: http://127.0.0.1:" in line:
                assert f"?token={TOKEN}" in line
                return proc, int(line.split("127.0.0.1:")[1].split("/")[0])
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"serve did not start: {proc.stderr.read() if proc.stderr else ''}") from None


class Forwarder:
    """A TCP port forwarded to another, as ssh -L makes one: the browser sees only this port."""

    def __init__(self, target: int):
        self.target = target
        self.port = 0
        self.server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> Forwarder:
        self.server = await asyncio.start_server(self.pipe, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        except asyncio.CancelledError:  # the test's loop ends with the connection still open
            pass


def viewer_children(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def read_until(ws: aiohttp.ClientWebSocketResponse, needle: bytes, timeout: float = 90) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {needle!r} in {len(seen)} bytes from the tab")
        msg = await ws.receive(timeout=left)
        if msg.type == aiohttp.WSMsgType.BINARY:
            seen += msg.data
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError(f"the tab closed before {needle!r}")
    return seen


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies as a browser does, for an IP address too."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_the_page_works_behind_a_forwarded_port_and_only_with_the_token(tmp_path):
    run = finished_run(tmp_path)
    proc, port = start_serve(run, "--token", TOKEN)
    try:
        async with Forwarder(port) as fwd:
            base = f"http://127.0.0.1:{fwd.port}"
            # no token, a wrong token, a cookie of the wrong value: 403 and nothing of the run
            async with aiohttp.ClientSession(cookies={"rnn-tui-x": TOKEN}) as stranger:
                for path in ("/", "/?token=wrong-token-0123456789", "/static/js/textual.js", "/download/x", "/ws"):
                    async with stranger.get(base + path) as r:
                        body = await r.text()
                        assert r.status == 403, path
                        assert RUN_NAME not in body and "secretcorpus" not in body
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await stranger.ws_connect(base + "/ws?width=80&height=24")
                assert refused.value.status == 403
            async with browser() as owner:
                async with owner.get(f"{base}/?token={TOKEN}") as r:
                    page = await r.text()
                    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                # every address in the page is relative: nothing points at the server's own port
                assert f":{port}" not in page and "http://" not in page and "ws://" not in page
                assert 'src="static/js/textual.js"' in page
                async with owner.get(f"{base}/static/js/textual.js") as r:  # the page's cookie lets its assets in
                    assert r.status == 200
                # a page of another origin may not open the websocket, even with the owner's cookie
                with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
                    await owner.ws_connect(f"{base}/ws", headers={"Origin": "http://evil.example:80"})
                assert foreign.value.status == 403
                ws = await owner.ws_connect(f"{base}/ws?width=100&height=30", headers={"Origin": base})
                seen = await read_until(ws, b"viewer")  # the viewer's title bar, drawn for this tab
                assert RUN_NAME.encode() in seen or b"secretcorpus" in seen
                await ws.close()
        wait_until(lambda: not viewer_children(proc.pid), 30, "the closed tab's viewer to end")
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


async def test_every_tab_process_ends_with_its_tab_and_with_serve(tmp_path):
    """A tab closed during start-up, before its viewer drew anything, leaves no process; the
    tabs still open when serve gets SIGTERM end with it; a kill -9 of serve ends them too."""
    run = finished_run(tmp_path)
    env = {"RNN_TUI_SERVE_TOKEN": TOKEN}
    proc, port = start_serve(run, env=env)
    try:
        async with browser() as owner:
            async with owner.get(f"http://127.0.0.1:{port}/?token={TOKEN}") as r:
                assert r.status == 200
            ws = await owner.ws_connect(f"http://127.0.0.1:{port}/ws")
            wait_until(lambda: viewer_children(proc.pid), 30, "a viewer process for the tab")
            await ws.close()  # closed at once: its viewer is still importing
            wait_until(lambda: not viewer_children(proc.pid), 30, "the tab's viewer to end")
            tabs = [await owner.ws_connect(f"http://127.0.0.1:{port}/ws") for _ in range(2)]
            await read_until(tabs[0], b"viewer")
            wait_until(lambda: len(viewer_children(proc.pid)) == 2, 30, "two viewers")
            viewers = viewer_children(proc.pid)
            proc.send_signal(signal.SIGTERM)
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
            assert proc.returncode == 0
            wait_until(lambda: not any(map(alive, viewers)), 30, "the viewers to end with serve")
    finally:
        stop(proc)

    proc, port = start_serve(run, env=env)
    try:
        async with browser() as owner:
            await (await owner.get(f"http://127.0.0.1:{port}/?token={TOKEN}")).release()
            ws = await owner.ws_connect(f"http://127.0.0.1:{port}/ws")
            await read_until(ws, b"viewer")
            viewers = viewer_children(proc.pid)
            assert viewers
            proc.kill()  # no goodbye: each viewer notices its parent is gone
            proc.wait(10)
            wait_until(lambda: not any(map(alive, viewers)), 30, "the orphaned viewer to end itself")
    finally:
        stop(proc)


def test_a_port_in_use_or_an_unknown_host_is_one_line(tmp_path):
    run = finished_run(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        busy = taken.getsockname()[1]
        assert_clean_error(rnn_tui("serve", run, "--port", busy), "in use", "--port")
    finally:
        taken.close()
    assert_clean_error(rnn_tui("serve", run, "--host", "no-such-host.invalid"), "--host no-such-host.invalid")
    assert_clean_error(rnn_tui("serve", run, "--token", "short"), "token")
    proc = rnn_tui("serve", run, "--socket", tmp_path / "runs")  # a directory, not a socket
    assert_clean_error(proc, "socket")


async def test_a_unix_socket_is_the_owners_only_and_still_wants_the_token(tmp_path):
    run = finished_run(tmp_path)
    path = tmp_path / "serve.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", str(run), "--socket", str(path), "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(path.exists, 60, "the socket")
        assert path.stat().st_mode & 0o777 == 0o600
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as client:
            async with client.get("http://localhost/") as r:
                assert r.status == 403
            async with client.get(f"http://localhost/?token={TOKEN}") as r:
                assert r.status == 200
    finally:
        stop(proc)
    assert not path.exists()  # removed when serve stops
