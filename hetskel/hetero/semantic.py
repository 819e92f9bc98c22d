"""Semantic motion encoding S: motion direction words, their text features, and the encoder.

    >>> cfg = SemanticConfig(threshold=0.01)
    >>> w = motion_words(x, config=cfg)                   # (N, M, T, V, 3) int64 word indices
    >>> table, source = text_table(vocabulary(cfg))       # (7, 256) "wordllama:l2_supercat/256" offline
    >>> enc = SemanticEncoder(table, mode="words")        # -> (N, M, T, V, 3)

Words. Per joint, frame and axis the displacement ``d = x_t - x_{t-1}`` picks a word:
``d > threshold`` -> the axis' positive word, ``d < -threshold`` -> its negative word, otherwise (and
on the first frame, and on any frame whose predecessor or itself is padding) ``"unmove"``.
``SemanticConfig.axis_words`` holds the (positive, negative) words per axis; the default is Kinect
camera space (the NTU/PKU raw frame, and SynHet's): x grows to the image right -> ``right/left``;
y grows upward -> ``up/down``; z grows *away* from the camera, and a recorded person usually faces
the camera, so ``+dz`` is ``back`` and ``-dz`` (towards the camera) is ``front``. Words are thus from
the viewer's side. For PYSKL-aligned skeletons (``transforms.normalize_3d``, spine on +z, shoulders
on +x) use ``SemanticConfig.for_frame("pyskl")``: x right/left, y front/back, z up/down.

Richer vocabulary (``graded=True``): each direction word gets a speed grade, ``"slightly left"``
(``threshold < |d| <= speed_edges[0]``), ``"left"``, ``"quickly left"`` (``|d| > speed_edges[1]``):
19 words; the number of words, tables and reducers follow ``vocabulary(config)``.

Text features (``text_table``). The paper encodes the words with CLIP ViT-B/32's frozen text tower.
We encode each word through ``template`` (default ``"{word}"``: the bare word, as the paper
describes; e.g. ``"a person moves {word}"`` is a config change) and L2-normalise. CLIP weights
cannot be downloaded on machines without network, so ``text_table`` says where its numbers came
from (``source``), and callers must record it. ``source="auto"`` uses CLIP when its weights are on
the machine, else ``wordllama``'s pretrained 256-d word embedding, which ships inside its PyPI
wheel (a real language model, offline, origin ``"wordllama:l2_supercat/256"``); it never
downloads. A seeded *randomly initialised* text tower (``source="random"``, only by name) warns
loudly (a ``RandomTextTableWarning``, once per process): its table is NOT CLIP's and carries no
language knowledge (only a fixed, distinct 512-d code per word).
"""
from __future__ import annotations

import hashlib
import math
import os
import socket
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from hetskel import config as _config
from hetskel.data.errors import DataError

Tensor = torch.Tensor

WORDS = ("right", "left", "up", "down", "front", "back", "unmove")
UNMOVE = "unmove"
_FRAMES = {
    "camera": (("right", "left"), ("up", "down"), ("back", "front")),
    "pyskl": (("right", "left"), ("front", "back"), ("up", "down")),
}


