"""Custom data into the PYSKL interchange dict: plain arrays, UTD-MHAD and MSR Action3D.

``from_arrays`` is the door for any dataset hetskel does not know: give it ``(M, T, V, C)`` (or
``(T, V, C)``) arrays, labels and a layout name and you get a validated PYSKL dict.

The registered ``kinect20_msr`` and ``kinect20_utd`` orders are the datasets' READMEs', and they are
not mirrored: a README that swapped left and right would silently flip every left/right-dependent
augmentation and word. Checked on the real data (tests/test_arrays.py): the README's right arm is
the one moving in the one-arm actions, its right knee in the kicks, and its right hip/shoulder is
on the side a person facing the sensor has it. The measurements are in the README ("Kinect v1
left/right check").
"""
from __future__ import annotations

import io
import re
import tarfile
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from hetskel.data.errors import DataError
from hetskel.data.left_right import check_left_right
from hetskel.data.pyskl import validate_pyskl
from hetskel.data.raw import raise_first_bad_row
from hetskel.layouts import LayoutError, get_layout

UTD_MHAD_CLASSES = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave", "two hand front clap",
    "right arm throw", "cross arms in the chest", "basketball shoot", "right hand draw x",
    "right hand draw circle (clockwise)", "right hand draw circle (counter clockwise)", "draw triangle",
    "bowling", "front boxing", "baseball swing from right", "tennis right hand forehand swing", "arm curl",
    "tennis serve", "two hand push", "right hand knock on door", "right hand catch an object",
    "right hand pick up and throw", "jogging in place", "walking in place", "sit to stand", "stand to sit",
    "forward lunge", "squat")
MSR_ACTION3D_CLASSES = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
    "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend", "forward kick",
    "side kick", "jogging", "tennis swing", "tennis serve", "golf swing", "pickup & throw")
MSR_TAR = "MSRAction3DSkeleton(20joints).tar.gz"
MSR_CVPR12_LIST = "files_used_in_cvpr12_paper.txt"
KINECT_V1_JOINTS = 20


def from_arrays(arrays: Sequence, labels: Sequence, layout: str, frame_dirs: Sequence[str] | None = None,
                splits: dict | None = None, class_names: Sequence[str] | None = None,
                scores: Sequence | None = None, img_shape=None, dataset: str = "custom",
                label_base: "str | int" = "auto", check_mirror: bool = True) -> dict:
    """Build a validated PYSKL dict from arrays.

    arrays:  N arrays ``(M, T, V, C)`` or ``(T, V, C)`` (read as M=1); V must match ``layout``.
    labels:  N labels: 0-based integers; 1-based integers (smallest 1, no 0: detected with
             ``label_base="auto"``, or say ``label_base=1``) are shifted to 0-based; strings
             become 0..K-1 in sorted order (or in the order of ``class_names`` when given), the
             strings kept as ``class_names``. What was done is in ``data["label_mapping"]``
             (``{"base": 0 | 1 | "names", "classes": K}``) and said once in a warning.
    scores:  optional N arrays ``(M, T, V)`` or ``(T, V)`` (confidence per joint, 2D data).
    img_shape: ``(height, width)`` for every clip, or N of them (one per clip): 2D data is normalised
             by it.
    splits:  ``{name: [frame_dir, ...]}``; default ``{"all": every frame_dir}``.
    check_mirror: run ``check_left_right`` on the result and warn when the layout looks mirrored
             (2D data is judged as an unmirrored image: pass False for mirrored Kinect images).
    Arrays are copied to float32, so later edits to the inputs do not leak into the dict.
    """
    try:
        lay = get_layout(layout)
    except LayoutError as e:
        raise DataError(str(e), field="layout") from None
    n = len(arrays)
    if len(labels) != n:
        raise DataError(f"{n} arrays but {len(labels)} labels", field="label")
    frame_dirs = [f"{dataset}_{i:06d}" for i in range(n)] if frame_dirs is None else [str(f) for f in frame_dirs]
    if len(frame_dirs) != n:
        raise DataError(f"{n} arrays but {len(frame_dirs)} frame_dirs", field="frame_dir")
    if scores is not None and len(scores) != n:
        raise DataError(f"{n} arrays but {len(scores)} score arrays", field="keypoint_score")
    labels, class_names, mapping = _map_labels(labels, class_names, label_base)
    shapes = _per_clip_img_shapes(img_shape, n)
    annotations = []
    for i, (x, fd) in enumerate(zip(arrays, frame_dirs)):
        try:
            kp = np.array(x, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"cannot be read as a float array ({e})", sample=fd, field="keypoint") from None
        kp = kp[None] if kp.ndim == 3 else kp
        if kp.ndim != 4:
            raise DataError(f"has shape {np.shape(x)}, expected (M, T, V, C) or (T, V, C)", sample=fd,
                            field="keypoint")
        if kp.shape[2] != lay.num_joints:
            raise DataError(f"has {kp.shape[2]} joints (shape {kp.shape}) but layout {lay.name!r} has "
                            f"{lay.num_joints}", sample=fd, field="keypoint")
        ann = {"frame_dir": fd, "label": labels[i], "keypoint": kp, "total_frames": int(kp.shape[1])}
        if scores is not None:
            sc = np.array(scores[i], dtype=np.float32)
            ann["keypoint_score"] = sc[None] if sc.ndim == 2 else sc
        if shapes is not None:
            ann["img_shape"] = shapes[i]
        annotations.append(ann)
    data = {"split": {"all": list(frame_dirs)} if splits is None else {k: list(v) for k, v in splits.items()},
            "annotations": annotations, "layout": lay.name, "dataset": dataset}
    if class_names is not None:
        data["class_names"] = [str(c) for c in class_names]
    data = validate_pyskl(data, label_base=0)
    data["label_mapping"] = mapping
    if check_mirror:
        report = check_left_right(data, max_clips=200)
        if report.verdict == "mirrored":
            warnings.warn(f"from_arrays: {report.message}", stacklevel=2)
    return data


