"""Transferring a pretrained network to other datasets, other layouts, fewer formats.

    >>> from hetskel.experiment.pretrain import build_pretrainer, load_pretrained
    >>> pretrainer, spec = load_pretrained("runs/04_pretrain/<run>")          # e.g. SynHet J+C+S
    >>> train_ds, val_ds = load_target("utd_mhad", num_frames=spec.num_frames)  # kinect20_utd, 3D only
    >>> res = transfer_evaluate(pretrainer, train_ds, val_ds, probe_epochs=150, untrained=build_pretrainer(spec))
    >>> res["linear_top1"], res["linear_top1_random_init"], res["knn_top1"], res["adapted"]

How a target layout meets the pretrained unified skeleton. Every pretrained *source* (the 3D J
source, e.g. ``ntu25``; the 2D C source, e.g. ``coco17``) keeps its processor: pose frame, lifter,
prompts, semantic reducer, all with the pretrained weights. A target source is re-indexed onto the
pretrained source of the same dimensionality that shares the most joints (``hetskel.layouts.convert``
by canonical names; spine joints are derived when the target has their ingredients), and then goes
through that pretrained processor unchanged. Kinect v1 (``kinect20_utd``, ``kinect20_msr``) -> ntu25:
15+5 joints are copied; ntu25's ``neck``, hand tips and thumbs do not exist in Kinect v1. ``fill``:

``"anchor"`` (default)  each missing joint copies its nearest real joint along the bones
                        (``hetskel.hetero.prompts.anchor_indices``: neck <- spine_shoulder, hand tips and
                        thumbs <- hands), so the skeleton the encoder sees has no holes it never saw;
``"zero"``              missing joints stay zero, i.e. absent (the pose frame and prompts treat
                        exact zeros as missing; the pretrained prompts only fill the joints the
                        *pretrained* source lacked, e.g. ntu25's face).

The face joints every Kinect layout lacks are filled by the pretrained ``prompt_J`` exactly as in
pretraining. Target joints the pretrained source does not know are dropped (listed in the report).
A modality without its source (C on a 3D-only dataset, J on FineGYM's 2D-only data) is absent: the
features are the fused stream of the modalities present (J and S from a 3D target, S computed from
J; C and S from a 2D one), see ``Features``.

Given ``untrained`` (``build_pretrainer(spec)``: the pretrained network's exact initial weights),
the protocol also runs on it, reported as ``*_random_init``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from hetskel.data.batches import ArrayDataset, load_dataset
from hetskel.data.errors import DataError
from hetskel.eval.pretrained import probe
from hetskel.hetero.prompts import anchor_indices
from hetskel.io import shared_data_dir
from hetskel.layouts import convert, get_layout
from hetskel.model.objective import Pretrainer

FILLS = ("anchor", "zero")


# ---------------------------------------------------------------------------------------------
# transfer
def pretrained_layouts(pretrainer: Pretrainer) -> dict[str, str]:
    """``{modality: layout}`` of the raw sources the pretrained processor reads."""
    proc = pretrainer.processor
    if hasattr(proc, "layouts"):  # HeteroProcessor
        return {k: lay.name for k, lay in proc.layouts.items()}
    if hasattr(proc, "layout"):  # ClassicModalities
        return {"J": proc.layout.name}
    raise ValueError("the pretrainer has no processor with known source layouts")


def match_layout(layout: str, candidates: Sequence[str]) -> str:
    """The candidate with the same dimensionality as ``layout`` sharing the most joints with it."""
    lay = get_layout(layout)
    same = [get_layout(c) for c in candidates if get_layout(c).dims == lay.dims]
    if not same:
        raise DataError(f"the pretrained network has no {lay.dims}D source (it reads {list(candidates)}); "
                        f"a {lay.name!r} dataset cannot be fed to it", field="layout")
    return max(same, key=lambda c: sum(c.has(j) for j in lay.joints)).name


def layout_plan(src: str, dst: str, fill: str = "anchor") -> dict:
    """How ``src`` joints land on ``dst``: ``{"to", "missing", "filled_from", "dropped", "index"}``;
    ``index (V_dst,)`` is the gather applied after ``convert`` (each missing joint reads its anchor)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    s, d = get_layout(src), get_layout(dst)
    _, real = convert(np.zeros((1, s.num_joints, 1), np.float32), s, d)
    missing = np.flatnonzero(~real).tolist()
    index = np.arange(d.num_joints)
    filled = {}
    if fill == "anchor" and missing:
        for m, a in zip(missing, anchor_indices(d, [s, d], real, missing)):
            if a >= 0:
                index[m] = a
                filled[d.joints[m]] = d.joints[a]
    return {"to": d.name, "missing": [d.joints[m] for m in missing], "filled_from": filled,
            "dropped": [j for j in s.joints if not d.has(j)], "index": index.tolist()}


