"""Distributed helpers: one code path for 1 and N processes.

Every function here works in a plain single process (no ``torch.distributed`` initialised): the
rank is 0, the world is 1, gathers are identities and barriers do nothing. Under ``torchrun`` the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` are set and :func:`setup_distributed` joins the process group.

:func:`all_gather_with_grad` is what makes a multi-GPU loss equal to the single-GPU loss on the
same global batch (UmURL gathers projected features from every GPU before its variance/covariance
terms): torch's differentiable all-gather concatenates every rank's shard, and its backward hands
each rank the gradient of its own shard, summed over ranks (see the function for why the sum is
right under DDP).
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group is initialised (and has more than zero members)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank on this node: ``LOCAL_RANK`` from torchrun, else 0."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 writes files and prints; the others stay silent."""
    return rank() == 0


def env_requests_distributed() -> bool:
    """True when torchrun (or a user) set ``RANK`` and ``WORLD_SIZE`` in the environment."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup_distributed(backend: str | None = None, device: str | torch.device | None = None) -> torch.device:
    """Join the process group if the environment asks for one, and return this process's device.

    - ``RANK``/``WORLD_SIZE`` set (torchrun): ``init_process_group`` with ``backend`` (default
      ``nccl`` when CUDA is available, else ``gloo``) and, on CUDA, ``cuda:<LOCAL_RANK>`` is made
      the current device. Calling it again once initialised only returns the device.
    - otherwise: no process group; the device is ``device`` if given, else ``cuda`` when available,
      else ``cpu``.

    ``device`` may be ``"auto"`` (same as None) or an explicit device; under torchrun an explicit
    ``"cpu"`` forces CPU (and the gloo backend).
    """
    want = None if device in (None, "auto") else torch.device(device)
    if env_requests_distributed():
        use_cuda = torch.cuda.is_available() and (want is None or want.type == "cuda")
        if use_cuda:
            dev = torch.device("cuda", local_rank())
            torch.cuda.set_device(dev)  # before init so NCCL binds each rank to its own GPU
        else:
            dev = torch.device("cpu")
        if not is_distributed():
            backend = backend or ("nccl" if use_cuda else "gloo")
            kwargs: dict[str, Any] = {}
            if use_cuda and backend == "nccl":
                kwargs["device_id"] = dev  # lets NCCL set up eagerly and silences a barrier warning
            try:
                dist.init_process_group(backend=backend, **kwargs)
            except TypeError:  # an older torch without device_id
                dist.init_process_group(backend=backend)
        return dev
    if want is not None:
        return want
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def cleanup() -> None:
    """Leave the process group (no-op when there is none)."""
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any = None, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (picklable objects; identity when single)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` when single)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_(x: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``sum``, ``max``, ``min`` or ``mean``); identity when single."""
    if is_distributed():
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN,
               "mean": dist.ReduceOp.SUM}
        dist.all_reduce(x, op=ops[op])
        if op == "mean":
            x /= world_size()
    return x


def _differentiable_all_gather(x: torch.Tensor) -> torch.Tensor:
    """torch's all-gather with autograd (its backward reduce-scatters the gradient, summed), on dim 0.

    Recent torch marks ``torch.distributed.nn.functional.all_gather`` deprecated in favour of the
    private functional collectives; it is still the public, documented differentiable gather, so we
    use it and silence only that notice."""
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*all_gather.*")
        return torch.cat(all_gather(x.contiguous()), dim=0)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` per rank -> ``(world*N, ...)`` rank-major, differentiable w.r.t. the local shard.

    Every rank must pass the same ``N`` (the trainer's per-rank batches are equal by construction).

    Why the backward sums over ranks (torch's all-gather does so): each rank computes the same
    global loss ``L`` from the gathered tensor, so rank ``r`` sees ``dL/dx_j`` for every shard
    ``j``, but only shard ``r`` is connected to its parameters. Summing over ranks gives
    ``world * dL/dx_r`` on rank ``r``; DDP then averages parameter gradients over ranks, which
    divides the ``world`` back out, so the update equals the single-process update on the whole
    global batch. Identity when not distributed.
    """
    if not is_distributed() or dist.get_world_size() == 1:
        return x
    return _differentiable_all_gather(x)


def all_gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` -> ``(world*N, ...)`` without gradient (evaluation, logging)."""
    if not is_distributed() or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def epoch_shard(n: int, epoch: int, seed: int, rank_: int = 0, world: int = 1, shuffle: bool = True) -> torch.Tensor:
    """This rank's sample indices for one epoch, exactly as ``DistributedSampler(range(n), world,
    rank_, shuffle, seed).set_epoch(epoch)`` yields them (drop_last=False), as a LongTensor on CPU.

    The permutation is ``randperm(n)`` from a generator seeded with ``seed + epoch`` (no state to
    checkpoint: any epoch can be regenerated), padded by wrapping to a multiple of ``world``, then
    rank-strided. So with per-rank batches of ``B/world``, the union of the ranks' k-th batches is
    the single-process k-th batch of size ``B``. Returns ``(ceil(n/world),)``.
    """
    if shuffle:
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        perm = torch.randperm(n, generator=g)
    else:
        perm = torch.arange(n)
    per_rank = -(-n // world)
    total = per_rank * world
    if total > n:  # wrap around, as the sampler does, so every rank has the same count
        perm = perm.repeat(-(-total // n))[:total]
    return perm[rank_:total:world]
