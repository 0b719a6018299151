"""The benchmark scripts run (at toy sizes); their figures are read by people, not asserted here."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, expect", [
    (["benchmarks.trainer_speed", "--sizes", "32", "--seconds", "0.3", "--rounds", "1", "--embed", "8"], "ratio"),
    (["benchmarks.sampling_speed", "--hidden", "32", "--length", "50", "--rounds", "1"], "chars/s"),
    (["benchmarks.learning_curve", "--hidden", "32", "--embed", "8", "--batch-size", "8", "--seq-len", "16",
      "--decay-steps", "20", "--every", "10", "--threads", "1"], '"val"'),
])
def test_benchmark_script_runs(args, expect):
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout
