"""The one restricted unpickler of hetskel: pickles are data, never code.

``unpickle(path)`` rebuilds only plain containers, scalars and numpy arrays. A pickle that asks for
anything else (``os.system``, ``builtins.eval``, a class of some library, ...) is refused with
``DataError`` before that object is ever called. Arrays are built only through numpy's own
reconstruct path, with shape x itemsize checked against the pickle's own size before anything is
allocated, and declared lengths are read through a size-capped reader, so a tiny file cannot ask for
gigabytes. ``hetskel.data.pyskl.load_pyskl`` is its one caller.
"""
from __future__ import annotations

import builtins
import collections
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from hetskel.data.errors import DataError, short_repr


# ---------------------------------------------------------------------------------------------
# Restricted unpickling
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """``(module, name) -> object`` for everything a PYSKL pickle may reference.

    Both numpy spellings are listed because files written with numpy 1.x say ``numpy.core`` and
    files written with numpy 2.x say ``numpy._core``; we resolve both to the installed functions
    without importing the deprecated ``numpy.core`` alias. ``_frombuffer`` is how protocol-5
    pickles rebuild arrays; ``_codecs.encode`` is how protocol-2 pickles store bytes.
    """
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    import _codecs

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _codecs.encode,
                                           ("collections", "OrderedDict"): collections.OrderedDict}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    for name in ("set", "frozenset", "bytearray", "bytes", "str", "int", "float", "complex", "bool",
                 "list", "tuple", "dict", "slice"):
        # "__builtin__" is how Python 2 and protocol <= 2 pickles spell "builtins"
        allowed[("builtins", name)] = allowed[("__builtin__", name)] = getattr(builtins, name)
    return allowed


class _ConstructorToken:
    """What ``numpy.ndarray`` resolves to in a pickle: accepted as the subtype argument of the
    safe array rebuilder (``_reconstruct(ndarray, (0,), b'b')``, the way numpy pickles arrays), but
    never callable: ``ndarray(shape, dtype)`` would allocate whatever shape the file declares."""

    def __init__(self, path):
        self._path = path

    def __call__(self, *args, **kwargs):
        raise DataError("refused to load: the pickle calls the numpy.ndarray constructor directly (arrays "
                        "are only rebuilt through numpy's own pickle path)", file=self._path)


class _PlainDataUnpickler(pickle._Unpickler):
    """Unpickler whose ``find_class`` only hands out plain-data constructors (see ``_allowed_globals``).

    Every callable a pickle can invoke (REDUCE, NEWOBJ, INST, OBJ, BUILD) must first be fetched
    through ``find_class``, so refusing there means a hostile ``__reduce__`` never runs.

    Bounded: nothing is allocated that the file does not pay for. Arrays are rebuilt only through
    numpy's reconstruct path (``_reconstruct`` of an empty array, then BUILD with the state
    ``(shape, dtype, rawdata)``, or protocol 5's ``_frombuffer``), and the state is checked first:
    shape x itemsize must equal the bytes the pickle itself carries, and be at most the file's size.
    The constructors that take a size (``bytes(n)``, ``bytearray(n)``) or expand their argument
    (``str(obj)``: a repr; ``list("...")``) are refused, and a counted opcode (``BINBYTES8``,
    ``BYTEARRAY8``, ...) whose length is past the file's size is refused before its buffer is made.
    It is the pure-Python unpickler (the C one allocates a declared length before reading it), fed
    from a reader that never reads past the file's end.
    """

    def __init__(self, f, path, size: int):
        super().__init__(_BoundedReader(f, size), encoding="latin1")  # latin1: Python 2 numpy pickles
        self._path, self._size = path, size
        self._allowed = _allowed_globals()
        wrap = _bounded_constructors(path, size)
        for key in list(self._allowed):
            if (key[1] in wrap and key[0] in ("builtins", "__builtin__")) or \
                    key[1] in ("_reconstruct", "_frombuffer", "scalar"):
                self._allowed[key] = wrap[key[1]]
        self._allowed[("numpy", "ndarray")] = _ConstructorToken(path)
        self.dispatch = {**self.dispatch, pickle.BUILD[0]: _PlainDataUnpickler._load_build,
                         pickle.BYTEARRAY8[0]: _PlainDataUnpickler._load_bytearray8}

    def _refuse(self, what: str) -> DataError:
        return DataError(f"refused to load: {what}", file=self._path)

    def find_class(self, module: str, name: str):
        obj = self._allowed.get((module, name))
        if obj is None:
            raise DataError(f"refused to load: the pickle asks for {module}.{name}, which is not plain "
                            f"data (hetskel only unpickles containers, scalars and numpy arrays)",
                            file=self._path)
        return obj

    def _load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._size:
            raise self._refuse(f"a bytearray declares {n} bytes, more than the whole file ({self._size})")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    def _load_build(self):
        state = self.stack[-1]
        inst = self.stack[-2]
        if isinstance(inst, np.ndarray):
            _check_array_state(state, self._size, self._refuse)
        elif not isinstance(inst, (np.dtype, np.generic, collections.OrderedDict, set, frozenset)):
            raise self._refuse(f"BUILD of a {type(inst).__name__}")
        pickle._Unpickler.load_build(self)


