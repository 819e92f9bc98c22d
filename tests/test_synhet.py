"""SynHet: shapes, pairing, determinism, splits, geometry, and the face/hand complementarity it exists for."""
import re

import numpy as np
import pytest

from hetskel.data.errors import DataError
from hetskel.data.synhet import (
    XSUB_TRAIN_SUBJECTS,
    SynHetConfig,
    class_group,
    class_names,
    generate,
    save_synhet,
)
from hetskel.data.synhet_motions import CLASS_GROUPS
from hetskel.layouts import convert, get_layout

NTU, COCO = get_layout("ntu25"), get_layout("coco17")
FRAME_DIR = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})_\d+$")


def stack(data, key="keypoint"):
    return np.stack([a[key] for a in data["annotations"]])


@pytest.fixture(scope="module")
def small():
    return generate(num_samples=120, num_frames=24, seed=3, chunk_size=50, return_unified=True)


def test_shapes_dtypes_and_metadata(small):
    d3, d2, du = small
    names = class_names()
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert sorted(names) == sorted(c for g in CLASS_GROUPS.values() for c in g)
    for d, layout, V, C in ((d3, "ntu25", 25, 3), (d2, "coco17", 17, 2), (du, "unified30", 30, 3)):
        assert d["layout"] == layout and d["dataset"] == "synhet" and d["class_names"] == names
        assert len(d["annotations"]) == 120
        for a in d["annotations"]:
            assert a["keypoint"].shape == (2, 24, V, C) and a["keypoint"].dtype == np.float32
            assert a["total_frames"] == 24 and 0 <= a["label"] < len(names)
            assert isinstance(a["label"], int) and isinstance(a["subject"], int)
            m = FRAME_DIR.match(a["frame_dir"])
            assert m and int(m.group(2)) == a["camera"] and int(m.group(3)) == a["subject"]
            assert int(m.group(1)) == a["setup"] and int(m.group(5)) == a["label"] + 1
    for a in d2["annotations"]:
        assert a["keypoint_score"].shape == (2, 24, 17) and a["keypoint_score"].dtype == np.float32
        assert a["img_shape"] == (1080, 1920)


def test_both_files_pair_sample_by_sample(small):
    d3, d2, du = small
    for key in ("frame_dir", "label", "subject", "camera", "setup"):
        assert [a[key] for a in d3["annotations"]] == [a[key] for a in d2["annotations"]] \
               == [a[key] for a in du["annotations"]]
    assert d3["split"] == d2["split"] == du["split"]
    assert len({a["frame_dir"] for a in d3["annotations"]}) == 120


def test_deterministic_by_seed_and_config():
    kw = {"num_samples": 40, "num_frames": 12, "chunk_size": 16}
    a3, a2 = generate(seed=7, **kw)
    b3, b2 = generate(SynHetConfig(seed=7, **kw))
    c3, c2 = generate(seed=8, **kw)
    for key, x, y in (("keypoint", a3, b3), ("keypoint", a2, b2), ("keypoint_score", a2, b2)):
        assert np.array_equal(stack(x, key), stack(y, key))  # bitwise
    assert [a["frame_dir"] for a in a3["annotations"]] == [a["frame_dir"] for a in b3["annotations"]]
    assert not np.allclose(stack(a3), stack(c3)) and not np.allclose(stack(a2), stack(c2))


def test_splits_disjoint_and_covering(small):
    d3 = small[0]
    everything = {a["frame_dir"] for a in d3["annotations"]}
    by_id = {a["frame_dir"]: a for a in d3["annotations"]}
    for kind in ("xsub", "xview"):
        tr, va = set(d3["split"][f"{kind}_train"]), set(d3["split"][f"{kind}_val"])
        assert tr and va and not tr & va and tr | va == everything
    assert all(by_id[f]["subject"] in XSUB_TRAIN_SUBJECTS for f in d3["split"]["xsub_train"])
    assert all(by_id[f]["subject"] not in XSUB_TRAIN_SUBJECTS for f in d3["split"]["xsub_val"])
    assert all(by_id[f]["camera"] == 1 for f in d3["split"]["xview_val"])
    assert all(by_id[f]["camera"] in (2, 3) for f in d3["split"]["xview_train"])


