"""hetskel.data.raw: text rows, CSV, .npy/.npz and .mat readers, each checked against a layout; bad
files give one DataError naming the file (and the line)."""
import numpy as np
import pytest

import hetskel
from hetskel.data.errors import DataError
from hetskel.data.raw import (
    read_csv,
    read_joint_rows,
    read_mat,
    read_npy,
    read_skeleton_file,
    to_mtvc,
)

T, V = 4, 20  # kinect20_msr: 20 joints, 3D


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(T, V, 3)).astype(np.float32)


def _write(path, rows, delim=" ", header=None):
    text = "\n".join(delim.join(f"{v:.6g}" for v in r) for r in rows) + "\n"
    path.write_text((header + "\n" if header else "") + text)
    return path


@pytest.mark.parametrize("frame_ids", [False, True])
@pytest.mark.parametrize("conf", [False, True])
@pytest.mark.parametrize("delim", [" ", ","])
def test_text_rows_with_and_without_frame_ids_and_confidence(tmp_path, x, frame_ids, conf, delim):
    rows = [[*([t] if frame_ids else []), *x[t, v], *([0.5] if conf else [])] for t in range(T) for v in range(V)]
    p = _write(tmp_path / "clip.txt", rows, delim)
    y, s = read_joint_rows(p, "kinect20_msr", return_scores=True)
    assert y.shape == (1, T, V, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y[0], x, rtol=1e-5, atol=1e-6)
    assert (s is None) == (not conf) and (s is None or np.all(s == 0.5))
    assert hetskel.read_joint_rows is read_joint_rows


def test_msr_real_file_by_the_public_reader(shared_data):
    p = shared_data / "msr_action3d" / "real_world_coordinates" / "a01_s01_e01_skeleton3D.txt"
    y, s = read_joint_rows(p, "kinect20_msr", return_scores=True)
    ref = hetskel.load_msr_action3d(shared_data / "msr_action3d", files="all")
    a = next(a for a in ref["annotations"] if a["frame_dir"] == "a01_s01_e01")
    np.testing.assert_array_equal(y, a["keypoint"])
    np.testing.assert_array_equal(s, a["confidence"])


def test_named_columns_persons_and_joint_ids(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, size=(2, T, 17, 2))
    rows = [[t, m, v + 1, *x[m, t, v], 0.9] for t in range(T) for m in range(2) for v in range(17)]
    p = _write(tmp_path / "c.csv", rows, ",", header="frame,person,joint,x,y,score")
    y, s = read_csv(p, "coco17", return_scores=True)
    assert y.shape == (2, T, 17, 2) and s.shape == (2, T, 17)
    np.testing.assert_allclose(y, x, rtol=1e-5)
    q = _write(tmp_path / "c.txt", [r[:2] + r[3:5] for r in rows])  # frame person x y, no header
    np.testing.assert_allclose(read_joint_rows(q, "coco17", columns="frame,person,x,y"), x, rtol=1e-5)


