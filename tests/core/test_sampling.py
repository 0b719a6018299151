"""The fast sampler computes what the model computes, and draws from the right distribution."""

import numpy as np
import pytest
import torch

from rnn_tui.core import sampling
from rnn_tui.core.corpus import Vocab
from rnn_tui.core.model import CharRNN, ModelConfig
from rnn_tui.core.sampling import draw, generate

VOCAB = Vocab("char", tuple(sorted(ord(c) for c in set("abcdefgh ij\nklmnop"))))


def model(layers=2, hidden=48, cell="lstm"):
    torch.manual_seed(3)
    m = CharRNN(ModelConfig(vocab_size=VOCAB.size, layers=layers, hidden=hidden, embed=8, cell=cell))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # larger weights: saturated gates and peaky logits, not a near-uniform toy
    return m.eval()


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_fused_step_matches_the_model(layers):
    m = model(layers)
    ids = torch.randint(0, VOCAB.size, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, (h, c) = m(ids)
        step = sampling._FusedLSTM(m)
        got = torch.stack([step.step(int(i)).clone() for i in ids[0]])
    torch.testing.assert_close(got, want[0], atol=1e-4, rtol=1e-4)
    h_got, c_got = step.states()
    torch.testing.assert_close(h_got, h[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_got, c[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recorded_states_are_the_models_states(cell):
    m = model(2, cell=cell)
    s = generate(m, VOCAB, 30, temperature=1.0, prime="abc", seed=5, record=20)
    ids = torch.tensor([[VOCAB.codes.index(ord(ch)) for ch in "abc" + s.text]])
    with torch.no_grad():
        out, _ = m.rnn(m.embed(ids))  # top layer's h at every step
    assert s.probe_text == ("abc" + s.text)[-20:]
    np.testing.assert_allclose(s.h[-1].astype(np.float32), out[0, -20:].numpy(), atol=2e-3)


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.5, 0), (2.0, 0), (1.0, 3), (0.7, 1)])
def test_draw_follows_softmax_with_temperature_and_top_k(temperature, top_k):
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=12) * 2).astype(np.float32)
    logits[4] = -200.0  # a symbol with (numerically) zero probability is never drawn
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    if top_k:
        p[np.argsort(-logits)[top_k:]] = 0.0
    p /= p.sum()
    n = 20_000
    us = (np.arange(n) + 0.5) / n  # evenly spaced quantiles: counts must match n * p to within 1
    counts = np.bincount([draw(logits, temperature, top_k, u) for u in us], minlength=12)
    assert np.all(np.abs(counts - n * p) <= 1.0 + 1e-9), (counts, n * p)
    assert counts[4] == 0
    assert draw(logits, temperature, top_k, np.nextafter(1.0, 0.0)) != 4  # the very top of the CDF


def test_samples_depend_on_seed_and_follow_the_distribution():
    m = model(1)
    a = generate(m, VOCAB, 300, temperature=1.0, seed=1).text
    assert a == generate(m, VOCAB, 300, temperature=1.0, seed=1).text
    assert a != generate(m, VOCAB, 300, temperature=1.0, seed=2).text
    # first symbol after the prime: empirical frequencies over many seeds match the softmax
    ids = torch.tensor([[VOCAB.codes.index(ord(c)) for c in "ab"]])
    with torch.no_grad():
        p = torch.softmax(m(ids)[0][0, -1], -1).numpy()
    firsts = [
        VOCAB.codes.index(ord(generate(m, VOCAB, 1, temperature=1.0, prime="ab", seed=s).text)) for s in range(3000)
    ]
    freq = np.bincount(firsts, minlength=VOCAB.size) / 3000
    assert np.abs(freq - p).max() < 0.04


def test_generation_runs_on_one_thread_and_restores_the_thread_count(monkeypatch):
    seen = []
    step = sampling._FusedLSTM.step

    def spy(self, idx):
        seen.append(torch.get_num_threads())
        return step(self, idx)

    monkeypatch.setattr(sampling._FusedLSTM, "step", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate(model(1), VOCAB, 10, seed=0)
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