def test_second_person_only_in_two_person_classes(small):
    d3, d2, _ = small
    two = np.array([class_group(a["label"]) == "two_person" for a in d3["annotations"]])
    assert two.any() and (~two).any()
    k3, k2, sc = stack(d3), stack(d2), stack(d2, "keypoint_score")
    assert not k3[~two, 1].any() and not k2[~two, 1].any() and not sc[~two, 1].any()
    assert (np.abs(k3[two, 1]).sum((1, 2, 3)) > 0).all() and (sc[two, 1] > 0).all()
    assert (np.abs(k3[:, 0]).sum((1, 2, 3)) > 0).all()


def test_2d_mostly_inside_image_with_scores_in_unit_interval(small):
    d3, d2, _ = small
    two = np.array([class_group(a["label"]) == "two_person" for a in d3["annotations"]])
    k2, sc = stack(d2), stack(d2, "keypoint_score")
    pts = np.concatenate([k2[:, 0].reshape(-1, 2), k2[two, 1].reshape(-1, 2)])
    scores = np.concatenate([sc[:, 0].ravel(), sc[two, 1].ravel()])
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < 1920) & (pts[:, 1] >= 0) & (pts[:, 1] < 1080)
    assert inside.mean() > 0.99
    assert (scores > 0).all() and (scores <= 1).all() and np.median(scores) > 0.6
    # image y grows downward: the nose is above (smaller v than) the ankles
    assert (k2[:, 0, :, COCO.index("nose"), 1] < k2[:, 0, :, COCO.index("left_ankle"), 1]).mean() > 0.95


def test_3d_is_kinect_like_and_consistent_with_2d(small):
    d3, d2, du = small
    k3, k2 = stack(d3)[:, 0], stack(d2)[:, 0]
    assert 1.5 < k3[..., 2].min() and k3[..., 2].max() < 5.5  # depth in metres
    assert (k3[..., NTU.index("head"), 1] > k3[..., NTU.index("left_ankle"), 1] + 1.0).mean() > 0.95
    # a facing subject's left is at smaller x (NTU convention), for the frontal camera
    front = stack(d3)[np.array([a["camera"] == 2 for a in d3["annotations"]]), 0]
    assert (front[..., NTU.index("left_shoulder"), 0] < front[..., NTU.index("right_shoulder"), 0]).mean() > 0.6
    # projecting the (noisy) Kinect joints lands next to the (jittered) detections
    common = [j for j in COCO.joints if NTU.has(j)]
    x = k3[..., [NTU.index(j) for j in common], :]
    uv = np.stack([960 + 1050 * x[..., 0] / x[..., 2], 540 - 1050 * x[..., 1] / x[..., 2]], -1)
    err = np.linalg.norm(uv - k2[..., [COCO.index(j) for j in common], :], axis=-1)
    assert np.median(err) < 15
    # the clean ground truth converts to the Kinect file up to sensor noise
    clean, _ = convert(stack(du)[:, 0], "unified30", "ntu25")
    assert np.median(np.abs(clean - k3)) < 0.02


def test_camera_yaw_rotates_the_3d_view():
    d3, _ = generate(num_samples=150, num_frames=8, seed=1, classes=("turn_head_left", "nod_head"))
    k3 = stack(d3)[:, 0, 0]
    cam = np.array([a["camera"] for a in d3["annotations"]])
    d = k3[:, NTU.index("right_shoulder")] - k3[:, NTU.index("left_shoulder")]
    angle = np.degrees(np.arctan2(d[:, 2], d[:, 0]))  # shoulder line in the x-z (ground) plane
    mean = {c: angle[cam == c].mean() for c in (1, 2, 3)}
    assert abs(mean[2]) < 12
    assert abs(abs(mean[1] - mean[3]) - 90) < 15 and np.sign(mean[1]) != np.sign(mean[3])


