"""``rnn-tui serve``: the viewer in browser tabs, through textual-serve, for its owner only.

Who gets in: a secret token, as Jupyter does it: made at random (or chosen with ``--token`` or
``$RNN_TUI_SERVE_TOKEN``), printed once in the address to open, and checked, in constant time, on
the page, the websocket and every asset. The page sets it as a cookie (HttpOnly, SameSite=Strict,
named per serve) so the page's own requests carry it; the websocket also refuses a page from
another origin. Without it every request gets 403 and nothing of the run. textual-serve itself
has no authentication: the check is an aiohttp middleware added to its application.

Where: a TCP address (``--host``, ``--port``; 127.0.0.1 by default) or a Unix socket (``--socket``,
mode 0600, forwarded with ``ssh -L 8000:/path/to/socket``). The page's addresses are relative to
itself, so it works behind any forwarded port or host; textual-serve's own page would send the
browser to the address the server was bound to.

Processes: each tab runs ``python -m rnn_tui attach RUN`` (a viewer, never a trainer) in its own
process group. It ends with its tab (asked to quit, then SIGTERM, then SIGKILL), every one ends
when serve stops (Ctrl+C, SIGTERM, SIGHUP), and each ends itself if serve dies without a word
(``kill -9``): see ``end_with_serve``.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import hmac
import os
import re
import secrets
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rnn_tui.core.text import visible
from rnn_tui.host.request import LaunchError

TOKEN_ENV = "RNN_TUI_SERVE_TOKEN"
PARENT_ENV = "RNN_TUI_SERVE_PARENT"  # set in a tab's process: the serve process it belongs to
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # URL-safe, long enough not to be guessed
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
PAGE_DIR = Path(__file__).resolve().parent / "web_page"
TAB_QUIT_S = 3.0  # a closed tab's viewer is asked to quit, given this long, ...
TAB_TERM_S = 3.0  # ... then SIGTERM and this long, then SIGKILL
PARENT_POLL_S = 1.0  # how often a tab's viewer checks that its serve process still lives


def choose_token(token: str | None) -> str:
    """The token given (``--token``, else ``$RNN_TUI_SERVE_TOKEN``), or a new random one."""
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        return secrets.token_urlsafe(32)
    if not TOKEN_PATTERN.fullmatch(token):
        raise LaunchError(
            "the serve token must be 16 to 256 letters, digits or . _ ~ - (a guessable token lets anyone in)"
        )
    return token


def serve_viewer(
    run_dir: Path, host: str, port: int, token: str | None = None, unix_socket: Path | None = None
) -> None:
    """Serve a viewer of ``run_dir`` until Ctrl+C (or SIGTERM, SIGHUP); each browser tab is a
    viewer, never a trainer. A port in use, an unknown host or a socket path that cannot be
    served is one line (``LaunchError``), before anything is said to be served."""
    try:
        from textual_serve.server import Server  # noqa: F401
    except ImportError:
        raise LaunchError("rnn-tui serve needs textual-serve: pip install textual-serve") from None
    secret = choose_token(token)
    server = make_server(run_dir, secret)

    def announce(address: str, forward: str) -> None:
        from rnn_tui.remote.status import live_trainer

        goes_on = "the run goes on" if live_trainer(run_dir) is not None else "the run is not training: its history"
        say(f"serving a viewer of {run_dir} (Ctrl+C stops serving; {goes_on})")
        say(f"  open: {address}/?token={secret}")
        say(f"  {forward}")
        if unix_socket is None and host not in LOCAL_HOSTS:
            say(
                f"rnn-tui: warning: serving on {host}: anyone who can reach this port and learns the token can "
                f"watch and steer the run, and the traffic is not encrypted; prefer ssh -L to a local address",
                err=True,
            )

    try:
        asyncio.run(server.serve_until_stopped(host, port, unix_socket, announce))
    finally:
        server.kill_tabs_now()  # a safety net: every tab's process has normally ended already


def say(line: str, err: bool = False) -> None:
    print(visible(line), file=sys.stderr if err else sys.stdout, flush=True)


def make_server(run_dir: Path, token: str) -> Any:
    """A textual-serve ``Server`` of viewers of ``run_dir``, guarded by ``token``."""
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    class TabService(AppService):
        """One tab's viewer process: started in its own process group, and always ended."""

        def __init__(self, server: ViewerServer, websocket: web.WebSocketResponse):
            super().__init__(
                server.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,  # type: ignore[arg-type]  # (as textual-serve passes it)
                download_manager=server.download_manager,
                debug=server.debug,
            )
            self.server = server

        async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
            env = self._build_environment(width=width, height=height)
            env[PARENT_ENV] = str(os.getpid())
            self._process = process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "rnn_tui",
                "attach",
                str(self.server.run_dir),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own group: it and anything it starts end together
            )
            self.server.tabs.add(self)
            assert process.stdin is not None
            self._stdin = process.stdin
            return process

        async def stop(self) -> None:
            """Ask the viewer to quit; if it has not within ``TAB_QUIT_S`` (a tab closed while
            it was starting, a viewer that hangs), end its process group."""
            try:
                await asyncio.wait_for(super().stop(), TAB_QUIT_S)
            except Exception:
                pass
            await self.end_process()

        async def end_process(self) -> None:
            process = self._process
            if process is not None and process.returncode is None:
                for sig, grace in ((signal.SIGTERM, TAB_TERM_S), (signal.SIGKILL, None)):
                    try:
                        os.killpg(process.pid, sig)
                    except (ProcessLookupError, PermissionError):
                        break
                    try:
                        await asyncio.wait_for(process.wait(), grace)
                        break
                    except asyncio.TimeoutError:
                        continue
            self.server.tabs.discard(self)

    class ViewerServer(Server):
        def __init__(self) -> None:
            super().__init__(
                f"{sys.executable} -m rnn_tui attach {run_dir}",
                title=f"rnn-tui · {run_dir.name}",
                templates_path=PAGE_DIR,
            )
            self.run_dir = run_dir
            self.token = token.encode("ascii")
            self.cookie = f"rnn-tui-{secrets.token_hex(4)}"  # per serve: two on one host keep theirs apart
            self.tabs: set[TabService] = set()

        async def on_startup(self, app: web.Application) -> None:
            pass  # the address is announced once the site is bound (with its token)

        def admitted(self, request: web.Request) -> bool:
            """Whether ``request`` carries the token, in its query or in the page's cookie."""
            for given in (request.query.get("token"), request.cookies.get(self.cookie)):
                if given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), self.token):
                    return True
            return False

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()

            @web.middleware
            async def guard(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
                origin = request.headers.get("Origin")
                foreign = origin is not None and urlsplit(origin).netloc != request.host
                if not self.admitted(request) or (request.path == "/ws" and foreign):
                    return web.Response(
                        status=403,
                        text="403 Forbidden: open the address rnn-tui serve printed, with its token.\n",
                        headers={"Cache-Control": "no-store"},
                    )
                response: web.StreamResponse = await handler(request)
                if request.path == "/" and "token" in request.query:
                    response.set_cookie(self.cookie, token, httponly=True, samesite="Strict", path="/")
                if not response.prepared:
                    response.headers["Cache-Control"] = "no-store"
                    response.headers["Referrer-Policy"] = "no-referrer"
                return response

            app.middlewares.append(guard)
            return app

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            websocket = web.WebSocketResponse(heartbeat=15)
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            tab: TabService | None = None
            try:
                await websocket.prepare(request)
                tab = TabService(self, websocket)
                await tab.start(width, height)
                await self._process_messages(websocket, tab)
            except asyncio.CancelledError:
                await websocket.close()
            except Exception as exc:
                say(f"rnn-tui serve: a tab failed: {exc!r}", err=True)
            finally:
                if tab is not None:
                    await tab.stop()  # the tab is gone: so is its process
            return websocket

        async def _process_messages(self, websocket: web.WebSocketResponse, app_service: Any) -> None:
            try:
                await super()._process_messages(websocket, app_service)
            except (ValueError, KeyError, TypeError, IndexError, AssertionError):
                await websocket.close()  # a message textual.js would not send: the tab ends

        async def end_tabs(self) -> None:
            await asyncio.gather(*(tab.end_process() for tab in list(self.tabs)), return_exceptions=True)

        def kill_tabs_now(self) -> None:
            for tab in list(self.tabs):
                process = tab._process
                if process is not None and process.returncode is None:
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass

        async def serve_until_stopped(
            self, host: str, port: int, unix_socket: Path | None, announce: Callable[[str, str], None]
        ) -> None:
            app = await self._make_app()
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None)
            await runner.setup()
            try:
                if unix_socket is not None:
                    prepare_socket_path(unix_socket)
                    old = os.umask(0o177)  # born 0600: no moment when others could connect
                    try:
                        site: web.BaseSite = web.UnixSite(runner, str(unix_socket))
                        await site.start()
                    finally:
                        os.umask(old)
                else:
                    site = web.TCPSite(runner, host, port)
                    await site.start()
            except OSError as exc:
                await runner.cleanup()
                raise LaunchError(bind_error(exc, host, port, unix_socket)) from None
            if unix_socket is not None:
                announce(
                    "http://localhost:8000",
                    f"a Unix socket: forward it with ssh -L 8000:{unix_socket} {socket.gethostname()}",
                )
            else:
                bound = runner.addresses[0][1] if runner.addresses else port
                shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
                if ":" in shown:
                    shown = f"[{shown}]"
                announce(
                    f"http://{shown}:{bound}",
                    f"from another machine: ssh -L {bound}:localhost:{bound} {socket.gethostname()}, "
                    f"then open the address above (any local port works)",
                )
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, stopped.set)
            try:
                await stopped.wait()
            finally:
                await self.end_tabs()
                await runner.cleanup()
                if unix_socket is not None:
                    try:
                        unix_socket.unlink()
                    except OSError:
                        pass

    return ViewerServer()


