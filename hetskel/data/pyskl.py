"""PYSKL annotation pickles: the kit's interchange format, read through the one restricted unpickler.

A PYSKL file is a pickled dict (see docs/DEVELOPING.md)::

    {"split": {"xsub_train": [frame_dir, ...], ...},
     "annotations": [{"frame_dir": str, "label": int, "keypoint": (M, T, V, C), ...}, ...]}

``load_pyskl`` reads it with the restricted unpickler of ``hetskel.data.safe_pickle``, which can only
rebuild plain containers, scalars and numpy arrays. A pickle that asks for anything else (``os.system``, ``builtins.eval``, a class of
some library, ...) is refused with ``DataError`` before that object is ever called, so a malicious
file cannot run code. ``validate_pyskl`` then checks the structure and normalises it:

- ``keypoint`` and ``keypoint_score`` become **float32** (PYSKL files store float16; downstream
  maths wants float32, and float16 -> float32 is exact);
- 1-based labels (the smallest label is 1, none is 0) become 0-based when ``label_base="auto"``;
  ``data["label_base_detected"]`` records what the file used and ``data["label_base"]`` is 0 after;
- a missing ``total_frames`` is filled in from ``T``.

``save_pyskl`` writes the same format back (plain pickle protocol 4, atomically).
"""
from __future__ import annotations

import collections
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hetskel.data.errors import DataError, short_repr
from hetskel.data.safe_pickle import unpickle

KNOWN_SPLITS = ("xsub_train", "xsub_val", "xview_train", "xview_val", "xset_train", "xset_val",
                "train", "val", "test", "xsub_test")
REQUIRED_KEYS = ("frame_dir", "label", "keypoint")


def load_pyskl(path: "str | Path", *, validate: bool = True, label_base: "str | int" = "auto",
               nonfinite: str = "raise") -> dict:
    """Read a PYSKL annotation pickle safely.

    Returns the annotation dict. With ``validate`` (default) it is checked and normalised by
    ``validate_pyskl`` (float32 keypoints ``(M, T, V, C)``, 0-based labels, ``total_frames``);
    without it you get exactly what the file holds (still only plain data).
    """
    path = Path(path)
    data = unpickle(path)
    if validate:
        validate_pyskl(data, file=path, label_base=label_base, nonfinite=nonfinite)
    return data


# ---------------------------------------------------------------------------------------------
# Validation
_F32_MAX = float(np.finfo(np.float32).max)
MAX_LABEL = 2**31 - 1  # labels are class indices; anything larger is not one


def _check_array(x, sid, field, file, converted: dict | None = None) -> np.ndarray:
    """``x`` as float32. ``converted`` (id -> result) converts an array shared by several
    annotations once: a pickle can reference one float64 array from a million annotations."""
    if converted is not None and id(x) in converted:
        return converted[id(x)][1]
    src = x
    if not isinstance(x, np.ndarray):
        if not isinstance(x, (list, tuple)):
            raise DataError(f"is a {type(x).__name__}, not an array", file=file, sample=sid, field=field)
        try:
            x = np.asarray(x)
        except Exception:
            raise DataError(f"is a {type(x).__name__} that is not a regular array", file=file, sample=sid,
                            field=field) from None
    if x.dtype.kind not in "fiu":
        raise DataError(f"has dtype {x.dtype}, expected numbers", file=file, sample=sid, field=field)
    if x.dtype.kind == "f" and x.dtype.itemsize > 4:
        with np.errstate(invalid="ignore"):
            over = np.abs(x) > _F32_MAX  # finite float64 values that float32 cannot hold (1e300)
        n_over = int(np.count_nonzero(over))
        if n_over:
            raise DataError(f"{n_over} value(s) are outside the float32 range (|x| > {_F32_MAX:.3g}), e.g. "
                            f"{float(x[over].flat[0]):g}; keypoints are stored as float32", file=file,
                            sample=sid, field=field)
    out = x.astype(np.float32, copy=False)
    if converted is not None:
        converted[id(src)] = (src, out)  # keep src alive: its id must not be reused
    return out


