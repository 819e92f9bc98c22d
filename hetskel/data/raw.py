"""Readers for the common raw forms of skeleton files, each checked against a layout.

Every reader returns a float32 array ``(M, T, V, C)`` (M persons, T frames, V = the layout's joints,
C = its ``dims``), or ``(array, scores)`` with scores ``(M, T, V)`` when ``return_scores=True``
(``None`` when the file has no confidence), ready for ``hetskel.from_arrays``::

    x = read_joint_rows("clip01.txt", "kinect20_msr")            # T*V rows "x y z [confidence]"
    x = read_npy("clip01.npz", "ntu25", key="skeleton")          # (T,V,C) or (M,T,V,C)
    x = read_mat("a1_s1_t1_skeleton.mat", "kinect20_utd")        # picks the single array: d_skel (V,C,T)
    x, s = read_csv("clip01.csv", "coco17", return_scores=True)  # header optional

Bad input gives one ``DataError`` naming the file (and the line for text), never a numpy
traceback. Files are read whole, at most ``max_bytes`` (default 512 MiB), and arrays stored in
``.npy``/``.npz``/``.mat`` are checked by their headers before they are inflated, so a small
compressed file cannot ask for GiBs. ``.npy``/``.npz`` are loaded with ``allow_pickle=False``.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Iterable, NoReturn

import numpy as np

from hetskel.data.errors import DataError
from hetskel.data.files import read_regular_file
from hetskel.layouts import LayoutError, get_layout

MAX_BYTES = 512 * 2**20      # a file read whole
MAX_ARRAY_BYTES = 2 * 2**30  # an array stored (possibly compressed) in .npz / .mat
COLUMN_NAMES = {"frame": "frame", "frame_id": "frame", "frameid": "frame", "t": "frame", "time": "frame",
                "person": "person", "body": "person", "person_id": "person", "body_id": "person", "m": "person",
                "joint": "joint", "joint_id": "joint", "jointid": "joint", "v": "joint", "keypoint": "joint",
                "x": "x", "y": "y", "z": "z", "u": "x", "v_": "y", "depth": "z",
                "score": "score", "confidence": "score", "conf": "score", "c": "score", "visibility": "score",
                "_": "_", "skip": "_"}
AXES_ORDERS = ("MTVC", "TVC", "VCT", "CTVM", "VTC", "TCV")


def _layout(layout):
    try:
        return get_layout(layout)
    except LayoutError as e:
        raise DataError(str(e), field="layout") from None


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    return read_regular_file(path, max_bytes)


# ---------------------------------------------------------------------------------------------
# Text rows and CSV
def _split(line: str, delim: str | None) -> list[str]:
    return [t.strip() for t in line.split(delim)] if delim else line.split()


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _parse_table(text: str, path, delim: str | None, header: "bool | str") -> tuple[np.ndarray, list | None, int]:
    """Text -> float64 ``(rows, n)``, the header's names (or None), and the file line of row 0.
    Blank lines and lines starting with ``#`` are skipped; the first bad line is named."""
    lines = text.splitlines()
    content = [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not content:
        raise DataError("is empty (no data rows)", file=path)
    names = None
    first = _split(content[0][1], delim)
    if header is True or (header == "auto" and not all(_is_number(t) for t in first)):
        names = [t.strip().strip('"').lower() for t in first]
        content = content[1:]
        if not content:
            raise DataError("has a header but no data rows", file=path)
    ncols = len(_split(content[0][1], delim))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(io.StringIO("\n".join(ln for _, ln in content)), dtype=np.float64, ndmin=2,
                             delimiter=delim, comments=None)
        if arr.shape == (len(content), ncols) and np.isfinite(arr).all():
            return arr, names, content[0][0]
    except ValueError:
        pass
    # slow path, bad files only: the first bad line
    raise_first_bad_row(((n, _split(ln, delim)) for n, ln in content), ncols, path,
                        f"the first data row has {ncols}")


def raise_first_bad_row(rows: Iterable[tuple[int, list[str]]], ncols: int, path, expected: str) -> NoReturn:
    """The ``DataError`` for the first bad row of a numeric table (``(line number, tokens)`` pairs):
    a wrong column count (``expected`` says what was expected), a non-numeric or non-finite value."""
    for n, toks in rows:
        if len(toks) != ncols:
            raise DataError(f"has {len(toks)} columns, {expected}", file=path, line=n)
        for t in toks:
            try:
                v = float(t)
            except ValueError:
                raise DataError(f"non-numeric value {t[:40]!r}", file=path, line=n) from None
            if not np.isfinite(v):
                raise DataError(f"non-finite value {t[:40]!r}", file=path, line=n)
    raise DataError("cannot be parsed as a table of numbers", file=path)


def _looks_like_ids(col: np.ndarray, block: int) -> bool:
    """Integer-valued, non-decreasing and constant over each block of ``block`` rows (a frame id)."""
    if not np.all(col == np.round(col)) or np.any(np.diff(col) < 0) or len(col) % block:
        return False
    b = col.reshape(-1, block)
    return bool(np.all(b == b[:, :1]))


def _auto_columns(arr: np.ndarray, V: int, C: int, path) -> list[str]:
    n = arr.shape[1]
    coords = ["x", "y", "z"][:C]
    if n == C:
        return coords
    has_ids = _looks_like_ids(arr[:, 0], V)
    if n == C + 2 and has_ids:
        return ["frame", *coords, "score"]
    if n == C + 1:
        if has_ids:
            return ["frame", *coords]
        last = arr[:, -1]
        if np.all((last >= 0) & (last <= 1)) or np.all(np.isin(last, (0, 1, 2))):
            return [*coords, "score"]
    if n in (V * C, V * (C + 1), V * C + 1, V * (C + 1) + 1):  # one row per frame (wide form)
        return ["wide"]
    raise DataError(f"has {n} columns per row; cannot tell which are coordinates for a {C}D layout of {V} "
                    f"joints (expected {C} coordinates, optionally a leading frame id and a trailing "
                    f"confidence): pass columns=, e.g. 'frame,person,x,y,z' or 'x,y,z,score'", file=path)


def _wide(arr: np.ndarray, V: int, C: int, path, first_line: int):
    n = arr.shape[1]
    if n % V:  # leading frame id
        arr = arr[:, 1:]
        n -= 1
    per = n // V
    x = arr.reshape(len(arr), V, per)
    return x[None, :, :, :C], (x[None, :, :, C] if per == C + 1 else None)


def _rows_to_array(arr: np.ndarray, cols: list[str], V: int, C: int, path, first_line: int):
    """Rows with named columns -> ``(M, T, V, C)`` and scores ``(M, T, V)`` or None."""
    want = ["x", "y", "z"][:C]
    missing = [c for c in want if c not in cols]
    if missing:
        raise DataError(f"columns {cols} lack {missing} for a {C}D layout", file=path)
    rows = len(arr)
    line_of = lambda r: first_line + r  # noqa: E731 - good enough for files without blank lines inside

    def ids(name):
        k = cols.index(name)
        col = arr[:, k]
        bad = np.flatnonzero(col != np.round(col))
        if bad.size:
            raise DataError(f"{name} id {col[bad[0]]!r} is not an integer", file=path, line=line_of(bad[0]))
        return col.astype(np.int64)

    if "joint" in cols:
        j = ids("joint")
        base = 1 if j.min() == 1 and j.max() == V else 0
        j = j - base
        bad = np.flatnonzero((j < 0) | (j >= V))
        if bad.size:
            raise DataError(f"joint id {j[bad[0]] + base} outside {base}..{V - 1 + base} (the layout has {V} joints)",
                            file=path, line=line_of(bad[0]))
    else:
        if "frame" not in cols and "person" not in cols and rows % V:
            raise DataError(f"has {rows} rows, not a multiple of {V} (one row per joint, {V} joints per frame)",
                            file=path)
        j = None
    if "person" in cols:
        p_raw = ids("person")
        _, p = np.unique(p_raw, return_inverse=True)
    else:
        p = np.zeros(rows, dtype=np.int64)
    M = int(p.max()) + 1
    if j is None:  # joints in file order within each (frame, person) block of V rows
        j = np.zeros(rows, dtype=np.int64)
        key = (ids("frame") if "frame" in cols else np.zeros(rows, np.int64)) * M + p
        start = np.r_[0, np.flatnonzero(np.diff(key) != 0) + 1]
        lengths = np.diff(np.r_[start, rows])
        bad = np.flatnonzero(lengths != V) if ("frame" in cols or "person" in cols) else np.array([], int)
        if bad.size:
            raise DataError(f"a frame/person block has {lengths[bad[0]]} rows, expected {V} (one per joint)",
                            file=path, line=line_of(start[bad[0]]))
        j = (np.arange(rows) - np.repeat(start, lengths)) % V
    if "frame" in cols:
        f_raw = ids("frame")
        _, t = np.unique(f_raw, return_inverse=True)
    else:  # file order: frame-major, then person, then joint
        t = np.arange(rows) // (V * M)
    T = int(t.max()) + 1
    cell = (p * T + t) * V + j
    counts = np.bincount(cell, minlength=M * T * V)
    dup = np.flatnonzero(counts[cell] > 1)
    if dup.size:
        raise DataError("the same (frame, person, joint) appears twice", file=path, line=line_of(dup[1]))
    x = np.zeros((M * T * V, C), dtype=np.float32)
    x[cell] = arr[:, [cols.index(c) for c in want]]
    sc = None
    if "score" in cols:
        sc = np.zeros(M * T * V, dtype=np.float32)
        sc[cell] = arr[:, cols.index("score")]
        sc = sc.reshape(M, T, V)
    return x.reshape(M, T, V, C), sc


def read_joint_rows(path: "str | Path", layout, *, columns: "str | None" = None, delimiter: "str | None" = "auto",
                    header: "bool | str" = "auto", return_scores: bool = False, max_bytes: int = MAX_BYTES):
    """Text rows of joints -> float32 ``(M, T, V, C)`` (``(x, scores)`` with ``return_scores``).

    The usual form is ``T*V`` rows of C coordinates (one row per joint, V rows per frame), with or
    without a leading frame-id column and with or without a trailing confidence column; whitespace
    or comma separated (``delimiter="auto"``), ``#`` comments and blank lines skipped, a header
    line of names optional. ``columns="auto"`` (None) tells these apart; name them otherwise, e.g.
    ``"frame,person,x,y,z"`` or ``"frame,person,joint,x,y,score"`` (``_`` skips a column):
    ``person`` ids give M, ``joint`` ids (0- or 1-based) place each row, a (frame, person) pair
    absent from the file stays zero. One row per frame of ``V*C`` (or ``V*(C+1)`` with per-joint
    scores, x y score interleaved) values is read too. C is the layout's ``dims``.
    """
    path = Path(path)
    lay = _layout(layout)
    V, C = lay.num_joints, lay.dims
    raw = _read_bytes(path, max_bytes)
    text = raw.decode("utf-8", errors="replace")
    if delimiter == "auto":
        sample = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        delimiter = "," if "," in sample else ";" if ";" in sample else ("\t" if "\t" in sample and
                                                                         " " not in sample.strip() else None)
        if delimiter == "\t":
            delimiter = None
    arr, names, first_line = _parse_table(text, path, delimiter, header)
    if columns is None or columns == "auto":
        if names is not None and all(n in COLUMN_NAMES for n in names):
            cols = [COLUMN_NAMES[n] for n in names]
        else:
            cols = _auto_columns(arr, V, C, path)
    else:
        cols = [COLUMN_NAMES.get(c.strip().lower(), "?" + c) for c in columns.split(",")]
        bad = [c[1:] for c in cols if c.startswith("?")]
        if bad:
            raise DataError(f"unknown column name(s) {bad}; use {sorted(set(COLUMN_NAMES.values()))}",
                            file=path, field="columns")
        if len(cols) != arr.shape[1]:
            raise DataError(f"columns= names {len(cols)} columns but the rows have {arr.shape[1]}", file=path,
                            field="columns")
    if cols == ["wide"]:
        x, sc = _wide(arr, V, C, path, first_line)
        x = np.ascontiguousarray(x, dtype=np.float32)
        sc = None if sc is None else np.ascontiguousarray(sc, dtype=np.float32)
    else:
        x, sc = _rows_to_array(arr, cols, V, C, path, first_line)
    return (x, sc) if return_scores else x


def read_csv(path: "str | Path", layout, *, columns: "str | None" = None, header: "bool | str" = "auto",
             return_scores: bool = False, max_bytes: int = MAX_BYTES):
    """A CSV file (comma separated, header optional) -> float32 ``(M, T, V, C)``; see ``read_joint_rows``.

    A header whose names are all known (``frame, person, joint, x, y, z, score``/``confidence``,
    ``_`` to skip) says what each column is; otherwise the columns are told apart as for text rows."""
    return read_joint_rows(path, layout, columns=columns, delimiter=",", header=header,
                           return_scores=return_scores, max_bytes=max_bytes)


# ---------------------------------------------------------------------------------------------
# Arrays: .npy / .npz / .mat
def _orders(shape, V: int, C: int) -> list[str]:
    out = []
    for order in AXES_ORDERS:
        if len(order) != len(shape):
            continue
        if all((a != "V" or s == V) and (a != "C" or s in (C, C + 1)) for a, s in zip(order, shape)):
            out.append(order)
    if len(shape) == 2 and shape[1] in (V * C, V * (C + 1)):
        out.append("T(VC)")
    return out


def to_mtvc(arr: np.ndarray, layout, *, axes: str = "auto", where=None, field=None, return_scores: bool = False):
    """An array of skeletons in a known axis order -> float32 ``(M, T, V, C)`` checked against the layout.

    ``axes``: ``"MTVC"``, ``"TVC"``, ``"VCT"`` (UTD-MHAD's ``d_skel``), ``"CTVM"`` (ST-GCN), ``"VTC"``,
    ``"TCV"``, ``"T(VC)"`` (one row of V*C values per frame), or ``"auto"``: the one order whose V and C
    axes fit the layout (an ambiguous shape asks for ``axes=``). A channel axis of ``dims + 1`` holds a
    trailing confidence, returned as scores ``(M, T, V)`` with ``return_scores`` (otherwise dropped)."""
    lay = _layout(layout)
    V, C = lay.num_joints, lay.dims
    a = np.asarray(arr)
    if a.dtype.kind not in "fiub":
        raise DataError(f"holds {a.dtype} values, not numbers", file=where, field=field)
    if axes == "auto":
        fits = _orders(a.shape, V, C)
        if not fits:
            raise DataError(f"has shape {a.shape}; layout {lay.name!r} needs {V} joints with {C} coordinates "
                            f"(e.g. (T, {V}, {C}) or (M, T, {V}, {C}))", file=where, field=field)
        if len(set(fits)) > 1 and not (fits[0] in ("MTVC", "TVC")):
            raise DataError(f"shape {a.shape} fits several axis orders {fits}: pass axes=", file=where, field=field)
        axes = fits[0]
    if axes == "T(VC)":
        if a.ndim != 2 or a.shape[1] not in (V * C, V * (C + 1)):
            raise DataError(f"has shape {a.shape}, expected (T, {V * C}) for axes 'T(VC)'", file=where, field=field)
        x = a.reshape(a.shape[0], V, -1)[None]
    else:
        if len(axes) != a.ndim or sorted(axes) != sorted(set(axes)) or not set(axes) <= set("MTVC") \
                or not {"T", "V", "C"} <= set(axes):
            raise DataError(f"axes {axes!r} does not fit an array of shape {a.shape}", file=where, field=field)
        src = axes if "M" in axes else "M" + axes
        x = a if "M" in axes else a[None]
        x = np.transpose(x, [src.index(k) for k in "MTVC"])
    if x.shape[2] != V or x.shape[3] not in (C, C + 1):
        raise DataError(f"has {x.shape[2]} joints x {x.shape[3]} channels (shape {a.shape}, axes {axes}); layout "
                        f"{lay.name!r} has {V} joints and {C} coordinates (+1 confidence allowed)",
                        file=where, field=field)
    if x.shape[1] == 0:
        raise DataError("has no frames", file=where, field=field)
    if not np.isfinite(x[..., :C]).all():
        raise DataError("holds NaN or infinite coordinates", file=where, field=field)
    out = np.ascontiguousarray(x[..., :C], dtype=np.float32)
    sc = np.ascontiguousarray(x[..., C], dtype=np.float32) if x.shape[3] == C + 1 else None
    return (out, sc) if return_scores else out


def _npy_header(f, where, name=None):
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"not a valid .npy array ({type(e).__name__}: {e})", file=where, field=name) from None
    return shape, dtype


