"""Opening a file that someone else may have prepared: only a regular file is read.

A named pipe blocks the reader until something writes to it, a character device (``/dev/zero``,
a symlink to it) never ends, and a directory cannot be read at all. Corpora and checkpoints are
opened here: without blocking (``O_NONBLOCK``: a FIFO opens at once), then checked with ``fstat``
on the open descriptor, so the file checked is the file read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import RnnTuiError


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular_reason(path: Path, mode: int) -> str | None:
    """One line saying why ``path`` (with ``mode``, as ``stat`` follows links) cannot be read as
    a file; None when it can."""
    kind = kind_of(mode)
    if kind is None:
        return None
    via = " (through a symbolic link)" if path.is_symlink() else ""
    return f"{path} is {kind}{via}, not a regular file"


def open_regular(path: str | Path, error: type[RnnTuiError], what: str) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file; else ``error`` with the reason.

    ``what`` names the file in messages ("corpus", "checkpoint")."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise error(f"{what} is a directory, not a file: {p}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{what} is a directory, not a file: {p}")
        reason = not_regular_reason(p, mode)
        if reason is not None:
            raise error(f"{what} {reason}; save it to a file first")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, tail_bytes: int | None = None, limit: int | None = None) -> bytes | None:
    """A regular file's bytes (its last ``tail_bytes``), or None if it is missing, unreadable, not
    a regular file (a named pipe would block the reader, a device never end) or over ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (limit is not None and st.st_size > limit):
            return None
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            if tail_bytes is not None and st.st_size > tail_bytes:
                f.seek(st.st_size - tail_bytes)
            return f.read()
    except OSError:
        return None
    finally:
        os.close(fd)
