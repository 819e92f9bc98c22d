"""Where a training run stands, on disk and in memory: the run folder (config.json, metrics.jsonl,
``latest.pt``, ``epoch_XXXX.pt``), checkpoints, and every RNG stream a checkpoint carries.

A checkpoint holds the state dicts of the objective, optimizer, scheduler (and AMP scaler), the
position (epoch, step in epoch, global step, elapsed seconds), the epoch's running loss sums, and
one RNG record per rank (torch CPU/CUDA, numpy, python, and every ``torch.Generator`` of the
dataset or the objective's modules), all as tensors and plain values so it loads with
``weights_only=True``. Restoring all of it makes a resumed run draw the same batches and the same
augmentation randomness as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hetskel.io import (
    RunDirExists,
    check_replaceable,
    load_checkpoint,
    load_json,
    make_run_dir,
    read_jsonl,
    resolve_run_dir,
    save_checkpoint,
    save_json,
)
from hetskel.train import dist

__all__ = ["RunInfo", "capture_rng", "find_generators", "load_weights", "open_run", "read_checkpoint",
           "read_run", "remove_torn_temporaries", "restore_rng", "run_identity", "seed_everything",
           "seed_generators", "truncate_metrics", "write_checkpoint"]

# config.json fields that do not change what a run computes: a resumed run may change them
_COSMETIC = {"progress", "log_every"}
_OWN_FILES = ("config.json", "metrics.jsonl", "latest.pt")
# the temporary file hetskel.io (and truncate_metrics) writes before os.replace-ing one of the run's
# own files: "<name>.tmp<pid>". Nothing else in a run folder is ever matched (a user's "notes.tmp1" stays).
_TORN = re.compile(r"(?:config\.json|metrics\.jsonl|latest\.pt|epoch_\d+\.pt)\.tmp\d+")


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
    """Inverse of ``capture_rng``; generators the record does not name are left as they are."""
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


# --------------------------------------------------------------------------- checkpoints


def write_checkpoint(files: list[Path], stateful: Mapping[str, Any], meta: Mapping[str, Any],
                     generators: Mapping[str, torch.Generator], device: torch.device) -> None:
    """Collective (every rank calls it): gathers each rank's RNG states, then rank 0 writes
    ``{key: obj.state_dict() for stateful} | meta | {"rng": [per-rank states]}`` atomically to
    every file in ``files``."""
    rngs = dist.all_gather_object(capture_rng(generators, device))
    if dist.is_main():
        state = {k: obj.state_dict() for k, obj in stateful.items()} | dict(meta) | {"rng": rngs}
        for f in files:
            save_checkpoint(f, state)
    dist.barrier()


def read_checkpoint(path, stateful: Mapping[str, Any], generators: Mapping[str, torch.Generator],
                    device: torch.device, seed: int) -> dict:
    """Load a ``write_checkpoint`` file into ``stateful`` and this rank's RNG streams; returns the
    whole checkpoint dict (position keys: ``epoch``, ``step_in_epoch``, ``global_step``, ``elapsed``,
    optional ``epoch_sums``).

    Saved by the same number of ranks: each rank gets its own RNG record back. Otherwise batches
    stay exact (they depend only on seed and epoch) but augmentation draws cannot: every stream is
    reseeded from ``seed``, the global step and the rank."""
    state = load_checkpoint(path)
    missing = [k for k in stateful if k not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}: it was not written by this training setup")
    for k, obj in stateful.items():
        obj.load_state_dict(state[k])
    rank, rngs = dist.rank(), state["rng"]
    if len(rngs) == dist.world_size():
        restore_rng(rngs[rank], generators, device)
    else:
        seed_everything(seed + 1000 * state["global_step"] + rank)
        seed_generators(generators, seed + 1000 * state["global_step"], rank)
    return state


# --------------------------------------------------------------------------- run folder


def _resolve(run_dir) -> Path:
    return resolve_run_dir(run_dir)  # relative to the project root, as hetskel.io.make_run_dir takes it


def _normalise(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))  # tuples -> lists, paths -> strings


def run_identity(train_config: Mapping, extra_config: Mapping | None, objective: nn.Module, dataset) -> dict:
    """What makes two runs "the same run" (config.json minus ``meta``), as plain JSON values."""
    return _normalise({"train": dict(train_config), "extra": dict(extra_config or {}),
                       "objective": type(objective).__qualname__,
                       "dataset": {"type": type(dataset).__qualname__, "len": len(dataset)}})


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


def remove_torn_temporaries(folder: Path) -> list[Path]:
    """Delete the ``<own file>.tmp<pid>`` files a process killed in the middle of a write left in the
    run folder ``folder``; returns them. Such a file is never whole and never read: the write it
    belonged to had not reached its ``os.replace``, so the target still holds the previous version.
    Rank 0 only, before training starts (no write of this run can be in flight)."""
    torn = sorted(f for f in Path(folder).iterdir() if _TORN.fullmatch(f.name) and f.is_file())
    for f in torn:
        f.unlink(missing_ok=True)
    return torn


def _prepare_run_dir(run_dir, run_config: dict, resume: bool, overwrite: bool, name: str):
    """Rank 0 only. Returns (folder, checkpoint to resume from or None)."""
    if run_dir:
        p = _resolve(run_dir)
        if overwrite and p.exists():
            check_replaceable(p)  # overwrite clears only a folder hetskel made, never a user's own
            remove_torn_temporaries(p)
            for f in list(p.glob("epoch_*.pt")) + [p / n for n in _OWN_FILES]:
                f.unlink(missing_ok=True)
        elif (p / "config.json").is_file():
            diff = _config_diff(load_json(p / "config.json"), run_config)
            if diff:
                # the advice first: a shortened one-line error keeps it, and loses only the diff's tail
                raise RunDirExists(f"run folder {p} holds a different run; choose a new run_dir or pass "
                                   f"overwrite=True to replace it. Differences: {'; '.join(diff[:6])}")
            if not resume:
                raise RunDirExists(f"run folder {p} already holds this run; pass resume=True to continue it "
                                   f"or overwrite=True to start it again")
            remove_torn_temporaries(p)  # left by a kill during a checkpoint/metrics write
            latest = p / "latest.pt"
            if latest.is_file():
                return p, latest
            if (p / "metrics.jsonl").is_file():  # stopped before its first checkpoint: start over, keep events
                truncate_metrics(p / "metrics.jsonl", 0, 0)
            return p, None
    p = make_run_dir(run_dir, name=name, overwrite=overwrite)
    save_json(p / "config.json", run_config)
    (p / "metrics.jsonl").unlink(missing_ok=True)
    return p, None


def open_run(run_dir, run_config: dict, resume: bool, overwrite: bool, name: str) -> tuple[Path, str | None]:
    """Collective: rank 0 creates, checks or clears the run folder (config.json gets ``run_config``
    plus a ``meta`` entry) and every rank gets ``(folder, checkpoint to resume from or None)``.
    A refusal (``RunDirExists``) is raised on every rank, so no rank waits on a barrier alone."""
    outcome: Any = None
    if dist.is_main():
        meta = {"world_size": dist.world_size(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            path, ckpt = _prepare_run_dir(run_dir, {**run_config, "meta": meta}, resume, overwrite, name)
            outcome = ("ok", str(path), str(ckpt) if ckpt else None)
        except RunDirExists as e:
            outcome = ("error", str(e), None)
    outcome = dist.broadcast_object(outcome)
    if outcome[0] == "error":
        raise RunDirExists(outcome[1])
    return Path(outcome[1]), outcome[2]


def truncate_metrics(path: Path, epoch: int, global_step: int) -> None:
    """Drop records written after the checkpoint we resume from (they will be written again)."""
    keep = [r for r in read_jsonl(path)
            if "event" in r
            or (r.get("kind") == "step" and r.get("global_step", 0) <= global_step)
            or (r.get("kind") == "epoch" and r.get("epoch", 0) <= epoch)]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- reading runs back


@dataclass
class RunInfo:
    run_dir: Path
    config: dict
    metrics: list                                   # every metrics.jsonl record, in order
    steps: list = field(default_factory=list)       # the ``kind == "step"`` records
    epochs: list = field(default_factory=list)      # the ``kind == "epoch"`` records
    events: list = field(default_factory=list)      # resumed / nonfinite_* / done
    latest: Path | None = None
    checkpoints: list = field(default_factory=list)  # epoch_XXXX.pt, sorted


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
