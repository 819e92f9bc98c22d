"""UmURL's consistency and variance/covariance losses.

With ``K`` modalities, per-modality projectors ``P_k``, single-stream representations ``y_k`` and the
early-fused representation ``y_u`` (each from its own augmented view, as in UmURL)::

    z_k  = P_k(y_k)          z_uk = P_k(y_u)                      all (B, D)
    intra = sum_k MSE(z_k, z_uk)                                  (fused stream decomposes into each modality)
    inter = sum_k MSE(z_k, mean_j z_j)                            (modalities agree with their centre)
    vc    = sum over all 2K projected tensors of vc_reg(z)        (UmURL sums it per tensor)
    loss  = lambda * (intra + inter) + vc                         (UmURL: lambda = 5)

``vc_reg(x) = 5 * mean(relu(1 - sqrt(var(x) + 1e-4))) + sum(offdiag(cov(x))^2) / D`` is VICReg's
variance and covariance terms with UmURL's weights (variance 5, covariance 1, covariance divided
by D). ``MSE`` is the element mean (``nn.MSELoss()``).

Under DDP every projected tensor is first all-gathered with gradient
(``hetskel.dist.all_gather_with_grad``), as UmURL does, so the batch statistics in ``vc_reg`` are
over the global batch and the loss equals the single-process loss on that batch. Losses are
computed in float32 even under autocast: the covariance of a 4096-d half-precision batch can
overflow.

With one modality, ``inter`` is identically zero and ``intra`` compares the single-stream and the
fused-stream projections of two different views: the objective becomes a two-view invariance
term plus variance/covariance regularisation (VICReg-like), which is what UmURL's formula gives
for ``K = 1``.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from hetskel.train import dist


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The ``D*(D-1)`` off-diagonal entries of a square ``(D, D)`` matrix, flattened."""
    d = m.shape[0]
    if m.dim() != 2 or m.shape[1] != d:
        raise ValueError(f"off_diagonal needs a square matrix, got shape {tuple(m.shape)}")
    # drop the last element, view rows of d+1: each row then starts with a diagonal entry
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def vc_reg(x: torch.Tensor, std_weight: float = 5.0, eps: float = 1e-4) -> torch.Tensor:
    """Variance + covariance regulariser of a batch of vectors ``x`` ``(B, D)`` -> scalar.

    ``std_weight * mean_d relu(1 - sqrt(var_d + eps)) + sum_{i != j} cov_ij^2 / D`` with unbiased
    variance/covariance over the batch. Collapsed features (all rows equal) give about
    ``std_weight * (1 - sqrt(eps))``; decorrelated unit-variance features give about 0.
    """
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"vc_reg needs (B >= 2, D) features, got shape {tuple(x.shape)}")
    x = x.float()
    b, d = x.shape
    std = torch.sqrt(x.var(dim=0) + eps)
    std_loss = F.relu(1.0 - std).mean()
    z = x - x.mean(dim=0)
    cov = (z.T @ z) / (b - 1)
    cov_loss = off_diagonal(cov).pow(2).sum() / d
    return std_weight * std_loss + cov_loss


