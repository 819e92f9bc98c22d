"""PKU-MMD phase 2 (PKU-MMD II) reader: long Kinect v2 recordings cut into one clip per labelled action.

Files (as distributed):

- ``<skeleton_dir>/<video>.txt``: one line per frame, 150 numbers = 2 bodies x 25 joints x (x, y, z),
  Kinect v2 joint order (layout ``ntu25``); the second body is all zeros when only one person is seen.
- ``<label_dir>/<video>.txt``: one line per action, ``label,start,end,confidence`` with a 1-based
  label (1..51) and frame indices into the skeleton file.
- ``cross_subject_v2.txt``: a ``Training videos:`` header followed by a comma-separated list of video
  ids, then a ``Validation videos:`` header (the official file spells it ``Validataion``) and a list.

Frame indices: we read ``start``/``end`` as 0-based and inclusive, so a clip is
``frames[start:end + 1]``. An ``end`` equal to the frame count (one past the last frame, as a
1-based or end-exclusive annotation would give) is clipped to the last frame; anything further out
is an error. Output is a PYSKL dict with 0-based labels, splits ``xsub_train``/``xsub_val``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hetskel.data.errors import DataError
from hetskel.data.pyskl import validate_pyskl

JOINTS, BODIES, COORDS = 25, 2, 3
COLUMNS = BODIES * JOINTS * COORDS  # 150
NUM_CLASSES = 51


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DataError(f"{what} file not found", file=path)
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as e:
        raise DataError(f"is not a text file ({e})", file=path) from None


def read_pku_skeleton(path: "str | Path") -> np.ndarray:
    """One skeleton file -> float32 ``(2, T, 25, 3)`` (bodies, frames, joints, xyz).

    Numbers may be separated by spaces, tabs or commas. Blank lines are skipped (but counted for
    line numbers in errors).
    """
    path = Path(path)
    lines = _read_text(path, "skeleton").splitlines()
    numbered = [(i + 1, ln.replace(",", " ").split()) for i, ln in enumerate(lines)]
    numbered = [(n, row) for n, row in numbered if row]
    if not numbered:
        raise DataError("is empty (no frames)", file=path)
    for n, row in numbered:
        if len(row) != COLUMNS:
            raise DataError(f"has {len(row)} numbers, expected {COLUMNS} (2 bodies x 25 joints x 3)",
                            file=path, line=n)
    try:
        arr = np.array([row for _, row in numbered], dtype=np.float64)
    except ValueError:
        for n, row in numbered:  # error path only: find the line to report
            for tok in row:
                try:
                    float(tok)
                except ValueError:
                    raise DataError(f"non-numeric value {tok!r}", file=path, line=n) from None
        raise
    if not np.isfinite(arr).all():
        n = numbered[int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])][0]
        raise DataError("contains NaN/inf", file=path, line=n)
    # (T, 150) -> (T, bodies, joints, xyz) -> (bodies, T, joints, xyz)
    return arr.reshape(-1, BODIES, JOINTS, COORDS).transpose(1, 0, 2, 3).astype(np.float32)


def read_pku_labels(path: "str | Path", num_frames: int | None = None,
                    num_classes: int = NUM_CLASSES) -> list[tuple[int, int, int, float]]:
    """One label file -> ``[(label (1-based), start, end, confidence), ...]`` in file order.

    With ``num_frames`` the ranges are checked against the sequence and an ``end`` one past the
    last frame is clipped (see the module docstring).
    """
    path = Path(path)
    rows = []
    for n, line in enumerate(_read_text(path, "label").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5 and not parts[-1]:  # tolerate a trailing comma
            parts.pop()
        if len(parts) != 4:
            raise DataError(f"has {len(parts)} fields, expected 4 (label,start,end,confidence)", file=path, line=n)
        try:
            label, start, end, conf = (float(p) for p in parts)
        except ValueError:
            raise DataError(f"non-numeric field in {line.strip()!r}", file=path, line=n) from None
        if not all(np.isfinite(v) and v == int(v) for v in (label, start, end)):
            raise DataError(f"label/start/end must be integers in {line.strip()!r}", file=path, line=n)
        if not np.isfinite(conf):  # float() reads "nan"/"inf" happily; a NaN weight would poison losses
            raise DataError(f"confidence must be a finite number, got {parts[3]!r}", file=path, line=n,
                            field="confidence")
        label, start, end = int(label), int(start), int(end)
        if not 1 <= label <= num_classes:
            raise DataError(f"label {label} outside 1..{num_classes}", file=path, line=n)
        if start < 0 or start > end:
            raise DataError(f"bad frame range start={start} end={end} (need 0 <= start <= end)", file=path, line=n)
        if num_frames is not None:
            if end > num_frames or start >= num_frames:
                raise DataError(f"frame range {start}..{end} runs past the end of the {num_frames}-frame "
                                f"skeleton sequence", file=path, line=n)
            end = min(end, num_frames - 1)
        rows.append((label, start, end, conf))
    if not rows:
        raise DataError("has no actions", file=path)
    return rows


_HEADER = re.compile(r"^\s*([A-Za-z]+)[A-Za-z ]*:(.*)$")


def read_pku_split(path: "str | Path") -> dict[str, list[str]]:
    """Cross-subject split file -> ``{"xsub_train": [video, ...], "xsub_val": [...]}``.

    A header line ``<word> ...:`` starts a section: a word beginning with ``train`` means training,
    ``val``/``test`` validation (so the official misspelling ``Validataion`` is fine). Ids follow,
    separated by commas and/or whitespace, on the header line or the lines after it.
    """
    path = Path(path)
    out: dict[str, list[str]] = {"xsub_train": [], "xsub_val": []}
    current = None
    for n, line in enumerate(_read_text(path, "split").splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            word = m.group(1).lower()
            if word.startswith("train"):
                current = "xsub_train"
            elif word.startswith(("val", "test")):
                current = "xsub_val"
            else:
                raise DataError(f"unknown section header {line.strip()!r} (expected Training/Validation)",
                                file=path, line=n)
            line = m.group(2)
        ids = [t.removesuffix(".txt") for t in re.split(r"[,\s]+", line) if t]
        if ids and current is None:
            raise DataError("video ids before any 'Training videos:' header", file=path, line=n)
        if ids:
            out[current].extend(ids)
    if not out["xsub_train"] or not out["xsub_val"]:
        raise DataError(f"needs both a training and a validation list; found {len(out['xsub_train'])} "
                        f"training and {len(out['xsub_val'])} validation ids", file=path)
    both = set(out["xsub_train"]) & set(out["xsub_val"])
    if both:
        raise DataError(f"{len(both)} video(s) are in both lists, e.g. {sorted(both)[0]!r}", file=path)
    return out


def load_pku_mmd(skeleton_dir: "str | Path", label_dir: "str | Path", split_file: "str | Path",
                 max_persons: int = 2, num_classes: int = NUM_CLASSES) -> dict:
    """Cut every labelled action of every split video into a clip; returns a validated PYSKL dict.

    Each annotation: ``frame_dir`` ``<video>_<k>`` (k = 0-based row of the label file), 0-based
    ``label``, ``keypoint`` float32 ``(M, t, 25, 3)`` with M the bodies seen in the clip (at least 1,
    at most ``max_persons``; an all-zero second body is dropped), plus extras ``video``, ``start``,
    ``end`` (inclusive, 0-based), ``confidence``. ``layout`` is ``"ntu25"``.
    """
    if not 1 <= max_persons <= BODIES:
        raise ValueError(f"max_persons must be 1 or 2, got {max_persons}")
    skeleton_dir, label_dir = Path(skeleton_dir), Path(label_dir)
    for d, what in ((skeleton_dir, "skeleton"), (label_dir, "label")):
        if not d.is_dir():
            raise DataError(f"{what} folder not found", file=d)
    videos = read_pku_split(split_file)
    annotations, split = [], {name: [] for name in videos}
    for name, ids in videos.items():
        for vid in ids:
            skel = read_pku_skeleton(skeleton_dir / f"{vid}.txt")
            T = skel.shape[1]
            acts = read_pku_labels(label_dir / f"{vid}.txt", num_frames=T, num_classes=num_classes)
            for k, (label, start, end, conf) in enumerate(acts):
                clip = skel[:max_persons, start:end + 1]
                present = np.abs(clip).reshape(clip.shape[0], -1).max(axis=1) > 0
                present[0] = True  # keep the first body even if absent, so M >= 1
                fd = f"{vid}_{k}"
                annotations.append({
                    "frame_dir": fd, "label": int(label) - 1, "keypoint": np.ascontiguousarray(clip[present]),
                    "total_frames": end - start + 1, "video": vid, "start": start, "end": end,
                    "confidence": float(conf), "raw_file": str(skeleton_dir / f"{vid}.txt"),
                })
                split[name].append(fd)
    data = {"split": split, "annotations": annotations, "layout": "ntu25", "dataset": "pku_mmd2"}
    return validate_pyskl(data, file=split_file, label_base=0)
