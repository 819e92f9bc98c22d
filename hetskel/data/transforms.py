"""Batched skeleton transforms on ``(N, M, T, V, C)`` tensors: normalisation, temporal resizing,
person padding, and two geometric augmentations.

Every function also accepts one sequence ``(M, T, V, C)`` (it is treated as a batch of one and
returned without the batch axis), keeps the input's device and dtype, and works on the whole
batch at once (no Python loop over samples). An all-zero joint, frame or person means "absent"
(that is how PYSKL and NTU files pad), and every transform here maps absent to absent.

What the two 3D normalisations do (``normalize_3d``), written from the published descriptions of
PYSKL's ``PreNormalize3D`` and of the 2s-AGCN ``pre_normalization`` that UmURL's NTU preprocessing
runs:

``variant="pyskl"``
    1. main person = the person with the most non-empty frames (PYSKL swaps persons 0 and 1 when
       person 1 is present in more frames); reference frame ``t0`` = its first non-empty frame;
    2. subtract the main person's ``center`` joint (default ``spine_mid``, NTU joint 1) at ``t0``
       from every non-empty joint of every person and frame (one translation per sample);
    3. rotate so that the main person's spine ``spine_base -> spine_mid`` at ``t0`` points along
       +z, then rotate again so that its shoulders ``left_shoulder -> right_shoulder`` at ``t0``
       point along +x. The second rotation is the minimal one onto +x, so afterwards the shoulder
       line is exactly parallel to x while the spine is only approximately along z (as in PYSKL).
    PYSKL also drops the frames in which the main person is absent; we keep the time axis
    unchanged (``resample_valid`` handles the trailing padding) so that batches stay rectangular.

``variant="umurl"``
    Same rotations, but the centre is subtracted *per frame*: every frame loses the main person's
    centre joint of that frame (2s-AGCN subtracts ``skeleton[0][:, 1]`` frame by frame), which
    removes the global trajectory. Frames where the main person is absent use its last earlier
    centre (its first one before it appears). 2s-AGCN additionally fills trailing empty frames by
    looping the sequence; we do not (UmURL crops to the valid length anyway).

Absent stays absent at every level, but the converse does not hold for single joints: the centre
joint becomes exactly (0, 0, 0) where it is subtracted from itself (the reference frame, or every
frame of the main person with ``"umurl"``), so test presence per frame or person, not per joint,
after normalising (or pass the mask you computed before as ``valid``).

Joints are addressed by name through the ``Layout``; the spine joints are derived from
shoulders/hips (``hetskel.layouts.DERIVED``) when a layout lacks them, and a layout that has
neither raises ``LayoutError``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hetskel.data.errors import DataError
from hetskel.layouts import DERIVED, Layout, LayoutError, get_layout

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------------
# helpers
def _batched(x: Tensor, what: str = "x") -> tuple[Tensor, bool]:
    """Return ``(x as (N, M, T, V, C), was_unbatched)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 4:
        return x.unsqueeze(0), True
    if x.dim() != 5:
        raise DataError(f"expected a (N, M, T, V, C) or (M, T, V, C) tensor, got shape {tuple(x.shape)}",
                        field=what)
    return x, False


def _unbatch(y: Tensor, squeeze: bool) -> Tensor:
    return y.squeeze(0) if squeeze else y


def _check_layout(x: Tensor, layout: str | Layout) -> Layout:
    lay = get_layout(layout)
    if x.shape[-2] != lay.num_joints:
        raise LayoutError(f"tensor has {x.shape[-2]} joints on axis -2 but layout {lay.name!r} has "
                          f"{lay.num_joints}")
    return lay


def joint(x: Tensor, layout: Layout, name: str) -> Tensor:
    """``x[..., name, :]`` by joint name, deriving spine joints from shoulders/hips when absent.

    x: ``(..., V, C)`` -> ``(..., C)``. Raises ``LayoutError`` when neither the joint nor its
    ingredients exist in ``layout``.
    """
    if layout.has(name):
        return x[..., layout.index(name), :]
    if name in DERIVED:
        try:
            parts = [joint(x, layout, p) for p in DERIVED[name]]
        except LayoutError:
            pass
        else:
            return sum(parts[1:], parts[0]) / len(parts)
    raise LayoutError(f"layout {layout.name!r} has no joint {name!r} and cannot derive it "
                      f"(it has {list(layout.joints)})")


