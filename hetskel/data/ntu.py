"""NTU RGB+D 60/120 raw ``.skeleton`` files: strict vectorised reader, body selection, names, splits.

File format (Kinect v2 SDK dump, CRLF or LF)::

    T                                   frame count
    per frame:  B                       body count (0 allowed: an empty frame)
      per body: bodyID + 9 info fields  clippedEdges handLeftConfidence handLeftState
                                        handRightConfidence handRightState isRestricted leanX leanY
                                        trackingState
                25                      joint count
                25 x 12 fields          x y z (camera metres) depthX depthY (512x424 px)
                                        colorX colorY (1920x1080 px) orientationW X Y Z trackingState

``read_skeleton`` walks the frame/body headers in Python (O(frames*bodies)) and converts every joint
line of the file in ONE numpy call; anything malformed raises ``DataError`` naming file, line, frame
and field. ``convert_ntu`` turns a folder of them into one PYSKL dict, parsing files in parallel.
Speed note: a file costs ~8 ms, almost all of it decimal-to-float conversion (~0.2 us per value in
numpy and CPython alike), so throughput on a full dataset comes from ``convert_ntu``'s process pool.

    >>> sk = read_skeleton("S001C001P001R001A001.skeleton")
    >>> sk.xyz.shape            # (B, T, 25, 3): B distinct body IDs in the file
    >>> x = select_bodies(sk)   # (2, T, 25, 3): the 2 most moving bodies, zero-padded
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from hetskel.data.errors import DataError

NUM_JOINTS = 25
JOINT_FIELDS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY",
                "orientationW", "orientationX", "orientationY", "orientationZ", "trackingState")
BODY_FIELDS = ("bodyID", "clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
               "handRightState", "isRestricted", "leanX", "leanY", "trackingState")
IMG_SHAPE = (1080, 1920)  # (h, w) of the colour camera that colorX/colorY refer to


class EmptySkeletonError(DataError):
    """The file is well formed but no frame has a body (the official 'missing skeleton' case)."""


@dataclass
class NTUSkeleton:
    """Everything one ``.skeleton`` file holds. B = distinct body IDs (first-appearance order), T frames.

    xyz (B,T,25,3) float64 camera metres; depth_xy (B,T,25,2) and color_xy (B,T,25,2) pixels;
    orientation (B,T,25,4) quaternion (w,x,y,z); tracking (B,T,25) int8 (0 not tracked, 1 inferred,
    2 tracked); present (B,T) bool, the frames a body appears in (absent entries are all zero);
    body_info: per-body-per-frame info fields, each (B,T) float64 except ``lean`` (B,T,2);
    bodies_per_frame (T,) int.
    """

    name: str
    num_frames: int
    body_ids: list[int]
    present: np.ndarray
    xyz: np.ndarray
    depth_xy: np.ndarray
    color_xy: np.ndarray
    orientation: np.ndarray
    tracking: np.ndarray
    body_info: dict[str, np.ndarray] = field(default_factory=dict)
    bodies_per_frame: np.ndarray | None = None

    @property
    def num_bodies(self) -> int:
        return len(self.body_ids)

    def frames_of(self, b: int) -> np.ndarray:
        """Frame indices (sorted) in which body ``b`` is present."""
        return np.flatnonzero(self.present[b])


# ------------------------------------------------------------------------------------------ reader
def _int_line(lines: list[str], i: int, path, what: str, frame=None) -> int:
    if i >= len(lines):
        raise DataError(f"file ends at line {i + 1} where the {what} was expected (truncated file)",
                        file=path, sample=None if frame is None else f"frame {frame}", field=what, line=i + 1)
    s = lines[i].strip()
    try:
        return int(s)
    except ValueError:
        n = len(s.split())
        hint = {12: " (a joint line: one joint line too many in the body before it?)",
                10: " (a body info line: a line missing before it?)"}.get(
            n, f" (a line of {n} fields: an extra or missing line before it?)" if n > 1 else "")
        raise DataError(f"expected an integer {what}, got {s[:60]!r}{hint}", file=path,
                        sample=None if frame is None else f"frame {frame}", field=what, line=i + 1) from None


def _bad_token(tokens: list[str]) -> int:
    """Index of the first token that is not a finite number (error path only)."""
    for k, t in enumerate(tokens):
        try:
            if not np.isfinite(float(t)):
                return k
        except ValueError:
            return k
    return -1


def _locate(path, rows_line: np.ndarray, rows_frame: np.ndarray, width: int, k: int, names, what):
    """DataError for flat token ``k`` of a block of ``width``-field rows."""
    r, c = divmod(k, width)
    return DataError(f"{what}: value is not a finite number", file=path, sample=f"frame {rows_frame[r]}",
                     field=names[c], line=int(rows_line[r]))


def _width_error(path, rows: list[str], rows_line, rows_frame, width: int, what: str, skipped: int = 0,
                 n_tokens: int | None = None):
    """DataError for the first row without ``width`` fields, or None (cheap when all rows are fine)."""
    if (len(" ".join(rows).split()) if n_tokens is None else n_tokens) == width * len(rows):
        return None
    for r, row in enumerate(rows):  # error path only: find the offending line
        n = len(row.split())
        if n != width:
            return DataError(f"{what}: expected {width + skipped} fields, got {n + skipped} (truncated line, "
                             f"or a missing/extra joint line)", file=path, sample=f"frame {rows_frame[r]}",
                             field=what, line=int(rows_line[r]))
    return None


def _to_array(path, rows: list[str], rows_line: np.ndarray, rows_frame: np.ndarray, width: int,
              names, what, skipped: int = 0) -> np.ndarray:
    """Convert text rows of ``width`` numbers each into an (N, width) float64 array in one call.
    ``skipped``: leading fields already cut off each row (the body ID), for the error message."""
    tokens = " ".join(rows).split()
    err = _width_error(path, rows, rows_line, rows_frame, width, what, skipped, n_tokens=len(tokens))
    if err is not None:
        raise err
    try:
        arr = np.array(tokens, dtype=np.float64)
    except ValueError:
        raise _locate(path, rows_line, rows_frame, width, _bad_token(tokens), names, what) from None
    if not np.isfinite(arr).all():
        raise _locate(path, rows_line, rows_frame, width, int(np.flatnonzero(~np.isfinite(arr))[0]), names, what)
    return arr.reshape(len(rows), width)


class _Blocks:
    """Per-(frame, body) text collected by the header walk; converted to numbers in bulk afterwards."""

    def __init__(self, T: int):
        self.ids: dict[str, int] = {}  # body ID text -> body index b (first-appearance order)
        self.slot_b: list[int] = []    # one entry per (frame, body) occurrence: body index,
        self.slot_t: list[int] = []    # frame, and 1-based line of its info line
        self.slot_line: list[int] = []
        self.info_rows: list[str] = []
        self.joint_rows: list[str] = []
        self.per_frame = np.zeros(T, dtype=np.int64)

    def joint_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(1-based line, frame) of every collected joint row: info line + 2 + joint index."""
        n = len(self.joint_rows) // NUM_JOINTS
        base = np.asarray(self.slot_line[:n], dtype=np.int64) + 2
        return (np.repeat(base, NUM_JOINTS) + np.tile(np.arange(NUM_JOINTS), n),
                np.repeat(np.asarray(self.slot_t[:n], dtype=np.int64), NUM_JOINTS))

    def earliest_width_error(self, path):
        lines, frames = self.joint_index()
        errs = [_width_error(path, self.joint_rows, lines, frames, 12, "joint line"),
                _width_error(path, self.info_rows, self.slot_line, self.slot_t, 9, "body info", 1)]
        errs = [e for e in errs if e is not None]
        return min(errs, key=lambda e: e.line) if errs else None


