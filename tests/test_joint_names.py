"""map_joint_names / layout_from_names: a dataset's joint names onto the vocabulary, with a report."""
import pytest

import hetskel
from hetskel.data.joint_names import canonical_joint, layout_from_names, map_joint_names
from hetskel.layouts import LayoutError, get_layout, unregister_layout

OPENNI = ["Head", "Neck", "Torso", "LShoulder", "LElbow", "LHand", "RShoulder", "RElbow", "RHand", "LHip",
          "LKnee", "LFoot", "RHip", "RKnee", "RFoot"]


@pytest.mark.parametrize("name, joint", [
    ("LShoulder", "left_shoulder"), ("lshoulder", "left_shoulder"), ("ShoulderRight", "right_shoulder"),
    ("l_hip", "left_hip"), ("hip.R", "right_hip"), ("left-knee", "left_knee"), ("RightFoot", "right_foot"),
    ("r_big_toe", "right_foot"), ("HandTipLeft", "left_hand_tip"), ("torso", "spine_mid"), ("Belly", "spine_mid"),
    ("pelvis", "spine_base"), ("MidHip", "spine_base"), ("Hip Center", "spine_base"), ("Face", "nose"),
    ("ShoulderCenter", "spine_shoulder"), ("neck", "neck"), ("Head", "head"), ("spine_shoulder", "spine_shoulder"),
    ("heel", None), ("shoulder", None)])
def test_canonical_joint(name, joint):
    assert canonical_joint(name) == joint


def test_mapping_report_and_layout():
    m = hetskel.map_joint_names(OPENNI)
    assert m.mapping["Torso"] == "spine_mid" and m.mapping["LHand"] == "left_hand" and not m.unmapped
    assert "left_wrist" in m.alternatives["LHand"][0]  # NiTE's hand is at the wrist
    assert "spine_shoulder" in m.alternatives["Neck"][0]
    assert "spine_base" in m.derived and "nose" in m.prompt_filled and "left_wrist" in m.prompt_filled
    assert "prompt-filled" in m.report()
    # choosing the wrist makes the unified wrists real (no longer prompt-filled)
    m2 = map_joint_names(OPENNI, choose={"LHand": "left_wrist", "RHand": "right_wrist"})
    assert "left_wrist" not in m2.prompt_filled and "left_hand" in m2.prompt_filled
    parents = [None, "Head", "Neck", "Neck", "LShoulder", "LElbow", "Neck", "RShoulder", "RElbow", "Torso",
               "LHip", "LKnee", "Torso", "RHip", "RKnee"]
    try:
        lay = hetskel.layout_from_names("my_openni", OPENNI, parents, dims=3)
        assert lay.joints == get_layout("openni15").joints and get_layout("my_openni") is lay
        assert lay.parents[lay.index("left_elbow")] == lay.index("left_shoulder")
    finally:
        unregister_layout("my_openni")


def test_unmapped_and_duplicate_names_are_errors():
    with pytest.raises(LayoutError, match="Heel"):
        layout_from_names("x1", ["Head", "Heel"], [None, 0], register=False)
    lay = layout_from_names("x1", ["Head", "Heel"], [None, 0], register=False, new_joints=True)
    assert lay.joints == ("head", "heel")
    with pytest.raises(LayoutError, match="same joint"):
        layout_from_names("x2", ["Torso", "Belly"], [None, 0], register=False)
