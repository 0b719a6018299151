"""ExploringLink: the trainer answers the explorer while it trains; afterwards the run's checkpoint
does, including a request the trainer left unanswered when it finished."""

from __future__ import annotations

import time

from rnn_tui.core import events as ev
from rnn_tui.host.explore_link import ExploringLink, FixedLink
from tests.helpers import SilentLink, started_event, tiny_config


class EndingLink(SilentLink):
    """A trainer that takes commands, then finishes when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[ev.Event] = []
        self.running = True

    def poll(self, limit: int = 1000) -> list[ev.Event]:
        out, self.queued = self.queued, []
        return out

    def alive(self) -> bool:
        return self.running


def checkpoint(small_corpus, tmp_path):
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.trainer import Trainer

    t = Trainer(tiny_config(), read_corpus(small_corpus))
    for _ in range(3):
        t.train_step()
    return t.save("manual", path=tmp_path / "final.pt")


def answers(link: ExploringLink, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [e for e in link.poll() if isinstance(e, (ev.Explored, ev.ExploreFailed))]
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError("no answer")


def test_a_request_left_unanswered_by_a_finishing_trainer_is_answered_from_its_checkpoint(small_corpus, tmp_path):
    path = checkpoint(small_corpus, tmp_path)
    inner = EndingLink()
    link = ExploringLink(inner)
    link.send(ev.Explore(chars=100))
    assert inner.sent == [ev.Explore(chars=100)]  # the trainer is asked while it trains
    inner.queued = [ev.Finished(reason="max-steps", step=3, checkpoint=str(path))]
    inner.running = False
    (answer,) = answers(link)
    assert isinstance(answer, ev.Explored) and answer.step == 3 and len(answer.text) == 100
    link.send(ev.Explore(chars=50))  # and from now on, here
    assert len(inner.sent) == 1
    (answer,) = answers(link)
    assert len(answer.text) == 50
    link.close()


def test_a_run_that_left_no_checkpoint_says_so():
    link = ExploringLink(FixedLink([started_event(run_dir="/nonexistent")]), local=True)
    link.poll()
    link.send(ev.Explore())
    (answer,) = answers(link)
    assert isinstance(answer, ev.ExploreFailed) and "no checkpoint" in answer.reason
    link.close()
