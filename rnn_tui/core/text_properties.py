"""Simple properties of a text, one number per character, for finding cells that track them.

Each property is the state *after reading* the character, because that is what a cell can know
at that point: after the ``*`` of ``/*`` the text is inside a comment, after the closing ``/`` it
is not; after a ``(`` the depth is one more; after a newline the line position is 0. Prose and
code are handled by the same rules:

- quotes: inside ``"…"`` (or typographic ``“…”``), across lines; a backslash escapes a quote.
  Single quotes are apostrophes in prose, so only a C character literal (``'x'``, ``'\\n'``) is
  skipped as a unit (a ``"`` in it opens nothing).
- comment: inside ``/* … */`` (across lines), or from ``//`` or ``#`` to the end of the line,
  when not inside quotes (a line comment ends at ``\r`` or ``\n``). In C-like text (it has a
  ``/*`` or an ``#include``/``#define`` line), a ``#`` that begins a line is a preprocessor
  directive, not a comment.
- brace depth (``{}``) and parenthesis depth (``()`` and ``[]``): counted outside comments,
  shifted so that the lowest depth in the text is 0 (a passage may start inside a block).
- line position: characters read since the last newline (0 right after it); a ``\\r`` does not
  move it, so CRLF text counts as LF text does. Wide characters count as one (the model reads
  characters, not terminal cells).
- line start: the character begins a line (the first of the text, or the one after a newline).
- whitespace, upper case, inside a word (letters, digits, ``_``; wide letters too).

Pure Python and numpy: no torch, so a viewer may use it too.
"""

from __future__ import annotations

import re

import numpy as np

# id -> what a person reads on screen; the order is the finder's order among equal correlations
PROPERTIES: dict[str, str] = {
    "quotes": "inside quotes",
    "comment": "inside a comment",
    "brace_depth": "brace depth {}",
    "paren_depth": "bracket depth ()[]",
    "line_position": "position in the line",
    "line_start": "start of a line",
    "whitespace": "whitespace",
    "upper_case": "upper case",
    "in_word": "inside a word",
}

_C_LIKE = re.compile(r"/\*|^[ \t]*#[ \t]*(?:include|define)\b", re.MULTILINE)
_OPEN_QUOTES = {'"': '"', "“": "”"}
_OPENERS = {"{": "brace", "(": "paren", "[": "paren"}
_CLOSERS = {"}": "brace", ")": "paren", "]": "paren"}


def _char_literal_end(text: str, i: int) -> int:
    """If a C character literal (``'x'`` or ``'\\x'``) starts at ``i``, the index of its closing
    quote, else -1."""
    if i + 2 < len(text) and text[i + 1] != "\\" and text[i + 1] != "\n" and text[i + 2] == "'":
        return i + 2
    if i + 3 < len(text) and text[i + 1] == "\\" and text[i + 3] == "'":
        return i + 3
    return -1


def text_properties(text: str) -> dict[str, np.ndarray]:
    """Every property of :data:`PROPERTIES` for ``text``: float64 arrays of ``len(text)``."""
    n = len(text)
    out = {name: np.zeros(n, dtype=np.float64) for name in PROPERTIES}
    quotes, comment = out["quotes"], out["comment"]
    brace, paren, column = out["brace_depth"], out["paren_depth"], out["line_position"]
    close_quote = ""  # the quote that ends the current quotation, "" when outside
    in_block = False  # inside /* */
    block_start = -2  # index of the * that opened it
    in_line = False  # inside // or # (to the end of the line)
    literal_end = -1  # index of the closing ' of a character literal being read
    depth = {"brace": 0, "paren": 0}
    col = 0
    prev = ""
    preprocessor = _C_LIKE.search(text) is not None  # '#' at a line's start is a directive
    line_blank = True  # nothing but spaces since the line began
    for i, ch in enumerate(text):
        if ch == "\n":
            col = 0
        elif ch != "\r":
            col += 1
        if ch in "\r\n":
            in_line = False
        if i <= literal_end:
            pass  # inside 'x': nothing in it opens or closes anything
        elif in_block:
            if prev == "*" and ch == "/" and i > block_start + 1:
                in_block = False
        elif in_line:
            pass
        elif close_quote:
            if ch == close_quote and prev != "\\":
                close_quote = ""
        elif ch in _OPEN_QUOTES:
            close_quote = _OPEN_QUOTES[ch]
        elif ch == "'" and (end := _char_literal_end(text, i)) > 0:
            literal_end = end
        elif prev == "/" and ch == "*":
            in_block, block_start = True, i
        elif (prev == "/" and ch == "/") or (ch == "#" and not (preprocessor and line_blank)):
            in_line = True
        if not (in_block or in_line) and i > literal_end:
            if ch in _OPENERS:
                depth[_OPENERS[ch]] += 1
            elif ch in _CLOSERS:
                depth[_CLOSERS[ch]] -= 1
        quotes[i] = bool(close_quote) and not (in_block or in_line)
        comment[i] = in_block or in_line
        brace[i], paren[i] = depth["brace"], depth["paren"]
        column[i] = col
        line_blank = ch == "\n" or (line_blank and ch in " \t\r")
        prev = ch if not (prev == "\\" and ch == "\\") else ""  # "\\\\" escapes itself
    for name in ("brace_depth", "paren_depth"):
        if n:
            out[name] -= out[name].min()
    starts = out["line_start"]
    if n:
        starts[0] = 1.0
        starts[1:] = [text[i - 1] == "\n" for i in range(1, n)]
    out["whitespace"][:] = [ch.isspace() for ch in text]
    out["upper_case"][:] = [ch.isupper() for ch in text]
    out["in_word"][:] = [ch.isalnum() or ch == "_" for ch in text]
    return out
