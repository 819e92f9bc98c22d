"""hetskel.bench.realdata: the supervised-from-scratch loop on a toy task, and the --quick benchmark on the
real UTD-MHAD / MSR Action3D files (skipped without ../shared/data)."""
import json

import torch
from torch import nn

from hetskel.bench.realdata import (
    ROWS,
    accuracy,
    main,
    markdown_table,
    train_supervised,
)
from hetskel.data.batches import ArrayDataset


def _toy(n: int, seed: int) -> ArrayDataset:
    """Two classes of (N, 1, 8, 20, 3) clips: class 1 is shifted by +1 along x, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 8, 20, 3, generator=g) * 0.5
    x[..., 0] += y.view(-1, 1, 1, 1).float()
    return ArrayDataset(x={"kinect20_utd": x}, labels=y, frame_dirs=[f"c{i}" for i in range(n)],
                        layouts={"kinect20_utd": "kinect20_utd"})


class _Mean(nn.Module):
    """Mean over persons, frames and joints -> Linear(3, 2)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, batch):
        return self.fc(batch["kinect20_utd"].mean(dim=(1, 2, 3)))


def test_train_supervised_learns_separable_toy_task():
    torch.manual_seed(0)
    model = _Mean()
    tr, te = _toy(64, 0), _toy(64, 1)
    before = accuracy(model, te)
    res = train_supervised(model, tr, te, epochs=30, lr=0.05, batch_size=16, seed=0)
    assert res["top1_final"] >= 95.0, res["history"]
    assert res["train_top1_final"] >= 95.0
    assert len(res["history"]) == len(res["train_loss"]) == 30
    assert res["train_loss"][-1] < res["train_loss"][0]
    assert before < 95.0 or res["top1_final"] >= before  # learned, not lucky at init
    assert model.training  # accuracy() restores the mode it found


def test_train_supervised_is_seeded():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train_supervised(_Mean(), _toy(32, 0), _toy(32, 1), epochs=3, lr=0.05, batch_size=8, seed=3))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]


def test_quick_benchmark_on_real_data(shared_data, tmp_path, capsys):
    out = tmp_path / "rd"
    assert main(["--quick", "--shared-data", str(shared_data), "--out", str(out), "--epochs", "1",
                 "--probe-epochs", "3"]) == 0
    rep = json.loads((out / "results.json").read_text())
    res = rep["results"]
    assert set(res) == {"utd", "msr"}
    expect = {"utd": (27, "kinect20_utd"), "msr": (20, "kinect20_msr")}
    for name, r in res.items():
        assert (r["num_classes"], r["layout"]) == expect[name]
        assert r["modalities"] == ["J", "S"]
        assert r["num_train"] > 0 and r["num_test"] > 0
        accs = [r["ssl"]["linear_top1"], r["ssl"]["knn_top1"], r["random_init"]["linear_top1"],
                r["random_init"]["knn_top1"], r["supervised"]["top1"]]
        assert all(0.0 <= a <= 100.0 for a in accs), accs
    # UTD-MHAD: 861 clips, x-sub halves; MSR Action3D: the 557 CVPR'12 files
    assert res["utd"]["num_train"] + res["utd"]["num_test"] == 861
    assert res["msr"]["num_train"] + res["msr"]["num_test"] == 557
    table = (out / "results.md").read_text()
    printed = capsys.readouterr().out
    for _, label in ROWS:
        assert label in table and label in printed
    assert all(line in table for line in markdown_table(res).splitlines())  # JSON may reorder datasets
    assert "--quick" in rep["command"]