def adapt_dataset(ds: ArrayDataset, pretrainer: Pretrainer, fill: str = "anchor") -> tuple[ArrayDataset, dict]:
    """``ds`` re-indexed onto the pretrained sources: ``(dataset keyed by pretrained layouts, report)``.

    Each source ``(N, M, T, V_src, C)`` becomes ``(N, M, T, V_dst, C)`` (scores of 2D sources too);
    the report is ``{target layout: layout_plan(...)}`` without the index.
    """
    targets = list(pretrained_layouts(pretrainer).values())
    x, score, lengths, layouts, report = {}, {}, {}, {}, {}
    for key, lay in ds.layouts.items():
        dst = match_layout(lay, targets)
        if dst in x:
            raise DataError(f"two sources of the dataset map onto the pretrained {dst!r}: {ds.layouts}")
        plan = layout_plan(lay, dst, fill)
        idx = torch.as_tensor(plan.pop("index"), device=ds.x[key].device)
        x[dst] = convert(ds.x[key], lay, dst)[0].index_select(3, idx)
        if key in ds.score:
            s = convert(ds.score[key][..., None], lay, dst)[0][..., 0]
            score[dst] = s.index_select(3, idx)
        if key in ds.lengths:
            lengths[dst] = ds.lengths[key]
        layouts[dst] = dst
        report[lay] = plan
    return ArrayDataset(x=x, labels=ds.labels, frame_dirs=list(ds.frame_dirs), layouts=layouts, score=score,
                        class_names=ds.class_names, lengths=lengths), report


