"""``fit()``: the one optimisation loop every trainer of the package goes through.

    def batches(epoch):                         # the caller's data, drawn lazily, one epoch per call
        for idx in torch.randperm(n, generator=g).split(64):
            yield idx                           # anything: fit only hands it to loss_fn
    fit(opt, lambda idx: F.cross_entropy(head(x[idx]), y[idx]), batches, epochs=10,   # x (N, D), y (N,)
        scheduler=sched, schedule="epoch", on_epoch_end=lambda epoch: accs.append(evaluate()))

fit owns the iteration and the update: for each epoch, for each batch of ``batches(epoch)``,
``out = loss_fn(batch)`` (a scalar loss tensor, or a mapping holding one under ``"loss"`` plus
whatever the caller wants back), ``zero_grad``, ``backward``, optional clipping, ``step``, optional
per-step scheduler step, then ``on_step(out)``; after the epoch's last batch an optional per-epoch
scheduler step, then ``on_epoch_end(epoch)``, which stops the run by returning something true.
The caller keeps what is its own: how batches are drawn (seeded generators, skipped short
batches, ``model.train()`` before an epoch), the loss, evaluation, history and checkpoints.

Nothing here draws random numbers or touches the data, and the order of operations is fixed
(forward, zero_grad, backward, [unscale, clip], step, [scheduler], hooks), so a loop rewritten
onto fit reproduces its old numbers bit for bit. ``batches(epoch)`` is consumed lazily: a
generator that draws its permutation or augments inside draws at the same moment as the
hand-written loop did, and may read state the hooks update (e.g. stop when a step budget is met).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["NonFiniteLossError", "fit"]


class NonFiniteLossError(FloatingPointError):
    """A loss term (or the weights) became NaN/inf. The message says where (epoch, step, term).
    ``hetskel.train.loop.train`` raises it too, after keeping the run folder's last good
    ``latest.pt`` and writing a ``nonfinite_loss`` event to metrics.jsonl."""


def fit(optimizer: torch.optim.Optimizer, loss_fn: Callable[[Any], Any], batches: Callable[[int], Iterable],
        epochs: int = 1, *, start_epoch: int = 0, scheduler=None, schedule: str = "step",
        grad_clip: float | None = None, params: Iterable[torch.Tensor] | None = None,
        scaler: torch.amp.GradScaler | None = None, check_finite: bool = False,
        on_step: Callable[[Any], None] | None = None,
        on_epoch_end: Callable[[int], Any] | None = None) -> int:
    """Run epochs ``start_epoch .. epochs-1`` of ``batches(epoch)``; return the optimizer steps done.

    ``loss_fn(batch)`` returns a scalar loss or a mapping with a scalar ``"loss"``; that return value
    is what ``on_step(out)`` receives. ``scheduler`` steps after every optimizer step
    (``schedule="step"``) or after every epoch (``"epoch"``, before ``on_epoch_end``). ``grad_clip``
    clips the global gradient norm of ``params`` (default: the optimizer's parameters). ``scaler``
    (an AMP ``GradScaler``, enabled or not) scales the backward pass, unscales before clipping and
    steps the optimizer. ``check_finite`` raises ``NonFiniteLossError`` on a NaN/inf loss before it
    reaches the weights (one host sync per step, hence off by default). ``on_epoch_end(epoch)``
    returning something true stops after that epoch.
    """
    if schedule not in ("step", "epoch"):
        raise ValueError(f"schedule must be 'step' or 'epoch', got {schedule!r}")
    params = None if params is None else list(params)  # an iterator would be spent by the first clip
    steps = 0
    for epoch in range(start_epoch, epochs):
        for step, batch in enumerate(batches(epoch)):
            out = loss_fn(batch)
            loss = out["loss"] if isinstance(out, Mapping) else out
            if check_finite and not bool(torch.isfinite(loss).all()):
                raise NonFiniteLossError(f"non-finite loss ({loss.detach().flatten()[:1].item()}) at epoch {epoch}, "
                                         f"step {step} (0-based, batches of this epoch drawn in this call); "
                                         "the weights were not updated with it")
            # zero_grad after the forward pass, as every loop here did; set_to_none frees the grads
            optimizer.zero_grad(set_to_none=True)
            (loss if scaler is None else scaler.scale(loss)).backward()
            if grad_clip:
                if scaler is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                if params is None:
                    params = [p for group in optimizer.param_groups for p in group["params"]]
                nn.utils.clip_grad_norm_(params, grad_clip)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
                scaler.update()
            if scheduler is not None and schedule == "step":
                scheduler.step()
            steps += 1
            if on_step is not None:
                on_step(out)
        if scheduler is not None and schedule == "epoch":
            scheduler.step()
        if on_epoch_end is not None and on_epoch_end(epoch):
            break
    return steps
