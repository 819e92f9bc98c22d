"""Helpers for the semantic-motion notebook (``notebooks/03_semantic_motion.ipynb``): word maps, counts, training.

The notebook's cells stay one call long; what they call lives here (tested in
``tests/test_semantic_study.py``)::

    >>> cfg = semantic_study.make_config(threshold=0.01, vocabulary="basic")
    >>> x, present = semantic_study.pose_sequences(data3d)   # (N, M, T, V, 3) torso units, camera axes
    >>> words = motion_words(x, config=cfg)                   # hetskel.hetero.semantic
    >>> fig = semantic_study.heatmap_figure([(words[i, 0], "ntu25", "Kinect-25")], vocabulary(cfg))
    >>> run = semantic_study.train_reducer(x, labels, train_rows, val_rows, table, cfg, steps=300)

Skeletons enter the words the way ``HeteroProcessor`` feeds its ``S`` modality: in the pose frame
(root-relative, torso-scaled) plus the root trajectory, so the threshold is in torso lengths per
frame and a walking body still moves. SynHet is in Kinect camera space, so the words use
``SemanticConfig``'s default ``"camera"`` axes (x right/left, y up/down, z back/front).

What ``train_reducer`` trains. The paper's reducer maps each word's frozen text feature (512-d for
CLIP, 256-d for wordllama) to one scalar (a ``Linear(D, 1)``); alone it has no loss, so we give it a
small task: classify SynHet clips from ``S`` only. A tiny classifier (per-frame linear layer over the joints, one
temporal convolution, max over time and persons) and the reducer are trained together for a few
hundred steps; the same classifier is trained on the numeric ablation (``sign(d)``) for comparison.
The reducer's outputs, one scalar per word, are what the figures show before and after.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hetskel.hetero.lifter import joint_present, pose_frame, with_trajectory
from hetskel.hetero.semantic import (
    UNMOVE,
    SemanticConfig,
    SemanticEncoder,
    motion_words,
    numeric_motion,
    vocabulary,
)
from hetskel.layouts import get_layout
from hetskel.train.fit import fit

Tensor = torch.Tensor
# direction colours (unmove: pale grey); a graded word takes its direction's colour, lighter when slower
DIRECTION_COLOURS = {"right": "#d62728", "left": "#1f77b4", "up": "#ff7f0e", "down": "#9467bd",
                     "front": "#2ca02c", "back": "#8c564b", UNMOVE: "#eeeeee"}
AXES = ("x", "y", "z")


def make_config(threshold: float = 0.01, vocabulary: str = "basic") -> SemanticConfig:
    """``SemanticConfig`` (camera axes) from the notebook's ``threshold`` and ``vocabulary`` ("basic" / "graded")."""
    if vocabulary not in ("basic", "graded"):
        raise ValueError(f"vocabulary must be 'basic' or 'graded', got {vocabulary!r}")
    return SemanticConfig(threshold=float(threshold), graded=vocabulary == "graded")


def vocab_text(config: SemanticConfig) -> str:
    """The words of ``config`` in table order, with their indices."""
    vocab = vocabulary(config)
    return f"{len(vocab)} words: " + ", ".join(f"{i}:{w}" for i, w in enumerate(vocab))


