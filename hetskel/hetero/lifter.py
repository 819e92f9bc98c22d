"""2D -> 3D lifter: the normalised pose frame, the per-frame MLP, L_rec and lifting metrics.

The pose frame
--------------
Lifter outputs and 3D targets live in one frame, built by ``pose_frame(x, layout)``:

* **root-relative per frame**: subtract the root ``spine_base`` (mid-hip; derived from the hips
  when a layout lacks it, via ``hetskel.layouts.DERIVED``) of the same frame. A single 2D frame says
  nothing about absolute depth or where the camera stands, so a per-frame lifter can only be asked
  for the pose *around* the body, never for the body's place in the world;
* **scale-normalised by the torso**: divide by the person's mean torso length
  ``|spine_shoulder - spine_base|`` over its valid frames. 2D pixels and 3D metres then share one
  unit (about "one torso"), subjects of different height look alike, and one number per sequence
  (not per frame) keeps real foreshortening (a bending torso gets shorter) inside the pose;
* **plus the root trajectory**, returned apart (``root``, ``scale``): ``with_trajectory`` adds
  ``(root_t - root_ref) / scale`` back, so walking, jumping or two persons' relative positions are
  not lost for the modalities built on top. For a pinhole camera a sideways shift ``dX`` of a body
  of torso ``L`` at depth ``Z`` moves the 2D root by ``f dX / Z`` while the 2D torso is ``f L / Z``:
  for motion parallel to the image plane the 2D trajectory in 2D torso units equals the 3D one in
  3D torso units (up to the axis mapping); motion along the viewing ray is invisible in 2D.

It works for 2D and 3D (any channel count) and any layout having the hips and shoulders. Exactly
zero joints are absent (padding, undetected keypoints) and stay exactly zero; an all-zero frame is
a padded frame, an all-zero person a padded person.

The lifter (``Lifter``) regresses the pose frame of the 3D skeleton from the pose frame of the 2D
skeleton, frame by frame: the paper's 4-layer MLP with BatchNorm, applied to the COCO-20 joints
(COCO-17 + the interpolated spine, ``add_spine``). The same module is trained jointly inside
pretraining (``hetskel.hetero.pipeline``) and standalone, for inspection, by ``train_lifter``
(``hetskel.hetero.lifter_train``, re-exported here), which also reports the two baselines a lifter
must beat: the training-set mean pose and "2D with zero depth".
"""
from __future__ import annotations

import contextlib
import itertools
from typing import NamedTuple

import torch
import torch.nn as nn

from hetskel.layouts import DERIVED, Layout, LayoutError, convert, get_layout

Tensor = torch.Tensor
ROOT = "spine_base"
TORSO = ("spine_base", "spine_shoulder")


# ---------------------------------------------------------------------------------------------
# masks and named joints
def joint_present(x: Tensor) -> Tensor:
    """``(..., V, C) -> (..., V)`` bool: which joints carry data.

    2D (C == 2): the joint is not exactly zero, since pose detectors' joints below the score
    threshold are zeroed. 3D: every joint of a non-empty frame, since depth sensors report whole
    bodies and an exact zero is a real position (normalisation centres a joint on the origin).
    """
    nonzero = (x != 0).any(-1)
    if x.shape[-1] == 2:
        return nonzero
    return nonzero.any(-1, keepdim=True).expand_as(nonzero)


def frame_valid(x: Tensor) -> Tensor:
    """``(..., V, C) -> (...)`` bool: some joint of the frame is present (else the frame is padding)."""
    return joint_present(x).any(-1)


def named_joint(x: Tensor, layout: "str | Layout", name: str) -> tuple[Tensor, Tensor]:
    """``(x[..., name, :], present)``: ``(..., C)`` and ``(...)`` bool, deriving spine joints from
    shoulders/hips (``DERIVED``) when the layout lacks them; a derived joint is present only when
    all its ingredients are."""
    lay = get_layout(layout)
    if lay.has(name):
        j = x[..., lay.index(name), :]
        return j, (j != 0).any(-1)
    if name in DERIVED:
        parts = [named_joint(x, lay, p) for p in DERIVED[name]]
        value = sum((p[0] for p in parts[1:]), parts[0][0]) / len(parts)
        present = torch.stack([p[1] for p in parts]).all(0)
        return value * present[..., None], present
    raise LayoutError(f"layout {lay.name!r} has no joint {name!r} and cannot derive it; the pose frame "
                      f"needs the hips and shoulders (it has {list(lay.joints)})")


