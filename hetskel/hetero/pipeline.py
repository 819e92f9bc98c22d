"""``HeteroProcessor``: raw heterogeneous skeletons -> the paper's modalities J, C, S on one unified skeleton.

    >>> proc = HeteroProcessor({"J": "ntu25", "C": "coco17"}, prompt_mode="prompt", semantic="words")
    >>> mods, aux = proc({"ntu25": x3d, "coco17": x2d})   # x3d (N,M,T,25,3), x2d (N,M,T,17,2)
    >>> mods["J"].shape, mods["C"].shape, mods["S"].shape  # (N,M,T,30,3) each
    >>> aux["rec"]                                         # the lifter's L_rec (both sources present)

What happens to each source (``hetskel.hetero.lifter`` explains the pose frame):

* a 3D source (layout ``dims == 3``, e.g. ``ntu25``, ``kinect20_utd``): ``pose_frame`` -> root-relative,
  torso-scaled pose, plus (``trajectory=True``) its root trajectory in torso units -> ``Unifier``;
* a 2D source (``dims == 2``, e.g. ``coco17``): spine interpolation (``add_spine``, COCO-17 -> COCO-20),
  2D ``pose_frame``, then either the ``Lifter`` (its output is, by ``L_rec``, the 3D source's pose
  frame, so J and C are directly comparable) or, without the lifter (the paper's ablation), the 2D
  pose with zero depth placed by ``image_to_pose``; plus the 2D root trajectory. With the lifter the
  trajectory is placed in the lifted frame by a per-person weak-perspective camera fitted between
  the 2D pose and the lifted pose (least squares over all frames and the joints ``L_rec``
  supervises; no gradient), and its component
  along the viewing ray, which one camera cannot see, is zero. This works whatever the 3D frame is
  (camera space or PYSKL-aligned) with no axis convention to configure;
* ``S``: ``SemanticEncoder`` on the unified skeleton of ``semantic_from`` (J; C when J is absent), or
  with ``semantic_from="observed"`` on each unified joint taken from a source that observes it (3D
  sources first): Kinect's hand tips from J, COCO's face points from C, so S has words for every
  joint some source sees rather than for the prompts that fill J's missing ones.

Once per clip (``per_clip = True``; ``hetskel.model.objective.Pretrainer`` uses it): ``process_clip(batch)``
runs the per-clip work once -- pose frames, the lifter, the camera fit, ``L_rec`` and the motion
words -- on the *uncropped* clip, and ``view(state, start, length, out_frames)`` turns it into the
modalities of one augmented view by temporal crop-resize (``hetskel.model.augment.crop_resize``, the
crop the view would have applied to the raw sources). The spatial augmentation comes after, on the
modalities, as in the per-view path. Per view only cheap, linear work remains: the crop, the
trajectory's re-referencing to the view's first valid frame (exact, the trajectory is linear in the
roots), the ``Unifier`` and the word-value gather. What differs from processing each cropped view
(``forward``), and why it is acceptable:

* the lifter sees the recorded frames, not frames linearly interpolated between them, and the
  lifted poses are interpolated instead (the MLP does not commute with interpolation); its
  BatchNorm statistics are over the clip's frames, and one dropout mask serves every view;
* the torso scale and the weak-perspective camera are fitted on the whole clip instead of the crop
  (one scale per clip for every view: a steadier normaliser);
* the motion words are those of the clip at its own frame rate, taken at the nearest frame of the
  view (the per-view path computes them between interpolated frames, so a 2x slowed crop halves
  every displacement and turns slow motions into "unmove");
* ``L_rec`` is the clip's, over all its valid frames, instead of the mean over the K+1 crops.

With identity crops (the whole clip, as many frames as the encoder) and no lifter dropout, both
paths give the same modalities and losses (tested in ``tests/test_pipeline.py``).

``frame`` names the 3D sources' coordinate frame: ``"pyskl"`` (the default of
``hetskel.data.batches.load_dataset``: spine on +z, shoulders on +x) or ``"camera"`` (Kinect camera
space, ``norm3d={"align": False}``). It sets the default semantic axis words and ``image_to_pose``
(image right -> +x; image down -> -z for ``"pyskl"``, -y for ``"camera"``).

Any number of persons M, any layouts, one or several sources; a source missing from a batch is
skipped (2D-only FineGYM gives C and S; a 3D-only dataset J and S). Padded persons/frames stay zero.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn as nn

from hetskel.config import check_fields, check_keys, from_dict
from hetskel.data.errors import DataError
from hetskel.data.transforms import smooth_time
from hetskel.hetero.camera import camera_pinv, fit_camera, keep_observed_2d
from hetskel.hetero.lifter import (
    PoseFrame,
    add_spine,
    frame_valid,
    joint_present,
    lifter_for,
    pose_frame,
    reconstruction_loss,
    spine_layout,
    trajectory,
)
from hetskel.hetero.prompts import MODES, Unifier
from hetskel.hetero.semantic import (
    SemanticConfig,
    SemanticEncoder,
    motion_words,
    numeric_motion,
)
from hetskel.layouts import get_layout
from hetskel.model.augment import crop_resize, equal_bones

Tensor = torch.Tensor
IMAGE_TO_POSE = {"camera": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)), "pyskl": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))}


def _map(D: Tensor, P: Tensor) -> Tensor:
    """``D (N, M, T, C) @ P (N, M, C, 3)`` elementwise (autocast would run a matmul in bf16)."""
    return (D[..., None] * P[..., None, :, :]).sum(-2)


KEEP_OBSERVED = ("none", "unsupervised", "all")


def _default_sources() -> dict:
    return {"J": "ntu25", "C": "coco17"}


@dataclass(frozen=True)
class ProcessorConfig:
    """How ``HeteroProcessor`` turns sources into modalities (types checked by ``hetskel.config``,
    then the values here; ``from_dict`` reads a JSON dict, refusing unknown keys).

    sources:          ``{modality name: layout}``; the batch holds each source under its layout name
                      (or under the modality name). 3D layouts give J-like modalities, 2D ones C-like.
    prompt_mode:      ``Unifier`` mode: ``"prompt"`` | ``"anchored"`` | ``"zero"``.
    use_lifter:       lift 2D sources (else 2D with zero depth).
    semantic:         ``"words"`` | ``"numeric"`` | None (no S).
    semantic_from:    modality S is computed from (falls back to the first present modality), or
                      ``"observed"``: every joint from a present source that observes it (3D first).
    lifter_width, lifter_layers, lifter_dropout: the ``Lifter`` of each 2D source.
    semantic_out_dim: ``SemanticEncoder`` output channels per joint.
    semantic_config:  ``SemanticConfig`` (or a dict of its fields); None: ``SemanticConfig.for_frame(frame)``.
    frame:            the 3D sources' frame, ``"pyskl"`` | ``"camera"`` (module docstring).
    image_to_pose:    2x3 matrix image (right, down) -> pose frame; None: the one of ``frame``.
    trajectory:       add the root trajectory to J and C (module docstring).
    match_persons:    ``L_rec`` uses the best person assignment per sample (2D detector vs 3D sensor order).
    init_scale:       ``Unifier`` initial prompt scale.
    keep_observed:    which lifted joints are moved to reproject exactly onto their observed 2D
                      (the lifter then gives only their depth; ``keep_observed_2d``): ``"none"`` (the
                      paper: the lifter's output as is), ``"unsupervised"`` (the joints no 3D source
                      has, e.g. COCO's face: ``L_rec`` never constrains them, so nothing else keeps
                      what the 2D shows), ``"all"``.
    smooth_frames:    every source's joints averaged over this many centred frames before anything
                      else (``transforms.smooth_time``; odd, 1 = off): per-frame sensor and detector
                      jitter shrinks, slow small motions stay.
    equal_bones:      the joint-position modalities rebuilt with every bone at the person's mean bone
                      length in each frame (``augment.equal_bones``): a joint's motion is then its
                      bone's rotation, as large for a face bone as for a forearm. False: as measured.
    text_kw:          extra ``text_table`` arguments (``cache_path``, ``source``, ``seed``, ...).
    """

    sources: dict = field(default_factory=_default_sources)
    prompt_mode: str = "prompt"
    use_lifter: bool = True
    semantic: str | None = "words"
    semantic_from: str = "J"
    lifter_width: int = 512
    lifter_layers: int = 4
    lifter_dropout: float = 0.25
    semantic_out_dim: int = 1
    semantic_config: SemanticConfig | None = None
    frame: str = "pyskl"
    image_to_pose: Any = None  # anything torch.tensor reads (nested lists, an array); the shape is checked
    trajectory: bool = True
    match_persons: bool = True
    init_scale: float = 0.1
    keep_observed: str = "none"
    smooth_frames: int = 1
    equal_bones: bool = False
    text_kw: dict | None = None

    def __post_init__(self):
        check_fields(self)
        object.__setattr__(self, "sources", dict(self.sources))
        if not self.sources:
            raise ValueError("HeteroProcessor needs at least one source")
        if "S" in self.sources:
            raise ValueError("'S' is the semantic modality's name; call the sources otherwise")
        if self.prompt_mode not in MODES:
            raise ValueError(f"prompt_mode must be one of {list(MODES)}, got {self.prompt_mode!r}")
        if self.frame not in IMAGE_TO_POSE:
            raise ValueError(f"frame must be one of {sorted(IMAGE_TO_POSE)}, got {self.frame!r}")
        if self.semantic not in ("words", "numeric", None):
            raise ValueError(f"semantic must be 'words', 'numeric' or None, got {self.semantic!r}")
        for name in ("lifter_width", "lifter_layers", "semantic_out_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ProcessorConfig field {name!r} must be >= 1, got {getattr(self, name)}")
        if self.keep_observed not in KEEP_OBSERVED:
            raise ValueError(f"keep_observed must be one of {list(KEEP_OBSERVED)}, got {self.keep_observed!r}")
        if self.smooth_frames < 1 or self.smooth_frames % 2 == 0:
            raise ValueError(f"ProcessorConfig field 'smooth_frames' must be an odd integer >= 1, got {self.smooth_frames}")
        if not 0.0 <= self.lifter_dropout < 1.0:
            raise ValueError(f"ProcessorConfig field 'lifter_dropout' must be in [0, 1), got {self.lifter_dropout}")

    @classmethod
    def from_dict(cls, d: Mapping) -> ProcessorConfig:
        return from_dict(cls, d)


class HeteroProcessor(nn.Module):
    """The paper's heterogeneous processing as one module: ``forward(batch) -> (modalities, aux_losses)``.

    Built from a ``ProcessorConfig`` (``config``, a config or a dict of its fields) and/or its fields
    as keywords, which override ``config``'s: ``HeteroProcessor({"J": "ntu25"}, semantic=None)`` is
    ``HeteroProcessor(config=ProcessorConfig(sources={"J": "ntu25"}, semantic=None))``. The config
    is kept as ``self.config``.

    text_table: table for the words (None: ``semantic.text_table``, whose origin is ``self.text_source``);
                data, not a setting, so not part of the config.
    """

    def __init__(self, sources: Mapping[str, str] | None = None, *, config: ProcessorConfig | Mapping | None = None,
                 text_table=None, **options):
        super().__init__()
        if sources is not None:
            options["sources"] = dict(sources)
        if isinstance(config, Mapping):
            config = ProcessorConfig.from_dict(config)
        check_keys(ProcessorConfig, options, "HeteroProcessor option")
        cfg = dataclasses.replace(config, **options) if config is not None else ProcessorConfig(**options)
        self.config = cfg
        sources, frame, semantic = cfg.sources, cfg.frame, cfg.semantic
        self.layouts = {k: get_layout(v) for k, v in sources.items()}
        if len({l.name for l in self.layouts.values()}) != len(self.layouts):
            raise ValueError(f"two modalities share a layout: {sources}")
        self.is_2d = {k: l.dims == 2 for k, l in self.layouts.items()}
        self.unified_layouts = {k: spine_layout(l) if self.is_2d[k] else l for k, l in self.layouts.items()}
        self.unifier = Unifier([self.unified_layouts[k] for k in sources], mode=cfg.prompt_mode,
                               init_scale=cfg.init_scale)
        self.use_lifter, self.use_trajectory, self.match_persons = cfg.use_lifter, cfg.trajectory, cfg.match_persons
        self.lifters = nn.ModuleDict()
        if cfg.use_lifter:
            for k in sources:
                if self.is_2d[k]:
                    self.lifters[k], _ = lifter_for(self.layouts[k], width=cfg.lifter_width,
                                                    num_layers=cfg.lifter_layers, dropout=cfg.lifter_dropout)
        # per 2D source, the joints a 3D source also has (L_rec supervises those): the camera fit uses them
        three = [l for k, l in self.layouts.items() if not self.is_2d[k]]
        self._fit_joints = {k: [i for i, j in enumerate(self.unified_layouts[k].joints)
                                if not three or any(l.has(j) for l in three)]
                            for k in self.layouts if self.is_2d[k]}
        # per 2D source, the lifted joints kept on their observed 2D (ProcessorConfig.keep_observed)
        self._observed_joints = {
            k: [i for i in range(self.unified_layouts[k].num_joints)
                if cfg.keep_observed == "all" or (cfg.keep_observed == "unsupervised" and i not in fit)]
            for k, fit in self._fit_joints.items()}
        self.keep_observed = cfg.keep_observed
        matrix = IMAGE_TO_POSE[frame] if cfg.image_to_pose is None else cfg.image_to_pose
        self.register_buffer("image_to_pose", torch.tensor(matrix, dtype=torch.float32), persistent=False)
        if tuple(self.image_to_pose.shape) != (2, 3):
            raise ValueError(f"image_to_pose must be a 2x3 matrix, got shape {tuple(self.image_to_pose.shape)}")
        self.semantic_from = cfg.semantic_from
        self.semantic = None
        self.text_source = "none"
        if semantic is not None:
            words = cfg.semantic_config or SemanticConfig.for_frame(frame)
            self.semantic = SemanticEncoder(text_table, mode=semantic, out_dim=cfg.semantic_out_dim, config=words,
                                            **dict(cfg.text_kw or {}))
            self.text_source = self.semantic.table_source
        self.frame = frame

    @property
    def layout(self):
        """The unified ``Layout`` every modality is expressed in."""
        return self.unifier.layout

    @property
    def positional(self) -> tuple[str, ...]:
        """The modalities that are joint positions on ``layout`` (``AugmentConfig.bone_scale`` and
        ``part_view`` apply): every source's; S (motion words) is not."""
        return tuple(self.layouts)

    def modality_channels(self) -> dict[str, int]:
        out = {k: self.unifier.channels for k in self.layouts}
        if self.semantic is not None:
            out["S"] = self.semantic.channels(self.unifier.channels)
        return out

    # -- per source ------------------------------------------------------------------------
    def _get(self, batch: Mapping, name: str):
        lay = self.layouts[name]
        x = batch.get(lay.name, batch.get(name))
        if x is None:
            return None
        C = 2 if self.is_2d[name] else 3
        if not isinstance(x, Tensor) or x.dim() != 5 or tuple(x.shape[-2:]) != (lay.num_joints, C):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"expected (N, M, T, {lay.num_joints}, {C}) for layout {lay.name!r}, got {got}",
                            field=lay.name)
        x = x.float() if not x.is_floating_point() else x
        return smooth_time(x, self.config.smooth_frames)

    def _source_3d(self, name: str, x: Tensor) -> tuple[Tensor, PoseFrame, tuple | None, Tensor]:
        """``(J-modality skeleton, pose frame, trajectory (D, P) or None, joint mask (N,M,T,V))``: the
        trajectory is ``D @ P``, ``D (N,M,T,C)`` the root displacement in input units (linear in the
        frames, so a view can re-reference it) and ``P (N,M,C,3)`` the per-person map to the pose frame."""
        frame = pose_frame(x, self.layouts[name])
        present = joint_present(x)
        if not self.use_trajectory:
            return frame.pose, frame, None, present
        D = trajectory(frame.root, torch.ones_like(frame.scale), present.any(-1))
        P = torch.eye(3, dtype=x.dtype, device=x.device) / frame.scale[..., None, None]
        return (frame.pose + _map(D, P)[..., None, :]) * present[..., None], frame, (D, P), present

    def _source_2d(self, name: str, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor]:
        """``(C-modality skeleton (N,M,T,V,3) in the spine layout, lifted pose or None, its trajectory
        (N,M,T,3) or None, joint mask (N,M,T,V))``."""
        x, lay = add_spine(x, self.layouts[name])
        pose, root, scale = pose_frame(x, lay)
        valid = frame_valid(pose)
        W = Pinv = None
        if name in self.lifters:
            lifted = self.lifters[name](pose)
            out = lifted
            observed = self._observed_joints[name]
            if self.use_trajectory or observed:
                j = self._fit_joints[name]  # joints L_rec supervises: the unsupervised ones would spoil the fit
                W = fit_camera(pose[..., j, :], lifted.detach()[..., j, :])
                Pinv = camera_pinv(W)
            if observed:
                seen = joint_present(x)[..., observed, None]
                kept = keep_observed_2d(out[..., observed, :], pose[..., observed, :], W, Pinv)
                out = out.index_copy(-2, torch.tensor(observed, device=out.device),
                                     torch.where(seen, kept, out[..., observed, :]))
        else:
            lifted = None
            out = pose @ self.image_to_pose.to(pose.dtype)                   # zero depth, absent joints stay 0
        mask = valid[..., None].expand(*valid.shape, x.shape[-2]) if lifted is not None else joint_present(x)
        traj = None
        if self.use_trajectory:
            D = trajectory(root, torch.ones_like(scale), valid)              # (N, M, T, 2) input units
            if lifted is not None:
                P = Pinv
            else:
                P = self.image_to_pose.to(D.dtype).expand(*scale.shape, 2, 3)
            P = P / scale[..., None, None]
            traj = (D, P)
            out = (out + _map(D, P)[..., None, :]) * mask[..., None]
        return out, lifted, traj, mask

    # -- forward ---------------------------------------------------------------------------
    def _sources(self, batch: Mapping[str, Tensor]) -> tuple[dict, dict[str, Tensor]]:
        """Per present source ``(u, trajectory, joint mask)`` in its own (spine) layout, and the aux losses."""
        out, frames3d, lifted = {}, {}, {}
        for name in self.layouts:
            x = self._get(batch, name)
            if x is None:
                continue
            if self.is_2d[name]:
                u, lifted_pose, traj, mask = self._source_2d(name, x)
                if lifted_pose is not None:
                    lifted[name] = lifted_pose
            else:
                u, frames3d[name], traj, mask = self._source_3d(name, x)
            out[name] = (u, traj, mask)
        if not out:
            raise DataError(f"the batch holds none of the sources {[l.name for l in self.layouts.values()]} "
                            f"(keys: {list(batch)})")
        aux = {}
        if lifted and frames3d:
            ref = next(iter(frames3d))
            losses = [reconstruction_loss(p, self.unified_layouts[k], frames3d[ref].pose, self.layouts[ref],
                                          match_persons=self.match_persons) for k, p in lifted.items()]
            aux["rec"] = torch.stack(losses).mean()
        return out, aux

    def _positions(self, unified: Tensor) -> Tensor:
        """A joint-position modality as the encoder sees it (``ProcessorConfig.equal_bones``)."""
        return equal_bones(unified, self.layout) if self.config.equal_bones else unified

    def _semantic_source(self, present) -> str:
        return self.semantic_from if self.semantic_from in present else next(iter(present))

    def _semantic_skeleton(self, unified: Mapping[str, Tensor]) -> Tensor:
        """The unified skeleton S reads ``(N, M, T, V_u, 3)`` from ``{source: unified skeleton}``:
        ``semantic_from``'s, or for ``"observed"`` each joint from the first source (3D ones first)
        that observes it; joints no source observes come from the first source (its prompts)."""
        if self.semantic_from != "observed":
            return unified[self._semantic_source(unified)]
        names = sorted(unified, key=lambda n: self.is_2d[n])  # stable: 3D sources first, then 2D
        out = unified[names[0]]
        taken = self.unifier.real_mask(self.unified_layouts[names[0]])
        for name in names[1:]:
            take = self.unifier.real_mask(self.unified_layouts[name]) & ~taken
            out = torch.where(take[:, None], unified[name], out)
            taken = taken | take
        return out

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``batch`` ``{layout name: (N, M, T, V, C)}`` (other keys ignored) -> ``({modality: (N, M, T, V_u, C_k)},
        {"rec": L_rec})``; ``rec`` only when a lifted 2D source and a 3D source are both present."""
        sources, aux = self._sources(batch)
        unified = {name: self.unifier(u, self.unified_layouts[name])[0] for name, (u, _, _) in sources.items()}
        mods = {name: self._positions(u) for name, u in unified.items()}
        if self.semantic is not None:  # motion words of the skeleton as unified (not of equal bones)
            mods["S"] = self.semantic(self._semantic_skeleton(unified))
        return mods, aux

    # -- once per clip ---------------------------------------------------------------------
    per_clip = True  # Pretrainer: process_clip once per step, view per augmented view (module docstring)

    def process_clip(self, batch: Mapping[str, Tensor]) -> tuple[dict, dict[str, Tensor]]:
        """The per-clip work on the uncropped ``batch`` -> ``(state for view, aux losses)``."""
        sources, aux = self._sources(batch)
        state = {"sources": sources}
        if self.semantic is not None:
            names = list(sources) if self.semantic_from == "observed" else [self._semantic_source(sources)]
            u = self._semantic_skeleton({k: self.unifier(sources[k][0], self.unified_layouts[k])[0] for k in names})
            if self.semantic.mode == "words":
                codes = motion_words(u, config=self.semantic.config)
            else:
                codes = numeric_motion(u, config=self.semantic.config).to(torch.int64) + 1
            state["codes"] = codes                                             # (N, M, T, V, 3) int64
            state["frames"] = (u != 0).any(-1).any(-1).to(u.dtype)           # (N, M, T) skeleton present
        return state, aux

    def view(self, state: dict, start: Tensor, length: Tensor, out_frames: int,
             needed=None) -> dict[str, Tensor]:
        """One view from ``process_clip``'s state: frames ``[start, start + length)`` of each clip
        resized to ``out_frames`` (``crop_resize``), trajectories re-referenced to the view's first
        valid frame -> ``{modality: (N, M, out_frames, V_u, C_k)}`` for ``needed`` (default: all)."""
        sources = state["sources"]
        names = [k for k in sources if needed is None or k in needed]
        mods = {}
        for name in names:
            u, traj, mask = sources[name]
            u = crop_resize(u, start, length, out_frames)
            if traj is not None:
                D, P = traj
                m = crop_resize(mask.to(u.dtype), start, length, out_frames) > 0        # (N, M, T', V)
                D = crop_resize(D, start, length, out_frames)                           # (N, M, T', C)
                first = m.any(-1).flatten(-2).to(torch.uint8).argmax(-1)                # as ``trajectory``
                ref = D.flatten(-3, -2).gather(-2, first[:, None, None].expand(-1, 1, D.shape[-1]))
                u = (u - _map(ref[:, None], P)[..., None, :]) * m[..., None]              # (N, M, 1, 3) offset
            mods[name] = self._positions(self.unifier(u, self.unified_layouts[name])[0])
        if "codes" in state and (needed is None or "S" in needed):
            codes = crop_resize(state["codes"], start, length, out_frames)             # nearest frame
            valid = crop_resize(state["frames"], start, length, out_frames) > 0
            dtype = state["frames"].dtype
            if self.semantic.mode == "words":
                values = self.semantic.word_values().to(dtype)[codes].flatten(-2)
            else:
                values = (codes - 1).to(dtype)
            mods["S"] = values * valid[..., None, None]
        return mods

    def extra_repr(self) -> str:
        return (f"sources={ {k: l.name for k, l in self.layouts.items()} }, frame={self.frame!r}, "
                f"trajectory={self.use_trajectory}, text_source={self.text_source!r}")