def _map_labels(labels: Sequence, class_names, label_base) -> tuple[list[int], list | None, dict]:
    """0-based int labels, the class names, and what was done (see ``from_arrays``)."""
    if label_base not in ("auto", 0, 1):
        raise DataError(f"label_base must be 'auto', 0 or 1, got {label_base!r}", field="label")
    labels = list(labels)
    if labels and all(isinstance(v, (str, np.str_)) for v in labels):
        if class_names is not None:
            order = [str(c) for c in class_names]
            unknown = sorted({str(v) for v in labels} - set(order))
            if unknown:
                raise DataError(f"label(s) {unknown[:5]} are not in class_names", field="label")
        else:
            order = sorted({str(v) for v in labels})
        index = {c: i for i, c in enumerate(order)}
        warnings.warn(f"from_arrays: {len(order)} string labels mapped to 0..{len(order) - 1} "
                      f"({', '.join(f'{c!r}->{i}' for c, i in list(index.items())[:4])}"
                      f"{', ...' if len(order) > 4 else ''}); names kept as class_names", stacklevel=3)
        return [index[str(v)] for v in labels], order, {"base": "names", "classes": len(order)}
    out = []
    for i, v in enumerate(labels):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise DataError(f"label {v!r} is neither an integer nor a string", field="label", sample=i) from None
        if f != int(f) or f < 0:
            raise DataError(f"label {v!r} is not a non-negative integer", field="label", sample=i)
        out.append(int(f))
    base = label_base
    if base == "auto":
        base = 1 if out and min(out) == 1 else 0
        if base == 1:
            k = max(out)
            warnings.warn(f"from_arrays: labels are 1-based (1..{k}, no 0): mapped to 0..{k - 1} "
                          f"(pass label_base=0 to keep them)", stacklevel=3)
    if base == 1:
        if 0 in out:
            raise DataError("label 0 with label_base=1", field="label")
        out = [v - 1 for v in out]
    k = (max(out) + 1) if out else 0
    return out, None if class_names is None else list(class_names), {"base": base, "classes": k}


def _per_clip_img_shapes(img_shape, n: int) -> list | None:
    """``None``, one ``(h, w)`` for every clip, or N of them -> N ``(h, w)`` tuples."""
    if img_shape is None:
        return None
    arr = np.asarray(img_shape, dtype=np.float64)
    if arr.shape == (2,):
        return [tuple(int(v) for v in arr)] * n
    if arr.shape == (n, 2):
        return [tuple(int(v) for v in row) for row in arr]
    raise DataError(f"img_shape must be (height, width) or {n} of them (one per clip), got shape {arr.shape}",
                    field="img_shape")


# ---------------------------------------------------------------------------------------------
# Shared helpers for the two Kinect v1 datasets
def _xsub(subjects: dict[str, int]) -> dict[str, list[str]]:
    """Standard cross-subject protocol of both datasets: odd subjects train, even subjects test."""
    return {"xsub_train": [fd for fd, s in subjects.items() if s % 2 == 1],
            "xsub_val": [fd for fd, s in subjects.items() if s % 2 == 0]}


