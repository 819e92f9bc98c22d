import numpy as np
import pytest
import torch

from hetskel.layouts import (
    COMMON,
    FACE,
    HANDS_FEET,
    Layout,
    LayoutError,
    convert,
    get_layout,
    list_layouts,
    register_joints,
    register_layout,
    unify,
    unregister_layout,
)


def test_builtin_layouts_are_registered():
    names = list_layouts()
    for n in ["ntu25", "coco17", "coco20", "unified30", "kinect20_msr", "kinect20_utd", "openni15", "h36m17"]:
        assert n in names
    assert get_layout("ntu25").num_joints == 25
    assert get_layout("coco17").num_joints == 17 and get_layout("coco17").dims == 2
    assert get_layout("coco20").num_joints == 20
    assert get_layout("h36m17").num_joints == 17
    assert get_layout("openni15").num_joints == 15


def test_unified30_matches_spec_order():
    u = unify(["ntu25", "coco17"])
    assert u.layout.joints == FACE + COMMON + HANDS_FEET
    assert get_layout("unified30").joints == u.layout.joints
    assert u.missing("ntu25") == list(FACE)
    # COCO-17 lacks the spine (derivable) and the hands/feet; COCO-20 lacks only hands/feet
    assert unify(["ntu25", "coco20"]).missing("coco20") == list(HANDS_FEET)


def test_spec_coco_to_kinect_correspondence():
    coco, ntu = get_layout("coco17"), get_layout("ntu25")
    spec = {5: 4, 6: 8, 7: 5, 8: 9, 9: 6, 10: 10, 11: 12, 12: 16, 13: 13, 14: 17, 15: 14, 16: 18}
    for c, k in spec.items():
        assert coco.joints[c] == ntu.joints[k]


def test_kinect_v1_orders_from_dataset_docs():
    msr = get_layout("kinect20_msr")
    assert msr.joints[0] == "left_shoulder" and msr.joints[6] == "spine_base" and msr.joints[19] == "head"
    utd = get_layout("kinect20_utd")
    assert utd.joints[:4] == ("head", "spine_shoulder", "spine_mid", "spine_base")
    assert set(msr.joints) == set(utd.joints)


def test_left_right_pairs_and_flip():
    ntu = get_layout("ntu25")
    pairs = {(ntu.joints[a], ntu.joints[b]) for a, b in ntu.left_right}
    assert ("left_hand_tip", "right_hand_tip") in pairs and len(pairs) == 10
    perm = ntu.flip_permutation
    assert sorted(perm) == list(range(25)) and [perm[p] for p in perm] == list(range(25))
    assert ntu.joints[perm[ntu.index("left_wrist")]] == "right_wrist"


def test_every_layout_is_a_tree():
    for name in list_layouts():
        lay = get_layout(name)
        for i in range(lay.num_joints):
            seen, j = set(), i
            while j >= 0:
                assert j not in seen, f"{name}: cycle at {lay.joints[i]}"
                seen.add(j)
                j = lay.parents[j]


@pytest.mark.parametrize("src,dst", [("coco17", "coco20"), ("ntu25", "unified30"), ("kinect20_msr", "kinect20_utd"),
                                     ("h36m17", "ntu25"), ("openni15", "unified30")])
def test_convert_copies_real_joints_exactly(src, dst):
    s, d = get_layout(src), get_layout(dst)
    x = np.random.default_rng(0).normal(size=(2, 4, s.num_joints, 3)).astype(np.float32)
    y, real = convert(x, src, dst)
    assert y.shape == (2, 4, d.num_joints, 3) and real.shape == (d.num_joints,)
    for k, j in enumerate(d.joints):
        if s.has(j):
            assert real[k]
            np.testing.assert_array_equal(y[..., k, :], x[..., s.index(j), :])
    # back again: every real joint of src that dst has comes back unchanged
    back, real_back = convert(y, dst, src, derive=False)
    for k, j in enumerate(s.joints):
        if d.has(j):
            np.testing.assert_array_equal(back[..., k, :], x[..., k, :])


