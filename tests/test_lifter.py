import math

import numpy as np
import pytest
import torch

from hetskel.data.errors import DataError
from hetskel.hetero.lifter import (
    Lifter,
    add_spine,
    mpjpe,
    pa_mpjpe,
    pose_frame,
    procrustes_align,
    reconstruction_loss,
    shared_joints,
    spine_layout,
    trajectory,
    with_trajectory,
)
from hetskel.hetero.lifter_train import (
    LifterConfig,
    baselines,
    load_lifter,
    save_lifter,
    train_lifter,
)
from hetskel.layouts import convert, get_layout

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest)


def _rot_y(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2)


def synthetic_pairs(n: int, T: int = 16, seed: int = 0, M: int = 2):
    """Random low-rank 3D bodies (unified30 joints) yawing in front of a pinhole camera.

    Returns (x2d (n, M, T, 17, 2) normalised by image size, x3d (n, M, T, 25, 3) metres); the second
    person is absent in odd samples. One template per seed family so train/val share the body model.
    """
    tmpl = torch.Generator().manual_seed(1234)
    mean = torch.randn(30, 3, generator=tmpl) * 0.3
    basis = torch.randn(4, 30, 3, generator=tmpl) * 0.08
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(n, M, 1, 4, generator=g) * 6.28
    t = torch.linspace(0, 3, T)[None, None, :, None]
    z = torch.sin(t * (1 + torch.rand(n, M, 1, 4, generator=g)) + phase)           # (n, M, T, 4)
    pose = mean + torch.einsum("nmtk,kvc->nmtvc", z, basis)
    yaw = (torch.rand(n, M, 1, generator=g) - 0.5) * 2.0 + torch.linspace(0, 0.6, T)
    pose = torch.einsum("nmtij,nmtvj->nmtvi", _rot_y(yaw), pose)
    shift = torch.stack([(torch.rand(n, M, generator=g) - 0.5), torch.zeros(n, M),
                         3.2 + 0.6 * torch.rand(n, M, generator=g)], -1)
    cam = pose + shift[:, :, None, None, :]
    f, w, h = 1000.0, 1920.0, 1080.0
    u = f * cam[..., 0] / cam[..., 2] + w / 2
    v = -f * cam[..., 1] / cam[..., 2] + h / 2
    uv = torch.stack([(u - w / 2) / (w / 2), (v - h / 2) / (h / 2)], -1)
    x2d, _ = convert(uv, "unified30", "coco17", derive=False)
    x3d, _ = convert(cam, "unified30", "ntu25", derive=False)
    absent = torch.arange(n) % 2 == 1
    x2d[absent, 1:] = 0
    x3d[absent, 1:] = 0
    return x2d, x3d


# ---------------------------------------------------------------------------------------------
# pose frame
def test_pose_frame_is_root_relative_torso_scaled_and_keeps_padding():
    _, x3 = synthetic_pairs(4, T=10)
    x3[0, 0, 7:] = 0  # padded tail frames
    pose, root, scale = pose_frame(x3, "ntu25")
    lay = get_layout("ntu25")
    present = (x3 != 0).any(-1).any(-1)
    assert torch.all(pose[..., lay.index("spine_base"), :][present] == 0)
    torso = (pose[..., lay.index("spine_shoulder"), :] - pose[..., lay.index("spine_base"), :]).norm(dim=-1)
    mean_torso = (torso * present).sum(-1) / present.sum(-1).clamp_min(1)
    assert torch.allclose(mean_torso[present.any(-1)], torch.ones(()), atol=1e-5)
    assert torch.all(pose[~present] == 0) and torch.all(root[~present] == 0)
    assert torch.all(pose[1, 1] == 0) and scale[1, 1] == 1  # absent person: zeros, neutral scale
    # the frame is invariant to translation and scale of the input, and invertible
    moved = (x3 * 2.5 + torch.tensor([0.3, -1.0, 2.0])) * present[..., None, None]
    assert torch.allclose(pose_frame(moved, "ntu25").pose, pose, atol=1e-5)
    back = (pose * scale[..., None, None, None] + root[..., None, :]) * present[..., None, None]
    assert torch.allclose(back, x3, atol=1e-5)