@dataclass(frozen=True)
class SemanticConfig:
    """How displacements become words (module docstring). ``threshold``: |d| at or below which a
    joint ``"unmove"``s, in the skeleton's unit (torso lengths per frame in ``HeteroProcessor``)."""

    threshold: float = 0.01
    axis_words: tuple[tuple[str, ...], ...] = _FRAMES["camera"]  # one (positive, negative) pair per axis
    graded: bool = False
    speed_edges: tuple[float, ...] = (0.03, 0.1)
    grades: tuple[str, ...] = ("slightly", "", "quickly")
    template: str = "{word}"

    def __post_init__(self):
        _config.check_fields(self)  # types first (lists become tuples), then the values
        if not (self.threshold >= 0 and math.isfinite(self.threshold)):
            raise ValueError(f"SemanticConfig.threshold must be a finite number >= 0, got {self.threshold}")
        if any(len(p) != 2 for p in self.axis_words):
            raise ValueError(f"SemanticConfig.axis_words must be (positive, negative) pairs, got {self.axis_words}")
        if self.graded:
            e = list(self.speed_edges)
            if len(self.grades) != len(e) + 1 or any(b <= a for a, b in zip([self.threshold, *e], e)):
                raise ValueError("SemanticConfig: speed_edges must increase above threshold and grades must have "
                                 f"len(speed_edges)+1 entries, got {self.speed_edges}, {self.grades}")
        if "{word}" not in self.template:
            raise ValueError(f"SemanticConfig.template must contain '{{word}}', got {self.template!r}")

    @classmethod
    def for_frame(cls, frame: str = "camera", **kw) -> "SemanticConfig":
        """Axis words for ``"camera"`` (Kinect camera space) or ``"pyskl"`` (PYSKL-aligned) skeletons."""
        if frame not in _FRAMES:
            raise ValueError(f"unknown frame {frame!r}; choose from {sorted(_FRAMES)}")
        return cls(axis_words=_FRAMES[frame], **kw)


def vocabulary(config: SemanticConfig | None = None) -> tuple[str, ...]:
    """The words, in table order: ``WORDS`` for the default config; graded: grade-major, then unmove."""
    cfg = config or SemanticConfig()
    used = {w for pair in cfg.axis_words for w in pair}
    # the paper's words in WORDS order, then any custom ones (sorted, so the order is reproducible)
    base = tuple(w for w in WORDS[:-1] if w in used) + tuple(sorted(used - set(WORDS)))
    if not cfg.graded:
        return (*base, UNMOVE)
    return (*(f"{g} {w}".strip() for g in cfg.grades for w in base), UNMOVE)


def _valid_pairs(x: Tensor) -> Tensor:
    """``(..., T)`` bool: frame t and t-1 both hold a skeleton (False on the first frame)."""
    fv = (x != 0).any(-1).any(-1)
    out = torch.zeros_like(fv)
    out[..., 1:] = fv[..., 1:] & fv[..., :-1]
    return out


