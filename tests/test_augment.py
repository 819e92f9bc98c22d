import pytest
import torch
import torch.nn.functional as F

from hetskel.layouts import get_layout
from hetskel.model.augment import (
    AugmentConfig,
    apply_spatial,
    augment,
    bone,
    crop_batch,
    crop_resize,
    equal_bones,
    motion,
    random_rotation,
    sample_crop,
    sample_spatial,
    valid_lengths,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed))


def umurl_crop(x_one, start, length, out):
    """UmURL's reference: crop one (M, T, V, C) clip and F.interpolate a (1, M*V*C, L, 1) grid."""
    m, _, v, c = x_one.shape
    crop = x_one[:, start:start + length].permute(0, 2, 3, 1).reshape(1, m * v * c, length, 1)
    y = F.interpolate(crop, size=(out, 1), mode="bilinear", align_corners=False)
    return y.reshape(m, v, c, out).permute(0, 3, 1, 2)


def test_crop_resize_matches_umurl_interpolation():
    x = rand(5, 2, 40, 4, 3)
    start = torch.tensor([0, 3, 10, 0, 39])
    length = torch.tensor([40, 7, 30, 1, 1])
    for out in (16, 64):
        y = crop_resize(x, start, length, out)
        assert y.shape == (5, 2, out, 4, 3)
        for i in range(5):
            torch.testing.assert_close(y[i], umurl_crop(x[i], int(start[i]), int(length[i]), out),
                                       atol=1e-5, rtol=1e-5)
    # the whole clip at its own length is the identity; integer tensors take the nearest frame
    torch.testing.assert_close(crop_resize(x, torch.zeros(5, dtype=torch.long), torch.full((5,), 40), 40), x)
    idx = torch.arange(40).view(1, 1, 40, 1).expand(2, 1, 40, 1)
    assert crop_resize(idx, torch.tensor([0, 5]), torch.tensor([40, 10]), 10).dtype == torch.int64
    with pytest.raises(ValueError, match="start"):
        crop_resize(x, start, torch.full((5,), 40), 16)


def test_sample_crop_bounds_and_umurl_minimum():
    L = torch.tensor([64, 100, 300, 5, 1] * 40)
    cfg = AugmentConfig(min_crop_frames=None)
    start, length = sample_crop(L, cfg, gen(1))
    assert bool((start >= 0).all() and (length >= 1).all() and (start + length <= L).all())
    assert bool((length >= (L * 0.1).floor().clamp_min(1)).all())
    assert length.float().div(L).min() < 0.3 and length.float().div(L).max() > 0.9   # 10-100%
    # UmURL's rule: never below 64 raw frames (80-frame clips keep >= 80% of their resampled frames)
    valid = torch.full((200,), 64)
    assert AugmentConfig().min_crop_frames == 64
    _, length = sample_crop(valid, AugmentConfig(), gen(2), original=torch.full((200,), 80))
    assert length.min() >= int(64 * 64 / 80) and length.max() >= 62   # floor(80 U) <= 79 raw frames
    _, length = sample_crop(valid, AugmentConfig(), gen(2))   # not resampled, 64 frames: never cropped
    assert bool((length == 64).all())
    start, length = sample_crop(torch.full((200,), 300), AugmentConfig(), gen(2))
    assert length.min() == 64 and length.max() > 250 and bool((start + length <= 300).all())


