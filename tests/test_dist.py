"""hetskel.train.dist: single-process identities, DistributedSampler-identical sharding, and a real
2-process DDP run (torchrun, gloo, CPU) whose losses and weights match one process on the same
global batch because the loss uses all-gathered features."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from hetskel.io import load_checkpoint, read_jsonl
from hetskel.train import dist
from hetskel.train.loop import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def test_single_process_helpers_are_identities():
    assert not dist.is_distributed() and dist.rank() == 0 and dist.world_size() == 1 and dist.is_main()
    x = torch.randn(3, 2, requires_grad=True)
    assert dist.all_gather_with_grad(x) is x
    assert dist.broadcast_object({"a": 1}) == {"a": 1} and dist.all_gather_object(5) == [5]
    dist.barrier()
    assert dist.setup_distributed(device="cpu") == torch.device("cpu")


@pytest.mark.parametrize("n,world", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 3)])
def test_epoch_shard_matches_distributed_sampler(n, world):
    for epoch in (0, 3):
        for r in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=True, seed=11)
            s.set_epoch(epoch)
            assert dist.epoch_shard(n, epoch, 11, r, world).tolist() == list(s)
    # the union of the ranks' k-th batches is the single-process k-th batch
    if n % world == 0:
        shards = [dist.epoch_shard(n, 1, 0, r, world) for r in range(world)]
        full = dist.epoch_shard(n, 1, 0)
        b = n // world // 1
        assert sorted(torch.cat([s[:b] for s in shards]).tolist()) == sorted(full[:b * world].tolist())


class GatherData:
    def __init__(self, n=48):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 6, generator=g)
        self.t = torch.randn(n, 4, generator=g)

    def __len__(self):
        return len(self.x)

    def to(self, device):
        return self

    def get_batch(self, idx):
        return {"x": self.x[idx], "t": self.t[idx]}


class GatherObjective(nn.Module):
    """A VICReg-like variance/covariance loss over the all-gathered global batch (needs the
    gather's gradient to be right) plus a local regression term (needs DDP's gradient mean)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))

    def forward(self, batch):
        z = self.enc(batch["x"])
        zg = dist.all_gather_with_grad(z)
        zc = zg - zg.mean(0)
        cov = zc.T @ zc / (len(zg) - 1)
        var = torch.relu(1 - torch.sqrt(cov.diagonal() + 1e-4)).mean()
        off = (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / 4
        local = (z - batch["t"]).pow(2).mean()
        return {"loss": 5 * var + off + local, "var": var.detach(), "local": local.detach()}


def build(n=48):
    return GatherObjective(), GatherData(n)


def test_ddp_two_processes_match_one_process(tmp_path):
    spec = {"builder": "test_dist:build", "run_dir": str(tmp_path / "ddp"),
            "train": {"epochs": 2, "batch_size": 16, "lr": 0.05, "log_every": 1, "progress": False,
                      "device": "cpu", "seed": 2, "save_every": 0, "checkpoint_every_steps": 0}}
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "hetskel.train", "--config", str(cfg)], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["--config", str(cfg), "--run-dir", str(tmp_path / "single")]) == 0

    ddp = [r for r in read_jsonl(tmp_path / "ddp" / "metrics.jsonl") if r.get("kind") == "step"]
    one = [r for r in read_jsonl(tmp_path / "single" / "metrics.jsonl") if r.get("kind") == "step"]
    assert len(ddp) == len(one) == 6  # 48 samples / 16 = 3 steps x 2 epochs, on both
    for key in ("loss", "var", "local"):
        np.testing.assert_allclose([r[key] for r in ddp], [r[key] for r in one], rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["meta"]["world_size"] == 2
    a = load_checkpoint(tmp_path / "ddp" / "latest.pt")
    b = load_checkpoint(tmp_path / "single" / "latest.pt")
    assert len(a["rng"]) == 2 and len(b["rng"]) == 1  # one RNG record per rank
    for k, v in b["objective"].items():
        torch.testing.assert_close(a["objective"][k], v, rtol=1e-5, atol=1e-6)
