"""How many CPU threads torch trains with: measured, not assumed.

On a quiet 2-core machine two threads train fastest. When another process takes a core, each of
torch's parallel regions waits for its descheduled thread, and two threads can run 60x slower than
one (measured: 0.1 against 6.6 steps/s). So the thread count is chosen by timing real training
steps with each candidate (a trial of a fraction of a second each), again every so often, and at
once when the steps slow down by more than a third. A count the person gives (``--threads``) is
kept as it is.
"""

from __future__ import annotations

import os
import statistics
from collections import deque
from collections.abc import Callable

TRIAL_STEPS = 6  # timed steps per candidate (after one step to settle the thread pool)
TRIAL_MIN_S = 0.3  # ... and at least this long, for fast steps
RETUNE_FIRST_S = 20.0  # training seconds until the first re-check ...
RETUNE_MAX_S = 300.0  # ... doubling while the choice holds, up to this
SLOWDOWN = 1.35  # steps this much slower than measured for the choice: measure again now
RECENT = 3  # steps in the running median that detects a slowdown (one slow step is not one)
HOPELESS = 4.0  # a trial step this many times slower than the best measured ends that candidate's trial


def candidates(cores: int) -> list[int]:
    """The thread counts worth a trial on ``cores`` cores: all, one fewer (another process may
    hold one), half, and one."""
    found = {cores, cores - 1, cores // 2, 1}
    return sorted((c for c in found if c >= 1), reverse=True)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class ThreadTuner:
    """Call ``step_done(seconds)`` after every training step; it sets the thread count through
    ``set_threads`` and says what it chose in ``threads``."""

    def __init__(self, set_threads: Callable[[int], None], cores: int | None = None, fixed: int | None = None):
        self.set_threads = set_threads
        self.fixed = fixed
        self.options = [fixed] if fixed else candidates(cores or usable_cores())
        self.threads = self.options[0]  # in use now
        self.chosen = self.threads  # the latest trial's winner
        self.trials = 0  # how many times the candidates were measured
        self._queue: list[int] = []  # candidates still to measure in this trial
        self._times: dict[int, list[float]] = {}
        self._current: list[float] = []
        self._skip = 0
        self._recent: deque[float] = deque(maxlen=RECENT)
        self._chosen_median = 0.0
        self._since_check = 0.0
        self._interval = RETUNE_FIRST_S
        set_threads(self.threads)
        if len(self.options) > 1:
            self._start_trial()

    @property
    def tuning(self) -> bool:
        return bool(self._queue)

    def _start_trial(self, chosen_times: list[float] | None = None) -> None:
        """Measure the candidates; with ``chosen_times`` (steps just seen slowing down) the
        current choice needs no new trial."""
        self.trials += 1
        # fewest threads first: on a busy machine those steps are the quick ones, and a slow
        # candidate measured later is cut short (HOPELESS) instead of costing whole seconds
        order = sorted(self.options)
        self._queue = [c for c in order if c != self.chosen] if chosen_times else order
        self._times = {self.chosen: chosen_times} if chosen_times else {}
        self._begin(self._queue[0])

    def _begin(self, threads: int) -> None:
        if threads != self.threads:
            self.set_threads(threads)
            self.threads = threads
        self._current = []
        self._skip = 1  # the first step after a switch pays for waking the pool

    def step_done(self, seconds: float) -> None:
        if self._queue:
            self._trial_step(seconds)
            return
        if len(self.options) == 1:
            return
        self._recent.append(seconds)
        self._since_check += seconds
        slowed = len(self._recent) == RECENT and statistics.median(self._recent) > SLOWDOWN * self._chosen_median
        if slowed:
            self._interval = RETUNE_FIRST_S  # the machine changed: check again soon after too
            self._start_trial(chosen_times=list(self._recent))
        elif self._since_check >= self._interval:
            self._start_trial()

    def _trial_step(self, seconds: float) -> None:
        best_so_far = min((statistics.median(ts) for ts in self._times.values()), default=None)
        hopeless = best_so_far is not None and seconds > HOPELESS * best_so_far
        if self._skip and not hopeless:
            self._skip -= 1
            return
        self._current.append(seconds)
        if not hopeless:
            if len(self._current) < TRIAL_STEPS and sum(self._current) < TRIAL_MIN_S:
                return
            if len(self._current) < 3:  # slow steps: three are enough to tell
                return
        self._times[self._queue.pop(0)] = self._current
        if self._queue:
            self._begin(self._queue[0])
            return
        medians = {c: statistics.median(ts) for c, ts in self._times.items()}
        best = min(medians, key=lambda c: medians[c])
        same = best == self.chosen
        self.chosen = best
        self._begin(best)
        self._skip = 0
        self._chosen_median = medians[best]
        self._recent.clear()
        self._since_check = 0.0
        self._interval = min(RETUNE_MAX_S, self._interval * 2) if same else RETUNE_FIRST_S