def add_spine(x: Tensor, layout: "str | Layout" = "coco17") -> tuple[Tensor, Layout]:
    """Append the interpolated spine joints: COCO-17 ``(..., 17, C)`` -> COCO-20 ``(..., 20, C)``.

    Other layouts get the spine joints they lack and can derive appended (layout ``<name>+spine``).
    A derived joint whose ingredients are absent (score-zeroed keypoints) is absent too, rather
    than the half of one hip that a plain mean would give.
    """
    lay = get_layout(layout)
    dst = spine_layout(lay)
    if dst is lay:
        return x, lay
    y, _ = convert(x, lay, dst)
    keep = torch.ones(y.shape[:-1], dtype=y.dtype, device=y.device)
    for name in DERIVED:
        if dst.has(name) and not lay.has(name):
            keep[..., dst.index(name)] = named_joint(x, lay, name)[1].to(y.dtype)
    y = y * keep[..., None]
    return y, dst


def spine_layout(layout: "str | Layout") -> Layout:
    """The layout plus the derivable spine joints it lacks (``coco17`` -> ``coco20``; unchanged if none)."""
    from hetskel.layouts import register_layout
    lay = get_layout(layout)
    if lay.name == "coco17":
        return get_layout("coco20")
    extra = []
    for name, parts in DERIVED.items():
        if not lay.has(name) and all(lay.has(p) or p in extra for p in parts):
            extra.append(name)
    if not extra:
        return lay
    have = set(lay.joints) | set(extra)
    bones = {j: lay.joints[p] for j, p in zip(lay.joints, lay.parents) if p >= 0}
    # connect the new joints so the layout stays one tree where it can (spine_base hangs off an existing
    # spine_mid only when the layout had no root of its own there)
    for child, options in (("spine_mid", ("spine_base",)), ("spine_shoulder", ("spine_mid", "spine_base")),
                           ("spine_base", ("spine_mid",) if lay.has("spine_mid") else ())):
        parent = next((p for p in options if p in have), None) if child in extra else None
        if parent is not None:
            bones[child] = parent
    return register_layout(Layout.from_bones(f"{lay.name}+spine", [*lay.joints, *extra], bones, dims=lay.dims,
                                             description=f"{lay.name} with interpolated spine joints"))


# ---------------------------------------------------------------------------------------------
# the pose frame
class PoseFrame(NamedTuple):
    pose: Tensor   # (..., T, V, C) root-relative, torso-scaled; absent joints exactly zero
    root: Tensor   # (..., T, C) root per frame in input units; zero on padded frames
    scale: Tensor  # (...,) mean torso length per person in input units (1 when undefined)


def pose_frame(x: Tensor, layout: "str | Layout", eps: float = 1e-6) -> PoseFrame:
    """Normalise ``x (..., T, V, C)`` into the pose frame (module docstring): ``(pose, root, scale)``.

    A frame whose root is absent but which has other joints uses the mean of its present joints as
    root. A person without any frame where both torso ends are present gets scale 1.
    """
    lay = get_layout(layout)
    if x.dim() < 3 or x.shape[-2] != lay.num_joints:
        raise LayoutError(f"pose_frame: expected (..., T, {lay.num_joints}, C) for layout {lay.name!r}, "
                          f"got shape {tuple(x.shape)}")
    jp = joint_present(x)                                             # (..., T, V)
    fv = jp.any(-1)                                                   # (..., T)
    root, root_ok = named_joint(x, lay, ROOT)
    mean_present = (x * jp[..., None]).sum(-2) / jp.sum(-1, keepdim=True).clamp_min(1)
    root = torch.where(root_ok[..., None], root, mean_present) * fv[..., None]
    (a, a_ok), (b, b_ok) = (named_joint(x, lay, n) for n in TORSO)
    ok = (a_ok & b_ok).to(x.dtype)
    torso = ((b - a).norm(dim=-1) * ok).sum(-1) / ok.sum(-1).clamp_min(1)   # (...,)
    scale = torch.where(torso > eps, torso, torch.ones_like(torso))
    pose = (x - root[..., None, :]) / scale[..., None, None, None] * jp[..., None]
    return PoseFrame(pose, root, scale)


def trajectory(root: Tensor, scale: Tensor, valid: Tensor, shared: bool = True) -> Tensor:
    """Root displacement in torso units: ``root (..., M, T, C)``, ``scale (..., M)``, ``valid (..., M, T)``
    bool -> ``(..., M, T, C)``.

    The reference is the first valid frame of the first present person of the sample when
    ``shared`` (persons keep their relative positions), else each person's own first valid frame.
    Padded frames are zero.
    """
    C = root.shape[-1]
    if shared:
        first = valid.flatten(-2).to(torch.uint8).argmax(-1)                   # (...,)
        ref = root.flatten(-3, -2).gather(-2, first[..., None, None].expand(*first.shape, 1, C))[..., None, :, :]
    else:
        first = valid.to(torch.uint8).argmax(-1)                               # (..., M)
        ref = root.gather(-2, first[..., None, None].expand(*first.shape, 1, C))
    return (root - ref) / scale[..., None, None] * valid[..., None]


