"""Helpers for the lifter notebook (``notebooks/01_lifter.ipynb``): paired 2D/3D sets, real-data checks, figures.

The notebook's cells stay one call long; what they call lives here (tested in
``tests/test_lifter_study.py``)::

    >>> syn = lifter_study.synhet_pairset(data3d, data2d)          # COCO-17 2D / Kinect-25 3D, SynHet
    >>> res = train_lifter(*syn.split_pairs(), config)              # hetskel.hetero.lifter_train
    >>> ntu = lifter_study.ntu_pairset("../shared/data/ntu_raw_sample")   # colour 2D / 3D, same 25 joints
    >>> pre = lifter_study.pretrain_on_synhet(data3d, ntu, config, focal=1050.0)
    >>> folds = lifter_study.leave_one_out(ntu, config, pretrained=pre.model)

Every set is a ``PairSet``: 2D pixels and 3D metres of the same clips, persons and frames, padded
to one length with zeros (absent). ``PairSet.pairs`` gives what ``train_lifter`` takes, the 2D
normalised by the image size to [-1, 1] as ``hetskel.data.transforms.normalize_2d`` does, so a
lifter trained here works inside the pipeline too.

Real recordings are small, so three lifters are compared on them (``compare_variants``), each
against the mean-pose and zero-depth baselines fitted on the same training clips: the lifter
pretrained on SynHet used as is ("synhet zero-shot"), one trained from scratch on the real
training clips ("scratch"), and the SynHet lifter fine-tuned on them ("synhet + fine-tune"). A
real layout without COCO joints (Kinect-25 colour 2D, Kinect v1 screen coordinates) gets its own
lifter (``lifter_for(layout)``); its SynHet pretraining projects SynHet's Kinect-25 3D, converted
to that layout, through a pinhole camera like the target's (``projected_pairset``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from hetskel.data.errors import DataError
from hetskel.hetero.lifter import add_spine, lifter_for, pose_frame, shared_joints
from hetskel.hetero.lifter_train import (
    LifterConfig,
    LifterResult,
    _frames,
    _predict,
    baselines,
    evaluate_lifter,
    train_lifter,
)
from hetskel.layouts import convert, get_layout
from hetskel.viz import curves
from hetskel.viz.curves import Curve, Panel

OUT_OF_IMAGE = 4.0  # normalised |coordinate| beyond which a 2D joint is a sensor glitch, not a position


# ---------------------------------------------------------------------------------------------
# paired sets
@dataclass
class PairSet:
    """Paired 2D/3D clips: ``x2d (N, M, T, V2, 2)`` pixels and ``x3d (N, M, T, V3, 3)`` metres, absent = 0.

    ``split``: split name -> row indices; ``notes``: what was changed while loading (printed)."""

    name: str
    layout_2d: str
    layout_3d: str
    x2d: np.ndarray
    x3d: np.ndarray
    img_shape: tuple[int, int]
    clips: list[str]
    split: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rows(self, which=None) -> np.ndarray:
        """Row indices of a split name, of an index sequence, or of every clip (None)."""
        if which is None:
            return np.arange(len(self.clips))
        if isinstance(which, str):
            if which not in self.split:
                raise KeyError(f"{self.name}: no split {which!r}; splits are {sorted(self.split)}")
            return np.asarray(self.split[which])
        return np.asarray(which, dtype=np.int64).reshape(-1)

    def pairs(self, which=None) -> tuple[np.ndarray, np.ndarray]:
        """``(x2d, x3d)`` of the rows, 2D normalised by the image size to [-1, 1] (absent joints stay 0)."""
        r = self.rows(which)
        h, w = self.img_shape
        x2 = self.x2d[r]
        half = np.array([w / 2, h / 2], np.float32)
        x2n = (x2 - half) / half * (x2 != 0).any(-1, keepdims=True)
        return x2n.astype(np.float32), self.x3d[r].astype(np.float32)

    def split_pairs(self, train: str = "xsub_train", val: str = "xsub_val"):
        """``(train pairs, val pairs)``, the two first arguments of ``train_lifter``."""
        return self.pairs(train), self.pairs(val)

    def frames(self, which=None) -> int:
        """Person-frames where both the 2D and the 3D skeleton are present: the lifter's examples."""
        r = self.rows(which)
        both = (self.x2d[r] != 0).any(-1).any(-1) & (self.x3d[r] != 0).any(-1).any(-1)
        return int(both.sum())


