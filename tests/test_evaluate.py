"""Evaluation protocols on synthetic features: separable data is learned, random labels stay at
chance, retrieval is cosine, subsets are class-balanced, fine-tuning and transfer run end to end."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from hetskel.eval.protocols import (
    balanced_subset,
    confusion_figure,
    extract_features,
    knn_retrieval,
    linear_probe,
    per_class_figure,
    semi_supervised,
    transfer,
)


def blobs(n, classes=4, dim=16, spread=0.5, seed=0):
    """Gaussian blobs around random unit centres, scaled so classes are separable."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)), dim=1) * 3
    y = torch.arange(n) % classes
    return centres[y] + spread * torch.randn(n, dim, generator=g), y


class LabelledData:
    def __init__(self, x, y):
        self.x, self.label = x, y

    def __len__(self):
        return len(self.x)

    def get_batch(self, idx):
        return {"x": self.x[idx], "label": self.label[idx]}


def test_linear_probe_learns_separable_features():
    xtr, ytr = blobs(200, seed=0)
    xte, yte = blobs(100, seed=1)
    out = linear_probe(xtr, ytr, xte.numpy(), yte.numpy(), num_classes=4, epochs=20, batch_size=64, device="cpu")
    assert out["top1_final"] > 95 and out["top1_best"] >= out["top1_final"]
    assert len(out["history"]) == 20 and 1 <= out["best_epoch"] <= 20
    conf = out["confusion"]
    assert conf.shape == (4, 4) and conf.sum() == 100 and conf.sum(1).tolist() == [25, 25, 25, 25]
    np.testing.assert_allclose(out["per_class_acc"], 100 * np.diag(conf) / 25)
    again = linear_probe(xtr, ytr, xte, yte, num_classes=4, epochs=20, batch_size=64, device="cpu")
    assert again["history"] == out["history"]  # seeded: reproducible


def test_probe_and_knn_stay_at_chance_on_random_labels():
    g = torch.Generator().manual_seed(3)
    xtr, xte = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    ytr, yte = torch.randint(0, 4, (400,), generator=g), torch.randint(0, 4, (400,), generator=g)
    assert linear_probe(xtr, ytr, xte, yte, 4, epochs=10, device="cpu")["top1_final"] < 35
    assert knn_retrieval(xtr, ytr, xte, yte, device="cpu") < 35


def test_per_class_accuracy_marks_absent_classes():
    xtr, ytr = blobs(80, classes=3)
    xte, yte = blobs(30, classes=3, seed=2)
    keep = yte != 2
    out = linear_probe(xtr, ytr, xte[keep], yte[keep], 3, epochs=5, device="cpu")
    assert np.isnan(out["per_class_acc"][2]) and not np.isnan(out["per_class_acc"][:2]).any()


def test_knn_is_cosine_and_votes():
    xtr, ytr = blobs(200, seed=0)
    xte, yte = blobs(100, seed=1)
    assert knn_retrieval(xtr, ytr, xte, yte, k=1, device="cpu") > 95
    assert knn_retrieval(xtr, ytr, xte, yte, k=5, device="cpu", chunk=7) > 95
    # Euclidean would pick the short vector b; cosine picks a (same direction as the query)
    gallery, labels = torch.tensor([[10.0, 0.0], [0.5, 0.5]]), torch.tensor([0, 1])
    assert knn_retrieval(gallery, labels, torch.tensor([[2.0, 0.3]]), torch.tensor([0]), device="cpu") == 100.0
    # k=3 vote: two neighbours of class 1 beat the single nearest of class 0
    gallery = torch.tensor([[1.0, 0.0], [0.9, 0.3], [0.9, -0.3], [-1.0, 0.0]])
    assert knn_retrieval(gallery, torch.tensor([0, 1, 1, 0]), torch.tensor([[1.0, 0.0]]), torch.tensor([1]),
                         k=3, device="cpu") == 100.0


