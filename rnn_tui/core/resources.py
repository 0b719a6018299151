"""Where the bundled corpora and themes live: inside an installed wheel, or at the repo's top level."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # the rnn_tui package


def bundled_dir(kind: str) -> Path:
    """``corpora`` or ``themes``: the wheel maps the repo's top-level folders to ``rnn_tui/_data``."""
    installed = _PKG / "_data" / kind
    return installed if installed.is_dir() else _PKG.parent / kind


def bundled_corpora() -> dict[str, Path]:
    d = bundled_dir("corpora")
    return {p.stem: p for p in sorted(d.glob("*.txt"))} if d.is_dir() else {}


DEFAULT_CORPUS = "tinyshakespeare"