# ---------------------------------------------------------------------------------------------
# sequences and words
def toy_sequence() -> tuple[Tensor, list[str]]:
    """A hand-built ``(T=6, V=3, 3)`` sequence (Kinect camera axes, torso units) and its joint names.

    ``right_hand`` moves right fast, then up slowly, then holds; ``head`` only trembles below the
    default threshold; ``left_foot`` steps towards the camera (-z) at three speeds. Steps are
    binary fractions (exact in float32) away from every threshold and speed edge, so the words are
    the same on every machine.
    """
    steps = torch.tensor([
        # right_hand                head                          left_foot
        [[0.125, 0.0, 0.0], [0.00390625, 0.0, -0.00390625], [0.0, 0.0, -0.015625]],
        [[0.0625, 0.0, 0.0], [-0.00390625, 0.0, 0.00390625], [0.0, 0.0, -0.0625]],
        [[0.0, 0.03125, 0.0], [0.0, 0.00390625, 0.0], [0.0, 0.0, -0.125]],
        [[0.0, 0.015625, 0.0], [0.0, -0.00390625, 0.0], [0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    ])
    start = torch.tensor([[0.5, 0.25, 3.0], [0.0, 1.0, 3.0], [-0.25, -2.0, 3.0]])
    x = torch.cat([start[None], start + steps.cumsum(0)])
    return x, ["right_hand", "head", "left_foot"]


def word_grid(x: Tensor, joint_names: Sequence[str], config: SemanticConfig) -> str:
    """Words and ``sign(d)`` of a ``(T, V, 3)`` sequence, one line per joint and axis, one column per frame."""
    words, signs = motion_words(x, config=config), numeric_motion(x, config=config)
    vocab = vocabulary(config)
    width = max(len(w) for w in vocab) + 1
    T = x.shape[0]
    lines = [f"{'joint':<11}{'axis':<5}" + "".join(f"{f't={t}':<{width}}" for t in range(T)) + "  sign(d)"]
    for v, name in enumerate(joint_names):
        for c, axis in enumerate(AXES[:x.shape[-1]]):
            cells = "".join(f"{vocab[int(words[t, v, c])]:<{width}}" for t in range(T))
            sg = " ".join(f"{int(signs[t, v, c]):+d}" if signs[t, v, c] else " 0" for t in range(T))
            lines.append(f"{name:<11}{axis:<5}{cells} {sg}")
    return "\n".join(lines)


def stack_keypoints(data: dict) -> Tensor:
    """``(N, M, T, V, C)`` float32 tensor of a PYSKL dict whose clips share one shape (SynHet)."""
    return torch.from_numpy(np.stack([a["keypoint"] for a in data["annotations"]]).astype(np.float32))


def pose_sequences(data: dict) -> tuple[Tensor, Tensor]:
    """The 3D skeletons of ``data`` in the pose frame plus the root trajectory (torso units), like
    ``HeteroProcessor``'s input to ``S``: ``(x (N, M, T, V, 3), present (N, M, T, V) bool)``.

    ``present`` comes from the recorded keypoints, not from ``x``: in ``x`` the root of the
    reference frame sits exactly at the origin, all zeros, yet it exists."""
    raw = stack_keypoints(data)
    present = joint_present(raw)
    return with_trajectory(pose_frame(raw, data.get("layout", "ntu25")), present), present


def word_counts(words: Tensor, present: Tensor, vocab: Sequence[str]) -> dict[str, int]:
    """Occurrences of each word over present joints (all frames, all axes)."""
    counts = torch.bincount(words[present].reshape(-1), minlength=len(vocab))
    return {w: int(c) for w, c in zip(vocab, counts.tolist())}


def unmove_fraction(words: Tensor, present: Tensor, config: SemanticConfig) -> float:
    counts = word_counts(words, present, vocabulary(config))
    return counts[UNMOVE] / max(sum(counts.values()), 1)


def unmove_curve(sequences: dict[str, tuple[Tensor, Tensor]], thresholds: Sequence[float],
                 config: SemanticConfig) -> dict[str, list[float]]:
    """Unmove fraction per threshold for each named ``(x (..., T, V, 3), present (..., T, V))`` pair:
    ``{name: [fraction, ...]}`` (``numeric_motion`` is 0 exactly where the word is "unmove")."""
    return {name: [float((numeric_motion(x, threshold=t, config=config)[pres] == 0).double().mean())
                   for t in thresholds] for name, (x, pres) in sequences.items()}


def class_histograms(words: Tensor, present: Tensor, labels: Sequence[int], num_classes: int,
                     num_words: int) -> np.ndarray:
    """``(num_classes, num_words)``: each class's word frequencies over present joints, axes and frames."""
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    w = words.flatten(1)                                                   # (N, M*T*V*C)
    p = present[..., None].expand(words.shape).flatten(1)
    idx = (lab[:, None] * num_words + w)[p]
    hist = torch.bincount(idx, minlength=num_classes * num_words).reshape(num_classes, num_words).double()
    return (hist / hist.sum(1, keepdim=True).clamp_min(1)).numpy()


# ---------------------------------------------------------------------------------------------
# text table
def source_banner(source: str) -> str:
    """A loud, one-paragraph statement of where the text table came from."""
    if "random-init" in source:
        return (f"TEXT TABLE SOURCE: {source}\n  -> NOT CLIP. A randomly initialised open_clip text tower (seeded): "
                f"every word gets a distinct but meaningless 512-d code. CLIP weights are absent on this machine; "
                f"pass cache_path to a table made with real weights for the paper's setting.")
    if source.startswith(("clip:", "openclip:")):
        return f"TEXT TABLE SOURCE: {source}\n  -> real CLIP text features (frozen), as in the paper."
    if source.startswith("wordllama:"):
        return (f"TEXT TABLE SOURCE: {source}\n  -> wordllama's pretrained word embedding (frozen, 256-d, shipped "
                f"with the package): a real language model, not CLIP (CLIP's weights are not on this machine).")
    return f"TEXT TABLE SOURCE: {source}\n  -> a table supplied by the user or a cache file; check its origin."


def is_clip(source: str) -> bool:
    """True when ``text_table``'s ``source`` says the numbers came from real CLIP weights (directly or
    through a cache made from them); False for the random tower and for user tables (origin unknown)."""
    return source.startswith(("clip:", "openclip:")) or (source.startswith("cache:") and "random-init" not in source)


def short_source(source: str) -> str:
    """A figure-title version of ``source`` that cannot be mistaken for CLIP when it is not."""
    if "random-init" in source:
        return "NOT CLIP: random-init text tower"
    if source.startswith("wordllama:"):
        return f"wordllama ({source.split(':', 1)[1]})"
    return f"CLIP ({source})" if is_clip(source) else f"user table, origin unknown ({source})"


def cosine_similarity(table: Tensor) -> np.ndarray:
    t = table / table.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (t @ t.T).numpy()


# ---------------------------------------------------------------------------------------------
# the reducer on a small task
class TinyClassifier(nn.Module):
    """``S (N, M, T, V, C) -> (N, classes)``: a linear layer over each frame's ``V*C`` values, one
    temporal convolution, max over time and over present persons, a linear head."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 64, kernel: int = 5):
        super().__init__()
        self.frame = nn.Linear(in_features, hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, s: Tensor, person: Tensor) -> Tensor:
        N, M = s.shape[:2]
        h = torch.relu(self.frame(s.flatten(3)))                              # (N, M, T, H)
        h = torch.relu(self.conv(h.flatten(0, 1).transpose(1, 2))).amax(-1)  # (N*M, H)
        h = h.view(N, M, -1).masked_fill(~person[..., None], float("-inf")).amax(1)
        return self.head(h)


@dataclass
class ReducerRun:
    """What ``train_reducer`` learned: per-word scalars before/after (``(K,)``), loss curves and
    held-out accuracies of the word and numeric encodings, the trained word encoder."""

    values_before: np.ndarray
    values_after: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    encoder: SemanticEncoder | None = None


def _fit(encoder: SemanticEncoder, x: Tensor, labels: Tensor, train: Tensor, val: Tensor, num_classes: int,
         steps: int, batch_size: int, lr: float, seed: int, progress: bool) -> tuple[list[float], float]:
    from tqdm import tqdm  # not tqdm.auto: its widget misbehaves under papermill

    torch.manual_seed(seed)
    clf = TinyClassifier(x.shape[-2] * x.shape[-1] * encoder.out_dim, num_classes)
    params = [*clf.parameters(), *encoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    person = joint_present(x).flatten(2).any(-1)                             # (N, M)
    losses = []

    def batches(_epoch):  # one epoch of `steps` random batches of training rows
        for _ in tqdm(range(steps), desc=f"reducer ({encoder.mode})", disable=not progress):
            yield train[torch.randint(len(train), (batch_size,), generator=gen)]

    fit(opt, lambda idx: nn.functional.cross_entropy(clf(encoder(x[idx]), person[idx]), labels[idx]), batches,
        on_step=lambda loss: losses.append(loss.item()))
    with torch.no_grad():
        pred = torch.cat([clf(encoder(x[i]), person[i]).argmax(-1) for i in val.split(256)])
    return losses, float((pred == labels[val]).float().mean())


def train_reducer(x: Tensor, labels, train_rows, val_rows, table: Tensor, config: SemanticConfig,
                  num_classes: int, steps: int = 300, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                  progress: bool = False) -> ReducerRun:
    """Train the word encoder's reducer with a ``TinyClassifier`` on ``x (N, M, T, V, 3)`` (module
    docstring), and the same classifier on the numeric encoding; accuracies on ``val_rows``."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    train, val = torch.as_tensor(np.asarray(train_rows)), torch.as_tensor(np.asarray(val_rows))
    torch.manual_seed(seed)
    words = SemanticEncoder(table, mode="words", config=config)
    before = words.word_values().detach().squeeze(-1).numpy().copy()
    run = ReducerRun(before, before)
    for name, enc in (("words", words), ("numeric", SemanticEncoder(mode="numeric", config=config))):
        run.history[name], run.accuracy[name] = _fit(enc, x, labels, train, val, num_classes, steps, batch_size,
                                                     lr, seed, progress)
    run.values_after = words.word_values().detach().squeeze(-1).numpy().copy()
    run.accuracy["chance"] = float(np.bincount(labels[val].numpy()).max() / max(len(val), 1))
    run.encoder = words.eval()
    return run


# ---------------------------------------------------------------------------------------------
# figures
def word_colours(vocab: Sequence[str]) -> list:
    """One RGBA colour per word: its direction's colour, lighter for "slightly", full for "quickly"."""
    from matplotlib.colors import to_rgba

    out = []
    for w in vocab:
        *grade, base = w.split(" ")
        r, g, b, _ = to_rgba(DIRECTION_COLOURS.get(base, "#000000"))
        mix = {"slightly": 0.55, "quickly": 0.0}.get(grade[0] if grade else "", 0.25) if base != UNMOVE else 0.0
        out.append((r + (1 - r) * mix, g + (1 - g) * mix, b + (1 - b) * mix, 1.0))
    return out


def heatmap_figure(rows: Sequence[tuple], vocab: Sequence[str], title: str | None = None):
    """Words as joints x time maps: ``rows`` of ``(words (T, V, 3), layout, label)``; columns x, y, z."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    cmap = ListedColormap(word_colours(vocab))
    norm = BoundaryNorm(np.arange(len(vocab) + 1) - 0.5, len(vocab))
    tall = max(get_layout(lay).num_joints for _, lay, _ in rows)
    fig = Figure(figsize=(13, 0.16 * tall * len(rows) + 1.6), layout="constrained")
    grid = fig.subplots(len(rows), 3, squeeze=False)
    for axes, (words, layout, label) in zip(grid, rows):
        lay = get_layout(layout)
        w = np.asarray(words)
        for c, ax in enumerate(axes):
            ax.imshow(w[:, :, c].T, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
            ax.set_yticks(range(lay.num_joints), lay.joints, fontsize=5)
            ax.set_title(f"{label}: {AXES[c]} axis", fontsize=9)
            ax.set_xlabel("frame", fontsize=8)
            if c:
                ax.set_yticklabels([])
    used = sorted({int(v) for words, _, _ in rows for v in np.unique(np.asarray(words))})
    fig.legend(handles=[Patch(color=word_colours(vocab)[k], label=vocab[k]) for k in used], loc="outside lower center",
               ncols=min(len(used), 10), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def unmove_figure(curves: dict[str, list[float]], thresholds: Sequence[float], threshold: float):
    """Unmove fraction against the threshold (log x), one line per set, the chosen threshold marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, ys in curves.items():
        ax.plot(thresholds, ys, "o-", ms=3, label=name)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold = {threshold:g}")
    ax.set_xscale("log")
    ax.set_xlabel("threshold (torso lengths per frame)")
    ax.set_ylabel('fraction of "unmove"')
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return fig


def histogram_figure(hist: np.ndarray, class_names: Sequence[str], vocab: Sequence[str], groups: dict | None = None,
                     title: str = "motion words per class"):
    """Per class: the unmove share (bars) and how the remaining, moving entries split over the direction words."""
    from matplotlib.figure import Figure

    k = list(vocab).index(UNMOVE)
    moving = np.delete(hist, k, axis=1)
    moving = moving / moving.sum(1, keepdims=True).clip(1e-12)
    words = [w for i, w in enumerate(vocab) if i != k]
    group_of = {c: g for g, cs in (groups or {}).items() for c in cs}
    labels = [f"{c} ({group_of[c]})" if c in group_of else c for c in class_names]
    fig = Figure(figsize=(4 + 0.55 * len(words), 0.32 * len(class_names) + 1.8), layout="constrained")
    a, b = fig.subplots(1, 2, width_ratios=[1, max(2, len(words) / 2.5)], sharey=True)
    a.barh(range(len(class_names)), hist[:, k], color="0.6")
    a.set_yticks(range(len(class_names)), labels, fontsize=8)
    a.invert_yaxis()
    a.set_xlim(0, 1)
    a.set_xlabel('"unmove" share')
    im = b.imshow(moving, aspect="auto", cmap="viridis", vmin=0)
    b.set_xticks(range(len(words)), words, rotation=45, ha="right", fontsize=8)
    if len(words) <= 8:
        for (i, j), v in np.ndenumerate(moving):
            b.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if v < 0.6 * moving.max() else "k")
    fig.colorbar(im, ax=b, label="share among moving entries")
    fig.suptitle(title)
    return fig


