"""The stats panel: where the run is, how fast it goes, what it will sample next."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.markup import escape
from textual.widgets import Static

LN2 = math.log(2)

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
    "resuming": "$success",
}


IDLE = ("paused", "finished", "failed", "stopping")


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
    elapsed_s: float = 0.0
    device: str = "-"
    n_params: int = 0
    gpu_mem_mb: float | None = None
    batches_per_epoch: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None
    temperature: float = 0.8
    top_k: int = 0
    prime: str = ""
    run_dir: str = ""
    last_saved: str = ""
    chars_per_step: int = 0

    def eta(self) -> tuple[float | None, str]:
        steps_per_s = self.chars_per_s / self.chars_per_step if self.chars_per_step else 0.0
        if self.max_minutes is not None:
            left = self.max_minutes * 60 - self.elapsed_s
            if self.max_steps is not None and steps_per_s > 0:
                left = min(left, (self.max_steps - self.step) / steps_per_s)
            return max(0.0, left), "to the end"
        if self.max_steps is not None and steps_per_s > 0:
            return max(0.0, (self.max_steps - self.step) / steps_per_s), "to the end"
        if self.batches_per_epoch and steps_per_s > 0:
            frac = self.epoch - math.floor(self.epoch)
            return (1 - frac) * self.batches_per_epoch / steps_per_s, "to next epoch"
        return None, ""


class StatsPanel(Static):
    DEFAULT_CSS = """
    StatsPanel { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.stats = RunStats()
        self._shown = ""

    def show(self) -> None:
        markup = self.render_markup()
        if markup != self._shown:
            self._shown = markup
            # The panel's size is fixed by the layout: skip the (costly) layout pass.
            self.update(markup, layout=False)

    def render_markup(self) -> str:
        """Textual content markup, so colours come from the theme's variables."""
        s = self.stats

        def loss(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f} ({v / LN2:.3f} bpc)"

        pct = (s.epoch - math.floor(s.epoch)) * 100
        best = f"  best {s.best_val:.4f}" if s.best_val is not None else ""
        lr = f"{s.lr:.2e}" if s.lr is not None else "-"
        gn = f"{s.grad_norm:.2f}" if s.grad_norm is not None else "-"
        eta, what = s.eta()
        dev = s.device + (f" ({s.gpu_mem_mb:,.0f} MB)" if s.gpu_mem_mb else "")
        prime = s.prime.replace("\n", "↵")
        prime = (prime[:13] + "…") if len(prime) > 14 else prime
        sampling = f"T {s.temperature:.2f} · top-k {s.top_k or 'all'}" + (f" · {escape(repr(prime))}" if prime else "")
        rows = [
            ("state", f"[{STATE_STYLE.get(s.state, '$text')}]● {s.state}[/]" + (f" · {escape(s.state_detail)}" if s.state_detail else "")),
            ("step", f"{s.step:,} · epoch {s.epoch:.2f} ({pct:.0f}%)"),
            ("train", loss(s.train_loss)),
            ("val", loss(s.val_loss)),
            ("best", best.strip()[5:] or "-"),
            ("sample", sampling),
            ("lr", f"{lr} · grad norm {gn}"),
            ("speed", f"{fmt_count(s.chars_per_s)} chars/s" if s.state not in IDLE else "-"),
            (
                "time",
                f"{fmt_duration(s.elapsed_s)} · eta {fmt_duration(eta)} {what}".rstrip()
                if s.state not in IDLE
                else fmt_duration(s.elapsed_s),
            ),
            ("model", f"{fmt_count(s.n_params)} params, {escape(dev)}"),
        ]
        if s.last_saved:
            rows.append(("saved", escape(s.last_saved)))
        # (the padding sits inside the tag: markup drops a space right after a closing tag)
        return "\n".join(f"[$text-muted]{k:<7}[/]{v}" for k, v in rows)
