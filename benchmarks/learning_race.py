"""How much a model learns per minute: rnn-tui's defaults against plain PyTorch char-LSTM loops,
for the same training minutes on the same machine, in one run.

Contestants (each in its own process, one after the other, in an order that alternates by round):
- ``plain-2x128``, ``plain-2x256``: the loop a person writes without tuning (embedding 64, a 2-layer
  LSTM, linear; batch 32, sequence 100, char-rnn's striped batches with the state carried;
  AdamW 2e-3, gradient clipping 5, no dropout, no schedule), evaluated at every mark;
- ``defaults``: ``rnn-tui train --headless`` with no options (open-ended), evaluated at every mark;
- ``budget-M``: ``rnn-tui train --headless --max-minutes M`` for each mark M, evaluated at its end;
- ``previous`` (with ``--previous``): the defaults before issue 14 (sequence 100, lr 4e-3, decay over
  5,000 steps, fp32, dropout 0.1 throughout), to check that the new ones are no worse on corpora they were not tuned on.

Time is training time (evaluations excluded, as rnn-tui counts it); the validation loss is in nats
per character over the same last 10 % of the corpus for everyone. The table shows each contestant
at each mark and the margin of rnn-tui below the best plain loop, against the targets of issue 14.

    python -m benchmarks.learning_race                       # marks 1,2,3,5,10 minutes, ~1 hour
    python -m benchmarks.learning_race --marks 1,2,3 --rounds 2
    python -m benchmarks.learning_race --quick               # seconds, tiny models: checks it runs
    python -m benchmarks.learning_race --corpus FILE --marks 3,10 --skip plain,budget --previous
                                   # the defaults against the previous ones, on another corpus
    python -m benchmarks.learning_race --jobs 2 --rounds 2   # two at a time, one core each

``--jobs N`` runs N contestants at a time, each pinned to its own core with one thread: a round
takes about 1/N of the time, and every contestant still trains under the same conditions (one
core of the same machine), so rounds are cheap enough to count the spread. The figures are then
one-thread figures, lower than a whole machine's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import queue
import statistics
import subprocess
import sys
import time

from benchmarks.common import hardware, table

# margin below the best plain loop that rnn-tui must reach at each mark (minutes): issue 14
OPEN_TARGETS = {1: 0.03, 2: 0.03, 3: 0.04, 5: 0.04, 10: 0.04}
BUDGET_TARGETS = {1: 0.04, 2: 0.04, 3: 0.05, 5: 0.05, 10: 0.05}
PLAIN = ("plain-2x128", "plain-2x256")
# the defaults before issue 14's tuning (fp32 on every CPU then), for the check that the new ones are no worse on other corpora
PREVIOUS_DEFAULTS = {
    "seq_len": 100,
    "lr": 4e-3,
    "decay_steps": 5000,
    "precision": "fp32",
    "late_dropout": 0.1,
    "weight_decay": 0.0,
}


# ----------------------------------------------------------------------------- contestants


def evaluate_plain(model, val_x, val_y, chunk: int = 512) -> float:
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for a in range(0, val_x.size(1), chunk):
            x, y = val_x[:, a : a + chunk], val_y[:, a : a + chunk]
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


def run_plain(corpus_path: str, hidden: int, marks_s: list[float], quick: bool, threads: int | None = None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)

    from benchmarks.trainer_speed import PlainLSTM, plain_step
    from rnn_tui.core.batches import StripedBatches, eval_rows
    from rnn_tui.core.corpus import read_corpus

    corpus = read_corpus(corpus_path)
    train, val = corpus.split(0.1)
    batch, seq, embed = (8, 16, 8) if quick else (32, 100, 64)
    batches = StripedBatches(train, batch, seq)
    val_x, val_y = eval_rows(val, max_rows=64, max_chars=250_000)
    torch.manual_seed(1337)
    model = PlainLSTM(corpus.vocab.size, embed, hidden, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    state, i, train_s = None, 0, 0.0
    marks = list(marks_s)
    while marks:
        t0 = time.perf_counter()
        if i % len(batches) == 0:
            state = None
        x, y = batches.get(i % len(batches))
        state = plain_step(model, opt, x, y, state)
        i += 1
        train_s += time.perf_counter() - t0
        while marks and train_s >= marks[0]:
            emit(marks.pop(0), evaluate_plain(model, val_x, val_y), i)


def run_rnn_tui(
    corpus_path: str, marks_s: list[float], budget_s: float | None, quick: bool, options: dict | None = None
) -> None:
    """rnn-tui's own session, as ``rnn-tui train --headless`` runs it (no run directory), with
    ``options`` on top of the defaults."""
    from rnn_tui.core import events as ev
    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.session import Session
    from rnn_tui.core.trainer import Trainer

    overrides: dict = {"sample_every_s": 1e9, **(options or {})}  # samples are not training time: none here
    if quick:  # (the toy sizes replace the previous defaults' sequence length too: a smoke test)
        overrides.update(hidden=32, embed=8, batch_size=8, seq_len=16, eval_every=10**9)
    if budget_s is not None:
        overrides["max_minutes"] = budget_s / 60
    trainer = Trainer(TrainConfig(**overrides), read_corpus(corpus_path))
    marks = list(marks_s)

    def on_event(e) -> None:
        # evaluations at the marks run between steps, outside the session's training time
        if isinstance(e, ev.Progress):
            while marks and e.elapsed_s >= marks[0]:
                emit(marks.pop(0), trainer.evaluate(), trainer.step)
                if not marks and budget_s is None:
                    session.stop_requested = ev.Stop(save=False)
        elif isinstance(e, ev.Finished) and budget_s is not None:
            emit(budget_s, trainer.last_val if trainer.last_val is not None else trainer.evaluate(), trainer.step)

    session = Session(trainer, queue.Queue(), on_event, post_interval=0.2)
    session.run()


def emit(mark_s: float, val: float, step: int) -> None:
    print(json.dumps({"mark_s": mark_s, "val": val, "step": step}), flush=True)


# ----------------------------------------------------------------------------- the race


def contest(name: str, corpus: str, marks_s: list[float], quick: bool, core: int | None = None) -> dict[float, float]:
    """Run one contestant in a fresh process; its validation loss at each mark (seconds).
    ``core``: pinned to that CPU core, with one thread."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    cmd = (
        [
            *pin,
            sys.executable,
            "-m",
            "benchmarks.learning_race",
            "--run",
            name,
            "--corpus",
            corpus,
            "--marks-s",
            ",".join(map(str, marks_s)),
        ]
        + (["--quick"] if quick else [])
        + (["--threads", "1"] if core is not None else [])
    )
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    got = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            got[float(row["mark_s"])] = float(row["val"])
    print(f"  {name}: " + ", ".join(f"{m / 60:g} min {v:.4f}" for m, v in sorted(got.items())), flush=True)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--marks", default="1,2,3,5,10", help="minutes of training at which to compare")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--corpus", default=None, help="default: the bundled Tiny Shakespeare")
    ap.add_argument("--skip", default="", help="contestants to leave out, e.g. budget,plain-2x256")
    ap.add_argument("--quick", action="store_true", help="seconds instead of minutes, tiny models")
    ap.add_argument(
        "--previous", action="store_true", help="also race the defaults before issue 14 (the check on other corpora)"
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="contestants at a time, each on its own core with one thread (default 1)"
    )
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--marks-s", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.corpus is None:
        from rnn_tui.core.resources import bundled_corpora

        args.corpus = str(bundled_corpora()["tinyshakespeare"])
    if args.run:  # one contestant, in this process
        marks_s = [float(m) for m in args.marks_s.split(",")]
        if args.run.startswith("plain-2x"):
            run_plain(args.corpus, 32 if args.quick else int(args.run[8:]), marks_s, args.quick, args.threads)
            return
        threads = {"threads": args.threads} if args.threads else {}
        if args.run == "defaults":
            run_rnn_tui(args.corpus, marks_s, None, args.quick, threads)
        elif args.run == "previous":
            run_rnn_tui(args.corpus, marks_s, None, args.quick, {**PREVIOUS_DEFAULTS, **threads})
        else:
            run_rnn_tui(args.corpus, [], float(args.run.split("-", 1)[1]), args.quick, threads)
        return
    # the cores this process may use (--jobs > 1 pins contestants with taskset: Linux)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    if not 1 <= args.jobs <= len(cores):
        raise SystemExit(f"--jobs must be 1 to {len(cores)}, the cores this process may use (got {args.jobs})")

    minutes = [float(m) for m in args.marks.split(",")]
    unit = 1.0 if args.quick else 60.0  # --quick: the marks are seconds
    marks_s = [m * unit for m in minutes]
    print(
        f"hardware: {hardware()}"
        + (f"; but {args.jobs} contestants at a time, each on one core with one thread" if args.jobs > 1 else "")
    )
    print(f"corpus: {args.corpus}; marks: {', '.join(f'{m:g}' for m in minutes)} {'s' if args.quick else 'min'}")
    names = [*PLAIN, "defaults", *(["previous"] if args.previous else []), *(f"budget-{m:g}" for m in marks_s)]
    skipped = [s for s in args.skip.split(",") if s]  # a name, or a kind: plain, budget
    names = [n for n in names if not any(n == s or n.startswith(s + "-") for s in skipped)]
    results: dict[str, list[dict[float, float]]] = {n: [] for n in names}
    free: queue.Queue[int] = queue.Queue()  # the cores not in use (--jobs > 1)
    for core in cores[: args.jobs]:
        free.put(core)

    def one(name: str) -> dict[float, float]:
        own = [float(name.split("-", 1)[1])] if name.startswith("budget") else marks_s
        if args.jobs == 1:
            return contest(name, args.corpus, own, args.quick)
        core = free.get()
        try:
            return contest(name, args.corpus, own, args.quick, core)
        finally:
            free.put(core)

    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", flush=True)
        order = names if r % 2 == 0 else list(reversed(names))
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for name, got in zip(order, pool.map(one, order)):
                results[name].append(got)

    def at(name: str, mark: float) -> tuple[float, float]:
        """Median over rounds and spread (max - min) of a contestant's loss at a mark."""
        vals = [got[mark] for got in results.get(name, []) if mark in got]
        if not vals:
            return math.nan, math.nan
        return statistics.median(vals), max(vals) - min(vals)

    def shown(value: float, spread: float | None = None) -> str:
        return f"{value:.4f}" + ("" if spread is None else f" (±{spread / 2:.3f})")

    # one column group per kind of contestant raced (a skipped one leaves no column of "nan")
    has_plain = any(n in results for n in PLAIN)
    has_budget = any(n.startswith("budget") for n in results)
    rows: list[dict[str, str]] = []
    for m, mark in zip(minutes, marks_s):
        key = round(m) if not args.quick else m
        row = {"training time": f"{m:g} {'s' if args.quick else 'min'}"}
        best = min((at(n, mark)[0] for n in PLAIN if n in results), default=math.nan)
        row.update({n: shown(at(n, mark)[0]) for n in PLAIN if n in results})
        ours, spread = at("defaults", mark)
        if "defaults" in results:
            row["rnn-tui defaults"] = shown(ours, spread)
            if has_plain:
                row["margin"] = f"{best - ours:+.3f}"
                row["target"] = f"≥ {OPEN_TARGETS.get(key, 0.04):.2f}"
        if has_budget:
            budget, bspread = at(f"budget-{mark:g}", mark)
            row["--max-minutes M"] = shown(budget, bspread)
            if has_plain:
                row["margin (M)"] = f"{best - budget:+.3f}"
                row["target (M)"] = f"≥ {BUDGET_TARGETS.get(key, 0.05):.2f}"
        if "previous" in results:
            before, bspread = at("previous", mark)
            row["previous defaults"] = shown(before, bspread)
            row["previous - defaults"] = f"{before - ours:+.3f}"
        rows.append(row)
    print()
    print(f"validation loss (nats/char), median of {args.rounds} round(s); margin = best plain loop - rnn-tui")
    headers = list(rows[0])
    print(table([[row.get(h, "") for h in headers] for row in rows], headers))


if __name__ == "__main__":
    main()
