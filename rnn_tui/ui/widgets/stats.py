"""The stats panel: where the run is, how fast it goes, what it will sample next.

The panel fits its rows to its size instead of wrapping or cutting them off: each row has
shorter spellings for narrow panels, and on short panels the least needed rows go first (the
validation and best losses share a row, then the model and learning-rate rows go), so the state,
the sampling settings and the last save are always shown. A tall panel shows history too:
validation loss per evaluation and training speed over time, as sparklines.
"""

from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass, field

from rich.cells import cell_len
from textual.markup import escape
from textual.widgets import Static

LN2 = math.log(2)
LABEL = 7  # the row labels' column ("state  ", "sample ")
SPARK = "▁▂▃▄▅▆▇█"
HISTORY = 2000  # speed readings kept (two a second: the last quarter of an hour)

STATE_STYLE = {
    "starting": "$text-muted",
    "training": "$success",
    "paused": "$warning",
    "pausing": "$warning",
    "evaluating": "$accent",
    "sampling": "$accent",
    "saving": "$accent",
    "stopping": "$warning",
    "finished": "$text-muted",
    "failed": "$error",
    "stopped": "$text-muted",
    "crashed": "$error",
    "damaged": "$error",
    "resuming": "$success",
}


IDLE = ("paused", "finished", "failed", "stopping", "stopped", "crashed", "damaged")
FEW_STEPS = 10  # an epoch of fewer steps (a tiny corpus) is counted whole: no fraction, no eta to its end


def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_count(n: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def sparkline(values: list[float], width: int, height: int = 1, floor: float | None = None) -> list[str]:
    """``values`` as block bars ``height`` rows tall (top row first), at most ``width`` bars
    (means of equal runs when there are more values), from ``floor`` (default: the least value)
    to the greatest value."""
    if not values or width <= 0 or height <= 0:
        return []
    n = len(values)
    if n > width:
        edges = [round(i * n / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in itertools.pairwise(edges) if b > a]
    lo, hi = min(values) if floor is None else floor, max(values)
    span = hi - lo
    steps = len(SPARK) * height - 1
    levels = [round((v - lo) / span * steps) if span > 0 else 0 for v in values]
    rows = []
    for r in reversed(range(height)):
        low = r * len(SPARK)
        rows.append("".join(" " if lv < low else "█" if lv >= low + len(SPARK) else SPARK[lv - low] for lv in levels))
    return rows


@dataclass
class RunStats:
    state: str = "starting"
    state_detail: str = ""  # e.g. "evaluating 40%" while stopping
    step: int = 0
    epoch: float = 0.0
    train_loss: float | None = None
    val_loss: float | None = None
    best_val: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    chars_per_s: float = 0.0
    elapsed_s: float = 0.0  # this session's training time (what --max-minutes counts)
    total_s: float = 0.0  # the run's, resumed parts included
    tokens: int = 0
    device: str = "-"
    threads: int | None = None
    n_params: int = 0
    gpu_mem_mb: float | None = None
    precision: str = ""  # e.g. "fp16 + loss scaling"
    precision_reason: str = ""
    skipped_steps: int = 0  # updates the fp16 loss scaler skipped
    batches_per_epoch: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None
    temperature: float = 0.8
    top_k: int = 0
    prime: str = ""
    run_dir: str = ""
    last_saved: str = ""
    chars_per_step: int = 0  # every process's, together
    world_size: int = 1  # data-parallel processes
    gpus: list[dict] | None = None  # each GPU's counters (NVML), on CUDA only
    val_history: list[float] = field(default_factory=list)  # one per evaluation
    speed_history: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))

    def eta(self) -> tuple[float | None, str]:
        steps_per_s = self.chars_per_s / self.chars_per_step if self.chars_per_step else 0.0
        if self.max_minutes is not None:
            left = self.max_minutes * 60 - self.elapsed_s
            if self.max_steps is not None and steps_per_s > 0:
                left = min(left, (self.max_steps - self.step) / steps_per_s)
            return max(0.0, left), "to the end"
        if self.max_steps is not None and steps_per_s > 0:
            return max(0.0, (self.max_steps - self.step) / steps_per_s), "to the end"
        if self.batches_per_epoch >= FEW_STEPS and steps_per_s > 0:
            frac = self.epoch - math.floor(self.epoch)
            return (1 - frac) * self.batches_per_epoch / steps_per_s, "to next epoch"
        return None, ""


def fmt_epoch(epoch: float, batches_per_epoch: int) -> str:
    """Epochs done: a fraction and how far into the current one, when an epoch is more than a
    few steps (on a tiny corpus one step is one epoch: "epoch 83", not "epoch 83.00 (0%)")."""
    if 0 < batches_per_epoch < FEW_STEPS:
        return f"epoch {math.floor(epoch + 1e-9):,}"
    pct = (epoch - math.floor(epoch)) * 100
    return f"epoch {epoch:.2f} ({pct:.0f}%)"