def _check_budget(shape, dtype, where, name, limit):
    need = int(np.prod(shape, dtype=np.float64)) * max(dtype.itemsize, 1)
    if need > limit:
        raise DataError(f"array of shape {shape} would need {need / 2**30:.2f} GiB, over the limit of "
                        f"{limit / 2**30:.1f} GiB", file=where, field=name)
    if dtype.hasobject:
        raise DataError("holds Python objects (a pickled array); refused (allow_pickle=False): save plain "
                        "numeric arrays", file=where, field=name)


def read_npy(path: "str | Path", layout, *, key: "str | None" = None, axes: str = "auto",
             return_scores: bool = False, max_bytes: int = MAX_BYTES, max_array_bytes: int = MAX_ARRAY_BYTES):
    """A ``.npy`` or ``.npz`` file -> float32 ``(M, T, V, C)`` (see ``to_mtvc`` for ``axes``).

    ``.npz``: the array named ``key``, or the single array it holds. Loaded with ``allow_pickle=False``;
    each array's header is checked (shape x dtype within ``max_array_bytes``) before it is inflated."""
    path = Path(path)
    raw = _read_bytes(path, max_bytes)
    if raw[:6] == b"\x93NUMPY":
        f = io.BytesIO(raw)
        shape, dtype = _npy_header(f, path)
        _check_budget(shape, dtype, path, None, max_array_bytes)
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot read the .npy array ({type(e).__name__}: {e})", file=path) from None
        return to_mtvc(arr, layout, axes=axes, where=path, return_scores=return_scores)
    if raw[:2] != b"PK":
        raise DataError("is neither a .npy nor a .npz file (no NUMPY or zip magic)", file=path)
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = [n for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"not a valid .npz archive ({e})", file=path) from None
    keys = [n[:-4] for n in names]
    if key is None:
        if len(keys) != 1:
            raise DataError(f"holds {len(keys)} arrays {keys[:10]}: pass key= to pick one", file=path)
        key = keys[0]
    if key not in keys:
        raise DataError(f"has no array {key!r}; it holds {keys[:10]}", file=path, field=key)
    try:
        with zf.open(key + ".npy") as f:
            shape, dtype = _npy_header(f, path, key)
        _check_budget(shape, dtype, path, key, max_array_bytes)
        with zf.open(key + ".npy") as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - zlib errors, truncated members, ...
        raise DataError(f"cannot read array {key!r} ({type(e).__name__}: {e})", file=path, field=key) from None
    return to_mtvc(arr, layout, axes=axes, where=path, field=key, return_scores=return_scores)


