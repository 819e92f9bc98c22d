"""The weak-perspective camera between a 2D pose and its lifted 3D pose: fitted per person, used to
place image-plane motion (the 2D root trajectory) in the lifted frame and to pin lifted joints onto
their observed image positions (``HeteroProcessor``'s ``trajectory`` and ``keep_observed``).

    >>> W = fit_camera(pose2d, lifted)          # (N, M, 3, 2): pose2d ~ lifted @ W
    >>> traj3d = traj2d @ camera_pinv(W)        # minimum-norm 3D motion that reprojects onto traj2d
"""
from __future__ import annotations

import torch

from hetskel.hetero.lifter import frame_valid

Tensor = torch.Tensor


def fit_camera(pose2d: Tensor, lifted: Tensor, eps: float = 1e-4) -> Tensor:
    """Per person, the weak-perspective camera ``W (N, M, 3, 2)`` with ``pose2d ~ lifted @ W``: least
    squares over the person's valid frames and joints. pose2d ``(N, M, T, V, 2)``, lifted
    ``(N, M, T, V, 3)`` (same joints, pose frame)."""
    w = frame_valid(pose2d)[..., None, None].to(lifted.dtype)
    L = (lifted * w).flatten(-3, -2)                                   # (N, M, T*V, 3)
    Y = (pose2d * w).flatten(-3, -2)                                   # (N, M, T*V, 2)
    A = L.transpose(-1, -2) @ L
    A = A + eps * (A.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] + 1) * torch.eye(3, dtype=A.dtype, device=A.device)
    return torch.linalg.solve(A, L.transpose(-1, -2) @ Y)              # (N, M, 3, 2)


def camera_pinv(W: Tensor, eps: float = 1e-4) -> Tensor:
    """``pinv(W)`` ``(N, M, 2, 3)`` of ``fit_camera``'s ``W``: the minimum-norm 3D displacement
    ``d @ pinv(W)`` reprojects exactly onto the image displacement ``d``."""
    G = W.transpose(-1, -2) @ W
    G = G + eps * (G.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] + 1e-6) * torch.eye(2, dtype=G.dtype, device=G.device)
    return torch.linalg.solve(G, W.transpose(-1, -2))


def keep_observed_2d(lifted: Tensor, pose2d: Tensor, W: Tensor, Pinv: Tensor) -> Tensor:
    """Move each lifted joint so that it reprojects exactly onto its observed 2D position, keeping
    the lifter's depth: ``X + (u - X @ W) @ pinv(W)``. lifted ``(N, M, T, V, 3)``, pose2d
    ``(N, M, T, V, 2)``, W ``(N, M, 3, 2)``, Pinv ``(N, M, 2, 3)``. The gradient reaches only the
    lifter's component along the viewing ray."""
    W, Pinv = W[:, :, None, None], Pinv[:, :, None, None]            # broadcast over T, V
    reproj = (lifted[..., None] * W).sum(-2)                           # (N, M, T, V, 2)
    return lifted + ((pose2d - reproj)[..., None] * Pinv).sum(-2)