def test_wide_rows_one_per_frame(tmp_path, x):
    p = _write(tmp_path / "w.csv", [[t, *x[t].ravel()] for t in range(T)], ",")
    np.testing.assert_allclose(read_csv(p, "kinect20_msr")[0], x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("content, line, match", [
    ("1 2 3\n" * 19 + "1 2 oops\n", 20, "non-numeric"),
    ("1 2 3\n" * 10 + "1 2\n" + "1 2 3\n" * 9, 11, "columns"),
    ("1 2 3\n" * 19 + "1 2 nan\n", 20, "non-finite"),
])
def test_garbage_rows_name_file_and_line(tmp_path, content, line, match):
    p = tmp_path / "bad.txt"
    p.write_text(content)
    with pytest.raises(DataError, match=match) as e:
        read_joint_rows(p, "kinect20_msr")
    assert e.value.line == line and "bad.txt" in str(e.value)


def test_bad_shapes_name_the_file(tmp_path, x):
    p = _write(tmp_path / "short.txt", [x[0, v] for v in range(V - 1)])
    with pytest.raises(DataError, match="not a multiple of 20") as e:
        read_joint_rows(p, "kinect20_msr")
    assert "short.txt" in str(e.value)
    p = _write(tmp_path / "five.txt", [[1, 2, 3, 4, 5, 6, 7]] * V)
    with pytest.raises(DataError, match="columns=") as e:
        read_joint_rows(p, "kinect20_msr")
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(DataError, match="empty"):
        read_joint_rows(tmp_path / "empty.txt", "kinect20_msr")
    with pytest.raises(DataError, match="no such file"):
        read_joint_rows(tmp_path / "absent.txt", "kinect20_msr")
    with pytest.raises(DataError, match="layout"):
        read_joint_rows(p, "no_such_layout")


def test_npy_and_npz(tmp_path, x):
    np.save(tmp_path / "a.npy", x)
    assert read_npy(tmp_path / "a.npy", "kinect20_msr").shape == (1, T, V, 3)
    np.save(tmp_path / "b.npy", np.stack([x, x + 1]))
    assert read_npy(tmp_path / "b.npy", "kinect20_msr").shape == (2, T, V, 3)
    np.savez_compressed(tmp_path / "c.npz", skel=x, other=np.zeros(3))
    np.testing.assert_array_equal(read_npy(tmp_path / "c.npz", "kinect20_msr", key="skel")[0], x)
    with pytest.raises(DataError, match="pass key="):
        read_npy(tmp_path / "c.npz", "kinect20_msr")
    np.savez(tmp_path / "d.npz", only=np.concatenate([x, np.ones((T, V, 1))], -1))  # + confidence
    y, s = read_npy(tmp_path / "d.npz", "kinect20_msr", return_scores=True)
    assert y.shape == (1, T, V, 3) and np.all(s == 1)
    assert read_skeleton_file(tmp_path / "d.npz", "kinect20_msr").shape == (1, T, V, 3)


def test_npy_refuses_pickles_bad_shapes_and_bombs(tmp_path, x, shared_data):
    with pytest.raises(DataError, match="pickle"):  # the official txt2npy file: a pickled dict
        read_npy(shared_data / "ntu_raw_sample" / "S001C001P001R001A001.skeleton.npy", "ntu25")
    np.save(tmp_path / "v.npy", x[:, :15])
    with pytest.raises(DataError, match="20 joints") as e:
        read_npy(tmp_path / "v.npy", "kinect20_msr")
    assert "v.npy" in str(e.value)
    np.savez_compressed(tmp_path / "bomb.npz", a=np.zeros((2**16, 2**13, 1), np.float32))  # 2 GiB, small file
    with pytest.raises(DataError, match="GiB"):
        read_npy(tmp_path / "bomb.npz", "kinect20_msr", max_array_bytes=2**30)
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match="neither"):
        read_npy(tmp_path / "junk.npy", "kinect20_msr")


def test_mat_real_utd_file_and_errors(tmp_path, shared_data, x):
    from scipy.io import savemat

    p = shared_data / "utd_mhad" / "Skeleton" / "a1_s1_t1_skeleton.mat"
    y = read_mat(p, "kinect20_utd")  # d_skel (20, 3, T) found as VCT
    ref = hetskel.load_utd_mhad(shared_data / "utd_mhad")
    a = next(a for a in ref["annotations"] if a["frame_dir"] == "a1_s1_t1")
    np.testing.assert_array_equal(y, a["keypoint"])
    savemat(tmp_path / "two.mat", {"skel": x, "fps": np.array([[30.0]])})
    with pytest.raises(DataError, match="variable="):
        read_mat(tmp_path / "two.mat", "kinect20_msr")
    np.testing.assert_allclose(read_mat(tmp_path / "two.mat", "kinect20_msr", variable="skel")[0], x)
    with pytest.raises(DataError, match="no numeric array 'nope'"):
        read_mat(tmp_path / "two.mat", "kinect20_msr", variable="nope")
    (tmp_path / "junk.mat").write_bytes(b"\x00" * 300)
    with pytest.raises(DataError) as e:
        read_mat(tmp_path / "junk.mat", "kinect20_msr")
    assert "junk.mat" in str(e.value)


def test_to_mtvc_orders():
    a = np.zeros((3, 5, 17, 2))  # fits MTVC (preferred) and CTVM (ST-GCN, C=3: 2D + score)
    assert to_mtvc(a, "coco17").shape == (3, 5, 17, 2)
    y, s = to_mtvc(a, "coco17", axes="CTVM", return_scores=True)
    assert y.shape == (2, 5, 17, 2) and s.shape == (2, 5, 17)
    assert to_mtvc(np.zeros((5, 34)), "coco17").shape == (1, 5, 17, 2)
    with pytest.raises(DataError, match="shape"):
        to_mtvc(np.zeros((5, 16, 2)), "coco17")
