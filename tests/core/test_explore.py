"""The explorer's analysis on models whose answer is known: a hand-set cell that counts bracket
depth is the finder's first pick, a model that ignores its past remembers nothing beyond one
character, and exploring a live trainer leaves its run bit-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnn_tui.core import events as ev
from rnn_tui.core.corpus import Vocab, read_corpus
from rnn_tui.core.errors import CorpusError
from rnn_tui.core.explore import MAX_STATE_VALUES, encode_probe, explore, passage, probe_limit
from rnn_tui.core.explorer import Explorer, to_event
from rnn_tui.core.model import CharRNN, ModelConfig
from rnn_tui.core.session import Session
from rnn_tui.core.trainer import Trainer
from rnn_tui.remote import wire
from tests.helpers import tiny_config

TEXT = "f(a) { g(b(c)); }\n(x (y (z)))\nint h() { return (1 + (2 * 3)); }\n" * 6


def vocab_of(text: str) -> Vocab:
    return Vocab("char", tuple(sorted({ord(ch) for ch in text})))


def hand_set_model(vocab: Vocab, *, layers: int = 1, hidden: int = 4, cell: str = "lstm") -> CharRNN:
    """One-hot embedding; every weight zero except what the test sets."""
    model = CharRNN(ModelConfig(vocab_size=vocab.size, cell=cell, layers=layers, hidden=hidden, embed=vocab.size))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.weight.copy_(torch.eye(vocab.size))
    return model


def bracket_counter(vocab: Vocab) -> CharRNN:
    """Unit 2 of the cell state adds 1 at '(' and takes 1 at ')': c = depth (i, f, o held at 1)."""
    model = hand_set_model(vocab)
    H, rnn = 4, model.rnn
    with torch.no_grad():
        rnn.bias_ih_l0[0:H] = 20.0  # input gate open
        rnn.bias_ih_l0[H : 2 * H] = 20.0  # forget gate open: remember everything
        rnn.bias_ih_l0[3 * H : 4 * H] = 20.0  # output gate open
        g = rnn.weight_ih_l0[2 * H : 3 * H]
        g[2, vocab.codes.index(ord("("))] = 10.0  # tanh(10) = 1
        g[2, vocab.codes.index(ord(")"))] = -10.0
    return model


def test_a_hand_set_bracket_counter_is_the_finders_first_cell():
    vocab = vocab_of(TEXT)
    result = explore(bracket_counter(vocab), vocab, vocab.encode_array(TEXT), memory_k=20, memory_positions=4)
    first = result.cells[0]
    assert (first.property, first.layer, first.unit) == ("paren_depth", 0, 2)
    assert first.r > 0.9 and first.state == "c"
    np.testing.assert_allclose(result.c[0, :, 2][TEXT.index("(y") + 4], 3.0, atol=1e-3)  # after "(x (y (z"
    # and the state the screen shows is the state nn.LSTM computes
    out, _ = bracket_counter(vocab).rnn(
        torch.eye(vocab.size)[torch.as_tensor(vocab.encode_array(TEXT), dtype=torch.long)]
    )
    np.testing.assert_allclose(result.h[0], out.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_model_that_ignores_its_past_remembers_one_character(cell):
    """No recurrent weights (and an LSTM's forget gate or a GRU's update gate shut): each
    prediction depends on the character just read only, so both memory curves are zero beyond
    k = 1."""
    vocab = vocab_of(TEXT)
    model = hand_set_model(vocab, layers=2, hidden=8, cell=cell)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k in range(2):
            w = getattr(model.rnn, f"weight_ih_l{k}")
            w.copy_(torch.randn(w.shape, generator=gen))
            if cell != "rnn":  # the second gate: an LSTM's forget gate, a GRU's update gate
                getattr(model.rnn, f"bias_ih_l{k}")[8:16] = -1e4  # sigmoid = 0 exactly
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen))
    result = explore(model, vocab, vocab.encode_array(TEXT), memory_k=30, memory_positions=8)
    assert list(result.memory_k[:3]) == [1, 2, 3] and len(result.memory_k) == 30
    assert result.memory_grad[0] > 1e-3 and result.memory_flip[0] > 1e-3
    assert np.all(result.memory_grad[1:] == 0.0)
    assert np.all(np.abs(result.memory_flip[1:]) < 1e-6)


def test_a_model_with_memory_has_a_curve_beyond_one_character():
    vocab = vocab_of(TEXT)
    result = explore(bracket_counter(vocab), vocab, vocab.encode_array(TEXT), memory_k=40, memory_positions=8)
    # the output gate reads the depth, which every bracket since the start changed
    assert result.memory_grad[10] > 0 or result.memory_flip[10] > 0


def test_every_view_has_its_shape_and_the_json_its_keys():
    vocab = vocab_of(TEXT)
    model = CharRNN(ModelConfig(vocab_size=vocab.size, layers=2, hidden=16, embed=8))
    ids = vocab.encode_array(TEXT)
    r = explore(model, vocab, ids, memory_k=25, memory_positions=4)
    T = len(TEXT)
    assert r.symbols == TEXT and r.h.shape == r.c.shape == (2, T, 16) and r.gates.shape == (2, T, 4, 16)
    assert r.top_probs.shape == (T, 5) and len(r.top_chars) == 5 * T
    assert np.all(np.diff(r.top_probs, axis=1) <= 0)  # likeliest first
    probs = torch.softmax(model.head(torch.as_tensor(r.h[1])), -1).detach().numpy()
    np.testing.assert_allclose(r.p_next[:-1], probs[np.arange(T - 1), ids[1:]], rtol=1e-4)
    assert np.isnan(r.p_next[-1])
    assert r.saturation.shape == (2, 3, 2, 16) and np.all((0 <= r.saturation) & (r.saturation <= 1))
    doc = json.loads(json.dumps(r.to_json()))
    assert set(doc) == {"cells", "predictions", "memory", "saturation"}
    assert set(doc["cells"][0]) == {"property", "layer", "state", "unit", "r"}
    assert [abs(c["r"]) for c in doc["cells"]] == sorted((abs(c["r"]) for c in doc["cells"]), reverse=True)
    assert len({c["property"] for c in doc["cells"]}) == len(doc["cells"])  # best cell per property
    assert doc["predictions"][3]["pos"] == 3 and doc["predictions"][3]["char"] == TEXT[3]
    assert len(doc["predictions"][3]["top"]) == 5 and isinstance(doc["predictions"][3]["top"][0][1], float)
    assert doc["memory"][0] == {"k": 1, "grad": doc["memory"][0]["grad"], "flip": doc["memory"][0]["flip"]}
    assert set(doc["saturation"]["layers"][0]) == {"layer", "input", "forget", "output"}


def test_gru_has_no_cell_state_and_no_gate_saturation():
    vocab = vocab_of(TEXT)
    model = CharRNN(ModelConfig(vocab_size=vocab.size, cell="gru", layers=1, hidden=8, embed=8))
    r = explore(model, vocab, vocab.encode_array(TEXT), memory_k=10, memory_positions=2)
    assert r.c is None and r.gates is None and r.saturation is None and r.to_json()["saturation"] is None


def test_probe_texts_and_limits():
    vocab = vocab_of("abc\n")
    with pytest.raises(CorpusError, match="never seen.*'z'"):
        encode_probe(vocab, "abz")
    with pytest.raises(CorpusError, match="empty"):
        encode_probe(vocab, "")
    ids = vocab.encode_array("ab\ncab\nabc")
    assert passage(ids, 4, vocab.codes.index(10)).tolist() == vocab.encode_array("cab\n").tolist()  # a whole line first
    assert probe_limit(2, 256, 2000) == 2000
    big = probe_limit(3, 2048, 10_000)
    assert 2 * 3 * 2048 * big <= MAX_STATE_VALUES


def test_the_biggest_answer_fits_the_wire():
    """A probe at the limit for a large model still travels in one frame."""
    layers, hidden = 2, 1024
    T = probe_limit(layers, hidden, 10_000)
    h = np.zeros((layers, T, hidden), np.float32)
    answer = ev.Explored(
        asker="",
        step=1,
        text="a" * T,
        cell="lstm",
        h=h,
        c=h,
        top_chars="a" * 5 * T,
        top_probs=np.zeros((T, 5), np.float32),
        p_next=np.zeros(T, np.float32),
        loss=1.0,
        cells=[],
        saturation=np.zeros((layers, 3, 2, hidden), np.float32),
        memory_k=list(range(1, 201)),
        memory_grad=[0.1] * 200,
        memory_flip=[0.1] * 200,
        seq_len=100,
        seconds=0.1,
    )
    assert len(wire.encode(answer)) < wire.MAX_EVENT_BYTES


def test_explore_leaves_the_model_its_gradients_and_the_rng_alone(small_corpus):
    t = Trainer(tiny_config(dropout=0.3, layers=2), read_corpus(small_corpus))
    for _ in range(3):
        t.train_step()
    grads = [p.grad.clone() for p in t.model.parameters()]
    weights = [p.detach().clone() for p in t.model.parameters()]
    rng = torch.get_rng_state()
    explore(t.model, t.vocab, t.corpus.data[:500], memory_k=50, memory_positions=4)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, t.model.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(weights, t.model.parameters()))
    assert t.model.training


class ExploreBeforeEveryStep:
    """An inbox that asks for the explorer's views before every training step."""

    def __init__(self) -> None:
        self.turn = 0

    def get(self, block: bool = True, timeout: float | None = None):
        import queue

        self.turn += 1
        if self.turn % 2:
            return ev.Explore(chars=300)
        raise queue.Empty

    def put(self, command) -> None: ...


