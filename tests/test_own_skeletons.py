"""A new user's path, end to end: own files in raw forms (text rows, .npz, CSV), own layouts (a JSON
and a YAML file), 1-based labels and per-clip image sizes -> from_arrays -> pretraining (tiny) ->
evaluation (hetskel.benchmark) -> reload in a fresh process where the custom layouts were never
registered. Only public names on the user's side."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import hetskel
from hetskel.layouts import unregister_layout

ROOT = Path(__file__).resolve().parents[1]
J15 = ["head", "neck", "spine_mid", "left_shoulder", "left_elbow", "left_hand", "right_shoulder", "right_elbow",
       "right_hand", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee", "right_foot"]
P15 = [None, "head", "neck", "neck", "left_shoulder", "left_elbow", "neck", "right_shoulder", "right_elbow",
       "spine_mid", "left_hip", "left_knee", "spine_mid", "right_hip", "right_knee"]
J13 = ["nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
       "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
B13 = {"left_shoulder": "nose", "right_shoulder": "nose", "left_elbow": "left_shoulder",
       "right_elbow": "right_shoulder", "left_wrist": "left_elbow", "right_wrist": "right_elbow",
       "left_hip": "left_shoulder", "right_hip": "right_shoulder", "left_knee": "left_hip",
       "right_knee": "right_hip", "left_ankle": "left_knee", "right_ankle": "right_knee"}
N, T, CLASSES = 16, 12, 3


@pytest.fixture
def own_files(tmp_path):
    """The user's files: layouts as JSON / YAML, 3D clips as text rows (even clips) and .npz (odd),
    2D clips as CSV rows ``frame,person,joint,x,y,score``, labels 1..3 and image sizes in a CSV."""
    import yaml

    (tmp_path / "my15.json").write_text(json.dumps({"name": "my15", "dims": 3, "joints": J15, "parents": P15}))
    (tmp_path / "my13.yaml").write_text(yaml.safe_dump({"name": "my13", "dims": 2, "joints": J13, "bones": B13}))
    rng = np.random.default_rng(0)
    meta = ["clip,label,height,width"]
    for i in range(N):
        label = 1 + i % CLASSES
        x3 = (rng.normal(size=(2, T, 15, 3)) + label).astype(np.float32)  # two persons
        if i % 2:
            np.savez(tmp_path / f"clip{i:02d}.npz", skeleton=x3)
        else:  # one row per joint: frame person x y z
            rows = [[t, m, *x3[m, t, v]] for t in range(T) for m in range(2) for v in range(15)]
            np.savetxt(tmp_path / f"clip{i:02d}.txt", np.array(rows), fmt="%.6g")
        h, w = (480, 640) if i % 3 else (1080, 1920)
        x2 = rng.uniform(0, 1, size=(2, T, 13, 2)) * [w, h]
        rows = [[t, m, v, *x2[m, t, v], 0.9] for t in range(T) for m in range(2) for v in range(13)]
        np.savetxt(tmp_path / f"clip{i:02d}.csv", np.array(rows), delimiter=",", fmt="%.6g",
                   header="frame,person,joint,x,y,score", comments="")
        meta.append(f"clip{i:02d},{label},{h},{w}")
    (tmp_path / "meta.csv").write_text("\n".join(meta) + "\n")
    yield tmp_path
    for name in ("my15", "my13"):
        unregister_layout(name)


def read_own(folder: Path):
    """The raw files -> two PYSKL dicts, through the kit's public readers only."""
    meta = np.loadtxt(folder / "meta.csv", delimiter=",", skiprows=1, dtype=str)
    clips, labels, shapes = list(meta[:, 0]), [int(v) for v in meta[:, 1]], meta[:, 2:].astype(int)
    lay3, lay2 = hetskel.load_layout(folder / "my15.json"), hetskel.load_layout(folder / "my13.yaml")
    x3, x2, s2 = [], [], []
    for c in clips:
        if (folder / f"{c}.npz").exists():
            x3.append(hetskel.read_npy(folder / f"{c}.npz", lay3.name, key="skeleton"))
        else:
            x3.append(hetskel.read_joint_rows(folder / f"{c}.txt", lay3.name, columns="frame,person,x,y,z"))
        x, s = hetskel.read_csv(folder / f"{c}.csv", lay2.name, return_scores=True)  # header names the columns
        x2.append(x)
        s2.append(s)
    splits = {"train": clips[:10], "test": clips[10:]}
    names = ["wave", "kick", "bow"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d3 = hetskel.from_arrays(x3, labels, lay3.name, frame_dirs=clips, splits=splits, class_names=names)
        d2 = hetskel.from_arrays(x2, labels, lay2.name, frame_dirs=clips, splits=splits, class_names=names,
                                 scores=s2, img_shape=shapes)
    assert sum("1-based" in str(w.message) for w in caught) == 2  # reported, once per call
    return d3, d2


def test_labels_one_based_and_strings_are_mapped():
    x = [np.zeros((4, 25, 3))] * 3
    d = hetskel.from_arrays(x, [1, 2, 3], "ntu25")
    assert [a["label"] for a in d["annotations"]] == [0, 1, 2] and d["label_mapping"]["base"] == 1
    d = hetskel.from_arrays(x, ["walk", "sit", "walk"], "ntu25")
    assert [a["label"] for a in d["annotations"]] == [1, 0, 1] and d["class_names"] == ["sit", "walk"]
    d = hetskel.from_arrays(x, [1, 2, 3], "ntu25", label_base=0)
    assert [a["label"] for a in d["annotations"]] == [1, 2, 3]
    d = hetskel.from_arrays([np.zeros((4, 17, 2))] * 2, [0, 1], "coco17", img_shape=[(10, 20), (30, 40)])
    assert [a["img_shape"] for a in d["annotations"]] == [(10, 20), (30, 40)]
    with pytest.raises(hetskel.DataError, match="img_shape"):
        hetskel.from_arrays([np.zeros((4, 17, 2))] * 2, [0, 1], "coco17", img_shape=[(10, 20)] * 3)


def test_in_memory_paths_of_a_wrong_type_name_the_field():
    with pytest.raises(ValueError, match="paths"):
        hetskel.PretrainSpec(dataset="pyskl", paths={"ntu25": 3}).validate()


def test_own_skeletons_end_to_end_and_reload_in_a_fresh_process(own_files, tmp_path):
    from hetskel.benchmark.core import run_benchmark

    d3, d2 = read_own(own_files)
    assert d3["annotations"][0]["keypoint"].shape == (2, T, 15, 3)
    assert {a["img_shape"] for a in d2["annotations"]} == {(480, 640), (1080, 1920)}
    rep = run_benchmark(d3, "my15", tmp_path / "bench", data2d=d2, layout2d="my13", train_split="train",
                        test_split="test", size="tiny", seeds=[0], num_frames=8, batch_size=4, text_source="random",
                        log=lambda *a: None)
    assert rep["persons"] == 2 and rep["modalities"] == "J,C,S"
    res = json.loads((tmp_path / "bench" / "results.json").read_text())
    for k in ("ssl_linear", "ssl_knn", "random_linear", "random_knn", "supervised"):
        assert 0 <= res["seeds"]["0"][k] <= 100 and k in res["mean"] and k in res["std"]
    run_dir = Path(res["runs"][0])
    assert sorted(p.name.split("-")[0] for p in (run_dir / "data").iterdir()) == ["my13", "my15"]
    net, spec = hetskel.load_pretrained(run_dir, device="cpu")
    assert net.class_names == ["wave", "kick", "bow"]
    code = f"""
import hetskel, torch
assert "my15" not in hetskel.list_layouts() and "my13" not in hetskel.list_layouts()
net, spec = hetskel.load_pretrained({str(run_dir)!r}, device="cpu")
assert hetskel.get_layout("my15").num_joints == 15 and hetskel.get_layout("my13").dims == 2
train_ds, test_ds = hetskel.load_data(spec)
print(net.class_names, len(train_ds), len(test_ds), sum(float(p.sum()) for p in net.parameters()))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    names, ntr, nte, total = out.stdout.strip().splitlines()[-1].rsplit("] ", 1)[0] + "]", *out.stdout.split()[-3:]
    assert "'wave', 'kick', 'bow'" in names and (int(ntr), int(nte)) == (10, 6)
    assert abs(float(total) - sum(float(p.sum()) for p in net.parameters())) < 1e-3
