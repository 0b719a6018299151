"""Validation loss against training steps for one configuration (one JSON line per evaluation).

Curves in steps do not depend on how busy the machine is, so several configurations can be run
side by side with one thread each; multiply by a clean chars/s figure (benchmarks/trainer_speed.py)
to turn steps into minutes on a 2-core CPU.

    python benchmarks/learning_curve.py --hidden 256 --lr 4e-3 --max-steps 1430 --every 250
"""

from __future__ import annotations

import argparse
import json
import time

from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.core.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(bundled_corpora()["tinyshakespeare"]))
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--label", default="")
    for name, default in TrainConfig().to_dict().items():
        if name in ("prime", "device"):
            continue
        kind = type(default) if default is not None else (float if "minutes" in name else int)
        ap.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    args = vars(ap.parse_args())
    corpus, every, label = args.pop("corpus"), args.pop("every"), args.pop("label")
    cfg = TrainConfig(**{k: v for k, v in args.items()}, device="cpu")
    trainer = Trainer(cfg, read_corpus(corpus))
    total = cfg.max_steps or cfg.decay_steps
    train_s = 0.0
    while trainer.step < total:
        t0 = time.perf_counter()
        trainer.train_step()
        train_s += time.perf_counter() - t0
        if trainer.step % every == 0 or trainer.step == total:
            rows = trainer.collect()
            val = trainer.evaluate()
            print(
                json.dumps(
                    {
                        "label": label,
                        "step": trainer.step,
                        "chars": trainer.tokens,
                        "train_s": round(train_s, 1),
                        "val": round(val, 4),
                        "train": round(sum(r[1] for r in rows) / len(rows), 4),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
