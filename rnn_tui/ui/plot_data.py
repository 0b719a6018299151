"""The loss plot's data, without the widget: bounded history, smoothing, downsampling, ticks.

Pure numpy (no Textual, no plotext), so each piece is tested on its own and the widget only
draws (``rnn_tui/ui/widgets/loss_plot.py``).
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- storage


class Series:
    """Append-only (x, y) history in float64 arrays, bounded in size. x never decreases: a caller
    whose steps go back (a rollback, a resume) first drops the later points (``truncate_from``).

    Past ``cap`` points, adjacent pairs are averaged and ``stride`` (raw points per stored
    point) doubles; later points are then averaged ``stride`` at a time before they are
    stored, so the stored series always has a uniform resolution. The incomplete group waits
    in ``_pending_*`` and is shown as one extra point.
    """

    def __init__(self, cap: int) -> None:
        self.cap = max(16, int(cap))
        self.clear()

    def clear(self) -> None:
        self._x = np.empty(1024)
        self._y = np.empty(1024)
        self.n = 0
        self.stride = 1
        self.total = 0  # raw points ever added
        self.version = 0  # bumps when stored points are rewritten (halving, clearing)
        self._px = 0.0
        self._py = 0.0
        self._pc = 0  # raw points waiting in the pending group

    # -- reading
    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    @property
    def nbytes(self) -> int:
        return self._x.nbytes + self._y.nbytes

    def pending(self) -> tuple[float, float] | None:
        if self._pc == 0:
            return None
        return self._px / self._pc, self._py / self._pc

    def last_x(self) -> float | None:
        """The largest x (the newest step when steps only grow)."""
        p = self.pending()
        if p is not None:
            return p[0]
        return float(self._x[self.n - 1]) if self.n else None

    # -- writing
    def _append(self, xs: np.ndarray, ys: np.ndarray) -> None:
        k = len(xs)
        if k == 0:
            return
        if self.n + k > len(self._x):
            size = max(2 * len(self._x), self.n + k)
            nx, ny = np.empty(size), np.empty(size)
            nx[: self.n] = self._x[: self.n]
            ny[: self.n] = self._y[: self.n]
            self._x, self._y = nx, ny
        self._x[self.n : self.n + k] = xs
        self._y[self.n : self.n + k] = ys
        self.n += k

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        if len(xs) == 0:
            return
        self.total += len(xs)
        s = self.stride
        if s == 1:
            self._append(xs, ys)
        else:
            i = 0
            if self._pc:
                k = min(s - self._pc, len(xs))
                self._px += float(xs[:k].sum())
                self._py += float(ys[:k].sum())
                self._pc += k
                i = k
                if self._pc == s:
                    self._append(np.array([self._px / s]), np.array([self._py / s]))
                    self._px = self._py = 0.0
                    self._pc = 0
            groups = (len(xs) - i) // s
            if groups:
                j = i + groups * s
                self._append(xs[i:j].reshape(groups, s).mean(axis=1), ys[i:j].reshape(groups, s).mean(axis=1))
                i = j
            if i < len(xs):
                self._px += float(xs[i:].sum())
                self._py += float(ys[i:].sum())
                self._pc += len(xs) - i
        while self.n > self.cap:
            self._halve()

    def truncate_from(self, x0: float) -> None:
        """Forget the points at ``x0`` and after (a rollback or a resume trains those steps again)."""
        keep = int(np.searchsorted(self.x, x0, side="left"))
        if keep < self.n or self._pc:
            self.n = keep
            self._px = self._py = 0.0  # the open group straddles or follows x0: drop it
            self._pc = 0
            self.version += 1

    def _halve(self) -> None:
        n, s = self.n, self.stride
        m = n // 2
        # The odd point left over becomes the start of the next (twice as wide) pending group.
        if n % 2:
            self._px += float(self._x[n - 1]) * s
            self._py += float(self._y[n - 1]) * s
            self._pc += s
        x = self._x[: 2 * m].reshape(m, 2).mean(axis=1)
        y = self._y[: 2 * m].reshape(m, 2).mean(axis=1)
        size = max(1024, 2 * self.cap)  # also gives back memory after one huge add
        if len(self._x) > size:
            self._x, self._y = np.empty(size), np.empty(size)
        self._x[:m] = x
        self._y[:m] = y
        self.n = m
        self.stride = 2 * s
        self.version += 1
        if self._pc >= self.stride:  # a pending group (from before) plus the odd point is complete
            self._append(np.array([self._px / self._pc]), np.array([self._py / self._pc]))
            self._px = self._py = 0.0
            self._pc = 0

    def first_x(self) -> float | None:
        if self.n:
            return float(self._x[0])
        p = self.pending()
        return None if p is None else p[0]

    def window_indices(self, lo: float, hi: float) -> slice:
        """Which stored points have ``lo <= x <= hi``."""
        x = self.x
        return slice(int(np.searchsorted(x, lo, side="left")), int(np.searchsorted(x, hi, side="right")))

    def window(
        self, lo: float, hi: float, y: np.ndarray | None = None, pending_y: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored points (or the same points of ``y``, a per-point array such as the EMA) with
        ``lo <= x <= hi``, plus the pending point when it is in range."""
        sel = self.window_indices(lo, hi)
        xs = self.x[sel]
        ys = (self.y if y is None else y)[sel]
        p = self.pending()
        if p is not None and lo <= p[0] <= hi:
            xs = np.append(xs, p[0])
            ys = np.append(ys, p[1] if pending_y is None else pending_y)
        return xs, ys


