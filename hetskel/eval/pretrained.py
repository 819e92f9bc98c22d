"""Evaluating a pretrained network on its own dataset: frozen features, linear probe, 1-NN retrieval,
semi-supervised fine-tuning, and the same probe on an untrained network as the baseline.

    >>> from hetskel.experiment.pretrain import build_pretrainer, load_data, load_pretrained
    >>> pretrainer, spec = load_pretrained("runs/04_pretrain/<run>")          # e.g. SynHet J+C+S
    >>> res = evaluate_pretrained(pretrainer, *load_data(spec), untrained=build_pretrainer(spec))
    >>> res["linear_top1"], res["linear_top1_random_init"], res["knn_top1"]

The baseline is passed in, not built here: ``build_pretrainer(spec)`` gives the pretrained network's
exact initial weights (same spec and seed), and only the difference to it says what pretraining
learned (a random transformer over skeletons is a strong baseline).
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hetskel.data.errors import DataError
from hetskel.eval.protocols import (
    extract_features,
    knn_retrieval,
    linear_probe,
    semi_supervised,
)
from hetskel.model.augment import crop_batch
from hetskel.model.objective import Pretrainer


class Features(nn.Module):
    """Batch -> ``(N, 2d)`` representation from the pretrained modalities the batch provides (no
    augmentation: the whole clip resized to T). With every modality present this equals
    ``Pretrainer.represent``; on a dataset without a 2D source (transfer) C is simply absent and
    the fused stream averages the embeddings of J and S. ``stream``: ``"fused"`` (UmURL's),
    ``"concat"`` (the fused stream and every present modality's single stream concatenated,
    ``(N, (1 + K) * 2d)``) or ``"single"`` (one modality only); see ``UnifiedEncoder.represent``."""

    def __init__(self, pretrainer: Pretrainer, stream: str = "fused"):
        super().__init__()
        self.pretrainer, self.stream = pretrainer, stream

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        p = self.pretrainer
        raw = crop_batch(dict(batch), p.encoder.config.num_frames, p.augment, None)
        mods, _ = p.processor(raw) if p.processor is not None else (raw, {})
        use = {k: mods[k] for k in p.modalities if isinstance(mods.get(k), torch.Tensor)}
        if not use:
            raise DataError(f"the batch gives none of the pretrained modalities {p.modalities} (keys {list(batch)})")
        return p.encoder.represent(use, stream=self.stream)


class Classifier(nn.Module):
    """Pretrained network + ``Linear(2d, classes)``: logits for semi-supervised fine-tuning."""

    def __init__(self, pretrainer: Pretrainer, num_classes: int):
        super().__init__()
        self.features = Features(pretrainer)
        self.head = nn.Linear(pretrainer.encoder.out_dim, num_classes)

    def forward(self, batch):
        return self.head(self.features(batch))


def probe_batch_size(n: int, batch_size: int | None = None) -> int:
    """The probe's SGD batch: ``batch_size`` if given, else the paper's 512 capped at ``n // 10`` (at
    least 8), so a small dataset still gets ~10 steps per epoch (NTU-60's 40k clips get 512)."""
    return int(batch_size) if batch_size else max(8, min(512, n // 10))


def probe(pretrainer: Pretrainer, train_ds, val_ds, num_classes: int, epochs: int = 150, seed: int = 0,
          batch_size: int | None = None, device=None, stream: str = "fused") -> dict:
    """Linear probe (``probe_batch_size``) + 1-NN retrieval of frozen features (``Features(stream)``):
    the probe's dict plus ``knn_top1``."""
    feat = Features(pretrainer, stream=stream)
    ftr, ytr = extract_features(feat, train_ds, 512, device)
    fte, yte = extract_features(feat, val_ds, 512, device)
    out = linear_probe(ftr, ytr, fte, yte, num_classes, epochs=epochs, seed=seed, device=device,
                       batch_size=probe_batch_size(len(ftr), batch_size))
    out["knn_top1"] = knn_retrieval(ftr, ytr, fte, yte, k=1, device=device)
    out["feature_dim"] = int(ftr.shape[1])
    out["knn_confusion"] = knn_confusion(ftr, ytr, fte, yte, num_classes)
    return out


@torch.no_grad()
def knn_confusion(train_feats, train_labels, test_feats, test_labels, num_classes: int, chunk: int = 1024
                  ) -> np.ndarray:
    """``(C, C)`` counts (rows true) of 1-NN by cosine similarity, train set as gallery (the
    prediction of ``protocols.knn_retrieval(k=1)``)."""
    g = torch.nn.functional.normalize(torch.as_tensor(train_feats).float(), dim=1)
    ytr = torch.as_tensor(train_labels).long()
    yte = torch.as_tensor(test_labels).long()
    xte = torch.as_tensor(test_feats).float()
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    for s in range(0, len(xte), chunk):
        q = torch.nn.functional.normalize(xte[s:s + chunk].to(g.device), dim=1)
        pred = ytr.to(g.device)[(q @ g.T).argmax(1)].cpu().numpy()
        np.add.at(out, (yte[s:s + chunk].numpy(), pred), 1)
    return out


#: class groups reported by ``group_top1`` (SynHet's), in table order
GROUPS = ("face", "hand", "body", "two_person")


def synhet_group(name: str) -> str | None:
    """SynHet's class group of ``name`` (``hetskel.data.synhet.class_group``), None for other classes."""
    from hetskel.data.synhet import class_group
    try:
        return class_group(str(name))
    except DataError:
        return None


def group_top1(confusion, class_names: Sequence[str],
               group_of: Callable[[str], str | None] = synhet_group) -> dict[str, float]:
    """Top-1 (%) per class group from a ``(C, C)`` count confusion matrix (rows true): correct over
    test clips of the group's classes, i.e. per-class accuracy weighted by the test split's class
    counts. Groups with no test clip (other datasets: every group) are omitted; keys in ``GROUPS``
    order, then any others sorted."""
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1] or conf.shape[0] != len(class_names):
        raise ValueError(f"group_top1: confusion {conf.shape} does not match {len(class_names)} class names")
    correct, total = {}, {}
    for i, name in enumerate(class_names):
        g = group_of(name)
        if g is None or conf[i].sum() == 0:
            continue
        correct[g] = correct.get(g, 0.0) + conf[i, i]
        total[g] = total.get(g, 0.0) + conf[i].sum()
    order = [g for g in GROUPS if g in total] + sorted(set(total) - set(GROUPS))
    return {g: float(100.0 * correct[g] / total[g]) for g in order}


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}".replace(".", "_") + "pct"


def features_of(pretrainer: Pretrainer) -> str:
    """The evaluation features of the spec the pretrainer was built from (``PretrainSpec.features``:
    ``"concat"`` for the ``hetskel`` recipe, ``"fused"`` for ``paper``); ``"fused"`` without a spec."""
    spec = getattr(pretrainer, "spec", None)
    return getattr(spec, "features", None) or "fused"


def evaluate_pretrained(pretrainer: Pretrainer, train_ds, val_ds, probe_epochs: int = 150,
                        semi_fractions: Sequence[float] = (0.01, 0.1), semi_seeds: Sequence[int] = (0, 1, 2, 3, 4),
                        semi_epochs: int = 80, untrained: Pretrainer | None = None,
                        device=None, batch_size: int | None = None, stream: str | None = None) -> dict:
    """The paper's protocols (linear probe, 1-NN retrieval, semi-supervised) on ``(train_ds, val_ds)``,
    and the same probe on an untrained network.

    Returns ``linear_top1`` (final epoch), ``linear_top1_best``, ``knn_top1``; with ``random_init``
    ``linear_top1_random_init`` / ``knn_top1_random_init`` from ``build_pretrainer(spec)`` (same spec
    and seed, so exactly the pretrained network's initial weights); per fraction f
    ``semi_<100f>pct_mean`` / ``_std`` / ``_per_seed`` / ``_labelled`` (whole network fine-tuned,
    e.g. ``semi_1pct_mean``); ``per_class_acc`` ``{class: %}``, ``confusion`` ``(C, C)`` rows true,
    ``class_names``, ``probe_history``, sizes; ``per_group_linear_top1`` ``{group: %}`` (``group_top1``:
    SynHet's face / hand / body / two_person, absent groups omitted; ``{}`` on other data),
    ``per_group_knn_top1`` and, with ``untrained``, both ``..._random_init``. Accuracies in %. ``batch_size``: the
    probe's SGD batch (default ``probe_batch_size``). ``stream``: the probe's features
    (``Features``: ``"fused"`` or ``"concat"``; None: ``features_of(pretrainer)``, the recipe of the
    spec it was built from); fine-tuning always uses the fused stream.
    """
    stream = stream or features_of(pretrainer)
    dev = torch.device(device) if device else next(pretrainer.parameters()).device
    C = max(train_ds.num_classes, val_ds.num_classes)
    names = list(train_ds.class_names or val_ds.class_names or [str(i) for i in range(C)])
    res = probe(pretrainer, train_ds, val_ds, C, probe_epochs, device=dev, batch_size=batch_size, stream=stream)
    out = {"linear_top1": res["top1_final"], "linear_top1_best": res["top1_best"],
           "linear_best_epoch": res["best_epoch"], "knn_top1": res["knn_top1"],
           "num_train": len(train_ds), "num_val": len(val_ds), "num_classes": C,
           "feature_dim": int(res.get("feature_dim", pretrainer.encoder.out_dim)), "features": stream,
           "modalities": list(pretrainer.modalities),
           "probe_epochs": probe_epochs, "probe_history": res["history"], "class_names": names,
           "per_class_acc": dict(zip(names, [float(a) for a in res["per_class_acc"]])),
           "confusion": res["confusion"].tolist(), "per_group_linear_top1": group_top1(res["confusion"], names),
           "per_group_knn_top1": group_top1(res["knn_confusion"], names)}
    if untrained is not None:
        rand = probe(untrained.to(dev), train_ds, val_ds, C, probe_epochs, device=dev, batch_size=batch_size,
                     stream=stream)
        out.update(linear_top1_random_init=rand["top1_final"], linear_top1_best_random_init=rand["top1_best"],
                   knn_top1_random_init=rand["knn_top1"],
                   per_group_linear_top1_random_init=group_top1(rand["confusion"], names),
                   per_group_knn_top1_random_init=group_top1(rand["knn_confusion"], names))
    if semi_fractions:
        semi = semi_supervised(lambda: Classifier(copy.deepcopy(pretrainer), C), train_ds, val_ds,
                               fractions=tuple(semi_fractions), seeds=tuple(semi_seeds), epochs=semi_epochs,
                               device=dev)
        for frac, r in semi.items():
            key = f"semi_{_pct(frac)}"
            out.update({f"{key}_mean": r["top1_mean"], f"{key}_std": r["top1_std"],
                        f"{key}_per_seed": r["top1_per_seed"], f"{key}_labelled": r["n_labelled"]})
    return out


def results_table(res: Mapping) -> str:
    """The protocols of ``evaluate_pretrained`` / ``transfer_evaluate``: pretrained next to random init."""
    rows = [("linear probe top-1 (final)", "linear_top1"), ("linear probe top-1 (best)", "linear_top1_best"),
            ("1-NN retrieval top-1", "knn_top1")]
    lines = [f"{'protocol':<30}{'pretrained':>12}{'random init':>13}"]
    for name, k in rows:
        rand = res.get(f"{k}_random_init")
        lines.append(f"{name:<30}{res[k]:>12.1f}{'' if rand is None else f'{rand:>13.1f}'}")
    for k in sorted((k[:-5] for k in res if k.startswith("semi_") and k.endswith("_mean")), key=len):
        pct = k[len("semi_"):-len("pct")].replace("_", ".")
        name = f"semi-supervised {pct}% ({res[k + '_labelled']} labels)"
        lines.append(f"{name:<30}{res[k + '_mean']:>7.1f} +- {res[k + '_std']:.1f}")
    return "\n".join(lines)
