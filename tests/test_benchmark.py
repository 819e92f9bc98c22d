"""``python -m hetskel.benchmark``: the contract as written, on tiny data (epochs 1, tiny preset)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hetskel.benchmark.core import METRICS, main
from hetskel.data.arrays import from_arrays
from hetskel.data.pyskl import save_pyskl
from hetskel.io import shared_data_dir
from hetskel.layouts import layout_to_dict, unregister_layout


def check_results(out: Path, seeds):
    res = json.loads((out / "results.json").read_text())
    assert list(res["seeds"]) == [str(s) for s in seeds]
    for k in METRICS:
        assert all(0 <= res["seeds"][str(s)][k] <= 100 for s in seeds)
        assert set(res["summary"][k]) == {"mean", "std", "n"} and k in res["mean"] and k in res["std"]
    assert all(Path(r, "latest.pt").is_file() for r in res["runs"])
    return res


def test_cli_on_a_2d_file_with_a_layout_file(tmp_path, capsys):
    lay = {**layout_to_dict("coco17"), "name": "mycoco"}
    (tmp_path / "mycoco.json").write_text(json.dumps(lay))
    rng = np.random.default_rng(0)
    fds = [f"c{i}" for i in range(20)]
    data = from_arrays([rng.uniform(0, 100, (1, 10, 17, 2)) for _ in fds], [1 + i % 2 for i in range(20)], "coco17",
                       frame_dirs=fds, splits={"tr": fds[:12], "te": fds[12:]}, img_shape=(100, 100))
    data["layout"] = None  # a plain PYSKL file: the layout comes from the command line
    save_pyskl({k: v for k, v in data.items() if k != "layout"}, tmp_path / "d.pkl")
    try:
        assert main([str(tmp_path / "d.pkl"), "--layout", str(tmp_path / "mycoco.json"), "--train-split", "tr",
                     "--test-split", "te", "--preset", "tiny", "--epochs", "1", "--probe-epochs", "2",
                     "--seeds", "0", "1", "--batch-size", "4", "--frames", "8", "--text-source", "random",
                     "--out", str(tmp_path / "out")]) == 0
    finally:
        unregister_layout("mycoco")
    res = check_results(tmp_path / "out", [0, 1])
    assert res["modalities"] == "C,S" and res["layout"] == "mycoco" and res["persons"] == 1
    assert "self-supervised + linear probe" in capsys.readouterr().out


def test_utd_preset(tmp_path):
    base = shared_data_dir()
    if base is None or not (Path(base) / "utd_mhad").is_dir():
        pytest.skip("../shared/data/utd_mhad is absent")
    assert main(["utd", "--preset", "tiny", "--epochs", "1", "--probe-epochs", "1", "--frames", "8",
                 "--text-source", "random", "--out", str(tmp_path / "utd")]) == 0
    res = check_results(tmp_path / "utd", [0])
    assert res["layout"] == "kinect20_utd" and res["seeds"]["0"]["num_classes"] == 27


def test_msr_paired_preset_with_spec_overrides_on_a_carved_validation_split(tmp_path):
    base = shared_data_dir()
    if base is None or not (Path(base) / "msr_action3d").is_dir():
        pytest.skip("../shared/data/msr_action3d is absent")
    assert main(["msr_paired", "--preset", "tiny", "--epochs", "1", "--probe-epochs", "1", "--frames", "8",
                 "--text-source", "random", "--features", "concat", "--out", str(tmp_path / "msr"),
                 "--set", "validation=0.25", "objective=umurl+intra_view"]) == 0
    res = check_results(tmp_path / "msr", [0])
    assert (res["layout"], res["layout2d"], res["modalities"]) == ("kinect20_msr", "kinect20_msr_2d", "J,C,S")
    assert res["settings"]["overrides"] == {"validation": 0.25, "objective": "umurl+intra_view"}
    assert res["settings"]["features"] == "concat" and res["seeds"]["0"]["features"] == "concat"
    seed = res["seeds"]["0"]
    # the carved validation split: a quarter of the training subjects, never a test clip
    assert seed["num_train"] + seed["num_test"] < 557 and seed["num_test"] < seed["num_train"]
    from hetskel.experiment.pretrain import load_pretrained

    _, spec = load_pretrained(res["runs"][0], device="cpu")
    assert (spec.validation, spec.split_names()) == (0.25, ("xsub_train_fit", "xsub_train_validation"))


def test_absent_outside_image_zeroes_glitches_only():
    from hetskel.data.arrays import absent_outside_image

    kp = np.full((1, 3, 2, 2), 50.0, np.float32)
    kp[0, 1, 0] = [2.1e9, 10]
    data = {"annotations": [{"keypoint": kp, "keypoint_score": np.ones((1, 3, 2), np.float32), "img_shape": (100, 100)}]}
    assert absent_outside_image(data) == (1, 1)
    ann = data["annotations"][0]
    assert (ann["keypoint"][0, 1, 0] == 0).all() and ann["keypoint_score"][0, 1, 0] == 0
    assert (ann["keypoint"][0, 0] == 50).all() and ann["keypoint_score"].sum() == 5
