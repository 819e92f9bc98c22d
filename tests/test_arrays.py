"""hetskel.data.arrays: from_arrays, UTD-MHAD and MSR Action3D on the real files, and their errors."""
import shutil
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hetskel.data.arrays import (
    MSR_ACTION3D_CLASSES,
    MSR_CVPR12_LIST,
    MSR_TAR,
    UTD_MHAD_CLASSES,
    from_arrays,
    load_msr_action3d,
    load_utd_mhad,
)
from hetskel.data.errors import DataError
from hetskel.data.pyskl import load_pyskl, save_pyskl, summarize
from hetskel.layouts import get_layout


@pytest.fixture(scope="module")
def utd(shared_data):
    return load_utd_mhad(shared_data / "utd_mhad")


@pytest.fixture(scope="module")
def msr(shared_data):
    return load_msr_action3d(shared_data / "msr_action3d")


def _wrist_path(data, action, layout):
    """Mean path length (m) of the left and right wrist over the sequences of one action (0-based)."""
    lay = get_layout(layout)
    out = []
    for a in data["annotations"]:
        if a["label"] == action:
            x = a["keypoint"][0]
            step = np.linalg.norm(np.diff(x, axis=0), axis=-1).sum(0)
            out.append((step[lay.index("left_wrist")], step[lay.index("right_wrist")]))
    return np.mean(out, axis=0)


# -- from_arrays -----------------------------------------------------------------------------
def test_from_arrays_shapes_and_defaults():
    x3 = np.zeros((6, 25, 3))
    x4 = np.ones((2, 4, 25, 3), np.float16)
    d = from_arrays([x3, x4], [0, 1], "ntu25", class_names=["a", "b"])
    assert [a["keypoint"].shape for a in d["annotations"]] == [(1, 6, 25, 3), (2, 4, 25, 3)]
    assert all(a["keypoint"].dtype == np.float32 for a in d["annotations"])
    assert d["split"] == {"all": ["custom_000000", "custom_000001"]} and d["layout"] == "ntu25"
    x4[0, 0, 0, 0] = 7  # the dict holds copies
    assert d["annotations"][1]["keypoint"][0, 0, 0, 0] == 1
    d2 = from_arrays([np.zeros((3, 17, 2))], [4], "coco17", frame_dirs=["c"], scores=[np.ones((3, 17))],
                     img_shape=(1080, 1920), splits={"train": ["c"]})
    a = d2["annotations"][0]
    assert a["keypoint_score"].shape == (1, 3, 17) and a["img_shape"] == (1080, 1920) and a["label"] == 4


def test_from_arrays_errors_name_the_sample():
    with pytest.raises(DataError, match="has 17 joints.*'ntu25' has 25") as e:
        from_arrays([np.zeros((1, 3, 25, 3)), np.zeros((1, 3, 17, 3))], [0, 1], "ntu25", frame_dirs=["ok", "bad"])
    assert e.value.sample == "bad" and e.value.field == "keypoint"
    with pytest.raises(DataError, match="unknown layout"):
        from_arrays([np.zeros((3, 25, 3))], [0], "kinect99")
    with pytest.raises(DataError, match="1 arrays but 2 labels"):
        from_arrays([np.zeros((3, 25, 3))], [0, 1], "ntu25")
    with pytest.raises(DataError, match="expected"):
        from_arrays([np.zeros((25, 3))], [0], "ntu25")
    with pytest.raises(DataError, match=r"\(M, T, V\)"):
        from_arrays([np.zeros((3, 25, 2))], [0], "ntu25", scores=[np.zeros((4, 25))])
    with pytest.raises(DataError, match="no annotation") as e:
        from_arrays([np.zeros((3, 25, 3))], [0], "ntu25", frame_dirs=["x"], splits={"train": ["y"]})
    assert "'y'" in str(e.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_from_arrays_save_load_round_trip(tmp_path, data):
    layout = data.draw(st.sampled_from(["ntu25", "coco17", "kinect20_msr"]))
    lay = get_layout(layout)
    n = data.draw(st.integers(1, 4))
    finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    arrays = [data.draw(hnp.arrays(np.float32, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 6)),
                                                lay.num_joints, data.draw(st.sampled_from([2, 3]))),
                                   elements=finite)) for _ in range(n)]
    labels = data.draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    d = from_arrays(arrays, labels, layout, label_base=0)  # 0-based said: [1, 2] alone reads as 1-based
    path = tmp_path / f"prop_{data.draw(st.integers(0, 10**9))}.pkl"
    back = load_pyskl(save_pyskl(d, path))
    assert [a["label"] for a in back["annotations"]] == labels  # never re-read as 1-based
    assert back["layout"] == layout
    for x, a in zip(arrays, back["annotations"]):
        assert a["keypoint"].dtype == np.float32
        np.testing.assert_array_equal(a["keypoint"], x)  # bit-exact, -0.0 and subnormals included