def _pad_stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``[(M, T_i, V, C)]`` -> ``(N, M, max T_i, V, C)`` float32, zero-padded at the end of time."""
    T = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), arrays[0].shape[0], T, *arrays[0].shape[2:]), np.float32)
    for i, a in enumerate(arrays):
        out[i, :, :a.shape[1]] = a
    return out


def split_rows(data: dict) -> dict[str, np.ndarray]:
    """``{split name: row indices}`` of a PYSKL dict (its ``split`` lists frame_dirs)."""
    index = {a["frame_dir"]: i for i, a in enumerate(data["annotations"])}
    return {k: np.array([index[f] for f in v if f in index], np.int64) for k, v in data.get("split", {}).items()}


def synhet_pairset(data3d: dict, data2d: dict) -> PairSet:
    """SynHet's two renderings of each sample: COCO-17 detector 2D (pixels) and Kinect-25 3D (metres)."""
    h, w = data2d["annotations"][0]["img_shape"]
    return PairSet("SynHet", data2d.get("layout", "coco17"), data3d.get("layout", "ntu25"),
                   np.stack([a["keypoint"] for a in data2d["annotations"]]).astype(np.float32),
                   np.stack([a["keypoint"] for a in data3d["annotations"]]).astype(np.float32),
                   (int(h), int(w)), [a["frame_dir"] for a in data3d["annotations"]], split_rows(data3d))


def project(x3d: np.ndarray, focal: float, img_shape: tuple[int, int]) -> np.ndarray:
    """Pinhole projection of camera-space points ``(..., 3)`` (x right, y up, z depth; metres) to
    pixels ``(..., 2)`` (u right, v down, principal point at the image centre). Absent points and
    points at or behind the camera stay 0."""
    h, w = img_shape
    z = x3d[..., 2:3]
    ok = (x3d != 0).any(-1, keepdims=True) & (z > 1e-3)
    zs = np.where(ok, z, 1.0)
    uv = np.concatenate([w / 2 + focal * x3d[..., 0:1] / zs, h / 2 - focal * x3d[..., 1:2] / zs], -1)
    return (uv * ok).astype(np.float32)


def projected_pairset(data3d: dict, layout: str, focal: float, img_shape: tuple[int, int]) -> PairSet:
    """SynHet for a custom 2D layout: its Kinect-25 3D converted to ``layout`` and projected by a
    pinhole camera of ``focal`` pixels on an image of ``img_shape`` (h, w) gives the 2D; the 3D is
    the same converted skeleton. The pretraining set for a real layout without COCO joints."""
    x3, _ = convert(np.stack([a["keypoint"] for a in data3d["annotations"]]).astype(np.float32),
                    data3d.get("layout", "ntu25"), layout)
    return PairSet(f"SynHet projected to {layout}", layout, layout, project(x3, focal, img_shape), x3,
                   tuple(int(v) for v in img_shape), [a["frame_dir"] for a in data3d["annotations"]],
                   split_rows(data3d))


def ntu_pairset(folder) -> PairSet:
    """The NTU raw ``*.skeleton`` files of ``folder``: colour-image 2D and camera 3D of the same 25
    joints (``hetskel.data.ntu.read_skeleton``), two most active bodies, one row per file."""
    from hetskel.data.ntu import IMG_SHAPE, read_skeleton, select_bodies

    paths = sorted(Path(folder).glob("*.skeleton"))
    if not paths:
        raise DataError("holds no *.skeleton files", file=folder)
    sks = [read_skeleton(p) for p in paths]
    return PairSet("NTU raw", "ntu25", "ntu25", _pad_stack([select_bodies(s, 2, "color_xy") for s in sks]),
                   _pad_stack([select_bodies(s, 2, "xyz") for s in sks]), IMG_SHAPE, [s.name for s in sks],
                   notes=[f"{s.name}: {s.num_frames} frames, {s.num_bodies} body(ies)" for s in sks])