def test_spine_interpolation_matches_spec_and_works_in_torch():
    x = torch.randn(3, 5, 17, 2)
    coco = get_layout("coco17")
    for dst in ("coco20", "unified30"):
        y, real = convert(x, "coco17", dst)
        d = get_layout(dst)
        sh = (x[..., coco.index("left_shoulder"), :] + x[..., coco.index("right_shoulder"), :]) / 2
        hip = (x[..., coco.index("left_hip"), :] + x[..., coco.index("right_hip"), :]) / 2
        torch.testing.assert_close(y[..., d.index("spine_shoulder"), :], sh)
        torch.testing.assert_close(y[..., d.index("spine_base"), :], hip)
        torch.testing.assert_close(y[..., d.index("spine_mid"), :], (sh + hip) / 2)
        assert real[d.index("spine_mid")]
    y, real = convert(x, "coco17", "unified30", derive=False)
    assert not real[get_layout("unified30").index("spine_mid")]
    assert (y[..., get_layout("unified30").index("spine_mid"), :] == 0).all()


def test_unify_any_set_of_layouts():
    u = unify(["kinect20_msr", "coco17", "h36m17"])
    assert "head_top" in u.layout.joints and "nose" in u.layout.joints
    for src in u.sources:
        lay = get_layout(src)
        assert u.real_mask[src].sum() == lay.num_joints
        assert [u.layout.joints[i] for i in u.index[src]] == list(lay.joints)


def test_bad_layout_definitions_are_clear_errors():
    with pytest.raises(LayoutError, match="unknown joint name"):
        Layout.from_bones("bad", ["left_wrist", "left_pinky"], {})
    with pytest.raises(LayoutError, match="duplicate"):
        Layout.from_bones("bad", ["left_wrist", "left_wrist"], {})
    with pytest.raises(LayoutError, match="not one of its joints"):
        Layout.from_bones("bad", ["left_wrist"], {"left_wrist": "left_elbow"})
    with pytest.raises(LayoutError, match="unknown layout"):
        get_layout("ntu26")
    with pytest.raises(LayoutError, match="has 25"):
        convert(np.zeros((4, 17, 3)), "ntu25", "coco17")


def test_user_layout_is_one_definition():
    register_joints(["left_index_tip", "right_index_tip"])
    lay = register_layout(Layout.from_bones(
        "test_hands4", ["left_wrist", "left_index_tip", "right_wrist", "right_index_tip"],
        {"left_index_tip": "left_wrist", "right_index_tip": "right_wrist"}, dims=2), overwrite=True)
    try:
        assert "test_hands4" in list_layouts()
        assert lay.left_right == [(0, 2), (1, 3)]
        u = unify(["ntu25", "test_hands4"])
        assert u.layout.num_joints == 27
    finally:
        unregister_layout("test_hands4")  # the registry is global: leave it as other tests expect
    assert "test_hands4" not in list_layouts()


def test_ancestry_rows_are_paths_and_columns_subtrees():
    lay = get_layout("unified30")
    a = lay.ancestry()
    i = lay.index
    assert a.shape == (30, 30) and a.diagonal().all()
    # row: the path from a joint up to its root
    assert set(a[i("left_ear")].nonzero()[0]) == {i("left_ear"), i("left_eye"), i("nose")}
    # column: the subtree under a joint (the face hangs off the nose, a root of its own)
    assert set(a[:, i("nose")].nonzero()[0]) == {i(j) for j in ("nose", "left_eye", "right_eye", "left_ear",
                                                                 "right_ear")}
    roots = [j for j, p in enumerate(lay.parents) if p < 0]
    for j in range(30):  # every joint reaches exactly one root
        assert sum(a[j, r] for r in roots) == 1
