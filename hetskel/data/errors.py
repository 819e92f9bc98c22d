"""One error type for bad input, so every reader reports file, sample and field the same way."""
from __future__ import annotations


class DataError(ValueError):
    """Bad input data. ``str(e)`` reads ``<file>: sample <s>: field <f>: <what is wrong>``.

    Readers raise this (never a bare numpy/pickle traceback) for anything a user can fix in
    their files; the CLI prints it as one line and exits non-zero.
    """

    def __init__(self, message: str, file=None, sample=None, field=None, line=None):
        self.file, self.sample, self.field, self.line = file, sample, field, line
        self.reason = message
        where = []
        if file is not None:
            where.append(f"{file}" + (f":{line}" if line is not None else ""))
        if sample is not None:
            where.append(f"sample {sample}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(": ".join([*where, message]))