class _BoundedReader:
    """File reader for the unpickler: never reads past the file's size, so a declared length
    larger than the file is a short read (an error), never an allocation."""

    def __init__(self, f, size: int):
        self._f, self._left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        n = self._f.readinto(view[:min(len(view), self._left)])
        self._left -= n or 0
        return n

    def readline(self) -> bytes:
        data = self._f.readline(self._left)
        self._left -= len(data)
        return data

    def peek(self, n: int = 0) -> bytes:
        return self._f.peek(n)[:self._left] if hasattr(self._f, "peek") else b""


def _check_array_state(state, size: int, refuse) -> None:
    """The BUILD state of an array, ``([version,] shape, dtype, is_fortran, rawdata)``: checked
    before numpy's ``__setstate__`` allocates ``shape``."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise refuse("an array state that is not numpy's (version, shape, dtype, fortran, data)")
    shape, dtype, raw = state[-4], state[-3], state[-1]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape) or len(shape) > 32:
        raise refuse("an array shape that is not a tuple of at most 32 non-negative integers")
    if not isinstance(dtype, np.dtype):
        raise refuse("an array whose dtype is not a numpy dtype")
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    if dtype.hasobject:
        if not isinstance(raw, list) or len(raw) != count:
            raise refuse(f"an object array of {count} elements whose data is not a list of as many")
        return
    if not isinstance(raw, (bytes, bytearray, str)) or len(raw) != nbytes or nbytes > size:
        raise refuse(f"an array of shape {short_repr(shape)} and dtype {dtype} ({nbytes} bytes) whose data in "
                     f"the file is {len(raw) if isinstance(raw, (bytes, bytearray, str)) else 'not'} bytes "
                     f"(the file is {size} bytes)")


def _bounded_constructors(path, size: int) -> dict:
    """Allowed constructors that could allocate more than the file pays for, made safe."""
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    def refuse(what):
        return DataError(f"refused to load: {what}", file=path)

    def buffer(kind):
        def make(*args):
            # bytes(b"..."), bytearray(b"...") and (str, encoding) as pickles write them; never a size
            if args and (not isinstance(args[0], (bytes, bytearray, str)) or len(args) > 3):
                raise refuse(f"{kind}() of a {type(args[0]).__name__} (only bytes or "
                             f"text are plain data; {kind}(n) would allocate n bytes)")
            return getattr(builtins, kind)(*args)
        return make

    def container(kind):
        def make(*args):
            # a container of items the pickle has built (list/tuple/set/dict), never of a str or a range
            if args and not isinstance(args[0], (list, tuple, set, frozenset, dict)):
                raise refuse(f"{kind}() of a {type(args[0]).__name__}")
            return getattr(builtins, kind)(*args)
        return make

    def text(*args):
        if args and not isinstance(args[0], (str, bytes, bytearray)):
            raise refuse(f"str() of a {type(args[0]).__name__} (its repr could be any size)")
        return str(*args)

    def reconstruct(subtype, shape, dtype_code):
        if not isinstance(subtype, _ConstructorToken) or shape not in ((0,), [0], 0) or \
                not isinstance(dtype_code, (bytes, str)) or len(dtype_code) > 8:
            raise refuse("an array rebuilt with a non-empty initial shape (numpy pickles start from (0,))")
        return multiarray._reconstruct(np.ndarray, (0,), b"b")

    def frombuffer(buf, dtype, shape, order):
        if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype) \
                or dtype.hasobject:
            raise refuse("an out-of-band array that is not a plain numeric buffer")
        return numeric._frombuffer(buf, dtype, shape, order)  # a view: checks the size, allocates nothing

    def scalar(dtype, *args):
        if not isinstance(dtype, np.dtype) or dtype.itemsize > 4096:
            raise refuse("a numpy scalar of a dtype that is not plain and small")
        if not dtype.hasobject and (len(args) != 1 or not isinstance(args[0], (bytes, str))
                                    or len(args[0]) != dtype.itemsize):
            raise refuse(f"a numpy scalar of dtype {dtype} whose data is not {dtype.itemsize} bytes")
        return multiarray.scalar(dtype, *args)

    return {"bytes": buffer("bytes"), "bytearray": buffer("bytearray"), "str": text,
            "list": container("list"), "tuple": container("tuple"), "set": container("set"),
            "frozenset": container("frozenset"), "dict": container("dict"),
            "_reconstruct": reconstruct, "_frombuffer": frombuffer, "scalar": scalar}


def unpickle(path: Path) -> Any:
    """The plain data in the pickle at ``path`` (containers, scalars, numpy arrays), else a ``DataError``."""
    if not path.exists():
        raise DataError("no such file", file=path)
    if not path.is_file():
        raise DataError("is not a file (expected a PYSKL .pkl annotation file)", file=path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _PlainDataUnpickler(f, path, size).load()
    except DataError:
        raise
    except MemoryError:
        raise DataError("out of memory while reading the pickle", file=path) from None
    except RecursionError:
        raise DataError("the pickle is nested too deeply", file=path) from None
    except Exception as e:  # corrupt pickles raise anything from EOFError to struct.error
        raise DataError(f"cannot read the pickle ({type(e).__name__}: {short_repr(str(e), 200)}); the file is "
                        f"truncated, corrupt or not a pickle", file=path) from None
