"""The benchmark scripts run (at toy sizes); their figures are read by people, not asserted here."""

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import cpu_auto_precision

pytestmark = pytest.mark.slow  # every benchmark script, at toy sizes


@pytest.mark.parametrize(
    "args, expect",
    [
        (["benchmarks.trainer_speed", "--sizes", "32", "--seconds", "0.3", "--rounds", "1", "--embed", "8"], "ratio"),
        (["benchmarks.sampling_speed", "--hidden", "32", "--length", "50", "--rounds", "1"], "weights bound"),
        (
            [
                "benchmarks.learning_curve",
                "--hidden",
                "32",
                "--embed",
                "8",
                "--batch-size",
                "8",
                "--seq-len",
                "16",
                "--decay-steps",
                "20",
                "--every",
                "10",
                "--threads",
                "1",
            ],
            '"val"',
        ),
        (["benchmarks.render_speed", "--frames", "2", "--points", "2000", "--sizes", "40x12"], "frame p95 ms"),
        (["benchmarks.explorer_speed", "--quick"], "explorer open / closed"),
        (["benchmarks.big_corpus", "--size-mb", "2", "--modes", "char,byte", "--threads", "1"], "peak RSS"),
        (["benchmarks.ddp_cpu", "--hidden", "32", "--steps", "8", "--corpus-mb", "2"], "communication share"),
        (["benchmarks.busy_machine", "--quick", "--hogs", "1"], "default / best fixed"),
    ],
)
def test_benchmark_script_runs(args, expect):
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout


def test_learning_race_runs_every_contestant_it_names():
    # two at a time where the machine has two cores (--jobs: each pinned to its own, one thread)
    jobs = str(min(2, len(os.sched_getaffinity(0)))) if hasattr(os, "sched_getaffinity") else "1"
    args = ["--quick", "--marks", "1,2", "--skip", "plain-2x256", "--previous", "--jobs", jobs]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.learning_race", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("plain-2x128", "defaults", "previous", "budget-1", "budget-2"):  # a loss at each of its marks
        assert re.search(rf"^  {name}: .*\d\.\d{{4}}$", proc.stdout, re.M), (name, proc.stdout)
    assert re.search(r"^  defaults: .*min \d\.\d{4}, .*min \d\.\d{4}$", proc.stdout, re.M)
    table = proc.stdout.split("median of 1 round(s)", 1)[1]
    assert "previous - defaults" in table and "plain-2x256" not in table and "nan" not in table
    assert ("contestants at a time" in proc.stdout) == (jobs == "2")


def test_learning_race_refuses_more_jobs_than_cores():
    too_many = str(len(os.sched_getaffinity(0)) + 1) if hasattr(os, "sched_getaffinity") else "2"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.learning_race", "--quick", "--jobs", too_many],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "--jobs must be 1 to" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "name, rows, words",
    [
        ("render_speed", 2, ["frame p95 ms:", "≤ 50 ms"]),  # the loss plot row and the heatmap row
        ("explorer_speed", 2, ["< 1 s", "≥ 0.97"]),  # every view's time, training with it open
    ],
)
def test_run_all_summarises_every_table_row_with_its_target(name, rows, words):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--quick", "--only", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.split("## Summary", 1)[1]
    assert summary.count(f"| {name} ") == rows
    assert all(w in summary for w in words)


def test_run_all_table_parser():
    from benchmarks.run_all import summary_rows

    lines = [
        "noise",
        "| what | a | target |",
        "|------|---|--------|",
        "| x    | 1 | ≥ 2    |",
        "| y    | 3 |        |",
        "",
        "| not a table |",
    ]
    assert summary_rows("b", lines) == [["b", "x", "a: 1", "≥ 2"], ["b", "y", "a: 3", ""]]


def test_gpu_smoke_runs_or_says_it_needs_cuda():
    import torch

    smoke = [sys.executable, "-m", "benchmarks.gpu_smoke", "--steps", "25"]
    proc = subprocess.run(smoke, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    if torch.cuda.is_available():
        assert "--precision auto picks" in proc.stdout and "plain loop chars/s" in proc.stdout
    else:
        assert "gpu_smoke needs a CUDA GPU" in proc.stdout and "skipped: no CUDA GPU" in proc.stdout
    # the script itself, on the CPU at a toy size: fp32 measured (and bf16 on a CPU with bf16
    # instructions), the others say why they cannot run
    toy = ["--device", "cpu", "--hidden", "32", "--batch", "4", "--seq", "16", "--layers", "1"]
    proc = subprocess.run([*smoke, *toy], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    auto = cpu_auto_precision()
    assert f"--precision auto picks {auto}" in proc.stdout
    assert proc.stdout.count("does not run: --precision") == (1 if auto == "bf16" else 2) and "| fp32 " in proc.stdout


def test_the_gpu_script_runs_or_says_it_needs_cuda():
    import torch

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--steps", "12"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    if not torch.cuda.is_available():
        assert "gpu.py needs a CUDA GPU" in proc.stdout and proc.stdout.count("skipped: no CUDA GPU") == 4
    toy = ["--device", "cpu", "--hidden", "32", "--big", "48", "--batch", "4", "--steps", "12"]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu", *toy], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "trainer / plain loop, 2x48" in proc.stdout and "1 vs 2 CPU processes (gloo), 2x48" in proc.stdout