def test_crop_batch_keeps_frames_and_shares_crops():
    x = rand(6, 2, 30, 5, 3)
    batch = {"ntu25": x, "copy": x.clone(), "label": torch.arange(6)}
    cfg = AugmentConfig(min_crop_frames=None)
    out = crop_batch(batch, 16, cfg, gen(3))
    assert out["ntu25"].shape == (6, 2, 16, 5, 3)
    assert torch.equal(out["ntu25"], out["copy"])                 # one crop for both sources
    assert torch.equal(out["label"], batch["label"])
    indep = crop_batch(batch, 16, AugmentConfig(min_crop_frames=None, shared_crop=False), gen(3))
    assert not torch.equal(indep["ntu25"], indep["copy"])
    # the original lengths in batch["length"] drive UmURL's 64-frame minimum
    long = crop_batch({**batch, "length": torch.full((6,), 300)}, 16, AugmentConfig(), gen(3))
    short = crop_batch({**batch, "length": torch.full((6,), 40)}, 16, AugmentConfig(), gen(3))
    assert not torch.equal(long["ntu25"], short["ntu25"])
    torch.testing.assert_close(short["ntu25"], crop_resize(x, torch.zeros(6, dtype=torch.long), torch.full((6,), 30), 16))
    # evaluation crop: the whole valid clip, here the identity
    assert torch.equal(crop_batch({"x": x}, 30, AugmentConfig(), None)["x"], x)
    with pytest.raises(ValueError, match="time-aligned"):
        crop_batch({"a": x, "b": rand(6, 2, 31, 5, 3)}, 16, AugmentConfig(), gen(0))


def test_valid_lengths_ignore_trailing_padding():
    x = rand(3, 2, 20, 4, 3)
    x[0, :, 12:] = 0
    x[1, 1, 15:] = 0            # the other person still moves: not padding
    x[2] = 0
    assert valid_lengths({"a": x}).tolist() == [12, 20, 1]
    y = crop_batch({"a": x}, 8, AugmentConfig(), None)["a"]
    torch.testing.assert_close(y[0], crop_resize(x[:1], torch.tensor([0]), torch.tensor([12]), 8)[0])


def test_augment_is_reproducible_and_shaped():
    x = rand(8, 2, 50, 30, 3)
    cfg = AugmentConfig()
    a = augment(x, 32, cfg, gen(7))
    b = augment(x, 32, cfg, gen(7))
    c = augment(x, 32, cfg, gen(8))
    assert a.shape == (8, 2, 32, 30, 3)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_joint_corruption_zero_and_mix():
    x = rand(50, 2, 6, 25, 3) + 5.0        # no accidental zeros
    cfg = AugmentConfig(p_corrupt=1.0, p_zero=1.0)
    p = sample_spatial(50, 25, cfg, gen(0))
    y = apply_spatial(x, p)
    zero_joints = (y == 0).all(-1).all(2).all(1)                    # (N, V)
    assert bool((zero_joints.sum(1) == 15).all())                   # 60% of 25 joints, UmURL's 15
    assert torch.equal(zero_joints, p.joints)
    assert torch.equal(y[~zero_joints[:, None, None, :].expand(50, 2, 6, 25)],
                       x[~zero_joints[:, None, None, :].expand(50, 2, 6, 25)])
    mix = sample_spatial(50, 25, AugmentConfig(p_corrupt=1.0, p_zero=0.0), gen(1))
    y = apply_spatial(x, mix)
    n, j = 3, int(mix.joints[3].nonzero()[0])
    torch.testing.assert_close(y[n, :, :, j], x[n, :, :, j] @ mix.matrix[n])
    assert mix.matrix.abs().max() <= 1.0


def test_shear_applies_to_every_joint_and_keeps_absent_joints():
    x = rand(20, 2, 6, 10, 3)
    x[:, :, :, 4] = 0
    p = sample_spatial(20, 10, AugmentConfig(p_corrupt=0.0), gen(2))
    assert bool(p.joints.all())
    assert torch.allclose(torch.diagonal(p.matrix, dim1=1, dim2=2), torch.ones(20, 3))
    y = apply_spatial(x, p)
    torch.testing.assert_close(y[5], x[5] @ p.matrix[5])
    assert bool((y[:, :, :, 4] == 0).all())
    # 2D data uses the top-left 2x2 block of the same draw
    y2 = apply_spatial(x[..., :2], p)
    torch.testing.assert_close(y2[5], x[5, ..., :2] @ p.matrix[5, :2, :2])
    with pytest.raises(ValueError, match="do not fit"):
        apply_spatial(x[:, :, :, :9], p)