def ema(y: np.ndarray, weight: float, start: float | None = None) -> np.ndarray:
    """EMA ``s[t] = w*s[t-1] + (1-w)*y[t]`` with ``s[-1] = start`` (or ``y[0]``), vectorised.

    Works in chunks short enough that ``w**-L`` stays below 1e100, so the closed form
    ``s[t] = w**(t+1)*s0 + (1-w) * w**t * cumsum(y[k] * w**-k)`` cannot overflow.
    """
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return y.copy()
    w = float(weight)
    if w <= 0.0:
        return y.copy()
    prev = float(y[0]) if start is None else float(start)
    chunk = int(min(65536, max(1, 100.0 / -math.log10(w))))
    powers = w ** np.arange(min(chunk, len(y)))
    inverse = 1.0 / powers
    out = np.empty_like(y)
    for i in range(0, len(y), chunk):
        seg = y[i : i + chunk]
        k = len(seg)
        p = powers[:k]
        s = w * p * prev + (1.0 - w) * p * np.cumsum(seg * inverse[:k])
        out[i : i + k] = s
        prev = float(s[-1])
    return out


# --------------------------------------------------------------------------- downsampling


def _bucket_edges(x: np.ndarray, lo: float, hi: float, buckets: int) -> np.ndarray:
    edges = np.linspace(lo, hi, buckets + 1)
    starts = np.searchsorted(x, edges[:-1], side="left")
    starts[0] = 0
    starts = np.unique(starts)  # non-empty buckets only; x is sorted
    return starts[starts < len(x)]