def _check_annotation(ann, i: int, file, bad: list, converted: dict | None = None) -> tuple[str, int]:
    """Check and normalise one annotation in place; returns ``(frame_dir, raw label)``."""
    if not isinstance(ann, dict):
        raise DataError(f"annotation is a {type(ann).__name__}, expected a dict", file=file, sample=f"#{i}")
    missing = [k for k in REQUIRED_KEYS if k not in ann]
    fd = ann.get("frame_dir", f"#{i}")
    sid = str(fd) if isinstance(fd, (str, np.str_)) else f"#{i}"  # str() of a nested list could recurse
    if missing:
        raise DataError(f"missing required key(s) {missing}; an annotation needs {list(REQUIRED_KEYS)}",
                        file=file, sample=sid)
    if not isinstance(ann["frame_dir"], (str, np.str_)):
        raise DataError(f"frame_dir must be a string, got {type(ann['frame_dir']).__name__}", file=file,
                        sample=f"#{i}", field="frame_dir")
    ann["frame_dir"] = sid
    label = ann["label"]
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise DataError(f"labels must be integers, got {short_repr(label)} ({type(label).__name__})", file=file,
                        sample=sid, field="label")
    if not -MAX_LABEL <= int(label) <= MAX_LABEL:
        raise DataError(f"label {short_repr(int(label), 40)} is out of range (a class index, at most {MAX_LABEL})",
                        file=file, sample=sid, field="label")
    kp = _check_array(ann["keypoint"], sid, "keypoint", file, converted)
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        raise DataError(f"has shape {kp.shape}, expected rank 4 (M persons, T frames, V joints, C) "
                        f"with C 2 or 3", file=file, sample=sid, field="keypoint")
    if min(kp.shape) == 0:
        raise DataError(f"is empty, shape {kp.shape}", file=file, sample=sid, field="keypoint")
    ann["keypoint"] = kp
    fields = ["keypoint"]
    if ann.get("keypoint_score") is not None:
        sc = _check_array(ann["keypoint_score"], sid, "keypoint_score", file, converted)
        if sc.shape != kp.shape[:3]:
            raise DataError(f"has shape {sc.shape}, expected (M, T, V) = {kp.shape[:3]} to match keypoint",
                            file=file, sample=sid, field="keypoint_score")
        ann["keypoint_score"] = sc
        fields.append("keypoint_score")
    for f in fields:
        n_bad = int(ann[f].size - np.count_nonzero(np.isfinite(ann[f])))
        if n_bad:
            bad.append({"frame_dir": sid, "field": f, "count": n_bad})
    T = kp.shape[1]
    tf = ann.get("total_frames")
    if tf is None:
        ann["total_frames"] = T
    elif isinstance(tf, (bool, np.bool_)) or not isinstance(tf, (int, np.integer)) or int(tf) != T:
        raise DataError(f"is {short_repr(tf)} but keypoint has T = {T} frames", file=file, sample=sid,
                        field="total_frames")
    else:
        ann["total_frames"] = int(tf)
    if ann.get("img_shape") is not None:
        try:
            h, w = (int(v) for v in ann["img_shape"])
        except Exception:
            raise DataError(f"must be (height, width), got {short_repr(ann['img_shape'])}", file=file, sample=sid,
                            field="img_shape") from None
        ann["img_shape"] = (h, w)
    return sid, int(label)


def _resolve_label_base(data: dict, labels: np.ndarray, label_base, file) -> int:
    if label_base not in ("auto", 0, 1):
        raise DataError(f"label_base must be 'auto', 0 or 1, got {label_base!r}", file=file)
    if label_base != "auto":
        return int(label_base)
    if data.get("label_base") in (0, 1):  # written by save_pyskl: the file says what it uses
        return int(data["label_base"])
    if labels.size == 0 or labels.min() != 1:
        return 0
    names = data.get("class_names")
    # a 0-based subset that happens to lack class 0 looks 1-based; class names settle it
    if names is not None and labels.max() < len(names):
        return 0
    return 1


