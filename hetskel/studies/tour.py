"""Helpers for the data-tour notebook (``notebooks/00_data_tour.ipynb``): tables, pickers and figures.

The notebook's cells stay one call long; what they call lives here, so it is tested
(``tests/test_tour.py``) and reusable from a console::

    >>> from hetskel import tour
    >>> print(tour.layout_table())                       # every registered layout: V, C, description
    >>> print(tour.unified_table(unify(["ntu25", "coco17"])))   # who has which unified30 joint
    >>> i = tour.first_of(data3d, group="face")          # first SynHet sample of a face class
    >>> fig = tour.paired_montage([(x3, "ntu25", "3D"), (x2, "coco17", "2D")])

The one measurement here, ``complementarity``, makes the paper's point visible on SynHet's clean
ground truth: per joint, how well its pose *relative to its parent* (so an arm swing does not light
up the fingers; in shoulder widths, so metres and pixels compare) tells the classes of a group
apart (an F ratio, ~1 = no information). Face classes are told apart by nose/eyes/ears (COCO-17
only), hand classes by hand tips and thumbs (Kinect-25 only), body classes by joints both have.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hetskel.layouts import Layout, Unified, get_layout, list_layouts

# colours of the complementarity bars: which source format really has the joint
SEEN_BY = {"both": "#7f7f7f", "ntu25 only": "#2ca02c", "coco17 only": "#9467bd"}


# ---------------------------------------------------------------------------------------------
# tables
def layout_table(names: Sequence[str] | None = None) -> str:
    """One line per layout: name, joints V, default dims C, description (all registered by default)."""
    names = list(names) if names is not None else list_layouts()
    lines = [f"{len(names)} layouts", f"{'layout':<14}{'V':>3}{'C':>3}  description"]
    for n in names:
        lay = get_layout(n)
        lines.append(f"{lay.name:<14}{lay.num_joints:>3}{lay.dims:>3}  {lay.description}")
    return "\n".join(lines)


def unified_table(unified: Unified) -> str:
    """The union's joints in order with an ``x`` for every source that really has each, then what
    each source lacks (for ``unify(["ntu25", "coco17"])``: Kinect lacks the face, COCO the hands,
    feet and spine)."""
    src = unified.sources
    w = max(len(s) for s in src) + 2
    lines = [f"{unified.layout.name}: {unified.layout.num_joints} joints",
             (f"{'#':>3}  {'joint':<16}" + "".join(f"{s:^{w}}" for s in src)).rstrip()]
    for k, j in enumerate(unified.layout.joints):
        marks = "".join(f"{'x' if unified.real_mask[s][k] else '-':^{w}}" for s in src)
        lines.append(f"{k:>3}  {j:<16}{marks}".rstrip())
    for s in src:
        miss = unified.missing(s)
        lines.append(f"{s} lacks {len(miss)}: {', '.join(miss) if miss else '(nothing)'}")
    return "\n".join(lines)


def class_table(data: dict) -> str:
    """Label, class name, group (SynHet's ``class_groups`` when present) and sample count per class."""
    names = data.get("class_names") or []
    labels = np.array([a["label"] for a in data["annotations"]], dtype=np.int64)
    K = max(len(names), int(labels.max()) + 1 if labels.size else 0)
    counts = np.bincount(labels, minlength=K)
    group_of = {c: g for g, members in (data.get("class_groups") or {}).items() for c in members}
    lines = [f"{'label':>5}  {'class':<20}{'group':<12}{'samples':>7}"]
    for k in range(K):
        name = names[k] if k < len(names) else f"class {k}"
        lines.append(f"{k:>5}  {name:<20}{group_of.get(name, '-'):<12}{counts[k]:>7}")
    if group_of:
        per_group = {}
        for k in range(K):
            g = group_of.get(names[k] if k < len(names) else "", "-")
            per_group.setdefault(g, [0, 0])
            per_group[g][0] += 1
            per_group[g][1] += int(counts[k])
        lines.append("groups: " + ", ".join(f"{g} {c} classes / {n} samples" for g, (c, n) in per_group.items()))
    return "\n".join(lines)


def describe_ntu(sk) -> str:
    """What one raw NTU ``.skeleton`` file holds (``hetskel.data.ntu.NTUSkeleton``): frames, bodies,
    the 12 per-joint fields with their arrays, tracking states, per-body info fields."""
    from hetskel.data.ntu import JOINT_FIELDS

    arrays = {"xyz": sk.xyz, "depth_xy": sk.depth_xy, "color_xy": sk.color_xy,
              "orientation": sk.orientation, "tracking": sk.tracking}
    states = np.bincount(sk.tracking[sk.present].ravel().astype(np.int64), minlength=3)
    lines = [f"file          {sk.name}",
             f"frames        {sk.num_frames}  (max bodies in one frame: {int(np.max(sk.bodies_per_frame))})",
             f"bodies        {sk.num_bodies}  ids {sk.body_ids}  frames present {sk.present.sum(1).tolist()}",
             f"joint fields  {len(JOINT_FIELDS)}: {' '.join(JOINT_FIELDS)}",
             *(f"  {k:<12}{tuple(v.shape)!s:<18}{v.dtype}" for k, v in arrays.items()),
             f"tracking      not tracked {states[0]}, inferred {states[1]}, tracked {states[2]} joint-frames",
             f"body info     {', '.join(sk.body_info)}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# picking samples
def first_of(data: dict, group: str | None = None, name: str | None = None, min_persons: int = 1,
             **fields) -> int:
    """Index of the first annotation of class ``name`` or of a class in ``group`` (``class_groups``)
    with at least ``min_persons`` non-empty persons and the given annotation ``fields``
    (e.g. ``camera=3``)."""
    names = data.get("class_names") or []
    wanted = set()
    if name is not None:
        wanted.add(name)
    if group is not None:
        groups = data.get("class_groups") or {}
        if group not in groups:
            raise KeyError(f"no class group {group!r}; groups are {sorted(groups)}")
        wanted.update(groups[group])
    for i, a in enumerate(data["annotations"]):
        label = a["label"]
        if wanted and (label >= len(names) or names[label] not in wanted):
            continue
        if any(a.get(k) != v for k, v in fields.items()):
            continue
        kp = np.asarray(a["keypoint"])
        if int(kp.reshape(kp.shape[0], -1).any(-1).sum()) >= min_persons:
            return i
    what = sorted(wanted) or "any class"
    raise LookupError(f"no sample of {what} with >= {min_persons} person(s) and {fields or 'any fields'}")


def best_scored(data: dict, min_frames: int = 30) -> int:
    """Index of the clip with the highest mean ``keypoint_score`` over its detected keypoints among
    clips of at least ``min_frames`` frames (all clips when none is that long): a fair first look
    at a 2D detector file."""
    anns = data["annotations"]
    long = [i for i, a in enumerate(anns) if a["keypoint"].shape[1] >= min_frames] or list(range(len(anns)))
    mean = [float(np.mean(anns[i]["keypoint_score"])) if anns[i].get("keypoint_score") is not None else 0.0
            for i in long]
    return long[int(np.argmax(mean))]


def caption(data: dict, index: int) -> str:
    """``"<frame_dir>: <class name>"`` of one annotation, for figure titles."""
    a = data["annotations"][index]
    names = data.get("class_names") or []
    return f"{a['frame_dir']}: {names[a['label']] if a['label'] < len(names) else a['label']}"


# ---------------------------------------------------------------------------------------------
# figures
def paired_montage(rows: Sequence[tuple], frames: int = 6, title: str | None = None):
    """Several montages stacked as rows of one matplotlib ``Figure``.

    rows: ``(x, layout, label)`` with x ``(T, V, C)`` or ``(M, T, V, C)`` (array or tensor); each row
    shows ``frames`` evenly spaced time steps (``hetskel.viz.montage``), labelled on its left.
    """
    from matplotlib.figure import Figure

    from hetskel.viz.skeleton import montage

    fig = Figure(figsize=(2.2 * frames, 2.8 * len(rows)), layout="constrained")
    grid = fig.subplots(len(rows), frames, squeeze=False)
    for axes, (x, layout, label) in zip(grid, rows):
        montage(x, layout, frames=frames, ax=list(axes))
        for a in axes:
            if not a.has_data():  # a clip shorter than ``frames`` leaves spare axes
                a.set_axis_off()
        axes[0].set_ylabel(f"{label}\n{axes[0].get_ylabel()}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def keep_joints(x, layout: str | Layout, joints: Sequence[str]) -> np.ndarray:
    """A copy of ``x (..., V, C)`` with every joint but ``joints`` zeroed (absent), so a montage or
    viewer draws, and frames its axes around, only those joints: a close-up."""
    lay = get_layout(layout)
    x = np.array(x.detach().cpu() if hasattr(x, "detach") else x, copy=True)
    drop = np.ones(lay.num_joints, bool)
    drop[[lay.index(j) for j in joints]] = False
    x[..., drop, :] = 0
    return x


# close-ups for ``formats_montage``: the joints that carry a SynHet group's motion, per layout
FOCUS = {
    "face": {"ntu25": ("head", "neck", "spine_shoulder", "left_shoulder", "right_shoulder"),
             "coco17": ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder")},
    "hand": {"ntu25": ("right_elbow", "right_wrist", "right_hand", "right_hand_tip", "right_thumb"),
             "coco17": ("right_elbow", "right_wrist")},
}


def formats_montage(data3d: dict, data2d: dict, index: int, focus: str | None = None, frames: int = 6):
    """Sample ``index`` of a paired 3D/2D dict (SynHet) as two montage rows, plus a close-up row
    per format on the ``FOCUS[focus]`` joints (``"face"``, ``"hand"``): the region where the class
    happens, drawn with only the joints each format has there."""
    x3, x2 = data3d["annotations"][index]["keypoint"], data2d["annotations"][index]["keypoint"]
    l3, l2 = data3d.get("layout", "ntu25"), data2d.get("layout", "coco17")
    rows = [(x3, l3, "Kinect-25 3D"), (x2, l2, "COCO-17 2D")]
    if focus is not None:
        rows += [(keep_joints(x3, l3, FOCUS[focus][l3]), l3, f"3D {focus} close-up"),
                 (keep_joints(x2, l2, FOCUS[focus][l2]), l2, f"2D {focus} close-up")]
    return paired_montage(rows, frames=frames, title=caption(data3d, index))


def local_pose_features(x, layout: str | Layout) -> np.ndarray:
    """Per-joint summary of each joint's pose relative to its parent, per sample.

    x: ``(N, M, T, V, C)`` (or one ``(M, T, V, C)``); person 0 is measured. The local position of a
    joint is ``x_j - x_parent(j)`` (roots: minus the shoulder midpoint), divided by the sample's mean
    shoulder width so 3D metres and 2D pixels are on one scale; relative to the parent so that an arm
    swing does not light up the fingers. Returns ``(N, V, 2C)`` (or ``(V, 2C)``): the mean and the
    standard deviation over time of that local position.
    """
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    single = x.ndim == 4
    if single:
        x = x[None]
    lay = get_layout(layout)
    p = x[:, 0]                                                          # (N, T, V, C)
    ls, rs = p[:, :, lay.index("left_shoulder")], p[:, :, lay.index("right_shoulder")]
    width = np.linalg.norm(ls - rs, axis=-1).mean(-1)                    # (N,)
    ref = p[:, :, lay.bone_parents()]                                    # a copy (fancy indexing)
    ref[:, :, np.array(lay.parents) < 0] = ((ls + rs) / 2)[:, :, None]
    local = (p - ref) / np.maximum(width, 1e-9)[:, None, None, None]
    out = np.concatenate([local.mean(1), local.std(1)], -1)              # (N, V, 2C)
    return out[0] if single else out


def separability(features: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Per-joint F ratio among ``classes``: between-class over within-class variance of the
    features ``(N, V, F)``, each summed over the feature axis. ~1 means the joint carries no class
    information; large means it tells the classes apart. Returns ``(V,)``."""
    classes = [c for c in classes if (labels == c).any()]
    keep = np.isin(labels, classes)
    f, y = features[keep], labels[keep]
    if len(classes) < 2 or len(y) <= len(classes):
        raise ValueError(f"separability needs >= 2 classes and more samples than classes, got "
                         f"{len(classes)} classes / {len(y)} samples")
    means = np.stack([f[y == c].mean(0) for c in classes])              # (K, V, F)
    counts = np.array([(y == c).sum() for c in classes])
    between = (counts[:, None, None] * (means - f.mean(0)) ** 2).sum(0) / (len(classes) - 1)
    within = sum(((f[y == c] - m) ** 2).sum(0) for c, m in zip(classes, means)) / (len(y) - len(classes))
    return between.sum(-1) / np.maximum(within.sum(-1), 1e-12)


def complementarity(data_unified: dict, groups: Sequence[str] = ("face", "hand", "body")) -> dict:
    """Which joints tell the classes of each SynHet group apart: ``separability`` of
    ``local_pose_features`` on the clean unified30 ground truth
    (``synhet.generate(..., return_unified=True)[2]``). Returns ``{group: (30,) F ratios}``."""
    kp = np.stack([a["keypoint"] for a in data_unified["annotations"]])  # (N, M, T, 30, 3)
    feats = local_pose_features(kp, data_unified.get("layout", "unified30"))
    names = list(data_unified["class_names"])
    labels = np.array([a["label"] for a in data_unified["annotations"]])
    return {g: separability(feats, labels, [names.index(c) for c in data_unified["class_groups"][g]])
            for g in groups}


def top_joints(scores: dict, joints: Sequence[str], k: int = 5) -> str:
    """The ``k`` highest-scoring joints per group, one line each (for printing ``complementarity``)."""
    lines = []
    for g, s in scores.items():
        order = np.argsort(-s, kind="stable")[:k]
        lines.append(f"{g:<6} " + ", ".join(f"{joints[i]} {s[i]:.1f}" for i in order))
    return "\n".join(lines)


def complementarity_summary(scores: dict, unified: Unified) -> dict:
    """Mean F ratio per group over the joints each source has alone and over the shared ones:
    ``{group: {"both": f, "<a> only": f, "<b> only": f}}`` (for ``metrics.json``)."""
    a, b = unified.sources[:2]
    ra, rb = unified.real_mask[a], unified.real_mask[b]
    parts = {"both": ra & rb, f"{a} only": ra & ~rb, f"{b} only": rb & ~ra}
    return {g: {k: float(s[m].mean()) for k, m in parts.items() if m.any()} for g, s in scores.items()}


def complementarity_figure(scores: dict, unified: Unified):
    """Bar chart per class group of ``complementarity``'s per-joint F ratios, each bar coloured by
    which source format really has the joint (``SEEN_BY``); the dashed line is F = 1 (no information)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    a, b = unified.sources[:2]
    ra, rb = unified.real_mask[a], unified.real_mask[b]
    seen = np.where(ra & rb, "both", np.where(ra, f"{a} only", f"{b} only"))
    colours = [SEEN_BY.get(s, "#bcbd22") for s in seen]
    fig = Figure(figsize=(12, 2.4 * len(scores)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(scores), 1, sharex=True))
    V = unified.layout.num_joints
    for ax, (g, m) in zip(axes, scores.items()):
        ax.bar(np.arange(V), m, color=colours)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_ylabel(f"{g} classes\nF ratio", fontsize=9)
    axes[-1].set_xticks(np.arange(V), unified.layout.joints, rotation=70, ha="right", fontsize=8)
    axes[0].legend(handles=[Patch(color=SEEN_BY.get(s, "#bcbd22"), label=s) for s in ("both", f"{a} only", f"{b} only")],
                   loc="upper right", fontsize=8)
    axes[0].set_title("Which joints tell the classes of a group apart (clean SynHet), coloured by who has them")
    return fig


# ---------------------------------------------------------------------------------------------
# real data
def find_shared_data(shared_data: str = "") -> Path | None:
    """The real-data folder: ``shared_data`` when given, else ``hetskel.io.shared_data_dir()``
    (``../shared/data`` or ``$HETSKEL_SHARED_DATA``). Prints what it found or why not."""
    from hetskel.io import project_root, shared_data_dir

    root = Path(shared_data) if shared_data else shared_data_dir()
    if root is None or not root.is_dir():
        looked = shared_data or os.environ.get("HETSKEL_SHARED_DATA") or project_root().parent / "shared" / "data"
        print(f"real data: {looked} not found; the real-data sections are skipped")
        return None
    print(f"real data: {root}")
    return root


def real_path(root: Path | None, relative: str) -> Path | None:
    """``root / relative`` when it exists, else None with the reason printed (section skipped)."""
    if root is None:
        print(f"skipped: no real-data folder, so no {relative}")
        return None
    p = Path(root) / relative
    if not p.exists():
        print(f"skipped: {p} is absent")
        return None
    return p


# ---------------------------------------------------------------------------------------------
# transforms
@dataclass
class TransformDemo:
    """One SynHet sample before and after the preprocessing of ``hetskel.data.transforms``.
    raw3d/norm3d ``(M, T, 25, 3)``; raw2d/norm2d ``(M, T, 17, 2)``; resized ``(M, T', 25, 3)``."""

    raw3d: torch.Tensor
    norm3d: torch.Tensor
    raw2d: torch.Tensor
    norm2d: torch.Tensor
    resized: torch.Tensor
    layout3d: str = "ntu25"

    def checks(self) -> dict:
        """Numbers that say the transforms did their job (all near 0 / inside [-1, 1])."""
        lay = get_layout(self.layout3d)
        present = (self.raw3d != 0).any(-1).any(-1)                    # (M, T)
        m = int(present.sum(-1).argmax())                               # main person, as normalize_3d
        t0 = int(present[m].to(torch.int32).argmax())                   # its first frame
        ref = self.norm3d[m, t0].double()
        sh = ref[lay.index("right_shoulder")] - ref[lay.index("left_shoulder")]
        sp = ref[lay.index("spine_mid")] - ref[lay.index("spine_base")]
        bones = torch.tensor(lay.bones)                                 # (B, 2) child, parent

        def angle_to_axis(v: torch.Tensor, k: int) -> float:
            return float(torch.rad2deg(torch.acos((v[k] / v.norm()).clamp(-1, 1))))

        def bone_lengths(x: torch.Tensor) -> torch.Tensor:                # (M, T, B)
            return (x[..., bones[:, 0], :] - x[..., bones[:, 1], :]).norm(dim=-1)

        both = (self.raw3d[..., bones[:, 0], :] != 0).any(-1) & (self.raw3d[..., bones[:, 1], :] != 0).any(-1)
        kept = (self.norm2d != 0).any(-1)
        return {
            "centre_at_t0_m": float(ref[lay.index("spine_mid")].norm()),
            "shoulders_vs_x_deg": angle_to_axis(sh, 0),
            "spine_vs_z_deg": angle_to_axis(sp, 2),
            "max_bone_length_change_m": float((bone_lengths(self.norm3d) - bone_lengths(self.raw3d))[both].abs().max()),
            "norm2d_min": float(self.norm2d[kept].min()), "norm2d_max": float(self.norm2d[kept].max()),
            "frames_in": int(self.raw3d.shape[1]), "frames_out": int(self.resized.shape[1]),
            "resize_keeps_ends": bool(torch.equal(self.resized[:, [0, -1]], self.norm3d[:, [0, -1]])),
        }


def transform_demo(data3d: dict, data2d: dict, index: int, num_frames: int) -> TransformDemo:
    """``normalize_3d`` (PYSKL variant), ``normalize_2d`` and ``resize_time`` to ``num_frames``
    applied to annotation ``index`` of a paired 3D/2D PYSKL dict."""
    from hetskel.data.transforms import normalize_2d, normalize_3d, resize_time

    a3, a2 = data3d["annotations"][index], data2d["annotations"][index]
    raw3d = torch.as_tensor(np.asarray(a3["keypoint"], dtype=np.float32))
    raw2d = torch.as_tensor(np.asarray(a2["keypoint"], dtype=np.float32))
    score = torch.as_tensor(np.asarray(a2["keypoint_score"], dtype=np.float32))
    layout = data3d.get("layout", "ntu25")
    norm3d = normalize_3d(raw3d, layout)
    return TransformDemo(raw3d, norm3d, raw2d, normalize_2d(raw2d, score, a2["img_shape"]),
                         resize_time(norm3d, num_frames), layout)


def resize_figure(demo: TransformDemo, joint: str = "right_wrist"):
    """One joint's three coordinates over normalised time, before and after ``resize_time``."""
    from matplotlib.figure import Figure

    k = get_layout(demo.layout3d).index(joint)
    before, after = demo.norm3d[0, :, k].numpy(), demo.resized[0, :, k].numpy()
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax = fig.subplots()
    for c, name in enumerate("xyz"):
        line, = ax.plot(np.linspace(0, 1, len(before)), before[:, c], "o", ms=3, label=f"{name}, {len(before)} frames")
        ax.plot(np.linspace(0, 1, len(after)), after[:, c], "-x", ms=4, color=line.get_color(),
                label=f"{name}, resized to {len(after)}")
    ax.set_xlabel("time (fraction of the clip)")
    ax.set_ylabel(f"{joint} (normalised)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
