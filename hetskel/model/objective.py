"""The pretraining objective: processor + augmentation + encoder + UmURL losses, kept apart from the
encoder the way vit-pytorch's ``MAE(encoder=...)`` wraps a ViT.

    >>> enc = UnifiedEncoder("small", {"J": 3, "C": 3, "S": 3}, num_joints=30)
    >>> obj = Pretrainer(enc, modalities=("J", "C", "S"), processor=HeteroProcessor(...))
    >>> out = obj(batch)            # {"loss", "intra", "inter", "vc", "rec", ...}
    >>> out["loss"].backward()
    >>> feats = obj.features(batch) # (N, 2d), eval mode, no augmentation

A *processor* is an ``nn.Module`` with ``forward(batch) -> (modalities, aux_losses)``: it turns a raw
batch (e.g. ``{"ntu25": (N,M,T,25,3), "coco17": (N,M,T,17,2), "label": (N,)}``) into modality tensors
``{k: (N, M, T, V, C_k)}`` in one layout, plus auxiliary losses such as the lifter's ``L_rec``.
``hetskel.hetero.pipeline.HeteroProcessor`` gives J, C, S; ``ClassicModalities`` gives UmURL's
J, M, B from one 3D source. ``processor=None`` means the batch already holds the modalities.

Views, as in UmURL (``feeder_pretraining`` draws four independent views of each clip): with K
modalities, K+1 augmented views of the raw batch are drawn; modality k's single stream sees view k
and the fused stream sees view K+1, all K modalities of it. Where the augmentation runs:

* the **temporal crop** is applied to the raw batch, before the processor, one crop shared by every
  skeleton source of a sample (``AugmentConfig.shared_crop``): the 3D and 2D skeletons of a clip
  stay frame-aligned, so the lifter's ``L_rec`` compares the same instants;
* the **spatial augmentation** (corruption or shear) is applied by default to the processor's
  modality tensors (``spatial_stage="modalities"``), one draw per view shared by all modalities
  of that view -- as in UmURL, where J, B and M of a view derive from one augmented skeleton. Doing
  it before the processor would give the 2D and 3D sources unrelated transforms and corrupt
  ``L_rec``. ``spatial_stage="raw"`` augments the raw sources instead (each its own draw), which is
  UmURL exactly for ``ClassicModalities`` (motion and bones of a corrupted skeleton).

Processing once per clip (``process="auto"``, the default, with a processor that has ``per_clip``
set, e.g. ``HeteroProcessor``): the processor runs once per step on the uncropped batch
(``processor.process_clip(batch) -> (state, aux)``), and each view crops the processed clip
(``processor.view(state, start, length, T, needed)``) with the crop it would have applied to the raw
sources (same generator draws, same order). The lifter and the motion words then cost one pass per
clip instead of K+1; the temporal crop is linear interpolation, so this is exact for everything
linear in the frames and differs where the processor is not (the lifter's MLP, the clip-level torso
scale and camera fit, the words' frame rate): ``hetskel.hetero.pipeline`` lists the differences.
With the spatial augmentation on the modalities (the default) nothing random happens before the
processor except the crop, so processing once is the same model up to those listed points; with
``spatial_stage="raw"`` (a random transform of the 2D input before the lifter, which does not
commute with it) or ``shared_crop=False``, ``"auto"`` processes each view (``process="view"``).

Total loss: ``lambda * (intra + inter) + vc + sum_a w_a * aux_a`` (the paper's
``L = lambda (L_intra + L_inter) + L_reg + L_rec``; aux losses are averaged over the K+1 processor
calls, ``aux_weights`` default 1; once per clip there is one call). With one modality, ``inter`` is 0 and ``intra`` is a two-view
invariance between the single and the fused stream (see ``losses``), UmURL's formula at K = 1.

Multi-GPU: wrap in DDP as usual; the loss all-gathers the projected features itself. UmURL also
converts the projectors' BatchNorm to ``nn.SyncBatchNorm`` (the trainer's job). The augmentation
generator is seeded with ``seed + 7919 * rank`` and saved in ``state_dict`` (extra state).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn

from hetskel.data.errors import DataError
from hetskel.layouts import get_layout
from hetskel.model.augment import (
    AugmentConfig,
    apply_spatial,
    bone,
    crop_batch,
    layout_parts,
    motion,
    sample_bone_factors,
    sample_crop,
    sample_part_keep,
    sample_spatial,
    scale_bones,
    skeleton_keys,
    spatial_augment,
    valid_lengths,
)
from hetskel.model.encoder import UnifiedEncoder, _projector
from hetskel.model.losses import intra_view_loss, reconstruction_loss, umurl_loss
from hetskel.train import dist

Tensor = torch.Tensor

#: ``Pretrainer(objective=...)``: ``"umurl"`` (the paper's terms only) or ``"umurl+intra_view"`` (plus
#: ``intra_view_weight * losses.intra_view_loss``: a second augmented view of every modality, its
#: single stream made to agree with the first through a per-modality head, VICReg-style)
OBJECTIVES = ("umurl", "umurl+intra_view")


class ClassicModalities(nn.Module):
    """UmURL's modalities from one 3D source: ``J`` joints, ``M`` motion, ``B`` bones.

    layout: the source's layout (e.g. ``"ntu25"``); source: batch key (default: the layout name).
    """

    def __init__(self, layout="ntu25", source: str | None = None):
        super().__init__()
        self.layout = get_layout(layout)
        self.source = source or self.layout.name
        self.positional = ("J",)  # joint positions (``bone_scale``, ``part_view`` apply); M and B are derived

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        x = batch.get(self.source)
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[3] != self.layout.num_joints:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"expected a (N, M, T, {self.layout.num_joints}, C) tensor for layout "
                            f"{self.layout.name!r}, got {got} (batch keys: {list(batch)})", field=self.source)
        return {"J": x, "M": motion(x), "B": bone(x, self.layout)}, {}


class Pretrainer(nn.Module):
    """UmURL-style self-supervised objective around a ``UnifiedEncoder``.

    encoder:     the ``UnifiedEncoder`` (must know every modality used).
    modalities:  the subset used, 1..K names, e.g. ``("J", "C", "S")`` or ``("J",)``.
    processor:   raw batch -> (modalities, aux losses), or None when the batch holds the modalities.
    lambda_:     weight of ``intra + inter`` (UmURL: 5).
    augment:     ``AugmentConfig`` (default: UmURL's); ``spatial_stage``: ``"modalities"`` or ``"raw"``
                 (module doc).
    aux_weights: ``{aux name: weight}`` for the processor's losses (missing names weigh 1).
    seed:        seeds the augmentation generator (offset by the DDP rank so ranks differ).
    gather:      all-gather projected features across DDP ranks for the loss (UmURL).
    objective:   ``OBJECTIVES``: ``"umurl"`` (default) or ``"umurl+intra_view"`` (within-modality
                 term, weight ``intra_view_weight``, logged as ``intra_view``; K more views per step,
                 each processed on its own).
    modality_dropout: probability that each modality is left out of the fused stream in a training
                 step (one draw per modality and batch, at least one kept); 0 (default): never.
    process:     ``"auto"`` | ``"clip"`` | ``"view"``: process once per clip or once per view (module doc).
    reconstruction_weight: > 0 adds ``reconstruction_weight * rec_traj``: a decoder per modality
                 (``Linear(2d, 2d) -> GELU -> Linear(2d, M*T*V*C_k)``) reconstructs, from that
                 modality's single-stream representation, its view's joint trajectories before the
                 spatial augmentation, each joint standardised by its own spread
                 (``losses.reconstruction_loss``): the cross-modal terms reward what modalities
                 share, this term rewards keeping each joint's own motion, however small. 0: off.
    """

    def __init__(self, encoder: UnifiedEncoder, modalities: Sequence[str] = ("J", "C", "S"),
                 processor: nn.Module | None = None, lambda_: float = 5.0,
                 augment: AugmentConfig | None = None, spatial_stage: str = "modalities",
                 aux_weights: Mapping[str, float] | None = None, seed: int = 0, gather: bool = True,
                 objective: str = "umurl", intra_view_weight: float = 1.0, modality_dropout: float = 0.0,
                 process: str = "auto", reconstruction_weight: float = 0.0):
        super().__init__()
        modalities = tuple(modalities)
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be 1..K distinct names, got {modalities}")
        unknown = [k for k in modalities if k not in encoder.modality_channels]
        if unknown:
            raise ValueError(f"modalities {unknown} are not in the encoder; it has {list(encoder.modality_channels)}")
        if spatial_stage not in ("modalities", "raw"):
            raise ValueError(f"spatial_stage must be 'modalities' or 'raw', got {spatial_stage!r}")
        if process not in ("auto", "clip", "view"):
            raise ValueError(f"process must be 'auto', 'clip' or 'view', got {process!r}")
        self.encoder = encoder
        self.processor = processor
        self.modalities = modalities
        self.lambda_ = float(lambda_)
        self.augment = augment if augment is not None else AugmentConfig()
        self.spatial_stage = spatial_stage
        self.aux_weights = dict(aux_weights or {})
        self.seed = int(seed)
        self.gather = gather
        self._generator: torch.Generator | None = None
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
        if not 0.0 <= float(modality_dropout) < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout!r}")
        self.objective, self.intra_view_weight = objective, float(intra_view_weight)
        self.modality_dropout = float(modality_dropout)
        if objective == "umurl+intra_view":  # created only then: "umurl" keeps its exact modules
            self.view_projectors = nn.ModuleDict({k: _projector(encoder.config.out_dim, encoder.config.proj_dims)
                                                  for k in modalities})
        if not float(reconstruction_weight) >= 0.0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight!r}")
        self.reconstruction_weight = float(reconstruction_weight)
        if self.reconstruction_weight > 0:  # created only then: without it the modules stay as they were
            cfg, V = encoder.config, encoder.num_joints
            self.decoders = nn.ModuleDict({k: nn.Sequential(
                nn.Linear(cfg.out_dim, cfg.out_dim), nn.GELU(),
                nn.Linear(cfg.out_dim, cfg.max_persons * cfg.num_frames * V * encoder.modality_channels[k]))
                for k in modalities})
        for option in ("bone_scale", "part_view"):
            if getattr(self.augment, option) > 0 and not (getattr(processor, "positional", None)
                                                          and hasattr(processor, "layout") and self.augment.spatial
                                                          and spatial_stage == "modalities"):
                raise ValueError(f"AugmentConfig.{option} acts on the modalities (spatial on, "
                                 "spatial_stage='modalities') and needs a processor that names its joint-position "
                                 "modalities (`positional`) and their `layout`, e.g. HeteroProcessor or "
                                 "ClassicModalities")
        # (P, V) masks of the layout's body parts, built once (``AugmentConfig.part_view``)
        self.part_masks = layout_parts(processor.layout) if self.augment.part_view > 0 else None
        if self.part_masks is not None and self.part_masks.shape[0] == 0:
            raise ValueError(f"AugmentConfig.part_view: layout {get_layout(processor.layout).name!r} has no parts "
                             "(subtrees of 2 or more joints)")
        self.process_mode = process
        if process == "clip" and not self.per_clip:
            raise ValueError("process='clip' needs a processor with per_clip (process_clip/view), shared_crop "
                             "and spatial_stage='modalities'")

    @property
    def per_clip(self) -> bool:
        """Whether a step processes each clip once (``process_clip``) rather than each view."""
        ok = (self.processor is not None and getattr(self.processor, "per_clip", False)
              and self.augment.shared_crop and self.spatial_stage == "modalities")
        return ok and self.process_mode != "view"

    # -- helpers ---------------------------------------------------------------------------
    def generator(self, device) -> torch.Generator:
        """The augmentation generator on ``device`` (created, seeded with ``seed + rank``, on first use)."""
        device = torch.device(device)
        g = self._generator
        if g is None or g.device.type != device.type or (device.index is not None and g.device.index != device.index):
            g = torch.Generator(device=device)
            g.manual_seed(self.seed + 7919 * dist.rank())
            self._generator = g
        return g

    def get_extra_state(self) -> dict:
        """The augmentation generator travels in ``state_dict`` so a resumed run draws the same views."""
        g = self._generator
        return {"seed": self.seed, "device": "" if g is None else str(g.device),
                "rng": None if g is None else g.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.seed = int(state.get("seed", self.seed))
        self._generator = None
        if state.get("rng") is not None:
            device = torch.device(state["device"])
            if device.type == "cuda" and not torch.cuda.is_available():
                return  # a GPU checkpoint on a CPU machine: start a fresh stream from the seed
            g = torch.Generator(device=device)
            g.set_state(state["rng"])
            self._generator = g

    def process(self, batch: Mapping[str, object], needed: Sequence[str] | None = None
                ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Raw batch -> ``({k: (N, M, T, V, C_k)} for k in needed (default: modalities), aux losses)``."""
        needed = self.modalities if needed is None else tuple(needed)
        if self.processor is None:
            mods, aux = dict(batch), {}
        else:
            mods, aux = self.processor(batch)
        missing = [k for k in needed if not isinstance(mods.get(k), torch.Tensor)]
        if missing:
            where = "the processor's output" if self.processor is not None else "the batch"
            raise DataError(f"modalities {missing} are missing from {where} (it has {list(mods)})",
                            field=missing[0])
        return {k: mods[k] for k in needed}, dict(aux)

    def _raw(self, batch: Mapping[str, object]) -> dict:
        """Without a processor only the modality entries (and the length entry) are needed."""
        if self.processor is not None:
            return dict(batch)
        keep = (*self.modalities, self.augment.length_key)
        return {k: v for k, v in batch.items() if k in keep}

    def _view(self, batch: dict, g: torch.Generator, needed: Sequence[str], valid: Tensor) -> tuple[dict, dict, dict]:
        """One augmented view: crop the raw batch, (raw spatial), process, (modality spatial) ->
        ``(modalities, aux losses, modalities before the modality-stage spatial augmentation)``."""
        T = self.encoder.config.num_frames
        if self.processor is None:  # only the modalities this view feeds need cropping
            batch = {k: v for k, v in batch.items() if k not in self.modalities or k in needed}
        raw = crop_batch(batch, T, self.augment, g, valid=valid)
        if self.augment.spatial and self.spatial_stage == "raw":
            for k in skeleton_keys(raw):
                if raw[k].dim() == 5 and raw[k].is_floating_point():
                    raw[k] = spatial_augment(raw[k], self.augment, g)
        mods, aux = self.process(raw, needed)
        return self._spatial(mods, g, needed), aux, mods

    def _spatial(self, mods: dict, g: torch.Generator, needed: Sequence[str]) -> dict:
        if not (self.augment.spatial and self.spatial_stage == "modalities"):
            return mods
        ref = mods[needed[0]]
        params = sample_spatial(ref.shape[0], ref.shape[3], self.augment, g, ref.device,
                                channels=max(3, *(m.shape[-1] for m in mods.values())))
        if self.augment.bone_scale > 0:  # drawn only then, so the other options keep their random streams
            factors = sample_bone_factors(ref.shape[0], ref.shape[3], self.augment, g, ref.device)
            mods = {k: scale_bones(m, self.processor.layout, factors) if k in self.processor.positional else m
                    for k, m in mods.items()}
        if self.augment.part_view > 0:  # drawn only then, as above
            keep = sample_part_keep(ref.shape[0], self.part_masks, self.augment, g, ref.device)
            mods = {k: m * keep[:, None, None, :, None].to(m.dtype) if k in self.processor.positional else m
                    for k, m in mods.items()}
        return {k: apply_spatial(m, params) for k, m in mods.items()}

    def _clip_views(self, batch: dict, g: torch.Generator, valid: Tensor) -> tuple[list[dict], list[dict], list[dict]]:
        """The K+1 views from one ``process_clip`` call: the crops ``crop_batch`` would draw (same
        generator order: crop, then spatial, per view), applied to the processed clip -> ``(views,
        aux losses, views before the spatial augmentation)``."""
        T = self.encoder.config.num_frames
        state, aux = self.processor.process_clip(batch)
        original = batch.get(self.augment.length_key)
        if original is not None:
            original = torch.as_tensor(original, device=valid.device).reshape(-1)
            if original.shape != valid.shape:
                raise ValueError(f"batch[{self.augment.length_key!r}] has shape {tuple(original.shape)}, "
                                 f"expected ({valid.shape[0]},)")
        views, plain = [], []
        for needed in [(k,) for k in self.modalities] + [self.modalities]:
            start, length = sample_crop(valid, self.augment, g, original)
            mods = self.processor.view(state, start, length, T, needed)
            missing = [k for k in needed if not isinstance(mods.get(k), torch.Tensor)]
            if missing:
                raise DataError(f"modalities {missing} are missing from the processor's output (it has {list(mods)})",
                                field=missing[0])
            plain.append({k: mods[k] for k in needed})
            views.append(self._spatial(plain[-1], g, needed))
        return views, [dict(aux)], plain

    # -- training --------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, object], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One UmURL step's losses: ``{"loss", "intra", "inter", "vc", <aux names>}`` (scalars;
        only ``loss`` carries gradient)."""
        batch = self._raw(batch)
        keys = skeleton_keys(batch)
        if not keys:
            raise DataError(f"the batch has no skeleton tensors (N, M, T, ...); keys: {list(batch)}")
        n = batch[keys[0]].shape[0]
        if n < 2:
            raise DataError(f"pretraining needs at least 2 samples per batch (batch statistics), got {n}")
        g = generator if generator is not None else self.generator(batch[keys[0]].device)
        K, enc = len(self.modalities), self.encoder
        valid = valid_lengths(batch)

        # K single-stream views (modality k only) and one fused view (all modalities)
        if self.per_clip:
            views, auxes, targets = self._clip_views(batch, g, valid)
        else:
            views, auxes, targets = [], [], []
            for needed in [(k,) for k in self.modalities] + [self.modalities]:
                mods, aux, plain = self._view(batch, g, needed, valid)
                views.append(mods)
                auxes.append(aux)
                targets.append(plain)
        views, fused_view = views[:K], views[K]

        singles = [enc.embed_modality(k, v[k]) for k, v in zip(self.modalities, views)]
        fused = self._fused_modalities(g)
        ft, fs = enc.fuse([enc.embed_modality(k, fused_view[k]) for k in fused], fused)
        # one transformer call for all K+1 streams (no batch statistics inside, so identical)
        y = enc.encode_tokens(torch.cat([e[0] for e in singles] + [ft]),
                              torch.cat([e[1] for e in singles] + [fs])).chunk(K + 1)
        z_single = {k: enc.project(k, y[i]) for i, k in enumerate(self.modalities)}
        z_fused = {k: enc.project(k, y[K]) for k in self.modalities}
        out = umurl_loss(z_single, z_fused, self.lambda_, gather=self.gather)
        if self.objective == "umurl+intra_view":
            out["intra_view"] = self._intra_view(batch, g, valid, y[:K])
            out["loss"] = out["loss"] + self.intra_view_weight * out["intra_view"]
        if self.reconstruction_weight > 0:
            out["rec_traj"] = torch.stack([
                reconstruction_loss(self.decoders[k](y[i]).view_as(targets[i][k]), targets[i][k])
                for i, k in enumerate(self.modalities)]).mean()
            out["loss"] = out["loss"] + self.reconstruction_weight * out["rec_traj"]

        total = out["loss"]
        for name in sorted({a for aux in auxes for a in aux}):
            vals = [aux[name] for aux in auxes if name in aux]
            value = torch.stack([torch.as_tensor(v, device=total.device).float() for v in vals]).mean()
            total = total + self.aux_weights.get(name, 1.0) * value
            out[name] = value
        logs = {k: v.detach() for k, v in out.items() if k != "loss"}
        return {"loss": total, **logs}

    def _fused_modalities(self, g: torch.Generator) -> tuple[str, ...]:
        """The modalities fused in this step: all, or (``modality_dropout`` > 0, training) each
        dropped with that probability, at least one kept. No random draw when the option is off."""
        if self.modality_dropout <= 0 or not self.training or len(self.modalities) < 2:
            return self.modalities
        keep = torch.rand(len(self.modalities), generator=g, device=g.device) >= self.modality_dropout
        if not bool(keep.any()):
            keep[torch.randint(len(self.modalities), (1,), generator=g, device=g.device)] = True
        return tuple(k for k, on in zip(self.modalities, keep.tolist()) if on)

    def _intra_view(self, batch: dict, g: torch.Generator, valid: Tensor, y_first: Sequence[Tensor]) -> Tensor:
        """``losses.intra_view_loss`` between each modality's single stream on its view (``y_first``,
        in ``modalities`` order) and on a second, independently augmented view of the same clip."""
        enc = self.encoder
        second = [enc.embed_modality(k, self._view(batch, g, (k,), valid)[0][k]) for k in self.modalities]
        y2 = enc.encode_tokens(torch.cat([e[0] for e in second]), torch.cat([e[1] for e in second]))
        za = {k: self.view_projectors[k](y) for k, y in zip(self.modalities, y_first)}
        zb = {k: self.view_projectors[k](y) for k, y in zip(self.modalities, y2.chunk(len(self.modalities)))}
        return intra_view_loss(za, zb, self.lambda_, gather=self.gather)

    # -- evaluation ------------------------------------------------------------------------
    def represent(self, batch: Mapping[str, object], stream: str = "fused") -> Tensor:
        """``(N, 2d)`` from a raw batch without augmentation (whole valid clip resized to T), in the
        current train/eval mode and with gradient (for fine-tuning)."""
        raw = crop_batch(self._raw(batch), self.encoder.config.num_frames, self.augment, None)
        mods, _ = self.process(raw)
        return self.encoder.represent(mods, stream=stream)

    @torch.no_grad()
    def features(self, batch: Mapping[str, object], stream: str = "fused") -> Tensor:
        """Evaluation features ``(N, 2d)``: eval mode, no augmentation, no gradient; the module's
        train/eval mode is restored afterwards."""
        was = self.training
        self.eval()
        try:
            return self.represent(batch, stream=stream)
        finally:
            self.train(was)
