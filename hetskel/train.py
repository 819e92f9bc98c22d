"""One training loop for notebooks and for ``torchrun`` (1 or N GPUs, same code path).

In a notebook::

    from hetskel.train import TrainConfig, train
    result = train(objective, dataset, TrainConfig(epochs=5, batch_size=128), run_dir="runs/pre/j_c_s")

On N GPUs (the JSON names a builder ``"module:function"`` returning ``(objective, dataset)``)::

    torchrun --standalone --nproc_per_node 2 -m hetskel.train --config run.json
    python -m hetskel.train --config run.json --set train.epochs=3 --set train.max_steps=100

The contract is small: ``objective`` is an ``nn.Module`` whose ``forward(batch)`` returns a dict with a
scalar ``"loss"`` (plus any other scalar terms to log); ``dataset`` has ``__len__``,
``to(device)`` and ``get_batch(idx: LongTensor) -> dict[str, Tensor]``. The dataset is moved to
the device once and a step is an index gather there: no DataLoader workers, no per-sample Python,
and no host sync inside a step (losses are accumulated on the device and read every
``log_every`` steps; non-finite losses are flagged on the device and checked at the same points).

Each epoch is a permutation drawn exactly as ``torch.utils.data.DistributedSampler`` draws it
(``randperm`` seeded with ``seed + epoch``, padded, rank-strided), so the union of the ranks' k-th
batches is the single-process k-th batch, and an objective that gathers features with
``hetskel.dist.all_gather_with_grad`` computes the single-process loss on N GPUs.

Resuming is exact: ``latest.pt`` holds weights, optimizer, scheduler, AMP scaler, position
(epoch, step in epoch, global step), the epoch's running loss sums and every RNG state (torch
CPU/CUDA, numpy, python and every ``torch.Generator`` of the dataset or the objective's modules:
held as an attribute, or returned by a ``training_generators(device)`` hook), per rank. A killed
run restarted with the same arguments continues with the same batches and the same augmentation
randomness.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import sys
import time
import types
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch
from torch import nn

from hetskel import dist
from hetskel.dist import epoch_shard
from hetskel.io import (
    RunDirExists,
    append_jsonl,
    load_checkpoint,
    load_json,
    make_run_dir,
    project_root,
    read_jsonl,
    save_checkpoint,
    save_json,
)

__all__ = [
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "epoch_shard",
    "load_weights",
    "main",
    "read_run",
    "register_builder",
    "resolve_builder",
    "seed_everything",
    "train",
]

# config.json fields that do not change what a run computes: a resumed run may change them
_COSMETIC = {"progress", "log_every"}
_OWN_FILES = ("config.json", "metrics.jsonl", "latest.pt")


@dataclass
class TrainResult:
    run_dir: Path
    final: dict            # last epoch record (or last step record when the run stopped mid-epoch)
    history: list          # every metrics.jsonl record of the run, in order
    steps: int             # global optimizer steps done
    wall_time: float       # seconds, summed over resumed sessions
    samples_per_s: float   # global samples per second in this session
    checkpoint: Path | None = None


@dataclass
class RunInfo:
    run_dir: Path
    config: dict
    metrics: list
    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    events: list = field(default_factory=list)
    latest: Path | None = None
    checkpoints: list = field(default_factory=list)


# --------------------------------------------------------------------------- configuration


class NonFiniteLossError(FloatingPointError):
    """A loss term (or the weights) became NaN/inf. The message names epoch, step and term; the
    run folder keeps its last good ``latest.pt`` and a ``nonfinite_loss`` event in metrics.jsonl."""


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
        self.lr_milestones = tuple(self.lr_milestones)
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"), (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be 'adam', 'adamw' or 'sgd'"),
            (all(m >= 0 for m in self.lr_milestones), "lr_milestones must be >= 0"),
            (self.lr_gamma > 0, "lr_gamma must be > 0"),
            (self.milestones_for_epochs is None or self.milestones_for_epochs >= 1, "milestones_for_epochs must be >= 1"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.amp in ("auto", "bf16", "fp16", "off"), "amp must be 'auto', 'bf16', 'fp16' or 'off'"),
            (self.save_every >= 0, "save_every must be >= 0"),
            (self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1 or None"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise ValueError("invalid TrainConfig: " + "; ".join(bad))
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"invalid TrainConfig: device {self.device!r} is not 'auto' or a torch device") from None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        """Build from a JSON-like dict; unknown keys and wrong types are errors naming the field."""
        if not isinstance(d, Mapping):
            raise TypeError(f"TrainConfig.from_dict expects a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys: {', '.join(cls.field_names())}")
        hints = get_type_hints(cls)
        return cls(**{k: _check_type(k, v, hints[k]) for k, v in d.items()})

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


def _check_type(name: str, value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in (a for a in args if a is not type(None)):
            try:
                return _check_type(name, value, a)
            except TypeError:
                pass
    elif origin is tuple and isinstance(value, (list, tuple)):
        return tuple(_check_type(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
    elif hint is bool and isinstance(value, bool) or hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint is str and isinstance(value, str):
        return value
    want = getattr(hint, "__name__", None) or str(hint)
    raise TypeError(f"TrainConfig field {name!r} expects {want}, got {type(value).__name__} {value!r}")


# --------------------------------------------------------------------------- RNG state


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def find_generators(objective: nn.Module, dataset, device: torch.device | None = None) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` the dataset or a module of the objective draws from, by a stable
    name, so checkpoints carry their state. Found two ways:

    - an object's ``training_generators(device) -> {name: Generator}`` hook, called first, so an
      owner that creates its generator lazily (on the data's device) creates it now;
    - any ``torch.Generator`` held directly as an attribute.

    Owners seed their generators (offset by the rank under DDP); ``train`` only saves and restores
    them, so a resumed run continues each stream where it stopped.
    """
    owners = [("dataset", dataset)] + [(f"objective.{n}" if n else "objective", m) for n, m in objective.named_modules()]
    found: dict[str, torch.Generator] = {}
    for owner, obj in owners:
        hook = getattr(obj, "training_generators", None)
        if callable(hook):
            for key, g in dict(hook(device)).items():
                if not isinstance(g, torch.Generator):
                    raise TypeError(f"{owner}.training_generators() returned {type(g).__name__} for {key!r}")
                found[f"{owner}.{key}()"] = g
        found.update({f"{owner}.{attr}": v for attr, v in getattr(obj, "__dict__", {}).items()
                      if isinstance(v, torch.Generator)})
    return found


