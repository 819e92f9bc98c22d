"""UmURL-style unified multi-modal skeleton encoder.

Every modality ``k`` is a batch ``(N, M, T, V, C_k)`` in one joint layout (the unified 30-joint
skeleton in the paper; any ``V`` works). The encoder turns it into two token sets, as UmURL does:

* temporal tokens, one per frame:            ``(N, T, M*V*C_k)``
* spatial tokens, one per (person, joint):   ``(N, M*V, T*C_k)``

and then::

    per-modality embedding   Linear -> LayerNorm -> ReLU -> Linear  (to d), temporal and spatial apart
    early fusion             mean over modalities -> bias-free Linear(d, d), temporal and spatial apart
                             (``EncoderConfig.fusion="paper"``; ``FUSIONS`` lists the alternatives)
    shared encoder           temporal TransformerEncoder (+ sinusoidal positions) and spatial
                             TransformerEncoder, max-pool over tokens, concatenate -> (N, 2d)
    projectors (training)    one per modality, 2d -> proj_dims (Linear-BN-ReLU ..., Linear)

The same shared transformer encodes the fused embedding ("fused") and each modality alone
("single/<k>"). UmURL uses PyTorch's default post-norm layer (``norm_first=False``), ReLU FFN and
no dropout; ``nn.MultiheadAttention`` calls ``F.scaled_dot_product_attention`` (``need_weights=False``
inside the layer), so the FLOP counter sees attention.

Presets live in a plain registry::

    >>> cfg = get_preset("small", num_frames=32)
    >>> enc = UnifiedEncoder(cfg, modality_channels={"J": 3, "C": 3, "S": 3}, num_joints=30)
    >>> out = enc({"J": xj, "C": xc, "S": xs})          # {"fused": (N, 2d), "single/J": (N, 2d), ...}
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn as nn

from hetskel import config as _config

#: early-fusion forms (``EncoderConfig.fusion``), each followed by the bias-free Linear(d, d):
#: ``paper``: the mean of the modality embeddings (UmURL); ``weighted``: a learned softmax weight per
#: modality and channel (initialised equal: the mean at step 0); ``gated``: input-dependent weights,
#: a softmax over modalities of a per-modality ``Linear(d, d)`` of each token (zero-initialised: the
#: mean at step 0), so a modality can dominate the tokens where it is informative and a weak one
#: need not dilute the strong one.
FUSIONS = ("paper", "weighted", "gated")


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the encoder. ``proj_dims`` are the projector's layer widths, the last one its output.
    ``fusion``: the early-fusion form (``FUSIONS``; ``"paper"`` is UmURL's mean)."""

    d_model: int = 1024
    num_frames: int = 64
    max_persons: int = 2
    num_layers: int = 1
    num_heads: int = 1
    ff_dim: int = 1024
    dropout: float = 0.0
    proj_dims: tuple[int, ...] = (2048, 2048, 4096)
    norm_first: bool = False  # UmURL: PyTorch default post-norm layer
    fusion: str = "paper"  # one of FUSIONS

    def __post_init__(self):
        _config.check_fields(self)  # types: a bool, a string or 64.7 is never a width
        for name in ("d_model", "num_frames", "max_persons", "num_layers", "num_heads", "ff_dim"):
            v = getattr(self, name)
            if v < 1:
                raise ValueError(f"EncoderConfig.{name} must be a positive int, got {v!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"EncoderConfig: d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"EncoderConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.proj_dims or min(self.proj_dims) < 1:
            raise ValueError(f"EncoderConfig.proj_dims must be non-empty positive ints, got {self.proj_dims!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"EncoderConfig.fusion must be one of {list(FUSIONS)}, got {self.fusion!r}")

    @property
    def out_dim(self) -> int:
        """Width of the representation: temporal and spatial max-pools concatenated."""
        return 2 * self.d_model


_PRESETS: dict[str, EncoderConfig] = {
    # The paper / UmURL: d=1024, 1 layer, 1 head, ff 1024, no dropout, projector 2048-2048-4096.
    "paper": EncoderConfig(),
    # CPU-sized for notebooks and SynHet runs (same shape of network, 1/8 the width). One pretraining
    # step (K=3, 4 streams) costs ~0.44 GFLOP per sample: ~33 CPU-seconds per 3000 samples on one core.
    "small": EncoderConfig(d_model=128, num_frames=32, max_persons=2, num_layers=1, num_heads=1,
                           ff_dim=256, dropout=0.0, proj_dims=(256, 256, 512)),
    # smoke tests and CI: ~11 CPU-seconds per 3000 samples.
    "tiny": EncoderConfig(d_model=64, num_frames=32, max_persons=2, num_layers=1, num_heads=1,
                          ff_dim=128, dropout=0.0, proj_dims=(128, 128, 256)),
}


def register_preset(name: str, config: EncoderConfig, overwrite: bool = False) -> EncoderConfig:
    if name in _PRESETS and not overwrite:
        raise ValueError(f"encoder preset {name!r} already exists (pass overwrite=True to replace it)")
    _PRESETS[name] = config
    return config


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: "str | EncoderConfig", **overrides) -> EncoderConfig:
    """A named preset with fields replaced by ``overrides`` (e.g. ``get_preset("paper", num_frames=32)``)."""
    if isinstance(name, EncoderConfig):
        base = name
    elif name in _PRESETS:
        base = _PRESETS[name]
    else:
        raise ValueError(f"unknown encoder preset {name!r}; valid presets: {list_presets()}")
    valid = [f.name for f in dataclasses.fields(EncoderConfig)]
    bad = sorted(set(overrides) - set(valid))
    if bad:
        raise ValueError(f"unknown EncoderConfig key(s) {bad}; valid keys: {valid}")
    return dataclasses.replace(base, **overrides)


# ---------------------------------------------------------------------------------------------
def sinusoidal_positions(length: int, d: int) -> torch.Tensor:
    """``(length, d)`` sin on even, cos on odd channels (Vaswani et al.; UmURL's table)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return pe


def _embedding(in_dim: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, d), nn.LayerNorm(d), nn.ReLU(inplace=True), nn.Linear(d, d))


def _projector(in_dim: int, dims: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in dims[:-1]:
        layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, dims[-1]))
    return nn.Sequential(*layers)


def _transformer(cfg: EncoderConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.num_heads, cfg.ff_dim, dropout=cfg.dropout,
                                       batch_first=True, norm_first=cfg.norm_first)
    # nested tensors only pay off with padding masks, which we never use
    return nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)


class ModalityEmbedding(nn.Module):
    """Tokens of one modality -> ``(N, T, d)`` temporal and ``(N, M*V, d)`` spatial embeddings."""

    def __init__(self, channels: int, num_frames: int, persons: int, joints: int, d: int):
        super().__init__()
        self.temporal = _embedding(persons * joints * channels, d)
        self.spatial = _embedding(num_frames * channels, d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, m, t, v, c = x.shape
        xt = x.permute(0, 2, 1, 3, 4).reshape(n, t, m * v * c)   # one token per frame
        xs = x.permute(0, 1, 3, 2, 4).reshape(n, m * v, t * c)   # one token per (person, joint)
        return self.temporal(xt), self.spatial(xs)


#: evaluation representations of ``UnifiedEncoder.represent``
STREAMS = ("fused", "single", "concat")


class FusionWeights(nn.Module):
    """Per-token weights of K modality embeddings ``(K, N, L, d)`` -> ``(K, N, L, d)`` summing to 1
    over K (``EncoderConfig.fusion`` ``"weighted"`` / ``"gated"``); equal weights (the mean) at init."""

    def __init__(self, modalities: Sequence[str], d: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "weighted":
            self.logits = nn.ParameterDict({k: nn.Parameter(torch.zeros(d)) for k in modalities})
        else:
            self.gates = nn.ModuleDict({k: nn.Linear(d, d) for k in modalities})
            for g in self.gates.values():
                nn.init.zeros_(g.weight)
                nn.init.zeros_(g.bias)

    def forward(self, names: Sequence[str], e: torch.Tensor) -> torch.Tensor:
        if self.kind == "weighted":
            logits = torch.stack([self.logits[k] for k in names])[:, None, None, :].expand_as(e)
        else:
            logits = torch.stack([self.gates[k](x) for k, x in zip(names, e)])
        return torch.softmax(logits, dim=0)


class UnifiedEncoder(nn.Module):
    """Per-modality embeddings, early fusion, one shared spatio-temporal transformer, projectors.

    config:            an ``EncoderConfig`` (or a preset name).
    modality_channels: ``{name: C_k}``, e.g. ``{"J": 3, "C": 3, "S": 3}``; the order is kept.
    num_joints:        ``V`` of every modality (30 for the unified skeleton, 25 for NTU).
    """

    def __init__(self, config: "EncoderConfig | str", modality_channels: Mapping[str, int], num_joints: int):
        super().__init__()
        cfg = get_preset(config) if isinstance(config, str) else config
        if not modality_channels:
            raise ValueError("UnifiedEncoder needs at least one modality in modality_channels")
        for k, c in modality_channels.items():
            if not isinstance(k, str) or "/" in k or not isinstance(c, int) or c < 1:
                raise ValueError(f"modality_channels: bad entry {k!r}: {c!r} (want name without '/' -> channels >= 1)")
        if num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints}")
        self.config = cfg
        self.modality_channels = dict(modality_channels)
        self.num_joints = int(num_joints)
        d, t, m = cfg.d_model, cfg.num_frames, cfg.max_persons
        self.embed = nn.ModuleDict({k: ModalityEmbedding(c, t, m, num_joints, d)
                                    for k, c in self.modality_channels.items()})
        self.fuse_t = nn.Linear(d, d, bias=False)
        self.fuse_s = nn.Linear(d, d, bias=False)
        self.register_buffer("pos", sinusoidal_positions(t, d), persistent=False)
        self.temporal = _transformer(cfg)
        self.spatial = _transformer(cfg)
        self.projectors = nn.ModuleDict({k: _projector(cfg.out_dim, cfg.proj_dims) for k in self.modality_channels})
        if cfg.fusion != "paper":  # created last and only then: "paper" keeps its exact initial weights
            self.fusion_t = FusionWeights(self.modalities, d, cfg.fusion)
            self.fusion_s = FusionWeights(self.modalities, d, cfg.fusion)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.modality_channels)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    # -- building blocks -------------------------------------------------------------------
    def _check(self, k: str, x: torch.Tensor) -> torch.Tensor:
        """Validate ``(N, M, T, V, C_k)``; zero-pad persons up to ``max_persons`` (UmURL pads the 2nd body)."""
        if k not in self.modality_channels:
            raise KeyError(f"encoder has no modality {k!r}; it has {list(self.modality_channels)}")
        cfg = self.config
        want = (cfg.max_persons, cfg.num_frames, self.num_joints, self.modality_channels[k])
        if x.dim() != 5 or tuple(x.shape[2:]) != want[1:] or x.shape[1] > want[0]:
            raise ValueError(f"modality {k!r}: expected (N, M<={want[0]}, T={want[1]}, V={want[2]}, "
                             f"C={want[3]}), got {tuple(x.shape)}")
        if x.shape[1] < cfg.max_persons:
            pad = x.new_zeros((x.shape[0], cfg.max_persons - x.shape[1], *x.shape[2:]))
            x = torch.cat([x, pad], dim=1)
        return x

    def embed_modality(self, k: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, M, T, V, C_k)`` -> temporal ``(N, T, d)``, spatial ``(N, M*V, d)`` embeddings."""
        x = self._check(k, x)  # first: a clear error for an unknown modality
        return self.embed[k](x)

    def fuse(self, embeddings: list[tuple[torch.Tensor, torch.Tensor]], names: Sequence[str] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Early fusion: mean over modalities (``fusion="paper"``; weighted for the other forms), then
        the bias-free linear maps. ``names``: the modality of each embedding (default: all of the
        encoder's, in order; needed by the learned forms when a subset is fused)."""
        t = torch.stack([e[0] for e in embeddings])
        s = torch.stack([e[1] for e in embeddings])
        if self.config.fusion == "paper":
            return self.fuse_t(t.mean(0)), self.fuse_s(s.mean(0))
        names = tuple(self.modalities if names is None else names)
        if len(names) != len(embeddings):
            raise ValueError(f"fuse: {len(embeddings)} embeddings but modality names {names}; pass names=")
        t = (self.fusion_t(names, t) * t).sum(0)
        s = (self.fusion_s(names, s) * s).sum(0)
        return self.fuse_t(t), self.fuse_s(s)

    def encode_tokens(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Shared transformer: ``(N, T, d)``, ``(N, M*V, d)`` -> ``(N, 2d)`` (max-pools concatenated).

        Token sets of several streams may be stacked along N: the transformer has no batch statistics.
        """
        t = self.temporal(t + self.pos[: t.shape[1]])
        s = self.spatial(s)
        return torch.cat([t.amax(dim=1), s.amax(dim=1)], dim=1)

    # -- streams ---------------------------------------------------------------------------
    def encode_single(self, k: str, x: torch.Tensor) -> torch.Tensor:
        """One modality alone through the shared transformer (no fusion layer): ``(N, 2d)``."""
        return self.encode_tokens(*self.embed_modality(k, x))

    def encode_fused(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The early-fused stream over the modalities present in ``inputs``: ``(N, 2d)``."""
        if not inputs:
            raise ValueError("encode_fused needs at least one modality")
        return self.encode_tokens(*self.fuse([self.embed_modality(k, x) for k, x in inputs.items()], list(inputs)))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"fused": (N, 2d), "single/<k>": (N, 2d) for every k in inputs}``, all from these inputs.

        The K single streams run as one stacked transformer call (same token counts).
        """
        emb = {k: self.embed_modality(k, x) for k, x in inputs.items()}
        if not emb:
            raise ValueError("UnifiedEncoder.forward needs at least one modality")
        ft, fs = self.fuse(list(emb.values()), list(emb))
        t = torch.cat([ft] + [e[0] for e in emb.values()])
        s = torch.cat([fs] + [e[1] for e in emb.values()])
        y = self.encode_tokens(t, s).chunk(len(emb) + 1)
        return {"fused": y[0], **{f"single/{k}": yk for k, yk in zip(emb, y[1:])}}

    def represent(self, inputs: Mapping[str, torch.Tensor], stream: str = "fused") -> torch.Tensor:
        """Evaluation representation ``(N, 2d)``.

        ``stream="fused"`` (default, UmURL's downstream path): the fused stream over the modalities
        given; with one modality the fusion mean is that modality's embedding alone.
        ``stream="single"``: the single-stream path of exactly one modality (no fusion layer).
        ``stream="concat"``: ``(N, (1 + K) * 2d)``, the fused stream followed by every modality's
        single stream (in ``inputs`` order), so what only one modality carries survives the fusion.
        """
        if stream == "fused":
            return self.encode_fused(inputs)
        if stream == "concat":
            y = self.forward(inputs)
            return torch.cat([y["fused"], *(y[f"single/{k}"] for k in inputs)], dim=1)
        if stream == "single":
            if len(inputs) != 1:
                raise ValueError(f"stream='single' needs exactly one modality, got {list(inputs)}")
            (k, x), = inputs.items()
            return self.encode_single(k, x)
        raise ValueError(f"stream must be one of {list(STREAMS)}, got {stream!r}")

    def feature_dim(self, stream: str = "fused", num_modalities: int | None = None) -> int:
        """Width of ``represent(..., stream)``: 2d, or (1 + K) * 2d for ``"concat"``."""
        k = len(self.modalities) if num_modalities is None else int(num_modalities)
        return self.out_dim * (1 + k) if stream == "concat" else self.out_dim

    def project(self, k: str, y: torch.Tensor) -> torch.Tensor:
        """Projector of modality ``k``: ``(N, 2d)`` -> ``(N, proj_dims[-1])``."""
        if k not in self.projectors:
            raise KeyError(f"encoder has no projector {k!r}; it has {list(self.projectors)}")
        return self.projectors[k](y)
