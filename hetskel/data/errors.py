"""One error type for bad input, so every reader reports file, sample and field the same way."""
from __future__ import annotations

import reprlib

from hetskel.io import escape

# each part of the location, and the whole message, is shortened and escaped: a 5 MB label or an
# ANSI escape sequence in a frame_dir must give one short, inert terminal line
PART_LIMIT, MESSAGE_LIMIT = 120, 600
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlong, _REPR.maxlevel = 60, 60, 40, 4


def short_repr(value, limit: int = 80) -> str:
    """``repr(value)`` safe for an error message: bounded length and depth (``reprlib``: a deeply
    nested list or a 2**70-digit int cannot blow up), control characters escaped."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return escape(text, limit)


class DataError(ValueError):
    """Bad input data. ``str(e)`` reads ``<file>: sample <s>: field <f>: <what is wrong>``.

    Readers raise this (never a bare numpy/pickle traceback) for anything a user can fix in
    their files; the CLI prints it as one line and exits non-zero. The file, sample and field are
    shortened to ``PART_LIMIT`` characters and the message to ``MESSAGE_LIMIT``, with control
    characters (ANSI escapes, newlines) shown as ``\\xNN``; ``reason`` is the escaped message too.
    """

    def __init__(self, message: str, file=None, sample=None, field=None, line=None):
        self.file, self.sample, self.field, self.line = file, sample, field, line
        self.reason = escape(message, MESSAGE_LIMIT)
        where = []
        if file is not None:
            where.append(escape(f"{file}", PART_LIMIT, keep="tail") + (f":{line}" if line is not None else ""))
        if sample is not None:
            where.append(f"sample {escape(sample, PART_LIMIT)}")
        if field is not None:
            where.append(f"field {escape(repr(field), PART_LIMIT)}")
        super().__init__(": ".join([*where, self.reason]))
