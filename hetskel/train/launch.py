"""Launching a pretraining on N processes: ``torchrun --standalone -m hetskel.train`` from Python.

``hetskel.experiment.pretrain(spec, run_dir, devices=N)`` calls ``launch_torchrun`` for N > 1 (a
notebook asking for several GPUs); the ranks then run the same ``hetskel.train.train`` as a
single-process run, DDP set up from ``RANK``/``WORLD_SIZE`` (gloo on CPU, NCCL on GPUs).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil
import torch

from hetskel.io import project_root, save_json


def resolve_devices(devices) -> int:
    """``"auto"`` -> every visible GPU (1 without CUDA); an int >= 1 as given."""
    if devices in ("auto", None):
        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    n = int(devices)
    if n < 1:
        raise ValueError(f"devices must be 'auto' or >= 1, got {devices!r}")
    return n


def torchrun_command(config_path, nproc: int, overwrite: bool = False) -> list[str]:
    """``torchrun --standalone --nproc_per_node N -m hetskel.train --config run.json`` for this Python."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "hetskel.train", "--config", str(config_path)]
    return cmd + (["--overwrite"] if overwrite else [])


def launch_torchrun(desc: dict, nproc: int, overwrite: bool = False, progress: bool = False,
                    timeout: float | None = None) -> None:
    """Run the run description ``desc`` (``python -m hetskel.train`` JSON) on ``nproc`` processes
    through torchrun and wait. Output is streamed when ``progress``; on failure the error carries the
    last 60 lines (the failing rank's traceback). ``timeout``: seconds before the launch is killed."""
    with tempfile.TemporaryDirectory(prefix="hetskel_torchrun_") as tmp:
        cfg = Path(tmp) / "run.json"
        save_json(cfg, desc)
        env = {k: v for k, v in os.environ.items()
               if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        cmd = torchrun_command(cfg, nproc, overwrite)
        print("launching:", " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd, cwd=str(project_root()), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        timed_out = threading.Event()
        watchdog = threading.Timer(timeout, _stop_tree, (proc, timed_out)) if timeout else None
        if watchdog:
            watchdog.start()
        tail: list[str] = []
        try:
            for line in proc.stdout:  # streamed: a notebook shows progress and the error of a failing rank
                tail = (tail + [line])[-60:]
                if progress:
                    print(line, end="", flush=True)
            rc = proc.wait()
        finally:
            if watchdog:
                watchdog.cancel()
    if rc != 0:
        why = f"killed after {timeout} s" if timed_out.is_set() else f"exited with code {rc}"
        raise RuntimeError(f"torchrun {why}; last output:\n{''.join(tail)}")


def _stop_tree(proc: subprocess.Popen, stopped: threading.Event, grace: float = 10.0) -> None:
    """Stop torchrun and its ranks. The ranks run in sessions of their own (torchrun starts them so),
    hold the output pipe and would outlive a killed torchrun: list them first, ask torchrun to stop
    them (SIGTERM, which its agent forwards), then SIGKILL whatever is left after ``grace`` seconds."""
    stopped.set()
    try:
        below = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:  # torchrun already gone
        below = []
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
    for child in below:
        try:
            child.kill()  # psutil checks the pid still names the same process (no reused pid is hit)
        except psutil.NoSuchProcess:  # already stopped by torchrun
            pass