def with_trajectory(frame: PoseFrame, present: Tensor, shared: bool = True) -> Tensor:
    """``pose + trajectory`` ``(..., M, T, V, C)``: the whole sequence in torso units.

    present: ``(..., M, T, V)`` bool, the input's ``joint_present`` (absent joints stay zero).
    """
    pose, root, scale = frame
    traj = trajectory(root, scale, present.any(-1), shared)
    return (pose + traj[..., None, :]) * present[..., None]


# ---------------------------------------------------------------------------------------------
# the lifter
class Lifter(nn.Module):
    """Per-frame MLP: pose-frame 2D ``(..., V_in, 2)`` -> pose-frame 3D ``(..., V_out, 3)``.

    ``num_layers`` Linear layers (the paper's 4), hidden ones followed by BatchNorm1d, ReLU and
    Dropout. Padded frames (all-zero inputs) are left out of the MLP, so they never enter the
    BatchNorm statistics, and their outputs are exact zeros. ``root_index``: output joint pinned to
    the origin (the root of the pose frame, e.g. COCO-20's ``spine_base``) by subtracting its
    prediction from every joint; None leaves the output free.
    """

    def __init__(self, in_joints: int = 20, out_joints: int = 20, width: int = 1024, num_layers: int = 4,
                 dropout: float = 0.25, in_channels: int = 2, out_channels: int = 3, root_index: int | None = None):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"Lifter needs num_layers >= 2, got {num_layers}")
        self.in_joints, self.out_joints = int(in_joints), int(out_joints)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.root_index = root_index
        self.init_args = dict(in_joints=self.in_joints, out_joints=self.out_joints, width=int(width),
                              num_layers=int(num_layers), dropout=float(dropout), in_channels=self.in_channels,
                              out_channels=self.out_channels, root_index=root_index)
        layers: list[nn.Module] = []
        d = self.in_joints * self.in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = width
        layers.append(nn.Linear(d, self.out_joints * self.out_channels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.in_joints, self.in_channels):
            raise LayoutError(f"Lifter expects (..., {self.in_joints}, {self.in_channels}) inputs, got {tuple(x.shape)}")
        lead = x.shape[:-2]
        flat = x.reshape(-1, self.in_joints * self.in_channels)
        keep = (flat != 0).any(-1)
        out = flat.new_zeros(flat.shape[0], self.out_joints * self.out_channels)
        if bool(keep.any()):
            rows = flat[keep]
            # one valid row cannot give batch statistics: use the running ones for that call
            ctx = _bn_eval(self.mlp) if self.training and rows.shape[0] < 2 else contextlib.nullcontext()
            with ctx:
                y = self.mlp(rows)
            out = out.index_put((keep.nonzero().squeeze(1),), y.to(out.dtype))  # y is bf16 under autocast
        out = out.reshape(*lead, self.out_joints, self.out_channels)
        if self.root_index is not None:
            out = (out - out[..., self.root_index:self.root_index + 1, :]) * keep.reshape(*lead, 1, 1)
        return out


@contextlib.contextmanager
def _bn_eval(module: nn.Module):
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm1d) and m.training]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()


def lifter_for(layout_2d: "str | Layout" = "coco17", **kw) -> tuple[Lifter, Layout]:
    """A ``Lifter`` for a 2D source layout: input = output = its spine-completed layout, root pinned."""
    lay = spine_layout(layout_2d)
    return Lifter(lay.num_joints, lay.num_joints, root_index=lay.index(ROOT), **kw), lay


# ---------------------------------------------------------------------------------------------
# loss and metrics
def shared_joints(a: "str | Layout", b: "str | Layout") -> tuple[list[int], list[int], list[str]]:
    """Joints two layouts share by name: ``(indices in a, indices in b, names)`` in ``a``'s order."""
    la, lb = get_layout(a), get_layout(b)
    names = [j for j in la.joints if lb.has(j)]
    if not names:
        raise LayoutError(f"layouts {la.name!r} and {lb.name!r} share no joint")
    return [la.index(j) for j in names], [lb.index(j) for j in names], names


def _permutation_min(err: Tensor, cnt: Tensor) -> tuple[Tensor, Tensor]:
    """Best person assignment per sample. err, cnt: ``(N, M, M)`` summed error / frame count of
    prediction i vs target j. Returns ``(err, cnt)`` ``(N,)`` of the permutation with the lowest mean
    error (permutations with no common frame are never chosen unless all are empty)."""
    M = err.shape[-1]
    perms = torch.tensor(list(itertools.permutations(range(M))), device=err.device)   # (K, M)
    ar = torch.arange(M, device=err.device)
    e = err[:, ar, perms].sum(-1)                                                      # (N, K)
    c = cnt[:, ar, perms].sum(-1)
    mean = torch.where(c > 0, e / c.clamp_min(1), torch.full_like(e, float("inf")))
    best = mean.argmin(-1, keepdim=True)
    return e.gather(1, best).squeeze(1), c.gather(1, best).squeeze(1)