def fmt_range(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{format(low, fmt)}–{format(high, fmt)}"


GPU_KEYS = ("util", "mem_used_mb", "mem_total_mb", "temp_c", "power_w", "power_limit_w")


def gpu_rows(gpus: list[dict], each_up_to: int = 4) -> list[tuple[str, list[str]]]:
    """Rows for the GPUs' counters (``core/gpus.py`` samples): one a GPU, or, past ``each_up_to``
    GPUs, one row of ranges and the power of all. A counter a GPU does not report is left out.
    Each row in spellings from longest to shortest (the power limit, then the power, go first)."""

    def known(of: list[dict]) -> dict[str, list[float]]:
        return {k: [float(g[k]) for g in of if isinstance(g.get(k), (int, float))] for k in GPU_KEYS}

    def line(v: dict[str, list[float]], power: bool = True, limit: bool = True) -> str:
        out = []
        if v["util"]:
            out.append(f"{fmt_range(v['util'], '.0f')}%")
        if v["mem_used_mb"] and v["mem_total_mb"]:
            used = [u / 1024 for u in v["mem_used_mb"]]
            out.append(f"{fmt_range(used, '.1f')}/{max(v['mem_total_mb']) / 1024:.0f} GB")
        if v["temp_c"]:
            out.append(f"{fmt_range(v['temp_c'], '.0f')}°C")
        if power and v["power_w"]:
            most = f"/{max(v['power_limit_w']):.0f}" if v["power_limit_w"] and limit else ""
            out.append(f"{fmt_range(v['power_w'], '.0f')}{most} W")
        return " · ".join(out) or "-"

    if len(gpus) > each_up_to:
        v = known(gpus)
        power = f" · {sum(v['power_w']) / 1000:.2f} kW" if v["power_w"] else ""
        cool = {**v, "temp_c": []}  # the temperatures go before the power of all
        spellings = [f"{len(gpus)} · {line(v, power=False)}{power}", f"{len(gpus)} · {line(cool, power=False)}{power}"]
        return [("gpus", [*spellings, f"{len(gpus)} · {line(v, power=False)}"])]
    return [
        (f"gpu {g.get('index', '?')}", [line(known([g])), line(known([g]), limit=False), line(known([g]), power=False)])
        for g in gpus
    ]


@dataclass
class Row:
    """One row: its label, its value in spellings from longest to shortest, and how soon it goes
    when the panel is short (higher goes first)."""

    label: str
    values: list[str]
    drop: int = 0


def fit(values: list[str], width: int) -> str:
    """The longest spelling that fits ``width`` cells (measured without markup), else the
    shortest one cut with "…"."""
    from textual.content import Content

    for value in values:
        if Content.from_markup(value).cell_length <= width:
            return value
    plain = Content.from_markup(values[-1]).plain
    while plain and cell_len(plain) > width - 1:
        plain = plain[:-1]
    return escape(plain) + "…"


class StatsPanel(Static):
    DEFAULT_CSS = """
    StatsPanel { height: 1fr; text-wrap: nowrap; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.stats = RunStats()
        self._shown = ""

    def show(self) -> None:
        size = self.content_size
        markup = self.render_markup(size.width or 36, size.height or 11)
        if markup != self._shown:
            self._shown = markup
            # The panel's size is fixed by the layout: skip the (costly) layout pass.
            self.update(markup, layout=False)

    def on_resize(self) -> None:
        self.show()

    def rows(self, width: int = 36) -> list[Row]:
        """Every row the panel can show, in order, with its spellings."""
        s = self.stats

        def loss(v: float | None) -> list[str]:
            return ["-"] if v is None else [f"{v:.4f} ({v / LN2:.3f} bpc)", f"{v:.4f}"]

        lr = f"{s.lr:.2e}" if s.lr is not None else "-"
        gn = f"{s.grad_norm:.2f}" if s.grad_norm is not None and math.isfinite(s.grad_norm) else "-"
        eta, what = s.eta()
        prime = s.prime.replace("\n", "↵")
        prime = (prime[:13] + "…") if len(prime) > 14 else prime
        sampling = f"T {s.temperature:.2f} · top-k {s.top_k or 'all'}"
        state = f"[{STATE_STYLE.get(s.state, '$text')}]● {s.state}[/]" + (
            f" · {escape(s.state_detail)}" if s.state_detail else ""
        )
        trained = fmt_duration(max(s.total_s, s.elapsed_s))  # a resumed run's clock goes on
        time_row = [trained]
        if s.state not in IDLE and eta is not None:
            short_what = {"to next epoch": "to epoch end"}.get(what, what)
            time_row = [
                f"{trained} · eta {fmt_duration(eta)} {what}",
                f"{trained} · {fmt_duration(eta)} {short_what}",
                f"{trained} · eta {fmt_duration(eta)}",
            ]
        world = f" · {s.world_size} processes" if s.world_size > 1 else ""
        threads = f"{s.threads} thread{'s' if s.threads != 1 else ''}"
        speed = [(f"{fmt_count(s.chars_per_s)} chars/s" if s.state not in IDLE else "-") + world]
        if s.threads and s.device == "cpu":
            speed = [f"{speed[0]} · {threads}{' each' if world else ''}", *speed]
        where = [s.device]
        if s.gpu_mem_mb:
            where.append(f"{s.gpu_mem_mb:,.0f} MB peak")
        best = f"{s.best_val:.4f}" if s.best_val is not None else "-"
        epoch = fmt_epoch(s.epoch, s.batches_per_epoch)
        rows = [
            Row("state", [state]),
            Row("step", [f"{s.step:,} · {epoch}", f"{s.step:,} · {epoch.split(' (')[0]}"]),
            Row("train", loss(s.train_loss), 1),
            Row("val", loss(s.val_loss), 1),
            Row("best", [best], 4),
            Row(
                "sample",
                [
                    sampling + (f" · {escape(repr(prime))}" if prime else ""),
                    sampling,
                    f"T {s.temperature:.2f} · k {s.top_k or 'all'}",
                ],
                0,
            ),
            Row("lr", [f"{lr} · grad norm {gn}", f"{lr} · gn {gn}"], 3),
            # the thread count beside the speed it gives: kept when the panel is short (80x24);
            # with several processes, the speed of all of them together
            Row("speed", speed, 2),
            Row("time", time_row, 2),
        ]
        if max(s.total_s, s.elapsed_s) - s.elapsed_s >= 1:  # resumed: the time since this start too
            rows.append(Row("start", [f"{fmt_duration(s.elapsed_s)} since this start", fmt_duration(s.elapsed_s)], 5))
        rows += [
            Row(
                "model",
                [
                    escape(f"{fmt_count(s.n_params)} params · {' · '.join(where)}"),
                    escape(f"{fmt_count(s.n_params)} · {' · '.join(where)}"),
                ],
                5,
            ),
        ]
        if s.precision:
            n = s.skipped_steps
            spellings = [f"{s.precision} · {n:,} steps skipped", f"{s.precision} · {n:,} skipped"] if n else []
            rows.append(Row("dtype", [escape(v) for v in [*spellings, s.precision]], 4))
            if s.precision_reason:  # the why, wrapped: it is what a person acts on
                import textwrap

                lines = textwrap.wrap(s.precision_reason, max(10, width - LABEL), max_lines=3, placeholder=" …")
                rows.extend(Row("", [f"[$text-muted]{escape(line)}[/]"], 6) for line in lines)
        if s.last_saved:
            rows.append(Row("saved", [escape(s.last_saved)], 0))
        if s.tokens:
            rows.append(Row("seen", [f"{fmt_count(s.tokens)} characters"], 6))
        rows.extend(Row(label, [escape(v) for v in values], 5) for label, values in gpu_rows(s.gpus or []))
        return rows

    def history(self, width: int, spare: int) -> list[Row]:
        """Sparklines of the validation loss per evaluation and of the speed over time, in
        ``spare`` rows (none when too few)."""
        s = self.stats
        blocks: list[tuple[str, str, list[float], float | None]] = []
        if len(s.val_history) >= 2:
            v = s.val_history
            blocks.append(("val", f"per evaluation: {v[0]:.3f} → {v[-1]:.3f}, best {min(v):.3f}", v, None))
        if len(s.speed_history) >= 2:
            speeds = list(s.speed_history)  # bars from 0: a dip of a few percent is not a collapse
            caption = f"chars/s from 0: now {fmt_count(speeds[-1])}, max {fmt_count(max(speeds))}"
            blocks.append(("speed", caption, speeds, 0.0))
        while blocks and spare < len(blocks) * 4:  # a blank, a caption and two rows of bars at least
            blocks.pop()
        rows: list[Row] = []
        for label, caption, values, floor in blocks:
            bars = sparkline(values, max(4, width - LABEL), min(4, spare // len(blocks) - 2), floor)
            rows.append(Row("", [""]))
            rows.append(Row(label, [escape(caption)]))
            rows.extend(Row("", [f"[$accent]{line}[/]"]) for line in bars)
        return rows

    def render_markup(self, width: int = 36, height: int = 11) -> str:
        """Textual content markup (colours from the theme's variables) for a panel of this size."""
        rows = self.rows(width)
        best = next((r for r in rows if r.label == "best"), None)
        val = next(r for r in rows if r.label == "val")
        if len(rows) > height and best is not None:
            # short panel: the best loss joins the validation row
            if best.values[0] != "-":
                val.values = [f"{val.values[-1]} · best {best.values[0]}", *val.values]
            rows.remove(best)
        while len(rows) > max(1, height):
            worst = max(range(len(rows)), key=lambda i: (rows[i].drop, i))
            del rows[worst]
        rows += self.history(width, height - len(rows))
        room = max(1, width - LABEL)
        # (the padding sits inside the tag: markup drops a space right after a closing tag)
        return "\n".join(f"[$text-muted]{r.label:<{LABEL}}[/]{fit(r.values, room)}" for r in rows)