def _gather_n(x: Tensor, idx: Tensor) -> Tensor:
    """``x[n, idx[n]]`` for every n: x ``(N, K, ...)``, idx ``(N,)`` -> ``(N, ...)``."""
    return x[torch.arange(x.shape[0], device=x.device), idx]


def rotation_onto(a: Tensor, b: Sequence[float], eps: float = 1e-8) -> Tensor:
    """Per-row rotation matrices that turn direction ``a`` ``(N, 3)`` onto the fixed unit vector ``b``.

    Rodrigues' formula ``R = I + K + K^2 / (1 + cos)`` with ``K`` the cross-product matrix of
    ``a_hat x b``. A zero ``a`` gives the identity; an ``a`` opposite to ``b`` gives a half turn
    about an axis perpendicular to ``b`` (PYSKL returns the identity there, which leaves the body
    upside down). Returns ``(N, 3, 3)`` so that ``R @ a`` is parallel to ``b``.
    """
    b_t = torch.as_tensor(b, dtype=a.dtype, device=a.device)
    b_t = b_t / b_t.norm()
    n = a.norm(dim=-1, keepdim=True)
    a_hat = a / n.clamp_min(eps)
    v = torch.linalg.cross(a_hat, b_t.expand_as(a_hat), dim=-1)
    c = (a_hat * b_t).sum(-1)
    zero = torch.zeros_like(c)
    K = torch.stack([torch.stack([zero, -v[:, 2], v[:, 1]], -1),
                     torch.stack([v[:, 2], zero, -v[:, 0]], -1),
                     torch.stack([-v[:, 1], v[:, 0], zero], -1)], -2)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand(a.shape[0], 3, 3)
    R = eye + K + (K @ K) / (1 + c).clamp_min(eps)[:, None, None]
    # half turn for the antiparallel case: R = 2 u u^T - I with u a unit vector perpendicular to b
    helper = torch.zeros(3, dtype=a.dtype, device=a.device)
    helper[int(b_t.abs().argmin())] = 1
    u = torch.linalg.cross(b_t, helper, dim=-1)
    u = u / u.norm()
    flip = 2 * torch.outer(u, u) - torch.eye(3, dtype=a.dtype, device=a.device)
    R = torch.where((c < -1 + 1e-6)[:, None, None], flip.expand_as(R), R)
    return torch.where((n[:, 0] < eps)[:, None, None], eye, R)


def _minimal_alignment(spine: Tensor, shoulder: Tensor) -> Tensor:
    """PYSKL/2s-AGCN: minimal rotation of ``spine`` onto +z, then of the rotated ``shoulder`` onto +x."""
    R1 = rotation_onto(spine, (0.0, 0.0, 1.0))
    R2 = rotation_onto((R1 @ shoulder[..., None])[..., 0], (1.0, 0.0, 0.0))
    return R2 @ R1


def body_frame(spine: Tensor, shoulder: Tensor, eps: float = 1e-8) -> Tensor:
    """Rotation ``(N, 3, 3)`` whose rows are an orthonormal body frame: z along ``spine``, x along
    the part of ``shoulder`` perpendicular to the spine, y = z cross x.

    Unlike the two minimal rotations, this is exactly equivariant: rotating the input body rotates
    the frame with it, so the normalised output does not depend on the camera's orientation.
    Degenerate inputs (zero spine, or shoulders parallel to it) fall back to the identity.
    """
    z = spine / spine.norm(dim=-1, keepdim=True).clamp_min(eps)
    xs = shoulder - (shoulder * z).sum(-1, keepdim=True) * z
    xn = xs.norm(dim=-1, keepdim=True)
    x = xs / xn.clamp_min(eps)
    R = torch.stack([x, torch.linalg.cross(z, x, dim=-1), z], -2)
    ok = (spine.norm(dim=-1) > eps) & (xn[:, 0] > eps)
    eye = torch.eye(3, dtype=spine.dtype, device=spine.device).expand_as(R)
    return torch.where(ok[:, None, None], R, eye)