def read_mat(path: "str | Path", layout, *, variable: "str | None" = None, axes: str = "auto",
             return_scores: bool = False, max_bytes: int = MAX_BYTES, max_array_bytes: int = MAX_ARRAY_BYTES):
    """A MATLAB ``.mat`` file (v4-v7.2, ``scipy.io.loadmat``) -> float32 ``(M, T, V, C)``.

    ``variable``: the array's name, or None for the single numeric array in the file. Axis orders as
    in ``to_mtvc`` (UTD-MHAD's ``d_skel (20, 3, T)`` is found as ``VCT``). Sizes are checked from the
    file's directory (``whosmat``) before anything is inflated."""
    from scipy.io import loadmat, whosmat

    path = Path(path)
    raw = _read_bytes(path, max_bytes)
    if raw[:128].find(b"MATLAB 7.3") >= 0 or raw[:8] == b"\x89HDF\r\n\x1a\n":
        raise DataError("is a MATLAB v7.3 (HDF5) file, which scipy cannot read: open it with h5py, or save "
                        "it with -v7 in MATLAB", file=path)
    try:
        found = whosmat(io.BytesIO(raw))
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read the .mat file ({type(e).__name__}: {e})", file=path) from None
    numeric = {n: (s, c) for n, s, c in found if c in ("double", "single", "int8", "uint8", "int16", "uint16",
                                                        "int32", "uint32", "int64", "uint64")}
    if variable is None:
        if len(numeric) != 1:
            raise DataError(f"holds {len(numeric)} numeric arrays {list(numeric)[:10]}: pass variable= to pick one",
                            file=path)
        variable = next(iter(numeric))
    if variable not in numeric:
        raise DataError(f"has no numeric array {variable!r}; it holds {[n for n, _, _ in found][:10]}",
                        file=path, field=variable)
    shape = numeric[variable][0]
    _check_budget(shape, np.dtype(np.float64), path, variable, max_array_bytes)
    try:
        arr = loadmat(io.BytesIO(raw), variable_names=[variable])[variable]
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read variable {variable!r} ({type(e).__name__}: {e})", file=path,
                        field=variable) from None
    return to_mtvc(arr, layout, axes=axes, where=path, field=variable, return_scores=return_scores)


def read_skeleton_file(path: "str | Path", layout, **kw):
    """Any of the forms above by the file's suffix: ``.npy``/``.npz`` -> ``read_npy``, ``.mat`` ->
    ``read_mat``, ``.csv`` -> ``read_csv``, anything else -> ``read_joint_rows``."""
    suffix = Path(path).suffix.lower()
    reader = {".npy": read_npy, ".npz": read_npy, ".mat": read_mat, ".csv": read_csv}.get(suffix, read_joint_rows)
    return reader(path, layout, **kw)

