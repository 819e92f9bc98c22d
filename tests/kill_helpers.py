"""Kill a child process with SIGKILL once it reports that it reached a chosen point (the
interrupted-run tests: the child writes the file ``ready`` at its hang point, then waits)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def sigkill_when_ready(cmd: list[str], env: dict, cwd, ready: Path, timeout: float = 120.0) -> None:
    """Start ``cmd``; when ``ready`` exists, SIGKILL it (no cleanup can run, as on a power cut).
    A child that exits early or never gets there fails the test with its stderr."""
    proc = subprocess.Popen(cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + timeout
        while not ready.exists():
            if proc.poll() is not None:
                raise AssertionError(f"the child exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
            assert time.time() < deadline, "the child never reached the hang point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def hanging_builder(pid_dir: str):
    """A ``hetskel.train`` builder (``"kill_helpers:hanging_builder"``) that records its process id
    in ``pid_dir`` and then hangs, standing in for a rank stuck in a collective."""
    import time

    Path(pid_dir, str(os.getpid())).write_text("")
    time.sleep(600)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (Linux ``/proc``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status
