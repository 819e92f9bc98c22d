"""hetskel.studies.tour (the data-tour notebook's helpers), the tables the notebook prints, and the notebook."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from notebook_checks import assert_notebook_conventions

from hetskel.data import synhet
from hetskel.layouts import FACE, get_layout, list_layouts, unify
from hetskel.studies import tour


@pytest.fixture(scope="module")
def draw():
    """A small SynHet draw with its clean unified ground truth (same samples in all three)."""
    return synhet.generate(num_samples=240, num_frames=32, seed=3, return_unified=True)


# --------------------------------------------------------------------------------------- tables
def test_layout_table_lists_every_layout_with_its_shape():
    lines = tour.layout_table().splitlines()
    assert lines[0] == f"{len(list_layouts())} layouts"
    rows = {ln.split()[0]: ln.split()[1:3] for ln in lines[2:]}
    assert list(rows) == list_layouts()
    for name, (v, c) in rows.items():
        assert (int(v), int(c)) == (get_layout(name).num_joints, get_layout(name).dims)


def test_unified_table_marks_what_each_source_has():
    u = unify(["ntu25", "coco17"])
    text = tour.unified_table(u)
    rows = [ln.split() for ln in text.splitlines()[2:32]]
    assert [r[1] for r in rows] == list(u.layout.joints)
    for r in rows:
        assert r[2] == ("x" if get_layout("ntu25").has(r[1]) else "-")
        assert r[3] == ("x" if get_layout("coco17").has(r[1]) else "-")
    assert f"ntu25 lacks 5: {', '.join(FACE)}" in text          # Kinect has no face
    assert "coco17 lacks 13: " in text and "right_thumb" in text.splitlines()[-1]
    assert all(ln == ln.rstrip() for ln in text.splitlines())  # pinned text: no trailing blanks


def test_class_table_counts_match_labels(draw):
    d3 = draw[0]
    text = tour.class_table(d3)
    counts = np.bincount([a["label"] for a in d3["annotations"]], minlength=len(d3["class_names"]))
    rows = text.splitlines()[1:1 + len(d3["class_names"])]
    for k, row in enumerate(rows):
        label, name, group, n = row.split()
        assert (int(label), name, int(n)) == (k, d3["class_names"][k], counts[k])
        assert group == synhet.class_group(name)
    assert text.splitlines()[-1].startswith("groups: face 3 classes / ")
    assert sum(int(r.split()[-1]) for r in rows) == len(d3["annotations"])


# ----------------------------------------------------------------------------------- picking
def test_first_of_filters_by_group_name_persons_and_fields(draw):
    d3 = draw[0]
    anns, names = d3["annotations"], d3["class_names"]
    i = tour.first_of(d3, group="hand")
    assert synhet.class_group(anns[i]["label"]) == "hand"
    assert all(synhet.class_group(a["label"]) != "hand" for a in anns[:i])
    j = tour.first_of(d3, group="two_person", min_persons=2, camera=3)
    assert synhet.class_group(anns[j]["label"]) == "two_person" and anns[j]["camera"] == 3
    assert np.abs(anns[j]["keypoint"][1]).sum() > 0
    assert names[anns[tour.first_of(d3, name="squat")]["label"]] == "squat"
    with pytest.raises(LookupError):
        tour.first_of(d3, group="face", min_persons=2)          # one-person classes never have two
    with pytest.raises(KeyError):
        tour.first_of(d3, group="feet")
    assert tour.caption(d3, i) == f"{anns[i]['frame_dir']}: {names[anns[i]['label']]}"


def test_best_scored_prefers_confident_long_clips():
    def clip(T, score):
        return {"keypoint": np.ones((1, T, 17, 2), np.float32), "keypoint_score": np.full((1, T, 17), score)}
    data = {"annotations": [clip(40, 0.5), clip(10, 0.99), clip(35, 0.8), clip(50, 0.7)]}
    assert tour.best_scored(data) == 2                          # the 0.99 clip is too short
    assert tour.best_scored(data, min_frames=100) == 1          # none is long enough: all compete


def test_keep_joints_zeroes_the_rest_without_touching_the_input(draw):
    x = draw[0]["annotations"][0]["keypoint"]
    before = x.copy()
    y = tour.keep_joints(x, "ntu25", ["head", "neck"])
    assert np.array_equal(x, before)
    keep = [get_layout("ntu25").index(j) for j in ("head", "neck")]
    assert np.array_equal(y[..., keep, :], x[..., keep, :])
    assert not np.delete(y, keep, axis=-2).any()


# -------------------------------------------------------------------------------- measurement
def test_local_pose_features_ignore_translation_and_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 8, 17, 2))
    f = tour.local_pose_features(x, "coco17")
    assert f.shape == (3, 17, 4)
    g = tour.local_pose_features(x * 5.0 + np.array([100.0, -40.0]), "coco17")  # pixels vs metres
    assert np.allclose(f, g)
    assert np.allclose(tour.local_pose_features(x[0], "coco17"), f[0])


def test_local_pose_features_see_a_joint_move_only_relative_to_its_parent():
    lay = get_layout("coco17")
    T = 10
    x = np.zeros((1, 1, T, 17, 2))
    x[..., :, 0] = np.arange(17)                                # a static, non-degenerate pose
    x[..., :, 1] = np.arange(17) ** 1.5
    k = lay.index("left_wrist")
    x[0, 0, :, k, 0] += np.linspace(0, 2, T)                    # only the wrist moves
    x[0, 0] += np.linspace(0, 30, T)[:, None, None]             # and everything translates
    spread = tour.local_pose_features(x, lay)[0, :, 2:]         # std part
    moving = np.flatnonzero(spread.sum(-1) > 1e-9)
    assert moving.tolist() == [k]


def test_separability_finds_the_informative_joint():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 50)
    f = rng.normal(size=(150, 3, 2))
    f[:, 0, 0] += labels * 3.0                                   # joint 0 tells the classes apart
    F = tour.separability(f, labels, [0, 1, 2])
    assert F[0] > 50 and F[1] < 3 and F[2] < 3
    with pytest.raises(ValueError):
        tour.separability(f, labels, [0])


def test_complementarity_face_is_coco_only_hand_is_kinect_only(draw):
    """The paper's premise, measured: face classes differ at joints only COCO-17 has, hand classes
    at joints only Kinect-25 has, body classes at joints both have."""
    u = unify(["ntu25", "coco17"])
    scores = tour.complementarity(draw[2])
    assert set(scores) == {"face", "hand", "body"} and all(s.shape == (30,) for s in scores.values())
    joints = np.array(u.layout.joints)
    top = {g: set(joints[np.argsort(-s)[:3]]) for g, s in scores.items()}
    assert top["face"] <= set(FACE)
    assert top["hand"] <= {"right_hand", "right_hand_tip", "right_thumb"}
    summary = tour.complementarity_summary(scores, u)
    assert summary["face"]["coco17 only"] > 2 * max(summary["face"]["both"], summary["face"]["ntu25 only"])
    assert summary["body"]["both"] > summary["body"]["coco17 only"]
    printed = tour.top_joints(scores, u.layout.joints, k=2).splitlines()
    assert [ln.split()[0] for ln in printed] == ["face", "hand", "body"]
    fig = tour.complementarity_figure(scores, u)
    assert isinstance(fig, Figure) and len(fig.axes) == 3


# ------------------------------------------------------------------------------------- figures
def test_paired_montage_and_formats_montage_shapes(draw):
    d3, d2, _ = draw
    fig = tour.paired_montage([(d3["annotations"][0]["keypoint"], "ntu25", "3D"),
                               (d2["annotations"][0]["keypoint"][:, :3], "coco17", "2D, 3 frames")], frames=5)
    assert len(fig.axes) == 10
    assert sum(a.axison for a in fig.axes[5:]) == 3              # spare axes of the short clip are off
    assert fig.axes[0].get_ylabel().startswith("3D\n")
    i = tour.first_of(d3, group="face")
    assert len(tour.formats_montage(d3, d2, i, focus="face", frames=3).axes) == 12
    assert len(tour.formats_montage(d3, d2, i, frames=3).axes) == 6


def test_transform_demo_checks(draw):
    d3, d2, _ = draw
    i = tour.first_of(d3, group="body", camera=3)
    demo = tour.transform_demo(d3, d2, i, num_frames=12)
    c = demo.checks()
    assert c["centre_at_t0_m"] < 1e-6 and c["shoulders_vs_x_deg"] < 0.01
    assert c["spine_vs_z_deg"] < 20 and c["max_bone_length_change_m"] < 1e-4
    assert -1 <= c["norm2d_min"] < 0 < c["norm2d_max"] <= 1
    assert (c["frames_in"], c["frames_out"], c["resize_keeps_ends"]) == (32, 12, True)
    assert demo.resized.shape == (2, 12, 25, 3)
    assert isinstance(tour.resize_figure(demo), Figure)


# ------------------------------------------------------------------------------------ real data
def test_missing_real_data_is_skipped_with_a_reason(tmp_path, capsys):
    assert tour.find_shared_data(str(tmp_path / "nowhere")) is None
    assert tour.real_path(None, "utd_mhad") is None
    assert tour.real_path(tmp_path, "utd_mhad") is None
    out = capsys.readouterr().out
    assert "not found" in out and "skipped: no real-data folder" in out and "is absent" in out
    (tmp_path / "utd_mhad").mkdir()
    assert tour.real_path(tmp_path, "utd_mhad") == tmp_path / "utd_mhad"


def test_describe_ntu_on_a_real_file(shared_data):
    from hetskel.data.ntu import read_skeleton

    sk = read_skeleton(shared_data / "ntu_raw_sample" / "S001C003P008R002A058.skeleton")
    text = tour.describe_ntu(sk)
    assert f"frames        {sk.num_frames}" in text and "bodies        2" in text
    assert "joint fields  12: x y z depthX depthY colorX colorY" in text
    assert f"{(2, sk.num_frames, 25, 2)}" in text


# ------------------------------------------------------------------------------------- notebook
def test_notebook_is_in_sync_output_free_with_one_parameters_cell():
    p = assert_notebook_conventions("00_data_tour")
    assert p["shared_data"] == ""


# the tables the notebook prints in its smoke run (smoke = True, seed 0), exactly
LAYOUT_TABLE = (
    "8 layouts\n"
    "layout          V  C  description\n"
    "coco17         17  2  COCO-17 keypoints (HRNet etc.), 2D pixels\n"
    "coco20         20  2  COCO-17 + 3 interpolated spine joints\n"
    "h36m17         17  3  Human3.6M, 17 joints (VideoPose3D order)\n"
    "kinect20_msr   20  3  Kinect v1, 20 joints, MSR Action3D order\n"
    "kinect20_utd   20  3  Kinect v1, 20 joints, UTD-MHAD order\n"
    "ntu25          25  3  Kinect v2 (NTU RGB+D, PKU-MMD), 25 joints\n"
    "openni15       15  3  OpenNI / NiTE, 15 joints\n"
    "unified30      30  3  union of ntu25 and coco17: face 5, common 15, hands/feet 10\n"
)
UNIFIED_TABLE = (
    "ntu25+coco17: 30 joints\n"
    "  #  joint            ntu25   coco17\n"
    "  0  nose               -       x\n"
    "  1  left_eye           -       x\n"
    "  2  right_eye          -       x\n"
    "  3  left_ear           -       x\n"
    "  4  right_ear          -       x\n"
    "  5  spine_base         x       -\n"
    "  6  spine_mid          x       -\n"
    "  7  spine_shoulder     x       -\n"
    "  8  left_shoulder      x       x\n"
    "  9  right_shoulder     x       x\n"
    " 10  left_elbow         x       x\n"
    " 11  right_elbow        x       x\n"
    " 12  left_wrist         x       x\n"
    " 13  right_wrist        x       x\n"
    " 14  left_hip           x       x\n"
    " 15  right_hip          x       x\n"
    " 16  left_knee          x       x\n"
    " 17  right_knee         x       x\n"
    " 18  left_ankle         x       x\n"
    " 19  right_ankle        x       x\n"
    " 20  neck               x       -\n"
    " 21  head               x       -\n"
    " 22  left_hand          x       -\n"
    " 23  right_hand         x       -\n"
    " 24  left_hand_tip      x       -\n"
    " 25  right_hand_tip     x       -\n"
    " 26  left_thumb         x       -\n"
    " 27  right_thumb        x       -\n"
    " 28  left_foot          x       -\n"
    " 29  right_foot         x       -\n"
    "ntu25 lacks 5: nose, left_eye, right_eye, left_ear, right_ear\n"
    "coco17 lacks 13: spine_base, spine_mid, spine_shoulder, neck, head, left_hand, right_hand, left_hand_tip, right_hand_tip, left_thumb, right_thumb, left_foot, right_foot\n"
)
SMOKE_CLASS_TABLE = (
    "label  class               group       samples\n"
    "    0  turn_head_left      face              3\n"
    "    1  turn_head_right     face              6\n"
    "    2  nod_head            face              5\n"
    "    3  open_hand           hand             10\n"
    "    4  make_fist           hand              3\n"
    "    5  thumbs_up           hand              1\n"
    "    6  wave_right_hand     body              6\n"
    "    7  raise_both_arms     body              5\n"
    "    8  squat               body              6\n"
    "    9  jump                body              9\n"
    "   10  kick_right          body              5\n"
    "   11  walk_forward        body              8\n"
    "   12  bow                 body              6\n"
    "   13  punch_right         body              8\n"
    "   14  handshake           two_person        8\n"
    "   15  approach            two_person        5\n"
    "   16  push                two_person        6\n"
    "groups: face 3 classes / 14 samples, hand 3 classes / 14 samples, body 8 classes / 53 samples, two_person 3 classes / 19 samples\n"
)


def test_the_notebooks_tables_exactly():
    # the built-in layouts: a fresh kernel has only those, while this process may have registered more
    from hetskel.layouts import BUILTIN_LAYOUTS
    assert tour.layout_table(BUILTIN_LAYOUTS) + "\n" == LAYOUT_TABLE
    unified = unify(["ntu25", "coco17"])
    assert tour.unified_table(unified) + "\n" == UNIFIED_TABLE
    assert unified.layout.joints == get_layout("unified30").joints
    data3d, _ = synhet.generate(num_samples=100, num_frames=32, seed=0)  # the notebook's smoke draw
    assert tour.class_table(data3d) + "\n" == SMOKE_CLASS_TABLE