def prepare_socket_path(path: Path) -> None:
    """Refuse a path that is something else or a live socket; remove a dead socket left there."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        raise OSError(errno.EADDRINUSE, "another server answers on it")
    except ConnectionRefusedError:
        path.unlink()  # left by a server that was killed
    finally:
        probe.close()


def bind_error(exc: OSError, host: str, port: int, unix_socket: Path | None) -> str:
    """One line for a server that could not be bound."""
    if unix_socket is not None:
        return f"cannot serve on the socket {unix_socket}: {exc.strerror or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot serve on --host {host}: no such address here ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; choose another with --port (0: any free port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot serve on --host {host}: it is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"not allowed to serve on port {port} (ports below 1024 need privileges); choose another with --port"
    return f"cannot serve on {host}:{port}: {exc.strerror or exc}"


def end_with_serve() -> None:
    """In a tab's viewer process (started by ``rnn-tui serve``): end when that serve process
    ends, however it ends. On Linux the kernel sends SIGTERM when the parent dies
    (``PR_SET_PDEATHSIG``); everywhere, a thread watches the parent and, once it is gone, sends
    SIGTERM to this process (the viewer leaves) and exits outright if that did not end it."""
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent or not parent.isdigit():
        return
    serve_pid = int(parent)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != serve_pid:
        os._exit(0)  # serve died before this process could ask to follow it

    def watch() -> None:
        while os.getppid() == serve_pid:
            time.sleep(PARENT_POLL_S)  # no event tells a process that its parent died
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(TAB_TERM_S)
        os._exit(0)

    threading.Thread(target=watch, name="end-with-serve", daemon=True).start()
