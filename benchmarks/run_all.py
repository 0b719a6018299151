"""Every benchmark, one after the other, each printing its own table, then one summary table of every
figure against its target (about 20 minutes on 2 cores; big_corpus writes 2 GB to the temp dir).

    python -m benchmarks.run_all                         # everything (key_latency needs tmux)
    python -m benchmarks.run_all --only render_speed,big_corpus
    python -m benchmarks.run_all --quick                 # toy sizes: checks that all of it runs

Run it on an otherwise idle machine: the figures are ratios measured side by side, but a busy
machine still adds noise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from benchmarks.common import table

# name, title, arguments for the real run, arguments for --quick
SCRIPTS = [
    (
        "trainer_speed",
        "trainer vs a plain PyTorch loop",
        [],
        ["--sizes", "32", "--seconds", "0.3", "--rounds", "1", "--embed", "8"],
    ),
    ("sampling_speed", "sampling speed", [], ["--hidden", "32", "--length", "50", "--rounds", "1"]),
    ("app_cost", "what the app costs the trainer", [], ["--seconds", "3", "--rounds", "1", "--hidden", "32"]),
    (
        "viewer_cost",
        "what attached viewers cost the trainer",
        [],
        ["--seconds", "3", "--rounds", "1", "--hidden", "32"],
    ),
    ("key_latency", "start-up and key latency in a real terminal", [], ["--presses", "5"]),
    (
        "render_speed",
        "frame time of the loss plot and the heatmap",
        [],
        ["--frames", "2", "--points", "2000", "--sizes", "80x24"],
    ),
    ("gpu_smoke", "every precision on a CUDA GPU (skipped without one)", [], ["--steps", "25"]),
    (
        "gpu",
        "the GPU path: trainer vs cuDNN loop, bf16, host syncs, 1 vs all GPUs (skipped without CUDA)",
        [],
        ["--steps", "12"],
    ),
    (
        "ddp_cpu",
        "data parallelism on the CPU: 1 process against 2 (gloo)",
        [],
        ["--hidden", "32", "--steps", "10", "--corpus-mb", "4"],
    ),
    (
        "explorer_speed",
        "the explorer: every view's compute time, training speed with it open",
        [],
        ["--quick"],
    ),
    (
        "big_corpus",
        "a 1 GB corpus: time to the first step and peak memory",
        [],
        ["--size-mb", "4", "--modes", "char,byte"],
    ),
]


def tables(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """The markdown tables in a script's output: (header, rows) each."""
    found, block = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif block:
            if len(block) >= 3 and set("".join(block[1])) <= set("-: "):
                found.append((block[0], block[2:]))
            block = []
    return found


def summary_rows(name: str, lines: list[str]) -> list[list[str]]:
    """One row per table row: what, the measured figures (header: value), the target."""
    rows = []
    for header, body in tables(lines):
        low = [h.lower() for h in header]
        for row in body:
            target = next((c for h, c in zip(low, row) if h == "target"), "")
            figures = "; ".join(f"{h}: {c}" for h, c, lo in zip(header[1:], row[1:], low[1:]) if lo != "target" and c)
            rows.append([name, row[0], figures, target])
    return rows


def run(name: str, args: list[str]) -> tuple[int, list[str]]:
    """Run one script, echoing its output as it comes; return its exit code and its lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{name}", *args], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    return proc.wait(), lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="toy sizes: checks that everything runs")
    ap.add_argument("--only", default="", help="comma-separated script names, e.g. render_speed,big_corpus")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {s[0] for s in SCRIPTS}
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(s[0] for s in SCRIPTS)}")
        return 2
    failed, summary = [], []
    for name, title, full, quick in SCRIPTS:
        if only and name not in only:
            continue
        if name == "key_latency" and shutil.which("tmux") is None:
            print(f"\n## {title}: skipped (tmux is not installed)")
            summary.append([name, "skipped: tmux is not installed", "", ""])
            continue
        print(f"\n## {title}\n", flush=True)
        code, lines = run(name, quick if args.quick else full)
        if code != 0:
            failed.append(name)
            summary.append([name, f"FAILED (exit {code})", "", ""])
        else:
            summary.extend(summary_rows(name, lines))
    print("\n## Summary" + (" (--quick: toy sizes, the figures mean nothing)" if args.quick else "") + "\n")
    print(table(summary, ["benchmark", "what", "measured", "target"]))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