# ---------------------------------------------------------------------------------------------
# normalisation
def normalize_3d(x: Tensor, layout: str | Layout, center: str = "spine_mid", align: bool | str = True,
                 scale: str | None = None, variant: str = "pyskl", valid: Tensor | None = None,
                 spine: tuple[str, str] = ("spine_base", "spine_mid"),
                 shoulders: tuple[str, str] = ("left_shoulder", "right_shoulder")) -> Tensor:
    """Centre, view-align and optionally scale 3D skeletons (see the module docstring).

    x:      ``(N, M, T, V, 3)`` or ``(M, T, V, 3)``.
    center: joint name subtracted (``"spine_mid"`` as PYSKL/2s-AGCN on NTU, or e.g. ``"spine_base"``).
    align:  True: the spine->z then shoulders->x minimal rotations of PYSKL/2s-AGCN; ``"frame"``:
            the orthonormal body frame of ``body_frame`` (spine exactly on z, shoulders in the
            xz-plane; rotation invariant, which the PYSKL pair is not); False: no rotation.
    scale:  None, or ``"torso"``: divide by the main person's mean ``|spine_shoulder - spine_base|``
            over its non-empty frames (the lifter's scale normalisation).
    valid:  optional bool mask ``(N, M, T)`` or ``(N, M, T, V)`` of present joints; default: joints
            that are not exactly zero. Absent joints are returned as exact zeros.
    Returns a tensor of x's shape, dtype and device.
    """
    x, squeeze = _batched(x)
    lay = _check_layout(x, layout)
    if x.shape[-1] != 3:
        raise DataError(f"normalize_3d needs 3 channels, got {x.shape[-1]}", field="keypoint")
    if variant not in ("pyskl", "umurl"):
        raise ValueError(f"normalize_3d: variant must be 'pyskl' or 'umurl', got {variant!r}")
    if align not in (True, False, "frame"):
        raise ValueError(f"normalize_3d: align must be True, False or 'frame', got {align!r}")
    if scale not in (None, "torso"):
        raise ValueError(f"normalize_3d: scale must be None or 'torso', got {scale!r}")
    out_dtype = x.dtype
    work = x.to(torch.promote_types(x.dtype, torch.float32))  # rotations in at least float32
    N, M, T, V, _ = work.shape
    if valid is None:
        jmask = (work != 0).any(-1)
    else:
        jmask = valid.to(device=x.device, dtype=torch.bool)
        if jmask.dim() == 3:
            jmask = jmask[..., None].expand(N, M, T, V)
        if tuple(jmask.shape) != (N, M, T, V):
            raise DataError(f"valid mask has shape {tuple(valid.shape)}, expected {(N, M, T)} or "
                            f"{(N, M, T, V)}", field="valid")
    fvalid = jmask.any(-1)                                     # (N, M, T)
    main = fvalid.sum(-1).argmax(-1)                           # (N,) first person on ties
    xm, fv = _gather_n(work, main), _gather_n(fvalid, main)    # (N, T, V, 3), (N, T)
    t0 = fv.to(torch.int32).argmax(-1)                         # first present frame (0 if none)
    ref = _gather_n(xm, t0)                                    # (N, V, 3)

    if variant == "pyskl":
        c = joint(ref, lay, center)[:, None, None, None, :]    # one translation per sample
    else:
        ar = torch.arange(T, device=x.device).expand(N, T)
        last = torch.where(fv, ar, torch.full_like(ar, -1)).cummax(-1).values
        last = torch.where(last < 0, t0[:, None].expand(N, T), last)
        c_t = joint(xm, lay, center).gather(1, last[..., None].expand(N, T, 3))  # (N, T, 3)
        c = c_t[:, None, :, None, :]
    y = work - c

    if align:
        sp = joint(ref, lay, spine[1]) - joint(ref, lay, spine[0])        # (N, 3)
        sh = joint(ref, lay, shoulders[1]) - joint(ref, lay, shoulders[0])
        R = body_frame(sp, sh) if align == "frame" else _minimal_alignment(sp, sh)
        y = torch.einsum("nij,nmtvj->nmtvi", R, y)

    if scale == "torso":
        torso = (joint(xm, lay, "spine_shoulder") - joint(xm, lay, "spine_base")).norm(dim=-1)  # (N, T)
        w = fv.to(torso.dtype)
        length = (torso * w).sum(-1) / w.sum(-1).clamp_min(1)
        length = torch.where(length > 1e-6, length, torch.ones_like(length))  # empty sample: no-op
        y = y / length[:, None, None, None, None]

    y = y * jmask[..., None]
    return _unbatch(y.to(out_dtype), squeeze)