def seed_generators(gens: Mapping[str, torch.Generator], seed: int, rank: int) -> None:
    """Reseed generators from a seed and the rank (used when a checkpoint's per-rank RNG states
    cannot be matched to the ranks, i.e. a resume on another number of processes)."""
    for i, name in enumerate(sorted(gens)):
        gens[name].manual_seed((seed * 1_000_003 + rank * 7_919 + i + 1) % 2**63)


def capture_rng(gens: Mapping[str, torch.Generator], device: torch.device) -> dict:
    """Every RNG state as tensors/ints/floats (loadable with ``weights_only=True``)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    st = {"torch": torch.get_rng_state(),
          "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                    "has_gauss": int(has_gauss), "gauss": float(gauss)},
          "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                     "has_gauss": py_gauss is not None, "gauss": float(py_gauss or 0.0)},
          "generators": {k: g.get_state() for k, g in gens.items()}}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def restore_rng(st: Mapping, gens: Mapping[str, torch.Generator], device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = st["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"] if p["has_gauss"] else None))
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)
    for k, g in gens.items():
        if k in st["generators"]:
            g.set_state(st["generators"][k])


# --------------------------------------------------------------------------- run folder


def _resolve(run_dir) -> Path:
    p = Path(run_dir)
    return p if p.is_absolute() else project_root() / p  # same rule as hetskel.io.make_run_dir


def _normalise(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))  # tuples -> lists, paths -> strings


def _config_diff(old: Mapping, new: Mapping) -> list[str]:
    diff = []
    for part in ("train", "extra", "objective", "dataset"):
        a, b = old.get(part), new.get(part)
        if part == "train" and isinstance(a, dict) and isinstance(b, dict):
            keys = (set(a) | set(b)) - _COSMETIC
            diff += [f"train.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(keys) if a.get(k) != b.get(k)]
        elif a != b:
            diff.append(f"{part}: {a!r} -> {b!r}")
    return diff


def _prepare_run_dir(run_dir, run_config: dict, resume: bool, overwrite: bool, name: str):
    """Rank 0 only. Returns (folder, checkpoint to resume from or None)."""
    if run_dir:
        p = _resolve(run_dir)
        if overwrite and p.exists():
            for f in list(p.glob("epoch_*.pt")) + [p / n for n in _OWN_FILES]:
                f.unlink(missing_ok=True)
        elif (p / "config.json").is_file():
            diff = _config_diff(load_json(p / "config.json"), run_config)
            if diff:
                raise RunDirExists(f"run folder {p} holds a different run ({'; '.join(diff[:6])}); choose "
                                   f"a new run_dir or pass overwrite=True to replace it")
            if not resume:
                raise RunDirExists(f"run folder {p} already holds this run; pass resume=True to continue it "
                                   f"or overwrite=True to start it again")
            latest = p / "latest.pt"
            if latest.is_file():
                return p, latest
            if (p / "metrics.jsonl").is_file():  # stopped before its first checkpoint: start over, keep events
                _truncate_metrics(p / "metrics.jsonl", 0, 0)
            return p, None
    p = make_run_dir(run_dir, name=name, overwrite=overwrite)
    save_json(p / "config.json", run_config)
    (p / "metrics.jsonl").unlink(missing_ok=True)
    return p, None


def _truncate_metrics(path: Path, epoch: int, global_step: int) -> None:
    """Drop records written after the checkpoint we resume from (they will be written again)."""
    keep = [r for r in read_jsonl(path)
            if "event" in r
            or (r.get("kind") == "step" and r.get("global_step", 0) <= global_step)
            or (r.get("kind") == "epoch" and r.get("epoch", 0) <= epoch)]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the loop


def _lr_lambda(steps_per_epoch: int, milestones: tuple, gamma: float, warmup_steps: int) -> Callable:
    def factor(step: int) -> float:  # step = optimizer steps done; epoch = epochs completed
        f = gamma ** sum(step // steps_per_epoch >= m for m in milestones)
        if warmup_steps and step < warmup_steps:
            f *= (step + 1) / warmup_steps
        return f
    return factor


def _make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _place_dataset(dataset, device: torch.device):
    """Move the dataset to the device when it fits (``nbytes`` under 60% of free memory, or no
    ``nbytes`` to judge by); else keep it on the host and copy each batch. Returns (dataset, device
    the indices must live on)."""
    nbytes = getattr(dataset, "nbytes", None)
    if device.type == "cuda" and nbytes is not None and nbytes > 0.6 * torch.cuda.mem_get_info(device)[0]:
        return dataset, torch.device("cpu")
    moved = dataset.to(device)
    return (moved if moved is not None else dataset), device


def _scalar_terms(out: Any) -> list[str]:
    if not isinstance(out, Mapping) or "loss" not in out:
        raise TypeError("the objective's forward(batch) must return a dict with a scalar 'loss' "
                        f"(got {type(out).__name__}{' with keys ' + str(list(out)) if isinstance(out, Mapping) else ''})")
    names = ["loss"]
    for k, v in out.items():
        if k != "loss" and (isinstance(v, (int, float)) or (torch.is_tensor(v) and v.numel() == 1)):
            names.append(k)
    return names


def train(objective: nn.Module, dataset, config: TrainConfig | Mapping, run_dir=None, resume: bool = True,
          overwrite: bool = False, extra_config: Mapping | None = None, name: str = "train") -> TrainResult:
    """Train ``objective`` on ``dataset``; write config.json, metrics.jsonl and checkpoints to ``run_dir``.

    ``run_dir`` None makes a new ``runs/<name>/<timestamp>``. A folder holding the same run resumes
    from its ``latest.pt`` when ``resume`` (a finished run returns at once); a folder holding a
    different run, or any other non-empty folder, is an error unless ``overwrite``. Raises
    ``NonFiniteLossError`` on a NaN/inf loss (the last good checkpoint is kept).

    ``extra_config`` (JSON-able: builder, modalities, semantic table source, ...) is stored in
    config.json and is part of what makes two runs "the same run". metrics.jsonl holds one line per
    record: ``{"kind": "step", "epoch": fractional epochs done, "step": steps done in the epoch,
    "global_step", <loss terms, mean over the log window and the ranks>, "lr" (of the last step),
    "samples_per_s" (global), "elapsed"}`` every ``log_every`` steps and at each epoch end;
    ``{"kind": "epoch", "epoch": epochs done, "global_step", <epoch-mean terms>, "lr", "elapsed"}``;
    and events ``{"event": "resumed" | "nonfinite_loss" | "nonfinite_weights" | "done", ...}``.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    device = dist.setup_distributed(device=cfg.device)
    rank, world = dist.rank(), dist.world_size()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} (global) is not divisible by the world size {world}")
    per_rank, n = cfg.batch_size // world, len(dataset)
    steps_per_epoch = math.ceil(n / world) // per_rank  # DistributedSampler shard length, whole batches
    if steps_per_epoch == 0:
        raise ValueError(f"dataset of {n} samples is smaller than one batch of {cfg.batch_size}")
    total_steps = cfg.epochs * steps_per_epoch
    amp_dtype = cfg.amp_dtype(device)  # raises before any file is written
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)

    run_config = _normalise({"train": cfg.to_dict(), "extra": dict(extra_config or {}),
                             "objective": type(objective).__qualname__,
                             "dataset": {"type": type(dataset).__qualname__, "len": n}})
    outcome: Any = None
    if dist.is_main():
        try:
            path, ckpt = _prepare_run_dir(run_dir, {**run_config, "meta": {"world_size": world,
                                          "created": time.strftime("%Y-%m-%d %H:%M:%S")}}, resume, overwrite, name)
            outcome = ("ok", str(path), str(ckpt) if ckpt else None)
        except RunDirExists as e:
            outcome = ("error", str(e), None)
    outcome = dist.broadcast_object(outcome)
    if outcome[0] == "error":
        raise RunDirExists(outcome[1])
    path, ckpt_path = Path(outcome[1]), outcome[2]
    metrics_path = path / "metrics.jsonl"

    objective.to(device)
    if dist.is_distributed() and cfg.sync_batchnorm and device.type == "cuda":
        # swaps BatchNorm children in place, keeping the same Parameter objects and state_dict keys
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
    dataset, index_device = _place_dataset(dataset, device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = _make_optimizer(cfg, params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(
        steps_per_epoch, cfg.scaled_milestones(), cfg.lr_gamma, round(cfg.warmup_epochs * steps_per_epoch)))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    generators = find_generators(objective, dataset, device)

    epoch = step_in_epoch = global_step = 0
    elapsed_before, epoch_sums = 0.0, None
    if ckpt_path:
        state = load_checkpoint(ckpt_path)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        elapsed_before, epoch_sums = state["elapsed"], state.get("epoch_sums")
        rngs = state["rng"]
        if len(rngs) == world:
            restore_rng(rngs[rank], generators, device)
        else:  # resumed on another number of ranks: batches stay exact, augmentation draws do not
            seed_everything(cfg.seed + 1000 * global_step + rank)
            seed_generators(generators, cfg.seed + 1000 * global_step, rank)
        if dist.is_main():
            _truncate_metrics(metrics_path, epoch, global_step)
            append_jsonl(metrics_path, {"event": "resumed", "epoch": epoch, "global_step": global_step,
                                        "checkpoint": str(ckpt_path), "world_size": world})
    else:  # generators stay as their owners seeded them (see find_generators)
        seed_everything(cfg.seed + rank)

    model: nn.Module = objective
    if dist.is_distributed():
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters)
    if cfg.compile:
        model = torch.compile(model)

    prev_det = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False

    names: list[str] | None = None
    bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite global step
    bad_terms: torch.Tensor | None = None
    gs_dev = torch.full((), global_step, dtype=torch.long, device=device)
    window_sum, window_n = None, 0
    history: list[dict] = []
    t_start = t_window = time.perf_counter()
    session_steps = 0
    last_record: dict = {}
    saved_at = global_step if ckpt_path else -1

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_start

    def emit(rec: dict) -> None:
        nonlocal last_record
        last_record = rec
        if dist.is_main():
            append_jsonl(metrics_path, rec)

    def check_finite(when: str) -> None:
        flag = (bad_step >= 0).to(torch.int32).reshape(1)
        if int(dist.all_reduce_(flag, "max").item()) == 0:
            return
        reports = dist.all_gather_object((int(bad_step.item()), bad_terms.tolist() if bad_terms is not None else []))
        r_bad, (gs_bad, flags) = next((i, rep) for i, rep in enumerate(reports) if rep[0] >= 0)
        terms = [k for k, f in zip(names or [], flags) if f] or ["loss"]
        ep, st = divmod(gs_bad, steps_per_epoch)
        msg = (f"non-finite loss in term(s) {', '.join(terms)} at epoch {ep}, step {st} of {steps_per_epoch} "
               f"(0-based; optimizer step {gs_bad + 1} of the run){f' on rank {r_bad}' if world > 1 else ''}, "
               f"detected at {when}. Training stopped; the last good checkpoint is kept: "
               f"{path / 'latest.pt' if saved_at >= 0 else 'none was written yet'}")
        emit({"event": "nonfinite_loss", "epoch": ep, "step": st, "global_step": gs_bad + 1, "terms": terms,
              "rank": r_bad, "message": msg})
        raise NonFiniteLossError(msg)

    def save(ep: int, st: int, files: list[Path]) -> None:
        nonlocal saved_at
        check_finite(f"the checkpoint after global step {global_step}")
        finite = torch.stack([p.detach().isfinite().all() for p in params]).all().reshape(1).to(torch.int32)
        if int(dist.all_reduce_(finite, "min").item()) == 0:
            msg = f"non-finite weights at epoch {ep} step {st} (global step {global_step}); not checkpointed"
            emit({"event": "nonfinite_weights", "epoch": ep, "step": st, "global_step": global_step, "message": msg})
            raise NonFiniteLossError(msg)
        rngs = dist.all_gather_object(capture_rng(generators, device))
        if dist.is_main():
            state = {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": ep, "step_in_epoch": st,
                     "global_step": global_step, "elapsed": elapsed(), "rng": rngs, "world_size": world,
                     "steps_per_epoch": steps_per_epoch, "train_config": _normalise(cfg.to_dict())}
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            if epoch_sums is not None:
                state["epoch_sums"] = epoch_sums.detach().cpu()
            for f in files:
                save_checkpoint(f, state)
        saved_at = global_step
        dist.barrier()

    pbar = None
    if cfg.progress and dist.is_main():
        # plain tqdm (never tqdm.auto): one text bar that works in terminals, papermill logs and notebooks
        from tqdm import tqdm
        pbar = tqdm(total=total_steps, initial=global_step, desc=path.name, unit="step", dynamic_ncols=True)
    try:
        while epoch < cfg.epochs and global_step < total_steps:
            shard = epoch_shard(n, epoch, cfg.seed, rank, world).to(index_device)
            while step_in_epoch < steps_per_epoch and global_step < total_steps:
                idx = shard[step_in_epoch * per_rank:(step_in_epoch + 1) * per_rank]
                batch = dataset.get_batch(idx)
                if index_device != device:
                    batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
                with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                    out = model(batch)
                if names is None:
                    names = _scalar_terms(out)
                    window_sum = torch.zeros(len(names), device=device)
                    bad_terms = torch.zeros(len(names), dtype=torch.bool, device=device)
                    if epoch_sums is None or epoch_sums.numel() != len(names):
                        epoch_sums = torch.zeros(len(names), device=device)
                    epoch_sums = epoch_sums.to(device)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(out["loss"]).backward()
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                lr_used = optimizer.param_groups[0]["lr"]  # a Python float: no sync
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                vals = torch.stack([torch.as_tensor(out[k], device=device).detach().float().reshape(())
                                    for k in names])
                bad_now = ~torch.isfinite(vals)
                first = bad_now.any() & (bad_step < 0)  # device-side bookkeeping: no sync here
                bad_step = torch.where(first, gs_dev, bad_step)
                bad_terms = torch.where(first, bad_now, bad_terms)
                gs_dev += 1
                window_sum += vals
                epoch_sums += vals
                window_n += 1
                step_in_epoch += 1
                global_step += 1
                session_steps += 1
                if pbar is not None:
                    pbar.update(1)
                last_of_epoch = step_in_epoch == steps_per_epoch
                if global_step % cfg.log_every == 0 or global_step == total_steps or last_of_epoch:
                    check_finite(f"the log after global step {global_step}")
                    means = (dist.all_reduce_(window_sum.clone(), "mean") / window_n).tolist()
                    now = time.perf_counter()
                    rec = {"kind": "step", "epoch": epoch + step_in_epoch / steps_per_epoch, "step": step_in_epoch,
                           "global_step": global_step, **dict(zip(names, means)),
                           "lr": lr_used, "samples_per_s": window_n * cfg.batch_size / (now - t_window),
                           "elapsed": elapsed()}
                    emit(rec)
                    history.append(rec)
                    if pbar is not None:
                        pbar.set_postfix(loss=f"{means[0]:.4g}")
                    window_sum.zero_()
                    window_n, t_window = 0, now
                if (cfg.checkpoint_every_steps and global_step % cfg.checkpoint_every_steps == 0
                        and not last_of_epoch):
                    save(epoch, step_in_epoch, [path / "latest.pt"])
            if step_in_epoch < steps_per_epoch:
                break  # max_steps reached mid-epoch
            means = (dist.all_reduce_(epoch_sums.clone(), "mean") / steps_per_epoch).tolist()
            rec = {"kind": "epoch", "epoch": epoch + 1, "global_step": global_step, **dict(zip(names, means)),
                   "lr": lr_used, "elapsed": elapsed()}
            emit(rec)
            history.append(rec)
            epoch, step_in_epoch = epoch + 1, 0
            epoch_sums.zero_()
            snap = [path / "latest.pt"]
            if cfg.save_every and epoch % cfg.save_every == 0:
                snap.append(path / f"epoch_{epoch:04d}.pt")
            save(epoch, 0, snap)
        if saved_at != global_step:
            save(epoch, step_in_epoch, [path / "latest.pt"])
    finally:
        if pbar is not None:
            pbar.close()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(prev_det)

    session_time = time.perf_counter() - t_start
    sps = session_steps * cfg.batch_size / session_time if session_steps else 0.0
    if dist.is_main() and session_steps:
        append_jsonl(metrics_path, {"event": "done", "epoch": epoch, "global_step": global_step,
                                    "elapsed": elapsed(), "samples_per_s": sps})
    dist.barrier()
    records = read_jsonl(metrics_path) if metrics_path.exists() else history
    kinds = [r for r in records if r.get("kind") in ("epoch", "step")]
    final = last_record or (kinds[-1] if kinds else {})
    return TrainResult(run_dir=path, final=final, history=records, steps=global_step, wall_time=elapsed(),
                       samples_per_s=sps, checkpoint=path / "latest.pt")