def test_rotation_replaces_the_shear_and_keeps_angles():
    cfg = AugmentConfig(p_corrupt=0.5, rotation_range=0.5)
    p = sample_spatial(40, 10, cfg, gen(3))
    shear = sample_spatial(40, 10, AugmentConfig(p_corrupt=0.5), gen(3))
    # the corruption rows are the default's own draws; the others are rotations, not shears
    whole = p.joints.all(1)
    assert torch.equal(p.joints, shear.joints) and 0 < int(whole.sum()) < 40
    torch.testing.assert_close(p.matrix[~whole], shear.matrix[~whole])
    r = p.matrix[whole]
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand_as(r), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(len(r)))
    # angles within range: Rx(a) Ry(b) Rz(c) has R[0, 2] = sin(b) up to sign
    assert float(r[:, 0, 2].abs().max()) <= torch.sin(torch.tensor(0.5)) + 1e-6
    # a left-right displacement and an up-down one stay perpendicular (a shear need not keep them so)
    u, v = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    assert float(((u @ r) * (v @ r)).sum(-1).abs().max()) < 1e-5
    sheared = shear.matrix[whole]
    assert float(((u @ sheared) * (v @ sheared)).sum(-1).abs().max()) > 0.1
    # further channels are left alone
    r4 = random_rotation(6, 1.0, gen(4), channels=4)
    torch.testing.assert_close(r4[:, 3], torch.tensor([0, 0, 0, 1.0]).expand(6, 4))
    with pytest.raises(ValueError, match="rotation_range"):
        AugmentConfig(rotation_range=float("nan"))


def test_equal_bones_keeps_directions_and_absent_joints():
    lay = get_layout("unified30")
    has_parent = torch.tensor(lay.parents) >= 0
    x = rand(3, 2, 5, 30, 3) + 0.1
    x[2, 1] = 0                     # an absent person
    x[0, 0, :, 3] = 0               # an absent joint (left_ear): it stays zero
    x[1, 0, 2, 7] = 0               # a joint at the origin in one frame (a centring joint) is present
    y = equal_bones(x, lay)
    assert bool((y[2, 1] == 0).all()) and bool((y[0, 0, :, 3] == 0).all())
    bone_x, bone_y = bone(x, lay), bone(y, lay)
    length = bone_y.norm(dim=-1)                                         # (N, M, T, V)
    # sample 1: every joint observed -> every bone the person's mean length in that frame, same direction
    mean = (bone_x.norm(dim=-1)[1][..., has_parent]).mean(-1, keepdim=True)
    torch.testing.assert_close(length[1][..., has_parent], mean.expand(2, 5, int(has_parent.sum())))
    cos = torch.nn.functional.cosine_similarity(bone_x[1][..., has_parent, :], bone_y[1][..., has_parent, :], dim=-1)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    # roots keep their position: the body's path through space stays
    roots = ~has_parent
    torch.testing.assert_close(y[..., roots, :], x[..., roots, :])
    with pytest.raises(ValueError, match="does not fit"):
        equal_bones(x[..., :29, :], lay)


def test_generator_on_data_device_drives_everything():
    cfg = AugmentConfig(p_corrupt=0.5)
    p1, p2 = sample_spatial(30, 10, cfg, gen(5)), sample_spatial(30, 10, cfg, gen(5))
    assert torch.equal(p1.matrix, p2.matrix) and torch.equal(p1.joints, p2.joints)
    kinds = p1.joints.all(1)          # shear rows use every joint, corruption rows 6 of 10
    assert 0 < int(kinds.sum()) < 30 and bool((p1.joints[~kinds].sum(1) == 6).all())