def validate_pyskl(data: Any, file=None, label_base: "str | int" = "auto", nonfinite: str = "raise") -> dict:
    """Check a PYSKL dict and normalise it **in place**; returns it.

    Raises ``DataError`` naming file, sample (frame_dir) and field for: a missing ``split`` or
    ``annotations``, a missing key, ``keypoint`` not ``(M, T, V, C)`` with C in (2, 3),
    ``keypoint_score`` not ``(M, T, V)``, ``total_frames != T``, non-integer or negative labels,
    labels past ``len(class_names)``, duplicate frame_dirs, and split lists naming frame_dirs that
    have no annotation. NaN/inf raise too unless ``nonfinite="report"``, which warns and lists them
    in ``data["nonfinite"]`` instead. Unknown split *names* are allowed (custom datasets).
    """
    if nonfinite not in ("raise", "report"):
        raise ValueError(f"nonfinite must be 'raise' or 'report', got {nonfinite!r}")
    if not isinstance(data, dict) or not {"split", "annotations"} <= set(data):
        got = f"a dict with keys {short_repr(sorted(map(short_repr, data)), 200)}" if isinstance(data, dict) \
            else f"a {type(data).__name__}"
        raise DataError(f"expected a PYSKL dict with keys 'split' and 'annotations', got {got}", file=file)
    anns, split = data["annotations"], data["split"]
    if not isinstance(anns, list):
        raise DataError(f"must be a list of dicts, got {type(anns).__name__}", file=file, field="annotations")
    if not isinstance(split, dict):
        raise DataError(f"must be a dict name -> list of frame_dir, got {type(split).__name__}", file=file,
                        field="split")
    names = data.get("class_names")
    if names is not None and (not isinstance(names, (list, tuple))
                              or not all(isinstance(n, (str, np.str_)) for n in names)):
        raise DataError(f"must be a list of class names (strings), got {short_repr(names)}", file=file,
                        field="class_names")
    bad: list[dict] = []
    converted: dict = {}
    checked = [_check_annotation(a, i, file, bad, converted) for i, a in enumerate(anns)]
    converted.clear()
    if bad:
        msg = (f"{len(bad)} array(s) contain NaN/inf, first: {bad[0]['count']} value(s) in "
               f"{bad[0]['field']!r} of sample {bad[0]['frame_dir']}")
        if nonfinite == "raise":
            raise DataError(msg + " (pass nonfinite='report' to load anyway)", file=file,
                            sample=bad[0]["frame_dir"], field=bad[0]["field"])
        warnings.warn(f"{file}: {msg}", stacklevel=2)
        data["nonfinite"] = bad
    ids = [c[0] for c in checked]
    index = {fd: i for i, fd in enumerate(ids)}
    if len(index) != len(ids):
        dup = next(fd for fd, n in collections.Counter(ids).items() if n > 1)
        raise DataError("frame_dir appears in more than one annotation", file=file, sample=dup, field="frame_dir")
    labels = np.array([c[1] for c in checked], dtype=np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(f"negative label {labels.min()}", file=file, sample=ids[int(labels.argmin())], field="label")
    base = _resolve_label_base(data, labels, label_base, file)
    if base == 1 and labels.size and labels.min() < 1:
        raise DataError("label 0 in a file read as 1-based (label_base=1)", file=file,
                        sample=ids[int(labels.argmin())], field="label")
    labels -= base
    if names is not None and labels.size and labels.max() >= len(names):
        raise DataError(f"label {labels.max()} (0-based) is out of range for {len(names)} class_names",
                        file=file, sample=ids[int(labels.argmax())], field="label")
    for ann, lab in zip(anns, labels.tolist()):
        ann["label"] = lab
    data["label_base_detected"], data["label_base"] = base, 0
    for name, members in split.items():
        if not isinstance(name, str):
            raise DataError(f"split names must be strings, got {short_repr(name)} ({type(name).__name__})",
                            file=file, field="split")
        if not isinstance(members, (list, tuple, np.ndarray)):
            raise DataError(f"split {short_repr(name)} must be a list of frame_dir, got {type(members).__name__}",
                            file=file, field="split")
        odd = next((m for m in members if not isinstance(m, (str, np.str_))), None)
        if odd is not None:  # an int id would pass str(m) here and fail later in select_split
            raise DataError(f"split {short_repr(name)} holds {short_repr(odd)} ({type(odd).__name__}); frame_dirs "
                            f"are strings", file=file, field="split")
        missing = [m for m in members if m not in index]
        if missing:
            raise DataError(f"split {short_repr(name)} names {len(missing)} frame_dir(s) with no annotation, e.g. "
                            f"{short_repr(missing[0])}", file=file, field="split")
    return data


# ---------------------------------------------------------------------------------------------
# Writing
def _plain(x: Any, where: str) -> Any:
    """Copy of ``x`` made only of builtins containers/scalars and numeric numpy arrays."""
    if x is None or isinstance(x, (str, bytes, bool, int, float)):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufcUS":
            raise DataError(f"array of dtype {x.dtype} cannot be saved as plain data", field=where)
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {_plain(k, where): _plain(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        out = [_plain(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return out if isinstance(x, list) else tuple(out)
    if isinstance(x, Path):
        return str(x)
    raise DataError(f"a {type(x).__name__} is not plain data and would not load back", field=where)


def save_pyskl(data: dict, path: "str | Path") -> Path:
    """Validate (labels taken as 0-based) and write ``data`` atomically as a plain protocol-4 pickle.

    The caller's dict is not modified. The file gets ``"label_base": 0`` so ``load_pyskl`` never
    mistakes a subset without class 0 for a 1-based file.
    """
    path = Path(path)
    copy = {**data, "annotations": [dict(a) if isinstance(a, dict) else a for a in data.get("annotations", [])]}
    validate_pyskl(copy, file=path, label_base=0)
    copy.pop("label_base_detected", None)  # describes a source file, not this one
    try:
        plain = _plain(copy, "data")
    except DataError as e:
        raise DataError(e.reason, file=path, field=e.field) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(plain, f, protocol=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---------------------------------------------------------------------------------------------
# Queries
def select_split(data: dict, split: str) -> list[dict]:
    """Annotations of ``split``, in the split list's order."""
    splits = data.get("split", {})
    if split not in splits:
        raise DataError(f"unknown split {split!r}; this file has {sorted(splits)}", field="split")
    index = {a["frame_dir"]: a for a in data["annotations"]}
    missing = [fd for fd in splits[split] if fd not in index]
    if missing:
        raise DataError(f"split {split!r} names frame_dir {missing[0]!r} with no annotation", field="split")
    return [index[fd] for fd in splits[split]]


def pair_by_frame_dir(data_a: dict, data_b: dict) -> list[tuple[int, int]]:
    """``(i, j)`` index pairs of annotations of ``data_a`` and ``data_b`` with the same frame_dir.

    Ordered by ``i``. Labels must agree (``DataError`` otherwise). Frame counts may differ (NTU
    3danno drops frames without bodies): resampling is the caller's job, not this function's.
    """
    index_b = {a["frame_dir"]: j for j, a in enumerate(data_b["annotations"])}
    pairs = []
    for i, a in enumerate(data_a["annotations"]):
        j = index_b.get(a["frame_dir"])
        if j is None:
            continue
        lb = data_b["annotations"][j]["label"]
        if int(a["label"]) != int(lb):
            raise DataError(f"label {a['label']} in the first file but {lb} in the second", sample=a["frame_dir"],
                            field="label")
        pairs.append((i, j))
    return pairs


_GUESS = {(25, 3): "ntu25", (25, 2): "ntu25", (17, 2): "coco17", (17, 3): "h36m17", (20, 2): "coco20",
          (20, 3): "kinect20_*", (15, 3): "openni15", (15, 2): "openni15", (30, 3): "unified30",
          (30, 2): "unified30"}


def guess_layout(V: int, C: int) -> str:
    """A layout name that fits ``V`` joints and ``C`` channels, or ``"unknown"``.

    Only a guess: ``"kinect20_*"`` means a 20-joint Kinect v1 file whose order (``kinect20_msr`` or
    ``kinect20_utd``) cannot be told from shapes; set ``data["layout"]`` to be sure.
    """
    return _GUESS.get((int(V), int(C)), "unknown")


def summarize(data: dict) -> dict:
    """Counts and ranges of a (validated) PYSKL dict; ``format_summary`` prints it."""
    anns = data["annotations"]
    labels = np.array([a["label"] for a in anns], dtype=np.int64)
    shapes = np.array([a["keypoint"].shape for a in anns], dtype=np.int64).reshape(-1, 4)
    M, T, V, C = shapes.T
    names = data.get("class_names")
    layout, guessed = data.get("layout"), False
    if layout is None and len(anns):
        layout = ",".join(sorted({guess_layout(v, c) for v, c in zip(V, C)}))
        guessed = True
    persons, counts = np.unique(M, return_counts=True)
    return {
        "dataset": data.get("dataset"),
        "num_samples": len(anns),
        "num_classes": len(names) if names is not None else int(np.unique(labels).size),
        "label_range": (int(labels.min()), int(labels.max())) if labels.size else None,
        "label_base_detected": data.get("label_base_detected"),
        "class_names": list(names) if names is not None else None,
        "splits": {k: len(v) for k, v in data["split"].items()},
        "unknown_split_names": sorted(k for k in data["split"] if k not in KNOWN_SPLITS),
        "layout": layout, "layout_guessed": guessed,
        "persons": {"max": int(M.max()) if M.size else 0,
                    "hist": {int(p): int(c) for p, c in zip(persons, counts)}},
        "frames": ({"min": int(T.min()), "median": float(np.median(T)), "max": int(T.max()),
                    "mean": float(T.mean())} if T.size else None),
        "dims": sorted({int(c) for c in C}), "joints": sorted({int(v) for v in V}),
        "has_scores": any(a.get("keypoint_score") is not None for a in anns),
        "nonfinite": len(data.get("nonfinite", [])),
    }


def format_summary(s: dict) -> str:
    """Human-readable lines for ``python -m hetskel.data info``."""
    f = s["frames"] or {}
    lines = [
        f"dataset       {s['dataset'] or '(not named)'}",
        f"samples       {s['num_samples']}",
        f"classes       {s['num_classes']}  labels {s['label_range']} (0-based)"
        + ("  [file was 1-based; converted]" if s["label_base_detected"] == 1 else ""),
        f"layout        {s['layout']}" + ("  (guessed from V and C)" if s["layout_guessed"] else ""),
        f"joints        V={s['joints']}  dims C={s['dims']}  keypoint_score: {'yes' if s['has_scores'] else 'no'}",
        f"persons       max {s['persons']['max']}  per-sample M histogram {s['persons']['hist']}",
        (f"frames        min {f['min']}  median {f['median']:g}  max {f['max']}  mean {f['mean']:.1f}" if f
         else "frames        (no samples)"),
        "splits        " + ("  ".join(f"{k}={v}" for k, v in s["splits"].items()) or "(none)"),
    ]
    if s["unknown_split_names"]:
        lines.append(f"              non-PYSKL split names: {s['unknown_split_names']}")
    if s["nonfinite"]:
        lines.append(f"WARNING       {s['nonfinite']} array(s) contain NaN/inf")
    if s["class_names"]:
        lines.append("class names   " + ", ".join(f"{i}:{n}" for i, n in enumerate(s["class_names"])))
    return "\n".join(lines)
