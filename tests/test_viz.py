import numpy as np
import pytest
import torch

from hetskel.io import save_figure
from hetskel.layouts import convert, get_layout
from hetskel.viz import skeleton as viz

NTU = get_layout("ntu25")


def standing(T=6, M=2, up_axis=1, seed=0):
    """A crude upright body per person: joint height from a per-joint offset, small random motion."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, T, 25, 3, generator=g) * 0.05
    height = torch.zeros(25)
    for name, h in [("head", 1.7), ("neck", 1.5), ("spine_shoulder", 1.4), ("left_shoulder", 1.4),
                    ("right_shoulder", 1.4), ("spine_mid", 1.1), ("spine_base", 0.9), ("left_hip", 0.9),
                    ("right_hip", 0.9), ("left_knee", 0.5), ("right_knee", 0.5)]:
        height[NTU.index(name)] = h
    x[..., up_axis] += height
    return x


def test_3d_figure_frames_traces_and_axes():
    x = standing(T=6, M=2)
    x[1] = 0                                                    # padded second person is not drawn
    fig = viz.skeleton_figure(x, "ntu25", title="clip")
    assert len(fig.frames) == 6
    assert len(fig.data) == 4 and all(len(f.data) == 4 for f in fig.frames)   # 3 bone groups + joints
    assert [t.type for t in fig.data] == ["scatter3d"] * 4
    joints = fig.data[3]
    assert list(joints.text) == [f"p0 {j}" for j in NTU.joints]
    assert joints.marker.color[NTU.index("left_wrist")] == viz.LEFT
    assert joints.marker.color[NTU.index("right_wrist")] == viz.RIGHT
    assert joints.marker.color[NTU.index("spine_mid")] == viz.CENTRE
    scene = fig.layout.scene
    assert scene.aspectmode == "cube" and scene.zaxis.title.text == "y (up)"    # Kinect: +y is up
    spans = [r[1] - r[0] for r in (scene.xaxis.range, scene.yaxis.range, scene.zaxis.range)]
    assert np.allclose(spans, spans[0])
    assert len(fig.layout.sliders[0].steps) == 6 and fig.layout.updatemenus[0].buttons[0].label == "Play"
    # the upright body is drawn with its head on top whatever axis is up
    fz = viz.skeleton_figure(standing(T=3, M=1, up_axis=2), "ntu25")
    assert fz.layout.scene.zaxis.title.text == "z (up)"
    z = np.array(fz.data[3].z, dtype=float)
    assert z[NTU.index("head")] > z[NTU.index("spine_base")]
    # two present persons: twice the traces
    assert len(viz.skeleton_figure(standing(T=2, M=2), "ntu25").data) == 8


def test_virtual_joints_are_marked():
    y, real = convert(standing(T=3, M=1), "ntu25", "unified30")
    fig = viz.skeleton_figure(y, "unified30", real_mask=real, joint_names=False)
    assert len(fig.data) == 5                                   # bones x3, real joints, virtual joints
    virtual = fig.data[4]
    assert len(virtual.x) == int((~real).sum()) == 5            # the face joints Kinect lacks
    assert virtual.marker.symbol == "circle-open"
    assert all(t.endswith("(virtual)") for t in virtual.text)
    # zero-filled virtual joints are absent, so they have no coordinates and no bones
    assert all(v is None for v in virtual.x)


def test_2d_figure_uses_image_convention():
    x = torch.rand(2, 5, 17, 2) * torch.tensor([640.0, 480.0])
    x[0, 2, 4] = 0                                              # one missing keypoint
    fig = viz.skeleton_figure(x, "coco17")
    assert len(fig.frames) == 5 and len(fig.data) == 8
    assert fig.data[0].type == "scatter"
    lo, hi = fig.layout.yaxis.range
    assert lo > hi                                              # y grows downward
    assert fig.frames[2].data[3].x[4] is None
    with pytest.raises(ValueError, match="joints"):
        viz.skeleton_figure(x, "ntu25")


def test_montage_and_saving(tmp_path):
    fig = viz.montage(standing(T=20), "ntu25", frames=6)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "t=0" and fig.axes[-1].get_title() == "t=19"
    x2 = torch.rand(1, 8, 17, 2) * 100
    f2 = viz.montage(x2, "coco17", frames=3)
    lo, hi = f2.axes[0].get_ylim()
    assert lo > hi                                              # image y downward
    y, real = convert(standing(T=4, M=1), "ntu25", "unified30")
    f3 = viz.montage(y, "unified30", frames=2, real_mask=real)
    assert save_figure(f3, "m", tmp_path).stat().st_size > 0
    html = save_figure(viz.skeleton_figure(x2, "coco17"), "s", tmp_path)
    assert html.suffix == ".html" and html.stat().st_size > 0