def _displacement(x: Tensor, cfg: SemanticConfig) -> Tensor:
    """``d`` ``(..., T, V, C)`` with zeros wherever the word must be unmove for lack of a predecessor."""
    if x.dim() < 3:
        raise DataError(f"motion words need (..., T, V, C) skeletons, got shape {tuple(x.shape)}", field="x")
    if x.shape[-1] > len(cfg.axis_words):
        raise DataError(f"{x.shape[-1]} channels but SemanticConfig.axis_words names {len(cfg.axis_words)} axes",
                        field="x")
    d = torch.zeros_like(x)
    d[..., 1:, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
    return d * _valid_pairs(x)[..., None, None]


def motion_words(x: Tensor, threshold: float | None = None, config: SemanticConfig | None = None) -> Tensor:
    """Word index per joint, frame and axis: ``(..., T, V, C)`` float -> same shape int64 (into
    ``vocabulary(config)``). ``threshold`` overrides ``config.threshold``."""
    cfg = config or SemanticConfig()
    if threshold is not None:
        cfg = replace(cfg, threshold=float(threshold))
    vocab = vocabulary(cfg)
    C = x.shape[-1]
    d = _displacement(x, cfg)
    grades = cfg.grades if cfg.graded else ("",)
    # lookup[c, negative, grade] -> vocabulary index
    lookup = torch.tensor([[[vocab.index(f"{g} {cfg.axis_words[c][s]}".strip()) for g in grades]
                            for s in (0, 1)] for c in range(C)], device=x.device)
    if cfg.graded:
        edges = torch.tensor([float(e) for e in cfg.speed_edges], dtype=d.dtype, device=x.device)
        level = torch.bucketize(d.abs(), edges)            # 0: slightly .. len(edges): quickly
    else:
        level = torch.zeros_like(d, dtype=torch.int64)
    axis = torch.arange(C, device=x.device).expand_as(d)
    words = lookup[axis, (d < 0).to(torch.int64), level]
    return torch.where(d.abs() > cfg.threshold, words, torch.full_like(words, vocab.index(UNMOVE)))


def numeric_motion(x: Tensor, threshold: float | None = None, config: SemanticConfig | None = None) -> Tensor:
    """The ablation: ``sign(d)`` in {+1, -1, 0} per axis (0 at or below the threshold), x's shape and dtype."""
    cfg = config or SemanticConfig()
    thr = cfg.threshold if threshold is None else float(threshold)
    d = _displacement(x, cfg)
    return torch.sign(d) * (d.abs() > thr)


# ---------------------------------------------------------------------------------------------
# text features
_MEMORY: dict[tuple, Tensor] = {}


def default_cache_dir() -> Path:
    """``$HETSKEL_CACHE_DIR`` or ``~/.cache/hetskel``."""
    return Path(os.environ.get("HETSKEL_CACHE_DIR") or Path.home() / ".cache" / "hetskel")


def default_cache_path(words: Sequence[str], model_name: str = "ViT-B-32", pretrained: str = "openai",
                       template: str = "{word}") -> Path:
    key = hashlib.sha1("\n".join([model_name, pretrained, template, *words]).encode()).hexdigest()[:12]
    return default_cache_dir() / f"text_table_{model_name}_{pretrained}_{key}.pt"


def _load_user(table, K: int) -> Tensor:
    if isinstance(table, (str, Path)):
        p = Path(table)
        if not p.is_file():
            raise DataError("text table file does not exist", file=p)
        if p.suffix == ".npy":
            table = np.load(p, allow_pickle=False)
        else:
            from hetskel import io
            obj = io.load_checkpoint(p)
            table = obj.get("table") if isinstance(obj, dict) else obj
    t = torch.as_tensor(np.asarray(table) if not isinstance(table, Tensor) else table).detach().float().cpu()
    if t.dim() != 2 or t.shape[0] != K or not bool(torch.isfinite(t).all()):
        raise DataError(f"text table must be a finite ({K}, D) array, one row per word; got shape {tuple(t.shape)}",
                        field="table")
    return t


def _load_cache(path: Path, words, model_name, pretrained, template) -> tuple[Tensor, str] | None:
    from hetskel import io
    try:
        obj = io.load_checkpoint(path)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(obj, dict) or list(obj.get("words", [])) != list(words) or \
            (obj.get("model_name"), obj.get("pretrained"), obj.get("template")) != (model_name, pretrained, template):
        warnings.warn(f"text-table cache {path} was made for other words/model/template; ignoring it", stacklevel=3)
        return None
    return obj["table"].float(), str(obj["origin"])


def _cache_origin(path: Path) -> str | None:
    from hetskel import io
    try:
        obj = io.load_checkpoint(path)
    except (FileNotFoundError, ValueError):
        return None
    return str(obj.get("origin")) if isinstance(obj, dict) else None


_CACHE_KEYS = {"table", "origin", "words", "model_name", "pretrained", "template"}


def _is_cache_file(path: Path) -> bool:
    """Is ``path`` a text-table cache this module wrote (a weights-only dict with its keys)?"""
    from hetskel import io
    try:
        obj = io.load_checkpoint(path)
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and _CACHE_KEYS <= set(obj)


def _save_cache(path: Path, table: Tensor, origin: str, words, model_name, pretrained, template) -> None:
    """Write the cache file; a file at ``path`` that is not such a cache (a user's file, a folder)
    is never replaced: ``FileExistsError`` naming it."""
    from hetskel import io
    path = Path(path)
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not path.is_file() or not _is_cache_file(path)):
        raise FileExistsError(f"text-table cache {path} exists and is not a hetskel text-table cache; not "
                              f"replacing it: choose another cache_path / text_cache")
    io.save_checkpoint(path, {"table": table.cpu(), "origin": origin, "words": list(words),
                              "model_name": model_name, "pretrained": pretrained, "template": template})


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can weights be fetched? Avoids huggingface_hub's ~45 s of retries on machines without network.
    With ``HF_HUB_OFFLINE=1`` open_clip is still tried: it then reads the local Hugging Face cache."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@torch.no_grad()
