"""Training in the background: ``rnn-tui train --detach`` and the app's ``d`` key.

``start_detached`` (front end, no torch) makes the run directory, writes the request there, and
starts ``python -m rnn_tui.detached RUN/request.json`` in a new session with no terminal: an SSH
drop, a closed tmux pane or the shell's exit cannot reach it. It waits until the trainer serves
its control socket (or fails, and then reports why), and returns. The trainer runs the same
``Session`` as the app and the headless CLI; viewers steer it through the socket.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.launch import LaunchError, TrainRequest
from rnn_tui.runstate import read_status, write_status

STARTUP_TIMEOUT_S = 300.0  # importing torch and encoding a huge corpus on a slow disk


def _run_dir_for(request: TrainRequest) -> tuple[Path, bool]:
    """The directory the detached trainer will write, and whether it was made just now."""
    from rnn_tui.core.runs import RunDir, resolve_checkpoint, run_dir_of

    if request.resume is not None:
        existing = run_dir_of(resolve_checkpoint(request.resume))
        if existing is not None:
            return existing, False
    path = request.corpus_path()
    stem = path.stem if path is not None else Path(request.resume).stem
    return RunDir.create(request.runs_dir, stem).path, True


def start_detached(request: TrainRequest, timeout: float = STARTUP_TIMEOUT_S) -> tuple[Path, int]:
    """Start a background trainer for ``request``; its run directory and pid once it trains."""
    import dataclasses

    run_dir, made = _run_dir_for(request)
    run_dir = run_dir.resolve()
    request = dataclasses.replace(request, run_dir=run_dir if made else None)
    request_file = run_dir / "request.json"
    from rnn_tui.core.runs import write_text_atomic

    write_text_atomic(request_file, request.to_json())
    write_status(run_dir, state="starting", pid=None, host=socket.gethostname(), error=None)
    log = open(run_dir / "trainer.log", "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnn_tui.detached", str(request_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(run_dir)
        if status.get("state") == "running" and status.get("pid") == proc.pid:
            return run_dir, proc.pid
        code = proc.poll()
        if code is not None or status.get("state") in ("failed", "finished", "stopped"):
            proc.wait()
            error = read_status(run_dir).get("error") or _last_line(run_dir / "trainer.log") \
                or f"the background trainer exited with code {code}"
            if made and not (run_dir / "checkpoints" / "latest.pt").exists():
                _remove_unused_run(run_dir)
            raise LaunchError(error)
        time.sleep(0.1)
    raise LaunchError(f"the background trainer (pid {proc.pid}) did not start within {timeout:.0f} s; "
                      f"see {run_dir / 'trainer.log'}")


def _last_line(path: Path) -> str | None:
    try:
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def _remove_unused_run(run_dir: Path) -> None:
    """A run that never trained leaves nothing behind but its error."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """The background trainer's process."""
    from rnn_tui.control import ControlServer
    from rnn_tui.core import events as ev
    from rnn_tui.core.session import Session
    from rnn_tui.launch import build_trainer

    request_file = Path(argv[0])
    run_dir = request_file.parent

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    inbox: queue.Queue = queue.Queue()
    try:
        request = TrainRequest.from_json(request_file.read_text(encoding="utf-8"))
        trainer = build_trainer(request)
        server = ControlServer(trainer.run.path, inbox.put).start()
    except RnnTuiError as exc:
        log(f"error: {exc}")
        write_status(run_dir, state="failed", pid=os.getpid(), error=str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - written where the user will look, not lost with the terminal
        log(traceback.format_exc())
        write_status(run_dir, state="failed", pid=os.getpid(), error=f"internal error: {exc!r}")
        return 1

    def note(e: ev.Event) -> None:
        # the log says what a person watching would have wanted to know
        if isinstance(e, ev.Started):
            log(f"training {e.corpus} on {e.device}, {e.n_params:,} parameters, from step {e.step}")
        elif isinstance(e, ev.Evaluated):
            log(f"step {e.step}: val loss {e.val_loss:.4f} (best {e.best_val:.4f})")
        elif isinstance(e, ev.CheckpointSaved):
            log(f"saved {e.path} at step {e.step} ({e.reason})")
        elif isinstance(e, ev.Notice):
            log(f"{e.level}: {e.message}")
        elif isinstance(e, ev.Finished):
            log(f"finished ({e.reason}) at step {e.step}" + (f": {e.error}" if e.error else ""))

    def emit(e: ev.Event) -> None:
        server.publish(e)
        note(e)

    session = Session(trainer, inbox, emit)

    def stop(signum, _frame) -> None:
        log(f"got signal {signum}: saving and stopping")
        session.stop_requested = ev.Stop(save=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal to lose; ignore a stray one
    done = None
    try:
        done = session.run()
    except Exception as exc:  # noqa: BLE001
        log(traceback.format_exc())
        done = ev.Finished(reason="error", step=trainer.step, checkpoint=None, error=f"internal error: {exc!r}")
        server.publish(done)
    finally:
        server.close(done)
    return 1 if done is None or done.error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
