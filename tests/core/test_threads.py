"""The thread count follows the machine: measured on real steps, re-measured when they slow down."""

from rnn_tui.core.threads import ThreadTuner, candidates


class FakeMachine:
    """Step times per thread count, changeable: another process may take a core."""

    def __init__(self, step_s: dict[int, float]):
        self.step_s = step_s
        self.threads = 0
        self.switches: list[int] = []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.switches.append(n)

    def run(self, tuner: ThreadTuner, steps: int) -> list[int]:
        used = []
        for _ in range(steps):
            used.append(self.threads)
            tuner.step_done(self.step_s[self.threads])
        return used


def test_candidates_cover_all_one_fewer_half_and_one():
    assert candidates(2) == [2, 1]
    assert candidates(16) == [16, 15, 8, 1]
    assert candidates(1) == [1]


def test_a_quiet_machine_keeps_all_cores():
    machine = FakeMachine({2: 0.05, 1: 0.09})
    tuner = ThreadTuner(machine.set_threads, cores=2)
    used = machine.run(tuner, 200)
    assert tuner.threads == 2 and not tuner.tuning
    assert used[-100:] == [2] * 100
    assert used.count(1) < 12  # the trial of one thread: a few steps


def test_a_busy_machine_drops_to_one_thread_and_returns_when_it_is_free():
    machine = FakeMachine({2: 0.05, 1: 0.09})
    tuner = ThreadTuner(machine.set_threads, cores=2)
    machine.run(tuner, 100)
    assert tuner.threads == 2
    machine.step_s = {2: 6.0, 1: 0.15}  # another process holds a core: two threads wait for each other
    used = machine.run(tuner, 300)
    assert tuner.threads == 1
    assert used[-250:].count(2) <= 2, "the slowdown was not noticed at once"
    machine.step_s = {2: 0.05, 1: 0.09}  # the other process ended
    machine.run(tuner, 3000)  # the periodic re-check (interval grows while the choice holds)
    assert tuner.threads == 2


def test_a_count_the_person_gave_is_kept():
    machine = FakeMachine({3: 1.0, 1: 0.01})
    tuner = ThreadTuner(machine.set_threads, cores=8, fixed=3)
    machine.run(tuner, 500)
    assert machine.switches == [3] and tuner.trials == 0


def test_more_threads_than_cores_is_said_when_the_run_starts(small_corpus):
    from rnn_tui.core.corpus import read_corpus
    from rnn_tui.core.threads import usable_cores
    from rnn_tui.core.trainer import Trainer
    from tests.helpers import tiny_config

    cores = usable_cores()
    many = Trainer(tiny_config(threads=cores + 1), read_corpus(small_corpus))
    assert any(f"--threads {cores + 1} on {cores} cores" in note for note in many.start_notes)
    assert not Trainer(tiny_config(threads=1), read_corpus(small_corpus)).start_notes
