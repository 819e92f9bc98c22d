"""Evaluation protocols: linear probe, kNN retrieval, semi-supervised fine-tuning, transfer.

Everything needs only an encoder and labelled data. A dataset here has the trainer's interface
(``__len__``, ``get_batch(idx) -> dict``, optionally ``to(device)`` and a ``device`` attribute)
and its batches carry integer labels under ``"label"``; pass datasets built without augmentation
for feature extraction. An encoder maps a batch dict to ``(N, D)`` features.

Accuracies are percentages (0-100), as the paper reports them. Protocol defaults are the
paper's (UmURL): probe SGD lr 0.03, momentum 0.9, batch 512, 150 epochs, lr x0.1 at 120 and 140;
retrieval 1-NN cosine with the train set as gallery; semi-supervised SGD lr 0.01, batch 64, 80
epochs, steps at 50 and 70, 5 seeds. Milestones scale with ``epochs`` (e.g. a 15-epoch smoke probe
steps at 12 and 14).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hetskel.train.fit import fit

__all__ = [
    "balanced_subset",
    "confusion_figure",
    "dataset_labels",
    "extract_features",
    "knn_retrieval",
    "linear_probe",
    "per_class_figure",
    "semi_supervised",
    "transfer",
]


def _device(device=None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _dataset_device(dataset) -> torch.device:
    dev = getattr(dataset, "device", None)
    return torch.device(dev) if dev is not None else torch.device("cpu")


def _as_tensor(x, dtype: torch.dtype, name: str, ndim: int) -> torch.Tensor:
    t = x.detach() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    return t.to(dtype)


def _scaled(milestones: Sequence[int], epochs: int, reference: int | None) -> list[int]:
    if reference and epochs != reference:
        return [round(m * epochs / reference) for m in milestones]
    return list(milestones)


def _batch_to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _labels_of(batch: dict, label_key: str) -> torch.Tensor:
    if label_key not in batch:
        raise ValueError(f"batches have no {label_key!r} entry (keys: {sorted(batch)}); labelled data is needed")
    return batch[label_key].long()


def dataset_labels(dataset, label_key: str = "label", batch_size: int = 4096) -> torch.Tensor:
    """All labels ``(N,)`` on CPU: the dataset's ``labels`` attribute when it has one, else read
    through ``get_batch`` in chunks."""
    lab = getattr(dataset, "labels", None)
    if lab is not None:
        return torch.as_tensor(np.asarray(lab.cpu() if torch.is_tensor(lab) else lab)).long()
    dev = _dataset_device(dataset)
    return torch.cat([_labels_of(dataset.get_batch(torch.arange(s, min(len(dataset), s + batch_size), device=dev)),
                                 label_key).cpu() for s in range(0, len(dataset), batch_size)])


@torch.no_grad()
def extract_features(encoder: Callable[[dict], torch.Tensor], dataset, batch_size: int = 512, device=None,
                     label_key: str = "label") -> tuple[torch.Tensor, torch.Tensor]:
    """Encode every sample in order. Returns ``feats (N, D) float32`` and ``labels (N,) int64``, on CPU.

    ``encoder`` is an ``nn.Module`` or a bound method of one (e.g. ``pretrainer.features``); that
    module runs in eval mode without gradients (its previous mode is restored) on ``device``
    (default: where its parameters are, else CUDA when available).
    """
    module = encoder if isinstance(encoder, nn.Module) else getattr(encoder, "__self__", None)
    module = module if isinstance(module, nn.Module) else None
    params = list(module.parameters()) if module is not None else []
    device = torch.device(device) if device is not None else (params[0].device if params else _device())
    was_training = module.training if module is not None else False
    if module is not None:
        module.to(device).eval()
    ds_dev = _dataset_device(dataset)
    feats, labels = [], []
    try:
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(len(dataset), start + batch_size), device=ds_dev)
            batch = _batch_to(dataset.get_batch(idx), device)
            f = encoder(batch)
            if not torch.is_tensor(f) or f.ndim != 2 or f.shape[0] != len(idx):
                raise ValueError(f"encoder(batch) must return (N, D) features with N={len(idx)}, got "
                                 f"{tuple(f.shape) if torch.is_tensor(f) else type(f).__name__}")
            feats.append(f.float().cpu())
            labels.append(_labels_of(batch, label_key).cpu())
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def _check_pair(feats, labels, name: str, num_classes: int | None = None):
    x = _as_tensor(feats, torch.float32, f"{name}_feats", 2)
    y = _as_tensor(labels, torch.long, f"{name}_labels", 1)
    if len(x) != len(y):
        raise ValueError(f"{name}_feats has {len(x)} rows but {name}_labels has {len(y)}")
    if len(y) == 0:
        raise ValueError(f"{name} set is empty")
    if num_classes is not None and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{name}_labels must lie in [0, {num_classes}), got range [{int(y.min())}, {int(y.max())}]")
    return x, y


def _confusion(y: torch.Tensor, pred: torch.Tensor, c: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return torch.bincount(y * c + pred, minlength=c * c).reshape(c, c).cpu().numpy()


def _per_class(conf: np.ndarray) -> np.ndarray:
    rows = conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, 100.0 * np.diag(conf) / rows, np.nan)  # NaN: class absent from the test set


def linear_probe(train_feats, train_labels, test_feats, test_labels, num_classes: int, epochs: int = 150,
                 lr: float = 0.03, momentum: float = 0.9, batch_size: int = 512,
                 milestones: Sequence[int] = (120, 140), seed: int = 0, weight_decay: float = 0.0,
                 milestones_for_epochs: int | None = 150, device=None) -> dict:
    """Train ``Linear(D, num_classes)`` on frozen features ``(N, D)`` with SGD; test after every epoch.

    Features are used as given. Milestones (lr x0.1) scale with ``epochs`` relative to
    ``milestones_for_epochs``. Returns ``top1_final``, ``top1_best``, ``best_epoch`` (1-based),
    ``history`` (top-1 per epoch), ``per_class_acc`` ``(C,)`` (NaN for classes absent from the test
    set) and ``confusion`` ``(C, C)`` int64 (rows true, columns predicted) of the final head.
    """
    dev = _device(device)
    xtr, ytr = (t.to(dev) for t in _check_pair(train_feats, train_labels, "train", num_classes))
    xte, yte = (t.to(dev) for t in _check_pair(test_feats, test_labels, "test", num_classes))
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train features are {xtr.shape[1]}-d but test features are {xte.shape[1]}-d")
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(xtr.shape[1], num_classes).to(dev)
    with torch.no_grad():  # nn.Linear's default init, drawn from our generator (caller's RNG untouched)
        bound = 1.0 / math.sqrt(xtr.shape[1])
        head.weight.copy_(torch.rand(head.weight.shape, generator=g) * 2 * bound - bound)
        head.bias.copy_(torch.rand(head.bias.shape, generator=g) * 2 * bound - bound)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, _scaled(milestones, epochs, milestones_for_epochs), 0.1)

    def predict() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([head(xte[s:s + 8192]).argmax(1) for s in range(0, len(xte), 8192)])

    def batches(_epoch):
        perm = torch.randperm(len(xtr), generator=g).to(dev)
        return perm.split(batch_size)

    accs = []
    fit(opt, lambda idx: F.cross_entropy(head(xtr[idx]), ytr[idx]), batches, epochs, scheduler=sched,
        schedule="epoch", on_epoch_end=lambda _epoch: accs.append((predict() == yte).float().mean()))
    history = (torch.stack(accs) * 100).tolist()  # accuracies stayed on the device until here
    conf = _confusion(yte, predict(), num_classes)
    best = int(np.argmax(history))
    return {"top1_final": history[-1], "top1_best": history[best], "best_epoch": best + 1, "history": history,
            "per_class_acc": _per_class(conf), "confusion": conf}


@torch.no_grad()
def knn_retrieval(train_feats, train_labels, test_feats, test_labels, k: int = 1, device=None,
                  chunk: int = 1024) -> float:
    """Top-1 (%) of k-nearest-neighbour classification by cosine similarity, train set as gallery.

    Features are L2-normalised. ``k=1`` (the paper's retrieval protocol) takes the nearest
    neighbour's label; ``k>1`` votes, ties broken by summed similarity. Queries go in chunks so
    memory stays ``chunk x N_train``.
    """
    dev = _device(device)
    xtr, ytr = _check_pair(train_feats, train_labels, "train")
    xte, yte = _check_pair(test_feats, test_labels, "test")
    if k < 1 or k > len(xtr):
        raise ValueError(f"k must lie in [1, {len(xtr)}], got {k}")
    gallery, ytr, yte = F.normalize(xtr.to(dev), dim=1), ytr.to(dev), yte.to(dev)
    c = int(max(ytr.max(), yte.max())) + 1
    correct = torch.zeros((), device=dev)
    for s in range(0, len(xte), chunk):
        q = F.normalize(xte[s:s + chunk].to(dev), dim=1)
        sim, nn_idx = (q @ gallery.T).topk(k, dim=1)
        if k == 1:
            pred = ytr[nn_idx[:, 0]]
        else:  # one vote per neighbour plus a similarity share too small to overturn a count
            votes = torch.zeros(len(q), c, device=dev).scatter_add_(1, ytr[nn_idx], 1 + sim / (2 * k + 1))
            pred = votes.argmax(1)
        correct += (pred == yte[s:s + chunk]).sum()
    return float(correct) * 100.0 / len(xte)


def balanced_subset(labels, fraction: float, seed: int = 0) -> torch.Tensor:
    """Indices (sorted, LongTensor) of a class-balanced random subset: ``max(1, round(fraction*n_c))``
    samples of every class present (so each class keeps at least one label)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    y = _as_tensor(labels, torch.long, "labels", 1).cpu()
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    order = order[torch.argsort(y[order], stable=True)]  # grouped by class, random within a class
    ys = y[order]
    counts = torch.bincount(ys)
    quota = torch.clamp((counts.double() * fraction).round().long(), min=1)
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(len(ys)) - starts[ys]
    return order[rank_in_class < quota[ys]].sort().values


def _finetune(model: nn.Module, train_dataset, test_dataset, idx: torch.Tensor, epochs: int, lr: float,
              momentum: float, weight_decay: float, batch_size: int, milestones: list[int], seed: int,
              device: torch.device, label_key: str, eval_batch_size: int) -> float:
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1)
    tr_dev = _dataset_device(train_dataset)
    # whole batches (a lone sample would break BatchNorm), unless the subset is smaller than one batch
    n_steps = max(1, len(idx) // batch_size)
    bs = min(batch_size, len(idx))

    def batches(_epoch):
        perm = idx[torch.randperm(len(idx), generator=g)].to(tr_dev)
        for s in range(n_steps):
            yield _batch_to(train_dataset.get_batch(perm[s * bs:(s + 1) * bs]), device)

    model.train()
    fit(opt, lambda batch: F.cross_entropy(model(batch), _labels_of(batch, label_key)), batches, epochs,
        scheduler=sched, schedule="epoch")
    model.eval()
    te_dev, correct = _dataset_device(test_dataset), torch.zeros((), device=device)
    with torch.no_grad():
        for s in range(0, len(test_dataset), eval_batch_size):
            batch = _batch_to(test_dataset.get_batch(
                torch.arange(s, min(len(test_dataset), s + eval_batch_size), device=te_dev)), device)
            correct += (model(batch).argmax(1) == _labels_of(batch, label_key)).sum()
    return float(correct) * 100.0 / len(test_dataset)


def semi_supervised(make_model: Callable[[], nn.Module], train_dataset, test_dataset,
                    fractions: Sequence[float] = (0.01, 0.1), seeds: Sequence[int] = (0, 1, 2, 3, 4),
                    epochs: int = 80, lr: float = 0.01, batch_size: int = 64, milestones: Sequence[int] = (50, 70),
                    momentum: float = 0.9, weight_decay: float = 0.0, milestones_for_epochs: int | None = 80,
                    device=None, label_key: str = "label", eval_batch_size: int = 512) -> dict:
    """Fine-tune the whole network on a class-balanced fraction of the training labels.

    ``make_model()`` returns a fresh ``nn.Module`` mapping a batch to ``(N, classes)`` logits (e.g.
    the pretrained encoder plus a Linear head); it is called once per (fraction, seed) under
    ``torch.manual_seed(seed)`` inside ``fork_rng`` (the caller's RNG is left as it was). Returns
    ``{fraction: {"top1_mean", "top1_std" (sample std over seeds, 0 for one seed), "top1_per_seed",
    "n_labelled"}}`` with top-1 (%) of the final model on the whole test set.
    """
    dev = _device(device)
    labels = dataset_labels(train_dataset, label_key)
    ms = _scaled(milestones, epochs, milestones_for_epochs)
    out = {}
    for frac in fractions:
        accs, n_lab = [], 0
        for seed in seeds:
            idx = balanced_subset(labels, frac, seed)
            n_lab = len(idx)
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(seed)
                model = make_model().to(dev)
                accs.append(_finetune(model, train_dataset, test_dataset, idx, epochs, lr, momentum, weight_decay,
                                      batch_size, ms, seed, dev, label_key, eval_batch_size))
            del model
        a = np.asarray(accs)
        out[frac] = {"top1_mean": float(a.mean()), "top1_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                     "top1_per_seed": accs, "n_labelled": n_lab}
    return out


def transfer(encoder: Callable[[dict], torch.Tensor], train_dataset, test_dataset, num_classes: int, batch_size: int = 512,
             device=None, knn: bool = True, label_key: str = "label", **probe_kwargs) -> dict:
    """Linear probe (and 1-NN retrieval) of a pretrained encoder on another dataset.

    The caller builds ``train_dataset``/``test_dataset`` in the encoder's input layout (e.g. PKU-MMD
    II converted to the unified skeleton, or FineGYM with 2D inputs only). ``probe_kwargs`` go to
    :func:`linear_probe`. Returns the probe's dict plus ``knn_top1`` and the feature dimension.
    """
    ftr, ytr = extract_features(encoder, train_dataset, batch_size, device, label_key)
    fte, yte = extract_features(encoder, test_dataset, batch_size, device, label_key)
    out = linear_probe(ftr, ytr, fte, yte, num_classes, device=device, **probe_kwargs)
    if knn:
        out["knn_top1"] = knn_retrieval(ftr, ytr, fte, yte, k=1, device=device)
    out["feature_dim"] = int(ftr.shape[1])
    return out


def _names(class_names, c: int) -> list[str]:
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")
    return names


def confusion_figure(confusion, class_names=None, normalize: bool = True, title: str = "Confusion matrix"):
    """Heat map of a ``(C, C)`` confusion matrix (rows true, columns predicted); rows normalised to %.
    A plain ``Figure``, not pyplot's: a notebook shows it once, where it asks."""
    from matplotlib.figure import Figure

    conf = np.asarray(confusion, dtype=np.float64)
    c = conf.shape[0]
    names = _names(class_names, c)
    if normalize:
        conf = 100.0 * conf / np.maximum(conf.sum(1, keepdims=True), 1)
    size = min(4 + 0.22 * c, 18)
    fig = Figure(figsize=(size, size), layout="tight")
    ax = fig.subplots()
    im = ax.imshow(conf, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, label="% of true class" if normalize else "count")
    step = max(1, c // 60)  # label every class up to 60, then every step-th
    ticks = np.arange(0, c, step)
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def per_class_figure(per_class_acc, class_names=None, sort: bool = True, title: str = "Per-class top-1 (%)"):
    """Horizontal bars of per-class accuracy (%), worst first when ``sort``; NaN classes are skipped.
    A plain ``Figure``, not pyplot's."""
    from matplotlib.figure import Figure

    acc = np.asarray(per_class_acc, dtype=np.float64)
    names = _names(class_names, len(acc))
    keep = np.flatnonzero(~np.isnan(acc))
    if sort:
        keep = keep[np.argsort(acc[keep], kind="stable")]
    fig = Figure(figsize=(7, max(2.5, 0.18 * len(keep) + 1)), layout="tight")
    ax = fig.subplots()
    ax.barh(np.arange(len(keep)), acc[keep], color="tab:blue")
    ax.set_yticks(np.arange(len(keep)), [names[i] for i in keep], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("top-1 (%)")
    mean = float(np.nanmean(acc)) if len(keep) else float("nan")
    ax.axvline(mean, color="k", ls="--", lw=1, label=f"mean {mean:.1f}")
    ax.legend(loc="lower right")
    ax.set_title(title)
    return fig