def similarity_figure(table: Tensor, vocab: Sequence[str], source: str):
    """Cosine similarity of the words' text features, its source in the title (NOT CLIP when random)."""
    from matplotlib.figure import Figure

    sim = cosine_similarity(table)
    fig = Figure(figsize=(1.6 + 0.42 * len(vocab), 1.2 + 0.4 * len(vocab)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(sim, cmap="magma", vmin=min(0.0, float(sim.min())), vmax=1)
    ax.set_xticks(range(len(vocab)), vocab, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(vocab)), vocab, fontsize=8)
    if len(vocab) <= 8:
        for (i, j), v in np.ndenumerate(sim):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.8 else "k")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    ax.set_title(f"text table: {short_source(source)}", fontsize=9, color="C3" if "random-init" in source else "k")
    return fig


def scalars_figure(run: ReducerRun, vocab: Sequence[str], source: str):
    """The reducer's scalar per word before and after training, and both training-loss curves."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4), layout="constrained")
    a, b = fig.subplots(1, 2, width_ratios=[max(1.0, len(vocab) / 7), 1])
    pos = np.arange(len(vocab))
    a.bar(pos - 0.2, run.values_before, 0.4, label="before (random reducer)", color="0.7")
    a.bar(pos + 0.2, run.values_after, 0.4, label="after training", color=word_colours(vocab), edgecolor="k", lw=0.5)
    a.axhline(0, color="k", lw=0.5)
    a.set_xticks(pos, vocab, rotation=45 if len(vocab) > 7 else 0, ha="right" if len(vocab) > 7 else "center",
                 fontsize=8)
    a.set_ylabel("word value (reducer output)")
    a.legend(fontsize=8)
    a.set_title(f"reducer scalars ({short_source(source)})", fontsize=9)
    for name, ys in run.history.items():
        k = max(1, len(ys) // 30)
        smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
        b.plot(np.arange(len(smooth)) + k - 1, smooth, label=f"{name}: held-out acc {run.accuracy[name]:.2f}")
    b.set_xlabel("step")
    b.set_ylabel("cross-entropy (smoothed)")
    b.legend(fontsize=8)
    b.set_title(f"tiny classifier on S (chance {run.accuracy['chance']:.2f})", fontsize=9)
    return fig


def encodings_figure(x: Tensor, layout: str, encoder: SemanticEncoder, title: str | None = None):
    """One person's ``S`` ``(T, V, 3)`` as the numeric ablation (top) and as trained word values (bottom)."""
    from matplotlib.figure import Figure

    lay = get_layout(layout)
    with torch.no_grad():
        num = numeric_motion(x, config=encoder.config).numpy()
        val = encoder(x).numpy()
    fig = Figure(figsize=(13, 0.32 * lay.num_joints + 1.5), layout="constrained")
    grid = fig.subplots(2, 3)
    vmax = float(np.abs(val).max()) or 1.0
    for row, (s, name, lim) in enumerate(((num, "numeric sign(d)", 1.0), (val, "word values", vmax))):
        for c, ax in enumerate(grid[row]):
            im = ax.imshow(s[:, :, c].T, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-lim, vmax=lim)
            ax.set_yticks(range(lay.num_joints), lay.joints if c == 0 else [], fontsize=5)
            ax.set_title(f"{name}: {AXES[c]} axis", fontsize=9)
        fig.colorbar(im, ax=list(grid[row]), shrink=0.8)
    grid[1, 0].set_xlabel("frame", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def counts_figure(counts: dict[str, dict[str, dict[str, int]]]):
    """Word shares ``{panel (vocabulary): {series (source): {word: count}}}``: one bar panel per vocabulary,
    one bar per source and word (sources told apart by hatching)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(12, 2.9 * len(counts)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(counts), 1))
    hatches = ("", "//", "..", "xx")
    for ax, (panel, series) in zip(axes, counts.items()):
        words = list(next(iter(series.values())))
        w = 0.8 / len(series)
        for j, (name, cnt) in enumerate(series.items()):
            n = np.array([cnt[k] for k in words], float)
            ax.bar(np.arange(len(words)) + (j - (len(series) - 1) / 2) * w, n / max(n.sum(), 1), w,
                   color=word_colours(words), edgecolor="k", lw=0.4, hatch=hatches[j % len(hatches)])
        ax.set_xticks(range(len(words)), words, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share")
        ax.set_title(panel, fontsize=9)
        ax.legend(handles=[Patch(facecolor="white", edgecolor="k", hatch=hatches[j % len(hatches)], label=name)
                           for j, name in enumerate(series)], fontsize=8)
    return fig
