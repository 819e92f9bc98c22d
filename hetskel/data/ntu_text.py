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

Speed: on this project's machines a freshly mapped 4 KiB page costs ~2 us, more than the arithmetic,
so the large temporaries live in a per-thread scratch arena reused from file to file (a few MB).
"""
from __future__ import annotations

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


class _Scratch(threading.local):
    """Per-thread named buffers that only ever grow; ``get`` returns a view of the requested shape."""

    def __init__(self):
        self.bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = math.prod(shape if isinstance(shape, tuple) else (shape,)) * dtype.itemsize
        buf = self.bufs.get(name)
        if buf is None or buf.size < n:
            buf = self.bufs[name] = np.empty(n + n // 4 + 4096, np.uint8)  # headroom for larger files
        return buf[:n].view(dtype).reshape(shape)


_scratch = _Scratch()


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
    value, plain, integer = _decimals(b, pos[0::2], pos[1::2])
    spans = pos.reshape(-1, 2)                                          # (N,2) token start, end in b
    return Tokens(first, value, plain, integer,
                  lambda idx: [raw[i - _PAD:j - _PAD].decode("ascii") for i, j in spans[idx].tolist()])
