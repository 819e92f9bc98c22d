"""NTU RGB+D 60/120 raw ``.skeleton`` files: strict vectorised reader, body selection, PYSKL annotation.

File format (Kinect v2 SDK dump, CRLF or LF)::

    T                                   frame count
    per frame:  B                       body count (0 allowed: an empty frame)
      per body: bodyID + 9 info fields  clippedEdges handLeftConfidence handLeftState
                                        handRightConfidence handRightState isRestricted leanX leanY
                                        trackingState
                25                      joint count
                25 x 12 fields          x y z (camera metres) depthX depthY (512x424 px)
                                        colorX colorY (1920x1080 px) orientationW X Y Z trackingState

``read_skeleton`` scans the file in windows into a per-line table (token counts, the value of each
one-integer line; ``hetskel.data.ntu_text.scan``), walks the frame headers over it (O(frames) Python
steps, the rest in bulk), checks body IDs x frames against the array budget, and only then converts
the numbers, window by window, straight into the output arrays (bit-exact numpy passes over the bytes
instead of one ``float()`` per value). Peak memory: the file, ~16 bytes a line, the declared arrays and
a few MB of scratch (issue 14: <= 4x the file + the arrays). Anything irregular sends it to a line-by-line walk whose only job is to raise the precise
``DataError`` (file, line, frame, field). ~4x faster than a plain readline/float() parser
(``python -m hetskel.bench.ntu_reader``). Names, splits, class names and missing lists are in
``hetskel.data.ntu_meta``; converting a folder to PYSKL in ``hetskel.data.ntu_convert``.

    >>> sk = read_skeleton("S001C001P001R001A001.skeleton")
    >>> sk.xyz.shape            # (B, T, 25, 3): B distinct body IDs in the file
    >>> x = select_bodies(sk)   # (2, T, 25, 3): the 2 most moving bodies, zero-padded
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hetskel.data.errors import DataError
from hetskel.data.files import read_regular_file
from hetskel.data.ntu_meta import (
    parse_name,
)
from hetskel.data.ntu_text import Lines, Tokens, scan

NUM_JOINTS = 25
JOINT_FIELDS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY",
                "orientationW", "orientationX", "orientationY", "orientationZ", "trackingState")
BODY_FIELDS = ("bodyID", "clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
               "handRightState", "isRestricted", "leanX", "leanY", "trackingState")
IMG_SHAPE = (1080, 1920)  # (h, w) of the colour camera that colorX/colorY refer to
_INFO_NAMES = ("clipped_edges", "hand_left_confidence", "hand_left_state", "hand_right_confidence",
               "hand_right_state", "is_restricted")


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


# ---------------------------------------------------------------------------------- header walks
@dataclass
class _Slots:
    """One entry per (frame, body) occurrence, in file order (lists while walking, arrays after)."""

    per_frame: list | np.ndarray          # (T,) body count of each frame
    ids: dict[str, int]                   # body ID text -> body index (first appearance)
    body: list | np.ndarray               # (S,) body index of each occurrence
    frame: list | np.ndarray              # (S,) its frame
    info_line: list | np.ndarray          # (S,) 0-based line of its body info line
    complete: int = 0                     # leading occurrences whose joint lines the walk reached


def _fast_walk(tok: Tokens | Lines, L: int, max_bodies: int) -> _Slots | None:
    """The header walk of a well-formed file: O(frames) Python steps plus bulk checks; None at the
    first irregularity, which ``_careful_walk`` then finds and reports exactly."""
    count, heads = tok.count[:L], tok.head[:L]                         # head: integer lines, else NaN
    # (heads[i] on the array, not a .tolist(): that would be a float object, 32 bytes, per line)
    T = heads[0]
    if not T >= 0:
        return None
    per_frame, info, i = [], [], 1
    for _ in range(int(T)):
        nb = heads[i] if i < L else np.nan
        if not 0 <= nb <= max_bodies:
            return None
        nb = int(nb)
        per_frame.append(nb)
        info.extend(range(i + 1, i + 1 + (2 + NUM_JOINTS) * nb, 2 + NUM_JOINTS))
        i += 1 + (2 + NUM_JOINTS) * nb
    info = np.asarray(info, dtype=np.int64)
    if i != L or not (heads[info + 1] == NUM_JOINTS).all() or not (count[info] > 0).all():
        return None
    frame = np.repeat(np.arange(len(per_frame)), per_frame)
    ids: dict[str, int] = {}
    body = []
    for bid in tok.first_texts(info):
        if not (bid.isascii() and bid.isdigit()):
            return None
        body.append(ids.setdefault(bid, len(ids)))
    body = np.asarray(body, dtype=np.int64)
    # a body ID twice in one frame (unique sorts the S slots; a bincount over frames x IDs would be
    # quadratic in a file whose every frame has a new ID)
    if body.size and np.unique(frame * len(ids) + body).size != body.size:
        return None
    return _Slots(np.asarray(per_frame, dtype=np.int64), ids, body, frame, info, complete=info.size)


def _int_error(lines: list[str], i: int, path, what: str, frame=None) -> DataError:
    """The DataError for line ``i`` (0-based) that should hold the integer ``what``."""
    sample = None if frame is None else f"frame {frame}"
    if i >= len(lines):
        return DataError(f"file ends at line {i + 1} where the {what} was expected (truncated file)",
                         file=path, sample=sample, field=what, line=i + 1)
    s = lines[i].strip()
    n = len(s.split())
    hint = {12: " (a joint line: one joint line too many in the body before it?)",
            10: " (a body info line: a line missing before it?)"}.get(
        n, f" (a line of {n} fields: an extra or missing line before it?)" if n > 1 else "")
    return DataError(f"expected an integer {what}, got {s[:60]!r}{hint}", file=path, sample=sample,
                     field=what, line=i + 1)


def _int_line(lines: list[str], i: int, path, what: str, frame=None) -> int:
    try:
        return int(lines[i])  # int() ignores surrounding whitespace, like the strip() of the message
    except (IndexError, ValueError):
        raise _int_error(lines, i, path, what, frame) from None


def _careful_walk(lines: list[str], path, max_bodies: int, tok: Tokens) -> _Slots:
    """Line-by-line header walk that raises the precise DataError (the fast walk found something off)."""
    T = _int_line(lines, 0, path, "frame count")
    if T < 0:
        raise DataError(f"negative frame count {T}", file=path, field="frame count", line=1)
    acc = _Slots([], {}, [], [], [])  # lists: a huge frame count in a short file must not allocate
    try:
        _walk_lines(lines, path, T, max_bodies, acc)
    except DataError as err:
        # a missing joint line shifts every later header, so the walk trips over a later line; the
        # earliest malformed joint/info line (if any) is the real cause and is what we report
        early = _width_error(path, tok, acc)
        raise (early if early is not None and early.line < (err.line or 0) else err) from None
    acc.per_frame = np.asarray(acc.per_frame, dtype=np.int64)
    return acc


def _walk_lines(lines: list[str], path, T: int, max_bodies: int, acc: _Slots) -> None:
    i, L = 1, len(lines)
    for t in range(T):
        nb = _int_line(lines, i, path, "body count", t)
        if not 0 <= nb <= max_bodies:
            raise DataError(f"{nb} bodies in one frame (allowed 0..{max_bodies}; Kinect v2 tracks at most 6)",
                            file=path, sample=f"frame {t}", field="body count", line=i + 1)
        acc.per_frame.append(nb)
        i += 1
        seen = set()
        for _ in range(nb):
            if i >= L:
                raise DataError("file ends where a body info line was expected (truncated file)", file=path,
                                sample=f"frame {t}", field="body info", line=i + 1)
            head = lines[i].split(None, 1)
            bid = head[0] if head else ""
            if not (bid.isascii() and bid.isdigit()):
                raise DataError(f"body info line must start with an integer body ID, got {lines[i][:60]!r}",
                                file=path, sample=f"frame {t}", field="bodyID", line=i + 1)
            if bid in seen:
                raise DataError(f"body ID {bid} appears twice in one frame", file=path, sample=f"frame {t}",
                                field="bodyID", line=i + 1)
            seen.add(bid)
            acc.body.append(acc.ids.setdefault(bid, len(acc.ids)))
            acc.frame.append(t)
            acc.info_line.append(i)
            nj = _int_line(lines, i + 1, path, "joint count", t)
            if nj != NUM_JOINTS:
                raise DataError(f"joint count is {nj}, NTU Kinect v2 bodies have {NUM_JOINTS}", file=path,
                                sample=f"frame {t}", field="joint count", line=i + 2)
            if i + 2 + NUM_JOINTS > L:
                raise DataError(f"file ends after {L - i - 2} of {NUM_JOINTS} joint lines (truncated file)",
                                file=path, sample=f"frame {t}", field="joint line", line=L)
            acc.complete += 1
            i += 2 + NUM_JOINTS
    if i < L:
        raise DataError(f"unexpected data after the last of {T} frames: {lines[i][:60]!r} (frame count "
                        f"too small, or an extra line)", file=path, field="frame count", line=i + 1)


# ------------------------------------------------------------------------------ bulk value checks
def _width_error(path, tok: Tokens, acc: _Slots) -> DataError | None:
    """DataError for the earliest info line without 10 fields or joint line without 12, else None."""
    info = np.asarray(acc.info_line, dtype=np.int64)                                   # (S,)
    frame = np.asarray(acc.frame, dtype=np.int64)
    joint = info[:acc.complete, None] + 2 + np.arange(NUM_JOINTS)                      # (S',25)
    found = []
    for lines, width, what in ((info[:, None], 10, "body info"), (joint, 12, "joint line")):
        n = tok.count[lines]
        bad = np.argwhere(n != width)
        if bad.size:  # argwhere is row-major: the first hit is the earliest line of this kind
            s, j = bad[0]
            found.append((int(lines[s, j]), int(n[s, j]), int(frame[s]), width, what))
    if not found:
        return None
    line, n, t, width, what = min(found)
    return DataError(f"{what}: expected {width} fields, got {n} (truncated line, or a missing/extra joint "
                     f"line)", file=path, sample=f"frame {t}", field=what, line=line + 1)


def _check_values(path, info: np.ndarray, joints: np.ndarray, info_line: np.ndarray, frame: np.ndarray):
    """DataError for the earliest non-finite value of these slots (info (S,9), joints (S,300)),
    else the earliest bad tracking state as ``(line, message, frame)`` (reported only once the whole
    file is known to be finite), else None."""
    with np.errstate(invalid="ignore", over="ignore"):  # one pass: a NaN or inf anywhere spoils the sum
        finite = np.isfinite(info.sum() + joints.sum())
    if not finite:
        found = []
        for vals, width, names, what, line0 in ((info, 9, BODY_FIELDS[1:], "body info", 1),
                                                (joints, 12, JOINT_FIELDS, "joint line", 3)):
            bad = np.argwhere(~np.isfinite(vals))
            if bad.size:  # row-major: the first hit is the earliest value of this kind in the file
                s, c = bad[0]
                found.append((int(info_line[s]) + line0 + c // width, what, names[c % width], int(frame[s])))
        if found:  # (else finite values whose sum overflowed)
            line, what, name, t = min(found)
            raise DataError(f"{what}: value is not a finite number", file=path, sample=f"frame {t}",
                            field=name, line=line)
    state = joints[:, 11::12]                                                          # (S,25)
    ok = np.isin(state, (0.0, 1.0, 2.0))
    if not ok.all():
        s, j = np.argwhere(~ok)[0]
        return (f"tracking state must be 0, 1 or 2, got {state[s, j]:g}", int(frame[s]), int(info_line[s]) + 3 + j)
    return None


def _fill(path, tok: Tokens | Lines, acc: _Slots, full: np.ndarray, binfo: np.ndarray) -> None:
    """Convert the values of every occurrence, window by window (``tok.blocks``: a body's 25 joint
    lines are 300 consecutive tokens), into ``full`` (B*T, 300) and ``binfo`` (B*T, 9) at row
    body * T + frame, checking them on the way (the earliest bad value of the file is reported)."""
    info_line, frame = np.asarray(acc.info_line, dtype=np.int64), np.asarray(acc.frame, dtype=np.int64)
    row = np.asarray(acc.body, dtype=np.int64) * len(acc.per_frame) + frame
    bad_state = None
    for s, e, info, joints in tok.blocks(info_line, 10, 2, NUM_JOINTS, 12):  # info: skip the body ID
        found = _check_values(path, info, joints, info_line[s:e], frame[s:e])
        bad_state = bad_state or found
        full[row[s:e]] = joints
        binfo[row[s:e]] = info
    if bad_state is not None:
        msg, t, line = bad_state
        raise DataError(msg, file=path, sample=f"frame {t}", field="trackingState", line=line)


# Bounds. A reader checks what a file declares against the file's own size and a ceiling BEFORE it
# allocates: a 3.8 MB file whose every frame carries a new body ID declares B x T = 2200 x 2200
# (body, frame) slots, 5 GiB of float64 arrays. Both ceilings are arguments of read_skeleton /
# convert_ntu (and options of convert-ntu); the defaults are far above any real NTU file (< 10 MB,
# arrays < 20 MB).
MAX_FILE_BYTES = 256 * 2**20      # a .skeleton file larger than this is refused unread
MAX_ARRAY_BYTES = 256 * 2**20     # the arrays one file (or one converted sample) may need
# bytes per (body, frame) slot of NTUSkeleton: 25x12 float64 joint fields, 9 float64 info fields,
# present (bool), tracking (int8 per joint)
SLOT_BYTES = NUM_JOINTS * 12 * 8 + 9 * 8 + 1 + NUM_JOINTS


def _read_bytes(path: Path, max_file_bytes: int = MAX_FILE_BYTES) -> bytes:
    return read_regular_file(path, max_file_bytes, "for one .skeleton file (real NTU files are < 10 MB; raise "
                             "max_file_bytes to read it anyway)")


def check_array_budget(need: int, limit: int, what: str, path, sample=None) -> None:
    """DataError when ``need`` bytes of arrays exceed ``limit`` (nothing allocated yet)."""
    if need > limit:
        raise DataError(f"{what} would need {need / 2**30:.2f} GiB of arrays, over the limit of "
                        f"{limit / 2**20:.0f} MiB (raise max_array_bytes to read it anyway)",
                        file=path, sample=sample)


def _lines(path: Path, raw: bytes) -> list[str]:
    """The file's lines as text (trailing blank lines dropped), for the careful walk and odd files."""
    try:
        lines = raw.decode("utf-8").splitlines()  # handles \r\n and \n alike
    except UnicodeDecodeError as e:
        raise DataError(f"not a text file ({e.reason} at byte {e.start})", file=path) from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_skeleton(path, *, max_bodies_per_frame: int = 6, max_file_bytes: int = MAX_FILE_BYTES,
                  max_array_bytes: int = MAX_ARRAY_BYTES) -> NTUSkeleton:
    """Parse one NTU ``.skeleton`` file strictly. Raises ``DataError`` (``EmptySkeletonError`` when
    no frame has a body). Frames without bodies are allowed and stay zero (``present`` False).

    Bounded: only a regular file of at most ``max_file_bytes`` is read, and a file whose distinct
    body IDs x frames would need more than ``max_array_bytes`` of arrays (``SLOT_BYTES`` per
    (body, frame) slot) is refused before they are allocated."""
    path = Path(path)
    raw = _read_bytes(path, max_file_bytes)
    tok, lines = scan(raw), None
    if tok is None:  # not plain ASCII with \n or \r\n line ends: the str.split() route
        lines = _lines(path, raw)
        tok = Tokens.from_lines(lines)
    blank = np.equal(tok.count, 0)
    if blank.all():
        raise DataError("empty file", file=path, field="frame count", line=1)
    L = blank.size - int(np.argmin(blank[::-1]))  # lines up to the last non-blank one
    del blank
    acc = _fast_walk(tok, L, max_bodies_per_frame)
    if acc is None:
        acc = _careful_walk(_lines(path, raw) if lines is None else lines, path, max_bodies_per_frame, tok)
    T = len(acc.per_frame)
    if not len(acc.body):
        raise EmptySkeletonError(f"no body in any of the {T} frames (empty sample)", file=path)
    check_array_budget(len(acc.ids) * T * SLOT_BYTES, max_array_bytes,
                       f"{len(acc.ids)} distinct body IDs x {T} frames", path)
    err = _width_error(path, tok, acc)
    if err is not None:
        raise err
    B, b_idx, t_idx = len(acc.ids), np.asarray(acc.body), np.asarray(acc.frame)
    full = np.zeros((B, T, NUM_JOINTS, 12))
    binfo = np.zeros((B, T, 9))
    _fill(path, tok, acc, full.reshape(B * T, NUM_JOINTS * 12), binfo.reshape(B * T, 9))
    present = np.zeros((B, T), dtype=bool)
    present[b_idx, t_idx] = True
    body_info = {n: binfo[..., k] for k, n in enumerate(_INFO_NAMES)}
    body_info["lean"] = binfo[..., 6:8]
    body_info["tracking_state"] = binfo[..., 8]
    return NTUSkeleton(
        name=path.name.split(".")[0], num_frames=T, body_ids=[int(k) for k in acc.ids], present=present,
        xyz=full[..., 0:3], depth_xy=full[..., 3:5], color_xy=full[..., 5:7], orientation=full[..., 7:11],
        tracking=full[..., 11].astype(np.int8), body_info=body_info, bodies_per_frame=acc.per_frame)


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


