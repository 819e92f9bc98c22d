"""Benchmark pieces for the NTU ``.skeleton`` reader (used by ``python -m hetskel.bench``).

``naive_parse`` is the yardstick: the plain line-by-line parser anyone would write first (a readline
loop, one ``float()`` per field, every field of every line converted, no checks). ``ntu_parse_speedup``
times it against ``hetskel.data.ntu.read_skeleton`` (which also validates everything and keeps all
12 joint fields) on the same files and checks both give the identical xyz.

    >>> ntu_parse_speedup(sorted(Path("ntu_raw_sample").glob("*.skeleton")))
    {'files_per_s': ..., 'files_per_s_baseline': ..., 'speedup': ..., 'files': 6}
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hetskel.data.ntu import read_skeleton


def naive_parse(path) -> np.ndarray:
    """(B, T, 25, 3) float64 xyz of one NTU file, B body IDs in first-appearance order, absent zero."""
    frames = []  # (frame, body index, 25 joint rows of 12 floats)
    ids: list[int] = []
    with open(path) as f:
        num_frames = int(f.readline())
        for t in range(num_frames):
            for _ in range(int(f.readline())):
                info = f.readline().split()
                body_id = int(info[0])
                _ = [float(v) for v in info[1:]]  # the 9 body info fields
                if body_id not in ids:
                    ids.append(body_id)
                joints = [[float(v) for v in f.readline().split()] for _ in range(int(f.readline()))]
                frames.append((t, ids.index(body_id), joints))
    xyz = np.zeros((len(ids), num_frames, 25, 3))
    for t, b, joints in frames:
        xyz[b, t] = np.array(joints)[:, :3]
    return xyz


def _cpu_seconds(fn, paths) -> float:
    start = time.process_time()
    for p in paths:
        fn(p)
    return time.process_time() - start


def ntu_parse_speedup(paths, rounds: int = 5) -> dict:
    """files/s of ``read_skeleton`` and of ``naive_parse`` on ``paths`` (process CPU time, the best of
    ``rounds``; the two alternate round by round so that load from other processes hits both alike).
    Raises AssertionError if any file's xyz differs between the two."""
    paths = [Path(p) for p in paths]
    if not paths or rounds < 1:
        raise ValueError(f"need at least one file and one round, got {len(paths)} file(s), rounds={rounds}")
    for p in paths:  # also warms the OS file cache and the reader's scratch buffers
        fast, slow = read_skeleton(p).xyz, naive_parse(p)
        assert fast.shape == slow.shape and np.array_equal(fast, slow), f"{p}: read_skeleton != naive_parse"
    best_fast = best_slow = float("inf")
    for _ in range(rounds):
        best_slow = min(best_slow, _cpu_seconds(naive_parse, paths))
        best_fast = min(best_fast, _cpu_seconds(read_skeleton, paths))
    return {"files_per_s": len(paths) / best_fast, "files_per_s_baseline": len(paths) / best_slow,
            "speedup": best_slow / best_fast, "files": len(paths)}


if __name__ == "__main__":  # python -m hetskel.bench.ntu_reader FOLDER_OR_FILES... [--rounds N]
    import argparse
    import json

    ap = argparse.ArgumentParser(description="read_skeleton vs a naive line-by-line parser, files/s")
    ap.add_argument("paths", nargs="+", type=Path, help=".skeleton files or folders of them")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    files = [f for p in args.paths for f in (sorted(p.glob("*.skeleton")) if p.is_dir() else [p])]
    print(json.dumps(ntu_parse_speedup(files, rounds=args.rounds), indent=1))