def downsample_mean(x: np.ndarray, y: np.ndarray, lo: float, hi: float, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of x and y in each of ``buckets`` equal x-intervals (x sorted)."""
    if len(x) <= buckets or hi <= lo:
        return x, y
    starts = _bucket_edges(x, lo, hi, buckets)
    counts = np.diff(np.append(starts, len(x)))
    return np.add.reduceat(x, starts) / counts, np.add.reduceat(y, starts) / counts


def downsample_envelope(
    x: np.ndarray, y: np.ndarray, lo: float, hi: float, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of y in each x-interval, interleaved (min, max, min, ...): joined by
    lines it paints the band the raw points cover, at two points per bucket."""
    if len(x) <= 2 * buckets or hi <= lo:
        return x, y
    starts = _bucket_edges(x, lo, hi, buckets)
    counts = np.diff(np.append(starts, len(x)))
    xm = np.add.reduceat(x, starts) / counts
    ymin = np.minimum.reduceat(y, starts)
    ymax = np.maximum.reduceat(y, starts)
    # Alternate the order so that consecutive buckets join min->max->max->min without long diagonals.
    first = np.where(np.arange(len(starts)) % 2 == 0, ymin, ymax)
    second = np.where(np.arange(len(starts)) % 2 == 0, ymax, ymin)
    return np.repeat(xm, 2), np.column_stack([first, second]).ravel()


# --------------------------------------------------------------------------- y range

ROBUST_SKIP = 0.1  # the first tenth of the steps in view: where the loss falls from ln(vocab)
ROBUST_QUANTILES = (0.02, 0.95)  # of the raw training losses after them


def robust_range(
    train: tuple[np.ndarray, np.ndarray], keep: list[tuple[np.ndarray, np.ndarray]], lo: float, hi: float
) -> tuple[float, float] | None:
    """A y range that ignores outliers, as TensorBoard's "ignore outliers in chart scaling" does
    (it scales to percentiles of the values): here the raw training losses of the last nine
    tenths of the view ``lo…hi`` (``train``, as x and y), between their 2nd and 95th
    percentiles, widened to hold every point of ``keep`` in those nine tenths (the smoothed
    curve, the validation losses: never cut off). None when there are too few points to say,
    or when it would hide little (then the whole range is shown)."""
    start = lo + ROBUST_SKIP * (hi - lo)
    x, y = train
    later = y[x >= start]
    if len(later) < 20:
        return None
    q_lo, q_hi = (float(q) for q in np.quantile(later, ROBUST_QUANTILES))
    full_lo, full_hi = float(y.min()), float(y.max())
    for kx, ky in keep:
        if len(ky):
            full_lo, full_hi = min(full_lo, float(ky.min())), max(full_hi, float(ky.max()))
        shown = ky[kx >= start]
        if len(shown):
            q_lo, q_hi = min(q_lo, float(shown.min())), max(q_hi, float(shown.max()))
    if q_hi - q_lo > 0.8 * (full_hi - full_lo):
        return None
    return q_lo, q_hi


# --------------------------------------------------------------------------- ticks


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * mag >= raw * (1 - 1e-9):
            return m * mag
    return 10.0 * mag


def linear_ticks(lo: float, hi: float, target: int, min_step: float = 0.0) -> list[float]:
    """Round values between ``lo`` and ``hi``, about ``target`` of them, at least ``min_step``
    apart (1 for steps: there is no step 0.6)."""
    step = max(min_step, _nice_step(hi - lo, target))
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    v = first
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v = first + len(ticks) * step
    return ticks


def _decimals(step: float) -> int:
    if step <= 0 or not math.isfinite(step):
        return 2
    d = -math.floor(math.log10(step) + 1e-9)
    if round(step / 10.0**-d, 6) not in (1.0, 2.0, 5.0):  # 2.5, 0.25: one more digit
        d += 1
    return max(0, d)


def format_value(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}"


def format_step(v: float, step: float) -> str:
    """Tick label for a training step: 950, 12k, 12.5k, 1.2M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.{max(0, _decimals(step / 1e6))}f}M"
    if a >= 1e4:
        return f"{v / 1e3:.{max(0, _decimals(step / 1e3))}f}k"
    return f"{v:.{_decimals(step) if step < 1 else 0}f}"


def log_ticks(lo: float, hi: float, target: int) -> tuple[list[float], list[str]]:
    """Ticks for a y axis holding log10 values: positions (log10) and labels (values).

    Rounder values are placed first (4 before 3.5, 2 before 1.5), each kept only if it is far
    enough, on the log axis, from every tick already placed.
    """
    span = hi - lo
    target = max(2, target)
    min_gap = span / target * 0.8
    vlo, vhi = 10.0**lo, 10.0**hi
    levels: list[list[float]] = []
    if span < 1.0:
        top = math.floor(math.log10(vhi))
        for e in range(top, top - 4, -1):
            for m in (1.0, 0.5, 0.2, 0.1):
                step = m * 10.0**e
                if step < (vhi - vlo) / 40:
                    break
                first = math.ceil(vlo / step - 1e-9)
                levels.append([k * step for k in range(first, int(vhi / step + 1e-9) + 1) if k > 0])
    else:
        mantissas = (1.0,) if span >= 4 else (1.0, 2.0, 5.0)
        for m in mantissas:
            levels.append([m * 10.0**e for e in range(math.floor(lo) - 1, math.ceil(hi) + 1)])
    chosen: list[float] = []
    for level in levels:
        for v in level:
            p = math.log10(v)
            if lo - 1e-9 <= p <= hi + 1e-9 and all(abs(p - q) >= min_gap for q in chosen):
                chosen.append(p)
    chosen.sort()
    if len(chosen) < 2:
        return [lo, hi], [f"{vlo:.3g}", f"{vhi:.3g}"]
    values = [10.0**p for p in chosen]
    # Enough decimals to tell neighbours apart, the same for all labels.
    decimals = 0
    while decimals < 4 and len({f"{v:.{decimals}f}" for v in values}) < len(values):
        decimals += 1
    while decimals < 4 and any(abs(float(f"{v:.{decimals}f}") - v) > 1e-6 * max(1.0, v) for v in values):
        decimals += 1
    if span >= 1.0 or vhi >= 1e4 or vlo < 1e-3:
        return chosen, [f"{v:.3g}" for v in values]
    return chosen, [f"{v:.{decimals}f}" for v in values]


def loss_ticks(lo: float, hi: float, target: int, log: bool) -> tuple[list[float], list[str]]:
    """Ticks for a loss axis: positions and labels, linear or (``log``: values are log10) logarithmic."""
    if log:
        return log_ticks(lo, hi, target)
    positions = linear_ticks(lo, hi, target)
    for more in range(target + 1, 4 * target + 1):
        if len(positions) >= 2:
            break
        target, positions = more, linear_ticks(lo, hi, more)  # two labels at least: a scale to read
    decimals = _decimals(_nice_step(hi - lo, target))
    return positions, [format_value(v, decimals) for v in positions]