def test_motion_and_bone():
    x = rand(2, 2, 5, 25, 3)
    m = motion(x)
    torch.testing.assert_close(m[:, :, :-1], x[:, :, 1:] - x[:, :, :-1])
    assert bool((m[:, :, -1] == 0).all())
    assert motion(x[0]).shape == x[0].shape
    lay = get_layout("ntu25")
    b = bone(x, "ntu25")
    e, s = lay.index("left_elbow"), lay.index("left_shoulder")
    torch.testing.assert_close(b[..., e, :], x[..., e, :] - x[..., s, :])
    root = lay.index("spine_base")
    assert bool((b[..., root, :] == 0).all())
    with pytest.raises(ValueError, match="joints"):
        bone(x[..., :20, :], "ntu25")


def test_scale_bones_keeps_the_motion_and_changes_only_bone_lengths():
    from hetskel.hetero.pipeline import HeteroProcessor
    from hetskel.model.augment import AugmentConfig, sample_bone_factors, scale_bones

    lay = HeteroProcessor(semantic=None, lifter_width=8).layout          # the unified skeleton (30 joints)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 5, lay.num_joints, 3, generator=g)
    x[1, 1] = 0                                                          # an absent person stays absent
    ones = torch.ones(3, lay.num_joints)
    torch.testing.assert_close(scale_bones(x, lay, ones), x)            # factor 1: the same skeleton
    f = sample_bone_factors(3, lay.num_joints, AugmentConfig(bone_scale=0.2), g)
    assert ((f >= 0.8) & (f <= 1.2)).all() and f.std() > 0.05
    y = scale_bones(x, lay, f)
    assert torch.equal(y[1, 1], torch.zeros_like(y[1, 1]))
    for j, p in enumerate(lay.parents):
        if p < 0:
            torch.testing.assert_close(y[..., j, :], x[..., j, :])      # roots stay (trajectories too)
        else:                                                            # each bone scaled, direction kept
            torch.testing.assert_close(y[0, :, :, j] - y[0, :, :, p], (x[0, :, :, j] - x[0, :, :, p]) * f[0, j])
    with pytest.raises(ValueError, match="bone_scale"):
        AugmentConfig(bone_scale=1.0)


def test_layout_parts_are_the_largest_small_subtrees():
    from hetskel.layouts import get_layout
    from hetskel.model.augment import layout_parts

    def names(layout):
        lay = get_layout(layout)
        return [{lay.joints[j] for j in row.nonzero().flatten().tolist()} for row in layout_parts(layout)]

    uni = names("unified30")
    assert {"nose", "left_eye", "right_eye", "left_ear", "right_ear"} in uni       # the face, whole
    assert {"left_shoulder", "left_elbow", "left_wrist", "left_hand", "left_hand_tip", "left_thumb"} in uni
    assert {"right_hip", "right_knee", "right_ankle", "right_foot"} in uni and {"neck", "head"} in uni
    assert len(uni) == 6                                                            # no part inside another
    assert not any(a < b for a in uni for b in uni)
    assert all(len(p) >= 2 for p in names("openni15"))


def test_part_keep_keeps_one_whole_part_or_everything():
    from hetskel.model.augment import AugmentConfig, layout_parts, sample_part_keep

    parts = layout_parts("unified30")
    g = torch.Generator().manual_seed(0)
    assert sample_part_keep(16, parts, AugmentConfig(part_view=0.0), g).all()
    keep = sample_part_keep(64, parts, AugmentConfig(part_view=1.0), g)
    as_rows = {tuple(row.tolist()) for row in keep}
    assert as_rows <= {tuple(row.tolist()) for row in parts} and len(as_rows) == len(parts)  # every part drawn
    half = sample_part_keep(400, parts, AugmentConfig(part_view=0.5), g)
    whole = half.all(1).float().mean().item()
    assert 0.4 < whole < 0.6
    with pytest.raises(ValueError, match="part_view"):
        AugmentConfig(part_view=1.5)
    with pytest.raises(ValueError, match="no parts"):
        sample_part_keep(4, parts[:0], AugmentConfig(part_view=0.5), g)
