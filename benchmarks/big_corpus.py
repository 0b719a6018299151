"""Scale of data: time to the first training step and peak memory on a generated huge corpus.

Writes a corpus of ``--size-mb`` MB (Tiny Shakespeare repeated; the ``unicode`` text also has a
short non-ASCII line every 64 KB, so every chunk takes the slower decoding path) into a
temporary directory, then, for each mode, starts a fresh Python process that imports torch, reads
the corpus (``read_corpus``), builds a ``Trainer`` (default model, CPU) and runs one training step.
That process reports its phases and its peak resident memory (``VmHWM``). The files are deleted
at the end.

    python -m benchmarks.big_corpus                       # 1 GB: char (ASCII text), char (unicode text), byte
    python -m benchmarks.big_corpus --size-mb 64 --modes char,byte

Targets (issue 5): first step <= 30 s and peak RSS <= corpus size + 500 MB. The peak includes
torch and the model (the "baseline" column: the same process on a 1 MB corpus).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import table

MB = 1 << 20
TARGET_FIRST_STEP_S = 30.0
TARGET_RSS_MARGIN_MB = 500.0
UNICODE_LINE = "Naïve café — “quoted” ✓ 漢字 🎉\n".encode()
MODES = {  # name: (text, vocabulary kind)
    "char": ("ascii", "char"),
    "char-unicode": ("unicode", "char"),
    "byte": ("ascii", "byte"),
    # The whole-file method rnn-tui used before streaming (read, decode, sort the code points):
    # for comparison only, at sizes this machine's memory allows (it needs ~26x the file).
    "char-whole-file": ("ascii", "whole"),
}
DEFAULT_MODES = "char,char-unicode,byte"


def shakespeare() -> bytes:
    from rnn_tui.core.resources import bundled_corpora

    return Path(bundled_corpora()["tinyshakespeare"]).read_bytes()


def generate(path: Path, size: int, text: str = "ascii") -> None:
    """Write ``size`` bytes of text: Tiny Shakespeare repeated (whole UTF-8 characters only)."""
    base = shakespeare()
    if text == "unicode":
        parts, since = [], 0
        for line in base.splitlines(keepends=True):
            parts.append(line)
            since += len(line)
            if since >= 64 * 1024:
                parts.append(UNICODE_LINE)
                since = 0
        base = b"".join(parts)
    block = base * max(1, (8 * MB) // len(base))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = block[:left]
            # never cut a multi-byte character: back up to a character start
            while piece and left < len(block) and (block[len(piece)] & 0xC0) == 0x80:
                piece = piece[:-1]
            f.write(piece)
            left -= len(piece)
            if not piece:
                break


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def read_whole_file(path: str):
    """The method before streaming: the whole file as bytes, as str, as UTF-32, sorted, indexed."""
    import numpy as np

    from rnn_tui.core.corpus import Corpus, Vocab

    text = Path(path).read_bytes().decode("utf-8")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab = Vocab("char", tuple(int(c) for c in np.unique(codes)))
    return Corpus(path=Path(path), vocab=vocab, data=vocab.encode_array(text))


def child(path: str, kind: str, threads: int) -> None:
    """Run in a fresh process: imports, read, trainer, one step; print one JSON line."""
    t0 = time.perf_counter()
    import torch

    from rnn_tui.core.config import TrainConfig
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    t_import = time.perf_counter()
    rss_import = vm_hwm_mb()
    corpus = read_whole_file(path) if kind == "whole" else read_corpus(path, kind=kind)
    t_read = time.perf_counter()
    rss_read = vm_hwm_mb()
    trainer = Trainer(TrainConfig(device="cpu", threads=threads or None), corpus)
    t_build = time.perf_counter()
    trainer.train_step()
    loss = trainer.collect()[-1][1]
    t_step = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": t_import - t0,
                "read_s": t_read - t_import,
                "build_s": t_build - t_read,
                "step_s": t_step - t_build,
                "rss_import_mb": rss_import,
                "rss_read_mb": rss_read,
                "hwm_mb": vm_hwm_mb(),
                "symbols": len(corpus),
                "vocab": corpus.vocab.size,
                "data_mb": corpus.data.nbytes / MB,
                "loss": loss,
            }
        )
    )


def measure(path: Path, kind: str, threads: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.big_corpus",
            "--child",
            str(path),
            "--kind",
            kind,
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {path} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=1024, help="corpus size in MiB (default 1024)")
    ap.add_argument("--modes", default=DEFAULT_MODES, help=f"comma-separated, of: {', '.join(MODES)}")
    ap.add_argument("--dir", default=None, help="where to write the corpora (default: the temp dir)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the child (0: torch's default)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="char", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.kind, args.threads)
        return

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    size = int(args.size_mb * MB)
    workdir = Path(tempfile.mkdtemp(prefix="rnn-tui-bigcorpus-", dir=args.dir))
    try:
        free = shutil.disk_usage(workdir).free
        if "char-whole-file" in modes and size > 512 * MB:
            raise SystemExit("char-whole-file needs ~26x the corpus in memory: use --size-mb 512 or less")
        texts = sorted({MODES[m][0] for m in modes})
        if free < size * len(texts) + 256 * MB:
            raise SystemExit(f"not enough disk space in {workdir} for {len(texts)} x {args.size_mb:g} MB")
        files = {}
        for text in texts:
            t0 = time.perf_counter()
            files[text] = workdir / f"big-{text}.txt"
            generate(files[text], size, text)
            print(
                f"wrote {files[text].stat().st_size / MB:,.0f} MB of {text} text in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        small = workdir / "baseline.txt"
        generate(small, MB)
        base = measure(small, "char", args.threads)
        print(
            f"baseline (1 MB corpus): peak RSS {base['hwm_mb']:,.0f} MB, first step {base['wall_s']:.1f} s "
            f"after launch (imports {base['import_s']:.1f} s, read {base['read_s']:.1f} s, trainer "
            f"{base['build_s']:.1f} s, first step {base['step_s']:.1f} s)",
            flush=True,
        )
        rows = []
        for mode in modes:
            text, kind = MODES[mode]
            r = measure(files[text], kind, args.threads)
            corpus_mb = files[text].stat().st_size / MB
            rss_ok = r["hwm_mb"] <= corpus_mb + TARGET_RSS_MARGIN_MB
            step_ok = r["wall_s"] <= TARGET_FIRST_STEP_S
            rows.append(
                [
                    mode,
                    f"{corpus_mb:,.0f} MB",
                    f"{r['symbols'] / 1e6:,.0f}M / {r['vocab']}",
                    f"{r['read_s']:.1f} s",
                    f"{r['wall_s']:.1f} s {'ok' if step_ok else 'MISSED'}",
                    f"{r['hwm_mb']:,.0f} MB {'ok' if rss_ok else 'MISSED'}",
                    f"{r['hwm_mb'] - base['hwm_mb']:+,.0f} MB",
                    f"{r['data_mb']:,.0f} MB",
                    f"≤ {TARGET_FIRST_STEP_S:.0f} s; ≤ {corpus_mb + TARGET_RSS_MARGIN_MB:,.0f} MB",
                ]
            )
            print(
                f"{mode}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})}",
                flush=True,
            )
        print()
        print(
            table(
                rows,
                [
                    "mode",
                    "corpus",
                    "symbols / vocab",
                    "read+encode",
                    "first step (from launch)",
                    "peak RSS",
                    "vs baseline",
                    "encoded array",
                    "target",
                ],
            )
        )
        print(
            f"targets: first step <= {TARGET_FIRST_STEP_S:.0f} s; peak RSS <= corpus size + "
            f"{TARGET_RSS_MARGIN_MB:.0f} MB (baseline peak with a 1 MB corpus: {base['hwm_mb']:,.0f} MB)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
