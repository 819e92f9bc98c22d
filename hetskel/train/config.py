"""What a training run computes: ``TrainConfig`` (checked settings and the lr schedule built from
them) and the JSON run description read by ``python -m hetskel.train`` (builder registry, ``--set``
overrides).

A run description is ``{"builder": "module:function" or a registered name, "builder_args": {...},
"train": {TrainConfig fields}, "run_dir": "runs/x", "extra": {...}, "name": "..."}``; the builder
returns ``(objective, dataset)``.
"""
from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from hetskel import config as _config

__all__ = ["TrainConfig", "load_run_spec", "make_optimizer", "make_scheduler", "register_builder",
           "resolve_builder"]


@dataclass
class TrainConfig:
    """Training settings; defaults are the paper's (UmURL) pretraining schedule.

    ``lr_milestones`` are epochs at which the lr is multiplied by ``lr_gamma``. They were written for
    ``milestones_for_epochs`` epochs (451 in the paper: x0.1 at 351); a run with another ``epochs``
    scales them proportionally (``round(m * epochs / milestones_for_epochs)``, e.g. 100 epochs ->
    78), so short runs keep the schedule's shape. Set ``milestones_for_epochs=None`` to use them as
    given. ``warmup_epochs`` (fractional allowed) ramps the lr linearly per step. ``batch_size`` is
    global (split evenly over ranks). ``amp``: ``auto`` = bf16 autocast on CUDA, off on CPU;
    ``bf16``; ``fp16`` (CUDA, with a GradScaler); ``off``. ``save_every`` writes
    ``epoch_XXXX.pt`` every so many epochs (0: never); ``checkpoint_every_steps`` refreshes
    ``latest.pt`` mid-epoch (0: epoch ends only). ``max_steps`` caps global steps (benchmarks,
    smoke runs); it does not rescale the schedule.
    """
    epochs: int = 451
    batch_size: int = 512
    lr: float = 5e-4
    weight_decay: float = 1e-5
    optimizer: str = "adam"            # adam | adamw | sgd
    momentum: float = 0.9              # sgd only
    lr_milestones: tuple[int, ...] = (351,)
    lr_gamma: float = 0.1
    milestones_for_epochs: int | None = 451
    warmup_epochs: float = 0.0
    grad_clip: float | None = None
    amp: str = "auto"                  # auto | bf16 | fp16 | off
    seed: int = 0
    device: str = "auto"
    save_every: int = 50
    checkpoint_every_steps: int = 500
    log_every: int = 50
    max_steps: int | None = None
    progress: bool = True
    compile: bool = False
    deterministic: bool = False
    sync_batchnorm: bool = True        # DDP on CUDA: BatchNorm statistics over the global batch
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        # types first (TypeError naming the field; lists -> tuples, ints -> floats), then ranges
        _config.check_fields(self)
        finite = {k: math.isfinite(getattr(self, k)) for k in ("lr", "weight_decay", "momentum", "lr_gamma",
                                                                 "warmup_epochs")}
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0 and finite["lr"], "lr must be > 0 and finite"),
            (self.weight_decay >= 0 and finite["weight_decay"], "weight_decay must be >= 0 and finite"),
            (self.momentum >= 0 and finite["momentum"], "momentum must be >= 0 and finite"),
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be 'adam', 'adamw' or 'sgd'"),
            (all(m >= 0 for m in self.lr_milestones), "lr_milestones must be >= 0"),
            (self.lr_gamma > 0 and finite["lr_gamma"], "lr_gamma must be > 0 and finite"),
            (self.milestones_for_epochs is None or self.milestones_for_epochs >= 1, "milestones_for_epochs must be >= 1"),
            (self.warmup_epochs >= 0 and finite["warmup_epochs"], "warmup_epochs must be >= 0 and finite"),
            (self.grad_clip is None or self.grad_clip >= 0, "grad_clip must be >= 0 (0: off) or None"),
            (self.amp in ("auto", "bf16", "fp16", "off"), "amp must be 'auto', 'bf16', 'fp16' or 'off'"),
            (self.save_every >= 0, "save_every must be >= 0"),
            (self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1 or None"),
        ]
        checks.append((self.momentum <= 1, "momentum must be in [0, 1] (sgd)"))
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise ValueError("invalid TrainConfig: " + "; ".join(bad))
        _config.check_range("TrainConfig", "seed", self.seed, 0, _config.SEED_MAX)
        if self.device != "auto":
            try:
                dev = torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"invalid TrainConfig: device {self.device!r} is not 'auto' or a torch device") from None
            _check_device_exists(dev)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        """Build from a JSON-like dict; unknown keys and wrong types are errors naming the field."""
        return _config.from_dict(cls, d)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def scaled_milestones(self) -> tuple[int, ...]:
        if self.milestones_for_epochs and self.epochs != self.milestones_for_epochs:
            return tuple(round(m * self.epochs / self.milestones_for_epochs) for m in self.lr_milestones)
        return self.lr_milestones

    def amp_dtype(self, device: torch.device) -> torch.dtype | None:
        if self.amp == "fp16" and device.type != "cuda":
            raise ValueError("amp='fp16' needs CUDA; use 'bf16' or 'off' on CPU")
        if self.amp == "auto":
            return torch.bfloat16 if device.type == "cuda" else None
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[self.amp]


