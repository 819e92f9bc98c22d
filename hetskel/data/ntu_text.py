"""Exact, vectorised number parsing of whitespace-separated text (the core of the NTU ``.skeleton`` reader).

``tokenize(raw)`` splits the bytes of a file into lines and tokens and converts EVERY token to float64
in a few dozen whole-array numpy passes, instead of one ``float()`` per value (~0.2 us each, which
was 90% of reading an NTU file)::

    >>> tok = tokenize(b"2\\n0.5 -1.25 3\\n")
    >>> tok.count.tolist(), tok.numbers(np.arange(4)).tolist()
    ([1, 3, 0], [2.0, 0.5, -1.25, 3.0])       # tokens per line (the last: after the final \\n)

Exactness: a *plain* token ``-?d*.?d*`` with 1..15 digits is read as an integer mantissa m < 10^15 <
2^53 and k decimals; m / 10^k is ONE correctly rounded IEEE division of two exact doubles, hence
bit-identical to ``float(token)``. Other tokens (exponents such as ``1.5E-05``, nan, inf, 17-digit
body IDs, junk) are converted by ``float()`` one by one, only where ``numbers()`` is asked for them.

How: each token's last 16 bytes are gathered right-aligned into two uint64 words; the bytes before
the token (and a leading '-') are masked off, the '.' is turned into a '0' digit, and digits are
combined 8 per word with three multiply-shift-mask steps (SWAR). With S the digits read with the dot
as a 0 digit, S = I * 10^(k+1) + F and the mantissa is m = S - I * 9 * 10^k.

Memory (issue 14): ``tokenize`` keeps ~26 bytes per token, ~6x a file of short numbers. The reader
uses ``scan`` instead: a per-line table made window by window (``_WINDOW`` bytes), then
``Lines.blocks`` converts only the lines asked for, again window by window; beyond the file it needs
~16 bytes a line and a few MB of scratch. A file of one window is scanned only once (its token edges
are kept for ``blocks``).

Speed: on this project's machines a freshly mapped 4 KiB page costs ~2 us, more than the arithmetic,
so the large temporaries live in a per-thread scratch arena reused from file to file (a few MB).
"""
from __future__ import annotations

import itertools
import math
import threading

import numpy as np

_U = np.uint64


def _bytes8(x: int) -> np.uint64:
    return _U(int.from_bytes(bytes([x]) * 8, "little"))


_HIGH, _LOW7, _ZERO_CHARS, _DOTS, _OVER9 = (_bytes8(v) for v in (0x80, 0x7F, 0x30, 0x2E, 0x76))
# _KEEP2[n]: the two words' masks keeping the last n bytes of a 16-byte window (n = 0..16)
_KEEP2 = np.array([[(1 << 64) - (1 << (8 * (16 - n))) if n > 8 else 0,
                    (1 << 64) - (1 << (8 * (8 - min(n, 8)))) if n else 0] for n in range(17)], dtype=np.uint64)
# by s = decimals + 1 (1..16), or 0 for no '.': 10^s (no '.': 10^17 > S, so I = 0), 9 * 10^(s-1), 10^(s-1)
_DIV = np.array([1e17] + [10.0 ** s for s in range(1, 17)])
_NINE = np.array([0.0] + [9.0 * 10 ** (s - 1) for s in range(1, 17)])
_SCALE = np.array([1.0] + [10.0 ** (s - 1) for s in range(1, 17)])
_PAD = 16
_BLOCK = 1 << 14  # tokens per _decimals call (bounds its ~150 bytes a token of temporaries: ~5 MB)
_WINDOW = 1 << 19  # bytes per window of ``scan`` / ``Lines.blocks`` (bounds their temporaries)


