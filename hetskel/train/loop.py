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
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hetskel.io import RunDirExists, append_jsonl, read_jsonl
from hetskel.train import dist
from hetskel.train.config import (
    TrainConfig,
    load_run_spec,
    make_optimizer,
    make_scheduler,
    resolve_builder,
)
from hetskel.train.dist import epoch_shard
from hetskel.train.fit import NonFiniteLossError, fit
from hetskel.train.state import (
    find_generators,
    open_run,
    read_checkpoint,
    run_identity,
    seed_everything,
    truncate_metrics,
    write_checkpoint,
)


@dataclass
class TrainResult:
    run_dir: Path
    final: dict            # last epoch record (or last step record when the run stopped mid-epoch)
    history: list          # every metrics.jsonl record of the run, in order
    steps: int             # global optimizer steps done
    wall_time: float       # seconds, summed over resumed sessions
    samples_per_s: float   # global samples per second in this session
    checkpoint: Path | None = None


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
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    amp_dtype = cfg.amp_dtype(device)  # raises before any file is written

    run_config = run_identity(cfg.to_dict(), extra_config, objective, dataset)
    path, ckpt_path = open_run(run_dir, run_config, resume, overwrite, name)
    metrics_path = path / "metrics.jsonl"

    objective.to(device)
    if dist.is_distributed() and cfg.sync_batchnorm and device.type == "cuda":
        # swaps BatchNorm children in place, keeping the same Parameter objects and state_dict keys
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
    dataset, index_device = _place_dataset(dataset, device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg, params)
    scheduler = make_scheduler(cfg, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    stateful = {"objective": objective, "optimizer": optimizer, "scheduler": scheduler}
    if scaler.is_enabled():
        stateful["scaler"] = scaler
    generators = find_generators(objective, dataset, device)

    epoch = step_in_epoch = global_step = 0
    elapsed_before, epoch_sums = 0.0, None
    if ckpt_path:
        state = read_checkpoint(ckpt_path, stateful, generators, device, cfg.seed)
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        elapsed_before, epoch_sums = state["elapsed"], state.get("epoch_sums")
        if dist.is_main() and global_step < total_steps:  # a finished run rerun: nothing resumes, no event
            truncate_metrics(metrics_path, epoch, global_step)
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
        meta = {"epoch": ep, "step_in_epoch": st, "global_step": global_step, "elapsed": elapsed(),
                "world_size": world, "steps_per_epoch": steps_per_epoch, "train_config": run_config["train"]}
        if epoch_sums is not None:
            meta["epoch_sums"] = epoch_sums.detach().cpu()
        write_checkpoint(files, stateful, meta, generators, device)
        saved_at = global_step

    # fit() owns the steps (forward, zero_grad, scaled backward, unscale + clip, step, scheduler);
    # what follows is this trainer's own: which batches (the epoch's shard, from where a resumed
    # run stopped, until max_steps), device-side bookkeeping and logs after each step, epoch
    # records and checkpoints after each epoch
    lr_used = 0.0

    def epoch_batches(ep: int):
        shard = epoch_shard(n, ep, cfg.seed, rank, world).to(index_device)
        # read after every step (the generator is lazy): on_step advances step_in_epoch/global_step
        while step_in_epoch < steps_per_epoch and global_step < total_steps:
            idx = shard[step_in_epoch * per_rank:(step_in_epoch + 1) * per_rank]
            batch = dataset.get_batch(idx)
            if index_device != device:
                batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            yield batch

    def forward(batch) -> Mapping:
        nonlocal names, window_sum, bad_terms, epoch_sums, lr_used
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            out = model(batch)
        if names is None:
            names = _scalar_terms(out)
            window_sum = torch.zeros(len(names), device=device)
            bad_terms = torch.zeros(len(names), dtype=torch.bool, device=device)
            if epoch_sums is None or epoch_sums.numel() != len(names):
                epoch_sums = torch.zeros(len(names), device=device)
            epoch_sums = epoch_sums.to(device)
        lr_used = optimizer.param_groups[0]["lr"]  # the lr this step uses (a Python float: no sync)
        return out

    def after_step(out: Mapping) -> None:
        nonlocal bad_step, bad_terms, window_n, step_in_epoch, global_step, session_steps, t_window
        vals = torch.stack([torch.as_tensor(out[k], device=device).detach().float().reshape(())
                            for k in names])
        bad_now = ~torch.isfinite(vals)
        first = bad_now.any() & (bad_step < 0)  # device-side bookkeeping: no sync here
        bad_step = torch.where(first, gs_dev, bad_step)
        bad_terms = torch.where(first, bad_now, bad_terms)
        gs_dev.add_(1)
        window_sum.add_(vals)
        epoch_sums.add_(vals)
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

    def end_epoch(ep: int) -> bool:
        nonlocal epoch, step_in_epoch
        if step_in_epoch < steps_per_epoch:
            return True  # max_steps reached mid-epoch
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
        return global_step >= total_steps

    pbar = None
    if cfg.progress and dist.is_main():
        # plain tqdm (never tqdm.auto): one text bar that works in terminals, papermill logs and notebooks
        from tqdm import tqdm
        pbar = tqdm(total=total_steps, initial=global_step, desc=path.name, unit="step", dynamic_ncols=True)
    try:
        if global_step < total_steps:  # else a finished run resumed: nothing to do
            fit(optimizer, forward, epoch_batches, cfg.epochs, start_epoch=epoch, scheduler=scheduler,
                grad_clip=cfg.grad_clip, params=params, scaler=scaler, on_step=after_step, on_epoch_end=end_epoch)
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


def _build(spec: dict) -> tuple[nn.Module, object]:
    """Call the run description's builder; anything but an ``(objective, dataset)`` pair is an error
    naming the builder (not ``not enough values to unpack``)."""
    name, args = spec["builder"], spec.get("builder_args", {})
    if not isinstance(args, dict):
        raise TypeError(f"builder_args must be an object of keyword arguments, got {type(args).__name__}")
    built = resolve_builder(name)(**args)
    if not isinstance(built, (tuple, list)) or len(built) != 2:
        got = f"a {len(built)}-tuple" if isinstance(built, (tuple, list)) else f"a {type(built).__name__}"
        raise ValueError(f"builder {name!r} must return (objective, dataset), got {got}")
    return tuple(built)


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
        spec = load_run_spec(args.config, args.set)
        cfg = TrainConfig.from_dict(spec.get("train", {}))
        dist.setup_distributed(device=cfg.device)
        seed_everything(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        objective, dataset = _build(spec)
        extra = {"builder": spec["builder"], "builder_args": spec.get("builder_args", {}), **spec.get("extra", {})}
        result = train(objective, dataset, cfg, run_dir=args.run_dir or spec.get("run_dir"),
                       resume=not args.no_resume, overwrite=args.overwrite, extra_config=extra,
                       name=spec.get("name", "train"))
    except (ValueError, TypeError, RunDirExists, NonFiniteLossError, OSError) as e:
        # one short escaped line (OSError: disk full, permission, a path under a file; the atomic
        # writes have removed their temporaries). Exit 2 for what the user can fix (config, paths,
        # an existing run), 1 for a run that failed by itself (a non-finite loss), as torchrun
        # reports a failed rank
        from hetskel.io import error_message
        print(f"hetskel.train: error: {error_message(e)}", file=sys.stderr)
        dist.cleanup()
        return 1 if isinstance(e, NonFiniteLossError) else 2
    if dist.is_main():
        print(json.dumps({"run_dir": str(result.run_dir), "steps": result.steps,
                          "wall_time": round(result.wall_time, 2), "final": result.final}))
    dist.cleanup()
    return 0