def _check_device_exists(dev: torch.device) -> None:
    """``cuda:99`` on a machine with 1 GPU (or none) fails here, naming the field, not at the first
    ``.to(device)`` deep in training. Only CUDA indices are checked (other backends: at use)."""
    if dev.type != "cuda" or dev.index is None:
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if dev.index >= count:
        have = f"{count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "no CUDA device"
        raise ValueError(f"invalid TrainConfig: device {str(dev)!r} does not exist; this machine has {have}")


# --------------------------------------------------------------------------- optimizer and lr schedule


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimizer step: x``lr_gamma`` at each (scaled) milestone epoch, times a
    linear warmup over the first ``warmup_epochs * steps_per_epoch`` steps."""
    milestones, gamma = cfg.scaled_milestones(), cfg.lr_gamma
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:  # step = optimizer steps done; step // steps_per_epoch = epochs done
        f = gamma ** sum(step // steps_per_epoch >= m for m in milestones)
        if warmup_steps and step < warmup_steps:
            f *= (step + 1) / warmup_steps
        return f
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- JSON run descriptions

_BUILDERS: dict[str, Callable] = {}
_SPEC_KEYS = {"builder", "builder_args", "train", "run_dir", "extra", "name"}


def register_builder(name: str, fn: Callable) -> Callable:
    """Register ``fn(**builder_args) -> (objective, dataset)`` under ``name`` for JSON configs."""
    _BUILDERS[name] = fn
    return fn


def resolve_builder(name: str) -> Callable:
    """A registered name, or ``"package.module:function"`` (imported on demand)."""
    if name in _BUILDERS:
        return _BUILDERS[name]
    if ":" in name:
        mod, _, fn = name.partition(":")
        try:
            return getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"builder {name!r} could not be imported: {e}") from None
    raise ValueError(f"unknown builder {name!r}: registered {sorted(_BUILDERS)}; or give 'module:function'")


def load_run_spec(path, overrides: list[str] = ()) -> dict:
    """Read a run description and apply ``KEY=VALUE`` overrides (dotted keys, JSON values, a value
    that is not JSON is a bare string: ``train.epochs=3``, ``name=probe``)."""
    try:
        spec = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such run description file") from None
    except OSError as e:  # a folder, no permission, ...
        raise ValueError(f"{path}: cannot read the run description: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (a run description is JSON)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(spec, dict):
        raise TypeError(f"{path}: a run description must be a JSON object with the keys {sorted(_SPEC_KEYS)}, "
                         f"got a JSON {type(spec).__name__}")
    unknown = set(spec) - _SPEC_KEYS
    if unknown or "builder" not in spec:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} or missing 'builder'; "
                         f"valid keys: {sorted(_SPEC_KEYS)}")
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.epochs=3), got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, last = key.split(".")
        d = spec
        for i, k in enumerate(parents):
            d = d.setdefault(k, {})
            if not isinstance(d, dict):
                raise TypeError(f"--set {item!r}: {'.'.join(parents[:i + 1])!r} is a {type(d).__name__}, "
                                 f"not an object with keys")
        d[last] = value
    return spec