def intra_loss(z_single: Mapping[str, torch.Tensor], z_fused: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sum_k MSE(z_single[k], z_fused[k])`` (the fused stream seen through projector k)."""
    return sum(F.mse_loss(z_single[k].float(), z_fused[k].float()) for k in z_single)


def inter_loss(z_single: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sum_k MSE(z_k, mean_j z_j)``; zero for one modality."""
    zs = [z.float() for z in z_single.values()]
    center = torch.stack(zs).mean(0)
    return sum(F.mse_loss(z, center) for z in zs)


def umurl_loss(z_single: Mapping[str, torch.Tensor], z_fused: Mapping[str, torch.Tensor],
               lambda_: float = 5.0, gather: bool = True) -> dict[str, torch.Tensor]:
    """The UmURL objective from projected features.

    z_single: ``{k: P_k(y_k)}`` ``(N, D)`` per modality (single streams).
    z_fused:  ``{k: P_k(y_fused)}`` ``(N, D)``, same keys.
    gather:   all-gather every tensor across DDP ranks first (identity in one process).
    Returns ``{"loss", "intra", "inter", "vc"}`` scalars; ``loss = lambda_*(intra+inter) + vc``.
    """
    if not z_single:
        raise ValueError("umurl_loss needs at least one modality")
    if set(z_single) != set(z_fused):
        raise ValueError(f"umurl_loss: single-stream keys {sorted(z_single)} differ from fused keys {sorted(z_fused)}")
    shapes = {tuple(z.shape) for z in (*z_single.values(), *z_fused.values())}
    if len(shapes) != 1:
        raise ValueError(f"umurl_loss: projected features must share one (N, D) shape, got {sorted(shapes)}")
    if gather:
        z_single = {k: dist.all_gather_with_grad(z) for k, z in z_single.items()}
        z_fused = {k: dist.all_gather_with_grad(z) for k, z in z_fused.items()}
    intra = intra_loss(z_single, z_fused)
    inter = inter_loss(z_single)
    vc = sum(vc_reg(z) for z in (*z_single.values(), *z_fused.values()))
    return {"loss": lambda_ * (intra + inter) + vc, "intra": intra, "inter": inter, "vc": vc}


def intra_view_loss(z_a: Mapping[str, torch.Tensor], z_b: Mapping[str, torch.Tensor], lambda_: float = 5.0,
                    gather: bool = True) -> torch.Tensor:
    """Within-modality VICReg term (``Pretrainer(objective="umurl+intra_view")``): two augmented
    views of the same modality made to agree, each kept spread out and decorrelated::

        sum_k lambda_ * MSE(z_a[k], z_b[k]) + vc_reg(z_a[k]) + vc_reg(z_b[k])

    ``z_a[k]``, ``z_b[k]``: ``(N, D)`` projections of modality k's single stream on two views (its own
    projector head, not UmURL's ``P_k``, so the cross-modal terms do not constrain it). Unlike
    ``intra``/``inter``, nothing here asks modality k to agree with another modality: it rewards what
    k alone carries."""
    if set(z_a) != set(z_b) or not z_a:
        raise ValueError(f"intra_view_loss: keys {sorted(z_a)} and {sorted(z_b)} must be equal and non-empty")
    total = 0.0
    for k in z_a:
        a, b = z_a[k], z_b[k]
        if gather:
            a, b = dist.all_gather_with_grad(a), dist.all_gather_with_grad(b)
        total = total + lambda_ * F.mse_loss(a.float(), b.float()) + vc_reg(a) + vc_reg(b)
    return total


def standardized_trajectories(x: torch.Tensor, rel_eps: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Each joint's trajectory of ``x`` ``(N, M, T, V, C)`` made zero-mean over its frames and divided
    by its own spread (the RMS over frames and channels, plus ``rel_eps`` times the person's mean
    spread so that a still joint is not blown up) -> ``(target (N, M, T, V, C), frame mask (N, M, T))``.

    Why per joint: a head turn moves COCO's face points a few centimetres while an arm swing moves
    the wrist half a metre; in raw coordinates a reconstruction loss is all arm, standardised each
    joint's own motion counts the same (as MAE's per-patch normalised targets). Absent frames
    (every joint zero) are left out of the statistics and of the mask. A target, so no gradient.
    """
    x = x.detach().float()
    frames = (x != 0).flatten(-2).any(-1)                                    # (N, M, T)
    w = frames[..., None, None].to(x.dtype)
    count = w.sum(2, keepdim=True).clamp_min(1.0)                            # (N, M, 1, 1, 1)
    mean = (x * w).sum(2, keepdim=True) / count
    centred = (x - mean) * w
    spread = (centred.square().sum(2, keepdim=True).mean(-1, keepdim=True) / count).sqrt()  # (N, M, 1, V, 1)
    floor = rel_eps * spread.mean(-2, keepdim=True) + 1e-6
    return centred / (spread + floor), frames


def reconstruction_loss(pred: torch.Tensor, x: torch.Tensor, rel_eps: float = 0.05) -> torch.Tensor:
    """Mean squared error between ``pred`` and ``standardized_trajectories(x)`` over present frames
    of ``x`` ``(N, M, T, V, C)``; ``pred`` has the same shape. Float32, scalar; gradient to ``pred`` only
    (the target is the data, as in MAE; it would otherwise pull the lifter and prompts towards it)."""
    target, frames = standardized_trajectories(x, rel_eps)
    err = (pred.float() - target).square().mean((-1, -2))                    # (N, M, T)
    return (err * frames).sum() / frames.sum().clamp_min(1)
