"""The run directory's history as a viewer or a resumed app shows it."""

from __future__ import annotations

import json

from rnn_tui.core.runs import RunDir


def test_history_keeps_the_timeline_a_resume_retrained(tmp_path):
    run = RunDir(tmp_path / "run").ensure()
    rows = [{"kind": "train", "step": s, "loss": 3.0} for s in range(1, 8)]  # the first process: 1..7
    rows.append({"kind": "val", "step": 5, "val_loss": 2.0})
    rows.append({"kind": "val", "step": 7, "val_loss": 1.9})
    # killed after step 7; the checkpoint was at step 4, so the resumed process trains 5.. again
    rows += [{"kind": "train", "step": s, "loss": 2.0} for s in range(5, 10)]
    rows.append({"kind": "val", "step": 6, "val_loss": 1.5})
    (run.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "tr')
    history = run.history()
    train = [(r["step"], r["loss"]) for r in history if r["kind"] == "train"]
    assert train == [(1, 3.0), (2, 3.0), (3, 3.0), (4, 3.0)] + [(s, 2.0) for s in range(5, 10)]
    # the evaluation at step 5 belonged to the lost stretch too
    assert [(r["step"], r["val_loss"]) for r in history if r["kind"] == "val"] == [(6, 1.5)]
    assert [r["step"] for r in run.history(upto=6) if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]


def test_history_event_carries_the_curves_a_viewer_plots(tmp_path):
    run = RunDir(tmp_path / "run").ensure()
    run.log_metrics([{"kind": "train", "step": s, "loss": 3.0 - s / 10} for s in range(1, 6)])
    run.log_metrics([{"kind": "val", "step": 4, "val_loss": 2.5}, {"kind": "train", "step": 6, "loss": "bad"}])
    run.close()
    h = run.history_event(upto=5)
    assert h.steps == [1, 2, 3, 4, 5] and h.losses[0] == 2.9
    assert (h.val_steps, h.val_losses) == ([4], [2.5])
    assert run.history_event().steps == [1, 2, 3, 4, 5]  # a damaged row is skipped, not plotted