def reconstruction_loss(lifted: Tensor, lifted_layout, target: Tensor, target_layout, valid: Tensor | None = None,
                        match_persons: bool = False) -> Tensor:
    """L_rec: squared Euclidean error ``||u_C - u_J||^2`` averaged over shared joints and valid frames.

    lifted ``(..., V_a, 3)`` and target ``(..., V_b, 3)`` both in the pose frame, same leading dims.
    valid ``(...)`` bool; default: frames present in both. ``match_persons`` (inputs ``(N, M, T, V, 3)``,
    M <= 4): the 2D detector and the 3D sensor need not list persons in the same order, so each
    sample uses the person assignment with the lowest mean error (a permutation-invariant loss).
    """
    ia, ib, _ = shared_joints(lifted_layout, target_layout)
    a, b = lifted[..., ia, :], target[..., ib, :]
    if a.shape[:-1] != b.shape[:-1]:
        raise LayoutError(f"reconstruction_loss: shapes {tuple(lifted.shape)} and {tuple(target.shape)} disagree")
    va, vb = frame_valid(lifted), frame_valid(target)
    if match_persons and a.dim() == 5 and 1 < a.shape[1] <= 4:
        if valid is not None:
            va, vb = va & valid, vb & valid
        d = ((a[:, :, None] - b[:, None]) ** 2).sum(-1).mean(-1)                      # (N, M, M, T)
        both = (va[:, :, None] & vb[:, None]).to(d.dtype)
        e, c = _permutation_min((d * both).sum(-1), both.sum(-1))
        return e.sum() / c.sum().clamp_min(1)
    v = (va & vb) if valid is None else valid.to(torch.bool)
    d = ((a - b) ** 2).sum(-1).mean(-1)
    w = v.to(d.dtype)
    return (d * w).sum() / w.sum().clamp_min(1)


def procrustes_align(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Similarity-align (rotation, uniform scale, translation) each pose of ``pred`` onto ``target``.

    ``(..., J, 3)`` -> ``(..., J, 3)``; one batched SVD of the 3x3 cross-covariances, with the
    reflection fix (det = +1).
    """
    mp, mt = pred.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    p, t = pred - mp, target - mt
    H = p.transpose(-1, -2) @ t                                        # (..., 3, 3)
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vh.transpose(-1, -2) @ U.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = Vh.transpose(-1, -2) @ (D[..., None] * U.transpose(-1, -2))    # p @ R.T ~ t
    s = (S * D).sum(-1) / (p ** 2).sum((-1, -2)).clamp_min(eps)
    return s[..., None, None] * p @ R.transpose(-1, -2) + mt


def _reduce(err: Tensor, target: Tensor, valid: Tensor | None, per_frame: bool) -> Tensor:
    if per_frame:
        return err
    v = frame_valid(target) if valid is None else valid.to(torch.bool)
    w = v.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1)


def mpjpe(pred: Tensor, target: Tensor, valid: Tensor | None = None, per_frame: bool = False) -> Tensor:
    """Mean per-joint position error ``(..., J, 3)`` (joints already matched, e.g. by ``shared_joints``):
    mean Euclidean distance over joints and valid frames (default: target frames present), in the
    inputs' unit. ``per_frame``: the ``(...)`` per-frame errors instead."""
    return _reduce((pred - target).norm(dim=-1).mean(-1), target, valid, per_frame)


def pa_mpjpe(pred: Tensor, target: Tensor, valid: Tensor | None = None, per_frame: bool = False) -> Tensor:
    """MPJPE after per-frame Procrustes (similarity) alignment of ``pred`` onto ``target``."""
    v = frame_valid(target) if valid is None else valid.to(torch.bool)
    aligned = procrustes_align(pred.double(), target.double()).to(pred.dtype)
    aligned = torch.where(v[..., None, None], aligned, target)   # skip degenerate padded frames
    return _reduce((aligned - target).norm(dim=-1).mean(-1), target, v, per_frame)


# ---------------------------------------------------------------------------------------------


def lifter_flops(in_joints: int = 20, out_joints: int = 20, width: int = 1024, num_layers: int = 4,
                 frames: int = 64, persons: int = 2, in_channels: int = 2, out_channels: int = 3) -> float:
    """Forward FLOPs (2 x multiply-adds of the Linear layers, as ``hetskel.model.flops`` counts the
    encoder's) of a ``Lifter`` over one clip of ``persons x frames`` poses (every frame valid)."""
    dims = [in_joints * in_channels] + [width] * (num_layers - 1) + [out_joints * out_channels]
    return 2.0 * sum(a * b for a, b in zip(dims[:-1], dims[1:])) * frames * persons
