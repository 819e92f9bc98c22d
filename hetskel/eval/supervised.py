"""Supervised training from scratch of the pretraining network: the ceiling a self-supervised
representation is measured against (the same encoder, the same split, labels used end to end).

    >>> from hetskel.eval.supervised import supervised_ceiling
    >>> res = supervised_ceiling(build_pretrainer(spec), train_ds, test_ds, epochs=20, seed=0)
    >>> res["top1_final"], res["per_group_top1"]           # {"face": .., "hand": .., ...} on SynHet

``train_supervised`` trains any ``batch -> logits`` model (cross-entropy, Adam, no augmentation: the
whole clip resized to T); ``supervised_ceiling`` wraps an untrained ``Pretrainer`` (processor +
encoder) in ``Classifier`` (fused stream + ``Linear(2d, classes)``) and adds the per-class-group
top-1 of the final network (``group_top1``). Every number is the final epoch's (no selection on the
test split); ``top1_best`` is stored for reference only.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hetskel.eval.pretrained import Classifier, group_top1
from hetskel.train.fit import fit


def train_supervised(model: nn.Module, train_ds, test_ds, epochs: int, lr: float = 1e-3, batch_size: int = 32,
                     weight_decay: float = 1e-5, seed: int = 0, device="cpu") -> dict:
    """Train ``model`` (batch dict -> logits ``(N, C)``) with cross-entropy and Adam on ``train_ds``
    (``get_batch(idx)`` with a ``"label"`` entry); test top-1 (%) on ``test_ds`` after every epoch.

    Batches are drawn from a seeded generator (the caller's RNG is untouched); the last partial
    batch is kept unless it has a single clip (the encoder's batch-free layers do not need more,
    but one clip gives a very noisy step). Returns ``top1_final``, ``top1_best``, ``history``,
    ``train_loss`` (per-epoch mean), ``train_top1_final`` (on the train split, eval mode).
    """
    dev = torch.device(device)
    model.to(dev)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(train_ds)
    history, losses = [], []
    total, seen = torch.zeros(()), 0  # this epoch's summed loss and clips

    def batches(_epoch):
        nonlocal total, seen
        model.train()
        perm, total, seen = torch.randperm(n, generator=g), torch.zeros(()), 0
        yield from (idx for idx in perm.split(batch_size) if len(idx) >= 2)

    def loss_of(idx) -> dict:
        batch = {k: v.to(dev) for k, v in train_ds.get_batch(idx).items()}
        return {"loss": F.cross_entropy(model(batch), batch["label"]), "clips": len(idx)}

    def count(out: dict) -> None:
        nonlocal total, seen
        total += out["loss"].detach().cpu() * out["clips"]
        seen += out["clips"]

    def end_epoch(_epoch) -> None:
        losses.append(float(total) / max(seen, 1))
        history.append(accuracy(model, test_ds, device=dev))

    fit(opt, loss_of, batches, epochs, on_step=count, on_epoch_end=end_epoch)
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"supervised training diverged (per-epoch losses {losses})")
    best = max(range(len(history)), key=history.__getitem__)
    return {"top1_final": history[-1], "top1_best": history[best], "best_epoch": best + 1, "history": history,
            "train_loss": losses, "train_top1_final": accuracy(model, train_ds, device=dev)}


@torch.no_grad()
def accuracy(model: nn.Module, ds, batch_size: int = 256, device="cpu") -> float:
    """Top-1 (%) of ``model`` on every clip of ``ds`` in eval mode (the mode is restored)."""
    was = model.training
    model.eval()
    correct = 0
    try:
        for s in range(0, len(ds), batch_size):
            batch = {k: v.to(device) for k, v in ds.get_batch(torch.arange(s, min(len(ds), s + batch_size))).items()}
            correct += int((model(batch).argmax(1) == batch["label"]).sum())
    finally:
        model.train(was)
    return 100.0 * correct / len(ds)


@torch.no_grad()
def confusion(model: nn.Module, ds, num_classes: int, batch_size: int = 256, device="cpu") -> np.ndarray:
    """``(C, C)`` int64 counts (rows true, columns predicted) of ``model`` on ``ds`` in eval mode."""
    was = model.training
    model.eval()
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    try:
        for s in range(0, len(ds), batch_size):
            batch = {k: v.to(device) for k, v in ds.get_batch(torch.arange(s, min(len(ds), s + batch_size))).items()}
            pred = model(batch).argmax(1).cpu().numpy()
            np.add.at(out, (batch["label"].cpu().numpy(), pred), 1)
    finally:
        model.train(was)
    return out


def supervised_ceiling(untrained, train_ds, test_ds, epochs: int, lr: float = 1e-3, batch_size: int = 32,
                       weight_decay: float = 1e-5, seed: int = 0, device="cpu") -> dict:
    """The same network as a pretraining run, trained supervised from its initial weights.

    ``untrained``: a ``Pretrainer`` (``build_pretrainer(spec)``: the pretrained run's exact initial
    weights; it is copied, not changed). The head's init is drawn from ``seed`` in a forked RNG.
    Returns ``train_supervised``'s dict plus ``confusion`` (final, on ``test_ds``), ``per_class_acc``
    ``{class: %}``, ``per_group_top1`` (``group_top1``: SynHet's groups, ``{}`` on other data)."""
    C = max(train_ds.num_classes, test_ds.num_classes)
    names = list(train_ds.class_names or test_ds.class_names or [str(i) for i in range(C)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = Classifier(copy.deepcopy(untrained), C)
    res = train_supervised(clf, train_ds, test_ds, epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                           seed=seed, device=device)
    conf = confusion(clf, test_ds, C, device=device)
    rows = conf.sum(1)
    res.update(confusion=conf.tolist(), class_names=names,
               per_class_acc={n: (float(100.0 * conf[i, i] / rows[i]) if rows[i] else math.nan)
                              for i, n in enumerate(names)},
               per_group_top1=group_top1(conf, names))
    return res