def _read_rows(text: str, where: str, ncols: int = 4) -> np.ndarray:
    """Whitespace-separated text -> float64 ``(rows, ncols)``; DataError with the line on bad input."""
    if not text.strip():
        raise DataError("is empty", file=where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
        if arr.shape[1] == ncols and np.isfinite(arr).all():
            return arr
    except ValueError:
        pass
    # slow path, only for bad files: find the first bad line
    rows = ((n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.split())
    raise_first_bad_row(rows, ncols, where, f"expected {ncols}")


def _kinect_frames(rows: np.ndarray, where: str) -> np.ndarray:
    """``(20 T, 4)`` rows -> ``(T, 20, 4)``."""
    if rows.shape[0] % KINECT_V1_JOINTS:
        raise DataError(f"has {rows.shape[0]} rows, not a multiple of {KINECT_V1_JOINTS} (one row per joint, "
                        f"{KINECT_V1_JOINTS} joints per frame)", file=where)
    return rows.reshape(-1, KINECT_V1_JOINTS, rows.shape[1])


# ---------------------------------------------------------------------------------------------
# UTD-MHAD
_UTD_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")


def load_utd_mhad(root: "str | Path") -> dict:
    """UTD-MHAD skeletons -> PYSKL dict (861 sequences when complete).

    root: the dataset folder or its ``Skeleton/`` subfolder holding ``aA_sS_tT_skeleton.mat`` with
    ``d_skel (20, 3, T)`` in metres. keypoint float32 ``(1, T, 20, 3)``, layout ``kinect20_utd``,
    labels 0..26, extras ``subject``/``trial``; split xsub_train (subjects 1 3 5 7) / xsub_val (2 4 6 8).
    """
    from scipy.io import loadmat  # scipy is only needed for this reader

    root = Path(root)
    folder = root / "Skeleton" if (root / "Skeleton").is_dir() else root
    found = sorted((tuple(int(g) for g in m.groups()), p) for p in folder.glob("a*_s*_t*_skeleton.mat")
                   if (m := _UTD_NAME.match(p.name)))
    if not found:
        raise DataError("no UTD-MHAD files aA_sS_tT_skeleton.mat here", file=folder)
    arrays, labels, fds, subjects = [], [], [], {}
    for (a, s, t), path in found:
        if not 1 <= a <= len(UTD_MHAD_CLASSES):
            raise DataError(f"action a{a} outside a1..a{len(UTD_MHAD_CLASSES)}", file=path)
        try:
            mat = loadmat(path)
        except Exception as e:
            raise DataError(f"cannot read the .mat file ({type(e).__name__}: {e})", file=path) from None
        skel = mat.get("d_skel")
        if not isinstance(skel, np.ndarray) or skel.ndim != 3 or skel.shape[:2] != (KINECT_V1_JOINTS, 3) \
                or skel.shape[2] == 0:
            got = getattr(skel, "shape", None) if skel is not None else "no such variable"
            raise DataError(f"expected d_skel of shape (20, 3, T), got {got}", file=path, field="d_skel")
        fd = f"a{a}_s{s}_t{t}"
        arrays.append(skel.transpose(2, 0, 1)[None])  # (20, 3, T) -> (1, T, 20, 3)
        labels.append(a - 1)
        fds.append(fd)
        subjects[fd] = s
    data = from_arrays(arrays, labels, "kinect20_utd", frame_dirs=fds, splits=_xsub(subjects),
                       class_names=UTD_MHAD_CLASSES, dataset="utd_mhad", label_base=0)
    for ann, (( _, s, t), path) in zip(data["annotations"], found):
        ann.update(subject=s, trial=t, raw_file=str(path))
    return data


# ---------------------------------------------------------------------------------------------
# MSR Action3D
_MSR_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton(3D)?\.txt$")


def _msr_sources(root: Path, coords: str):
    """Yield ``(name, path-for-errors, text)`` for every sequence file of the chosen coordinates."""
    if coords == "world":
        folder = root / "real_world_coordinates" if (root / "real_world_coordinates").is_dir() else root
        paths = sorted(p for p in folder.glob("a*_s*_e*_skeleton3D.txt") if _MSR_NAME.search(p.name))
        if not paths:
            raise DataError("no MSR Action3D files aAA_sSS_eEE_skeleton3D.txt here", file=folder)
        for p in paths:
            yield p.name, p, p.read_text(encoding="latin1")
        return
    tar_path = root if root.is_file() else root / MSR_TAR
    if not tar_path.is_file():
        raise DataError(f"screen coordinates need {MSR_TAR}", file=tar_path)
    try:
        with tarfile.open(tar_path, "r:*") as tar:  # read members in memory: no extraction to disk
            # read in archive order: a gzip stream cannot seek back, so sorted access would re-inflate
            # the archive from the start for every member
            found = sorted((Path(m.name).name, f"{tar_path}!{m.name}", tar.extractfile(m).read().decode("latin1"))
                           for m in tar if m.isfile() and _MSR_NAME.search(m.name))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read the archive ({type(e).__name__}: {e})", file=tar_path) from None
    if not found:
        raise DataError("holds no aAA_sSS_eEE_skeleton.txt members", file=tar_path)
    yield from found


def _msr_cvpr12_list(root: Path) -> set[str] | None:
    base = root.parent if root.is_file() else root
    for cand in (base / "real_world_coordinates" / MSR_CVPR12_LIST, base / MSR_CVPR12_LIST):
        if cand.is_file():
            names = {t.strip() for t in cand.read_text().split()}
            return {n for n in names if n}
    return None


def load_msr_action3d(root: "str | Path", coords: str = "world", files: str = "cvpr12",
                      depth: bool = False) -> dict:
    """MSR Action3D skeletons -> PYSKL dict (layout ``kinect20_msr``, labels 0..19).

    coords="world":  ``real_world_coordinates/aAA_sSS_eEE_skeleton3D.txt`` (rows ``x y z confidence``)
                     -> keypoint ``(1, T, 20, 3)`` metres, extra ``confidence (1, T, 20)``.
    coords="screen": members of ``MSRAction3DSkeleton(20joints).tar.gz`` read without extracting
                     (rows ``u v depth confidence``) -> keypoint ``(1, T, 20, 2)`` depth-image pixels
                     (img_shape (240, 320)), ``keypoint_score`` = confidence; ``depth=True`` adds
                     extra ``depth (1, T, 20)``.
    files="cvpr12":  only the 557 sequences of ``files_used_in_cvpr12_paper.txt`` (warns and uses all
                     when the list is absent); "all": all 567.
    Split: xsub_train (odd subjects) / xsub_val (even subjects).
    """
    if coords not in ("world", "screen"):
        raise ValueError(f"coords must be 'world' or 'screen', got {coords!r}")
    if files not in ("cvpr12", "all"):
        raise ValueError(f"files must be 'cvpr12' or 'all', got {files!r}")
    root = Path(root)
    keep = _msr_cvpr12_list(root) if files == "cvpr12" else None
    if files == "cvpr12" and keep is None:
        warnings.warn(f"{MSR_CVPR12_LIST} not found under {root}: using all MSR Action3D files", stacklevel=2)
    arrays, scores, extras, labels, fds, subjects = [], [], [], [], [], {}
    for name, where, text in _msr_sources(root, coords):
        a, s, e = (int(g) for g in _MSR_NAME.search(name).groups()[:3])
        fd = f"a{a:02d}_s{s:02d}_e{e:02d}"
        if keep is not None and fd not in keep:
            continue
        if not 1 <= a <= len(MSR_ACTION3D_CLASSES):
            raise DataError(f"action a{a:02d} outside a01..a{len(MSR_ACTION3D_CLASSES)}", file=where)
        frames = _kinect_frames(_read_rows(text, str(where)), str(where))[None].astype(np.float32)  # (1,T,20,4)
        if coords == "world":
            arrays.append(frames[..., :3])
            extras.append({"confidence": frames[..., 3], "raw_file": str(where)})
        else:
            arrays.append(frames[..., :2])
            scores.append(frames[..., 3])
            extras.append({"raw_file": str(where), **({"depth": frames[..., 2]} if depth else {})})
        extras[-1].update(subject=s, trial=e)
        labels.append(a - 1)
        fds.append(fd)
        subjects[fd] = s
    if keep is not None and len(fds) != len(keep):
        missing = sorted(keep - set(fds))
        raise DataError(f"{MSR_CVPR12_LIST} lists {len(missing)} sequence(s) with no file, e.g. {missing[0]}",
                        file=root)
    data = from_arrays(arrays, labels, "kinect20_msr", frame_dirs=fds, splits=_xsub(subjects),
                       class_names=MSR_ACTION3D_CLASSES, scores=scores if coords == "screen" else None,
                       img_shape=(240, 320) if coords == "screen" else None, dataset=f"msr_action3d_{coords}",
                       label_base=0, check_mirror=coords == "world")  # Kinect depth images are mirrored
    for ann, extra in zip(data["annotations"], extras):
        ann.update(extra)
    data["msr_files"] = files if keep is not None else "all"
    return data


def absent_outside_image(data: dict, limit: float = 4.0) -> tuple[int, int]:
    """Make every 2D joint farther than ``limit`` half-image sizes from the image centre absent
    (coordinates and score zero), in place; returns how many. Such values are recorder glitches,
    not positions: MSR Action3D's screen files hold ~2.1e9 for some joints above the frame (an
    integer overflow). Needs each annotation's ``img_shape`` (height, width). Returns
    ``(joints, clips)`` made absent / touched."""
    count = clips = 0
    for ann in data["annotations"]:
        h, w = ann["img_shape"]
        kp = ann["keypoint"]
        half = np.array([w / 2, h / 2], dtype=np.float64)
        bad = (np.abs(kp.astype(np.float64) - half) / half > limit).any(-1)
        if bad.any():
            kp[bad] = 0
            if ann.get("keypoint_score") is not None:
                ann["keypoint_score"][bad] = 0
            count, clips = count + int(bad.sum()), clips + 1
    return count, clips
