"""Per-sample inference FLOPs of the encoder, counted from the model itself.

FLOPs = 2 x multiply-adds of the linear layers and of attention (``QK^T`` and ``AV``), counted by
``torch.utils.flop_counter.FlopCounterMode`` while the real forward runs on the ``meta`` device
(shapes only: no memory, no arithmetic, fast even for the paper preset). LayerNorm, softmax, ReLU,
max-pooling and additions are not counted, as in the paper's 2.54G. Projectors are training-only
and not part of inference.

    >>> encoder_flops("paper", ("J", "C", "S"), num_joints=25) / 1e9   # ~2.54 (the paper's fused number)
    >>> flops_table("paper", num_joints=30)                           # every subset + three single streams

At T=64, M=2, d=1024 the fused three-modality encoder costs 2.54G at 25 joints and 2.77G at 30; the
three single-modality passes of 3s-UmURL cost 5.22G together.
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from hetskel.model.encoder import EncoderConfig, UnifiedEncoder, get_preset

PAPER_FUSED_GFLOPS = 2.54         # the paper's fused J+C+S encoder (= UmURL at 25 joints)
PAPER_THREE_STREAMS_GFLOPS = 5.22  # three single-modality streams (3s-UmURL)


def _build(preset: "str | EncoderConfig", modalities: Sequence[str], num_joints: int,
           channels: int) -> UnifiedEncoder:
    cfg = get_preset(preset) if isinstance(preset, str) else preset
    with torch.device("meta"):
        return UnifiedEncoder(cfg, {k: channels for k in modalities}, num_joints).eval()


def _count(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def _inputs(enc: UnifiedEncoder, batch: int) -> dict[str, torch.Tensor]:
    c = enc.config
    return {k: torch.empty(batch, c.max_persons, c.num_frames, enc.num_joints, ch, device="meta")
            for k, ch in enc.modality_channels.items()}


def encoder_flops(preset: "str | EncoderConfig" = "paper", modalities: Sequence[str] = ("J", "C", "S"),
                  num_joints: int = 30, channels: int = 3, stream: str = "fused") -> float:
    """FLOPs per sample of one inference pass.

    stream="fused":  embeddings of every modality + early fusion + shared transformer (the paper's
                     model; with one modality, that modality through the fusion path).
    stream="single": the sum of one single-stream pass per modality (embedding + transformer, no
                     fusion layer), i.e. a K-stream ensemble such as 3s-UmURL.
    """
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("encoder_flops needs at least one modality")
    enc = _build(preset, modalities, num_joints, channels)
    x = _inputs(enc, 1)
    if stream == "fused":
        return float(_count(lambda: enc.encode_fused(x)))
    if stream == "single":
        return float(sum(_count(lambda k=k: enc.encode_single(k, x[k])) for k in modalities))
    raise ValueError(f"stream must be 'fused' or 'single', got {stream!r}")


def flops_table(preset: "str | EncoderConfig" = "paper", num_joints: int = 30,
                modalities: Sequence[str] = ("J", "C", "S")) -> list[dict]:
    """Rows ``{"model", "modalities", "gflops", "paper_gflops"}``: the fused encoder for every
    non-empty subset of ``modalities`` and the all-single-streams ensemble, next to the paper's
    2.54G (fused, all modalities) and 5.22G (three single streams)."""
    mods = tuple(modalities)
    rows = []
    for r in range(1, len(mods) + 1):
        for subset in combinations(mods, r):
            paper = PAPER_FUSED_GFLOPS if len(subset) == 3 else None
            rows.append({"model": "fused", "modalities": "+".join(subset),
                         "gflops": encoder_flops(preset, subset, num_joints) / 1e9, "paper_gflops": paper})
    rows.append({"model": f"{len(mods)} single streams", "modalities": "+".join(mods),
                 "gflops": encoder_flops(preset, mods, num_joints, stream="single") / 1e9,
                 "paper_gflops": PAPER_THREE_STREAMS_GFLOPS if len(mods) == 3 else None})
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table of ``flops_table`` rows."""
    lines = [f"{'model':<18} {'modalities':<12} {'GFLOPs':>8} {'paper':>7}"]
    for r in rows:
        paper = f"{r['paper_gflops']:.2f}" if r["paper_gflops"] is not None else "-"
        lines.append(f"{r['model']:<18} {r['modalities']:<12} {r['gflops']:>8.3f} {paper:>7}")
    return "\n".join(lines)
