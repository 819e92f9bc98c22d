"""hetskel.train.launch: a torchrun launch that outlives its timeout is killed with all its ranks."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from kill_helpers import alive

from hetskel.train.launch import launch_torchrun, resolve_devices

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(os.environ.get("HETSKEL_SKIP_TORCHRUN") == "1", reason="HETSKEL_SKIP_TORCHRUN=1")
def test_timeout_kills_torchrun_and_its_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    pids = tmp_path / "pids"
    pids.mkdir()
    desc = {"builder": "kill_helpers:hanging_builder", "builder_args": {"pid_dir": str(pids)},
            "train": {"epochs": 1, "batch_size": 2}, "run_dir": str(tmp_path / "run"), "name": "hang"}
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="torchrun killed after 30 s"):
        launch_torchrun(desc, 2, timeout=30)
    assert time.monotonic() - t0 < 120
    ranks = [int(p.name) for p in pids.iterdir()]
    assert len(ranks) == 2, "both ranks should have reached the builder within 30 s"
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in ranks if alive(pid)], "ranks outlived the killed launch"


def test_resolve_devices():
    assert resolve_devices(3) == 3 and resolve_devices("2") == 2 and resolve_devices("auto") >= 1
    with pytest.raises(ValueError, match="devices must be"):
        resolve_devices(0)