def _encode(model, tokenizer, words, template) -> Tensor:
    model.eval()
    f = model.encode_text(tokenizer([template.format(word=w) for w in words])).float()
    return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _openclip(words, model_name, pretrained, template) -> Tensor:
    import open_clip
    if not (Path(pretrained).is_file() or _hub_reachable()):
        raise RuntimeError("huggingface.co is not reachable (set HF_HUB_OFFLINE=1 to use a local cache)")
    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    return _encode(model, open_clip.get_tokenizer(model_name), words, template)


def _random_tower(words, model_name, seed, template) -> Tensor:
    import open_clip
    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's random stream
        torch.manual_seed(seed)
        model = open_clip.create_model(model_name, pretrained=None)
    return _encode(model, open_clip.get_tokenizer(model_name), words, template)


#: the ``wordllama`` model shipped inside its PyPI wheel (no download): 256-d word embeddings
WORDLLAMA_MODEL, WORDLLAMA_DIM = "l2_supercat", 256
SOURCES = ("auto", "user", "cache", "openclip", "wordllama", "random")


def _clip_weights_file(model_name: str, pretrained: str) -> str | None:
    """The local file of open_clip's ``model_name``/``pretrained`` weights if they are already on this
    machine (a file path, the Hugging Face cache or ``~/.cache/clip``), else None. No network."""
    if Path(pretrained).is_file():
        return str(pretrained)
    try:
        import open_clip
        cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    except Exception:
        return None
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            model_id, filename = os.path.split(hub)
            for name in ("open_clip_model.safetensors", filename or "open_clip_pytorch_model.bin"):
                try:
                    hit = try_to_load_from_cache(model_id, name)
                except Exception:
                    hit = None
                if isinstance(hit, str) and Path(hit).is_file():
                    return hit
    url = cfg.get("url", "")
    if url:
        f = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if f.is_file():
            return str(f)
    return None


def _openclip_local(words, model_name, pretrained, template) -> Tensor | None:
    """CLIP's table from weights already on this machine (``_clip_weights_file``), or None: never
    touches the network (``source="auto"`` must not wait for huggingface_hub's retries)."""
    f = _clip_weights_file(model_name, pretrained)
    if f is None:
        return None
    import open_clip
    cfg = {} if Path(pretrained).is_file() else (open_clip.get_pretrained_cfg(model_name, pretrained) or {})
    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=f,
                                                        force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    return _encode(model, open_clip.get_tokenizer(model_name), words, template)


def wordllama_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("wordllama") is not None