# --------------------------------------------------------------------------- reading runs back


def read_run(run_dir) -> RunInfo:
    """Config, metrics and checkpoint paths of a run folder (e.g. after a torchrun job)."""
    p = _resolve(run_dir)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p} is not a training run folder (no config.json)")
    recs = read_jsonl(p / "metrics.jsonl")
    latest = p / "latest.pt"
    return RunInfo(run_dir=p, config=load_json(p / "config.json"), metrics=recs,
                   steps=[r for r in recs if r.get("kind") == "step"],
                   epochs=[r for r in recs if r.get("kind") == "epoch"],
                   events=[r for r in recs if "event" in r],
                   latest=latest if latest.is_file() else None,
                   checkpoints=sorted(p.glob("epoch_*.pt")))


def load_weights(objective: nn.Module, source, strict: bool = True) -> dict:
    """Load a checkpoint's objective weights into ``objective``; ``source`` is a ``.pt`` file or a run
    folder (its ``latest.pt``). Returns the checkpoint's position (epoch, global_step, ...)."""
    p = _resolve(source)
    state = load_checkpoint(p / "latest.pt" if p.is_dir() else p)
    objective.load_state_dict(state["objective"], strict=strict)
    return {k: state[k] for k in ("epoch", "step_in_epoch", "global_step", "elapsed") if k in state}


