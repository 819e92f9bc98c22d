"""Standalone training and scoring of the 2D -> 3D lifter, for inspection and real-data checks.

    >>> cfg = LifterConfig(width=512, epochs=30)
    >>> res = train_lifter((x2d_tr, x3d_tr), (x2d_va, x3d_va), cfg)   # LifterResult
    >>> res.metrics["lifter"]["mpjpe_mm"], res.metrics["zero_depth"]["mpjpe_mm"]
    >>> tuned = train_lifter(real_tr, real_va, cfg, init=res.model)   # fine-tune a trained lifter
    >>> evaluate_lifter(res.model, real_va, cfg, fit_pairs=real_tr)   # score without training

The model, the pose frame, ``L_rec`` and the metrics live in ``hetskel.hetero.lifter`` (which also
re-exports every name of this module, so ``from hetskel.hetero.lifter import train_lifter`` keeps
working). Inside pretraining the same ``Lifter`` is trained jointly (``hetskel.hetero.pipeline``);
this module trains it alone on paired 2D/3D skeletons and compares it with the two baselines a
lifter must beat: the training-set mean pose and "2D with zero depth".

Pairs. ``(x2d (..., T, V2, 2), x3d (..., T, V3, 3))`` with the same leading dims (typically
``(N, M, T)``), persons listed in the same order in both; or a dict / ``ArrayDataset`` holding them
under the layout names. 2D is usually normalised by the image size ([-1, 1]), 3D in metres; both
go through ``pose_frame`` (root-relative, torso-scaled), so only the 2D aspect ratio matters. Every
frame present in both sources is one example. Errors are reported in torso units (``mpjpe``) and,
multiplied back by each sequence's 3D torso length, in millimetres (``mpjpe_mm``; assumes metres).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from hetskel import config as _config
from hetskel.data.errors import DataError
from hetskel.hetero.lifter import (
    ROOT,
    Lifter,
    add_spine,
    frame_valid,
    joint_present,
    lifter_for,
    mpjpe,
    pa_mpjpe,
    pose_frame,
    reconstruction_loss,
    shared_joints,
    spine_layout,
)
from hetskel.layouts import get_layout
from hetskel.train.fit import fit

Tensor = torch.Tensor
__all__ = ["LifterConfig", "LifterResult", "baselines", "evaluate_lifter", "load_lifter", "save_lifter",
           "train_lifter"]


@dataclass
class LifterConfig:
    """Standalone lifter training. ``noise_2d``: std of Gaussian noise added to the pose-frame 2D
    inputs while training (torso units; detector-jitter robustness). ``frame_stride``: keep every
    k-th frame (neighbouring frames are near duplicates). Epochs use a cosine learning-rate decay."""

    layout_2d: str = "coco17"
    layout_3d: str = "ntu25"
    width: int = 1024
    num_layers: int = 4
    dropout: float = 0.25
    epochs: int = 40
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-5
    noise_2d: float = 0.0
    frame_stride: int = 1
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        _config.check_fields(self)  # types first, then the ranges below
        for name in ("width", "num_layers", "batch_size", "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"LifterConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.epochs < 0:  # 0 is meaningful only with train_lifter(init=...): score a lifter as it is
            raise ValueError(f"LifterConfig.epochs must be >= 0, got {self.epochs!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LifterConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"LifterConfig.lr must be a finite number > 0, got {self.lr!r}")
        for name in ("weight_decay", "noise_2d"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"LifterConfig.{name} must be a finite number >= 0, got {getattr(self, name)!r}")


@dataclass
class LifterResult:
    """``model`` (trained, eval mode), ``history`` (one dict per epoch), ``metrics``
    (``{"lifter" | "mean_pose" | "zero_depth": {"mpjpe", "pa_mpjpe", "mpjpe_mm", "pa_mpjpe_mm", "frames"}}``
    on the held-out pairs; pose-frame errors in torso units, ``*_mm`` assuming the 3D input is in metres),
    ``config``, ``run_dir`` (None when nothing was written)."""

    model: Lifter
    history: list[dict]
    metrics: dict[str, dict[str, float]]
    config: LifterConfig
    run_dir: Path | None = None


def _pair_tensors(pairs, cfg: LifterConfig, what: str) -> tuple[Tensor, Tensor]:
    """Accept ``(x2d, x3d)``, ``{layout_2d: x2d, layout_3d: x3d}`` (a ``get_batch`` dict), ``{"x2d", "x3d"}``,
    or an object with such an ``.x`` dict (``ArrayDataset``)."""
    if isinstance(getattr(pairs, "x", None), Mapping):
        pairs = pairs.x
    if isinstance(pairs, Mapping):
        keys = [(cfg.layout_2d, cfg.layout_3d), ("x2d", "x3d")]
        k = next((k for k in keys if k[0] in pairs and k[1] in pairs), None)
        if k is None:
            raise DataError(f"needs keys {keys[0]} or {keys[1]}, got {list(pairs)}", field=what)
        pairs = (pairs[k[0]], pairs[k[1]])
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
        raise DataError(f"expected a (x2d, x3d) pair, got {type(pairs).__name__}", field=what)
    l2, l3 = get_layout(cfg.layout_2d), get_layout(cfg.layout_3d)
    out = []
    for x, lay, C, name in ((pairs[0], l2, 2, "x2d"), (pairs[1], l3, 3, "x3d")):
        try:
            x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"is not a numeric array ({e})", field=f"{what}.{name}") from None
        if x.dim() < 3 or tuple(x.shape[-2:]) != (lay.num_joints, C):
            raise DataError(f"has shape {tuple(x.shape)}, expected (..., T, {lay.num_joints}, {C}) for layout "
                            f"{lay.name!r}", field=f"{what}.{name}")
        if not bool(torch.isfinite(x).all()):
            raise DataError("holds NaN or infinite values", field=f"{what}.{name}")
        out.append(x)
    if out[0].shape[:-2] != out[1].shape[:-2]:
        raise DataError(f"2D {tuple(out[0].shape)} and 3D {tuple(out[1].shape)} are not paired frame by frame "
                        f"(same leading (N, M, T); resample both to one length first)", field=what)
    return out[0], out[1]


def _frames(pairs, cfg: LifterConfig, what: str) -> dict[str, Tensor]:
    """Pose-frame frames present in both sources: x ``(F, V_lift, 2)``, y ``(F, V_3d, 3)``, scale ``(F,)``."""
    x2, x3 = _pair_tensors(pairs, cfg, what)
    x2, lift_layout = add_spine(x2, cfg.layout_2d)
    p2 = pose_frame(x2, lift_layout).pose
    p3, _, s3 = pose_frame(x3, cfg.layout_3d)
    sl = slice(None, None, max(1, int(cfg.frame_stride)))
    p2, p3 = p2[..., sl, :, :], p3[..., sl, :, :]
    keep = frame_valid(p2) & frame_valid(p3)
    s3 = s3[..., None].expand(keep.shape)
    if not bool(keep.any()):
        raise DataError("has no frame where both the 2D and the 3D skeleton are present", field=what)
    return {"x": p2[keep], "y": p3[keep], "scale": s3[keep]}


def _errors(pred: Tensor, target: Tensor, scale: Tensor) -> dict[str, float]:
    e, pa = mpjpe(pred, target, per_frame=True), pa_mpjpe(pred, target, per_frame=True)
    return {"mpjpe": float(e.mean()), "pa_mpjpe": float(pa.mean()),
            "mpjpe_mm": float((e * scale).mean() * 1000), "pa_mpjpe_mm": float((pa * scale).mean() * 1000),
            "frames": int(e.shape[0])}


@torch.no_grad()
def _predict(model: Lifter, x: Tensor, batch: int = 8192) -> Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


def baselines(train: dict[str, Tensor], lift_layout, layout_3d) -> dict[str, Callable]:
    """The two predictors a lifter must beat, fitted on training frames (``_frames`` dicts).

    ``mean_pose``: the training-set mean 3D pose (pose frame). ``zero_depth``: the 2D pose with
    depth 0, each image axis times a least-squares factor fitted on the training set (absorbs the
    image's downward y axis and the aspect ratio of the [-1, 1] normalisation). Both return
    predictions on the shared joints.
    """
    ia, ib, _ = shared_joints(lift_layout, layout_3d)
    y = train["y"][:, ib]
    mean = y.mean(0)
    x = train["x"][:, ia]
    gain = (x * y[..., :2]).sum((0, 1)) / (x ** 2).sum((0, 1)).clamp_min(1e-12)      # (2,)
    def zero_depth(f):
        return torch.cat([f["x"][:, ia] * gain, f["x"].new_zeros(f["x"].shape[0], len(ia), 1)], -1)

    return {"mean_pose": lambda f: mean.expand(f["x"].shape[0], *mean.shape), "zero_depth": zero_depth}


def _score(model: Lifter, lift_layout, va: dict[str, Tensor], cfg: LifterConfig,
           fit: dict[str, Tensor] | None) -> dict[str, dict[str, float]]:
    ia, ib, _ = shared_joints(lift_layout, cfg.layout_3d)
    target = va["y"][:, ib]
    metrics = {"lifter": _errors(_predict(model, va["x"])[:, ia], target, va["scale"])}
    if fit is not None:
        for name, fn in baselines(fit, lift_layout, cfg.layout_3d).items():
            metrics[name] = _errors(fn(va), target, va["scale"])
    return metrics


def evaluate_lifter(model: Lifter, pairs, config: LifterConfig | None = None,
                    fit_pairs=None) -> dict[str, dict[str, float]]:
    """Score a trained ``model`` on ``pairs`` (its layouts are ``config.layout_2d/3d``) without training:
    ``{"lifter": {...}}`` plus ``"mean_pose"`` and ``"zero_depth"`` baselines fitted on ``fit_pairs``
    when given (same keys as ``LifterResult.metrics``). Used to test a lifter trained elsewhere
    (e.g. on SynHet) on real recordings, zero-shot."""
    cfg = config or LifterConfig()
    lift_layout = _check_model(model, cfg)
    model = model.cpu()
    va = _frames(pairs, cfg, "pairs")
    fit = None if fit_pairs is None else _frames(fit_pairs, cfg, "fit_pairs")
    return _score(model, lift_layout, va, cfg, fit)


def _check_model(model: Lifter, cfg: LifterConfig):
    """The lifting layout of ``cfg.layout_2d``; a ``DataError`` when ``model`` was built for another one
    (a ``Lifter`` does not record its layout: joint counts and the pinned root's index must match)."""
    lay = spine_layout(cfg.layout_2d)
    want = (lay.num_joints, lay.num_joints, lay.index(ROOT))
    if (model.in_joints, model.out_joints, model.root_index) != want:
        raise DataError(f"lifter maps {model.in_joints} -> {model.out_joints} joints with root {model.root_index}, "
                        f"but layout_2d {cfg.layout_2d!r} lifts through {lay.name!r} ({lay.num_joints} joints, "
                        f"root {want[2]})", field="init")
    return lay


def train_lifter(train_pairs, val_pairs, config: LifterConfig | None = None, progress: bool = False,
                 run_dir=None, overwrite: bool = False, init: Lifter | None = None) -> LifterResult:
    """Train a ``Lifter`` on paired 2D/3D skeletons and score it on held-out pairs against the baselines.

    A pair set is ``(x2d (N, M, T, V2, 2), x3d (N, M, T, V3, 3))`` (module docstring) or a dict /
    ``ArrayDataset`` holding them under the layout names. ``init``: start from a copy of this trained
    lifter (fine-tuning; it must lift ``config.layout_2d``, and its own width/depth/dropout win over
    the config's), else from a fresh one. ``run_dir``: None writes nothing; else a run folder
    (``hetskel.io.make_run_dir``) receives ``config.json``, ``metrics.jsonl`` (per epoch), ``lifter.pt``
    and ``results.json``.
    """
    from tqdm import tqdm  # not tqdm.auto: its widget misbehaves under papermill

    from hetskel import io
    cfg = config or LifterConfig()
    if cfg.epochs == 0 and init is None:
        raise ValueError("LifterConfig.epochs is 0: a fresh lifter would stay untrained "
                         "(epochs=0 only scores an existing lifter given as init=)")
    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tr = {k: v.to(device) for k, v in _frames(train_pairs, cfg, "train_pairs").items()}
    va = {k: v.to(device) for k, v in _frames(val_pairs, cfg, "val_pairs").items()}
    if init is not None:
        lift_layout = _check_model(init, cfg)
        model = copy.deepcopy(init)
    else:
        model, lift_layout = lifter_for(cfg.layout_2d, width=cfg.width, num_layers=cfg.num_layers,
                                        dropout=cfg.dropout)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    F = tr["x"].shape[0]
    steps = max(1, cfg.epochs * math.ceil(F / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    out_dir = None if run_dir is None else io.make_run_dir(run_dir, name="lifter", overwrite=overwrite)
    if out_dir is not None:
        io.save_json(out_dir / "config.json", {"lifter": asdict(cfg), "train_frames": F, "val_frames": va["x"].shape[0],
                                               "init": "given lifter" if init is not None else "fresh"})
    ia, ib, _ = shared_joints(lift_layout, cfg.layout_3d)
    history = []
    total, seen = 0.0, 0  # this epoch's summed loss and frames

    def batches(_epoch):
        nonlocal total, seen
        model.train()  # _predict left it in eval mode
        total, seen = 0.0, 0
        # BatchNorm needs two rows: a last batch of one frame is skipped
        yield from (idx for idx in torch.randperm(F, generator=gen).to(device).split(cfg.batch_size)
                    if idx.numel() >= 2)

    def loss_of(idx: Tensor) -> dict:
        x = tr["x"][idx]
        if cfg.noise_2d > 0:
            x = (x + cfg.noise_2d * torch.randn_like(x)) * joint_present(x)[..., None]
        return {"loss": reconstruction_loss(model(x), lift_layout, tr["y"][idx], cfg.layout_3d), "frames": idx.numel()}

    def count(out: dict) -> None:
        nonlocal total, seen
        total, seen = total + float(out["loss"].detach()) * out["frames"], seen + out["frames"]

    def end_epoch(epoch: int) -> None:
        pred = _predict(model, va["x"])
        rec = {"epoch": epoch + 1, "train_loss": total / max(seen, 1),
               "val_loss": float(reconstruction_loss(pred, lift_layout, va["y"], cfg.layout_3d)),
               "val_mpjpe": float(mpjpe(pred[:, ia], va["y"][:, ib]))}
        history.append(rec)
        if out_dir is not None:
            io.append_jsonl(out_dir / "metrics.jsonl", rec)
        bar.update(1)

    with tqdm(total=cfg.epochs, desc="lifter", disable=not progress) as bar:
        fit(opt, loss_of, batches, cfg.epochs, scheduler=sched, on_step=count, on_epoch_end=end_epoch)
    metrics = _score(model, lift_layout, va, cfg, tr)
    model.cpu()
    if out_dir is not None:
        save_lifter(out_dir / "lifter.pt", model, cfg, metrics)
        io.save_json(out_dir / "results.json", {"metrics": metrics, "history": history})
    return LifterResult(model, history, metrics, cfg, out_dir)


def save_lifter(path, model: Lifter, config: LifterConfig | None = None, metrics: dict | None = None) -> Path:
    """Write a weights-only checkpoint (``hetskel.io.save_checkpoint``) that ``load_lifter`` rebuilds."""
    from hetskel import io
    state = {"kind": "hetskel.lifter", "init": dict(model.init_args),
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "config": asdict(config) if config is not None else {}, "metrics": metrics or {}}
    return io.save_checkpoint(path, state)


def load_lifter(path) -> tuple[Lifter, dict]:
    """``(Lifter in eval mode, checkpoint dict)`` from ``save_lifter``'s file (loaded weights-only)."""
    from hetskel import io
    ck = io.load_checkpoint(path)
    if not isinstance(ck, dict) or ck.get("kind") != "hetskel.lifter":
        raise DataError("is not a hetskel lifter checkpoint (no kind='hetskel.lifter')", file=path)
    model = Lifter(**ck["init"])
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck
