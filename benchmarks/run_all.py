"""Every benchmark, one after the other, each printing its own table (about 10 minutes on 2 cores).

    python -m benchmarks.run_all            # needs tmux for key_latency

Run it on an otherwise idle machine: the figures are ratios measured side by side, but a busy
machine still adds noise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

SCRIPTS = [
    ("trainer vs a plain PyTorch loop", ["benchmarks.trainer_speed"]),
    ("sampling speed", ["benchmarks.sampling_speed"]),
    ("what the app costs the trainer", ["benchmarks.app_cost"]),
    ("start-up and key latency in a real terminal", ["benchmarks.key_latency"]),
]


def main() -> int:
    failed = 0
    for title, module in SCRIPTS:
        if module[0] == "benchmarks.key_latency" and shutil.which("tmux") is None:
            print(f"\n## {title}: skipped (tmux is not installed)")
            continue
        print(f"\n## {title}\n", flush=True)
        failed += subprocess.run([sys.executable, "-m", *module]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