def _walk(lines: list[str], path, T: int, max_bodies_per_frame: int, acc: _Blocks) -> None:
    """Walk the frame/body headers (O(frames*bodies) Python), collecting joint lines by list slices."""
    i = 1
    for t in range(T):
        nb = _int_line(lines, i, path, "body count", t)
        if not 0 <= nb <= max_bodies_per_frame:
            raise DataError(f"{nb} bodies in one frame (allowed 0..{max_bodies_per_frame}; Kinect v2 tracks "
                            f"at most 6)", file=path, sample=f"frame {t}", field="body count", line=i + 1)
        acc.per_frame[t] = nb
        i += 1
        seen = set()
        for _ in range(nb):
            if i >= len(lines):
                raise DataError("file ends where a body info line was expected (truncated file)", file=path,
                                sample=f"frame {t}", field="body info", line=i + 1)
            bid, _, rest = lines[i].strip().partition(" ")
            if not bid.isdigit():
                raise DataError(f"body info line must start with an integer body ID, got {lines[i][:60]!r}",
                                file=path, sample=f"frame {t}", field="bodyID", line=i + 1)
            if bid in seen:
                raise DataError(f"body ID {bid} appears twice in one frame", file=path, sample=f"frame {t}",
                                field="bodyID", line=i + 1)
            seen.add(bid)
            acc.slot_b.append(acc.ids.setdefault(bid, len(acc.ids)))
            acc.slot_t.append(t)
            acc.slot_line.append(i + 1)
            acc.info_rows.append(rest)
            nj = _int_line(lines, i + 1, path, "joint count", t)
            if nj != NUM_JOINTS:
                raise DataError(f"joint count is {nj}, NTU Kinect v2 bodies have {NUM_JOINTS}", file=path,
                                sample=f"frame {t}", field="joint count", line=i + 2)
            if i + 2 + NUM_JOINTS > len(lines):
                raise DataError(f"file ends after {len(lines) - i - 2} of {NUM_JOINTS} joint lines "
                                f"(truncated file)", file=path, sample=f"frame {t}", field="joint line",
                                line=len(lines))
            acc.joint_rows.extend(lines[i + 2:i + 2 + NUM_JOINTS])  # list slice: no per-line Python
            i += 2 + NUM_JOINTS
    if i < len(lines):
        raise DataError(f"unexpected data after the last of {T} frames: {lines[i][:60]!r} (frame count "
                        f"too small, or an extra line)", file=path, field="frame count", line=i + 1)


