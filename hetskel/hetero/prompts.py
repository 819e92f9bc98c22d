"""Skeleton-specific prompts: put any source layout on the unified skeleton, filling the
joints it lacks.

    >>> uni = Unifier(("ntu25", "coco20"), mode="prompt")      # target: unify(sources) = unified30 order
    >>> u, real = uni(x_ntu, "ntu25")      # (N, M, T, 25, 3) -> (N, M, T, 30, 3), real: (30,) bool
    >>> x_back = uni.deunify(u, "ntu25")   # exactly x_ntu

How a missing joint is filled (``mode``):

``"prompt"``    the paper: one learnable vector per (source, missing joint), a static ``(k, C)``
                table broadcast over samples, persons and frames (ntu25 lacks the 5 face joints ->
                ``prompt_J (5, 3)``; coco20 lacks 10 hand/foot joints -> ``prompt_C (10, 3)``).
``"anchored"``  our extension: the same table, but as *offsets* added to an anchor joint the source
                does have, so the virtual joint moves with the body instead of floating at a fixed
                point of the pose frame. Anchor rule: the nearest real joint of the source in an
                undirected graph whose edges are the target layout's bones plus the bones of every
                source layout (so COCO's nose-shoulder edges connect the face even when the target's
                own tree does not), each of length 1, plus shorter ``PROXIMITY`` pairs (points that
                sit together on the body without a bone between them in any layout, e.g. nose and
                Kinect's head); ties go to a joint on the target's parent chain of the missing
                joint, then to the lower unified index. A missing joint with no reachable real joint
                falls back to a plain prompt. ``anchors(source)`` lists the choice (ntu25 + coco20:
                face -> head, Kinect head and neck -> nose, hands/tips/thumbs ->
                wrists, feet -> ankles).
``"zero"``      the ablation: missing joints are zeros.

Real joints are copied unchanged. Padding stays padding: a frame whose source joints are all zero
(absent person or padded frame) gets no prompt, so it remains all zeros. Inputs with fewer channels
than the unified skeleton (2D) are zero-padded on the channel axis (depth 0).
"""
from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from hetskel.layouts import Layout, LayoutError, Unified, get_layout, unify

Tensor = torch.Tensor
MODES = ("prompt", "anchored", "zero")
# anatomical neighbours no layout joins by a bone (anchoring only; shorter than a bone's 1.0)
PROXIMITY = (("nose", "head", 0.5), ("head", "head_top", 0.5), ("nose", "neck", 0.75))


def _target(sources: Sequence[Layout], target) -> Unified:
    """The ``Unified`` map from the sources onto ``target`` (None: their union)."""
    if target is None:
        return unify(sources)
    if isinstance(target, Unified):
        return target
    lay = get_layout(target)
    index, real = {}, {}
    for s in sources:
        lost = [j for j in s.joints if not lay.has(j)]
        if lost:
            raise LayoutError(f"target layout {lay.name!r} lacks joints {lost} of source {s.name!r}")
        index[s.name] = np.array([lay.index(j) for j in s.joints], dtype=np.int64)
        real[s.name] = np.array([s.has(j) for j in lay.joints])
    return Unified(lay, tuple(s.name for s in sources), index, real)


def _graph(target: Layout, sources: Sequence[Layout]) -> list[dict[int, float]]:
    """Undirected weighted adjacency over target indices: bones (1.0) and ``PROXIMITY`` pairs."""
    adj: list[dict[int, float]] = [{} for _ in target.joints]
    pairs = [(lay.joints[c], lay.joints[p], 1.0) for lay in (target, *sources) for c, p in lay.bones]
    pairs += list(PROXIMITY)
    for a, b, w in pairs:
        if target.has(a) and target.has(b):
            i, j = target.index(a), target.index(b)
            adj[i][j] = adj[j][i] = min(w, adj[i].get(j, w))
    return adj


def anchor_indices(target: Layout, sources: Sequence[Layout], real: np.ndarray, missing: Sequence[int]) -> list[int]:
    """The anchor (target index, or -1 if none) of each missing joint (module docstring's rule)."""
    adj = _graph(target, sources)
    out = []
    for m in missing:
        dist, heap = {m: 0.0}, [(0.0, m)]
        while heap:  # Dijkstra from the missing joint (a few dozen nodes)
            d, i = heapq.heappop(heap)
            if d > dist[i]:
                continue
            for j, w in adj[i].items():
                if d + w < dist.get(j, float("inf")):
                    dist[j] = d + w
                    heapq.heappush(heap, (d + w, j))
        cands = [j for j in dist if real[j] and j != m]
        if not cands:
            out.append(-1)
            continue
        best = min(dist[j] for j in cands)
        cands = sorted(j for j in cands if dist[j] == best)
        chain, p = [], target.parents[m]
        while p >= 0 and p not in chain:
            chain.append(p)
            p = target.parents[p]
        on_chain = [j for j in cands if j in chain]
        out.append(on_chain[0] if on_chain else cands[0])
    return out


