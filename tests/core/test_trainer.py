import math
import pickle
import queue
import time

import pytest
import torch

from rnn_tui.core import checkpoint as ckpt_io
from rnn_tui.core import events as ev
from rnn_tui.core.config import TrainConfig
from rnn_tui.core.corpus import read_corpus
from rnn_tui.core.errors import CheckpointError, ConfigError
from rnn_tui.core.runs import RunDir
from rnn_tui.core.session import run_session
from rnn_tui.core.trainer import BUDGET_CAP_EPOCHS, Trainer, dropout_at, load_for_inference, lr_at
from tests.helpers import tiny_config


def make(small_corpus, tmp_path, **kw):
    return Trainer(tiny_config(**kw), read_corpus(small_corpus), run=RunDir(tmp_path / "run"))


def steps(trainer, n):
    for _ in range(n):
        trainer.train_step()
    return [row.loss for row in trainer.collect()]


def test_loss_falls_clearly(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path)
    before = t.evaluate()
    losses = steps(t, 200)
    after = t.evaluate()
    assert before > 3.8  # about log(vocab size): knows nothing
    assert after < 2.7, f"validation loss only went from {before:.2f} to {after:.2f}"
    assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20 - 1.0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_resume_is_exact(small_corpus, tmp_path, cell):
    straight = make(small_corpus, tmp_path / "a", cell=cell, dropout=0.1, layers=2)
    expected = steps(straight, 25)

    first = make(small_corpus, tmp_path / "b", cell=cell, dropout=0.1, layers=2)
    got = steps(first, 12)
    path = first.save("manual")
    first.sample(50)  # sampling in between must not change the training stream

    resumed = make(small_corpus, tmp_path / "c", cell=cell, dropout=0.1, layers=2, seed=999)
    resumed.load_state_dict(ckpt_io.load(path))
    got += steps(resumed, 13)
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_sampling_does_not_disturb_training(small_corpus, tmp_path, cell):
    # Dropout draws from the global RNG and the hidden state carries over: sampling must touch neither.
    a = make(small_corpus, tmp_path / "a", dropout=0.2, layers=2, cell=cell)
    with_samples = steps(a, 5)
    a.sample(100, temperature=1.0)
    a.sample(20, temperature=0.0)
    with_samples += steps(a, 5)
    b = make(small_corpus, tmp_path / "b", dropout=0.2, layers=2, cell=cell)  # reseeds the global RNG
    assert with_samples == pytest.approx(steps(b, 10), abs=1e-7)


def test_sampling_temperature_zero_and_seed(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path)
    steps(t, 60)
    greedy = [t.sample(80, temperature=0, prime="ROMEO:").text for _ in range(2)]
    assert greedy[0] == greedy[1]
    # argmax: every character is the single most likely one, so a fresh model pass agrees
    s1 = t.sample(80, temperature=1.0, seed=7).text
    s2 = t.sample(80, temperature=1.0, seed=7).text
    s3 = t.sample(80, temperature=1.0, seed=8).text
    assert s1 == s2 and s1 != s3
    assert len(s1) == 80


def test_greedy_matches_model_argmax(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path, layers=2)
    steps(t, 30)
    prime = "First Citizen:\n"
    out = t.sample(5, temperature=0, prime=prime).text
    ids = torch.from_numpy(t.vocab.encode_array(prime + out[:4]).astype("int64"))[None]
    t.model.eval()
    with torch.no_grad():
        logits, _ = t.model(ids)
    expected = t.vocab.decode(logits[0, len(prime) - 1 :].argmax(-1).tolist())
    assert out == expected


def test_unknown_prime_characters_are_skipped_and_reported(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path)
    s = t.sample(10, prime="ROMEO 🎉:")
    assert s.prime == "ROMEO :" and s.unknown == ["🎉"]


def test_sample_records_hidden_states(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path, layers=2)
    s = t.sample(50, prime="KING:", record=30)
    assert s.h.shape == (2, 30, 64) and s.c.shape == (2, 30, 64)
    assert len(s.probe_text) == 30
    assert float(abs(s.h).max()) <= 1.0


