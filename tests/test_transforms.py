import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from hetskel.data import transforms as tr
from hetskel.data.errors import DataError
from hetskel.layouts import Layout, LayoutError, get_layout

NTU = get_layout("ntu25")
RS, LS = NTU.index("right_shoulder"), NTU.index("left_shoulder")
SB, SM = NTU.index("spine_base"), NTU.index("spine_mid")


def clips(n=4, m=2, t=12, v=25, c=3, seed=0, dtype=torch.float64):
    """Random clips with the kinds of padding real files have."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, m, t, v, c, generator=g, dtype=dtype)
    x[1 % n, 1] = 0            # a missing second person
    x[2 % n, :, t - 4:] = 0    # trailing zero padding
    x[3 % n, 0, :3] = 0        # main person appears late (and person 1 is present longer)
    return x


def proper_rotation(seed):
    return torch.from_numpy(Rotation.random(random_state=seed).as_matrix())


def rigid(x, R, shift):
    """Move every present joint by the same rotation + translation."""
    present = (x != 0).any(-1, keepdim=True)
    return torch.where(present, x @ R.T + shift, x)


def reference_pyskl(x: np.ndarray) -> np.ndarray:
    """Plain per-sample NumPy re-statement of the PYSKL semantics (test oracle)."""
    out = np.zeros_like(x)
    for n, s in enumerate(x):
        fvalid = (s != 0).any(-1).any(-1)                      # (M, T)
        if not fvalid.any():
            continue
        main = int(np.argmax(fvalid.sum(-1)))
        t0 = int(np.flatnonzero(fvalid[main])[0])
        ref = s[main, t0]
        y = s - ref[SM]
        for target, (a, b) in (((0, 0, 1), (SB, SM)), ((1, 0, 0), (LS, RS))):
            r = (y[main, t0] if target == (1, 0, 0) else ref)
            v = r[b] - r[a]
            v = v / np.linalg.norm(v)
            axis = np.cross(v, target)
            ang = math.atan2(np.linalg.norm(axis), float(np.dot(v, target)))
            rot = Rotation.from_rotvec(axis / np.linalg.norm(axis) * ang).as_matrix()
            y = y @ rot.T
        out[n] = y * (s != 0).any(-1, keepdims=True)
    return out


# ---------------------------------------------------------------------------------------------
# normalize_3d
def test_pyskl_matches_per_sample_reference():
    x = clips()
    got = tr.normalize_3d(x, "ntu25")
    np.testing.assert_allclose(got.numpy(), reference_pyskl(x.numpy()), atol=1e-9)


@pytest.mark.parametrize("variant", ["pyskl", "umurl"])
@pytest.mark.parametrize("scale", [None, "torso"])
def test_translation_invariance_and_padding_stays_zero(variant, scale):
    x = clips()
    a = tr.normalize_3d(x, "ntu25", variant=variant, scale=scale)
    b = tr.normalize_3d(rigid(x, torch.eye(3, dtype=x.dtype), torch.tensor([0.3, -2.0, 5.0], dtype=x.dtype)),
                        "ntu25", variant=variant, scale=scale)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert (a[1, 1] == 0).all() and (a[2, :, -4:] == 0).all() and (a[3, 0, :3] == 0).all()
    # frame presence is kept (joint level cannot be: the centre joint itself becomes exactly 0)
    assert torch.equal((a != 0).flatten(3).any(-1), (x != 0).flatten(3).any(-1))


def test_alignment_shoulders_on_x_spine_on_z():
    x = clips()
    y = tr.normalize_3d(x, "ntu25")
    # sample 0: main person 0, frame 0; sample 3: person 1 is present longer, so it is the main one
    for n, m, t in [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 1, 0)]:
        sh = y[n, m, t, RS] - y[n, m, t, LS]
        assert sh[0] > 0 and abs(sh[1]) < 1e-9 and abs(sh[2]) < 1e-9
        assert torch.allclose(y[n, m, t, SM], torch.zeros(3, dtype=y.dtype), atol=1e-12)  # centred
    f = tr.normalize_3d(x, "ntu25", align="frame")
    sp = f[0, 0, 0, SM] - f[0, 0, 0, SB]
    sh = f[0, 0, 0, RS] - f[0, 0, 0, LS]
    assert sp[2] > 0 and abs(sp[0]) < 1e-9 and abs(sp[1]) < 1e-9
    assert sh[0] > 0 and abs(sh[1]) < 1e-9


def test_umurl_centres_every_frame_and_frame_alignment_is_rotation_invariant():
    x = clips()
    y = tr.normalize_3d(x, "ntu25", variant="umurl")
    assert torch.allclose(y[0, 0, :, SM], torch.zeros_like(y[0, 0, :, SM]), atol=1e-12)
    R = proper_rotation(3)
    for variant in ("pyskl", "umurl"):
        a = tr.normalize_3d(x, "ntu25", variant=variant, align="frame", scale="torso")
        b = tr.normalize_3d(rigid(x, R, torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype)), "ntu25", variant=variant,
                            align="frame", scale="torso")
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


def test_torso_scale_gives_unit_torso():
    x = clips()[:1] * 7.0
    y = tr.normalize_3d(x, "ntu25", scale="torso")
    torso = (y[0, 0, :, NTU.index("spine_shoulder")] - y[0, 0, :, SB]).norm(dim=-1)
    assert torso.mean().item() == pytest.approx(1.0, abs=1e-9)


def test_unbatched_dtype_layouts_and_errors():
    x = clips(dtype=torch.float32)
    y = tr.normalize_3d(x[0], "ntu25")
    assert y.shape == x[0].shape and y.dtype == torch.float32
    assert tr.normalize_3d(x.half(), "ntu25").dtype == torch.float16
    # coco17 has no spine joints: they are derived from hips and shoulders
    c = torch.randn(2, 1, 5, 17, 3)
    yc = tr.normalize_3d(c, "coco17")
    coco = get_layout("coco17")
    mid = (yc[..., coco.index("left_shoulder"), :] + yc[..., coco.index("right_shoulder"), :]
           + yc[..., coco.index("left_hip"), :] + yc[..., coco.index("right_hip"), :]) / 4
    assert mid[:, 0, 0].abs().max() < 1e-5
    face = Layout("face3", ("nose", "left_eye", "right_eye"), (-1, 0, 0))
    with pytest.raises(LayoutError, match="spine_mid"):
        tr.normalize_3d(torch.randn(1, 1, 2, 3, 3), face)
    with pytest.raises(LayoutError):
        tr.normalize_3d(torch.randn(1, 1, 2, 17, 3), "ntu25")
    with pytest.raises(DataError):
        tr.normalize_3d(torch.randn(1, 1, 2, 25, 2), "ntu25")


def test_empty_sample_and_valid_mask():
    x = clips()
    x[0] = 0
    y = tr.normalize_3d(x, "ntu25")
    assert (y[0] == 0).all() and torch.isfinite(y).all()
    valid = torch.ones(x.shape[:3], dtype=torch.bool)
    valid[2, :, -6:] = False
    yv = tr.normalize_3d(x, "ntu25", valid=valid)
    assert (yv[2, :, -6:] == 0).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
       variant=st.sampled_from(["pyskl", "umurl"]))
def test_property_translation_invariance(seed, shift, variant):
    x = clips(n=2, m=2, t=5, seed=seed)
    s = torch.tensor(shift, dtype=x.dtype)
    a = tr.normalize_3d(x, "ntu25", variant=variant)
    b = tr.normalize_3d(rigid(x, torch.eye(3, dtype=x.dtype), s), "ntu25", variant=variant)
    torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = clips(dtype=torch.float32)
    y = tr.normalize_3d(x.cuda(), "ntu25", variant="umurl")
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.cpu(), tr.normalize_3d(x, "ntu25", variant="umurl"), atol=1e-5, rtol=1e-5)
    r = tr.resize_time(x.cuda(), 7, start=torch.tensor([0, 1, 2, 3]).cuda(), length=torch.tensor([5, 5, 4, 9]).cuda())
    assert r.device.type == "cuda"


# ---------------------------------------------------------------------------------------------
# normalize_2d
def test_normalize_2d_range_centre_and_threshold():
    h, w = 1080, 1920
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 4, 17, 2, generator=g) * torch.tensor([w, h])
    x[0, 0, 0, 0] = torch.tensor([w / 2, h / 2])
    x[0, 0, 0, 1] = torch.tensor([0.0, 0.0])
    x[0, 0, 0, 2] = torch.tensor([float(w), float(h)])
    score = torch.rand(2, 2, 4, 17, generator=g) + 0.1
    score[1, 1] = 0                                  # a padded person: score 0
    score[0, 1, 2, 5] = 0.05
    y = tr.normalize_2d(x, score, (h, w), threshold=0.1)
    assert y.abs().max() <= 1.0
    assert torch.equal(y[0, 0, 0, 0], torch.zeros(2))
    assert torch.equal(y[0, 0, 0, 1], torch.tensor([-1.0, -1.0]))
    assert torch.equal(y[0, 0, 0, 2], torch.tensor([1.0, 1.0]))
    assert (y[1, 1] == 0).all() and (y[0, 1, 2, 5] == 0).all()
    # per-sample image sizes and the unbatched form
    y2 = tr.normalize_2d(x, score, torch.tensor([[h, w], [2 * h, 2 * w]]))
    torch.testing.assert_close(y2[1, 0], (x[1, 0] - torch.tensor([w, h])) / torch.tensor([w, h]))
    torch.testing.assert_close(tr.normalize_2d(x[0], score[0], (h, w)), tr.normalize_2d(x, score, (h, w))[0])
    with pytest.raises(DataError, match="img_shape"):
        tr.normalize_2d(x, score, (0, w))


# ---------------------------------------------------------------------------------------------
# time
def test_resize_time_endpoints_shape_and_linearity():
    T = 20
    ramp = torch.arange(T, dtype=torch.float64).view(1, 1, T, 1, 1).expand(3, 2, T, 4, 3).clone()
    start, length = torch.tensor([0, 5, 3]), torch.tensor([20, 10, 1])
    y = tr.resize_time(ramp, 7, start=start, length=length)
    assert y.shape == (3, 2, 7, 4, 3)
    for n in range(3):
        exp = torch.linspace(start[n].item(), (start[n] + length[n] - 1).item(), 7, dtype=torch.float64)
        torch.testing.assert_close(y[n, 0, :, 0, 0], exp)
    assert tr.resize_time(ramp, 20).equal(ramp)                    # identity when nothing changes
    with pytest.raises(ValueError):
        tr.resize_time(ramp, 7, start=15, length=10)
    assert tr.resize_time(ramp[0], 5).shape == (2, 5, 4, 3)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 30), F=st.integers(1, 40), data=st.data())
def test_property_resize_keeps_crop_endpoints(T, F, data):
    start = data.draw(st.integers(0, T - 1))
    length = data.draw(st.integers(1, T - start))
    x = torch.randn(1, 1, T, 3, 2, generator=torch.Generator().manual_seed(T * 100 + F))
    y = tr.resize_time(x, F, start=start, length=length)
    assert y.shape == (1, 1, F, 3, 2)
    assert torch.equal(y[:, :, 0], x[:, :, start])
    if F > 1:
        assert torch.equal(y[:, :, -1], x[:, :, start + length - 1])


def test_valid_length_and_resample_valid():
    x = clips()
    x[0, :, 5] = 0                                    # a gap inside a clip still counts
    assert tr.valid_length(x).tolist() == [12, 12, 8, 12]
    assert tr.valid_length(torch.zeros(2, 3, 25, 3)).item() == 0
    y = tr.resample_valid(x, 16)
    torch.testing.assert_close(y[2], tr.resize_time(x[2:3, :, :8], 16)[0])
    assert torch.equal(y[2, :, -1], x[2, :, 7])
    assert (tr.resample_valid(torch.zeros(1, 1, 4, 25, 3), 6) == 0).all()


# ---------------------------------------------------------------------------------------------
# persons
def test_pad_and_truncate_persons():
    x = clips(n=2, m=3)
    x[0, 0] *= 0.01                                   # a nearly still person
    x[0, 2] *= 5.0                                    # the most active one
    x[1, 1] = 0                                       # absent person never beats a present one
    padded = tr.pad_persons(x, 5)
    assert padded.shape == (2, 5, 12, 25, 3) and (padded[:, 3:] == 0).all() and torch.equal(padded[:, :3], x)
    kept = tr.pad_persons(x, 2)
    assert torch.equal(kept[0, 0], x[0, 2]) and torch.equal(kept[0, 1], x[0, 1])
    assert torch.equal(kept[1, 0], x[1, 0]) or torch.equal(kept[1, 0], x[1, 2])
    assert (kept[1] != 0).any(-1).any(-1).any(-1).all()
    assert tr.pad_persons(x[0], 1).shape == (1, 12, 25, 3)


# ---------------------------------------------------------------------------------------------
# augmentations
def test_mirror_swaps_sides_and_is_an_involution():
    x = clips(n=2)
    y = tr.mirror(x, "ntu25")
    torch.testing.assert_close(y[..., RS, 0], -x[..., LS, 0])
    torch.testing.assert_close(y[..., RS, 1:], x[..., LS, 1:])
    torch.testing.assert_close(y[..., SM, :], x[..., SM, :] * torch.tensor([-1.0, 1, 1], dtype=x.dtype))
    assert torch.equal(tr.mirror(y, "ntu25"), x)
    some = tr.mirror(x, "ntu25", apply=torch.tensor([True, False]))
    assert torch.equal(some[0], y[0]) and torch.equal(some[1], x[1])


def test_random_rotate_is_a_seeded_rotation():
    x = clips()
    a = tr.random_rotate(x, generator=torch.Generator().manual_seed(1))
    b = tr.random_rotate(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    torch.testing.assert_close(a.norm(dim=-1), x.norm(dim=-1))
    assert (a[1, 1] == 0).all()
    x2 = torch.randn(3, 1, 4, 17, 2)
    r2 = tr.random_rotate(x2, max_angle=0.5)
    torch.testing.assert_close(r2.norm(dim=-1), x2.norm(dim=-1))


def test_smooth_time_averages_present_frames_only_and_keeps_absent_absent():
    x = clips(seed=3)
    y = tr.smooth_time(x, 3)
    assert y.shape == x.shape and torch.equal(tr.smooth_time(x, 1), x)
    present = (x != 0).any(-1)
    assert torch.equal((y != 0).any(-1), present)                    # absent stays absent, present stays present
    # an interior frame of a fully present clip is the mean of its three neighbours; the first frame
    # averages the two frames the window holds; a frame next to padding ignores the padding
    assert torch.allclose(y[0, 0, 5], x[0, 0, 4:7].mean(0))
    assert torch.allclose(y[0, 0, 0], x[0, 0, :2].mean(0))
    t = x.shape[2]
    assert torch.allclose(y[2, 0, t - 5], x[2, 0, t - 6:t - 4].mean(0))
    assert torch.allclose(tr.smooth_time(x[0], 5), tr.smooth_time(x, 5)[0])   # one sequence (M, T, V, C)
    # a linear motion is unchanged inside the clip; independent jitter shrinks by about sqrt(window)
    ramp = torch.arange(40, dtype=torch.float64)[None, :, None, None].expand(1, 40, 2, 3) + 1.0
    assert torch.allclose(tr.smooth_time(ramp, 5)[:, 2:-2], ramp[:, 2:-2])
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 4000, 1, 1, generator=g, dtype=torch.float64) + 10.0
    assert 0.40 < (tr.smooth_time(noise, 5) - 10.0).std() / (noise - 10.0).std() < 0.50   # 1/sqrt(5) = 0.447
    for bad in (0, 2, -1, 1.5):
        with pytest.raises(ValueError, match="window"):
            tr.smooth_time(x, bad)
