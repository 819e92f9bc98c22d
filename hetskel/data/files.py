"""Reading a whole input file safely: a regular file only, of bounded size, as bytes.

A FIFO named like a data file would block a reader forever and ``/dev/zero`` never ends, so the
file is opened without blocking and checked with ``fstat`` on the open descriptor (no race with a
path swapped after the check), and its size is compared with a limit before anything is allocated.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from hetskel.data.errors import DataError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: "str | Path", max_bytes: int, note: str = "(raise max_bytes to read it anyway)") -> bytes:
    """All bytes of the regular file ``path`` (at most ``max_bytes``), else a ``DataError`` naming it:
    missing, unreadable, not a regular file, over the limit (``note`` says which limit to raise), or
    grown while being read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError("no such file", file=path) from None
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", file=path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            raise DataError(f"is {kind}, not a regular file: not read" if kind != "not a regular file"
                            else "is not a regular file: not read", file=path)
        if st.st_size > max_bytes:
            raise DataError(f"is {st.st_size / 2**20:.1f} MiB, over the limit of {max_bytes / 2**20:.1f} MiB "
                            f"{note}", file=path)
        chunks, left = [], st.st_size + 1  # +1: a file that grew since fstat is noticed, not read on
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise DataError("grew while being read: not read", file=path)
        return b"".join(chunks)
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", file=path) from None
    finally:
        os.close(fd)