def test_checkpoint_loads_weights_only_and_refuses_pickled_code(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path)
    path = t.save("manual")
    model, vocab, ck = load_for_inference(path)
    assert vocab == t.vocab and ck["step"] == 0

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"format": ckpt_io.FORMAT, "payload": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        ckpt_io.load(evil)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ckpt_io.load(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not an rnn-tui checkpoint"):
        ckpt_io.load(other)


def test_resume_may_change_dropout_and_weight_decay(small_corpus, tmp_path):
    path = make(small_corpus, tmp_path / "a", layers=2, dropout=0.0).save("manual")
    t = make(small_corpus, tmp_path / "b", layers=2, dropout=0.3, weight_decay=0.05)
    t.load_state_dict(ckpt_io.load(path))
    decayed, not_decayed = t.optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and not_decayed["weight_decay"] == 0.0
    steps(t, 2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_decay_falls_on_the_weight_matrices_not_the_biases(small_corpus, tmp_path, cell):
    # a decayed forget-gate bias would drift from 1 (remember) towards 0 (forget): model.py's init
    t = make(small_corpus, tmp_path, cell=cell, layers=2, weight_decay=0.1)
    decayed, not_decayed = t.optimizer.param_groups
    names = {id(p): n for n, p in t.model.named_parameters()}
    assert decayed["weight_decay"] == 0.1 and not_decayed["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in not_decayed["params"]) == sorted(
        n for n, p in t.model.named_parameters() if n.endswith("bias") or "bias_" in n
    )
    assert {names[id(p)] for p in decayed["params"]} >= {"rnn.weight_hh_l0", "rnn.weight_ih_l1", "head.weight"}
    assert len(decayed["params"]) + len(not_decayed["params"]) == len(list(t.model.parameters()))


def test_a_checkpoint_whose_optimiser_has_one_group_resumes_exactly(small_corpus, tmp_path, monkeypatch):
    # Checkpoints saved before the groups had every parameter in one: they resume with their moments.
    import rnn_tui.core.trainer as trainer_module

    def one_group(model, weight_decay):
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "parameter_groups", one_group)
        straight = make(small_corpus, tmp_path / "a", layers=2, weight_decay=0.0)
        expected = steps(straight, 20)
        old = make(small_corpus, tmp_path / "b", layers=2, weight_decay=0.0)
        got = steps(old, 10)
        path = old.save("manual")
    assert len(ckpt_io.load(path)["optimizer"]["param_groups"]) == 1

    resumed = make(small_corpus, tmp_path / "c", layers=2, weight_decay=0.0)
    resumed.load_state_dict(ckpt_io.load(path))
    assert len(resumed.optimizer.param_groups) == 2
    got += steps(resumed, 10)
    assert got == pytest.approx(expected, abs=1e-6)


def test_resume_other_architecture_is_refused(small_corpus, tmp_path):
    path = make(small_corpus, tmp_path / "a").save("manual")
    bigger = make(small_corpus, tmp_path / "b", hidden=32)
    with pytest.raises(CheckpointError, match="hidden 64 vs 32"):
        bigger.load_state_dict(ckpt_io.load(path))


def test_lr_schedule_warms_up_and_decays():
    cfg = tiny_config(lr=1e-2, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-2)
    assert lr_at(60, cfg) == pytest.approx(0.55e-2)
    assert lr_at(110, cfg) == pytest.approx(1e-3)
    assert lr_at(500, cfg) == pytest.approx(1e-3)


def test_session_obeys_commands_and_reports(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path, max_steps=40, eval_every=20)
    inbox: queue.Queue = queue.Queue()
    seen: list = []
    inbox.put(ev.SetSampling(temperature=0.5))
    inbox.put(ev.SampleNow())
    inbox.put(ev.SaveNow())
    done = run_session(t, inbox, seen.append, post_interval=0.0)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "Started" and done.reason == "max-steps" and done.step == 40
    assert any(isinstance(e, ev.Sampled) and e.temperature == 0.5 for e in seen)
    assert any(isinstance(e, ev.Probed) for e in seen)
    assert [e.step for e in seen if isinstance(e, ev.Evaluated)] == [20, 40]
    steps_reported = [s for e in seen if isinstance(e, ev.Progress) for s in e.steps]
    assert steps_reported == list(range(1, 41))
    reasons = [e.reason for e in seen if isinstance(e, ev.CheckpointSaved)]
    assert "manual" in reasons and reasons[-1] == "final"
    # the run directory holds the whole history and every event crosses a process boundary
    rows = t.run.read_metrics()
    assert len([r for r in rows if r["kind"] == "train"]) == 40
    assert (tmp_path / "run" / "samples.jsonl").read_text().count("\n") >= 1
    for e in seen:
        pickle.loads(pickle.dumps(e))


@pytest.mark.parametrize("save_between_posts", [False, True])
def test_session_stops_on_nan_without_overwriting_checkpoint(small_corpus, tmp_path, save_between_posts):
    t = make(small_corpus, tmp_path, max_steps=50)
    steps(t, 3)
    good = t.save("periodic")
    before = good.read_bytes()
    with torch.no_grad():
        t.model.head.weight.fill_(math.nan)
    seen: list = []
    inbox: queue.Queue = queue.Queue()
    # a save asked for between two progress posts must not write the NaN weights either
    if save_between_posts:
        done = run_session(t, inbox, lambda e: (seen.append(e), inbox.put(ev.SaveNow())), post_interval=3600)
    else:
        done = run_session(t, inbox, seen.append, post_interval=0.0)
    assert done.reason == "error" and ("loss became nan" in done.error or "weights became NaN" in done.error)
    assert good.read_bytes() == before
    assert not any(isinstance(e, ev.CheckpointSaved) for e in seen)


def test_time_budget_decays_the_learning_rate_over_training_time_whatever_the_load(small_corpus, tmp_path):
    """A --max-minutes run ends its decay when its budget ends, even when the steps slow down
    halfway (another process taking the cores)."""
    from rnn_tui.core.session import Session

    t = make(small_corpus, tmp_path, max_minutes=0.03, warmup_steps=2, min_lr_ratio=0.1)
    budget_s = 0.03 * 60
    real_step = t.train_step
    clock = {"start": None}

    def slowing_step():
        clock["start"] = clock["start"] or time.monotonic()
        if time.monotonic() - clock["start"] > budget_s / 2:
            time.sleep(0.02)  # the machine got busy: each step now takes much longer
        real_step()

    t.train_step = slowing_step
    seen: list = []
    done = Session(t, queue.Queue(), seen.append, post_interval=0.0).run()
    assert done.reason == "max-minutes"
    assert any(isinstance(e, ev.Notice) and "budget of training time" in e.message for e in seen)
    lrs = [e.lr for e in seen if isinstance(e, ev.Progress)]
    assert lrs[-1] < 0.12 * t.cfg.lr  # the floor is 0.1 x: reached as the budget ran out
    assert max(lrs) > 0.9 * t.cfg.lr
    assert t.schedule_progress > 0.95
    # the decay is continuous: no jump up anywhere after the peak
    peak = lrs.index(max(lrs))
    assert all(b <= a + 1e-12 for a, b in zip(lrs[peak:], lrs[peak + 1 :]))


def test_a_resumed_time_budget_continues_its_decay(small_corpus, tmp_path):
    """The d key hands a run to a background trainer with what is left of the budget: the
    learning rate goes on from where it was, not from the peak."""
    t = make(small_corpus, tmp_path, max_minutes=1.0, warmup_steps=2)
    t.schedule_progress = 0.5
    for _ in range(3):
        t.train_step()
    t.save("manual")
    back = make(small_corpus, tmp_path, max_minutes=0.5, warmup_steps=2)
    back.load_state_dict(ckpt_io.load(t.run.latest))
    assert back.schedule_progress == 0.5 and back.lr == pytest.approx(t.lr)


def test_a_time_budget_never_trains_above_the_open_ended_schedule_of_a_small_corpus():
    """Past --decay-steps (or 16 passes over a small text) a budget holding its peak only
    memorises: its rate follows the open-ended cosine there, and still ends at the floor."""
    cfg = tiny_config(lr=1e-2, warmup_steps=10, decay_steps=110, max_minutes=1.0, min_lr_ratio=0.1)
    # early in a long budget: the open-ended cosine is lower than the budget's held peak
    assert lr_at(60, cfg, progress=0.2, cap_steps=110) == pytest.approx(lr_at(60, cfg)) == pytest.approx(0.55e-2)
    assert lr_at(60, cfg, progress=0.2) == pytest.approx(1e-2)  # no cap: the peak
    assert lr_at(500, cfg, progress=0.5, cap_steps=110) == pytest.approx(1e-3)  # past the cap: the floor
    # a cap further away than the budget leaves the budget's own decay, which still ends at the floor
    assert lr_at(60, cfg, progress=0.85, cap_steps=10**6) == pytest.approx(0.55e-2)
    assert lr_at(60, cfg, progress=1.0, cap_steps=10**6) == pytest.approx(1e-3)
    # the warm-up by time is untouched
    assert lr_at(3, cfg, progress=0.05, cap_steps=110) == pytest.approx(0.5e-2)


def test_a_trainer_caps_its_budget_by_decay_steps_or_sixteen_epochs_whichever_is_longer(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path / "a", max_minutes=1.0, decay_steps=7)
    assert t.budget_cap_steps == BUDGET_CAP_EPOCHS * len(t.batches) > 7
    t2 = make(small_corpus, tmp_path / "b", max_minutes=1.0, decay_steps=10**6)
    assert t2.budget_cap_steps == 10**6


def test_a_time_budget_ends_its_warm_up_by_a_tenth_of_the_budget_holds_the_peak_and_decays_to_the_floor():
    """On a slow machine a budget may end before warmup_steps: the warm-up then ends by 10 % of
    the budget, and the run still decays to the floor (it used to end at the peak rate)."""
    cfg = tiny_config(lr=1e-2, warmup_steps=100, max_minutes=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg, progress=0.0) == pytest.approx(1e-4)  # steps still warm up from the start
    assert lr_at(5, cfg, progress=0.05) == pytest.approx(0.5e-2)  # half the warm-up's time: half the rate
    # then the peak, held until the last 30 % of the budget (BUDGET_DECAY_SHARE), which decays
    assert lr_at(10, cfg, progress=0.1) == lr_at(200, cfg, progress=0.7) == pytest.approx(1e-2)
    assert lr_at(300, cfg, progress=0.85) == pytest.approx(0.55e-2)  # half way down the cosine
    assert lr_at(300, cfg, progress=0.85 + 0.15 * (1 - math.cos(0.5 * math.pi))) < 0.55e-2
    assert lr_at(20, cfg, progress=1.0) == pytest.approx(1e-3)  # still inside warmup_steps: at the floor
    assert lr_at(50, cfg, progress=0.01) == pytest.approx(0.51e-2)  # a fast machine: by the steps


def test_the_dropout_rises_from_the_tenth_to_the_thirtieth_pass_and_never_falls():
    cfg = TrainConfig(dropout=0.1, late_dropout=0.3)
    assert dropout_at(0, cfg) == dropout_at(10, cfg) == pytest.approx(0.1)
    assert dropout_at(20, cfg) == pytest.approx(0.2)
    assert dropout_at(30, cfg) == dropout_at(500, cfg) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="--late-dropout .* must be at least --dropout"):
        TrainConfig(dropout=0.5, late_dropout=0.3).validate()  # it would be ignored: refused


def test_a_trainer_raises_its_dropout_with_the_passes_and_resumes_with_the_same(small_corpus, tmp_path):
    t = make(small_corpus, tmp_path, layers=2, dropout=0.1, late_dropout=0.5)
    steps(t, 1)
    assert t.model.drop.p == t.model.rnn.dropout == pytest.approx(0.1)
    t.epoch = 20  # half way up the rise
    steps(t, 1)
    assert t.model.drop.p == t.model.rnn.dropout == pytest.approx(0.3, abs=0.01)
    t.save("manual")
    back = make(small_corpus, tmp_path, layers=2, dropout=0.1, late_dropout=0.5)
    back.load_state_dict(ckpt_io.load(t.run.latest))
    steps(back, 1)
    assert back.model.drop.p == pytest.approx(t.model.drop.p, abs=0.01)


def test_a_run_saved_before_the_rise_keeps_its_dropout_fixed_on_resume():
    cfg = TrainConfig.from_dict({k: v for k, v in TrainConfig(dropout=0.2).to_dict().items() if k != "late_dropout"})
    assert cfg.dropout == cfg.late_dropout == 0.2
