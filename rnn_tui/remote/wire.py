"""The control channel's message format: commands and events as length-prefixed JSON.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON: an object whose ``type``
names a command or event class and whose other keys are its fields. JSON, not pickle: a message
from a socket must never be able to run code, and a malformed one is refused with a reason, field
by field, instead of being trusted. Numpy arrays (hidden states) travel as base64 float16.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import struct
import types
import typing
from typing import Any, Union

import numpy as np

from rnn_tui.core import events as ev
from rnn_tui.core.config import MAX_PRIME, RANGES, check_prime
from rnn_tui.core.errors import ConfigError, RnnTuiError

PROTOCOL = 2  # 2: SetSampling and SamplingChanged carry a ticket; SampleNow has no settings
HEADER = struct.Struct(">I")
MAX_COMMAND_BYTES = 64 * 1024  # a command is a few dozen bytes; a prime is capped well below this
MAX_EVENT_BYTES = 64 * 2**20  # hidden states of a big model fit easily
MAX_TEXT = MAX_PRIME  # characters in a string field of a command


class WireError(RnnTuiError):
    pass


@dataclasses.dataclass(frozen=True)
class Hello:
    """The trainer's first frame to a viewer."""

    protocol: int
    pid: int
    run_dir: str


@dataclasses.dataclass(frozen=True)
class Refused:
    """The trainer's answer to a frame it could not accept (the connection stays open)."""

    reason: str


COMMANDS: dict[str, type] = {c.__name__: c for c in typing.get_args(ev.Command)}
EVENTS: dict[str, type] = {c.__name__: c for c in (*typing.get_args(ev.Event), Hello, Refused)}


# ---------------------------------------------------------------- encoding


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value, dtype=np.float16)
        return {"__array__": base64.b64encode(data.tobytes()).decode("ascii"), "shape": list(data.shape)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}  # JSON has no NaN or inf
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def encode(message: Any) -> bytes:
    """One frame: the header and the JSON of a command or event dataclass."""
    body = {"type": type(message).__name__}
    for f in dataclasses.fields(message):
        body[f.name] = _plain(getattr(message, f.name))
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(payload)) + payload


# ---------------------------------------------------------------- decoding


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            raw = base64.b64decode(value["__array__"], validate=True)
            return np.frombuffer(raw, dtype=np.float16).reshape(value["shape"]).astype(np.float32)
        if "__float__" in value:
            return float(value["__float__"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _check(name: str, value: Any, hint: Any) -> Any:
    """``value`` if it is of type ``hint`` (the few types commands use), else a WireError."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        for option in typing.get_args(hint):
            if option is not type(None):
                return _check(name, value, option)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise WireError(f"field {name!r} must be a finite number")
        return float(value)
    if hint is str and isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise WireError(f"field {name!r} is longer than {MAX_TEXT} characters")
        return value
    raise WireError(f"field {name!r} must be {getattr(hint, '__name__', hint)}, not {type(value).__name__}")


def decode(payload: bytes, registry: dict[str, type], *, strict: bool) -> Any:
    """The message in ``payload``; ``strict`` checks every field's type and range (for what a
    trainer accepts). Whatever the bytes, the answer is a message or a ``WireError``: deep
    nesting (RecursionError), integers too long to parse or to convert, anything."""
    try:
        return _decode(payload, registry, strict=strict)
    except WireError:
        raise
    except RecursionError:
        raise WireError("message nested too deeply") from None
    except Exception as exc:
        raise WireError(f"malformed message ({type(exc).__name__}: {str(exc)[:80]})") from None


def _decode(payload: bytes, registry: dict[str, type], *, strict: bool) -> Any:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WireError("not a JSON message") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise WireError("a message must be a JSON object with a 'type'")
    name = body.pop("type")
    cls = registry.get(name)
    if cls is None:
        raise WireError(f"unknown message type {name[:40]!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(body) - set(fields)
    if extra:
        raise WireError(f"unknown field {sorted(extra)[0][:40]!r} in {name}")
    hints = typing.get_type_hints(cls, vars(ev))
    kwargs = {}
    try:
        for key, value in body.items():
            kwargs[key] = _check(key, value, hints[key]) if strict else _restore(value)
            if strict and kwargs[key] is not None:
                _check_range(key, kwargs[key])
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WireError(f"bad {name}: {exc}") from None


def _check_range(name: str, value: Any) -> None:
    """A command's numbers in the ranges the options have (``TrainConfig``'s, in one place)."""
    try:
        if name in RANGES:
            RANGES[name].check(name, value)
        elif name == "prime":
            check_prime(value)
    except ConfigError as exc:
        raise WireError(f"field {exc}") from None


def decode_command(payload: bytes) -> ev.Command:
    return decode(payload, COMMANDS, strict=True)


def decode_event(payload: bytes) -> Any:
    return decode(payload, EVENTS, strict=False)


class FrameReader:
    """Splits a byte stream into frames. A frame longer than ``limit`` sets ``error``: the
    stream cannot be followed after it, so the connection should be closed (the frames before
    it are still returned)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buffer = bytearray()
        self.error: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self.error:
            return []
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if size > self.limit:
                self.error = f"message of {size:,} bytes is over the limit of {self.limit:,}"
                self.buffer.clear()
                break
            if len(self.buffer) < HEADER.size + size:
                break
            frames.append(bytes(self.buffer[HEADER.size : HEADER.size + size]))
            del self.buffer[: HEADER.size + size]
        return frames
