"""Key press to visible change, measured in a real terminal while training runs at full speed.

Runs `rnn-tui` in tmux (120x40 by default), waits until it trains, then presses `+`/`-` and polls
`tmux capture-pane` until the stats panel shows the new temperature. The figure includes tmux and
the polling interval (a few ms), so it is an upper bound of what a person sees.
Also measures start-up: `rnn-tui --help`, the first frame, and the first training step.

    python -m benchmarks.key_latency --presses 60
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import table


def capture(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def wait(name: str, pred, timeout: float = 120.0, poll: float = 0.002) -> tuple[float, str]:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        text = capture(name)
        if pred(text):
            return time.perf_counter() - t0, text
        time.sleep(poll)
    raise TimeoutError(f"timed out; screen:\n{capture(name)}")


def help_time(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rnn_tui", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--args", default="", help="extra rnn-tui options, e.g. '--hidden 128'")
    args = ap.parse_args()
    w, h = args.size.split("x")
    runs = Path(tempfile.mkdtemp(prefix="rnn-tui-latency-"))
    name = f"rnn-tui-bench-{uuid.uuid4().hex[:6]}"
    cmd = f"{shlex.quote(sys.executable)} -m rnn_tui --runs-dir {runs} --sample-every 5 {args.args}"
    help_s = help_time()
    t0 = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", w, "-y", h, cmd], check=True)
    try:
        first_frame, _ = wait(name, lambda s: "loss" in s and "samples" in s)
        first_frame = time.perf_counter() - t0
        wait(name, lambda s: re.search(r"step\s+[1-9]", s) is not None)
        first_step = time.perf_counter() - t0
        wait(name, lambda s: "chars/s" in s and re.search(r"speed\s+0 ", s) is None)
        lat = []
        for i in range(args.presses):
            before = re.search(r"T (\d\.\d\d)", capture(name)).group(1)
            key = "+" if i % 2 == 0 else "-"
            expect = f"{float(before) + (0.1 if key == '+' else -0.1):.2f}"
            t = time.perf_counter()
            subprocess.run(["tmux", "send-keys", "-t", name, key], check=True)
            dt, _ = wait(name, lambda s, expect=expect: f"T {expect}" in s, timeout=5)
            lat.append((time.perf_counter() - t) * 1000)
            time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
        time.sleep(3)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    rows = [
        ["rnn-tui --help", f"{help_s * 1000:.0f} ms", "≤ 300 ms"],
        ["first frame (loss and samples panels drawn)", f"{first_frame * 1000:.0f} ms", "≤ 1000 ms"],
        ["first training step shown", f"{first_step:.1f} s", ""],
        [f"key → screen, p95 (n={len(lat)})", f"{percentile(lat, 0.95):.1f} ms", "≤ 50 ms"],
        ["key → screen, median", f"{statistics.median(lat):.1f} ms", ""],
        ["key → screen, max", f"{max(lat):.1f} ms", "≤ 200 ms"],
    ]
    print(f"terminal {args.size} in tmux, rnn-tui {args.args or '(defaults)'}")
    print(table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