# -- UTD-MHAD ---------------------------------------------------------------------------------
def test_utd_counts_split_and_shapes(utd):
    anns = utd["annotations"]
    assert len(anns) == 861 and utd["layout"] == "kinect20_utd" and utd["class_names"] == list(UTD_MHAD_CLASSES)
    assert sorted({a["label"] for a in anns}) == list(range(27))
    assert {k: len(v) for k, v in utd["split"].items()} == {"xsub_train": 431, "xsub_val": 430}
    by_id = {a["frame_dir"]: a for a in anns}
    assert {by_id[f]["subject"] for f in utd["split"]["xsub_train"]} == {1, 3, 5, 7}
    assert {by_id[f]["subject"] for f in utd["split"]["xsub_val"]} == {2, 4, 6, 8}
    assert {a["trial"] for a in anns} == {1, 2, 3, 4}
    a = by_id["a1_s1_t1"]
    assert a["label"] == 0 and a["keypoint"].shape[::2] == (1, 20) and a["keypoint"].shape[3] == 3
    f = summarize(utd)["frames"]
    assert (f["min"], f["median"], f["max"]) == (41, 67, 125)


def test_utd_left_right_not_mirrored(utd):
    # right-arm actions (swipe left, swipe right, wave, throw, draw x): the right wrist does the moving
    for action in (0, 1, 2, 4, 7):
        left, right = _wrist_path(utd, action, "kinect20_utd")
        assert right > 3 * left, (UTD_MHAD_CLASSES[action], left, right)
    lay = get_layout("kinect20_utd")
    x = np.stack([a["keypoint"][0].mean(0) for a in utd["annotations"]])  # (N, 20, 3) mean pose
    # facing the Kinect, the subject's right side has the larger skeleton-space x
    assert (x[:, lay.index("right_hip"), 0] > x[:, lay.index("left_hip"), 0]).all()


# -- MSR Action3D ---------------------------------------------------------------------------
def test_msr_world_cvpr12_and_all(msr, shared_data):
    anns = msr["annotations"]
    assert len(anns) == 557 and msr["layout"] == "kinect20_msr" and msr["class_names"] == list(MSR_ACTION3D_CLASSES)
    assert sorted({a["label"] for a in anns}) == list(range(20))
    assert all(a["keypoint"].shape[3] == 3 and a["confidence"].shape == a["keypoint"].shape[:3] for a in anns)
    by_id = {a["frame_dir"]: a for a in anns}
    assert {by_id[f]["subject"] for f in msr["split"]["xsub_train"]} == {1, 3, 5, 7, 9}
    assert {by_id[f]["subject"] for f in msr["split"]["xsub_val"]} == {2, 4, 6, 8, 10}
    assert "a13_s09_e03" not in by_id
    everything = load_msr_action3d(shared_data / "msr_action3d", files="all")
    assert len(everything["annotations"]) == 567
    bad = next(a for a in everything["annotations"] if a["frame_dir"] == "a13_s09_e03")
    assert bad["keypoint"].shape[1] == 936
    # first joint of the first frame, straight from the text file
    np.testing.assert_allclose(by_id["a01_s01_e01"]["keypoint"][0, 0, 0], [-0.371736, 0.371031, 2.674849],
                               rtol=1e-6)


def test_msr_screen_from_the_tarball(shared_data, msr):
    scr = load_msr_action3d(shared_data / "msr_action3d", coords="screen", depth=True)
    assert len(scr["annotations"]) == 557
    a = next(a for a in scr["annotations"] if a["frame_dir"] == "a01_s01_e01")
    assert a["keypoint"].shape[3] == 2 and a["img_shape"] == (240, 320)
    np.testing.assert_array_equal(a["keypoint"][0, 0, 0], [120, 80])
    assert a["depth"][0, 0, 0] == 669 and a["keypoint_score"][0, 0, 2] == 0
    # same sequences, same frame counts as the 3D files (cvpr12 excludes the one that differs)
    w = {b["frame_dir"]: b["total_frames"] for b in msr["annotations"]}
    assert all(w[b["frame_dir"]] == b["total_frames"] for b in scr["annotations"])
    allscr = load_msr_action3d(shared_data / "msr_action3d", coords="screen", files="all")
    assert len(allscr["annotations"]) == 567 and "depth" not in allscr["annotations"][0]


