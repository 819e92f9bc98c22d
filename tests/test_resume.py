"""A training process killed with SIGKILL mid-epoch, then resumed, ends with the weights of an
uninterrupted run (same batches, same dropout and augmentation draws)."""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from kill_helpers import sigkill_when_ready
from torch import nn

from hetskel.io import load_checkpoint, read_jsonl
from hetskel.train.loop import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class HangingData:
    """Toy data whose batches get noise from the dataset's own generator. With
    ``HETSKEL_TEST_HANG_AT`` set, the get_batch call of that number touches
    ``HETSKEL_TEST_READY`` and sleeps, so the parent can kill the process mid-epoch."""

    def __init__(self, n=40):
        g = torch.Generator().manual_seed(7)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.generator = torch.Generator()
        self.calls = 0
        self.hang_at = int(os.environ.get("HETSKEL_TEST_HANG_AT", "-1"))
        self.ready = os.environ.get("HETSKEL_TEST_READY")

    def __len__(self):
        return len(self.x)

    def to(self, device):
        return self

    def get_batch(self, idx):
        if self.calls == self.hang_at:
            Path(self.ready).write_text(str(self.calls))
            time.sleep(600)
        self.calls += 1
        x = self.x[idx]
        return {"x": x + 0.1 * torch.randn(x.shape, generator=self.generator), "y": self.y[idx]}


class DropoutObjective(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))

    def forward(self, batch):
        return {"loss": nn.functional.cross_entropy(self.net(batch["x"]), batch["y"])}


def build(n=40):
    return DropoutObjective(), HangingData(n)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    spec = {"builder": "test_resume:build", "builder_args": {"n": 40}, "run_dir": str(tmp_path / "cut"),
            "train": {"epochs": 3, "batch_size": 8, "lr": 0.01, "checkpoint_every_steps": 3, "log_every": 2,
                      "save_every": 0, "progress": False, "device": "cpu", "seed": 3, "lr_milestones": [2],
                      "milestones_for_epochs": None, "deterministic": True}}
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(spec))
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HETSKEL_TEST_HANG_AT": "8", "HETSKEL_TEST_READY": str(ready), "OMP_NUM_THREADS": "1"}
    sigkill_when_ready([sys.executable, "-m", "hetskel.train", "--config", str(cfg)], env, ROOT, ready)

    run = tmp_path / "cut"
    ck = load_checkpoint(run / "latest.pt")
    # 5 steps per epoch; 8 steps done when killed; the last checkpoint is global step 6, mid-epoch 1
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (1, 1, 6)
    assert max(r["global_step"] for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "step") == 8

    assert main(["--config", str(cfg)]) == 0  # resume in this process (no hang: env not set here)
    assert main(["--config", str(cfg), "--run-dir", str(tmp_path / "ref")]) == 0  # uninterrupted

    got = load_checkpoint(run / "latest.pt")
    ref = load_checkpoint(tmp_path / "ref" / "latest.pt")
    assert got["global_step"] == ref["global_step"] == 15
    for k, v in ref["objective"].items():
        torch.testing.assert_close(got["objective"][k], v, rtol=0, atol=1e-6)
    cut_steps = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "step"]
    ref_steps = [r for r in read_jsonl(tmp_path / "ref" / "metrics.jsonl") if r.get("kind") == "step"]
    assert [r["global_step"] for r in cut_steps] == [r["global_step"] for r in ref_steps]
    np.testing.assert_allclose([r["loss"] for r in cut_steps], [r["loss"] for r in ref_steps], rtol=0, atol=1e-6)