def test_a_run_with_the_explorer_open_continues_bit_identically(small_corpus):
    """Dropout draws from the training RNG every step; the explorer's passes must not."""

    def run(inbox) -> tuple[Trainer, list]:
        t = Trainer(tiny_config(dropout=0.2, layers=2, max_steps=12, eval_every=5), read_corpus(small_corpus))
        seen: list = []
        Session(t, inbox, seen.append, post_interval=0.0).run()
        return t, seen

    import queue

    plain, plain_events = run(queue.Queue())
    explored, explored_events = run(ExploreBeforeEveryStep())
    assert sum(isinstance(e, ev.Explored) for e in explored_events) >= 12
    losses = lambda events: [x for e in events if isinstance(e, ev.Progress) for x in e.losses]  # noqa: E731
    assert losses(plain_events) == losses(explored_events) and len(losses(plain_events)) == 12
    a, b = plain.state_dict(), explored.state_dict()
    for key in ("model", "optimizer"):
        assert repr(a[key]) == repr(b[key])  # every tensor's every digit
    assert all(torch.equal(x, y) for x, y in zip(a["hidden"], b["hidden"]))
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"]) and torch.equal(a["rng"]["sample"], b["rng"]["sample"])
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(plain.model.parameters(), explored.model.parameters()))
    assert [e.val_loss for e in plain_events if isinstance(e, ev.Evaluated)] == [
        e.val_loss for e in explored_events if isinstance(e, ev.Evaluated)
    ]


