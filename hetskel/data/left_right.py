"""Is a layout's left/right assignment mirrored? A check from the data, before training.

A mirrored assignment (the joints a file calls ``left_*`` are the person's right ones) is invisible
to every loss but flips every left/right-dependent augmentation, word and transfer. It shows in
the data as the wrong handedness of the body frame:

* 3D (right-handed coordinates, as Kinect/NTU/MSR/UTD camera space): with ``up`` = spine (base ->
  shoulders) and ``forward`` the way the person faces, the person's left is ``up x forward``; the
  left joints must lie on that side of the right ones. ``forward`` comes from independent cues:
  the direction to the camera (people face the sensor; only when the data is in camera space, the
  body far from the origin), the feet (toes ahead of the ankles) and the face (nose ahead of the
  ears or the head/neck).
* 2D image coordinates (x right, y down): a person facing the camera has their left on the
  image's right, so ``up x (left - right)`` is positive in an unmirrored image. With scores and a
  face (nose and eyes), only the frames whose face is seen well count (people facing the camera). Kinect colour and
  depth images are mirrored (pass ``mirrored_image=True``); a person seen from behind also flips it,
  so this cue is a majority over clips.
* optional labels of one-sided actions (``right_actions``, ``left_actions``): the named side's
  wrist/hand must travel further than the other one.

``check_left_right(data, layout)`` returns a ``LeftRightReport`` (verdict ``"ok"``, ``"mirrored"``
or ``"unclear"``, the fraction of frames each cue finds consistent, one readable message).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hetskel.data.errors import DataError
from hetskel.layouts import LayoutError, get_layout

OK_ABOVE, MIRRORED_BELOW = 0.7, 0.3
FACE_SCORE = 0.8  # 2D: frames whose nose and eyes score above this face the camera


@dataclass
class LeftRightReport:
    """verdict: ``"ok"`` | ``"mirrored"`` | ``"unclear"``; consistent: mean over the cues of the fraction
    of frames (averaged over clips) that agree with the layout's left/right; cues: per cue ``{"clips", "consistent",
    "assumes"}``; message: the verdict and evidence in one paragraph."""

    verdict: str
    consistent: float
    cues: dict = field(default_factory=dict)
    layout: str = ""
    message: str = ""

    def __str__(self) -> str:
        return self.message


def _clips(data, layout):
    """(layout, [(x (M,T,V,C), scores or None, label or None, img_shape or None)])."""
    if isinstance(data, dict) and "annotations" in data:
        lay = get_layout(layout or data.get("layout"))
        return lay, [(np.asarray(a["keypoint"]), a.get("keypoint_score"), a.get("label"), a.get("img_shape"))
                     for a in data["annotations"]]
    if layout is None:
        raise DataError("check_left_right needs layout= for arrays", field="layout")
    lay = get_layout(layout)
    if isinstance(data, np.ndarray) and data.ndim in (3, 4):
        data = [data]
    return lay, [(np.asarray(x), None, None, None) for x in data]


def _persons(x: np.ndarray) -> np.ndarray:
    x = x[None] if x.ndim == 3 else x
    return x.astype(np.float64, copy=False)


def _idx(lay, *names):
    return [lay.index(n) for n in names if lay.has(n)]


def _mid(p, idx):
    return p[:, idx].mean(1) if idx else None


def _side_vector(lay, p):
    """mean(left joints) - mean(right joints) over the torso pairs the layout has, (T, C)."""
    pairs = [(lay.index(f"left_{j}"), lay.index(f"right_{j}")) for j in ("shoulder", "hip", "elbow", "knee")
             if lay.has(f"left_{j}") and lay.has(f"right_{j}")]
    if not pairs:
        pairs = lay.left_right
    if not pairs:
        return None
    li, ri = zip(*pairs)
    return p[:, list(li)].mean(1) - p[:, list(ri)].mean(1)


def _up(lay, p):
    top = _idx(lay, "spine_shoulder", "neck") or _idx(lay, "left_shoulder", "right_shoulder")
    bottom = _idx(lay, "spine_base") or _idx(lay, "left_hip", "right_hip") or _idx(lay, "spine_mid")
    if not top or not bottom:
        return None
    return p[:, top[:1] if top[0] != bottom[0] else top].mean(1) - p[:, bottom].mean(1)


def _valid(p, scores=None):
    ok = np.abs(p).sum((1, 2)) > 0
    return ok


def _frac(signs: list) -> float | None:
    """Per clip the mean sign of its frames (+1 all agree, -1 all disagree) -> the fraction of frames
    that agree, averaged over the clips (random data: about 0.5)."""
    return float((np.mean(signs) + 1) / 2) if signs else None


def _cue_3d(lay, clips):
    cam, feet, face = [], [], []
    foot = [(lay.index(f"{s}_foot"), lay.index(f"{s}_ankle")) for s in ("left", "right")
            if lay.has(f"{s}_foot") and lay.has(f"{s}_ankle")]
    ears = _idx(lay, "left_ear", "right_ear")
    nose = _idx(lay, "nose")
    back = ears if len(ears) == 2 else _idx(lay, "neck", "head")[:1] if nose else []
    for x, _, _, _ in clips:
        for p in _persons(x):
            p = p[_valid(p)][..., :3]
            if len(p) == 0 or p.shape[-1] < 3:
                continue
            up, lr = _up(lay, p), _side_vector(lay, p)
            if up is None or lr is None:
                continue
            size = np.linalg.norm(up, axis=-1).mean() + 1e-9
            centre = p.mean(1)
            if np.linalg.norm(centre, axis=-1).mean() > 3 * size:  # camera space: people face the sensor
                left = np.cross(up, -centre)
                cam.append(np.sign(np.sum(left * lr, -1)).mean())
            if foot:
                fwd = np.mean([p[:, f] - p[:, a] for f, a in foot], axis=0)
                feet.append(np.sign(np.sum(np.cross(up, fwd) * lr, -1)).mean())
            if nose and back:
                fwd = p[:, nose[0]] - p[:, back].mean(1)
                face.append(np.sign(np.sum(np.cross(up, fwd) * lr, -1)).mean())
    out = {}
    if cam:
        out["camera"] = (cam, "3D camera space, right-handed axes, people mostly facing the sensor")
    if feet:
        out["feet"] = (feet, "toes (foot joints) ahead of the ankles, right-handed axes")
    if face:
        out["face"] = (face, "nose ahead of the ears/head, right-handed axes")
    return out


def _cue_2d(lay, clips, mirrored_image: bool):
    signs = []
    face = _idx(lay, "nose", "left_eye", "right_eye")
    face = face if len(face) == 3 else []
    for x, sc, _, _ in clips:
        s_all = None if sc is None else np.asarray(sc, dtype=np.float64)
        s_all = None if s_all is None else (s_all[None] if s_all.ndim == 2 else s_all)
        for m, p in enumerate(_persons(x)):
            keep = _valid(p)
            if s_all is not None and m < len(s_all):
                keep &= s_all[m].mean(-1) > 0.2
                if face:  # frames with nose and both eyes seen well: the person faces the camera
                    facing = keep & (s_all[m][:, face].min(-1) > FACE_SCORE)
                    keep = facing if facing.any() else keep
            p = p[keep][..., :2]
            if len(p) == 0:
                continue
            up = _up(lay, p)
            if up is None:  # no torso: up is image up
                up = np.broadcast_to(np.array([0.0, -1.0]), (len(p), 2))
            lr = _side_vector(lay, p)
            if lr is None:
                continue
            z = up[:, 0] * lr[:, 1] - up[:, 1] * lr[:, 0]
            signs.append((-1 if mirrored_image else 1) * np.sign(z).mean())
    how = "mirrored image (Kinect colour/depth)" if mirrored_image else "unmirrored image"
    return {"image_side": (signs, f"2D image coordinates (x right, y down), {how}, people mostly facing the "
                                  f"camera (their left on the image's {'left' if mirrored_image else 'right'})")} \
        if signs else {}


def _cue_actions(lay, clips, right_actions, left_actions):
    ends = [(lay.index(f"left_{j}"), lay.index(f"right_{j}")) for j in ("wrist", "hand")
            if lay.has(f"left_{j}") and lay.has(f"right_{j}")][:1]
    if not ends or not (right_actions or left_actions):
        return {}
    li, ri = ends[0]
    signs = []
    for x, _, label, _ in clips:
        side = 1 if label in right_actions else -1 if label in left_actions else 0
        if not side:
            continue
        p = _persons(x)[0]
        p = p[_valid(p)]
        if len(p) < 2:
            continue
        path = np.linalg.norm(np.diff(p, axis=0), axis=-1).sum(0)
        signs.append(side * np.sign(path[ri] - path[li]))
    return {"one_sided_actions": (signs, "the labelled one-sided actions are done with the named hand")} \
        if signs else {}


def check_left_right(data, layout=None, *, right_actions=(), left_actions=(), mirrored_image: bool = False,
                     max_clips: int = 2000, min_clips: int = 3) -> LeftRightReport:
    """Flag a likely mirrored left/right assignment (see the module doc for the cues).

    data: a PYSKL dict (its ``layout``, ``keypoint_score`` and labels are used) or arrays ``(M, T, V, C)``
    / ``(T, V, C)`` with ``layout``. 3D layouts (``dims == 3``) use the body-frame cues, 2D ones the
    image side. ``right_actions`` / ``left_actions``: labels of actions done with that hand (adds a
    motion cue). At most ``max_clips`` clips (evenly spread) are looked at; a cue seen in fewer than
    ``min_clips`` clips is not used.
    Verdict: ``"mirrored"`` when the cues' mean consistency is at most 0.3, ``"ok"`` at least 0.7,
    ``"unclear"`` otherwise or without usable cues (no torso joints, all-zero data)."""
    try:
        lay, clips = _clips(data, layout)
    except LayoutError as e:
        raise DataError(str(e), field="layout") from None
    if len(clips) > max_clips:
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, max_clips).round().astype(int)]
    # 2D when the layout is 2D or the arrays hold two coordinates (a 3D layout's image projection)
    dims = 3 if lay.dims == 3 and all(x.shape[-1] >= 3 for x, *_ in clips) else 2
    cues = _cue_3d(lay, clips) if dims == 3 else _cue_2d(lay, clips, mirrored_image)
    cues.update(_cue_actions(lay, clips, set(right_actions), set(left_actions)))
    table = {k: {"clips": len(s), "consistent": _frac(s), "assumes": a} for k, (s, a) in cues.items()
             if len(s) >= min_clips}
    if not table:
        return LeftRightReport("unclear", float("nan"), {}, lay.name,
                               f"left/right of layout {lay.name!r}: no usable cue (needs left/right torso pairs "
                               f"and a spine or shoulders + hips, and non-zero frames in at least {min_clips} clips)")
    score = float(np.mean([c["consistent"] for c in table.values()]))
    verdict = "ok" if score >= OK_ABOVE else "mirrored" if score <= MIRRORED_BELOW else "unclear"
    evidence = "; ".join(f"{k}: {c['consistent']:.0%} of frames consistent over {c['clips']} clips ({c['assumes']})"
                         for k, c in table.items())
    head = {"ok": f"left/right of layout {lay.name!r} looks right",
            "mirrored": f"left/right of layout {lay.name!r} looks MIRRORED: the joints it calls left_* are "
                        f"probably the person's right ones (swap left_/right_ in the layout"
                        + (", or pass mirrored_image=True if the images are mirrored" if dims == 2 else "") + ")",
            "unclear": f"left/right of layout {lay.name!r} is unclear (cues disagree or are weak)"}[verdict]
    return LeftRightReport(verdict, score, table, lay.name, f"{head}. Evidence: {evidence}.")
