"""hetskel.data.pyskl on the real PYSKL file and on small dicts: load, validate, save, pair, summarise."""
import pickle

import numpy as np
import pytest

from hetskel.data.errors import DataError
from hetskel.data.pyskl import (
    format_summary,
    guess_layout,
    load_pyskl,
    pair_by_frame_dir,
    save_pyskl,
    select_split,
    summarize,
    validate_pyskl,
)

PKL = "pyskl_coco17_custom16/ntu60_hrnet.pkl"


@pytest.fixture(scope="module")
def real(shared_data):
    return load_pyskl(shared_data / PKL)


def _tiny(labels=(0, 1, 2), T=5, V=17, C=2, scores=True):
    rng = np.random.default_rng(0)
    anns = []
    for i, lab in enumerate(labels):
        a = {"frame_dir": f"clip{i}", "label": lab, "keypoint": rng.normal(size=(1, T + i, V, C)).astype(np.float16)}
        if scores:
            a["keypoint_score"] = rng.uniform(size=(1, T + i, V)).astype(np.float16)
        anns.append(a)
    return {"split": {"train": [a["frame_dir"] for a in anns[:2]], "val": [anns[-1]["frame_dir"]]},
            "annotations": anns}


def test_real_file_counts_and_labels(real, shared_data):
    anns = real["annotations"]
    assert len(anns) == 486
    labels = np.array([a["label"] for a in anns])
    assert real["label_base_detected"] == 1 and real["label_base"] == 0
    assert labels.min() == 0 and labels.max() == 15 and np.unique(labels).size == 16
    raw = load_pyskl(shared_data / PKL, validate=False)  # the file itself is 1-based float16
    assert min(a["label"] for a in raw["annotations"]) == 1
    assert raw["annotations"][0]["keypoint"].dtype == np.float16
    for a, r in zip(anns, raw["annotations"]):
        assert a["keypoint"].dtype == np.float32 and a["keypoint"].ndim == 4 and a["keypoint"].shape[2:] == (17, 2)
        assert a["keypoint_score"].shape == a["keypoint"].shape[:3]
        assert a["total_frames"] == a["keypoint"].shape[1]
        assert a["label"] == r["label"] - 1
        np.testing.assert_array_equal(a["keypoint"], r["keypoint"].astype(np.float32))
    assert {k: len(v) for k, v in real["split"].items()} == {"xsub_train": 388, "xsub_test": 98}


def test_summary_of_real_file(real):
    s = summarize(real)
    assert s["num_samples"] == 486 and s["num_classes"] == 16 and s["label_range"] == (0, 15)
    assert s["label_base_detected"] == 1 and s["layout"] == "coco17" and s["layout_guessed"]
    assert s["splits"] == {"xsub_train": 388, "xsub_test": 98} and s["unknown_split_names"] == []
    assert s["persons"] == {"max": 1, "hist": {1: 486}}
    assert (s["frames"]["min"], s["frames"]["median"], s["frames"]["max"]) == (10, 52, 201)
    assert s["dims"] == [2] and s["joints"] == [17] and s["has_scores"]
    text = format_summary(s)
    assert "486" in text and "xsub_train=388" in text and "1-based" in text and "coco17" in text


def test_select_split(real):
    val = select_split(real, "xsub_test")
    assert len(val) == 98 and [a["frame_dir"] for a in val] == real["split"]["xsub_test"]
    with pytest.raises(DataError, match="xsub_train"):  # the error lists the valid names
        select_split(real, "xview_val")


def test_save_load_round_trip_real(real, tmp_path):
    out = save_pyskl(real, tmp_path / "sub" / "copy.pkl")
    assert out.is_file() and not list(out.parent.glob("*.tmp*"))
    back = load_pyskl(out)
    assert back["label_base_detected"] == 0  # saved 0-based and declared so: never shifted twice
    assert back["split"] == real["split"]
    for a, b in zip(real["annotations"], back["annotations"]):
        assert a["frame_dir"] == b["frame_dir"] and a["label"] == b["label"]
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])
        np.testing.assert_array_equal(a["keypoint_score"], b["keypoint_score"])
    # a saved subset without class 0 still loads as 0-based thanks to the stored label_base
    sub = {**real, "annotations": [a for a in real["annotations"] if a["label"] > 0]}
    sub["split"] = {"xsub_train": [a["frame_dir"] for a in sub["annotations"]]}
    assert min(a["label"] for a in load_pyskl(save_pyskl(sub, tmp_path / "sub.pkl"))["annotations"]) == 1