def _ridge_val_accuracy(f, y, train, lam=0.01):
    """One-vs-rest ridge classifier on standardised features; accuracy on the rest."""
    mu, sd = f[train].mean(0), f[train].std(0) + 1e-6
    z = np.concatenate([(f - mu) / sd, np.ones((len(f), 1))], 1)
    cls = np.unique(y)
    Y = (y[:, None] == cls).astype(float) * 2 - 1
    W = np.linalg.solve(z[train].T @ z[train] + lam * len(z) * np.eye(z.shape[1]), z[train].T @ Y[train])
    return float((cls[(z[~train] @ W).argmax(1)] == y[~train]).mean())


def _features(x):
    """Root-relative, scale-normalised joints: mean of the middle half of the clip and std over time."""
    x = x - x.mean(2, keepdims=True)
    x = x / np.linalg.norm(x, axis=-1).mean((1, 2))[:, None, None, None]
    T = x.shape[1]
    return np.concatenate([x[:, T // 4:3 * T // 4].mean(1).reshape(len(x), -1), x.std(1).reshape(len(x), -1)], 1)


def _group_accuracies(groups, n, seed):
    names = class_names()
    d3, d2 = generate(num_samples=n, num_frames=32, seed=seed, classes=[c for g in groups for c in CLASS_GROUPS[g]])
    y = np.array([a["label"] for a in d3["annotations"]])
    train = np.isin([a["frame_dir"] for a in d3["annotations"]], d3["split"]["xsub_train"])
    f3, f2 = _features(stack(d3)[:, 0]), _features(stack(d2)[:, 0])
    out = {}
    for g in groups:
        m = np.isin(y, [names.index(c) for c in CLASS_GROUPS[g]])
        out[g] = (_ridge_val_accuracy(f3[m], y[m], train[m]), _ridge_val_accuracy(f2[m], y[m], train[m]))
    return out


def test_face_classes_need_coco_and_hand_classes_need_kinect():
    acc = _group_accuracies(("face", "hand"), 1200, seed=0)
    (face3d, face2d), (hand3d, hand2d) = acc["face"], acc["hand"]
    assert face2d > 0.85 and face3d < 0.5, acc  # chance is 1/3
    assert hand3d > 0.8 and hand2d < 0.5, acc


def test_body_and_two_person_classes_are_visible_to_both():
    acc = _group_accuracies(("body", "two_person"), 600, seed=1)
    for g, (a3, a2) in acc.items():
        assert a3 > 0.85 and a2 > 0.85, (g, acc)


def test_class_selection_and_two_person_fraction():
    two = {class_names().index(c) for c in CLASS_GROUPS["two_person"]}

    def labels(d):
        return [a["label"] for a in d["annotations"]]

    assert not two & set(labels(generate(num_samples=60, num_frames=4, two_person_fraction=0.0)[0]))
    assert set(labels(generate(num_samples=30, num_frames=4, two_person_fraction=1.0)[0])) <= two
    sel = generate(num_samples=30, num_frames=4, classes=("squat", "bow"))[0]
    assert {class_names()[i] for i in labels(sel)} == {"squat", "bow"}


@pytest.mark.parametrize("kw, field", [({"num_subjects": 2}, "num_subjects"), ({"classes": ("fly",)}, "classes"),
                                       ({"num_frames": 1}, "num_frames"), ({"jitter_2d": -1.0}, "jitter_2d"),
                                       ({"colour": "red"}, "colour")])
def test_bad_config_raises_data_error(kw, field):
    with pytest.raises(DataError) as e:
        generate(num_samples=4, **kw)
    assert e.value.field == field


def test_save_synhet_round_trip(tmp_path):
    from hetskel.data.pyskl import load_pyskl

    paths = save_synhet(tmp_path / "syn", num_samples=30, seed=2, num_frames=10)
    assert (tmp_path / "syn" / "class_names.txt").read_text().split() == class_names()
    l3, l2 = load_pyskl(paths["3d"]), load_pyskl(paths["2d"])
    g3, g2 = generate(num_samples=30, seed=2, num_frames=10)
    assert l3["layout"] == "ntu25" and l2["layout"] == "coco17" and l3["split"] == g3["split"]
    assert np.array_equal(stack(l3), stack(g3)) and np.array_equal(stack(l2, "keypoint_score"),
                                                                    stack(g2, "keypoint_score"))
    assert [a["label"] for a in l2["annotations"]] == [a["label"] for a in g2["annotations"]]