class Unifier(nn.Module):
    """Source layouts -> one unified skeleton, missing joints filled per ``mode`` (module docstring).

    sources:    layout names (or ``Layout``s) this module will see.
    target:     None (``unify(sources)``), a layout name/``Layout`` containing every source joint, or a
                ``Unified``.
    mode:       ``"prompt"`` | ``"anchored"`` | ``"zero"``.
    init_scale: std of the normal initialisation of the prompt tables / offsets.
    channels:   channels of the unified skeleton (3).
    """

    def __init__(self, sources: Sequence = ("ntu25", "coco20"), target=None, mode: str = "prompt",
                 init_scale: float = 0.1, channels: int = 3):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Unifier: mode must be one of {MODES}, got {mode!r}")
        lays = [get_layout(s) for s in sources]
        if not lays or len({l.name for l in lays}) != len(lays):
            raise LayoutError(f"Unifier needs distinct source layouts, got {[l.name for l in lays]}")
        self.mode, self.channels = mode, int(channels)
        self.unified = _target(lays, target)
        self.layout = self.unified.layout
        self.sources = tuple(l.name for l in lays)
        self.prompts = nn.ParameterList()
        self._anchors: list[list[int]] = []
        for i, lay in enumerate(lays):
            real = np.asarray(self.unified.real_mask[lay.name])
            missing = np.flatnonzero(~real)
            self.register_buffer(f"index_{i}", torch.as_tensor(self.unified.index[lay.name]), persistent=False)
            self.register_buffer(f"real_{i}", torch.as_tensor(real), persistent=False)
            self.register_buffer(f"missing_{i}", torch.as_tensor(missing, dtype=torch.int64), persistent=False)
            anchors = anchor_indices(self.layout, lays, real, missing.tolist()) if mode == "anchored" else [-1] * len(missing)
            self._anchors.append(anchors)
            # rows of the gather that feeds "anchored": every joint reads itself, a missing one its anchor
            src = np.arange(self.layout.num_joints)
            has = np.zeros(self.layout.num_joints, dtype=bool)
            for m, a in zip(missing, anchors):
                if a >= 0:
                    src[m], has[m] = a, True
            self.register_buffer(f"anchor_src_{i}", torch.as_tensor(src), persistent=False)
            self.register_buffer(f"anchor_has_{i}", torch.as_tensor(has), persistent=False)
            table = torch.randn(len(missing), self.channels) * init_scale
            self.prompts.append(nn.Parameter(table, requires_grad=mode != "zero"))

    # -- lookups ---------------------------------------------------------------------------
    def _i(self, source) -> int:
        name = get_layout(source).name
        if name not in self.sources:
            raise LayoutError(f"Unifier has no source {name!r}; it was built for {list(self.sources)}")
        return self.sources.index(name)

    def real_mask(self, source) -> Tensor:
        """``(V_u,)`` bool: unified joints the source really has."""
        return getattr(self, f"real_{self._i(source)}")

    def missing(self, source) -> list[str]:
        return [self.layout.joints[k] for k in getattr(self, f"missing_{self._i(source)}").tolist()]

    def anchors(self, source) -> dict[str, str | None]:
        """``{missing joint: anchor joint (None: plain prompt)}`` for ``"anchored"`` mode."""
        return {j: (self.layout.joints[a] if a >= 0 else None)
                for j, a in zip(self.missing(source), self._anchors[self._i(source)])}

    def prompt(self, source) -> Tensor:
        """The ``(k, C)`` learnable table of a source (rows in ``missing(source)`` order)."""
        return self.prompts[self._i(source)]

    # -- mapping ---------------------------------------------------------------------------
    def forward(self, x: Tensor, source) -> tuple[Tensor, Tensor]:
        """``x (..., V_src, C<=channels)`` -> ``(u (..., V_u, channels), real_mask (V_u,) bool)``."""
        i = self._i(source)
        lay = get_layout(source)
        if x.shape[-2] != lay.num_joints or x.shape[-1] > self.channels:
            raise LayoutError(f"Unifier: source {lay.name!r} needs (..., {lay.num_joints}, <= {self.channels}) "
                              f"inputs, got {tuple(x.shape)}")
        if x.shape[-1] < self.channels:
            x = torch.cat([x, x.new_zeros(*x.shape[:-1], self.channels - x.shape[-1])], -1)
        idx, real, missing = (getattr(self, f"{n}_{i}") for n in ("index", "real", "missing"))
        u = x.new_zeros(*x.shape[:-2], self.layout.num_joints, self.channels)
        u = u.index_copy(u.dim() - 2, idx, x)
        if self.mode == "zero" or missing.numel() == 0:
            return u, real
        table = x.new_zeros(self.layout.num_joints, self.channels).index_copy(0, missing,
                                                                               self.prompts[i].to(x.dtype))
        if self.mode == "anchored":
            has = getattr(self, f"anchor_has_{i}")
            fill = u.index_select(u.dim() - 2, getattr(self, f"anchor_src_{i}")) * has[:, None] + table
        else:
            fill = table
        valid = (x != 0).any(-1).any(-1)                      # (...,) frame holds a skeleton
        return u + fill * (~real)[:, None] * valid[..., None, None], real

    def deunify(self, u: Tensor, source) -> Tensor:
        """The source's own joints back: ``(..., V_u, C)`` -> ``(..., V_src, C)`` (exact inverse on real joints)."""
        if u.shape[-2] != self.layout.num_joints:
            raise LayoutError(f"deunify: expected {self.layout.num_joints} unified joints, got {tuple(u.shape)}")
        return u.index_select(u.dim() - 2, getattr(self, f"index_{self._i(source)}"))

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, target={self.layout.name!r} ({self.layout.num_joints} joints), "
                + ", ".join(f"{s}: {len(self.missing(s))} missing" for s in self.sources))
