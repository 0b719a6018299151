"""The sampling settings a screen shows: the trainer's (the one truth, shared by every screen),
with this screen's own key presses shown at once.

A key press changes the setting on screen immediately and sends ``SetSampling`` with a ticket;
the trainer applies it and answers every screen with ``SamplingChanged`` carrying that ticket.
Until the answer to this screen's newest press arrives, older answers (the echo of an earlier
press, or another screen's change that the newest answer will include anyway) are not shown:
they would undo a newer press for a moment. A press the trainer never answers (it was gone)
stops holding the screen back after ``ECHO_TIMEOUT_S``.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import time

from rnn_tui.core import events as ev

ECHO_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.8
    top_k: int = 0
    prime: str = ""


class SharedSampling:
    def __init__(self) -> None:
        self.shown = SamplingSettings()
        self._tickets = (f"{secrets.token_hex(4)}-{n}" for n in itertools.count(1))
        self._awaited: str | None = None  # the ticket of this screen's newest press, until answered
        self._sent_at = 0.0

    def change(
        self, temperature: float | None = None, top_k: int | None = None, prime: str | None = None
    ) -> ev.SetSampling:
        """Show a key press's setting now; returns the command that asks the trainer for it."""
        now = self.shown
        self.shown = SamplingSettings(
            now.temperature if temperature is None else temperature,
            now.top_k if top_k is None else top_k,
            now.prime if prime is None else prime,
        )
        self._awaited = next(self._tickets)
        self._sent_at = time.monotonic()
        return ev.SetSampling(temperature=temperature, top_k=top_k, prime=prime, ticket=self._awaited)

    def accept(self, e: ev.SamplingChanged) -> bool:
        """Take the trainer's settings unless they predate this screen's newest press; returns
        whether they were taken."""
        waiting = self._awaited is not None and time.monotonic() - self._sent_at < ECHO_TIMEOUT_S
        if waiting and e.ticket != self._awaited:
            return False
        self._awaited = None
        self.shown = SamplingSettings(e.temperature, e.top_k, e.prime)
        return True
