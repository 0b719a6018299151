"""The explorer when no trainer can answer: a finished run, a run that is not training, a checkpoint.

``ExploringLink`` wraps any ``TrainerLink``: ``Explore`` requests go to the trainer while it
trains; once it has finished (or when there never was one) they are answered here, from the run's
checkpoint, by a ``LocalExplorer`` thread (torch and the checkpoint load on the first request, so a
viewer that never opens the explorer never loads torch). A request the trainer did not answer
before it finished is answered here instead.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from rnn_tui.core import events as ev
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.runs import RunDir
from rnn_tui.host.links import TrainerLink
from rnn_tui.remote.client import HistoryLink


class LocalExplorer:
    """Answers ``Explore`` requests from a checkpoint on a thread of this process."""

    def __init__(self, checkpoint: Path | None = None, loaded: Any = None):
        self.checkpoint = checkpoint
        self.loaded = loaded  # an rnn_tui.core.explorer.Explorable, once loaded
        self.requests: queue.Queue[ev.Explore | None] = queue.Queue()
        self.answers: queue.Queue[ev.Event] = queue.Queue()
        self.thread: threading.Thread | None = None

    def submit(self, request: ev.Explore) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._serve, name="local-explorer", daemon=True)
            self.thread.start()
        self.requests.put(request)

    def poll(self) -> list[ev.Event]:
        out: list[ev.Event] = []
        while True:
            try:
                out.append(self.answers.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        if self.thread is not None:
            self.requests.put(None)

    def _serve(self) -> None:
        while True:
            request = self.requests.get()
            while not self.requests.empty():  # only the newest request matters
                newer = self.requests.get()
                if newer is None:
                    return
                request = newer
            if request is None:
                return
            self.answers.put(self._answer(request))

    def _answer(self, request: ev.Explore) -> ev.Explored | ev.ExploreFailed:
        if self.loaded is None:
            if self.checkpoint is None:
                return ev.ExploreFailed(request.asker, "this run left no checkpoint to explore")
            try:
                from rnn_tui.core.explorer import load_explorable

                self.loaded = load_explorable(self.checkpoint)
            except RnnTuiError as exc:
                return ev.ExploreFailed(request.asker, str(exc))
        answer: ev.Explored | ev.ExploreFailed = self.loaded.answer(request)
        return answer


class ExploringLink:
    """A ``TrainerLink`` whose ``Explore`` requests are answered here when its trainer cannot."""

    def __init__(self, inner: TrainerLink, *, checkpoint: Path | None = None, local: bool = False, loaded: Any = None):
        self.inner = inner
        self.local = LocalExplorer(checkpoint, loaded)
        self.always_local = local  # there is no trainer to ask (a finished run's files, a checkpoint)
        self.finished: ev.Finished | None = None
        self.run_dir: str | None = None
        self.waiting: ev.Explore | None = None  # the trainer has not answered this one yet

    def start(self) -> None:
        self.inner.start()

    def answered_here(self) -> bool:
        return self.always_local or self.finished is not None or not self.inner.alive()

    def send(self, command: ev.Command) -> None:
        if not isinstance(command, ev.Explore):
            self.inner.send(command)
        elif self.answered_here():
            self._ask_locally(command)
        else:
            self.waiting = command
            self.inner.send(command)

    def _ask_locally(self, request: ev.Explore) -> None:
        if self.local.checkpoint is None and self.local.loaded is None:
            self.local.checkpoint = self._checkpoint()
        self.local.submit(request)

    def _checkpoint(self) -> Path | None:
        """The checkpoint a finished run left: the one it reported, else its latest, else its best
        (a run killed before its first periodic save)."""
        if self.finished is not None and self.finished.checkpoint:
            return Path(self.finished.checkpoint)
        if self.run_dir:
            run = RunDir(self.run_dir)
            return next((p for p in (run.latest, run.best) if p.exists()), None)
        return None

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        events = self.inner.poll(limit)
        for e in events:
            match e:
                case ev.Started():
                    self.run_dir = e.run_dir
                case ev.Finished():
                    self.finished = e
                case ev.Explored() | ev.ExploreFailed():
                    self.waiting = None
                case _:
                    pass
        if self.waiting is not None and self.answered_here():  # the trainer finished first
            request, self.waiting = self.waiting, None
            self._ask_locally(request)
        return events + self.local.poll()

    def alive(self) -> bool:
        return self.inner.alive()

    def join(self, timeout: float | None = None) -> None:
        self.inner.join(timeout)

    def close(self) -> None:
        self.local.close()
        self.inner.close()

    @property
    def exit_code(self) -> int | None:
        return self.inner.exit_code


class FixedLink(HistoryLink):
    """A trainer that is not there, shown from the given events (a checkpoint outside any run)."""

    def __init__(self, events: list[ev.Event]):
        self.pending = list(events)

    def start(self) -> None:
        pass