class _Scratch(threading.local):
    """Per-thread named buffers that only ever grow; ``get`` returns a view of the requested shape."""

    def __init__(self):
        self.bufs: dict[str, np.ndarray] = {}
        self.windows = 0

    def get(self, name: str, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = math.prod(shape if isinstance(shape, tuple) else (shape,)) * dtype.itemsize
        buf = self.bufs.get(name)
        if buf is None or buf.size < n:
            buf = self.bufs[name] = np.empty(n + n // 4 + 4096, np.uint8)  # headroom for larger files
        return buf[:n].view(dtype).reshape(shape)


_scratch = _Scratch()
_WINDOWS = itertools.count(1)  # numbers every text written to a "text" buffer, in any thread


def _decimals(b: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """(value, plain, integer), each (n,), for the n tokens b[starts:ends] (b has >= 16 bytes before
    every token end): float64 exact where plain, NaN elsewhere; integer: plain without a '.'.
    Scratch views, valid until the next call in this thread."""
    get, n = _scratch.get, starts.size
    neg = np.equal(b[starts], 45)                                       # a leading '-'
    body = get("body", n, np.intp)                                      # token length without it
    np.subtract(ends, starts, out=body)
    body -= neg
    at = get("at", n, np.intp)
    np.subtract(ends, 16, out=at)
    w = get("w", (n, 2), np.uint64)                                     # the token's last 16 bytes
    # fancy indexing, not np.take: take would first copy the overlapping-window view (16x the file)
    w.view("V16").reshape(n)[:] = np.ndarray((b.size - 15,), "V16", b, 0, (1,))[at]
    keep = get("keep", (n, 2), np.uint64)
    np.take(_KEEP2, body, axis=0, out=keep, mode="clip")                # longer than 16: not plain anyway
    w &= keep                                                           # zero the bytes before the digits
    dot, t = get("dot", (n, 2), np.uint64), get("t", (n, 2), np.uint64)
    np.bitwise_xor(w, _DOTS, out=t)                                     # '.' -> 0x00; ASCII bytes <= 0x7F,
    t += _LOW7                                                          # so adding 0x7F never carries
    np.bitwise_and(t, _HIGH, out=dot)
    dot ^= _HIGH                                                        # 0x80 exactly at each '.'
    np.right_shift(dot, _U(6), out=t)
    w += t                                                              # '.' (0x2E) -> '0' (0x30)
    keep &= _ZERO_CHARS
    w ^= keep                                                           # '0'..'9' -> 0..9; masked stay 0
    np.add(w, _OVER9, out=t)
    t &= _HIGH                                                          # 0x80 where a byte is not 0..9
    plain = get("plain", n, bool)
    np.equal(np.bitwise_or(t[:, 0], t[:, 1], out=at.view(np.uint64)), 0, out=plain)
    counts = np.bitwise_count(dot)
    ndot = counts[:, 0] + counts[:, 1]                                  # '.'s in the token
    np.less_equal(ndot, 1, out=get("ok", n, bool))
    plain &= get("ok", n, bool)
    plain &= body > ndot                                                # at least one digit
    plain &= body <= 15                                                 # m < 10^15 < 2^53
    np.negative(dot, out=t)                                             # 0x80 at and after the '.'
    t &= _HIGH                                                          # (in its word)
    after = np.bitwise_count(t)
    after[:, 1] += counts[:, 0] << 3                                    # '.' in word 0: all of word 1
    s = get("s", n, np.intp)                                            # decimals + 1; 0: no '.'
    np.add(after[:, 0], after[:, 1], out=s, dtype=np.intp)
    w *= _U(2561)                                                       # SWAR: 8 digit bytes -> integer
    w >>= _U(8)
    w &= _U(0x00FF00FF00FF00FF)
    w *= _U(6553601)
    w >>= _U(16)
    w &= _U(0x0000FFFF0000FFFF)
    w *= _U(42949672960001)
    w >>= _U(32)
    w[:, 0] *= _U(100000000)
    w[:, 0] += w[:, 1]
    value, f, g = (get(name, n, np.float64) for name in ("value", "f", "g"))
    value[:] = w[:, 0]                                                  # S, exact where plain
    np.divide(value, np.take(_DIV, s, out=f, mode="clip"), out=f)       # (clip: s > 16 is not plain)
    np.floor(f, out=f)                                                  # I = S // 10^(k+1), exact
    f *= np.take(_NINE, s, out=g, mode="clip")
    value -= f                                                          # m = S - I * 9 * 10^k
    value /= np.take(_SCALE, s, out=f, mode="clip")                     # m / 10^k: one rounding
    bits = value.view(np.uint64)
    bits |= np.left_shift(neg, 63, out=at.view(np.uint64), dtype=np.uint64)  # sign bit (also for -0)
    np.copyto(value, np.nan, where=~plain)
    integer = get("integer", n, bool)
    np.equal(s, 0, out=integer)
    integer &= plain
    return value, plain, integer


def _float_or_nan(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return float("nan")


class Tokens:
    """The whitespace-separated tokens of a file, by line. Line i (0-based) holds tokens
    first[i]..first[i+1]-1, ``count[i]`` of them; ``value`` (N,) float64 is exact where ``plain`` (N,)
    and NaN elsewhere; ``integer`` (N,): plain without a '.'; ``texts(idx)``: the tokens' text."""

    def __init__(self, first: np.ndarray, value, plain, integer, texts):
        self.first, self.count = first, np.diff(first)
        self.value, self.plain, self.integer, self.texts = value, plain, integer, texts

    @classmethod
    def from_lines(cls, lines: list[str]) -> Tokens:
        """The slow route for unusual text (non-ASCII, control characters, a lone \\r): str.split()
        per line, every value left to ``float()`` in ``numbers``."""
        rows = [ln.split() for ln in lines]
        flat = [t for row in rows for t in row]
        first = np.concatenate(([0], np.cumsum([len(r) for r in rows], dtype=np.int64)))
        none = np.zeros(len(flat), bool)
        return cls(first, np.full(len(flat), np.nan), none, none, lambda idx: [flat[k] for k in idx.tolist()])

    @property
    def head(self) -> np.ndarray:
        """(lines,) float64: the value of each line holding exactly one integer token, else NaN."""
        at = np.minimum(self.first[:-1], self.value.size - 1)
        return np.where((self.count == 1) & self.integer[at], self.value[at], np.nan)

    def first_texts(self, lines: np.ndarray) -> list[str]:
        """The first token of each of ``lines`` (each holding at least one)."""
        return self.texts(self.first[lines])

    def blocks(self, info_line: np.ndarray, n_info: int, skip: int, rows: int, width: int):
        """All slots as one block: see ``Lines.blocks``."""
        first = self.first
        yield (0, info_line.size, self.numbers(first[info_line][:, None] + np.arange(1, n_info)),
               self.numbers(np.add(first[info_line + skip][:, None], np.arange(rows * width))))

    def numbers(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """float64 values of tokens ``idx`` (any shape; ``out``: same shape), NaN where not a number."""
        v = np.take(self.value, idx, out=out)
        odd = ~np.take(self.plain, idx)
        if odd.any():  # the rare token that is not a plain decimal (1.5E-05, nan, ...): float()
            v[odd] = [_float_or_nan(s) for s in self.texts(idx[odd])]
        return v


def tokenize(raw: bytes) -> Tokens | None:
    """Tokens of an ASCII file whose only control characters are \\t, \\n and the \\r of \\r\\n: then
    bytes <= 32 are exactly the whitespace of str.split() and \\n the only line break of
    str.splitlines(). None for anything else, which the caller reads with ``Tokens.from_lines``.
    The result holds scratch buffers: it is valid until the next call in this thread."""
    if not raw.isascii():
        return None
    # a copy behind 16 blanks: every token then has 16 bytes before its end (blanks change no token)
    b = _scratch.get("text", len(raw) + _PAD, np.uint8)
    _scratch.windows = next(_WINDOWS)
    b[:_PAD] = 32
    b[_PAD:] = np.frombuffer(raw, np.uint8)
    mask = _scratch.get("mask", b.size + 2, bool)
    mask[0] = mask[-1] = False
    inner = mask[1:-1]
    line_start = np.flatnonzero(np.equal(b, 10, out=inner))
    crlf = np.count_nonzero(b[line_start - 1] == 13)
    tabs = raw.count(b"\t") if b"\t" in raw else 0                     # (`in` is a fast memchr)
    if np.count_nonzero(np.less(b, 32, out=inner)) != line_start.size + crlf + tabs:
        return None  # a lone \r, \v, \f, \0, ...: line breaks or token bytes for str, not here
    line_start += 1
    np.greater(b, 32, out=inner)
    edge = _scratch.get("edge", b.size + 1, bool)
    pos = np.flatnonzero(np.not_equal(mask[1:], mask[:-1], out=edge))  # token starts and ends, alternating
    # tokens before each line start (edges <= it, halved: a token starting right there is not
    # counted) and, as the last entry, all N (the file may end inside a token)
    first = np.searchsorted(pos, np.concatenate(([_PAD], line_start, [b.size])), side="right") // 2
    # the numbers in blocks of _BLOCK tokens: _decimals' ~150 bytes of temporaries per token then
    # stay a few MB whatever the file holds; only value/plain/integer (10 bytes a token) are kept
    n = pos.size // 2
    value = _scratch.get("out_value", n, np.float64)
    plain, integer = _scratch.get("out_plain", n, bool), _scratch.get("out_integer", n, bool)
    for a in range(0, n, _BLOCK):
        z = min(n, a + _BLOCK)
        value[a:z], plain[a:z], integer[a:z] = _decimals(b, pos[2 * a:2 * z:2], pos[2 * a + 1:2 * z:2])
    spans = pos.reshape(-1, 2)                                          # (N,2) token start, end in b
    return Tokens(first, value, plain, integer,
                  lambda idx: [raw[i - _PAD:j - _PAD].decode("ascii") for i, j in spans[idx].tolist()])


# ------------------------------------------------------------------ bounded-memory route (the reader)
def _window(raw: bytes, a: int, z: int) -> np.ndarray:
    """raw[a:z] behind 16 blanks, in the scratch arena (every token then has 16 bytes before its end)."""
    b = _scratch.get("text", z - a + _PAD, np.uint8)
    b[:_PAD] = 32
    b[_PAD:] = np.frombuffer(raw, np.uint8, z - a, a)
    _scratch.windows = next(_WINDOWS)  # tells Lines.blocks that an earlier window was overwritten
    return b


def _edges(b: np.ndarray) -> np.ndarray:
    """Token starts and ends in ``b``, alternating (a scratch view)."""
    mask = _scratch.get("mask", b.size + 2, bool)
    mask[0] = mask[-1] = False
    np.greater(b, 32, out=mask[1:-1])
    edge = _scratch.get("edge", b.size + 1, bool)
    return np.flatnonzero(np.not_equal(mask[1:], mask[:-1], out=edge))


def _cut(raw: bytes, a: int, window: int) -> int:
    """End of the window starting at ``a``: just after its last \\n, else after its last blank or tab,
    else after the token that crosses it; so no token and no \\r\\n spans two windows."""
    z = a + window
    if z >= len(raw):
        return len(raw)
    c = raw.rfind(b"\n", a, z)
    if c < 0:
        c = max(raw.rfind(b" ", a, z), raw.rfind(b"\t", a, z))
    if c < 0:
        c = min((k for k in (raw.find(x, z) for x in (b"\n", b" ", b"\t")) if k >= 0), default=len(raw) - 1)
    return c + 1


class Lines:
    """The per-line table of a file, without a per-token one: ``count`` (lines,) tokens per line,
    ``head`` (lines,) float64 the value of a line holding exactly one integer token (else NaN),
    ``start`` (lines + 1,) the byte offset of each line and, last, the file size. Values are
    converted later, window by window, only for the lines asked for (``blocks``). Made by ``scan``."""

    def __init__(self, raw: bytes, count, head, start, last=None):
        self.raw, self.count, self.head, self.start = raw, count, head, start
        self._last = last  # (a, z, pos) of scan's last window, still in the scratch "text" buffer

    def first_texts(self, lines: np.ndarray) -> list[str]:
        """The first token of each of ``lines`` (each holding at least one)."""
        raw, start = self.raw, self.start
        return [raw[start[k]:start[k + 1]].split(None, 1)[0].decode("ascii") for k in lines.tolist()]

    def blocks(self, info_line: np.ndarray, n_info: int, skip: int, rows: int, width: int):
        """Per run of consecutive slots (~``_WINDOW`` bytes of file each), in file order:
        ``(s, e, info (e-s, n_info-1), joints (e-s, rows*width))`` float64, NaN where not a number.
        Slot k is line info_line[k] (tokens 1..n_info-1 are read) and the ``rows`` lines from
        info_line[k] + skip on, every one of which must hold ``width`` tokens (checked before)."""
        raw, count, start = self.raw, self.count, self.start
        at = start[info_line]
        s, S = 0, info_line.size
        while s < S:
            e = max(s + 1, int(np.searchsorted(at, at[s] + _WINDOW, side="left")))
            i0, i1 = int(info_line[s]), int(info_line[e - 1]) + skip + rows
            a, z = int(start[i0]), int(start[i1])
            last, self._last = self._last, None
            if last is not None and last[0] <= a and z <= last[1] and last[3] == _scratch.windows:
                # scan's last window, still in the scratch buffer, holds them all (a file of one
                # window is scanned once): its edges from line start a to line start z
                b = _scratch.get("text", last[1] - last[0] + _PAD, np.uint8)
                t0, t1 = np.searchsorted(last[2], (a - last[0] + _PAD, z - last[0] + _PAD))
                pos, org = last[2][t0:last[2].size if z == last[1] else t1], last[0]
            else:
                b, org = _window(raw, a, z), a
                pos = _edges(b)
            n = pos.size // 2
            first = np.zeros(i1 - i0 + 1, np.int64)
            np.cumsum(count[i0:i1], out=first[1:])
            if first[-1] != n:
                raise AssertionError(f"window {a}:{z} holds {n} tokens, its lines {first[-1]}")
            value = _scratch.get("win_value", n, np.float64)
            plain = _scratch.get("win_plain", n, bool)
            for c in range(0, n, _BLOCK):
                d = min(n, c + _BLOCK)
                value[c:d], plain[c:d], _ = _decimals(b, pos[2 * c:2 * d:2], pos[2 * c + 1:2 * d:2])
            spans = pos.reshape(-1, 2)
            tok = Tokens(first, value, plain, plain,
                         lambda idx, org=org, spans=spans: [raw[org + i - _PAD:org + j - _PAD].decode("ascii")
                                                           for i, j in spans[idx].tolist()])
            lines = info_line[s:e] - i0
            info = tok.numbers(first[lines][:, None] + np.arange(1, n_info))
            joints = tok.numbers(np.add(first[lines + skip][:, None], np.arange(rows * width)))
            yield s, e, info, joints
            s = e


def scan(raw: bytes, window: int | None = None) -> Lines | None:
    """The ``Lines`` of an ASCII file whose only control characters are \\t, \\n and the \\r of
    \\r\\n (None for anything else, like ``tokenize``), made window by window: the memory it needs
    beyond ``raw`` is ~16 bytes a line plus a few MB, whatever the number of tokens."""
    if not raw.isascii():
        return None
    window = window or _WINDOW
    nl = 0
    for a in range(0, len(raw), window):  # (bytes.count is a byte-by-byte loop, 4x slower)
        z = min(len(raw), a + window)
        nl += np.count_nonzero(np.equal(np.frombuffer(raw, np.uint8, z - a, a), 10,
                                        out=_scratch.get("mask", z - a, bool)))
    count = np.zeros(nl + 1, np.int32)
    head = np.full(nl + 1, np.nan)
    start = np.empty(nl + 2, np.int32 if len(raw) < 2**31 - 1 else np.int64)
    start[0], start[-1] = 0, len(raw)
    a, k0, last = 0, 0, None
    while a < len(raw):
        z = _cut(raw, a, window)
        b = _window(raw, a, z)
        inner = _scratch.get("mask", b.size + 2, bool)[1:-1]
        ends = np.flatnonzero(np.equal(b, 10, out=inner))                  # the \n of this window
        crlf = np.count_nonzero(b[ends - 1] == 13)
        tabs = raw.count(b"\t", a, z) if raw.find(b"\t", a, z) >= 0 else 0  # (find: a fast memchr)
        if np.count_nonzero(np.less(b, 32, out=inner)) != ends.size + crlf + tabs:
            return None  # a lone \r, \v, \f, \0, ...: line breaks or token bytes for str, not here
        pos = _edges(b)
        first = np.searchsorted(pos, np.concatenate(([_PAD], ends + 1, [b.size])), side="right") // 2
        n = np.diff(first)                                                 # tokens of lines k0..k1
        k1 = k0 + ends.size
        start[k0 + 1:k1 + 1] = ends + (a + 1 - _PAD)
        seen = count[k0:k1 + 1]
        new = np.flatnonzero((seen == 0) & (n > 0))                       # lines whose 1st token is here
        seen += n.astype(np.int32)
        if new.size:
            t = first[new]
            v, _, integer = _decimals(b, pos[2 * t], pos[2 * t + 1])
            head[k0 + new] = np.where(integer, v, np.nan)
        last = (a, z, pos, _scratch.windows) if a == 0 and z == len(raw) else None  # a file of one window
        del pos
        a, k0 = z, k1
    head[count != 1] = np.nan
    return Lines(raw, count, head, start, last)
