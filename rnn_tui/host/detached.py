"""Training in the background: ``rnn-tui train --detach`` and the app's ``d`` key.

``start_detached`` (front end, no torch) makes the run directory, writes the request there, and
starts ``python -m rnn_tui.host.detached RUN/request.json`` in a new session with no terminal: an SSH
drop, a closed tmux pane or the shell's exit cannot reach it. It waits until the trainer serves
its control socket (or fails, and then reports why), and returns. The trainer runs the same
``Session`` as the app and the headless CLI; viewers steer it through the socket.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rnn_tui.core import events as ev
from rnn_tui.core.runs import RunDir, write_text_atomic
from rnn_tui.core.text import visible
from rnn_tui.host.request import LaunchError, TrainRequest
from rnn_tui.remote.status import live_trainer, read_status, write_status

STARTUP_TIMEOUT_S = 300.0  # importing torch and encoding a huge corpus on a slow disk


def start_detached(request: TrainRequest, timeout: float = STARTUP_TIMEOUT_S) -> tuple[Path, int]:
    """Start a background trainer for ``request``; its run directory and pid once it trains.

    A start that fails (the trainer refuses, the run directory cannot be written, Ctrl+C while
    waiting) says why in one line, and a run directory made for it is removed."""
    run_dir, made = request.prepare_run_dir()
    run = RunDir(run_dir.resolve())
    run_dir = run.path

    def give_up(message: str) -> LaunchError:
        if made and not run.latest.exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # a run that never trained leaves nothing behind
        return LaunchError(message)

    request = dataclasses.replace(request, run_dir=run_dir if made else None)
    request_file = run.request
    try:
        write_text_atomic(request_file, request.to_json())
        write_status(run_dir, state="starting", pid=None, host=socket.gethostname(), error=None)
        log = open(run.trainer_log, "ab")
    except OSError as exc:
        raise give_up(f"cannot write to {run_dir}: {exc.strerror or exc}") from None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnn_tui.host.detached", str(request_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            status = read_status(run_dir)
            # (with --nproc the trainer is the launcher's first process: the launcher is ours)
            ours = proc.pid in (status.get("pid"), status.get("launcher_pid"))
            # running; or so short a run that it trained and ended between two looks
            if ours and (
                status.get("state") == "running"
                or (status.get("state") in ("finished", "stopped") and not status.get("error"))
            ):
                return run_dir, proc.pid
            code = proc.poll()
            if code is not None or status.get("state") in ("failed", "finished", "stopped"):
                proc.wait()
                error = (
                    read_status(run_dir).get("error")
                    or _last_line(run.trainer_log)
                    or f"the background trainer exited with code {code}"
                )
                raise give_up(error)
            time.sleep(0.1)
    except KeyboardInterrupt:
        proc.terminate()  # it abandons its start (a trainer already training saves and stops)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise give_up("interrupted: the background trainer was stopped before it started") from None
    raise LaunchError(
        f"the background trainer (pid {proc.pid}) did not start within {timeout:.0f} s; see {run.trainer_log}"
    )


def _last_line(path: Path) -> str | None:
    try:
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def log(message: str) -> None:
    # trainer.log is read with cat and tail -f: text from the corpus must not drive that terminal
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {visible(message)}", flush=True)


def main(argv: list[str]) -> int:
    """The background trainer's process (with ``--nproc N``: the launcher of N processes)."""
    request_file = Path(argv[0])
    run_dir = request_file.parent
    try:
        request = TrainRequest.from_json(request_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        log(f"error: cannot read {request_file}: {exc}")
        _say_failed(run_dir, f"cannot read {request_file}")
        return 2
    if request.nproc <= 1:
        return background_process(request, run_dir)
    from rnn_tui.core.errors import RnnTuiError
    from rnn_tui.host.launch import Stopped, describe, launch

    log(describe(request))
    try:
        # no terminal: SIGHUP is ignored here as by a single background trainer
        return int(launch(request, background_process, run_dir, pass_on=("SIGTERM", "SIGINT"), ignore=("SIGHUP",)) or 0)
    except Stopped:
        return 0  # every process was passed the signal, saved and stopped
    except RnnTuiError as exc:  # refused before the processes started, or one of them died
        log(f"error: {exc}")
        if live_trainer(run_dir) is None and read_status(run_dir).get("state") in ("starting", "running", None):
            _say_failed(run_dir, str(exc))
        return 1


def background_process(request: TrainRequest, run_dir: Path) -> int:
    """A background trainer (or one of the processes of a ``--nproc`` one): its exit code."""
    from rnn_tui.host.serve import serve_session

    def note(e: ev.Event) -> None:
        # the log says what a person watching would have wanted to know
        match e:
            case ev.Started():
                world = f" x {e.world_size} processes" if e.world_size > 1 else ""
                log(f"training {e.corpus} on {e.device}{world}, {e.n_params:,} parameters, from step {e.step}")
            case ev.Evaluated():
                log(f"step {e.step}: val loss {e.val_loss:.4f} (best {e.best_val:.4f})")
            case ev.CheckpointSaved():
                said = "resumed from" if e.reason == "resumed" else "saved"
                log(f"{said} {e.path} at step {e.step} ({e.reason})")
            case ev.Notice():
                log(f"{e.level}: {e.message}")
            case ev.Finished():
                log(f"finished ({e.reason}) at step {e.step}" + (f": {e.error}" if e.error else ""))
            case _:
                pass

    leader = os.environ.get("RANK", "0") == "0"

    def stopping(signum: int) -> None:
        if leader:
            log(f"got signal {signum}: saving and stopping")

    inbox: queue.Queue[ev.Command] = queue.Queue()
    done = serve_session(
        request,
        inbox,
        note,
        stop_signals=(signal.SIGTERM, signal.SIGINT),
        ignore_signals=(signal.SIGHUP,),  # no terminal to lose; ignore a stray one
        on_stop_signal=stopping,
        on_internal_error=log,
    )
    if done.reason == "refused":
        if leader and live_trainer(run_dir) is None:  # the run is not another trainer's: say why this one failed
            _say_failed(run_dir, done.error)
        return 2
    return 1 if done.error else 0


def _say_failed(run_dir: Path, error: str | None) -> None:
    try:
        write_status(run_dir, state="failed", pid=os.getpid(), error=error)
    except OSError:
        pass  # the front end reads the reason from trainer.log instead


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