def test_save_does_not_touch_caller_and_refuses_objects(tmp_path):
    d = _tiny()
    save_pyskl(d, tmp_path / "t.pkl")
    assert d["annotations"][0]["keypoint"].dtype == np.float16 and "label_base" not in d
    d["annotations"][0]["extra"] = object()
    with pytest.raises(DataError, match="not plain data"):
        save_pyskl(d, tmp_path / "bad.pkl")
    assert not (tmp_path / "bad.pkl").exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickles_of_any_protocol_load(tmp_path, protocol):
    d = _tiny()
    d["annotations"][0]["img_shape"] = (480, np.int64(640))  # numpy scalar inside a tuple
    d["annotations"][0]["tags"] = {"a", "b"}
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(d, protocol=protocol))
    back = load_pyskl(tmp_path / "p.pkl")
    np.testing.assert_array_equal(back["annotations"][1]["keypoint"], d["annotations"][1]["keypoint"])
    assert back["annotations"][0]["img_shape"] == (480, 640) and back["annotations"][0]["tags"] == {"a", "b"}


def test_label_base_detection_and_forcing():
    d = validate_pyskl(_tiny(labels=(1, 2, 3)))
    assert [a["label"] for a in d["annotations"]] == [0, 1, 2] and d["label_base_detected"] == 1
    d = validate_pyskl(_tiny(labels=(1, 2, 3)), label_base=0)
    assert [a["label"] for a in d["annotations"]] == [1, 2, 3] and d["label_base_detected"] == 0
    d = validate_pyskl(_tiny(labels=(0, 1, 2)))
    assert [a["label"] for a in d["annotations"]] == [0, 1, 2] and d["label_base_detected"] == 0
    # class names say there are 4 classes: labels 1..3 are then a 0-based subset, not 1-based
    d = _tiny(labels=(1, 2, 3))
    d["class_names"] = ["a", "b", "c", "d"]
    assert [a["label"] for a in validate_pyskl(d)["annotations"]] == [1, 2, 3]
    with pytest.raises(DataError, match="label_base"):
        validate_pyskl(_tiny(), label_base=2)


def test_nonfinite_report_option():
    d = _tiny()
    d["annotations"][1]["keypoint"][0, 0, 0, 0] = np.nan
    with pytest.warns(UserWarning, match="NaN"):
        validate_pyskl(d, nonfinite="report")
    assert d["nonfinite"] == [{"frame_dir": "clip1", "field": "keypoint", "count": 1}]
    assert summarize(d)["nonfinite"] == 1 and "NaN" in format_summary(summarize(d))


def test_total_frames_filled_and_unknown_split_reported():
    d = _tiny()
    d["split"]["my_fold"] = ["clip0"]
    validate_pyskl(d)
    assert [a["total_frames"] for a in d["annotations"]] == [5, 6, 7]
    s = summarize(d)
    assert s["unknown_split_names"] == ["my_fold"] and s["splits"]["my_fold"] == 1
    assert "my_fold" in format_summary(s)


def test_pairing_by_frame_dir(real):
    anns = real["annotations"]
    # a second "modality": every other clip, different order, fewer frames (as 3danno drops frames)
    other = [{"frame_dir": a["frame_dir"], "label": a["label"], "keypoint": a["keypoint"][:, 3:]}
             for a in anns[::-2]]
    b = {"split": {}, "annotations": other}
    validate_pyskl(b, label_base=0)
    pairs = pair_by_frame_dir(real, b)
    assert len(pairs) == len(other) and [i for i, _ in pairs] == sorted(i for i, _ in pairs)
    for i, j in pairs:
        assert anns[i]["frame_dir"] == other[j]["frame_dir"]
        assert anns[i]["keypoint"].shape[1] == other[j]["keypoint"].shape[1] + 3
    b["annotations"][0] = {**b["annotations"][0], "label": (b["annotations"][0]["label"] + 1) % 16}
    with pytest.raises(DataError, match="label") as e:
        pair_by_frame_dir(real, b)
    assert e.value.sample == b["annotations"][0]["frame_dir"]


def test_guess_layout():
    assert guess_layout(25, 3) == "ntu25" and guess_layout(17, 2) == "coco17"
    assert guess_layout(20, 3) == "kinect20_*" and guess_layout(11, 2) == "unknown"
