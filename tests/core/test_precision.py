"""The precision a run trains in, chosen by what works (core/precision.py), tested without a GPU:
the CUDA probe is faked, so every verdict a GPU could give is played here."""

from __future__ import annotations

import pytest
import torch

from rnn_tui.core.errors import ConfigError
from rnn_tui.core.model import CharRNN, ModelConfig
from rnn_tui.core.precision import ModelProbe, Precision, ProbeFailed, choose_precision, cpu_has_bf16, fp32
from tests.helpers import assert_clean_error, rnn_tui

BF16_LSTM_ERROR = "\"_thnn_fused_lstm_cell_cuda\" not implemented for 'BFloat16'"


class FakeProbe:
    """Answers for a GPU: each precision named in ``fails`` raises what it is given; records the calls."""

    def __init__(self, **fails: Exception):
        self.fails = fails
        self.tried: list[str] = []

    def __call__(self, precision: Precision) -> None:
        self.tried.append(precision.name)
        if precision.name in self.fails:
            raise self.fails[precision.name]


def test_auto_on_cuda_picks_bf16_when_its_probe_passes():
    probe = FakeProbe()
    p = choose_precision("auto", "cuda", probe, tf32_available=True)
    assert (p.name, p.autocast, p.loss_scaling) == ("bf16", torch.bfloat16, False)
    assert p.reason == "bf16 LSTM runs on this GPU (probed)" and p.label == "bf16"
    assert probe.tried == ["bf16"]  # probed once, nothing more


def test_auto_falls_back_to_fp16_with_loss_scaling_when_bf16_fails():
    probe = FakeProbe(bf16=RuntimeError(BF16_LSTM_ERROR + "\n(more lines of C++ context)"))
    p = choose_precision("auto", "cuda", probe)
    assert (p.name, p.autocast, p.loss_scaling) == ("fp16", torch.float16, True)
    assert p.reason == "bf16 LSTM not supported by this torch/cuDNN: using fp16 with loss scaling"
    assert p.detail == BF16_LSTM_ERROR and p.label == "fp16 + loss scaling"
    assert probe.tried == ["bf16", "fp16"]


def test_the_reason_names_the_model_s_cell():
    p = choose_precision("auto", "cuda", FakeProbe(bf16=RuntimeError("no")), cell="gru")
    assert p.reason == "bf16 GRU not supported by this torch/cuDNN: using fp16 with loss scaling"


def test_auto_falls_back_to_fp16_when_bf16_gives_non_finite_values():
    p = choose_precision("auto", "cuda", FakeProbe(bf16=ProbeFailed("gave non-finite values")))
    assert p.name == "fp16" and p.reason == "bf16 gave non-finite values: using fp16 with loss scaling"


