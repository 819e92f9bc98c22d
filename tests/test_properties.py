"""Property-based tests (hypothesis) for readers and transforms, complementing the example tests.

Covered here (and not in test_transforms / test_pyskl / test_prompts / test_layouts):
- NTU ``.skeleton``: random sequences written in the exact Kinect v2 text format (any body count per
  frame, recurring body IDs, CRLF or LF, several number spellings) read back by ``read_skeleton``
  value for value: xyz, depth, colour, orientation, tracking state, body info, presence;
- PKU-MMD II skeleton and label files written and read back (any separator the reader accepts);
- ``resize_time`` with per-sample crops and arbitrary trailing axes: shape, both crop endpoints,
  values inside the crop's range, identity when nothing is resampled;
- ``normalize_3d``: after ``align=True`` the reference frame's shoulder line is parallel to +x for
  any pose, position and orientation; ``align="frame"`` is invariant to any rigid motion;
- ``Unifier`` forward then ``deunify`` returns the input exactly for random subsets of the layout
  registry (every mode, 2 or 3 channels); ``convert`` there and back keeps every shared joint.

Example counts are modest (<= 40) and deadlines off, so the file runs in a few seconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hetskel.data import transforms as tr
from hetskel.data.ntu import read_skeleton
from hetskel.data.pku import read_pku_labels, read_pku_skeleton
from hetskel.hetero.prompts import Unifier
from hetskel.layouts import convert, get_layout

BUILTIN = ("ntu25", "coco17", "coco20", "unified30", "kinect20_msr", "kinect20_utd", "openni15", "h36m17")
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


# ============================================================================ NTU .skeleton round trip
# One number spelling per draw: the reader has a vectorised fast path for plain decimals and a
# per-token float() path for everything else; both must return exactly float(text).
SPELLINGS = {
    "fixed6": lambda v: f"{v:.6f}",
    "repr": repr,
    "g": lambda v: f"{v:g}",
    "exp": lambda v: f"{v:.5E}",
}


def _text(v: float, spell: str) -> str:
    return SPELLINGS[spell](float(v))


@st.composite
def ntu_sequences(draw):
    """A random file: per frame, a subset of a pool of body IDs (0..3 bodies, at least one overall)."""
    T = draw(st.integers(1, 6))
    pool = draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=4, unique=True))
    frames = [draw(st.lists(st.sampled_from(pool), max_size=min(3, len(pool)), unique=True)) for _ in range(T)]
    if not any(frames):
        frames[draw(st.integers(0, T - 1))] = [pool[0]]
    return {"frames": frames, "seed": draw(st.integers(0, 2**32 - 1)), "spell": draw(st.sampled_from(sorted(SPELLINGS))),
            "eol": draw(st.sampled_from(["\r\n", "\n"]))}


def write_ntu(path, frames, seed, spell, eol):
    """Write ``frames`` (list of body-ID lists) in the NTU format; return the values as they were
    written (parsed back with float(), i.e. at the written precision), keyed by (frame, body ID)."""
    rng = np.random.default_rng(seed)
    lines, written = [str(len(frames))], {}
    for t, ids in enumerate(frames):
        lines.append(str(len(ids)))
        for bid in ids:
            info = [int(rng.integers(0, 16)), int(rng.integers(0, 2)), int(rng.integers(0, 3)),
                    int(rng.integers(0, 2)), int(rng.integers(0, 3)), int(rng.integers(0, 2)),
                    float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), int(rng.integers(0, 3))]
            info_txt = [str(v) if isinstance(v, int) else _text(v, spell) for v in info]
            lines += [" ".join([str(bid), *info_txt]), "25"]
            joints = np.concatenate([
                rng.uniform(-3, 5, (25, 3)),                     # x y z camera metres
                rng.uniform(0, 512, (25, 2)),                    # depth pixels
                rng.uniform(-200, 2200, (25, 2)),                # colour pixels (off-image happens)
                rng.uniform(-1, 1, (25, 4)),                     # quaternion w x y z
            ], axis=1)
            state = rng.integers(0, 3, 25)
            rows = [[_text(v, spell) for v in row] + [str(int(s))] for row, s in zip(joints, state)]
            lines += [" ".join(r) for r in rows]
            written[(t, bid)] = (np.array([[float(v) for v in r] for r in rows]),
                                 np.array([float(v) for v in info_txt]))
    path.write_bytes((eol.join(lines) + eol).encode())
    return written


@FAST
@given(seq=ntu_sequences())
def test_ntu_skeleton_write_read_round_trip(tmp_path_factory, seq):
    path = tmp_path_factory.mktemp("ntu") / "S001C002P003R001A004.skeleton"
    written = write_ntu(path, **seq)
    sk = read_skeleton(path)
    frames = seq["frames"]
    order = list(dict.fromkeys(b for ids in frames for b in ids))  # first-appearance order
    assert sk.name == "S001C002P003R001A004" and sk.num_frames == len(frames)
    assert sk.body_ids == order
    assert sk.bodies_per_frame.tolist() == [len(ids) for ids in frames]
    B, T = len(order), len(frames)
    assert sk.xyz.shape == (B, T, 25, 3) and sk.orientation.shape == (B, T, 25, 4)
    for b, bid in enumerate(order):
        for t in range(T):
            if (t, bid) not in written:
                assert not sk.present[b, t]
                assert not sk.xyz[b, t].any() and not sk.color_xy[b, t].any() and not sk.tracking[b, t].any()
                continue
            j, info = written[(t, bid)]
            assert sk.present[b, t]
            # exact: the reader must return float(text) for every value, whatever the spelling
            np.testing.assert_array_equal(sk.xyz[b, t], j[:, 0:3])
            np.testing.assert_array_equal(sk.depth_xy[b, t], j[:, 3:5])
            np.testing.assert_array_equal(sk.color_xy[b, t], j[:, 5:7])
            np.testing.assert_array_equal(sk.orientation[b, t], j[:, 7:11])
            np.testing.assert_array_equal(sk.tracking[b, t], j[:, 11].astype(np.int8))
            assert sk.body_info["clipped_edges"][b, t] == info[0]
            assert sk.body_info["hand_right_state"][b, t] == info[4]
            np.testing.assert_array_equal(sk.body_info["lean"][b, t], info[6:8])
            assert sk.body_info["tracking_state"][b, t] == info[8]


# ============================================================================ PKU-MMD II round trip
@FAST
@given(T=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), sep=st.sampled_from([" ", "\t", ",", ", "]),
       digits=st.integers(1, 8), two=st.booleans(), eol=st.sampled_from(["\n", "\r\n"]))
def test_pku_skeleton_write_read_round_trip(tmp_path_factory, T, seed, sep, digits, two, eol):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(T, 2, 25, 3))
    if not two:
        x[:, 1] = 0  # the official files write zeros for an absent second body
    texts = [[f"{v:.{digits}f}" for v in row] for row in x.reshape(T, 150)]
    path = tmp_path_factory.mktemp("pku") / "A01N01-L.txt"
    path.write_bytes((eol.join(sep.join(r) for r in texts) + eol).encode())
    got = read_pku_skeleton(path)
    want = np.array(texts, dtype=np.float64).reshape(T, 2, 25, 3).transpose(1, 0, 2, 3).astype(np.float32)
    assert got.shape == (2, T, 25, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@FAST
@given(data=st.data(), T=st.integers(1, 200))
def test_pku_labels_write_read_round_trip(tmp_path_factory, data, T):
    n = data.draw(st.integers(1, 6))
    acts = []
    for _ in range(n):
        s = data.draw(st.integers(0, T - 1))
        e = data.draw(st.integers(s, T - 1))
        acts.append((data.draw(st.integers(1, 51)), s, e, float(data.draw(st.sampled_from([1, 2])))))
    path = tmp_path_factory.mktemp("lab") / "A01N01-L.txt"
    path.write_text("".join(f"{a},{s},{e},{int(c)}\n" for a, s, e, c in acts))
    assert read_pku_labels(path, num_frames=T) == acts
    # an end one past the last frame (end-exclusive annotation) is clipped to the last frame
    path.write_text(f"{acts[0][0]},{acts[0][1]},{T},1\n")
    assert read_pku_labels(path, num_frames=T) == [(acts[0][0], acts[0][1], T - 1, 1.0)]


# ============================================================================ resize_time
@FAST
@given(data=st.data(), N=st.integers(1, 4), T=st.integers(1, 20), F=st.integers(1, 24),
       tail=st.sampled_from([0, 2, 3]).flatmap(lambda k: st.lists(st.integers(1, 3), min_size=k, max_size=k)), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_resize_time_per_sample_crops(data, N, T, F, tail, dtype):
    # (a 4-D input would be read as one unbatched (M, T, V, C) clip, so the tail has 0, 2 or 3 axes)
    starts = [data.draw(st.integers(0, T - 1)) for _ in range(N)]
    lengths = [data.draw(st.integers(1, T - s)) for s in starts]
    x = torch.randn(N, 2, T, *tail, generator=torch.Generator().manual_seed(N * 1000 + T * 10 + F), dtype=dtype)
    y = tr.resize_time(x, F, start=torch.tensor(starts), length=torch.tensor(lengths))
    assert y.shape == (N, 2, F, *tail) and y.dtype == dtype
    for n, (s, L) in enumerate(zip(starts, lengths)):
        crop = x[n, :, s:s + L]
        assert torch.equal(y[n, :, 0], crop[:, 0])                # first frame of the crop, exactly
        if F > 1:
            assert torch.equal(y[n, :, -1], crop[:, -1])          # last frame of the crop, exactly
        # linear interpolation never leaves the range of the two frames it mixes
        lo, hi = crop.min(1, keepdim=True).values, crop.max(1, keepdim=True).values
        eps = 1e-6 if dtype == torch.float32 else 1e-12
        assert bool((y[n] >= lo - eps).all()) and bool((y[n] <= hi + eps).all())
        if L == F:
            assert torch.equal(y[n], crop)                        # nothing to resample: identity


# ============================================================================ normalize_3d
NTU = get_layout("ntu25")
LS, RS = NTU.index("left_shoulder"), NTU.index("right_shoulder")
SB, SM = NTU.index("spine_base"), NTU.index("spine_mid")


def _random_rotation(q) -> torch.Tensor:
    """Proper rotation from a (non-zero) quaternion."""
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]], dtype=torch.float64)


@st.composite
def poses(draw):
    """A (1, 2, T, 25, 3) clip; person 0 appears at frame ``late`` and is present longest, so it is
    the main person and ``late`` the reference frame; person 1 is absent or present for a shorter time."""
    T = draw(st.integers(2, 8))
    late = draw(st.integers(0, T - 1))
    seed = draw(st.integers(0, 2**31 - 1))
    x = torch.randn(1, 2, T, 25, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[0, 0, :late] = 0
    p1 = draw(st.integers(0, T - late - 1))  # frames of person 1 (strictly fewer than person 0's T - late)
    x[0, 1, p1:] = 0
    return x, late


@FAST
@given(pose=poses(), q=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda v: sum(a * a for a in v) > 0.01),
       shift=st.lists(st.floats(-20, 20), min_size=3, max_size=3), variant=st.sampled_from(["pyskl", "umurl"]))
def test_normalize_3d_puts_reference_shoulders_on_plus_x(pose, q, shift, variant):
    x, t0 = pose
    R = _random_rotation(torch.tensor(q, dtype=torch.float64))
    present = (x != 0).any(-1, keepdim=True)
    moved = torch.where(present, x @ R.T + torch.tensor(shift, dtype=x.dtype), x)
    y = tr.normalize_3d(moved, "ntu25", align=True, variant=variant)
    sh = y[0, 0, t0, RS] - y[0, 0, t0, LS]
    assert sh[0] > 0
    assert abs(float(sh[1])) <= 1e-9 * float(sh.norm()) + 1e-12 and abs(float(sh[2])) <= 1e-9 * float(sh.norm()) + 1e-12
    assert torch.allclose(y[0, 0, t0, SM], torch.zeros(3, dtype=y.dtype), atol=1e-12)  # centred on spine_mid
    assert torch.equal((y != 0).flatten(3).any(-1), (x != 0).flatten(3).any(-1))     # absent stays absent


@FAST
@given(pose=poses(), q=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda v: sum(a * a for a in v) > 0.01),
       shift=st.lists(st.floats(-20, 20), min_size=3, max_size=3), variant=st.sampled_from(["pyskl", "umurl"]),
       scale=st.sampled_from([None, "torso"]))
def test_normalize_3d_frame_alignment_is_rigid_motion_invariant(pose, q, shift, variant, scale):
    x, _ = pose
    R = _random_rotation(torch.tensor(q, dtype=torch.float64))
    present = (x != 0).any(-1, keepdim=True)
    moved = torch.where(present, x @ R.T + torch.tensor(shift, dtype=x.dtype), x)
    a = tr.normalize_3d(x, "ntu25", align="frame", variant=variant, scale=scale)
    b = tr.normalize_3d(moved, "ntu25", align="frame", variant=variant, scale=scale)
    torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-8)


# ============================================================================ Unifier / convert
layout_sets = st.lists(st.sampled_from(BUILTIN), min_size=1, max_size=4, unique=True)


@FAST
@given(sources=layout_sets, mode=st.sampled_from(["prompt", "anchored", "zero"]), C=st.sampled_from([2, 3]),
       seed=st.integers(0, 2**31 - 1), drop=st.floats(0, 0.5))
def test_unifier_then_deunify_returns_the_input_exactly(sources, mode, C, seed, drop):
    uni = Unifier(sources, mode=mode)
    g = torch.Generator().manual_seed(seed)
    for s in sources:
        V = get_layout(s).num_joints
        x = torch.randn(2, 2, 3, V, C, generator=g)
        x = x * (torch.rand(2, 2, 3, V, 1, generator=g) >= drop)  # absent joints, persons, frames
        x[1, 1] = 0
        u, real = uni(x, s)
        assert u.shape == (2, 2, 3, uni.layout.num_joints, 3) and int(real.sum()) == V
        back = uni.deunify(u, s)
        assert torch.equal(back[..., :C], x)                 # every real joint, bit for bit
        assert not back[..., C:].any()                       # a 2D source's added depth is zero
        assert not u[1, 1].any()                             # an absent person gets no prompt


@FAST
@given(src=st.sampled_from(BUILTIN), dst=st.sampled_from(BUILTIN), derive=st.booleans(),
       seed=st.integers(0, 2**31 - 1), fill=st.sampled_from([0.0, -1.0]))
def test_convert_there_and_back_keeps_shared_joints(src, dst, derive, seed, fill):
    s, d = get_layout(src), get_layout(dst)
    x = torch.randn(2, 3, s.num_joints, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y, real = convert(x, src, dst, derive=derive, fill=fill)
    assert y.shape == (2, 3, d.num_joints, 3) and real.shape == (d.num_joints,)
    for k, j in enumerate(d.joints):
        if s.has(j):
            assert real[k] and torch.equal(y[..., k, :], x[..., s.index(j), :])
        elif not real[k]:
            assert (y[..., k, :] == fill).all()              # a joint dst cannot get is the fill value
    back, real_back = convert(y, dst, src, derive=False)
    for k, j in enumerate(s.joints):
        if d.has(j):
            assert real_back[k] and torch.equal(back[..., k, :], x[..., k, :])
    yn, _ = convert(x.numpy(), src, dst, derive=derive, fill=fill)  # numpy and torch agree
    np.testing.assert_array_equal(yn, y.numpy())


@pytest.mark.parametrize("src", BUILTIN)
def test_convert_to_itself_is_identity(src):
    x = np.random.default_rng(0).normal(size=(3, get_layout(src).num_joints, 2))
    y, real = convert(x, src, src)
    assert real.all()
    np.testing.assert_array_equal(y, x)