def test_msr_left_right_not_mirrored(msr):
    for action in range(9):  # high arm wave .. draw circle: one-arm (right arm) actions
        left, right = _wrist_path(msr, action, "kinect20_msr")
        assert right > 2.5 * left, (MSR_ACTION3D_CLASSES[action], left, right)
    lay = get_layout("kinect20_msr")
    x = np.stack([np.median(a["keypoint"][0], axis=0) for a in msr["annotations"]])  # (N, 20, 3)
    # right side at larger x in 552 of 557 sequences; the rest are turns (a20) and tracking failures
    for j in ("hip", "shoulder"):
        assert (x[:, lay.index(f"right_{j}"), 0] > x[:, lay.index(f"left_{j}"), 0]).mean() > 0.95


def _msr_copy(shared_data, tmp_path, names=("a01_s01_e01", "a02_s02_e01")):
    d = tmp_path / "msr" / "real_world_coordinates"
    d.mkdir(parents=True)
    for n in names:
        shutil.copy(shared_data / "msr_action3d" / "real_world_coordinates" / f"{n}_skeleton3D.txt", d)
    return d


def test_msr_without_cvpr12_list_warns_and_uses_all(shared_data, tmp_path):
    d = _msr_copy(shared_data, tmp_path)
    with pytest.warns(UserWarning, match=MSR_CVPR12_LIST):
        data = load_msr_action3d(d.parent)
    assert len(data["annotations"]) == 2 and data["msr_files"] == "all"
    (d / MSR_CVPR12_LIST).write_text("a01_s01_e01\na09_s09_e09")
    with pytest.raises(DataError, match="a09_s09_e09"):
        load_msr_action3d(d.parent)


@pytest.mark.parametrize("mutate,match", [
    (lambda t: "\n".join(t.splitlines()[:-1]), "not a multiple of 20"),
    (lambda t: t.replace("2.674849", "abc", 1), "non-numeric value 'abc'"),
    (lambda t: t.replace(" 1.000000\n", "\n", 1), "3 columns, expected 4"),
    (lambda t: "", "empty"),
    (lambda t: t.replace("2.674849", "nan", 1), "non-finite"),
])
def test_msr_bad_files_named(shared_data, tmp_path, mutate, match):
    d = _msr_copy(shared_data, tmp_path)
    f = d / "a02_s02_e01_skeleton3D.txt"
    f.write_text(mutate((d / "a01_s01_e01_skeleton3D.txt").read_text()))
    with pytest.raises(DataError, match=match) as e:
        load_msr_action3d(d.parent, files="all")
    assert "a02_s02_e01_skeleton3D.txt" in str(e.value)


def test_msr_screen_bad_member_and_bad_tar(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    src = tmp_path / "MSRAction3DSkeleton(20joints)"
    src.mkdir()
    (src / "a01_s01_e01_skeleton.txt").write_text("1 2 3 1\n" * 20)
    (src / "a02_s02_e01_skeleton.txt").write_text("1 2 3 1\n" * 19)
    with tarfile.open(root / MSR_TAR, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    with pytest.raises(DataError, match="19 rows") as e:
        load_msr_action3d(root, coords="screen", files="all")
    assert "a02_s02_e01_skeleton.txt" in str(e.value)
    (root / MSR_TAR).write_bytes((root / MSR_TAR).read_bytes()[:60])
    with pytest.raises(DataError, match="cannot read the archive"):
        load_msr_action3d(root, coords="screen", files="all")


def test_utd_bad_files_named(tmp_path):
    from scipy.io import savemat
    d = tmp_path / "Skeleton"
    d.mkdir()
    savemat(d / "a1_s1_t1_skeleton.mat", {"d_skel": np.zeros((20, 3, 5))})
    savemat(d / "a2_s2_t1_skeleton.mat", {"d_skel": np.zeros((25, 3, 5))})
    with pytest.raises(DataError, match=r"\(20, 3, T\)") as e:
        load_utd_mhad(tmp_path)
    assert "a2_s2_t1" in str(e.value)
    (d / "a2_s2_t1_skeleton.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="cannot read the .mat") as e:
        load_utd_mhad(d)
    (d / "a2_s2_t1_skeleton.mat").unlink()
    assert len(load_utd_mhad(d)["annotations"]) == 1
    with pytest.raises(DataError, match="no UTD-MHAD files"):
        load_utd_mhad(tmp_path / "nowhere")
