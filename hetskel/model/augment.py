"""UmURL's pretraining augmentations, batched on the data's device, plus the classic modalities.

One augmented *view* of a clip (UmURL ``feeder_pretraining``), every step per sample but without a
Python loop over samples:

1. **temporal crop-resize**: a fraction ``U(0.1, 1)`` of the valid frames at a uniform random
   start, resized to ``T`` frames by linear interpolation with ``align_corners=False`` (UmURL calls
   ``F.interpolate(..., mode="bilinear")`` on a ``(1, C*V*M, L, 1)`` grid, which is exactly this).
   UmURL crops raw clips and never below ``min_crop_length = 64`` raw frames, which makes its crops
   mild (an 80-frame clip keeps 80-100%, a clip of 64 frames or fewer is never cropped). Our
   batches are usually already resampled to ``T`` (``hetskel.data.batches``), so the rule is
   applied to the clip's *original* frame count ``batch["length"]`` (``length_key``): the kept
   fraction is ``min(max(floor(L_orig U) , 64) / L_orig, 1)``, UmURL's crop up to the resampling.
   Without a length entry the batch's own valid frames count as original. ``min_crop_frames=None``
   gives UmURL's plain 10-100% of the clip.
2. **spatial**, per sample: with p=0.5 *joint corruption* of ``round(0.6 V)`` random joints (15 of
   25 in UmURL) -- with p=0.5 set to zero, else mixed by one random matrix ``U(-1, 1)^{3x3}``
   (``x_j <- x_j @ A``) -- else a random *shear* ``x <- x @ S^T``, ``S = I + U(-1, 1)`` off the
   diagonal, applied to every joint. All are linear, so absent (all-zero) joints stay absent.
   ``rotation_range > 0`` draws a random rotation instead of the shear: a shear changes angles, so
   a displacement along the body's left-right axis (a head turn moves the nose that way) and one
   along its up-down axis (a nod) can be mapped onto the same direction; a rotation keeps every
   angle between body axes and motions.

Randomness comes only from an explicit ``torch.Generator`` on the data's device, so a run is
reproducible from its seed. Crop and spatial parameters are sampled apart from their application,
so one draw can be applied to several tensors: ``shared_crop=True`` gives the 3D and the 2D
skeleton of one clip the same frames, and one ``SpatialParams`` can be applied to all modalities
of a view (C < 3 uses the top-left ``C x C`` block).

``motion`` and ``bone`` build UmURL's J/M/B modalities from one 3D skeleton.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from hetskel import config as _config
from hetskel.layouts import Layout, get_layout

Tensor = torch.Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """UmURL's pretraining augmentation (defaults) and the knobs to change it."""

    crop_ratio: tuple[float, float] = (0.1, 1.0)   # UmURL l_ratio
    min_crop_frames: int | None = 64               # UmURL: >= 64 original frames; None: plain crop_ratio
    p_corrupt: float = 0.5                          # else shear
    corrupt_fraction: float = 0.6                   # 15 of 25 joints
    p_zero: float = 0.5                             # corruption: zero, else 3x3 mix
    mix_range: float = 1.0                          # mix matrix entries U(-r, r)
    shear_range: float = 1.0                        # shear off-diagonal entries U(-r, r)
    spatial: bool = True                            # False: crop only
    shared_crop: bool = True                        # one crop for every skeleton tensor of a sample
    length_key: str = "length"                      # batch entry: original frame counts (N,), if any
    bone_scale: float = 0.0                         # each bone's length x U(1-r, 1+r) per sample and view; 0: off
    part_view: float = 0.0                          # per sample and view: probability of keeping one body part only
    rotation_range: float = 0.0                     # > 0: a rotation (angles U(-r, r) rad about x, y, z) replaces the shear

    def __post_init__(self):
        _config.check_fields(self)  # types first (JSON lists become tuples), then the ranges below
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"AugmentConfig.crop_ratio must satisfy 0 < lo <= hi <= 1, got {self.crop_ratio}")
        for name in ("p_corrupt", "corrupt_fraction", "p_zero"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("mix_range", "shear_range", "rotation_range"):  # U(-r, r) entries: r < 0 only flips signs, inf/NaN poison
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"AugmentConfig.{name} must be a finite number >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.part_view <= 1:
            raise ValueError(f"AugmentConfig.part_view must be in [0, 1], got {self.part_view!r}")
        if not 0 <= self.bone_scale < 1:
            raise ValueError(f"AugmentConfig.bone_scale must be in [0, 1), got {self.bone_scale!r}")
        if self.min_crop_frames is not None and self.min_crop_frames < 1:
            raise ValueError(f"AugmentConfig.min_crop_frames must be >= 1 or None, got {self.min_crop_frames}")


# ---------------------------------------------------------------------------------------------
# temporal
def _uniform(shape, generator: torch.Generator, device, dtype=torch.float32) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def sample_crop(valid: Tensor, config: AugmentConfig, generator: torch.Generator,
                original: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Random crops of the valid frames ``(N,)`` -> ``(start, length)``, LongTensors ``(N,)``.

    original: the clips' original frame counts ``(N,)`` for the ``min_crop_frames`` rule (default:
    ``valid``, i.e. the batch has not been resampled).
    """
    L = valid.to(torch.int64).clamp_min(1)
    lo, hi = config.crop_ratio
    frac = _uniform(L.shape, generator, L.device, torch.float64) * (hi - lo) + lo
    if config.min_crop_frames is not None:
        L0 = (L if original is None else original.to(L.device, torch.int64)).clamp_min(1)
        # UmURL: crop = clamp(floor(L0 * frac), 64, L0) raw frames, as a fraction of the clip
        frac = ((L0 * frac).floor().clamp_min(config.min_crop_frames) / L0).clamp_max(1.0)
    length = (L * frac).floor().to(torch.int64).clamp(1, None).minimum(L)
    start = (_uniform(L.shape, generator, L.device, torch.float64) * (L - length + 1)).floor().to(torch.int64)
    return start.clamp_max(L - length), length


def crop_resize(x: Tensor, start: Tensor, length: Tensor, out_frames: int) -> Tensor:
    """Frames ``[start, start+length)`` of each sample resized to ``out_frames``.

    x: ``(N, M, T, ...)`` (time on axis 2); start, length: ``(N,)``. Float tensors are linearly
    interpolated with ``align_corners=False`` (source position ``(i + 0.5) * length / out - 0.5``,
    clamped at 0, like ``F.interpolate``); other dtypes take the nearest frame.
    Returns ``(N, M, out_frames, ...)``; one gather per neighbour, no loop over samples.
    """
    if x.dim() < 3:
        raise ValueError(f"crop_resize: expected (N, M, T, ...), got shape {tuple(x.shape)}")
    n, m, t = x.shape[:3]
    start = start.to(x.device, torch.int64)
    length = length.to(x.device, torch.int64)
    if start.shape != (n,) or length.shape != (n,):
        raise ValueError(f"crop_resize: start/length must have shape ({n},)")
    if bool(((start < 0) | (length < 1) | (start + length > t)).any()):
        raise ValueError(f"crop_resize: crops must satisfy start >= 0, length >= 1, start + length <= T={t}")
    i = torch.arange(out_frames, device=x.device, dtype=torch.float64)
    pos = ((i[None] + 0.5) * (length[:, None].double() / out_frames) - 0.5).clamp_min(0)   # (N, out)
    last = length[:, None] - 1
    tail = (1,) * (x.dim() - 3)
    shape = (n, m, out_frames, *x.shape[3:])

    def take(idx: Tensor) -> Tensor:
        return x.gather(2, (idx + start[:, None]).view(n, 1, out_frames, *tail).expand(shape))

    if not x.is_floating_point():
        return take(torch.minimum(pos.round().to(torch.int64), last))
    lo = torch.minimum(pos.floor().to(torch.int64), last)
    hi = torch.minimum(lo + 1, last)
    w = (pos - lo).to(x.dtype).view(n, 1, out_frames, *tail)
    return torch.lerp(take(lo), take(hi), w)


def skeleton_keys(batch: Mapping[str, object]) -> list[str]:
    """Entries of a batch that carry time on axis 2: tensors of at least 4 dims ``(N, M, T, ...)``."""
    return [k for k, v in batch.items() if isinstance(v, torch.Tensor) and v.dim() >= 4]


def valid_lengths(batch: Mapping[str, object]) -> Tensor:
    """Frames up to the last non-empty one, over every skeleton entry of ``batch`` (trailing
    all-zero frames are padding): LongTensor ``(N,)``, at least 1."""
    keys = skeleton_keys(batch)
    if not keys:
        raise ValueError(f"no skeleton tensors (N, M, T, ...) in a batch with keys {list(batch)}")
    n = batch[keys[0]].shape[0]
    L = torch.zeros(n, dtype=torch.int64, device=batch[keys[0]].device)
    for k in keys:
        v = batch[k]
        if v.shape[0] != n:
            raise ValueError(f"batch entry {k!r} has {v.shape[0]} rows, {keys[0]!r} has {n}")
        present = (v != 0).flatten(3).any(-1).any(1)                      # (N, T)
        last = present.shape[1] - present.flip(-1).to(torch.int64).argmax(-1)   # one past the last present frame
        L = torch.maximum(L, torch.where(present.any(-1), last, torch.zeros_like(last)))
    return L.clamp(1, min(batch[k].shape[2] for k in keys))


def crop_batch(batch: Mapping[str, object], out_frames: int, config: AugmentConfig,
               generator: torch.Generator | None, valid: Tensor | None = None) -> dict:
    """Random crop-resize of every skeleton entry of ``batch`` (``skeleton_keys``) to ``out_frames``.

    ``generator=None`` gives the deterministic evaluation crop: the whole valid clip resized (UmURL's
    downstream ``l_ratio=[1.0]``). With ``config.shared_crop`` every entry of one sample gets the
    same crop (entries must then have the same ``T``); otherwise each entry draws its own. Other
    entries are passed through unchanged. ``valid``: precomputed ``valid_lengths(batch)`` (several
    views of one batch need it once).
    """
    keys = skeleton_keys(batch)
    frames = {k: batch[k].shape[2] for k in keys}
    if config.shared_crop and len(set(frames.values())) > 1:
        raise ValueError(f"crop_batch: a shared crop needs time-aligned entries, got frame counts {frames} "
                         "(resample the sources to the clip length first)")
    valid = valid_lengths(batch) if valid is None else valid
    original = batch.get(config.length_key)
    if original is not None:
        original = torch.as_tensor(original, device=valid.device).reshape(-1)
        if original.shape != valid.shape:
            raise ValueError(f"batch[{config.length_key!r}] has shape {tuple(original.shape)}, expected ({valid.shape[0]},)")
    out = dict(batch)
    crop = None
    for k in keys:
        if generator is None:
            crop = (torch.zeros_like(valid), valid)
        elif crop is None or not config.shared_crop:
            crop = sample_crop(valid, config, generator, original)
        out[k] = crop_resize(batch[k], *crop, out_frames)
    return out


# ---------------------------------------------------------------------------------------------
# spatial
@dataclass
class SpatialParams:
    """One draw of the spatial augmentation for a batch.

    matrix: ``(N, 3, 3)``; a transformed joint is ``x_j @ matrix[n]`` (row vectors).
    joints: ``(N, V)`` bool; joints the matrix applies to (all of them for a shear).
    """

    matrix: Tensor
    joints: Tensor


def sample_spatial(n: int, num_joints: int, config: AugmentConfig, generator: torch.Generator,
                   device=None, channels: int = 3) -> SpatialParams:
    """Per sample: corruption (zero or mix) of ``round(corrupt_fraction * V)`` joints, or a shear."""
    device = device if device is not None else generator.device
    u = _uniform((n, 2), generator, device)
    corrupt, zero = u[:, 0] < config.p_corrupt, u[:, 1] < config.p_zero
    mix = (_uniform((n, channels, channels), generator, device) * 2 - 1) * config.mix_range
    off = (_uniform((n, channels, channels), generator, device) * 2 - 1) * config.shear_range
    eye = torch.eye(channels, device=device)
    shear_t = (eye + off * (1 - eye)).transpose(1, 2)                     # x @ S^T
    corr = torch.where(zero[:, None, None], torch.zeros_like(mix), mix)
    matrix = torch.where(corrupt[:, None, None], corr, shear_t)
    # exactly k joints per sample: rank of a random key below k (argsort of argsort = rank)
    k = round(config.corrupt_fraction * num_joints)
    rank = _uniform((n, num_joints), generator, device).argsort(1).argsort(1)
    joints = torch.where(corrupt[:, None], rank < k, torch.ones_like(rank, dtype=torch.bool))
    if config.rotation_range > 0:  # drawn only then, so the default keeps its random stream
        rotation = random_rotation(n, config.rotation_range, generator, device, channels)
        matrix = torch.where(corrupt[:, None, None], corr, rotation)
    return SpatialParams(matrix, joints)


def random_rotation(n: int, max_angle: float, generator: torch.Generator, device=None, channels: int = 3) -> Tensor:
    """``(N, channels, channels)`` row-vector rotations ``x @ R``: ``Rx(a) Ry(b) Rz(c)`` with angles
    ``U(-max_angle, max_angle)`` rad, on the first three channels (identity on any further ones)."""
    if channels < 3:
        raise ValueError(f"random_rotation: needs >= 3 channels, got {channels}")
    device = device if device is not None else generator.device
    a = (_uniform((n, 3), generator, device) * 2 - 1) * max_angle
    cos, sin = a.cos(), a.sin()

    def rot(i: int, axes: tuple[int, int]) -> Tensor:
        r = torch.eye(3, device=device).repeat(n, 1, 1)
        p, q = axes
        r[:, p, p], r[:, q, q], r[:, p, q], r[:, q, p] = cos[:, i], cos[:, i], -sin[:, i], sin[:, i]
        return r

    out = torch.eye(channels, device=device).repeat(n, 1, 1)
    out[:, :3, :3] = rot(0, (1, 2)) @ rot(1, (2, 0)) @ rot(2, (0, 1))
    return out


def apply_spatial(x: Tensor, params: SpatialParams) -> Tensor:
    """Apply one ``SpatialParams`` draw to ``x`` ``(N, M, T, V, C)`` with ``C <= 3``."""
    n, _, _, v, c = x.shape
    if params.joints.shape != (n, v) or c > params.matrix.shape[-1]:
        raise ValueError(f"apply_spatial: params for (N={params.joints.shape[0]}, V={params.joints.shape[1]}, "
                         f"C<={params.matrix.shape[-1]}) do not fit x of shape {tuple(x.shape)}")
    a = params.matrix[:, :c, :c].to(device=x.device, dtype=x.dtype)
    y = torch.einsum("nmtvc,ncd->nmtvd", x, a)
    return torch.where(params.joints.to(x.device)[:, None, None, :, None], y, x)


def sample_bone_factors(n: int, num_joints: int, config: AugmentConfig, generator: torch.Generator,
                        device=None) -> Tensor:
    """``(N, V)`` bone-length factors ``U(1 - bone_scale, 1 + bone_scale)``, one per joint's bone."""
    device = device if device is not None else generator.device
    return 1.0 + (_uniform((n, num_joints), generator, device) * 2 - 1) * config.bone_scale


def scale_bones(x: Tensor, layout: "str | Layout", factors: Tensor) -> Tensor:
    """Rebuild ``x`` ``(N, M, T, V, C)`` along the layout's tree with bone ``parent -> j`` scaled by
    ``factors[n, j]`` ``(N, V)`` (roots keep their position, so a trajectory stays): other body
    proportions, same motion. Why: subjects differ in proportions, and a representation asked to
    tell clips apart can do it by proportions alone; views with different proportions make that
    useless. Frames where a person is absent stay all-zero."""
    lay = get_layout(layout)
    n, _, _, v, _ = x.shape
    if v != lay.num_joints or factors.shape != (n, v):
        raise ValueError(f"scale_bones: x {tuple(x.shape)} and factors {tuple(factors.shape)} do not fit layout "
                         f"{lay.name!r} ({lay.num_joints} joints)")
    return _rebuild(x, lay, factors.to(device=x.device, dtype=x.dtype)[:, None, None, :, None])


def equal_bones(x: Tensor, layout: "str | Layout", eps: float = 1e-6) -> Tensor:
    """``x`` ``(N, M, T, V, C)`` rebuilt along the layout's tree with every bone set, in every frame,
    to the person's mean bone length in that frame, directions kept (roots keep their position).

    Why: a representation learns what moves most, and in joint positions a head turn moves the face
    points a few centimetres while an arm swing moves the wrist half a metre; with equal bones a
    joint's motion is its bone's rotation, the same size for a face bone as for a forearm, and the
    subjects' proportions are gone. A bone of (near) zero length, or one with an absent end (a joint
    all-zero in every frame of the clip, or a frame without the person), puts its child on the
    parent; absent joints stay all-zero."""
    lay = get_layout(layout)
    if x.shape[3] != lay.num_joints:
        raise ValueError(f"equal_bones: x {tuple(x.shape)} does not fit layout {lay.name!r} ({lay.num_joints} joints)")
    parents = torch.as_tensor(lay.bone_parents(), device=x.device)
    has_parent = torch.as_tensor([p >= 0 for p in lay.parents], device=x.device)
    # a joint is absent where it is zero in every frame of the clip (one at the origin in some frame,
    # such as the centring joint, is present) or its person's frame is empty
    seen = (x != 0).any(-1, keepdim=True).any(2, keepdim=True) & (x != 0).flatten(-2).any(-1)[..., None, None]
    length = bone(x, lay).norm(dim=-1, keepdim=True)                                 # (N, M, T, V, 1)
    bones = has_parent[:, None] & seen & seen[..., parents, :] & (length > eps)     # both ends present
    mean = (length * bones).sum(-2, keepdim=True) / bones.sum(-2, keepdim=True).clamp_min(1)
    factor = torch.where(bones, mean / length.clamp_min(eps), torch.zeros_like(length))
    return _rebuild(x, lay, factor) * seen.to(x.dtype)              # absent joints stay zero


def _rebuild(x: Tensor, lay: Layout, f: Tensor) -> Tensor:
    """Joints rebuilt from their root with bone ``parent -> j`` scaled by ``f[..., j, :]`` (``f``
    broadcasts to ``(N, M, T, V, 1)``): ``out[j] = x[root(j)] + sum over the path root -> j of f * bone``,
    one matrix product over the layout's ``ancestry``. Frames where a person is absent stay all-zero."""
    path = torch.as_tensor(lay.ancestry(), device=x.device)                            # (V, V)
    roots = torch.as_tensor([p < 0 for p in lay.parents], device=x.device)
    root_of = (path & roots).to(torch.uint8).argmax(1)                                 # (V,) each joint's root
    out = x[..., root_of, :] + torch.einsum("jk,...kc->...jc", path.to(x.dtype), bone(x, lay) * f)
    present = (x != 0).flatten(-2).any(-1)[..., None, None].to(x.dtype)             # (N, M, T, 1, 1)
    return out * present


def layout_parts(layout: "str | Layout") -> Tensor:
    """The body parts of a layout as a ``(P, V)`` bool mask, read from its tree: the largest
    subtrees (a joint and all its descendants) of 2 to ``max(2, V // 4)`` joints that no other such
    subtree contains -- on ``unified30`` the face, each arm with its hand, each leg, neck + head --
    ordered by their first joint. ``P = 0`` for a layout with no such subtree."""
    lay = get_layout(layout)
    below = lay.ancestry()                                     # column k: the subtree under k
    subtrees = (frozenset(below[:, k].nonzero()[0].tolist()) for k in range(lay.num_joints))
    largest = max(2, lay.num_joints // 4)
    parts = {t for t in subtrees if 2 <= len(t) <= largest}
    kept = sorted((t for t in parts if not any(t < u for u in parts)), key=min)
    masks = torch.zeros(len(kept), lay.num_joints, dtype=torch.bool)
    for i, part in enumerate(kept):
        masks[i, sorted(part)] = True
    return masks


def sample_part_keep(n: int, parts: Tensor, config: AugmentConfig, generator: torch.Generator,
                     device=None) -> Tensor:
    """``(N, V)`` bool: per sample, with probability ``part_view`` the joints of one random part
    (a row of ``parts`` ``(P, V)``, ``layout_parts``), else every joint. Why: a view that shows only
    the face (or only a hand) must still be told apart from other clips, so the representation has
    to carry what that part alone does, which agreement between whole-body views lets a few large
    joints dominate. (On SynHet's validation split it did not raise the face group: README, "Does
    adding formats help?")"""
    device = device if device is not None else generator.device
    if parts.shape[0] == 0:
        raise ValueError("sample_part_keep: the layout has no parts (subtrees of 2 or more joints)")
    on = _uniform((n,), generator, device) < config.part_view
    which = (_uniform((n,), generator, device) * parts.shape[0]).long().clamp_(max=parts.shape[0] - 1)
    chosen = parts.to(device)[which]
    return torch.where(on[:, None], chosen, torch.ones_like(chosen))


def spatial_augment(x: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """One fresh spatial draw applied to ``x`` ``(N, M, T, V, C)``."""
    return apply_spatial(x, sample_spatial(x.shape[0], x.shape[3], config, generator, x.device))


def augment(x: Tensor, out_frames: int, config: AugmentConfig, generator: torch.Generator,
            original_lengths: Tensor | None = None) -> Tensor:
    """A full UmURL view of one skeleton tensor ``(N, M, T, V, C)`` -> ``(N, M, out_frames, V, C)``."""
    batch = {"x": x} if original_lengths is None else {"x": x, config.length_key: original_lengths}
    y = crop_batch(batch, out_frames, config, generator)["x"]
    return spatial_augment(y, config, generator) if config.spatial else y


# ---------------------------------------------------------------------------------------------
# classic modalities
def motion(x: Tensor) -> Tensor:
    """Frame difference ``x[t+1] - x[t]`` on the time axis (-3), last frame zero (UmURL)."""
    m = torch.zeros_like(x)
    m[..., :-1, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
    return m


def bone(x: Tensor, layout: "str | Layout") -> Tensor:
    """Bone vectors ``x - x[parent]`` (roots give zero) from the layout's tree, ``(..., V, C)``.

    UmURL's NTU bone list is rooted at spine_shoulder; our ``ntu25`` tree is rooted at spine_base,
    so the two spine bones point the other way and a different joint carries the zero root. The
    set of bone vectors is the same up to sign.
    """
    lay = get_layout(layout)
    if x.shape[-2] != lay.num_joints:
        raise ValueError(f"bone: tensor has {x.shape[-2]} joints but layout {lay.name!r} has {lay.num_joints}")
    parents = torch.as_tensor(lay.bone_parents(), device=x.device)
    return x - x[..., parents, :]