def test_requests_are_paced_while_training_and_answered_at_once_otherwise(small_corpus):
    ticks = iter(range(100, 10_000))  # a clock that moves one second each time it is read
    explorer = Explorer(budget=0.1, clock=lambda: float(next(ticks)))
    t = Trainer(tiny_config(), read_corpus(small_corpus))
    val = t.corpus.split(0.1)[1]

    def serve(version):
        return explorer.serve(t.model, t.vocab, val, t.step, 32, version)

    explorer.ask(ev.Explore(chars=200, refresh=True))
    assert explorer.due(training=True)  # the first refresh is free
    serve(1)
    explorer.ask(ev.Explore(chars=200, refresh=True))
    assert not explorer.due(training=True)  # 1 s computing at a 10 % budget: wait 10 s
    assert explorer.due(training=False)  # paused: weights do not change, answer now
    explorer.ask(ev.Explore(chars=200, refresh=False))
    assert explorer.due(training=True)  # a person asked
    # the same weights and probe: from the last result, not computed again
    explorer.ask(ev.Explore(chars=200, asker="viewer-1"))
    answers = serve(1)
    assert explorer.computed == 1 and {a.asker for a in answers} == {"", "viewer-1"}
    assert serve(2) == []  # nothing pending
    explorer.ask(ev.Explore(text="ROMEO: «zz»", chars=200))
    (answer,) = serve(2)
    assert answer.text == "ROMEO: zz" and "«" in answer.note and "»" in answer.note


def test_explored_events_carry_the_result(small_corpus):
    t = Trainer(tiny_config(), read_corpus(small_corpus))
    r = explore(t.model, t.vocab, t.corpus.data[:300], memory_k=20, memory_positions=2)
    e = to_event(r, "", 7, 32)
    back = wire.decode_event(wire.encode(e)[4:])
    assert back.step == 7 and back.text == r.symbols and back.seq_len == 32
    np.testing.assert_allclose(back.h, r.h, atol=2e-3)
    assert back.cells == [m.to_dict() for m in r.cells]
    assert back.memory_k == list(range(1, 21))