def normalize_2d(x: Tensor, score: Tensor | None, img_shape, threshold: float = 0.0) -> Tensor:
    """Pixels -> ``[-1, 1]`` by image size (PYSKL ``PreNormalize2D``): ``u' = (u - w/2) / (w/2)``,
    ``v' = (v - h/2) / (h/2)`` (image y stays downward).

    x:         ``(N, M, T, V, 2)`` or ``(M, T, V, 2)`` pixel coordinates.
    score:     ``(N, M, T, V)`` (or unbatched) confidences; keypoints with ``score <= threshold``
               become exactly 0 (absent). None: keypoints that are exactly (0, 0) count as absent.
    img_shape: ``(h, w)`` for all samples, or a ``(N, 2)`` array/tensor of per-sample ``(h, w)``.
    """
    x, squeeze = _batched(x)
    if x.shape[-1] != 2:
        raise DataError(f"normalize_2d needs 2 channels, got {x.shape[-1]}", field="keypoint")
    hw = torch.as_tensor(img_shape, dtype=torch.float64).to(x.device)
    if hw.dim() == 1:
        hw = hw.expand(x.shape[0], 2)
    if tuple(hw.shape) != (x.shape[0], 2):
        raise DataError(f"img_shape must be (h, w) or (N, 2), got shape {tuple(hw.shape)} for N={x.shape[0]}",
                        field="img_shape")
    if not bool((hw > 0).all()):
        raise DataError("img_shape must be positive (h, w)", field="img_shape")
    half = (hw.flip(-1) / 2).to(x.dtype)[:, None, None, None, :]   # (N, 1, 1, 1, 2) as (w/2, h/2)
    y = (x - half) / half
    if score is None:
        keep = (x != 0).any(-1)
    else:
        score = score[None] if squeeze else score
        if tuple(score.shape) != tuple(x.shape[:-1]):
            raise DataError(f"score shape {tuple(score.shape)} does not match keypoints {tuple(x.shape)}",
                            field="keypoint_score")
        keep = score.to(x.device) > threshold
    return _unbatch(y * keep[..., None], squeeze)


# ---------------------------------------------------------------------------------------------
# time
def _per_sample(v, n: int, default: Tensor, device) -> Tensor:
    if v is None:
        return default
    t = torch.as_tensor(v, device=device).to(torch.int64)
    return t.expand(n).clone() if t.dim() == 0 else t