def test_input_errors_are_clear():
    x, y = blobs(20)
    with pytest.raises(ValueError, match="train_feats has 20 rows but train_labels has 19"):
        linear_probe(x, y[:19], x, y, 4, epochs=1)
    with pytest.raises(ValueError, match=r"test_labels must lie in \[0, 3\)"):
        linear_probe(x, y % 3, x, y, 3, epochs=1)
    with pytest.raises(ValueError, match="k must lie"):
        knn_retrieval(x, y, x, y, k=0)


def test_balanced_subset_keeps_every_class():
    y = torch.cat([torch.zeros(100), torch.ones(50), torch.full((3,), 2)]).long()[torch.randperm(153)]
    idx = balanced_subset(y, 0.1, seed=0)
    assert torch.bincount(y[idx]).tolist() == [10, 5, 1]
    assert len(set(idx.tolist())) == len(idx) and torch.equal(idx, idx.sort().values)
    assert torch.equal(idx, balanced_subset(y, 0.1, seed=0))
    assert not torch.equal(idx, balanced_subset(y, 0.1, seed=1))
    with pytest.raises(ValueError):
        balanced_subset(y, 0.0)


def test_extract_features_uses_eval_mode_and_restores_it():
    x, y = blobs(50)
    enc = nn.Sequential(nn.Linear(16, 8), nn.Dropout(0.5))

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = enc

        def forward(self, batch):
            return self.m(batch["x"])

    e = Enc().train()
    f1, l1 = extract_features(e, LabelledData(x, y), batch_size=16)
    f2, _ = extract_features(e, LabelledData(x, y), batch_size=7)
    assert f1.shape == (50, 8) and f1.dtype == torch.float32 and torch.equal(l1, y)
    torch.testing.assert_close(f1, f2)  # no dropout: eval mode
    torch.testing.assert_close(f1, enc[0](x).detach())
    assert e.training
    f3, _ = extract_features(e.forward, LabelledData(x, y))  # a bound method of a module works too
    torch.testing.assert_close(f3, f1)
    assert e.training
    with pytest.raises(ValueError, match="no 'label' entry"):
        extract_features(e, type("D", (), {"__len__": lambda s: 2, "get_batch": lambda s, i: {"x": x[i]}})())


def test_semi_supervised_fine_tunes_on_balanced_labels():
    xtr, ytr = blobs(300, classes=3, dim=6)
    xte, yte = blobs(90, classes=3, dim=6, seed=5)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, batch):
            return self.net(batch["x"])

    before = torch.get_rng_state()
    out = semi_supervised(Model, LabelledData(xtr, ytr), LabelledData(xte, yte), fractions=(0.05,), seeds=(0, 1, 2),
                          epochs=30, batch_size=8, device="cpu")
    assert torch.equal(before, torch.get_rng_state())  # caller's RNG untouched
    r = out[0.05]
    assert r["n_labelled"] == 15 and len(r["top1_per_seed"]) == 3
    assert r["top1_mean"] > 85 and r["top1_std"] == pytest.approx(np.std(r["top1_per_seed"], ddof=1))


def test_transfer_and_figures():
    xtr, ytr = blobs(120, classes=3)
    xte, yte = blobs(60, classes=3, seed=4)
    torch.manual_seed(0)
    lin = nn.Linear(16, 32)

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, batch):
            return self.lin(batch["x"])

    out = transfer(Enc(), LabelledData(xtr, ytr), LabelledData(xte, yte), 3, device="cpu", epochs=15)
    assert out["top1_final"] > 90 and out["knn_top1"] > 90 and out["feature_dim"] == 32
    names = ["wave", "sit", "jump"]
    fig = confusion_figure(out["confusion"], names)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names
    fig2 = per_class_figure(out["per_class_acc"], names)
    assert len(fig2.axes[0].patches) == 3
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        confusion_figure(out["confusion"], names[:2])
    import matplotlib.pyplot as plt
    plt.close(fig)
    plt.close(fig2)
