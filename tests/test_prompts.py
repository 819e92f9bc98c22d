import pytest
import torch

from hetskel.hetero.prompts import Unifier
from hetskel.layouts import LayoutError, get_layout, unify

LAYOUT_SETS = [("ntu25", "coco20"), ("kinect20_msr", "coco17", "h36m17"), ("openni15", "ntu25", "kinect20_utd")]


def _skeleton(layout, N=2, M=2, T=4, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, M, T, get_layout(layout).num_joints, C, generator=g)
    x[1, 1] = 0       # absent second person
    x[0, 0, -1] = 0   # padded last frame
    return x


@pytest.mark.parametrize("sources", LAYOUT_SETS)
@pytest.mark.parametrize("mode", ["prompt", "anchored", "zero"])
def test_round_trip_keeps_real_joints_exactly(sources, mode):
    uni = Unifier(sources, mode=mode)
    assert uni.layout.joints == unify(sources).layout.joints
    for i, s in enumerate(sources):
        x = _skeleton(s, seed=i)
        u, real = uni(x, s)
        assert u.shape == (*x.shape[:-2], uni.layout.num_joints, 3)
        assert real.dtype == torch.bool and int(real.sum()) == get_layout(s).num_joints
        assert torch.equal(uni.deunify(u, s), x)
        names = uni.layout.joints
        for k, j in enumerate(get_layout(s).joints):  # each real joint sits at its name's unified slot
            assert torch.equal(u[..., names.index(j), :], x[..., k, :])
        assert torch.all(u[1, 1] == 0) and torch.all(u[0, 0, -1] == 0)  # padding stays padding


def test_default_target_is_unified30_and_paper_prompt_sizes():
    uni = Unifier(("ntu25", "coco20"))
    assert uni.layout.joints == get_layout("unified30").joints
    assert tuple(uni.prompt("ntu25").shape) == (5, 3) and tuple(uni.prompt("coco20").shape) == (10, 3)
    assert uni.missing("ntu25") == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    explicit = Unifier(("ntu25", "coco17"), target="unified30")
    assert explicit.layout.name == "unified30"
    with pytest.raises(LayoutError, match="lacks"):
        Unifier(("ntu25", "h36m17"), target="unified30")


def test_prompt_mode_fills_the_static_table_on_present_frames():
    uni = Unifier(("ntu25", "coco20"), mode="prompt")
    x = _skeleton("coco20", C=2)  # 2D input: depth channel padded with zeros
    u, real = uni(x, "coco20")
    assert torch.all(u[..., real, 2] == 0)
    missing = torch.tensor([uni.layout.index(j) for j in uni.missing("coco20")])
    table = uni.prompt("coco20").detach()
    assert torch.equal(u[0, 1, 2, missing], table) and torch.equal(u[0, 0, 0, missing], table)
    assert torch.all(u[1, 1] == 0)


def test_anchored_mode_moves_virtual_joints_with_the_body():
    uni = Unifier(("ntu25", "coco20"), mode="anchored")
    assert uni.anchors("ntu25") == {j: "head" for j in uni.missing("ntu25")}
    a = uni.anchors("coco20")
    assert a["left_hand"] == a["left_hand_tip"] == a["left_thumb"] == "left_wrist"
    assert a["right_foot"] == "right_ankle" and a["head"] == "nose"
    x = _skeleton("ntu25")
    u, _ = uni(x, "ntu25")
    shift = torch.tensor([0.5, -1.0, 2.0])
    u2, _ = uni((x + shift) * (x != 0).any(-1, keepdim=True), "ntu25")
    nose, head = uni.layout.index("nose"), uni.layout.index("head")
    assert torch.allclose(u2[0, 0, 0, nose] - u[0, 0, 0, nose], shift)
    off = uni.prompt("ntu25")[0].detach()
    assert torch.allclose(u[0, 0, 1, nose], u[0, 0, 1, head] + off)
    assert torch.all(u[1, 1] == 0)
    # prompt mode does not follow the body
    p = Unifier(("ntu25", "coco20"), mode="prompt")
    pu, _ = p(x, "ntu25")
    pu2, _ = p(x + shift, "ntu25")
    assert torch.equal(pu[0, 0, 0, nose], pu2[0, 0, 0, nose])


@pytest.mark.parametrize("mode", ["prompt", "anchored"])
def test_gradients_reach_the_prompts(mode):
    uni = Unifier(("ntu25", "coco20"), mode=mode)
    x = _skeleton("coco20").requires_grad_(True)
    u, _ = uni(x, "coco20")
    (u ** 2).sum().backward()
    g = uni.prompt("coco20").grad
    assert g is not None and torch.all(g.abs().sum(-1) > 0)
    assert uni.prompt("ntu25").grad is None
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_zero_mode_pads_with_zeros_and_has_no_trainable_prompts():
    uni = Unifier(("ntu25", "coco20"), mode="zero")
    u, real = uni(_skeleton("ntu25"), "ntu25")
    assert torch.all(u[..., ~real, :] == 0)
    assert not any(p.requires_grad for p in uni.parameters())


def test_bad_inputs_are_named():
    uni = Unifier(("ntu25", "coco20"))
    with pytest.raises(LayoutError, match="no source"):
        uni(torch.zeros(1, 1, 2, 17, 3), "coco17")
    with pytest.raises(LayoutError, match="25"):
        uni(torch.zeros(1, 1, 2, 24, 3), "ntu25")
    with pytest.raises(ValueError, match="mode"):
        Unifier(mode="learned")