def msr_pairset(root) -> PairSet:
    """MSR Action3D screen (u, v) depth-image pixels (320x240) paired with its real-world 3D.

    The usual 557 sequences; the loaders' ``xsub_train`` / ``xsub_val`` split. Screen joints far
    outside the image (the files hold ~2.1e9 for some joints above the frame: an integer overflow
    of the recorder) are set absent and counted in ``notes``.
    """
    from hetskel.data.arrays import absent_outside_image, load_msr_action3d

    world = load_msr_action3d(root, coords="world")
    screen = load_msr_action3d(root, coords="screen")
    joints, clips = absent_outside_image(screen, OUT_OF_IMAGE)
    a3, a2 = world["annotations"], screen["annotations"]
    for u, v in zip(a3, a2, strict=True):
        if u["frame_dir"] != v["frame_dir"] or u["keypoint"].shape[:2] != v["keypoint"].shape[:2]:
            raise DataError(f"world {u['keypoint'].shape} and screen {v['keypoint'].shape} do not pair",
                            file=root, sample=u["frame_dir"], field="keypoint")
    ps = PairSet("MSR Action3D", "kinect20_msr", "kinect20_msr", _pad_stack([a["keypoint"] for a in a2]),
                 _pad_stack([a["keypoint"] for a in a3]), tuple(screen["annotations"][0]["img_shape"]),
                 [a["frame_dir"] for a in a3], split_rows(world))
    if joints:
        ps.notes.append(f"{joints} screen joints far outside the image set absent (in {clips} sequences)")
    return ps


def fit_pinhole(ps: PairSet, which=None) -> dict[str, float]:
    """Least-squares pinhole camera between the paired rows ``which`` (``PairSet.rows``): ``u = fx x/z + cx``,
    ``v = fy y/z + cy`` (pixels, metres). A small ``rms_px`` says the 2D is a projection of the 3D
    (no detector in between)."""
    r = ps.rows(which)
    x2, x3 = ps.x2d[r].reshape(-1, 2).astype(np.float64), ps.x3d[r].reshape(-1, 3).astype(np.float64)
    ok = (x2 != 0).any(-1) & (x3 != 0).any(-1) & (x3[:, 2] > 1e-3)
    out, sq = {}, 0.0
    for c, (f, k) in enumerate((("fx", "cx"), ("fy", "cy"))):
        a = np.stack([x3[ok, c] / x3[ok, 2], np.ones(int(ok.sum()))], 1)
        sol, *_ = np.linalg.lstsq(a, x2[ok, c], rcond=None)
        out[f], out[k] = float(sol[0]), float(sol[1])
        sq += float(((a @ sol - x2[ok, c]) ** 2).sum())
    out["rms_px"] = math.sqrt(sq / max(2 * int(ok.sum()), 1))
    out["points"] = int(ok.sum())
    return out


def first_clip(data: dict, split: str, group: str | None = None, camera: int | None = None,
               persons: int | None = None) -> int:
    """Row of the first clip of ``split`` in class ``group`` (``data["class_groups"]``), seen by
    ``camera``, with exactly ``persons`` non-empty persons (each filter optional); a ``LookupError`` if none."""
    names, groups = data.get("class_names") or [], data.get("class_groups") or {}
    keep = set(data["split"][split])
    for i, a in enumerate(data["annotations"]):
        if a["frame_dir"] not in keep or (camera is not None and a.get("camera") != camera):
            continue
        if group is not None and names[a["label"]] not in groups.get(group, ()):
            continue
        kp = np.asarray(a["keypoint"])
        if persons is None or int(kp.reshape(kp.shape[0], -1).any(-1).sum()) == persons:
            return i
    raise LookupError(f"no {split} clip of group {group!r}, camera {camera}, {persons} person(s)")


def describe(ps: PairSet) -> str:
    """Clips, layouts, padded shape, lifter examples per split, and the loading notes."""
    head = (f"{ps.name}: {len(ps.clips)} clips, 2D {ps.layout_2d} {tuple(ps.x2d.shape)} pixels of a "
            f"{ps.img_shape[1]}x{ps.img_shape[0]} image -> 3D {ps.layout_3d} {tuple(ps.x3d.shape)} metres")
    lines = [head, f"  person-frames with both skeletons: {ps.frames()}"]
    lines += [f"  {k:<11} {len(v):>5} clips {ps.frames(k):>7} person-frames" for k, v in ps.split.items()]
    lines += [f"  {n}" for n in ps.notes]
    return "\n".join(lines)


def describe_lifter(config: LifterConfig) -> str:
    """What ``train_lifter`` builds for ``config``: layouts, size, the joints ``L_rec`` supervises."""
    model, lay = lifter_for(config.layout_2d, width=config.width, num_layers=config.num_layers,
                            dropout=config.dropout)
    _, _, names = shared_joints(lay, config.layout_3d)
    n = sum(p.numel() for p in model.parameters())
    return (f"{config.layout_2d} -> {lay.name} ({lay.num_joints} joints x 2) -> {lay.num_joints} joints x 3; "
            f"{config.num_layers} linear layers of width {config.width}; {n:,} parameters\n"
            f"L_rec supervises the {len(names)} joints {lay.name} shares with {config.layout_3d}: {', '.join(names)}")


