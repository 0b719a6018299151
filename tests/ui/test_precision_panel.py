"""The stats panel says what the trainer computes in, why, and how many updates fp16's loss
scaler skipped; a viewer of a finished run reads the same from config.json."""

from __future__ import annotations

import json

from rnn_tui.core import events as ev
from rnn_tui.core.runs import RunDir
from rnn_tui.remote.catchup import CatchUp
from rnn_tui.ui.app import RnnTuiApp
from tests.helpers import app_wait, started_event
from tests.ui.fake_stream import ReplayLink

FP16 = {
    "name": "fp16",
    "label": "fp16 + loss scaling",
    "reason": "bf16 LSTM not supported by this torch/cuDNN: using fp16 with loss scaling",
    "detail": "\"_thnn_fused_lstm_cell_cuda\" not implemented for 'BFloat16'",
}


def progress(skipped: int, grad_norm: float) -> ev.Progress:
    return ev.Progress(
        steps=[7],
        losses=[3.0],
        step=7,
        epoch=0.1,
        lr=1e-3,
        grad_norm=grad_norm,
        chars_per_s=1000.0,
        elapsed_s=1.0,
        tokens=100,
        skipped_steps=skipped,
    )


async def test_the_stats_panel_shows_the_precision_its_reason_and_skipped_steps():
    events = [
        started_event(
            device="cuda",
            config={"cell": "lstm", "layers": 1, "hidden": 8, "batch_size": 4, "seq_len": 8},
            precision=FP16,
        )
    ]
    app = RnnTuiApp(ReplayLink([*events, progress(12, float("inf"))]))
    async with app.run_test(size=(160, 48)) as pilot:
        await app_wait(pilot, lambda: app.stats.step == 7, what="the progress")
        app.stats_panel.show()
        text = str(app.query_one("#stats").render())
        assert "fp16 + loss scaling · 12 steps skipped" in text or "fp16 + loss scaling · 12 skipped" in text
        assert "bf16 LSTM not supported by this torch/cuDNN" in " ".join(text.split())  # wrapped
        assert "grad norm -" in text  # a skipped step's norm is inf by design: not shown as a number


def test_a_viewer_of_a_finished_run_reads_the_precision_from_config_json(tmp_path):
    run = RunDir(tmp_path / "run").ensure()
    run.config.write_text(json.dumps({"config": {}, "precision": {**FP16, "detail": 3}}), encoding="utf-8")
    found = CatchUp.from_files(run, {}, "finished", step=0)
    assert found.started is not None
    assert found.started.precision == {k: v for k, v in FP16.items() if k != "detail"}  # text fields only
