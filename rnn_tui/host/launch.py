"""``--nproc N``: N data-parallel processes on this machine, started by PyTorch's elastic launcher.

The launcher is torchrun's own (``elastic_launch`` with a ``LaunchConfig`` set up as ``torchrun
--standalone`` does: one machine, a c10d rendezvous on a free local port, no restarts), so the
processes see the environment torchrun gives (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``...) and run the
same host code as under torchrun: each calls ``serve_session`` (``serve.py``), which joins them.

The launcher watches its processes: one that dies stops the others (their collectives fail at
once); SIGTERM, SIGINT or SIGHUP to the launcher is passed on to every process, which saves and
stops as one process would. It installs those handlers on its main thread, so it runs in a
process of its own where a screen is involved (the app's ``ProcessLink``), never inside the app.

A launch that cannot work is refused here in one line before any process starts: more processes
than GPUs, a GPU named by index, a rendezvous port in use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.runs import RunDir
from rnn_tui.host.request import LaunchError, TrainRequest

# How long the processes get to save and stop after a signal before they are killed (the
# launcher's default is 30 s; a big checkpoint on a slow disk, and the last evaluation, take longer).
SHUTDOWN_TIMEOUT_S = 120


class Stopped(RnnTuiError):
    """The launcher was told to stop (a signal): every process was passed it, saved and stopped."""


def check_launch(request: TrainRequest) -> None:
    """One clear line for a launch that cannot work, before any process starts."""
    import torch

    n = request.nproc
    device = str(request.overrides.get("device", "auto"))
    if device.startswith("cuda:"):
        raise LaunchError(f"--device {device} names one GPU; with --nproc each process takes its own (use cuda)")
    if device == "mps":
        raise LaunchError("--nproc needs CUDA GPUs or the CPU (use --device cpu): MPS has no distributed backend")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" and gpus == 0:
        raise LaunchError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    if device in ("auto", "cuda") and gpus and n > gpus:
        raise LaunchError(
            f"--nproc {n}: this machine has {gpus} CUDA GPU{'s' if gpus > 1 else ''} and each process takes one "
            f"(use --nproc {gpus}, or --device cpu for CPU processes)"
        )
    if (device in ("auto", "cpu") and not gpus) or device == "cpu":
        from rnn_tui.core.threads import usable_cores

        cores = usable_cores()
        if n > max(2, cores):  # (two fit anywhere: what the tests and a first try use)
            raise LaunchError(
                f"--nproc {n}: CPU processes beyond this machine's {cores} core{'s' if cores > 1 else ''} only wait "
                f"for each other (use --nproc {cores} or fewer)"
            )
    if request.master_port is not None and not port_free(request.master_port):
        raise LaunchError(
            f"--master-port {request.master_port} is in use; choose another (or leave it out: a free one is picked)"
        )


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def describe(request: TrainRequest) -> str:
    """What is being started, in a line (``starting 2 processes: gloo on the CPU, 1 thread each``)."""
    import torch

    from rnn_tui.core.threads import usable_cores

    n = request.nproc
    device = str(request.overrides.get("device", "auto"))
    if device != "cpu" and torch.cuda.is_available():
        return f"starting {n} processes: one per GPU, NCCL"
    threads = request.overrides.get("threads") or max(1, usable_cores() // n)
    return f"starting {n} processes: gloo on the CPU, {threads} thread{'s' if threads != 1 else ''} each"


def launch(
    request: TrainRequest,
    entry: Callable[..., Any],
    *args: Any,
    log_to_run: bool = False,
    pass_on: tuple[str, ...] = ("SIGTERM", "SIGHUP"),
    ignore: tuple[str, ...] = ("SIGINT",),
) -> Any:
    """Run ``entry(request, *args)`` in ``request.nproc`` processes; rank 0's return value.

    ``entry`` is a module-level function (the processes are spawned; each imports it). A fresh
    run's directory is made first, so every host knows where the run is (and removed again if no
    checkpoint was ever written). ``log_to_run``: the launcher's and the processes' own output goes
    to ``RUN/trainer.log`` (a screen owns the terminal). ``pass_on``: the signals the launcher
    passes on to every process (they save and stop); ``ignore``: the signals it ignores (Ctrl+C
    in a terminal reaches every process itself: passed on too, it would count twice).

    Raises ``LaunchError`` (a process failed; one line), ``Stopped`` (a signal stopped the run)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    check_launch(request)
    run_dir, made = request.prepare_run_dir()
    request = dataclasses.replace(request, run_dir=run_dir if made else request.run_dir)
    if log_to_run:
        _log_to(RunDir(run_dir).trainer_log)
    if "OMP_NUM_THREADS" not in os.environ:  # torch's threads at start, before the tuner measures
        from rnn_tui.core.threads import usable_cores

        os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cores() // request.nproc))
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT_S))
    signals = ",".join((*pass_on, "SIGQUIT"))
    previous = {getattr(signal, name): signal.signal(getattr(signal, name), signal.SIG_IGN) for name in ignore}
    try:
        with _quiet_launcher():
            results = elastic_launch_compat(request.nproc, signals, request.master_port)(_entry, entry, request, *args)
        return results.get(0)
    except ChildFailedError as exc:
        if stopped_by_signals(exc):  # a process told to stop by a signal passed it to the others
            raise Stopped("stopped by a signal") from None
        raise LaunchError(failure_line(exc, request, run_dir)) from None
    except Exception as exc:
        if type(exc).__name__ == "SignalException":
            raise Stopped(str(exc)) from None
        if isinstance(exc, RnnTuiError):
            raise
        raise LaunchError(f"could not start the processes: {exc}") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if made and not RunDir(run_dir).latest.exists() and not RunDir(run_dir).metrics.exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # a run that never trained leaves nothing behind