# ---------------------------------------------------------------------------------------------
# real-data comparisons
VARIANTS = ("synhet zero-shot", "scratch", "synhet + fine-tune", "mean_pose", "zero_depth")


def real_config(config: LifterConfig, ps: PairSet, train_rows, steps: int, batch_size: int,
                lr: float | None = None) -> LifterConfig:
    """``config`` for a small real set: its layouts, every frame, no 2D noise, and as many epochs as
    ``steps`` optimiser steps of ``batch_size`` need on ``train_rows`` (small sets get more epochs)."""
    per_epoch = max(1, math.ceil(ps.frames(train_rows) / batch_size))
    return replace(config, layout_2d=ps.layout_2d, layout_3d=ps.layout_3d, batch_size=batch_size, frame_stride=1,
                   noise_2d=0.0, epochs=max(1, math.ceil(steps / per_epoch)), lr=config.lr if lr is None else lr)


def pinhole_text(cam: dict) -> str:
    return (f"pinhole fit: fx {cam['fx']:.1f} px, fy {cam['fy']:.1f} px, centre ({cam['cx']:.1f}, {cam['cy']:.1f}), "
            f"rms {cam['rms_px']:.2f} px over {cam['points']} joints")


def pretrain_on_synhet(data3d: dict, target: PairSet, config: LifterConfig, focal: float,
                       progress: bool = False) -> LifterResult:
    """A lifter for ``target``'s layouts trained on SynHet projected like ``target`` (``projected_pairset``
    with ``focal`` and the target's image size), SynHet ``xsub_train`` / ``xsub_val``."""
    syn = projected_pairset(data3d, target.layout_2d, focal, target.img_shape)
    cfg = replace(config, layout_2d=target.layout_2d, layout_3d=target.layout_3d, noise_2d=0.0)
    return train_lifter(*syn.split_pairs(), cfg, progress=progress)


def compare_variants(ps: PairSet, train_rows, test_rows, config: LifterConfig, pretrained=None, steps: int = 600,
                     batch_size: int = 128, finetune_lr: float = 3e-4, progress: bool = False) -> dict[str, dict]:
    """Train/test one split of a real set: ``{variant: metrics}`` for the ``VARIANTS`` (the SynHet ones
    only with a ``pretrained`` lifter for ``ps``'s layout). Metrics as ``LifterResult.metrics`` entries
    (mm assume metres); the baselines are fitted on ``train_rows``. The test clips double as
    ``train_lifter``'s validation pairs only for the per-epoch curve: nothing is selected on them."""
    train, test = ps.pairs(train_rows), ps.pairs(test_rows)
    cfg = real_config(config, ps, train_rows, steps, batch_size)
    scratch = train_lifter(train, test, cfg, progress=progress).metrics
    out = {"scratch": scratch["lifter"]}
    if pretrained is not None:
        out["synhet zero-shot"] = evaluate_lifter(pretrained, test, cfg)["lifter"]
        tuned = train_lifter(train, test, replace(cfg, lr=finetune_lr), progress=progress, init=pretrained)
        out["synhet + fine-tune"] = tuned.metrics["lifter"]
    out.update(mean_pose=scratch["mean_pose"], zero_depth=scratch["zero_depth"])
    return {k: out[k] for k in VARIANTS if k in out}


def leave_one_out(ps: PairSet, config: LifterConfig, pretrained=None, **kw) -> list[dict]:
    """``compare_variants`` with each clip of ``ps`` held out in turn: ``[{"test": clip, variant: metrics}]``."""
    rows = np.arange(len(ps.clips))
    return [{"test": ps.clips[i], **compare_variants(ps, rows[rows != i], [i], config, pretrained, **kw)}
            for i in rows]