def read_skeleton(path, *, max_bodies_per_frame: int = 6) -> NTUSkeleton:
    """Parse one NTU ``.skeleton`` file strictly. Raises ``DataError`` (``EmptySkeletonError`` when
    no frame has a body). Frames without bodies are allowed and stay zero (``present`` False)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError("no such file", file=path) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not a text file ({e.reason} at byte {e.start})", file=path) from None
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", file=path) from None
    lines = text.splitlines()  # handles \r\n and \n alike
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError("empty file", file=path, field="frame count", line=1)
    T = _int_line(lines, 0, path, "frame count")
    if T < 0:
        raise DataError(f"negative frame count {T}", file=path, field="frame count", line=1)

    acc = _Blocks(T)
    try:
        _walk(lines, path, T, max_bodies_per_frame, acc)
    except DataError as err:
        # a missing joint line shifts every later header, so the walk trips over a later line; the
        # earliest malformed joint/info row (if any) is the real cause and is what we report
        early = acc.earliest_width_error(path)
        raise (early if early is not None and early.line < (err.line or 0) else err) from None
    if not acc.slot_b:
        raise EmptySkeletonError(f"no body in any of the {T} frames (empty sample)", file=path)
    ids, slot_b, slot_t, slot_line = acc.ids, acc.slot_b, acc.slot_t, acc.slot_line
    info_rows, joint_rows, per_frame = acc.info_rows, acc.joint_rows, acc.per_frame

    b_idx, t_idx = np.asarray(slot_b), np.asarray(slot_t)
    info_line = np.asarray(slot_line)
    info = _to_array(path, info_rows, info_line, t_idx, 9, BODY_FIELDS[1:], "body info", skipped=1)
    joint_line, joint_frame = acc.joint_index()
    J = _to_array(path, joint_rows, joint_line, joint_frame, 12, JOINT_FIELDS, "joint line")
    state = J[:, 11]
    bad = np.flatnonzero(~np.isin(state, (0.0, 1.0, 2.0)))
    if bad.size:
        r = int(bad[0])
        raise DataError(f"tracking state must be 0, 1 or 2, got {state[r]:g}", file=path,
                        sample=f"frame {joint_frame[r]}", field="trackingState", line=int(joint_line[r]))

    B = len(ids)
    J = J.reshape(len(slot_b), NUM_JOINTS, 12)
    full = np.zeros((B, T, NUM_JOINTS, 12))
    full[b_idx, t_idx] = J  # scatter every (frame, body) block at once
    present = np.zeros((B, T), dtype=bool)
    present[b_idx, t_idx] = True
    binfo = np.zeros((B, T, 9))
    binfo[b_idx, t_idx] = info
    names = ("clipped_edges", "hand_left_confidence", "hand_left_state", "hand_right_confidence",
             "hand_right_state", "is_restricted")
    body_info = {n: binfo[..., k] for k, n in enumerate(names)}
    body_info["lean"] = binfo[..., 6:8]
    body_info["tracking_state"] = binfo[..., 8]
    return NTUSkeleton(
        name=path.name.split(".")[0], num_frames=T, body_ids=[int(k) for k in ids], present=present,
        xyz=full[..., 0:3], depth_xy=full[..., 3:5], color_xy=full[..., 5:7], orientation=full[..., 7:11],
        tracking=full[..., 11].astype(np.int8), body_info=body_info, bodies_per_frame=per_frame)


# -------------------------------------------------------------------------------- body selection
def motion_energy(sk: NTUSkeleton) -> np.ndarray:
    """(B,) motion energy per body: sum over joints and x/y/z of the variance over the frames the body
    is present in (the NTU authors' main-actor heuristic; a body seen in one frame scores 0).
    Always computed on ``xyz`` (metres), whatever field is later selected."""
    n = sk.present.sum(1)  # (B,)
    w = sk.present[:, :, None, None]
    mean = (sk.xyz * w).sum(1) / np.maximum(n, 1)[:, None, None]          # (B,25,3)
    var = (((sk.xyz - mean[:, None]) ** 2) * w).sum(1) / np.maximum(n, 1)[:, None, None]
    return var.sum((1, 2))


def body_order(sk: NTUSkeleton) -> np.ndarray:
    """Body indices by decreasing motion energy; ties keep first-appearance order."""
    return np.argsort(-motion_energy(sk), kind="stable")


def select_bodies(sk: NTUSkeleton, max_persons: int = 2, field: str = "xyz") -> np.ndarray:
    """(M=max_persons, T, 25, C) array of ``field`` for the most moving bodies (person 0 moves most),
    zero-padded when the file has fewer bodies. Raw values: no normalisation is baked in."""
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    if field not in ("xyz", "depth_xy", "color_xy", "orientation", "tracking"):
        raise ValueError(f"field must be a per-joint array of NTUSkeleton, got {field!r}")
    src = np.asarray(getattr(sk, field))
    keep = body_order(sk)[:max_persons]
    out = np.zeros((max_persons, *src.shape[1:]), dtype=src.dtype)
    out[:len(keep)] = src[keep]
    return out


# ---------------------------------------------------------------------------------- names, splits
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
XSUB_TRAIN_60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XSUB_TRAIN_120 = XSUB_TRAIN_60 + (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81,
                                  82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
XVIEW_TRAIN_CAMERAS = (2, 3)
PROTOCOLS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}


def parse_name(name) -> dict:
    """``"S001C002P003R002A013"`` (or a path / ``.skeleton`` file) -> dict(setup, camera, performer,
    replication, action), all 1-based ints as in the name; the 0-based label is ``action - 1``."""
    stem = Path(str(name)).name.split(".")[0]
    m = _NAME.fullmatch(stem)
    if not m:
        raise DataError(f"not an NTU sample name (expected SsssCcccPpppRrrrAaaa), got {stem!r}",
                        file=name, field="name")
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


def detect_dataset(names: Iterable[str]) -> str:
    """'ntu120' if any name has setup > 17 or action > 60, else 'ntu60'."""
    for n in names:
        d = parse_name(n)
        if d["setup"] > 17 or d["action"] > 60:
            return "ntu120"
    return "ntu60"


def ntu_split(names: Iterable[str], protocol: str, dataset: str = "ntu60") -> dict[str, list[str]]:
    """Official split of ``names`` (order kept): {'<protocol>_train': [...], '<protocol>_val': [...]}.
    xsub: training performers (20 for NTU-60, 53 for NTU-120); xview: cameras 2, 3 train (NTU-60);
    xset: even setup ids train (NTU-120)."""
    if dataset not in PROTOCOLS:
        raise ValueError(f"dataset must be one of {sorted(PROTOCOLS)}, got {dataset!r}")
    if protocol not in PROTOCOLS[dataset]:
        raise ValueError(f"{dataset} has protocols {PROTOCOLS[dataset]}, not {protocol!r}")
    subjects = set(XSUB_TRAIN_60 if dataset == "ntu60" else XSUB_TRAIN_120)
    out: dict[str, list[str]] = {f"{protocol}_train": [], f"{protocol}_val": []}
    for n in names:
        d = parse_name(n)
        train = (d["performer"] in subjects if protocol == "xsub" else
                 d["camera"] in XVIEW_TRAIN_CAMERAS if protocol == "xview" else d["setup"] % 2 == 0)
        out[f"{protocol}_{'train' if train else 'val'}"].append(n)
    return out


def missing_samples(dataset: str = "ntu120", path=None) -> set[str]:
    """Names of the official samples with missing/empty skeletons: 302 for 'ntu60', 535 for 'ntu120'
    (a superset). ``path``: read a user list instead; every SsssCcccPpppRrrrAaaa token in it counts,
    so the official file with its two prose lines works as is."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise DataError(f"cannot read missing-sample list: {e.strerror or e}", file=path) from None
    else:
        if dataset not in PROTOCOLS:
            raise ValueError(f"dataset must be one of {sorted(PROTOCOLS)}, got {dataset!r}")
        fname = "ntu_missing_60.txt" if dataset == "ntu60" else "ntu_missing_120.txt"
        text = resources.files("hetskel.data").joinpath(fname).read_text(encoding="utf-8")
    return {m.group(0) for m in _NAME.finditer(text)}


# The authors' action names (github.com/shahroudy/NTURGB-D README), A001..A120; label = index.
NTU120_CLASSES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down",
    "make ok sign", "make victory sign", "staple book", "counting money", "cutting nails",
    "cutting paper (using scissors)", "snapping fingers", "open bottle", "sniff (smell)", "squat down",
    "toss a coin", "fold paper", "ball up paper", "play magic cube", "apply cream on face",
    "apply cream on hand back", "put on bag", "take off bag", "put something into a bag",
    "take something out of a bag", "open a box", "move heavy objects", "shake fist",
    "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles", "arm swings",
    "running on the spot", "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn",
    "stretch oneself", "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person", "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)
NTU60_CLASSES = NTU120_CLASSES[:60]


def class_names(dataset: str) -> list[str]:
    return list(NTU60_CLASSES if dataset == "ntu60" else NTU120_CLASSES)


# --------------------------------------------------------------------------------------- convert
@dataclass
class ConvertReport:
    """What ``convert_ntu`` did. ``skipped``: (name, reason) for listed/empty samples (not errors);
    ``bad``: (file, error) for files that could not be read; nothing of theirs was written."""

    out_path: Path | None
    dataset: str
    fields: str
    converted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.bad and self.out_path is not None

    def format(self, max_lines: int = 20) -> str:
        out = [f"converted {self.converted} sample(s) ({self.dataset}, fields={self.fields})"
               + (f" -> {self.out_path}" if self.out_path else "; NOTHING WRITTEN (no sample converted)")]
        if self.splits:
            out.append("splits: " + "  ".join(f"{k}={v}" for k, v in self.splits.items()))
        for title, rows in (("skipped", self.skipped), ("bad", self.bad)):
            out.append(f"{title}: {len(rows)}")
            # a DataError message already starts with the file name: do not print it twice
            out += [f"  {why}" if why.startswith(name) else f"  {name}: {why}" for name, why in rows[:max_lines]]
            if len(rows) > max_lines:
                out.append(f"  ... and {len(rows) - max_lines} more")
        return "\n".join(out)


_SCORE_OF_STATE = np.array([0.0, 0.5, 1.0], dtype=np.float32)  # tracking 0 / 1 inferred / 2 tracked


def ntu_annotation(sk: NTUSkeleton, max_persons: int = 2, fields: str = "xyz") -> dict:
    """One PYSKL annotation for a parsed file. fields='xyz': keypoint (M,T,25,3) float32 camera metres;
    'color2d': keypoint (M,T,25,2) float32 colour-image pixels + keypoint_score (M,T,25) from the
    tracking state (tracked 1.0, inferred 0.5, not tracked or padding 0.0)."""
    meta = parse_name(sk.name)
    keep = body_order(sk)[:max_persons]
    ann = {"frame_dir": sk.name, "label": meta["action"] - 1, "total_frames": sk.num_frames,
           "img_shape": IMG_SHAPE}
    if fields == "xyz":
        ann["keypoint"] = select_bodies(sk, max_persons, "xyz").astype(np.float32)
    elif fields == "color2d":
        ann["keypoint"] = select_bodies(sk, max_persons, "color_xy").astype(np.float32)
        score = np.zeros((max_persons, sk.num_frames, NUM_JOINTS), dtype=np.float32)
        score[:len(keep)] = _SCORE_OF_STATE[sk.tracking[keep]]  # absent frames have state 0 -> 0.0
        ann["keypoint_score"] = score
    else:
        raise ValueError(f"fields must be 'xyz' or 'color2d', got {fields!r}")
    ann.update(setup=meta["setup"], camera=meta["camera"], subject=meta["performer"],
               replication=meta["replication"], raw_file=f"{sk.name}.skeleton")
    return ann


def _convert_one(path: str, max_persons: int, fields: str, max_bodies: int):
    """Worker: ('ok', name, annotation) | ('skip', name, reason) | ('bad', path, error)."""
    try:
        sk = read_skeleton(path, max_bodies_per_frame=max_bodies)
    except EmptySkeletonError as e:
        return "skip", Path(path).name.split(".")[0], e.reason
    except DataError as e:
        return "bad", path, str(e)
    return "ok", sk.name, ntu_annotation(sk, max_persons, fields)


def convert_ntu(src_dir, out_path, *, max_persons: int = 2, dataset: str = "auto", workers: int | None = None,
                progress: bool = True, fields: str = "xyz", missing_list=None,
                max_bodies_per_frame: int = 6) -> ConvertReport:
    """Convert every ``*.skeleton`` under ``src_dir`` (recursively) into one PYSKL pickle at ``out_path``.

    dataset: 'ntu60' | 'ntu120' | 'auto' (ntu120 when any setup > 17 or action > 60).
    missing_list: None -> the official list of the dataset (302 / 535 names); a path -> names read from
      that file; an iterable of names (``()`` disables skipping). Listed samples and files without any
      body are *skipped*; unreadable files are *bad*: reported with the error, never written.
    workers: processes (default min(cpu, 8)); 1 parses inline. Output: layout 'ntu25', raw values
    (no normalisation), ``split`` for every protocol of the dataset, the authors' ``class_names``.
    """
    import concurrent.futures as cf
    import functools
    import os

    import tqdm

    from hetskel.data.pyskl import save_pyskl

    if dataset not in ("auto", *PROTOCOLS):
        raise ValueError(f"dataset must be 'auto', 'ntu60' or 'ntu120', got {dataset!r}")
    if fields not in ("xyz", "color2d"):
        raise ValueError(f"fields must be 'xyz' or 'color2d', got {fields!r}")
    if max_persons < 1 or max_bodies_per_frame < 1:
        raise ValueError(f"max_persons and max_bodies_per_frame must be >= 1, got {max_persons}, "
                         f"{max_bodies_per_frame}")
    src = Path(src_dir)
    if not src.is_dir():
        raise DataError("is not a directory (expected a folder of NTU .skeleton files)", file=src)
    files = sorted(src.rglob("*.skeleton"), key=lambda p: (p.name, str(p)))
    if not files:
        raise DataError("contains no *.skeleton files", file=src)

    report = ConvertReport(out_path=None, dataset=dataset, fields=fields)
    by_name: dict[str, Path] = {}
    for p in files:  # names first: cheap checks in this process, before any parsing
        try:
            meta = parse_name(p)
        except DataError as e:
            report.bad.append((str(p), str(e)))
            continue
        stem = p.name.split(".")[0]
        if stem in by_name:
            report.bad.append((str(p), f"duplicate sample name, also at {by_name[stem]}"))
        elif dataset == "ntu60" and (meta["setup"] > 17 or meta["action"] > 60):
            report.bad.append((str(p), f"not an NTU-60 sample (setup {meta['setup']}, action {meta['action']})"))
        else:
            by_name[stem] = p
    ds = detect_dataset(by_name) if dataset == "auto" else dataset
    report.dataset = ds
    if missing_list is None:
        missing = missing_samples(ds)
    elif isinstance(missing_list, (str, Path)):
        missing = missing_samples(path=missing_list)
    else:
        missing = set(missing_list)
    todo = []
    for stem, p in by_name.items():
        if stem in missing:
            report.skipped.append((stem, "on the missing-skeleton list"))
        else:
            todo.append(str(p))

    workers = min(os.cpu_count() or 1, 8) if workers is None else int(workers)
    fn = functools.partial(_convert_one, max_persons=max_persons, fields=fields, max_bodies=max_bodies_per_frame)
    anns = []
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(todo))) if workers > 1 and len(todo) > 1 else None
    try:
        results = (pool.map(fn, todo, chunksize=max(1, len(todo) // (16 * workers))) if pool
                   else map(fn, todo))
        for status, name, payload in tqdm.tqdm(results, total=len(todo), desc="convert-ntu", unit="file",
                                               disable=not progress):
            if status == "ok":
                anns.append(payload)
            elif status == "skip":
                report.skipped.append((name, payload))
            else:
                report.bad.append((name, payload))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    report.converted = len(anns)
    if not anns:
        return report
    names = [a["frame_dir"] for a in anns]
    split: dict[str, list[str]] = {}
    for protocol in PROTOCOLS[ds]:
        split.update(ntu_split(names, protocol, ds))
    report.splits = {k: len(v) for k, v in split.items()}
    data = {"split": split, "annotations": anns, "layout": "ntu25", "dataset": ds,
            "class_names": class_names(ds), "fields": fields}
    report.out_path = save_pyskl(data, out_path)
    return report