def test_pose_frame_2d_and_derived_root_layouts():
    x2, _ = synthetic_pairs(2, T=5)
    pose, root, scale = pose_frame(x2, "coco17")  # spine_base derived from the hips
    hips = (x2[..., 11, :] + x2[..., 12, :]) / 2
    assert torch.allclose(root[0, 0], hips[0, 0])
    assert pose.shape == x2.shape and scale.shape == (2, 2)
    x = torch.randn(3, 6, 15, 3)  # openni15 has neither spine_base nor spine_shoulder
    assert pose_frame(x, "openni15").pose.shape == x.shape


def test_trajectory_shared_reference_and_with_trajectory():
    root = torch.zeros(1, 2, 4, 3)
    root[0, 0] = torch.tensor([[1.0, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]])
    root[0, 1, 1:] = torch.tensor([[5.0, 0, 0], [5, 0, 0], [5, 0, 0]])
    scale = torch.tensor([[2.0, 1.0]])
    valid = (root != 0).any(-1)
    t = trajectory(root, scale, valid)
    assert torch.allclose(t[0, 0, :, 0], torch.tensor([0.0, 0.5, 1.0, 1.5]))
    assert torch.allclose(t[0, 1, :, 0], torch.tensor([0.0, 4.0, 4.0, 4.0]))  # relative to person 0, padded frame 0
    own = trajectory(root, scale, valid, shared=False)
    assert torch.allclose(own[0, 1, :, 0], torch.zeros(4))
    _, x3 = synthetic_pairs(2, T=6)
    frame = pose_frame(x3, "ntu25")
    present = (x3 != 0).any(-1)
    seq = with_trajectory(frame, present)
    # the whole sequence in torso units relative to the reference root: x / scale up to a constant
    ref = x3[0, 0, 0, 0]
    assert torch.allclose(seq[0, 0], (x3[0, 0] - ref) / frame.scale[0, 0], atol=1e-5)
    assert torch.all(seq[1, 1] == 0)


def test_add_spine_interpolates_and_respects_absent_ingredients():
    x2, _ = synthetic_pairs(2, T=3)
    y, lay = add_spine(x2, "coco17")
    assert lay.name == "coco20" and y.shape[-2] == 20
    ref, _ = convert(x2, "coco17", "coco20")
    assert torch.equal(y, ref)
    x2[0, 0, 0, 11] = 0  # left hip undetected -> spine_base and spine_mid absent, not half a hip
    y, _ = add_spine(x2, "coco17")
    assert torch.all(y[0, 0, 0, lay.index("spine_base")] == 0) and torch.all(y[0, 0, 0, lay.index("spine_mid")] == 0)
    assert torch.any(y[0, 0, 0, lay.index("spine_shoulder")] != 0)
    assert spine_layout("ntu25").name == "ntu25"


# ---------------------------------------------------------------------------------------------
# the module
def test_lifter_shapes_padding_and_batchnorm_statistics():
    torch.manual_seed(0)
    lay = get_layout("coco20")
    m = Lifter(20, 20, width=32, root_index=lay.index("spine_base"))
    x = torch.randn(2, 2, 5, 20, 2)
    padded = x.clone()
    padded[1, 1] = 0
    padded[0, 0, 3:] = 0
    out = m(padded)
    assert out.shape == (2, 2, 5, 20, 3)
    assert torch.all(out[1, 1] == 0) and torch.all(out[0, 0, 3:] == 0)
    assert torch.all(out[..., lay.index("spine_base"), :] == 0)
    # BatchNorm saw only the valid rows: same statistics as a batch of just those rows
    import copy
    m2 = Lifter(20, 20, width=32, dropout=0.0)
    m3 = copy.deepcopy(m2)
    m2(padded)
    keep = (padded != 0).any(-1).any(-1)
    m3(padded[keep])
    bns = [(a, b) for a, b in zip(m2.modules(), m3.modules()) if isinstance(a, torch.nn.BatchNorm1d)]
    assert len(bns) == 3
    for a, b in bns:
        assert torch.allclose(a.running_mean, b.running_mean) and torch.allclose(a.running_var, b.running_var)
    one = torch.zeros(3, 20, 2)
    one[0] = torch.randn(20, 2)
    assert m(one).shape == (3, 20, 3)  # a single valid row in training mode does not crash BatchNorm