MAX_PERSONS = 64  # bodies kept per sample: Kinect v2 tracks 6 at once; more is padding, not data


def select_bodies(sk: NTUSkeleton, max_persons: int = 2, field: str = "xyz") -> np.ndarray:
    """(M=max_persons, T, 25, C) array of ``field`` for the most moving bodies (person 0 moves most),
    zero-padded when the file has fewer bodies. Raw values: no normalisation is baked in.
    ``max_persons`` is 1..``MAX_PERSONS`` (100000 would ask for GiBs of zero padding)."""
    if isinstance(max_persons, bool) or not isinstance(max_persons, (int, np.integer)) \
            or not 1 <= max_persons <= MAX_PERSONS:
        raise ValueError(f"max_persons must be an integer in 1..{MAX_PERSONS}, got {max_persons!r}")
    if field not in ("xyz", "depth_xy", "color_xy", "orientation", "tracking"):
        raise ValueError(f"field must be a per-joint array of NTUSkeleton, got {field!r}")
    src = np.asarray(getattr(sk, field))
    keep = body_order(sk)[:max_persons]
    out = np.zeros((max_persons, *src.shape[1:]), dtype=src.dtype)
    out[:len(keep)] = src[keep]
    return out


_SCORE_OF_STATE = np.array([0.0, 0.5, 1.0], dtype=np.float32)  # tracking 0 / 1 inferred / 2 tracked


