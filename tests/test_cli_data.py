"""`python -m hetskel.data` end to end, through subprocesses (exit codes, one-line errors, no tracebacks)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from hetskel.data.pyskl import load_pyskl

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "hetskel.data", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd or ROOT, env=env, check=False)


def test_help_lists_every_command():
    r = cli("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("convert-ntu", "info", "synth"))
    for c in ("convert-ntu", "info", "synth"):
        assert cli(c, "--help").returncode == 0
    assert cli().returncode == 2  # a command is required


def test_convert_ntu_then_info(shared_data, tmp_path):
    out = tmp_path / "ntu.pkl"
    r = cli("convert-ntu", shared_data / "ntu_raw_sample", out, "--no-progress", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "converted 6 sample(s) (ntu60, fields=xyz)" in r.stdout and "bad: 0" in r.stdout
    data = load_pyskl(out)
    assert len(data["annotations"]) == 6 and data["layout"] == "ntu25"
    r = cli("info", out)
    assert r.returncode == 0, r.stderr
    assert "samples       6" in r.stdout and "layout        ntu25" in r.stdout and "xview_train=2" in r.stdout
    r = cli("convert-ntu", shared_data / "ntu_raw_sample", tmp_path / "c.pkl", "--no-progress",
            "--fields", "color2d", "--max-persons", "1", "--dataset", "ntu120")
    assert r.returncode == 0, r.stderr
    ann = load_pyskl(tmp_path / "c.pkl")["annotations"][0]
    assert ann["keypoint"].shape[::3] == (1, 2) and ann["keypoint_score"] is not None


def test_convert_ntu_missing_list_file(shared_data, tmp_path):
    lst = tmp_path / "skip.txt"
    lst.write_text("S001C001P001R001A001\nS004C002P003R001A017\n")
    r = cli("convert-ntu", shared_data / "ntu_raw_sample", tmp_path / "o.pkl", "--no-progress",
            "--missing-list", lst)
    assert r.returncode == 0, r.stderr
    assert "converted 4" in r.stdout and "skipped: 2" in r.stdout
    assert "S004C002P003R001A017: on the missing-skeleton list" in r.stdout


def test_info_on_real_pyskl_file(shared_data):
    r = cli("info", shared_data / "pyskl_coco17_custom16" / "ntu60_hrnet.pkl")
    assert r.returncode == 0, r.stderr
    assert "samples       486" in r.stdout
    assert "classes       16" in r.stdout and "1-based" in r.stdout
    assert "xsub_train=388" in r.stdout and "xsub_test=98" in r.stdout


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_info_refuses_malicious_and_corrupt_pickles(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"split": {}, "annotations": [_Evil(marker)]}))
    r = cli("info", evil)
    assert r.returncode == 2 and not marker.exists()
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "evil.pkl" in r.stderr and "system" in r.stderr
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(pickle.dumps({"a": np.zeros(10)})[:25])
    r = cli("info", corrupt)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    r = cli("info", tmp_path / "absent.pkl")
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_convert_ntu_truncated_file_fails_clearly(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = (shared_data / "ntu_raw_sample" / "S001C001P001R001A011.skeleton").read_bytes()
    (src / "S001C001P001R001A011.skeleton").write_bytes(good)
    (src / "S001C001P001R001A012.skeleton").write_bytes(good[: len(good) // 2])
    r = cli("convert-ntu", src, tmp_path / "o.pkl", "--no-progress")
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert "bad: 1" in r.stdout and "S001C001P001R001A012.skeleton" in r.stdout and "truncated" in r.stdout
    assert "1 bad file(s)" in r.stderr
    assert [a["frame_dir"] for a in load_pyskl(tmp_path / "o.pkl")["annotations"]] == ["S001C001P001R001A011"]
    r = cli("convert-ntu", tmp_path / "nope", tmp_path / "o2.pkl", "--no-progress")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "not a directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_synth_writes_paired_files(tmp_path):
    r = cli("synth", tmp_path / "syn", "--num", "6", "--seed", "3", "--frames", "16")
    assert r.returncode == 0, r.stderr
    d3, d2 = load_pyskl(tmp_path / "syn" / "synhet_3d.pkl"), load_pyskl(tmp_path / "syn" / "synhet_2d.pkl")
    assert len(d3["annotations"]) == len(d2["annotations"]) == 6
    assert [a["frame_dir"] for a in d3["annotations"]] == [a["frame_dir"] for a in d2["annotations"]]
    assert "synhet_3d.pkl" in r.stdout
