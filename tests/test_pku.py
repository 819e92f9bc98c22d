"""hetskel.data.pku on PKU-MMD II files written here in the official format."""
import numpy as np
import pytest

from hetskel.data.errors import DataError
from hetskel.data.pku import (
    load_pku_mmd,
    read_pku_labels,
    read_pku_skeleton,
    read_pku_split,
)
from hetskel.data.pyskl import load_pyskl, save_pyskl, summarize

# the official file: a header, one long comma-separated line, the misspelt header, another line
SPLIT = ("Training videos: \nA01N01-L, A01N01-M, A02N01-R, \n"
         "Validataion videos: \nA05N02-L, A05N02-M\n")


def _skeleton(T, two_bodies, seed):
    """(T, 150) frames: body 0 moves, body 1 is zeros unless ``two_bodies``."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(T, 2, 25, 3)), 6)
    if not two_bodies:
        x[:, 1] = 0
    return x


def _write_video(root, vid, T, actions, two_bodies=False, seed=0):
    x = _skeleton(T, two_bodies, seed)
    (root / "skeleton").mkdir(exist_ok=True)
    (root / "label").mkdir(exist_ok=True)
    (root / "skeleton" / f"{vid}.txt").write_text(
        "\n".join(" ".join(f"{v:.6f}" for v in row) for row in x.reshape(T, 150)) + "\n")
    (root / "label" / f"{vid}.txt").write_text("".join(f"{a},{s},{e},{c}\n" for a, s, e, c in actions))
    return x


@pytest.fixture
def pku(tmp_path):
    vids = {"A01N01-L": (40, [(1, 0, 9, 1), (51, 10, 24, 2), (7, 25, 40, 1)]),  # end == T: clipped
            "A01N01-M": (30, [(2, 5, 29, 1)]),
            "A02N01-R": (25, [(3, 0, 24, 1), (3, 3, 3, 1)]),
            "A05N02-L": (35, [(4, 0, 34, 2)]),
            "A05N02-M": (20, [(5, 2, 12, 1)])}
    raw = {v: _write_video(tmp_path, v, T, acts, two_bodies=(v == "A01N01-M"), seed=i)
           for i, (v, (T, acts)) in enumerate(vids.items())}
    (tmp_path / "cross_subject_v2.txt").write_text(SPLIT)
    return tmp_path, vids, raw


def _load(root):
    return load_pku_mmd(root / "skeleton", root / "label", root / "cross_subject_v2.txt")


def test_clips_labels_and_splits(pku):
    root, vids, raw = pku
    data = _load(root)
    anns = {a["frame_dir"]: a for a in data["annotations"]}
    assert len(anns) == sum(len(a) for _, a in vids.values()) == 8
    assert data["split"] == {"xsub_train": ["A01N01-L_0", "A01N01-L_1", "A01N01-L_2", "A01N01-M_0",
                                            "A02N01-R_0", "A02N01-R_1"],
                             "xsub_val": ["A05N02-L_0", "A05N02-M_0"]}
    assert data["layout"] == "ntu25" and data["label_base"] == 0
    assert [anns[f"A01N01-L_{k}"]["label"] for k in range(3)] == [0, 50, 6]
    # clip content is the inclusive frame range, (M, t, 25, 3), bodies first
    a = anns["A01N01-L_1"]
    assert a["keypoint"].shape == (1, 15, 25, 3) and a["keypoint"].dtype == np.float32
    np.testing.assert_allclose(a["keypoint"][0], raw["A01N01-L"][10:25, 0], atol=1e-6)
    # label end == T (one past the last frame) is clipped to the last frame
    c = anns["A01N01-L_2"]
    assert (c["start"], c["end"], c["total_frames"]) == (25, 39, 15)
    # a second body is kept only where it exists; a 1-frame action works
    assert anns["A01N01-M_0"]["keypoint"].shape == (2, 25, 25, 3)
    np.testing.assert_allclose(anns["A01N01-M_0"]["keypoint"][1], raw["A01N01-M"][5:30, 1], atol=1e-6)
    assert anns["A02N01-R_1"]["keypoint"].shape == (1, 1, 25, 3)
    one = load_pku_mmd(root / "skeleton", root / "label", root / "cross_subject_v2.txt", max_persons=1)
    assert max(a["keypoint"].shape[0] for a in one["annotations"]) == 1
    s = summarize(data)
    assert s["splits"] == {"xsub_train": 6, "xsub_val": 2} and s["persons"]["hist"] == {1: 7, 2: 1}


def test_round_trip_through_pyskl(pku, tmp_path):
    data = _load(pku[0])
    back = load_pyskl(save_pyskl(data, tmp_path / "pku.pkl"))
    assert [a["label"] for a in back["annotations"]] == [a["label"] for a in data["annotations"]]
    np.testing.assert_array_equal(back["annotations"][3]["keypoint"], data["annotations"][3]["keypoint"])


def test_split_file_variants(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("Training videos: a, b,c\n\nd\r\nValidation Videos:e ,f,\n")
    assert read_pku_split(p) == {"xsub_train": ["a", "b", "c", "d"], "xsub_val": ["e", "f"]}
    p.write_text("a, b\nValidation videos: c\n")
    with pytest.raises(DataError, match="before any") as e:
        read_pku_split(p)
    assert e.value.line == 1
    p.write_text("Training videos: a\nValidataion videos:\n")
    with pytest.raises(DataError, match="0 validation"):
        read_pku_split(p)
    p.write_text("Training videos: a, b\nValidataion videos: b\n")
    with pytest.raises(DataError, match="both lists"):
        read_pku_split(p)


def test_skeleton_errors_name_file_and_line(tmp_path):
    p = tmp_path / "v.txt"
    good = " ".join(["0.5"] * 150)
    p.write_text(f"{good}\n{' '.join(['0.5'] * 149)}\n")
    with pytest.raises(DataError, match="149 numbers, expected 150") as e:
        read_pku_skeleton(p)
    assert e.value.line == 2 and str(p) in str(e.value)
    p.write_text(f"{good}\n{good}\n{good[:-3]}abc\n")
    with pytest.raises(DataError, match="non-numeric value 'abc'") as e:
        read_pku_skeleton(p)
    assert e.value.line == 3
    p.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_pku_skeleton(p)
    with pytest.raises(DataError, match="not found"):
        read_pku_skeleton(tmp_path / "missing.txt")
    p.write_text(f"{good}\n\n{good.replace('0.5', '1.5', 1)}\n")  # blank line skipped
    x = read_pku_skeleton(p)
    assert x.shape == (2, 2, 25, 3) and x[0, 1, 0, 0] == 1.5


@pytest.mark.parametrize("line,match", [
    ("3,0,9", "3 fields"), ("3,0,9,1,7", "5 fields"), ("x,0,9,1", "non-numeric"), ("3,0.5,9,1", "integers"),
    ("0,0,9,1", "outside 1..51"), ("52,0,9,1", "outside 1..51"), ("3,9,4,1", "start=9 end=4"),
    ("3,-1,4,1", "start=-1"), ("3,5,31,1", "past the end"), ("3,30,30,1", "past the end"),
])
def test_label_errors_name_file_and_line(tmp_path, line, match):
    p = tmp_path / "lab.txt"
    p.write_text(f"1,0,9,1\n{line}\n")
    with pytest.raises(DataError, match=match) as e:
        read_pku_labels(p, num_frames=30)
    assert e.value.line == 2 and str(p) in str(e.value)


def test_label_file_trailing_comma_and_empty(tmp_path):
    p = tmp_path / "lab.txt"
    p.write_text("1,0,9,1,\n 2 , 3 , 5 , 2 \n")
    assert read_pku_labels(p, num_frames=30) == [(1, 0, 9, 1.0), (2, 3, 5, 2.0)]
    p.write_text("\n")
    with pytest.raises(DataError, match="no actions"):
        read_pku_labels(p)


def test_missing_video_named(pku):
    root = pku[0]
    (root / "skeleton" / "A05N02-M.txt").unlink()
    with pytest.raises(DataError, match="skeleton file not found") as e:
        _load(root)
    assert "A05N02-M.txt" in str(e.value)