def _wordllama(words, template) -> Tensor:
    """``wordllama``'s pretrained 256-d embedding of each ``template.format(word=w)``, L2-normalised,
    loaded from the weights and tokenizer inside the installed package (``disable_download``)."""
    import wordllama
    from wordllama import WordLlama
    wl = WordLlama.load(config=WORDLLAMA_MODEL, cache_dir=Path(wordllama.__file__).parent, dim=WORDLLAMA_DIM,
                        disable_download=True)
    f = torch.as_tensor(np.asarray(wl.embed([template.format(word=w) for w in words], norm=False))).float()
    return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def text_table(words: Sequence[str] = WORDS, source: str = "auto", cache_path=None, table=None,
               model_name: str = "ViT-B-32", pretrained: str = "openai", seed: int = 0,
               template: str = "{word}") -> tuple[Tensor, str]:
    """Text features of ``words``: ``(table (K, D) float32, source)``; D = 512 for CLIP ViT-B-32,
    256 for wordllama.

    ``source="auto"`` tries, in order, never downloading: the user ``table`` (tensor, array,
    ``.pt``/``.npy`` path) -> ``"user"``; a cache file made from real weights -> ``"cache:<path>"``;
    CLIP (open_clip ``model_name``/``pretrained``) when its weights are already on this machine ->
    ``"clip:<model>/<pretrained>"``, saved to the cache; else ``wordllama``'s pretrained word
    embedding, shipped inside its wheel -> ``"wordllama:l2_supercat/256"`` (memory only: it loads in
    a second). ``source`` may also force one of ``"user"``, ``"cache"``, ``"openclip"`` (downloads the
    weights when huggingface.co is reachable), ``"wordllama"``, ``"random"``: a text tower randomly
    initialised after ``torch.manual_seed(seed)`` -> ``"random-init:<model>/seed<seed>"``, with a
    warning, saved to the cache, and only ever used when asked for by name; an error if the named
    source is unavailable. ``cache_path=None`` keeps the table in memory only. open_clip and
    wordllama are imported here, never at module import.
    """
    words = tuple(words)
    if source not in SOURCES:
        raise ValueError(f"text_table: unknown source {source!r}; choose from {list(SOURCES)}")
    if table is not None and source in ("auto", "user"):
        return _load_user(table, len(words)), "user"
    if source == "user":
        raise ValueError("text_table(source='user') needs table=...")
    path = Path(cache_path) if cache_path is not None else None
    cached = _load_cache(path, words, model_name, pretrained, template) if path is not None and source in (
        "auto", "cache") else None
    if source == "cache" and cached is None:
        raise FileNotFoundError(f"no usable text-table cache at {path}")
    if cached is not None and (source == "cache" or not cached[1].startswith("random-init")):
        if cached[1].startswith("random-init"):
            _warn_random(cached[1], f"cache {path}")
        return cached[0], f"cache:{path}" + (f"[{cached[1]}]" if cached[1].startswith("random-init") else "")
    key = (model_name, pretrained, template, words)
    if source in ("auto", "openclip"):
        origin = f"clip:{model_name}/{pretrained}"
        if (origin, *key) in _MEMORY:
            return _MEMORY[(origin, *key)].clone(), origin
        try:
            t = _openclip(words, model_name, pretrained, template) if source == "openclip" else \
                _openclip_local(words, model_name, pretrained, template)
        except Exception as e:  # no network / broken weights
            if source == "openclip":
                raise
            t = None
            warnings.warn(f"CLIP weights on this machine did not load ({type(e).__name__}: {e}); "
                          f"using wordllama", stacklevel=2)
        if t is not None:
            _MEMORY[(origin, *key)] = t
            if path is not None:
                _save_cache(path, t, origin, words, model_name, pretrained, template)
            return t.clone(), origin
    if source in ("auto", "wordllama"):
        origin = f"wordllama:{WORDLLAMA_MODEL}/{WORDLLAMA_DIM}"
        wkey = (origin, template, words)
        if wkey not in _MEMORY:
            if not wordllama_available():
                raise RuntimeError("no word table: CLIP's weights are not on this machine and the 'wordllama' "
                                   "package is not installed (pip install wordllama; it ships its weights); "
                                   "text_source='random' gives a meaningless random text tower")
            _MEMORY[wkey] = _wordllama(words, template)
        return _MEMORY[wkey].clone(), origin
    reason = "source='random' was requested"
    origin = f"random-init:{model_name}/seed{seed}"
    if cached is not None and cached[1] == origin:
        _warn_random(origin, f"cache {path}; real weights unavailable: {reason}")
        return cached[0], f"cache:{path}[{origin}]"
    _warn_random(origin, reason)
    mkey = (origin, model_name, template, words)
    if mkey not in _MEMORY:
        _MEMORY[mkey] = _random_tower(words, model_name, seed, template)
    t = _MEMORY[mkey].clone()
    if path is not None and not str(_cache_origin(path)).startswith(("clip:", "openclip:")):  # never overwrite real CLIP
        _save_cache(path, t, origin, words, model_name, pretrained, template)
    return t, origin