def test_reconstruction_loss_shared_joints_masking_and_person_matching():
    _, idx_b, names = shared_joints("coco20", "ntu25")
    assert len(names) == 15
    torch.manual_seed(1)
    lifted = torch.randn(3, 2, 4, 20, 3)
    target = torch.randn(3, 2, 4, 25, 3)
    target[2, 1] = 0
    lifted[2, 1] = 0
    ia, ib, _ = shared_joints("coco20", "ntu25")
    d = ((lifted[..., ia, :] - target[..., ib, :]) ** 2).sum(-1).mean(-1)
    valid = torch.ones(3, 2, 4, dtype=torch.bool)
    valid[2, 1] = False
    want = d[valid].mean()
    assert torch.allclose(reconstruction_loss(lifted, "coco20", target, "ntu25"), want)
    # targets listed in the other person order: matching recovers the aligned loss
    aligned = convert(lifted, "coco20", "ntu25", derive=False)[0]
    aligned[2, 1] = 0
    swapped = aligned.flip(1)
    plain = reconstruction_loss(lifted, "coco20", swapped, "ntu25")
    matched = reconstruction_loss(lifted, "coco20", swapped, "ntu25", match_persons=True)
    assert plain > 0.5 and matched < 1e-10


def test_metrics_and_procrustes():
    torch.manual_seed(2)
    target = torch.randn(6, 15, 3)
    assert mpjpe(target + torch.tensor([0.0, 0.0, 0.3]), target) == pytest.approx(0.3, abs=1e-6)
    R = _rot_y(torch.tensor(0.7))
    moved = 1.7 * target @ R.T + torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(procrustes_align(moved, target), target, atol=1e-4)
    assert float(pa_mpjpe(moved, target)) < 1e-4
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0])  # a reflection is not a rotation
    assert float(pa_mpjpe(mirrored, target)) > 0.05
    noisy = target + 0.1 * torch.randn_like(target)
    assert float(pa_mpjpe(noisy, target)) <= float(mpjpe(noisy, target)) + 1e-6
    pad = torch.cat([target, torch.zeros(2, 15, 3)])
    assert float(pa_mpjpe(torch.cat([noisy, torch.ones(2, 15, 3)]), pad)) == pytest.approx(
        float(pa_mpjpe(noisy, target)), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# training
def test_train_lifter_beats_baselines_and_checkpoints(tmp_path):
    train = synthetic_pairs(48, T=16, seed=1)
    val = synthetic_pairs(16, T=16, seed=2)
    cfg = LifterConfig(width=128, epochs=25, batch_size=256, lr=2e-3, dropout=0.1, seed=0)
    res = train_lifter(train, {"coco17": val[0], "ntu25": val[1]}, cfg, run_dir=tmp_path / "run")
    m = res.metrics
    assert m["lifter"]["mpjpe"] < 0.8 * m["mean_pose"]["mpjpe"]
    assert m["lifter"]["mpjpe"] < 0.8 * m["zero_depth"]["mpjpe"]
    assert m["lifter"]["pa_mpjpe"] < m["zero_depth"]["pa_mpjpe"]
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert len(res.history) == 25 and math.isfinite(m["lifter"]["mpjpe_mm"])
    for f in ("config.json", "metrics.jsonl", "lifter.pt", "results.json"):
        assert (res.run_dir / f).is_file()
    model, ck = load_lifter(res.run_dir / "lifter.pt")
    x = torch.randn(7, 20, 2)
    res.model.eval()
    assert torch.equal(model(x), res.model(x))
    assert ck["metrics"]["lifter"]["mpjpe"] == m["lifter"]["mpjpe"]
    save_lifter(tmp_path / "again.pt", model)
    torch.load(tmp_path / "again.pt", weights_only=True)


def test_train_lifter_rejects_bad_pairs():
    x2, x3 = synthetic_pairs(2, T=4)
    cfg = LifterConfig(width=8, epochs=1)
    with pytest.raises(DataError, match="x3d"):
        train_lifter((x2, x3[..., :2]), (x2, x3), cfg)
    bad = x3.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        train_lifter((x2, bad), (x2, x3), cfg)
    with pytest.raises(DataError, match="paired"):
        train_lifter((x2[:, :, :3], x3), (x2, x3), cfg)
    with pytest.raises(DataError, match="keys"):
        train_lifter({"foo": x2}, (x2, x3), cfg)


def test_baselines_fit_image_axes():
    x2, x3 = synthetic_pairs(8, T=6)
    from hetskel.hetero.lifter_train import _frames
    cfg = LifterConfig()
    fr = _frames((x2, x3), cfg, "pairs")
    fns = baselines(fr, "coco20", "ntu25")
    zd = fns["zero_depth"](fr)
    assert torch.all(zd[..., 2] == 0)
    ia, ib, _ = shared_joints("coco20", "ntu25")
    # image v grows downward, camera y upward: the fitted y gain is negative
    corr = (zd[..., 1] * fr["y"][:, ib, 1]).sum()
    assert corr > 0


def test_lifter_on_synhet_heldout_subjects():
    synhet = pytest.importorskip("hetskel.data.synhet")
    d3, d2 = synhet.generate(num_samples=120, seed=5, num_frames=32)

    def arrays(split):
        keep = set(d3["split"][split])
        a3 = np.stack([a["keypoint"] for a in d3["annotations"] if a["frame_dir"] in keep])
        anns = [a for a in d2["annotations"] if a["frame_dir"] in keep]
        h, w = anns[0]["img_shape"]
        a2 = np.stack([a["keypoint"] for a in anns])
        a2 = (a2 - [w / 2, h / 2]) / [w / 2, h / 2] * (a2 != 0).any(-1, keepdims=True)
        return a2, a3

    cfg = LifterConfig(width=128, epochs=12, batch_size=256, lr=2e-3, dropout=0.1, frame_stride=2)
    res = train_lifter(arrays("xsub_train"), arrays("xsub_val"), cfg)
    m = res.metrics
    assert m["lifter"]["mpjpe"] < m["mean_pose"]["mpjpe"] and m["lifter"]["mpjpe"] < m["zero_depth"]["mpjpe"]


def test_an_exact_zero_3d_joint_is_present_but_a_zero_2d_joint_is_not():
    # PYSKL normalisation centres spine_mid of the first frame exactly on the origin: still a real joint
    from hetskel.hetero.lifter import frame_valid, joint_present
    x3 = torch.randn(2, 4, 25, 3)
    x3[0, 0, 1] = 0.0
    x3[1] = 0.0  # a padded frame
    p3 = joint_present(x3)
    assert p3[0, 0, 1] and p3[0].all() and not p3[1].any()
    x2 = torch.randn(4, 17, 2)
    x2[0, 3] = 0.0  # a detector joint below the score threshold
    p2 = joint_present(x2)
    assert not p2[0, 3] and p2.sum() == 4 * 17 - 1 and frame_valid(x2).all()


def test_lifter_runs_under_bf16_autocast():
    lifter = Lifter(width=16).train()
    x = torch.randn(2, 3, 20, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lifter(x)
    y.float().sum().backward()
    assert y.shape == (2, 3, 20, 3) and y.dtype == torch.float32
    assert lifter.mlp[0].weight.grad is not None and torch.isfinite(lifter.mlp[0].weight.grad).all()