def load_target(name: str, num_frames: int, max_persons: int = 2, splits: Sequence[str] = ("xsub_train", "xsub_val"),
                root: str | Path | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """``(train, val)`` of a transfer target: ``"utd_mhad"`` / ``"msr_action3d"`` (read from ``root``,
    default ``../shared/data/<name>``; odd subjects train, even test) or a PYSKL file (its
    ``layout`` key, else guessed from V and C), with the split names ``splits``
    (PKU-MMD II: xsub_train / xsub_val; FineGYM: train / val)."""
    from hetskel.data.arrays import load_msr_action3d, load_utd_mhad

    if name in ("utd_mhad", "msr_action3d"):
        base = Path(root) if root else shared_data_dir()
        if base is None:
            raise FileNotFoundError(f"{name}: no data folder (../shared/data is absent; pass root=)")
        folder = base / name if (base / name).is_dir() else base
        data = load_utd_mhad(folder) if name == "utd_mhad" else load_msr_action3d(folder)
    else:
        from hetskel.data.pyskl import guess_layout, load_pyskl

        data = load_pyskl(name)
        if not data.get("layout"):
            kp = np.asarray(data["annotations"][0]["keypoint"])
            data = {**data, "layout": guess_layout(kp.shape[-2], kp.shape[-1])}
    src = {data["layout"]: data}
    return tuple(load_dataset(src, split=s, num_frames=num_frames, max_persons=max_persons) for s in splits)


def modalities_used(pretrainer: Pretrainer, ds: ArrayDataset) -> list[str]:
    """The pretrained modalities the processor produces from ``ds`` (one sample is processed)."""
    dev = next(pretrainer.parameters()).device
    with torch.no_grad():
        batch = {k: v.to(dev) for k, v in ds.get_batch(torch.arange(min(2, len(ds)))).items()}
        mods, _ = pretrainer.processor(batch) if pretrainer.processor is not None else (batch, {})
    return [k for k in pretrainer.modalities if isinstance(mods.get(k), torch.Tensor)]


def transfer_evaluate(pretrainer: Pretrainer, train_ds: ArrayDataset, val_ds: ArrayDataset, probe_epochs: int = 150,
                      fill: str = "anchor", untrained: Pretrainer | None = None,
                      device=None, batch_size: int | None = None) -> dict:
    """Linear probe and 1-NN retrieval of the transferred network on a target dataset, next to the
    same protocol on the untrained network of the same spec and seed.

    Returns ``linear_top1``, ``linear_top1_best``, ``knn_top1`` (+ ``*_random_init``),
    ``modalities_used``, ``adapted`` (``adapt_dataset``'s report), ``per_class_acc``, sizes.
    """
    dev = torch.device(device) if device else next(pretrainer.parameters()).device
    tr, report = adapt_dataset(train_ds, pretrainer, fill)
    va, _ = adapt_dataset(val_ds, pretrainer, fill)
    C = max(tr.num_classes, va.num_classes)
    names = list(tr.class_names or [str(i) for i in range(C)])
    res = probe(pretrainer, tr, va, C, probe_epochs, device=dev, batch_size=batch_size)
    out = {"linear_top1": res["top1_final"], "linear_top1_best": res["top1_best"], "knn_top1": res["knn_top1"],
           "modalities_used": modalities_used(pretrainer.to(dev), tr),
           "adapted": report, "fill": fill, "num_train": len(tr), "num_val": len(va), "num_classes": C,
           "per_class_acc": dict(zip(names, [float(a) for a in res["per_class_acc"]])),
           "confusion": res["confusion"].tolist(), "class_names": names}
    if untrained is not None:
        rand = probe(untrained.to(dev), tr, va, C, probe_epochs, device=dev, batch_size=batch_size)
        out.update(linear_top1_random_init=rand["top1_final"], linear_top1_best_random_init=rand["top1_best"],
                   knn_top1_random_init=rand["knn_top1"])
    return out


# ---------------------------------------------------------------------------------------------
# reporting
def describe_plan(layout: str, pretrainer: Pretrainer, fill: str = "anchor") -> str:
    """One paragraph: where a target layout's joints land on the pretrained sources and what is filled."""
    dst = match_layout(layout, list(pretrained_layouts(pretrainer).values()))
    plan = layout_plan(layout, dst, fill)
    shared = get_layout(layout).num_joints - len(plan["dropped"])
    filled = ", ".join(f"{j} <- {a}" for j, a in plan["filled_from"].items()) or "none"
    zero = [j for j in plan["missing"] if j not in plan["filled_from"]]
    return (f"{layout} -> {dst}: {shared} joints copied, dropped {plan['dropped'] or 'none'}; "
            f"missing {len(plan['missing'])}, fill={fill!r}: filled {filled}; zero {zero or 'none'}")


def comparison_figure(results: Mapping[str, Mapping], title: str = "transfer"):
    """Grouped bars per target: linear probe and 1-NN top-1 of the transferred vs the untrained network."""
    # not pyplot: shown once, where the notebook asks
    from matplotlib.figure import Figure

    names = list(results)
    keys = [("linear_top1", "linear, pretrained", "tab:blue"), ("linear_top1_random_init", "linear, random init", "lightsteelblue"),
            ("knn_top1", "1-NN, pretrained", "tab:orange"), ("knn_top1_random_init", "1-NN, random init", "navajowhite")]
    fig = Figure(figsize=(2.2 + 1.8 * len(names), 3.4), layout="constrained")
    ax = fig.subplots()
    w = 0.8 / len(keys)
    for i, (k, label, color) in enumerate(keys):
        vals = [float(results[n].get(k, np.nan)) for n in names]
        ax.bar(np.arange(len(names)) + (i - 1.5) * w, vals, w, label=label, color=color)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.set_title(title)
    return fig


