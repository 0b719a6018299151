"""The trainer's control socket, without a trainer: who may connect, what is refused, what a
late viewer is shown first."""

from __future__ import annotations

import os
import queue
import socket
import stat
import struct
import time

import pytest

from rnn_tui.core import events as ev
from rnn_tui.core.runs import RunDirError
from rnn_tui.remote import wire
from rnn_tui.remote.client import SocketLink
from rnn_tui.remote.server import ControlServer
from rnn_tui.remote.status import RunLock, live_trainer, read_status, run_info, write_status
from tests.helpers import started_event


@pytest.fixture
def server(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    commands: queue.Queue = queue.Queue()
    lock = RunLock(run_dir).acquire()  # as the session's host does (rnn_tui/host/serve.py)
    srv = ControlServer(run_dir, commands.put).start()
    write_status(run_dir, state="running", pid=os.getpid(), host=socket.gethostname(), socket=str(srv.path))
    srv.commands = commands
    yield srv
    srv.close()
    lock.release()


def connect(srv) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(srv.path))
    return s


def read_messages(s: socket.socket, until) -> list:
    """Messages from the trainer until ``until(messages)`` holds (or the connection ends)."""
    reader, got = wire.FrameReader(wire.MAX_EVENT_BYTES), []
    while not until(got):
        data = s.recv(1 << 16)
        if not data:
            break
        got += [wire.decode_event(f) for f in reader.feed(data)]
    return got


def started(step=0) -> ev.Started:
    return started_event(step=step)


def progress(step) -> ev.Progress:
    return ev.Progress(
        steps=[step],
        losses=[1.0],
        step=step,
        epoch=0.0,
        lr=1e-3,
        grad_norm=1.0,
        chars_per_s=1.0,
        elapsed_s=1.0,
        tokens=step,
    )


def test_only_the_owner_can_reach_the_socket(server):
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.run_dir).st_mode) == 0o700
    status = read_status(server.run_dir)
    assert status["state"] == "running" and status["pid"] == os.getpid()
    assert run_info(server.run_dir).state == "running"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_users_process_cannot_connect(server):
    pid = os.fork()
    if pid == 0:  # the child becomes 'nobody' and tries
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(server.path))
            code = 0  # connected: the test fails
        except PermissionError:
            code = 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 1, "another user reached the trainer's socket"


def test_a_peer_with_another_uid_is_refused_even_past_the_file_permissions(server):
    server.allowed_uid = os.getuid() + 1  # as if we were somebody else
    s = connect(server)
    assert s.recv(100) == b""  # closed without a word
    assert "refused a connection from uid" in (server.run_dir / "control.log").read_text()


def test_malformed_oversized_and_unknown_messages_are_refused_and_serving_goes_on(server):
    s = connect(server)
    frame = lambda b: struct.pack(">I", len(b)) + b  # noqa: E731
    s.sendall(
        frame(b"garbage") + frame(b'{"type": "Launch"}') + frame(b'{"type": "Pause", "x": 1}') + wire.encode(ev.Pause())
    )
    got = read_messages(s, lambda m: sum(isinstance(x, wire.Refused) for x in m) >= 3)
    reasons = [m.reason for m in got if isinstance(m, wire.Refused)]
    assert "not a JSON message" in reasons[0] and "unknown message type" in reasons[1] and "unknown field" in reasons[2]
    assert server.commands.get(timeout=5) == ev.Pause()  # the good one still went through
    s.sendall(struct.pack(">I", 10**8))  # a header announcing 100 MB
    got = read_messages(s, lambda m: any(isinstance(x, wire.Refused) for x in m))
    assert "over the limit" in got[-1].reason
    assert s.recv(100) == b""  # that connection is closed...
    s2 = connect(server)  # ...and the server still serves others
    s2.sendall(wire.encode(ev.Resume()))
    assert server.commands.get(timeout=5) == ev.Resume()
    log = (server.run_dir / "control.log").read_text()
    assert log.count("refused a message") == 4