def pooled(folds: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Frame-weighted mean over folds of each variant's ``mpjpe_mm`` / ``pa_mpjpe_mm``: every test frame counts once."""
    out = {}
    for v in VARIANTS:
        ms = [f[v] for f in folds if v in f]
        if ms:
            n = sum(m["frames"] for m in ms)
            out[v] = {k: sum(m[k] * m["frames"] for m in ms) / n for k in ("mpjpe_mm", "pa_mpjpe_mm")}
            out[v]["frames"] = n
    return out


def loo_summary(folds: Sequence[dict]) -> dict:
    """``metrics.json`` entry of a ``leave_one_out`` run: pooled numbers and each fold's (mm, frames)."""
    return {"pooled": pooled(folds),
            "folds": [{"test": f["test"], **summary({k: v for k, v in f.items() if k != "test"})} for f in folds]}


def metrics_table(results: dict[str, dict[str, dict]]) -> str:
    """Text table: one row per predictor, MPJPE / PA-MPJPE (mm) per column set ``{set name: {predictor: metrics}}``."""
    rows = [v for v in ("lifter", *VARIANTS) if any(v in r for r in results.values())]
    widths = [max(28, len(n) + 2) for n in results]
    lines = [f"{'predictor':<20}" + "".join(f"{n:>{w}}" for n, w in zip(results, widths)),
             f"{'':<20}" + "".join(f"{'MPJPE':>{w - 14}}{'PA-MPJPE':>14}" for w in widths)]
    for v in rows:
        cells = "".join(f"{r[v]['mpjpe_mm']:>{w - 17}.1f} mm{r[v]['pa_mpjpe_mm']:>11.1f} mm" if v in r
                        else f"{'-':>{w}}" for r, w in zip(results.values(), widths))
        lines.append(f"{v:<20}{cells}")
    return "\n".join(lines)


def fold_table(folds: Sequence[dict]) -> str:
    """Per-fold MPJPE (mm) of each variant, one line per held-out clip."""
    vs = [v for v in VARIANTS if v in folds[0]]
    lines = [f"{'held-out clip':<22}{'frames':>7}" + "".join(f"{v:>20}" for v in vs)]
    for f in folds:
        lines.append(f"{f['test']:<22}{f[vs[0]]['frames']:>7}" + "".join(f"{f[v]['mpjpe_mm']:>17.1f} mm" for v in vs))
    return "\n".join(lines)


def summary(metrics: dict) -> dict:
    """The numbers of one ``{predictor: metrics}`` dict for ``metrics.json`` (mm, frames)."""
    return {k: {m: v[m] for m in ("mpjpe_mm", "pa_mpjpe_mm", "frames") if m in v} for k, v in metrics.items()}


# ---------------------------------------------------------------------------------------------
# figures
def loss_figure(history: Sequence[dict], title: str = "lifter training"):
    """Train / held-out ``L_rec`` per epoch (log scale) and held-out MPJPE (torso units)
    (``hetskel.viz.curves.loss_figure``)."""
    ep = [h["epoch"] for h in history]
    rec = Panel([Curve([h["train_loss"] for h in history], x=ep, style="o-", label="train (dropout on)"),
                 Curve([h["val_loss"] for h in history], x=ep, style="o-", label="held-out subjects")],
                ylabel="L_rec (torso units²)", logy=True)
    mpjpe = Panel([Curve([h["val_mpjpe"] for h in history], x=ep, style="o-", color="C1")],
                  ylabel="held-out MPJPE (torso units)")
    return curves.loss_figure([rec, mpjpe], title=title, figsize=(9, 3.2))


def _side(name: str) -> str:
    return "C0" if name.startswith("left_") else "C3" if name.startswith("right_") else "0.45"


def _draw(ax, pose: np.ndarray, have: np.ndarray, lay, axes: tuple[int, int], ghost: bool = False) -> None:
    """One skeleton ``(V, 3)`` on ``ax`` projected on coordinate ``axes``; ``have`` (V,) joints drawn."""
    for c, p in lay.bones:
        if have[c] and have[p]:
            ax.plot(pose[[c, p], axes[0]], pose[[c, p], axes[1]], color="0.75" if ghost else _side(lay.joints[c]),
                    lw=3.0 if ghost else 1.5, zorder=1 if ghost else 2, solid_capstyle="round")
    if not ghost:
        ax.scatter(pose[have, axes[0]], pose[have, axes[1]], s=8, c="k", zorder=3)


def reconstruction_figure(model, ps: PairSet, index: int, config: LifterConfig, fit_rows, frames: int = 4,
                          person: int = 0):
    """Ground truth (grey) vs the lifted skeleton and vs the zero-depth baseline for clip ``index`` of ``ps``.

    Columns: ``frames`` evenly spaced frames. Rows: front view (x right, y up) of the lifted skeleton,
    side view (depth z vs y) of the lifted skeleton, side view of zero-depth. Predictions are drawn
    on the joints ``L_rec`` supervises (the others are not trained). Pose frame: root-relative,
    torso units. Zero-depth fits the front view by construction; only the side view shows depth.
    """
    from matplotlib.figure import Figure

    x2, x3 = (torch.as_tensor(a[0, person]) for a in ps.pairs([index]))          # (T, V, C)
    x2, lift_lay = add_spine(x2, ps.layout_2d)
    p2, (p3, _, scale) = pose_frame(x2, lift_lay).pose, pose_frame(x3, ps.layout_3d)
    valid = np.flatnonzero(((p2 != 0).any(-1).any(-1) & (p3 != 0).any(-1).any(-1)).numpy())
    if not len(valid):
        raise DataError("has no frame with both skeletons", sample=ps.clips[index])
    ts = valid[np.unique(np.linspace(0, len(valid) - 1, frames).round().astype(int))]
    ia, ib, _ = shared_joints(lift_lay, ps.layout_3d)
    lifted = _predict(model, p2[ts])[:, ia].numpy()
    fit = _frames(ps.pairs(fit_rows), replace(config, layout_2d=ps.layout_2d, layout_3d=ps.layout_3d), "fit")
    flat = baselines(fit, lift_lay, ps.layout_3d)["zero_depth"]({"x": p2[ts]}).numpy()
    lay3 = get_layout(ps.layout_3d)
    gt = p3[ts].numpy()
    have = np.zeros(lay3.num_joints, bool)
    have[ib] = True
    # one box for every panel, from the ground truth: views compare at a glance, errors stay visible
    g = gt[(gt != 0).any(-1)]
    hx, hy = 1.2 * np.abs(g[:, [0, 2]]).max(), 0.6 * np.ptp(g[:, 1])
    mid_y = 0.5 * (g[:, 1].max() + g[:, 1].min())
    fig = Figure(figsize=(2.2 * len(ts), 7.2), layout="constrained")
    grid = fig.subplots(3, len(ts), squeeze=False)
    mm = 1000 * float(scale)
    root = np.arange(lay3.num_joints) == lay3.index("spine_base")   # at the origin, so all-zero, yet present
    for k, t in enumerate(ts):
        for row, (pred, axes, label) in enumerate(((lifted, (0, 1), "lifted, front (x, y)"),
                                                   (lifted, (2, 1), "lifted, side (depth z, y)"),
                                                   (flat, (2, 1), "zero depth, side (depth z, y)"))):
            ax = grid[row, k]
            full = np.zeros_like(gt[k])
            full[ib] = pred[k]
            _draw(ax, gt[k], (gt[k] != 0).any(-1) | root, lay3, axes, ghost=True)
            _draw(ax, full, have, lay3, axes)
            err = np.linalg.norm(pred[k] - gt[k][ib], axis=-1).mean() * mm
            ax.set_title(f"t={t}: {err:.0f} mm", fontsize=8)
            ax.set_xlim(-hx, hx)
            ax.set_ylim(mid_y - hy, mid_y + hy)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{ps.name} {ps.clips[index]}: ground truth (grey) vs prediction")
    return fig


def real_figure(results: dict[str, dict[str, dict]]):
    """Grouped bars of MPJPE (mm) per predictor, one group per real set ``{set: {variant: metrics}}``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.subplots()
    vs = [v for v in VARIANTS if any(v in r for r in results.values())]
    w = 0.8 / max(len(vs), 1)
    for j, v in enumerate(vs):
        xs = [i + (j - (len(vs) - 1) / 2) * w for i, r in enumerate(results.values()) if v in r]
        ys = [r[v]["mpjpe_mm"] for r in results.values() if v in r]
        baseline = v in ("mean_pose", "zero_depth")  # bars to get under: grey, hatched
        bars = ax.bar(xs, ys, w, label=v, color=("0.55", "0.8")[j % 2] if baseline else f"C{j}",
                      hatch="//" if baseline else None, edgecolor="k", lw=0.4)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(results)), list(results))
    ax.set_ylabel("MPJPE (mm)")
    ax.set_ylim(0, 1.3 * max(r[v]["mpjpe_mm"] for r in results.values() for v in vs if v in r))
    ax.legend(fontsize=8, ncols=3, loc="upper center")
    ax.set_title("real recordings: lifted 3D vs the sensor's 3D")
    return fig