class RandomTextTableWarning(UserWarning):
    """The semantic text table comes from a randomly initialised text tower, not CLIP's weights."""


_WARNED: set[str] = set()  # origins already warned about in this process


def _warn_random(origin: str, why: str) -> None:
    """Warn once per process and origin: a notebook builds the table several times (processor,
    encoder, study), and the same paragraph each time buries the rest of its output."""
    if origin in _WARNED:
        return
    _WARNED.add(origin)
    msg = (f"semantic text table is NOT CLIP's: using a randomly initialised open_clip text tower ({origin}); "
           f"reason: {why}. Words get distinct but meaningless codes. Supply a real table "
           f"(text_table(table=...) / a cache made with CLIP weights) for the paper's setting.")
    warnings.warn(msg, RandomTextTableWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# the encoder
class SemanticEncoder(nn.Module):
    """Skeleton ``(..., T, V, C)`` -> semantic motion encoding ``(..., T, V, C*out_dim)``.

    ``mode="words"``: the frozen text table ``(K, D)`` (a buffer, saved in checkpoints) is reduced by a
    trainable ``Linear(D, out_dim)`` to ``(K, out_dim)``, then gathered by word index. Channel order:
    axis-major, ``[x_0 .. x_{k-1}, y_0 .., z_0 ..]`` (with ``out_dim=1`` simply x, y, z, the skeleton's
    shape, as the paper). ``table=None`` calls ``text_table(vocabulary(config), cache_path=...,
    **table_kw)`` with the file cache at ``default_cache_path(...)`` (``$HETSKEL_CACHE_DIR`` or
    ``~/.cache/hetskel``; ``cache_path=None``: memory only); the table's origin is in
    ``self.table_source``. ``mode="numeric"``: the ablation, ``sign(d)`` per axis
    (``out_dim`` ignored). Padded frames (all-zero) give zeros in both modes.
    """

    def __init__(self, table=None, mode: str = "words", out_dim: int = 1, threshold: float | None = None,
                 config: SemanticConfig | None = None, cache_path="default", **table_kw):
        super().__init__()
        if mode not in ("words", "numeric"):
            raise ValueError(f"SemanticEncoder: mode must be 'words' or 'numeric', got {mode!r}")
        cfg = config or SemanticConfig()
        if threshold is not None:
            cfg = replace(cfg, threshold=float(threshold))
        self.config, self.mode, self.out_dim = cfg, mode, int(out_dim) if mode == "words" else 1
        self.vocab = vocabulary(cfg)
        self.table_source = "none (numeric)"
        if mode == "words":
            if table is None:
                if cache_path == "default":
                    cache_path = default_cache_path(self.vocab, table_kw.get("model_name", "ViT-B-32"),
                                                    table_kw.get("pretrained", "openai"), cfg.template)
                t, self.table_source = text_table(self.vocab, template=cfg.template, cache_path=cache_path,
                                                  **table_kw)
            else:
                t, self.table_source = _load_user(table, len(self.vocab)), "user"
            self.register_buffer("table", t.float())
            self.reducer = nn.Linear(t.shape[1], self.out_dim)

    def channels(self, in_channels: int = 3) -> int:
        return in_channels * self.out_dim

    def word_values(self) -> Tensor:
        """``(K, out_dim)``: the reduced value of each vocabulary word (trainable)."""
        return self.reducer(self.table)

    def forward(self, x: Tensor) -> Tensor:
        valid = (x != 0).any(-1).any(-1)[..., None, None]            # (..., T, 1, 1)
        if self.mode == "numeric":
            return numeric_motion(x, config=self.config) * valid
        words = motion_words(x, config=self.config)                   # (..., T, V, C)
        values = self.word_values().to(x.dtype)[words]               # (..., T, V, C, k)
        return values.flatten(-2) * valid