def elastic_launch_compat(nproc: int, signals: str, port: int | None = None) -> Any:
    """torchrun --standalone's setup; only fields every torch since 2.1 has, plus ones it may lack."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    fields = {f.name for f in dataclasses.fields(LaunchConfig)}
    extra: dict[str, Any] = {}
    if "logs_specs" in fields:  # no torchelastic_* directories left in /tmp
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs

        extra["logs_specs"] = DefaultLogsSpecs(log_dir=os.devnull)
    if "signals_to_handle" in fields:
        extra["signals_to_handle"] = signals
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"rnn-tui-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint=f"localhost:{port or 0}",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        **extra,
    )
    return elastic_launch(config, _entry)


def _entry(entry: Callable[..., Any], *args: Any) -> Any:
    """Each process's first call: quiet launcher logs, then the host's own function.

    A process that a SIGTERM or SIGHUP stopped (the launcher passes them on when it is told to
    stop) saves, then exits by that signal: the launcher, stopping, waits for its processes to
    end and no longer collects what they return."""
    logging.getLogger("torch.distributed").setLevel(logging.ERROR)
    from rnn_tui.host import serve

    launcher = os.getppid()
    result = entry(*args)
    if os.getppid() != launcher:
        # The launcher is gone (kill -9): this process stopped and saved when it noticed, but
        # torch's wrapper would now wait forever for the launcher to read the result.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result if isinstance(result, int) else 1)
    if serve.stop_signal in (signal.SIGTERM, signal.SIGHUP):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(serve.stop_signal, signal.SIG_DFL)
        os.kill(os.getpid(), serve.stop_signal)
    return result


def stopped_by_signals(exc: Any) -> bool:
    """Every process that failed ended by a stop signal (after saving: see ``_entry``)."""
    failures = getattr(exc, "failures", {}) or {}
    stops = {-signal.SIGTERM, -signal.SIGHUP}
    return bool(failures) and all(getattr(f, "exitcode", None) in stops for f in failures.values())


def failure_line(exc: Any, request: TrainRequest, run_dir: Path) -> str:
    """One line for processes that died: which, how, and what to do."""
    failures = getattr(exc, "failures", {}) or {}
    parts = []
    for rank, failure in sorted(failures.items()):
        code = getattr(failure, "exitcode", None)
        how = f"was killed by {failure.signal_name()}" if code is not None and code < 0 else f"exited with code {code}"
        parts.append(f"process {rank} of {request.nproc} {how}")
    what = "; ".join(parts) or "a process failed"
    return f"{what}; the run stopped (continue it with: rnn-tui train --resume {run_dir} --nproc {request.nproc})"


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The elastic agent logs every step it takes, and a process's death with a traceback of its
    own; what a person needs to know comes from rnn-tui, in a line. (torch gives each of its
    loggers its own level: each is quietened.)"""
    import torch.distributed.launcher.api  # noqa: F401  (its loggers exist from here on)

    loggers = [
        logging.getLogger(name)
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith("torch.distributed.elastic") or name.startswith("torch.distributed.launcher")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _log_to(path: Path) -> None:
    """This process's (and its children's) stdout and stderr into ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
