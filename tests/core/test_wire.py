"""The control channel's messages: every command and event survives the trip, and anything
malformed is refused with a reason instead of being trusted."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from rnn_tui.core import events as ev
from rnn_tui.remote import wire
from tests.helpers import started_event


def payload(frame: bytes) -> bytes:
    (size,) = struct.unpack(">I", frame[:4])
    assert size == len(frame) - 4
    return frame[4:]


@pytest.mark.parametrize(
    "command",
    [
        ev.Pause(),
        ev.Resume(),
        ev.SampleNow(),
        ev.SaveNow(),
        ev.Stop(save=False),
        ev.SetSampling(temperature=0.5),
        ev.SetSampling(top_k=10, prime="ROMEO: «ü»"),
        ev.Explore(),
        ev.Explore(text="int main() {\n}", chars=500, refresh=True),
    ],
)
def test_commands_round_trip(command):
    assert wire.decode_command(payload(wire.encode(command))) == command


def test_events_round_trip_including_arrays_and_nan():
    h = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    probed = wire.decode_event(payload(wire.encode(ev.Probed(step=3, text="hello", h=h, c=None))))
    assert probed.text == "hello" and probed.c is None
    np.testing.assert_allclose(probed.h, h, atol=2e-3)  # float16 on the wire
    progress = ev.Progress(
        steps=[1, 2],
        losses=[2.5, math.nan],
        step=2,
        epoch=0.1,
        lr=1e-3,
        grad_norm=math.inf,
        chars_per_s=10.0,
        elapsed_s=1.0,
        tokens=64,
    )
    back = wire.decode_event(payload(wire.encode(progress)))
    assert back.losses[0] == 2.5 and math.isnan(back.losses[1]) and back.grad_norm == math.inf
    started = started_event(
        run_dir="r", corpus="c", config={"lr": 0.004, "prime": None}, vocab_size=65, max_minutes=3.0
    )
    assert wire.decode_event(payload(wire.encode(started))) == started


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff\xfe", "not a JSON message"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "Launch"}', "unknown message type"),
        (b'{"type": "Started"}', "unknown message type"),  # an event is not a command
        (b'{"type": "Pause", "x": 1}', "unknown field 'x'"),
        (b'{"type": "SetSampling", "temperature": "hot"}', "must be float"),
        (b'{"type": "SetSampling", "top_k": 2.5}', "must be int"),
        (b'{"type": "SetSampling", "top_k": true}', "must be int"),
        (b'{"type": "Stop", "save": "yes"}', "must be bool"),
        (b'{"type": "SetSampling", "temperature": NaN}', "finite"),
        (json.dumps({"type": "SetSampling", "prime": "x" * 20_000}).encode(), "longer than"),
        (b'{"type": "Explore", "chars": 0}', "chars must be between 2 and 10,000"),
        (b'{"type": "Explore", "chars": 10001}', "chars must be between"),
        (b'{"type": "Explore", "chars": "many"}', "must be int"),
        (b'{"type": "Explore", "text": "x"}', "text must have between 2"),
        (b'{"type": "Explore", "text": 5}', "must be str"),
        (b'{"type": "Explore", "refresh": 1}', "must be bool"),
        (json.dumps({"type": "Explore", "asker": "v" * 100}).encode(), "asker is longer"),
    ],
)
def test_malformed_commands_are_refused_with_a_reason(raw, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.decode_command(raw)


def test_frame_reader_splits_joins_and_stops_at_an_oversized_frame():
    frames = wire.encode(ev.Pause()) + wire.encode(ev.Resume())
    reader = wire.FrameReader(wire.MAX_COMMAND_BYTES)
    got = [wire.decode_command(f) for chunk in (frames[:3], frames[3:9], frames[9:]) for f in reader.feed(chunk)]
    assert got == [ev.Pause(), ev.Resume()]
    got = reader.feed(wire.encode(ev.SaveNow()) + struct.pack(">I", 10**7) + b"xx")
    assert [wire.decode_command(f) for f in got] == [ev.SaveNow()]  # what came before still counts
    assert "over the limit" in reader.error
    assert reader.feed(wire.encode(ev.Pause())) == []  # nothing after it is trusted