def test_a_late_viewer_is_brought_up_to_date(server):
    server.publish(started())
    server.publish(ev.SamplingChanged(0.8, 0, ""))
    for step in (10, 20, 30):
        server.publish(progress(step))
    server.publish(ev.Evaluated(step=30, val_loss=1.5, best_val=1.4, is_best=False, seconds=0.1))
    server.publish(ev.Sampled(step=30, prime="", text="hello", temperature=0.8, top_k=0))
    server.publish(ev.StateChanged("training"))
    link = SocketLink(server.run_dir)
    link.start()
    try:
        deadline = time.monotonic() + 5
        got: list = []
        while time.monotonic() < deadline and not any(isinstance(e, ev.StateChanged) for e in got):
            got += link.poll()
            time.sleep(0.01)
        first = got[0]
        assert isinstance(first, ev.Started) and first.step == 30 and first.best_val == 1.4 and first.last_val == 1.5
        catch_up = next(e for e in got if isinstance(e, ev.Progress))
        assert catch_up.step == 30 and catch_up.losses == []  # the points come from metrics.jsonl
        assert any(isinstance(e, ev.Sampled) and e.text == "hello" for e in got)
        server.publish(progress(40))  # and then live
        deadline = time.monotonic() + 5
        live = []
        while time.monotonic() < deadline and not live:
            live = [e for e in link.poll() if isinstance(e, ev.Progress)]
            time.sleep(0.01)
        assert live[0].step == 40
        link.send(ev.SaveNow())
        assert server.commands.get(timeout=5) == ev.SaveNow()
    finally:
        link.close()


def test_a_viewer_that_does_not_read_cannot_stall_the_trainer(server):
    s = connect(server)  # connects, never reads
    deadline = time.monotonic() + 5
    while server.viewer_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.viewer_count == 1
    big = ev.Sampled(step=1, prime="", text="x" * 50_000, temperature=1.0, top_k=0)
    t0 = time.monotonic()
    for _ in range(3000):
        server.publish(big)
    assert time.monotonic() - t0 < 20
    deadline = time.monotonic() + 5
    while server.viewer_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.viewer_count == 0  # dropped once its queue filled
    assert "not reading" in (server.run_dir / "control.log").read_text()
    s.close()


def test_a_stale_socket_never_blocks_a_new_server(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = ControlServer(run_dir, lambda c: None).start()
    first.sock.close()  # the trainer is killed: its socket file stays behind
    first.sock = None
    assert first.path.exists()
    second = ControlServer(run_dir, lambda c: None).start()
    try:
        assert second.path == first.path and socket.socket(socket.AF_UNIX).connect_ex(str(second.path)) == 0
    finally:
        second.close()


def test_the_run_lock_admits_one_trainer_and_outlives_no_process(tmp_path):
    """No second trainer on a run, whatever the socket does; and a dead trainer's run is
    "crashed" even when its old pid now belongs to another process."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = RunLock(run_dir).acquire()
    write_status(run_dir, state="running", pid=os.getpid(), host=socket.gethostname(), socket=None)
    assert live_trainer(run_dir) is not None and run_info(run_dir).state == "running"
    with pytest.raises(RunDirError, match=f"being trained already \\(pid {os.getpid()}\\)"):
        RunLock(run_dir).acquire()
    lock.release()  # what the kernel does when the trainer dies
    # the status still says running, with a live pid (ours): the free lock says otherwise
    assert live_trainer(run_dir) is None and run_info(run_dir).state == "crashed"
    RunLock(run_dir).acquire().release()


def explored(asker: str) -> ev.Explored:
    import numpy as np

    h = np.zeros((1, 4, 2), np.float32)
    return ev.Explored(
        asker=asker,
        step=1,
        text="abcd",
        cell="lstm",
        h=h,
        c=h,
        top_chars="a" * 20,
        top_probs=np.zeros((4, 5), np.float32),
        p_next=np.zeros(4, np.float32),
        loss=1.0,
        cells=[],
        saturation=None,
        memory_k=[1],
        memory_grad=[0.1],
        memory_flip=[0.1],
        seq_len=100,
        seconds=0.1,
    )


def test_an_explorer_answer_goes_to_the_viewer_that_asked_only(server):
    asking, other = SocketLink(server.run_dir), SocketLink(server.run_dir)
    asking.start()
    other.start()
    try:
        deadline = time.monotonic() + 5
        while server.viewer_count < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        asking.send(ev.Explore(chars=300, asker="viewer-999"))  # a viewer cannot pick whom it is answered as
        command = server.commands.get(timeout=5)
        assert isinstance(command, ev.Explore) and command.chars == 300 and command.asker.startswith("viewer-")
        assert command.asker != "viewer-999"
        server.publish(explored(command.asker))
        server.publish(explored("viewer-999"))
        server.publish(ev.StateChanged("paused"))  # after the answer, on the same stream
        got: dict[SocketLink, list] = {asking: [], other: []}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
            any(isinstance(e, ev.StateChanged) for e in events) for events in got.values()
        ):
            for link, events in got.items():
                events += link.poll()
            time.sleep(0.01)
        assert [e.asker for e in got[asking] if isinstance(e, ev.Explored)] == [command.asker]
        assert not any(isinstance(e, ev.Explored) for e in got[other])
        assert not any(isinstance(e, ev.Explored) for e in server.record.events(None))
    finally:
        asking.close()
        other.close()