def ntu_annotation(sk: NTUSkeleton, max_persons: int = 2, fields: str = "xyz") -> dict:
    """One PYSKL annotation for a parsed file. fields='xyz': keypoint (M,T,25,3) float32 camera metres;
    'color2d': keypoint (M,T,25,2) float32 colour-image pixels + keypoint_score (M,T,25) from the
    tracking state (tracked 1.0, inferred 0.5, not tracked or padding 0.0).

    ``M`` is the clip's own body count, at most ``max_persons`` (at least 1): like PYSKL's files, a
    one-person clip keeps one person; padding to a batch's person count is the loader's job
    (``hetskel.data.batches.load_dataset(max_persons=...)``)."""
    meta = parse_name(sk.name)
    keep = body_order(sk)[:max_persons]
    persons = max(1, len(keep))
    ann = {"frame_dir": sk.name, "label": meta["action"] - 1, "total_frames": sk.num_frames,
           "img_shape": IMG_SHAPE}
    if fields == "xyz":
        ann["keypoint"] = select_bodies(sk, persons, "xyz").astype(np.float32)
    elif fields == "color2d":
        ann["keypoint"] = select_bodies(sk, persons, "color_xy").astype(np.float32)
        score = np.zeros((persons, sk.num_frames, NUM_JOINTS), dtype=np.float32)
        score[:len(keep)] = _SCORE_OF_STATE[sk.tracking[keep]]  # absent frames have state 0 -> 0.0
        ann["keypoint_score"] = score
    else:
        raise ValueError(f"fields must be 'xyz' or 'color2d', got {fields!r}")
    ann.update(setup=meta["setup"], camera=meta["camera"], subject=meta["performer"],
               replication=meta["replication"], raw_file=f"{sk.name}.skeleton")
    return ann
