"""Text from outside (a corpus, a checkpoint, a run file, the control channel) made safe to show.

A terminal obeys control characters: ESC starts sequences that set the window title, clear the
screen, move the cursor, make hyperlinks, toggle bracketed paste or (in some terminals) write
files; C1 codes such as U+009B are the same sequences in one character. A model trained on such
a corpus, a byte-level model trained on a binary file, or a hand-made run file produces them.
``visible`` is the one function every place that shows such text passes it through: each control
character becomes a visible one, so it is seen and never obeyed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

CONTROL_PICTURE = 0x2400  # U+2400..U+241F: ␀ ␁ … ␛ … ␟, one per C0 control character
KEPT = "\n\t"  # shown as they are: they move to the next line or tab stop and nothing else

_TABLE: dict[int, str] = {c: chr(CONTROL_PICTURE + c) for c in range(0x20) if chr(c) not in KEPT}
_TABLE[0x7F] = "\u2421"  # ␡ DEL
_TABLE.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})  # C1 controls: no pictures exist
_TABLE.update({c: "\ufffd" for c in range(0xD800, 0xE000)})  # lone surrogates cannot be printed at all


def visible(text: str) -> str:
    """``text`` with every control character but newline and tab made visible: C0 codes as
    Unicode control pictures (ESC as ␛), DEL as ␡, C1 codes as ``\\x9b``; a CR that ends a
    line (CRLF) is dropped, a lone CR shown as ␍. Lone surrogates (undecodable file names)
    become U+FFFD. Text without any of these is returned as is."""
    if text.isprintable():
        return text
    return text.replace("\r\n", "\n").translate(_TABLE)


T = TypeVar("T")


def visible_fields(value: T) -> T:
    """``value`` with every string in it passed through ``visible``: in dataclasses (events),
    lists, tuples and dict values. Other values are returned unchanged."""
    shown: T = _visible_any(value)
    return shown


def _visible_any(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list):
        if not any(isinstance(v, (str, list, tuple, dict)) for v in value):
            return value  # numbers (a loss history): nothing to show differently
        return [_visible_any(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_visible_any(v) for v in value)
    if isinstance(value, dict):
        return {k: _visible_any(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = _visible_any(old)
            if new is not old and new != old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