def resize_time(x: Tensor, num_frames: int, start=None, length=None) -> Tensor:
    """Crop frames ``[start, start + length)`` of each sample and resize them to ``num_frames`` by
    linear interpolation (``align_corners=True`` style: output frame k samples crop position
    ``k (length - 1) / (num_frames - 1)``, so the crop's first and last frames are kept exactly).

    x:      ``(N, M, T, ...)`` (any trailing axes; e.g. scores as ``(N, M, T, V, 1)``) or
            ``(M, T, V, C)``.
    start:  int or LongTensor ``(N,)``, default 0.
    length: int or LongTensor ``(N,)``, default ``T - start``; must be >= 1 and stay inside T.
    Returns ``(N, M, num_frames, ...)``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"resize_time: expected a torch.Tensor, got {type(x).__name__}")
    squeeze = x.dim() == 4
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() < 3:
        raise DataError(f"resize_time: expected (N, M, T, ...), got shape {tuple(x.shape)}", field="x")
    if num_frames < 1:
        raise ValueError(f"resize_time: num_frames must be >= 1, got {num_frames}")
    N, M, T = x.shape[:3]
    start = _per_sample(start, N, torch.zeros(N, dtype=torch.int64, device=x.device), x.device)
    length = _per_sample(length, N, T - start, x.device)
    if start.shape != (N,) or length.shape != (N,):
        raise ValueError(f"resize_time: start/length must be scalars or shape ({N},)")
    if bool(((length < 1) | (start < 0) | (start + length > T)).any()):
        raise ValueError(f"resize_time: crops must satisfy start >= 0, length >= 1, start + length <= T={T}")
    k = torch.arange(num_frames, device=x.device, dtype=torch.int64)
    num = k[None, :] * (length[:, None] - 1)                   # exact integers
    pos = num.to(torch.float64) / max(num_frames - 1, 1)       # last one is exactly length - 1
    lo = pos.floor().to(torch.int64)
    w = (pos - lo).to(x.dtype)
    hi = torch.minimum(lo + 1, length[:, None] - 1)
    lo, hi = lo + start[:, None], hi + start[:, None]
    tail = x.shape[3:]
    view = (N, 1, num_frames) + (1,) * len(tail)
    shape = (N, M, num_frames) + tuple(tail)
    x_lo = x.gather(2, lo.view(view).expand(shape))
    x_hi = x.gather(2, hi.view(view).expand(shape))
    y = torch.lerp(x_lo, x_hi, w.view(view).expand(shape))
    return y.squeeze(0) if squeeze else y


def valid_length(x: Tensor) -> Tensor:
    """Frames up to and including the last non-empty one, per sample: LongTensor ``(N,)``.

    A frame is non-empty when any person/joint/channel is non-zero. Gaps inside a clip count
    (they are part of the clip); only the trailing zero padding (NTU arrays padded to 300
    frames) is excluded. An all-zero sample has length 0.
    """
    x, squeeze = _batched(x)
    fv = (x != 0).flatten(3).any(-1).any(1)                    # (N, T)
    T = fv.shape[1]
    from_end = fv.flip(-1).to(torch.int32).argmax(-1)
    n = torch.where(fv.any(-1), T - from_end, torch.zeros_like(from_end)).to(torch.int64)
    return n[0] if squeeze else n


def resample_valid(x: Tensor, num_frames: int, lengths: Tensor | None = None) -> Tensor:
    """Resize each sample's valid part (``valid_length``, or the given ``lengths``) to
    ``num_frames``; empty samples stay zero. ``(N, M, T, ...) -> (N, M, num_frames, ...)``."""
    squeeze = x.dim() == 4
    xb = x.unsqueeze(0) if squeeze else x
    L = valid_length(xb) if lengths is None else torch.as_tensor(lengths, device=x.device).to(torch.int64)
    y = resize_time(xb, num_frames, start=0, length=L.clamp_min(1))
    return y.squeeze(0) if squeeze else y


def smooth_time(x: Tensor, window: int) -> Tensor:
    """Centred moving average over ``window`` frames (odd; 1 returns ``x``) of every joint,
    ``(N, M, T, V, C) -> same``. Only present joint-frames (any channel non-zero) are averaged; the
    window shrinks at the clip's edges and around gaps, and absent stays absent.

    Why: pose estimators and depth sensors jitter independently per frame, and a slow, small motion
    (a head turn seen through COCO's face points) is smaller per frame than that jitter; averaging
    ``w`` frames divides independent jitter by ``sqrt(w)`` and leaves slow motions as they are.
    """
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"smooth_time: window must be an odd integer >= 1, got {window!r}")
    if window == 1:
        return x
    x, squeeze = _batched(x)
    present = (x != 0).any(-1, keepdim=True).to(x.dtype)        # (N, M, T, V, 1)
    T, h = x.shape[2], window // 2
    frames = torch.arange(T, device=x.device)
    hi, lo = (frames + h + 1).clamp(max=T), (frames - h).clamp(min=0)

    def window_sum(v: Tensor) -> Tensor:  # sum over frames [t - h, t + h] by a running sum
        c = torch.cat([torch.zeros_like(v[:, :, :1]), v.cumsum(2)], dim=2)
        return c.index_select(2, hi) - c.index_select(2, lo)

    y = window_sum(x * present) / window_sum(present).clamp_min(1.0) * present
    return _unbatch(y, squeeze)


# ---------------------------------------------------------------------------------------------
# persons
def person_energy(x: Tensor) -> Tensor:
    """Motion energy per person ``(N, M)``: the sum over channels of the coordinate standard
    deviation over the person's non-empty frames and joints (the NTU "two most active bodies"
    criterion). Absent persons get -1 so any present person outranks them."""
    x, _ = _batched(x)
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    present = (xf != 0).flatten(3).any(-1)                     # (N, M, T)
    w = present[..., None, None].to(xf.dtype)                  # (N, M, T, 1, 1)
    cnt = (w.sum(2) * x.shape[3]).clamp_min(1)                 # (N, M, 1, 1): frames * joints
    mean = (xf * w).sum((2, 3)) / cnt[..., 0, :]               # (N, M, C)
    var = (((xf - mean[:, :, None, None]) * w) ** 2).sum((2, 3)) / cnt[..., 0, :]
    e = var.sqrt().sum(-1)
    return torch.where(present.any(-1), e, torch.full_like(e, -1.0))


def select_persons(x: Tensor, max_persons: int) -> Tensor:
    """Which persons to keep: LongTensor ``(N, min(M, max_persons))``. With ``M <= max_persons``
    the order is unchanged; otherwise the ``max_persons`` most energetic, most energetic first."""
    x, _ = _batched(x)
    N, M = x.shape[:2]
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    if M <= max_persons:
        return torch.arange(M, device=x.device).expand(N, M)
    order = person_energy(x).argsort(dim=-1, descending=True, stable=True)
    return order[:, :max_persons]


def take_persons(t: Tensor, index: Tensor, max_persons: int) -> Tensor:
    """Gather persons ``index`` ``(N, K)`` from ``t`` ``(N, M, ...)`` and zero-pad to ``max_persons``."""
    N = t.shape[0]
    identity = index.shape[1] == t.shape[1] and bool((index == torch.arange(t.shape[1], device=index.device)).all())
    picked = t if identity else t[torch.arange(N, device=t.device)[:, None], index]   # (N, K, ...)
    K = picked.shape[1]
    if K == max_persons:
        return picked
    pad = picked.new_zeros((N, max_persons - K) + tuple(t.shape[2:]))
    return torch.cat([picked, pad], 1)


def pad_persons(x: Tensor, max_persons: int) -> Tensor:
    """Zero-pad or truncate the person axis to ``max_persons`` (see ``select_persons``)."""
    xb, squeeze = _batched(x)
    return _unbatch(take_persons(xb, select_persons(xb, max_persons), max_persons), squeeze)


# ---------------------------------------------------------------------------------------------
# augmentations
def _axis_rotation(angle: Tensor, axis: int) -> Tensor:
    """``(N,)`` angles -> ``(N, 3, 3)`` right-handed rotations about coordinate ``axis``."""
    c, s = angle.cos(), angle.sin()
    R = torch.eye(3, dtype=angle.dtype, device=angle.device).repeat(angle.shape[0], 1, 1)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[:, i, i], R[:, i, j], R[:, j, i], R[:, j, j] = c, -s, s, c
    return R


def random_rotate(x: Tensor, max_angle: float = math.pi / 6, axes: str = "xyz",
                  generator: torch.Generator | None = None) -> Tensor:
    """Rotate each sample about the origin by independent uniform angles in ``[-max_angle,
    max_angle]`` (radians) about each of ``axes`` (3D; applied x, then y, then z), or in the
    image plane (2D). Absent joints stay zero (rotations are linear)."""
    xb, squeeze = _batched(x)
    N, C = xb.shape[0], xb.shape[-1]
    dt = torch.promote_types(xb.dtype, torch.float32)
    if C == 2:
        a = (torch.rand(N, generator=generator, device=xb.device, dtype=dt) * 2 - 1) * max_angle
        R = _axis_rotation(a, 2)[:, :2, :2]
    elif C == 3:
        R = torch.eye(3, dtype=dt, device=xb.device).expand(N, 3, 3)
        for ax in "xyz":
            if ax in axes:
                a = (torch.rand(N, generator=generator, device=xb.device, dtype=dt) * 2 - 1) * max_angle
                R = _axis_rotation(a, "xyz".index(ax)) @ R
    else:
        raise DataError(f"random_rotate needs 2 or 3 channels, got {C}", field="keypoint")
    y = torch.einsum("nij,nmtvj->nmtvi", R, xb.to(dt)).to(xb.dtype)
    return _unbatch(y, squeeze)


def mirror(x: Tensor, layout: str | Layout, apply: Tensor | None = None, axis: int = 0) -> Tensor:
    """Left/right mirror: negate coordinate ``axis`` (x) and swap left and right joints
    (``Layout.flip_permutation``), so the result is again a valid skeleton of ``layout``.

    apply: optional bool ``(N,)``: mirror only these samples (for a random mirror augmentation).
    """
    xb, squeeze = _batched(x)
    lay = _check_layout(xb, layout)
    perm = torch.as_tensor(lay.flip_permutation, device=xb.device)
    sign = torch.ones(xb.shape[-1], dtype=xb.dtype, device=xb.device)
    sign[axis] = -1
    y = xb[..., perm, :] * sign
    if apply is not None:
        y = torch.where(apply.to(xb.device, torch.bool)[:, None, None, None, None], y, xb)
    return _unbatch(y, squeeze)