# --------------------------------------------------------------------------- builders and CLI

_BUILDERS: dict[str, Callable] = {}


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


_SPEC_KEYS = {"builder", "builder_args", "train", "run_dir", "extra", "name"}


def _apply_override(spec: dict, item: str) -> None:
    key, eq, raw = item.partition("=")
    if not eq:
        raise ValueError(f"--set expects KEY=VALUE (e.g. train.epochs=3), got {item!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string
    *parents, last = key.split(".")
    d = spec
    for k in parents:
        d = d.setdefault(k, {})
    d[last] = value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hetskel.train",
        description="Train an objective described by a JSON file (works under torchrun for N GPUs).",
        epilog='config: {"builder": "module:function", "builder_args": {...}, "train": {TrainConfig fields}, '
               '"run_dir": "runs/x", "extra": {...}}.  Multi-GPU: torchrun --standalone --nproc_per_node 2 '
               f'-m hetskel.train --config run.json.  TrainConfig fields: {", ".join(TrainConfig.field_names())}')
    ap.add_argument("--config", required=True, help="JSON run description")
    ap.add_argument("--run-dir", help="overrides the config's run_dir")
    ap.add_argument("--overwrite", action="store_true", help="replace the run folder's files")
    ap.add_argument("--no-resume", action="store_true", help="error instead of resuming an existing run")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config entry, JSON-valued, e.g. train.epochs=3 (repeatable)")
    args = ap.parse_args(argv)
    try:
        spec = load_json(args.config)
        unknown = set(spec) - _SPEC_KEYS
        if unknown or "builder" not in spec:
            raise ValueError(f"{args.config}: unknown keys {sorted(unknown)} or missing 'builder'; "
                             f"valid keys: {sorted(_SPEC_KEYS)}")
        for item in args.set:
            _apply_override(spec, item)
        cfg = TrainConfig.from_dict(spec.get("train", {}))
        dist.setup_distributed(device=cfg.device)
        seed_everything(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        objective, dataset = resolve_builder(spec["builder"])(**spec.get("builder_args", {}))
        extra = {"builder": spec["builder"], "builder_args": spec.get("builder_args", {}), **spec.get("extra", {})}
        result = train(objective, dataset, cfg, run_dir=args.run_dir or spec.get("run_dir"),
                       resume=not args.no_resume, overwrite=args.overwrite, extra_config=extra,
                       name=spec.get("name", "train"))
    except (ValueError, TypeError, RunDirExists, NonFiniteLossError, FileNotFoundError) as e:
        print(f"hetskel.train: error: {e}", file=sys.stderr)
        dist.cleanup()
        return 1
    if dist.is_main():
        print(json.dumps({"run_dir": str(result.run_dir), "steps": result.steps,
                          "wall_time": round(result.wall_time, 2), "final": result.final}))
    dist.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