@pytest.mark.parametrize("tf32", [True, False])
def test_auto_falls_back_to_fp32_with_tf32_where_the_gpu_has_it(tf32):
    probe = FakeProbe(bf16=RuntimeError(BF16_LSTM_ERROR), fp16=RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"))
    p = choose_precision("auto", "cuda", probe, tf32_available=tf32)
    assert (p.name, p.autocast, p.loss_scaling, p.tf32) == ("fp32", None, False, tf32)
    assert p.label == ("fp32 + TF32 matmuls" if tf32 else "fp32")
    assert p.reason.startswith("neither bf16 nor fp16 LSTMs run here: using fp32")
    assert p.reason.endswith(" with TF32 matmuls") == tf32
    assert "bf16: " + BF16_LSTM_ERROR in p.detail and "fp16: cuDNN error" in p.detail


@pytest.mark.parametrize(
    "asked, alternatives",
    [("bf16", "use --precision auto, fp16 or fp32"), ("fp16", "use --precision auto, bf16 or fp32")],
)
def test_an_explicit_precision_that_fails_is_one_line_naming_the_alternatives(asked, alternatives):
    probe = FakeProbe(**{asked: RuntimeError(BF16_LSTM_ERROR + "\nsecond line")})
    with pytest.raises(ConfigError) as caught:
        choose_precision(asked, "cuda", probe)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--precision {asked}: ") and message.endswith(alternatives)
    assert probe.tried == [asked]  # no quiet fallback to something else


@pytest.mark.parametrize("asked", ["bf16", "fp16"])
def test_an_explicit_precision_that_works_is_used(asked):
    p = choose_precision(asked, "cuda", FakeProbe())
    assert p.name == asked and p.loss_scaling == (asked == "fp16") and "as asked" in p.reason


def test_explicit_fp32_on_cuda_is_not_probed_and_uses_tf32_where_there():
    probe = FakeProbe()
    assert choose_precision("fp32", "cuda", probe, tf32_available=True) == fp32("as asked", tf32=True)
    assert probe.tried == []


def test_running_out_of_memory_in_the_probe_is_not_a_verdict_on_the_precision():
    probe = FakeProbe(bf16=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    with pytest.raises(torch.OutOfMemoryError):
        choose_precision("auto", "cuda", probe)


def test_mps_trains_in_fp32_without_a_probe():
    probe = FakeProbe()
    p = choose_precision("auto", "mps", probe, tf32_available=True, cpu_bf16=True)
    assert (p.name, p.autocast, p.loss_scaling, p.tf32) == ("fp32", None, False, False)
    assert p.reason == "mixed precision is used on CUDA and CPUs only" and probe.tried == []
    for asked in ("bf16", "fp16"):
        with pytest.raises(ConfigError, match=f"--precision {asked} needs a CUDA GPU .* use --precision auto or fp32"):
            choose_precision(asked, "mps", probe)


def test_a_cpu_with_bf16_instructions_trains_an_lstm_in_bf16_once_probed():
    probe = FakeProbe()
    p = choose_precision("auto", "cpu", probe, cpu_bf16=True)
    assert (p.name, p.autocast, p.loss_scaling, p.tf32) == ("bf16", torch.bfloat16, False, False)
    assert p.reason == "LSTM on this CPU's bf16 instructions, probed" and probe.tried == ["bf16"]
    assert choose_precision("bf16", "cpu", FakeProbe(), cpu_bf16=True).name == "bf16"


def test_a_cpu_without_bf16_instructions_or_a_cell_without_a_bf16_path_trains_in_fp32_unprobed():
    for cpu_bf16, cell, why in [
        (False, "lstm", "this CPU has no bf16 instructions: AVX512-BF16 or AMX"),
        (True, "gru", "bf16 speeds up only LSTMs on a CPU, not GRUs"),
    ]:
        probe = FakeProbe()
        p = choose_precision("auto", "cpu", probe, cpu_bf16=cpu_bf16, cell=cell)
        assert (p.name, p.autocast, p.reason, probe.tried) == ("fp32", None, why, [])
        with pytest.raises(ConfigError) as refused:  # asked for: one line saying why not
            choose_precision("bf16", "cpu", probe, cpu_bf16=cpu_bf16, cell=cell)
        assert str(refused.value) == f"--precision bf16 on a CPU: {why}; use --precision auto or fp32"


def test_a_cpu_whose_bf16_probe_fails_trains_in_fp32_and_says_why():
    probe = FakeProbe(bf16=RuntimeError("could not create a primitive descriptor for an LSTM forward\nmore"))
    p = choose_precision("auto", "cpu", probe, cpu_bf16=True)
    assert p.name == "fp32" and p.reason == "bf16 LSTM not supported by this torch/oneDNN: using fp32"
    assert p.detail == "could not create a primitive descriptor for an LSTM forward"
    with pytest.raises(
        ConfigError, match=r"^--precision bf16: bf16 LSTM not supported .* use --precision auto or fp32$"
    ):
        choose_precision("bf16", "cpu", probe, cpu_bf16=True)
    assert (
        choose_precision("auto", "cpu", FakeProbe(bf16=ProbeFailed("gave non-finite values")), cpu_bf16=True).name
        == "fp32"
    )


def test_fp16_on_a_cpu_is_refused_and_fp32_is_taken_as_asked():
    with pytest.raises(ConfigError, match=r"^--precision fp16 needs a CUDA GPU .* use --precision auto, bf16 or fp32$"):
        choose_precision("fp16", "cpu", FakeProbe(), cpu_bf16=True)
    with pytest.raises(ConfigError, match=r"^--precision fp16 needs a CUDA GPU .* use --precision auto or fp32$"):
        choose_precision("fp16", "cpu", FakeProbe(), cpu_bf16=False)
    probe = FakeProbe()
    assert choose_precision("fp32", "cpu", probe, cpu_bf16=True) == fp32("as asked") and probe.tried == []


def test_the_real_probe_trains_one_step_and_leaves_no_trace():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, layers=2, hidden=16, embed=8, dropout=0.3))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    ModelProbe(model, vocab_size=20, seq_len=100)(fp32("test"))
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # dropout ran, the training stream did not move
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_the_real_probe_refuses_non_finite_values():
    model = CharRNN(ModelConfig(vocab_size=20, layers=1, hidden=16, embed=8))
    with torch.no_grad():
        model.head.weight[0, 0] = float("inf")
    with pytest.raises(ProbeFailed, match="non-finite"):
        ModelProbe(model, vocab_size=20, seq_len=10)(fp32("test"))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_the_choice_is_said_once_and_recorded_in_config_json(small_corpus, tmp_path):
    import json

    proc = rnn_tui(
        small_corpus,
        "--headless",
        "--max-steps",
        "2",
        *"--batch-size 4 --seq-len 16 --layers 1 --hidden 32 --embed 8 --device cpu --threads 1".split(),
        "--runs-dir",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # this machine's CPU decides (core/precision.py): bf16 with bf16 instructions, else fp32
    expected = (
        "bf16 (LSTM on this CPU's bf16 instructions, probed)"
        if cpu_has_bf16()
        else ("fp32 (this CPU has no bf16 instructions: AVX512-BF16 or AMX)")
    )
    assert proc.stdout.count(f"precision: {expected}") == 1, proc.stdout
    (config,) = tmp_path.glob("*/config.json")
    record = json.loads(config.read_text())
    assert record["precision"]["name"] == expected[:4] and record["config"]["precision"] == "auto"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, words",
    [
        (["--precision", "fp8"], ["--precision must be one of auto, bf16, fp16, fp32"]),
        (
            ["--precision", "fp16", "--device", "cpu"],
            ["--precision fp16 needs a CUDA GPU", "use --precision auto", "or fp32"],
        ),
    ],
)
def test_a_precision_that_cannot_run_is_one_clean_line(small_corpus, tmp_path, args, words):
    assert_clean_error(rnn_tui(small_corpus, "--headless", *args, "--runs-dir", tmp_path), *words)
    assert not list(tmp_path.iterdir())  # no run directory left behind
