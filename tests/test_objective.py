import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hetskel.data.errors import DataError
from hetskel.model.augment import AugmentConfig, bone, motion
from hetskel.model.encoder import UnifiedEncoder, get_preset
from hetskel.model.objective import ClassicModalities, Pretrainer

V = 6


def tiny(**kw):
    base = dict(d_model=32, ff_dim=48, num_frames=12, proj_dims=(40, 40, 24))
    base.update(kw)
    return get_preset("small", **base)


class FakeProcessor(nn.Module):
    """Stands in for HeteroProcessor: {"ntu25": 3D, "coco17": 2D} -> J, C, S (V joints) + L_rec."""

    def __init__(self):
        super().__init__()
        self.lift = nn.Linear(2, 3)
        self.prompt = nn.Parameter(torch.zeros(3))
        self.calls = []

    def forward(self, batch):
        j, c2 = batch["ntu25"], batch["coco17"]
        self.calls.append({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
        c = self.lift(c2)
        mods = {"J": j + self.prompt, "C": c, "S": torch.tanh(motion(j))}
        return mods, {"rec": F.mse_loss(c, j)}


def raw_batch(n=6, t=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    j = torch.randn(n, 2, t, V, 3, generator=g)
    c = j[..., :2] + 0.1 * torch.randn(n, 2, t, V, 2, generator=g)
    return {"ntu25": j, "coco17": c, "label": torch.arange(n)}


def make(modalities=("J", "C", "S"), **kw):
    torch.manual_seed(0)
    enc = UnifiedEncoder(tiny(), {"J": 3, "C": 3, "S": 3}, num_joints=V)
    return Pretrainer(enc, modalities=modalities, processor=FakeProcessor(), **kw)


def test_losses_and_gradients_reach_every_part():
    obj = make()
    out = obj(raw_batch())
    assert set(out) == {"loss", "intra", "inter", "vc", "rec"}
    assert out["loss"].requires_grad and not out["intra"].requires_grad
    expect = 5.0 * (out["intra"] + out["inter"]) + out["vc"] + out["rec"]
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    out["loss"].backward()
    enc = obj.encoder
    for k in ("J", "C", "S"):
        for part in (enc.embed[k].temporal, enc.embed[k].spatial):
            assert part[0].weight.grad.abs().sum() > 0 and part[-1].weight.grad.abs().sum() > 0
        for lin in (m for m in enc.projectors[k] if isinstance(m, nn.Linear)):
            assert lin.weight.grad.abs().sum() > 0
    for p in (enc.fuse_t.weight, enc.fuse_s.weight, obj.processor.lift.weight, obj.processor.prompt):
        assert p.grad is not None and p.grad.abs().sum() > 0
    # K+1 = 4 views, each processed once with T = num_frames frames
    assert len(obj.processor.calls) == 4
    assert all(c["ntu25"].shape[2] == 12 for c in obj.processor.calls)


def test_single_modality():
    obj = make(modalities=("C",))
    out = obj(raw_batch())
    assert out["inter"].item() == 0.0 and out["intra"].item() > 0
    out["loss"].backward()
    enc = obj.encoder
    assert enc.embed["C"].temporal[0].weight.grad.abs().sum() > 0
    assert enc.projectors["C"][0].weight.grad.abs().sum() > 0
    assert enc.embed["J"].temporal[0].weight.grad is None and enc.projectors["S"][0].weight.grad is None
    assert obj.features(raw_batch()).shape == (6, 64)


def test_two_modalities_subset():
    obj = make(modalities=("J", "S"))
    out = obj(raw_batch())
    assert out["inter"].item() > 0
    out["loss"].backward()
    assert obj.encoder.embed["C"].temporal[0].weight.grad is None


def test_reproducible_from_seed_and_generator():
    a, b = make(seed=3), make(seed=3)
    batch = raw_batch()
    assert a(batch)["loss"].item() == pytest.approx(b(batch)["loss"].item(), rel=1e-6)
    c = make(seed=4)
    assert c(batch)["loss"].item() != pytest.approx(a(batch)["loss"].item(), rel=1e-6)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert a(batch, generator=g1)["loss"].item() == pytest.approx(a(batch, generator=g2)["loss"].item(), rel=1e-6)


def test_sources_of_a_view_share_one_crop():
    obj = make(augment=AugmentConfig(min_crop_frames=None))   # 20-frame clips: crop them anyway
    batch = raw_batch()
    batch["coco17"] = batch["ntu25"][..., :2].clone()    # the 2D source is the 3D one's projection
    obj(batch)
    for call in obj.processor.calls:
        assert torch.equal(call["coco17"], call["ntu25"][..., :2])
        assert torch.equal(call["label"], batch["label"])
    # independent views differ
    assert not torch.equal(obj.processor.calls[0]["ntu25"], obj.processor.calls[1]["ntu25"])


def test_features_are_deterministic_eval_features():
    obj = make()
    batch = raw_batch()
    obj.train()
    f1, f2 = obj.features(batch), obj.features(batch)
    assert f1.shape == (6, 64) and not f1.requires_grad
    torch.testing.assert_close(f1, f2)
    assert obj.training and obj.encoder.training            # mode restored
    # equal to the encoder's fused representation of the whole clip resized to T (no augmentation)
    obj.eval()
    from hetskel.model.augment import crop_batch
    mods, _ = obj.processor(crop_batch(batch, 12, AugmentConfig(), None))
    with torch.no_grad():
        torch.testing.assert_close(f1, obj.encoder.represent(mods))
        torch.testing.assert_close(f1, obj.represent(batch))


def test_without_processor_the_batch_holds_modalities():
    torch.manual_seed(0)
    enc = UnifiedEncoder(tiny(), {"J": 3, "C": 2}, num_joints=V)
    obj = Pretrainer(enc, modalities=("J", "C"))
    g = torch.Generator().manual_seed(0)
    batch = {"J": torch.randn(5, 2, 16, V, 3, generator=g), "C": torch.randn(5, 2, 16, V, 2, generator=g)}
    out = obj(batch)
    assert set(out) == {"loss", "intra", "inter", "vc"}
    out["loss"].backward()
    assert obj.features({"J": batch["J"], "C": batch["C"]}).shape == (5, 64)


def test_classic_modalities_for_umurl_parity():
    x = torch.randn(4, 2, 16, 25, 3)
    mods, aux = ClassicModalities("ntu25")({"ntu25": x})
    assert aux == {} and set(mods) == {"J", "M", "B"}
    torch.testing.assert_close(mods["M"], motion(x))
    torch.testing.assert_close(mods["B"], bone(x, "ntu25"))
    torch.manual_seed(0)
    enc = UnifiedEncoder(tiny(), {"J": 3, "M": 3, "B": 3}, num_joints=25)
    obj = Pretrainer(enc, modalities=("J", "M", "B"), processor=ClassicModalities("ntu25"), spatial_stage="raw")
    out = obj({"ntu25": x})
    out["loss"].backward()
    assert enc.embed["B"].spatial[0].weight.grad.abs().sum() > 0
    with pytest.raises(DataError, match="ntu25"):
        ClassicModalities("ntu25")({"coco17": x})


def test_errors():
    with pytest.raises(ValueError, match="not in the encoder"):
        make(modalities=("J", "X"))
    with pytest.raises(ValueError, match="distinct"):
        make(modalities=("J", "J"))
    with pytest.raises(ValueError, match="spatial_stage"):
        make(spatial_stage="both")
    enc = UnifiedEncoder(tiny(), {"J": 3, "X": 3}, num_joints=V)
    obj = Pretrainer(enc, modalities=("J", "X"), processor=FakeProcessor())
    with pytest.raises(DataError, match=r"\['X'\] are missing from the processor's output"):
        obj(raw_batch())
    with pytest.raises(DataError, match="at least 2 samples"):
        make()(raw_batch(n=1))
    with pytest.raises(DataError, match="no skeleton tensors"):
        make()({"label": torch.arange(3)})


def test_a_few_steps_reduce_the_loss():
    obj = make(augment=AugmentConfig(spatial=False))
    opt = torch.optim.Adam(obj.parameters(), 3e-3)
    batch = raw_batch(n=16, seed=1)
    losses = []
    for _ in range(15):
        out = obj(batch, generator=torch.Generator().manual_seed(0))   # the same views every step
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.7 * losses[0]


def test_state_dict_carries_the_augmentation_stream(tmp_path):
    a = make(seed=5)
    batch = raw_batch()
    a(batch)                                   # advance the generator
    path = tmp_path / "ckpt.pt"
    torch.save(a.state_dict(), path)
    expect = a(batch)["loss"].item()
    b = make(seed=0)
    b.load_state_dict(torch.load(path, weights_only=True))
    assert b.seed == 5
    assert b(batch)["loss"].item() == pytest.approx(expect, rel=1e-6)


def test_reconstruction_term_decodes_each_modality_and_only_when_asked():
    assert not hasattr(make(), "decoders")                        # off: the modules are UmURL's exactly
    obj = make(reconstruction_weight=2.0)
    out = obj(raw_batch())
    assert set(out) == {"loss", "intra", "inter", "vc", "rec", "rec_traj"}
    expect = 5.0 * (out["intra"] + out["inter"]) + out["vc"] + out["rec"] + 2.0 * out["rec_traj"]
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    out["loss"].backward()
    for k in ("J", "C", "S"):
        assert obj.decoders[k][-1].weight.grad.abs().sum() > 0
        assert obj.decoders[k][-1].out_features == 2 * 12 * V * 3   # M * T * V * C_k
    assert obj.encoder.embed["C"].spatial[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="reconstruction_weight"):
        make(reconstruction_weight=-1.0)


def test_reconstruction_loss_is_zero_for_the_standardised_target_and_scale_free():
    from hetskel.model.losses import reconstruction_loss, standardized_trajectories

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 10, V, 3, generator=g)
    x[0, :, :, 2] *= 0.3                         # a joint moving 3x less counts nearly as much as the others
    x[1, 1] = 0                                  # an absent person
    x[2, :, 7:] = 0                              # trailing padding
    target, frames = standardized_trajectories(x)
    assert frames.shape == (3, 2, 10) and not frames[1, 1].any() and not frames[2, :, 7:].any()
    assert torch.equal(target[2, :, 7:], torch.zeros_like(target[2, :, 7:]))
    present = target[0, 0]                                           # (T, V, C), all frames present
    assert torch.allclose(present.mean(0), torch.zeros(V, 3), atol=1e-5)
    rms = present.square().mean((0, 2)).sqrt()                       # per joint, about 1 each
    assert ((rms > 0.8) & (rms < 1.0)).all(), rms                  # raw: joint 2 has 0.3x the others' RMS
    torch.testing.assert_close(standardized_trajectories(x * 7.0)[0], target, rtol=1e-4, atol=1e-5)
    assert reconstruction_loss(target, x).item() == pytest.approx(0.0, abs=1e-10)
    assert reconstruction_loss(torch.zeros_like(x), x).item() > 0.5
    # the target is data: no gradient flows into x (the lifter and prompts produce it in pretraining)
    xg = x.clone().requires_grad_(True)
    pred = torch.zeros_like(x, requires_grad=True)
    reconstruction_loss(pred, xg).backward()
    assert xg.grad is None and torch.isfinite(pred.grad).all()


def test_bone_scale_needs_a_processor_that_names_its_positions():
    with pytest.raises(ValueError, match="bone_scale"):
        make(augment=AugmentConfig(bone_scale=0.2))          # FakeProcessor names no positional modalities
    enc = UnifiedEncoder(tiny(), {"J": 3, "M": 3, "B": 3}, num_joints=25)
    for off in ({"augment": AugmentConfig(bone_scale=0.2, spatial=False)},    # it would silently do nothing
                {"augment": AugmentConfig(bone_scale=0.2), "spatial_stage": "raw"}):
        with pytest.raises(ValueError, match="bone_scale"):
            Pretrainer(enc, ("J", "M", "B"), ClassicModalities("ntu25"), **off)
    enc = UnifiedEncoder(tiny(), {"J": 3, "M": 3, "B": 3}, num_joints=25)
    p = Pretrainer(enc, ("J", "M", "B"), ClassicModalities("ntu25"), augment=AugmentConfig(bone_scale=0.2))
    g = torch.Generator().manual_seed(0)
    out = p({"ntu25": torch.randn(4, 2, 20, 25, 3, generator=g)})
    assert torch.isfinite(out["loss"])


def test_part_view_masks_the_positional_modalities_only():
    with pytest.raises(ValueError, match="part_view"):
        make(augment=AugmentConfig(part_view=0.5))           # FakeProcessor names no positional modalities
    enc = UnifiedEncoder(tiny(), {"J": 3, "M": 3, "B": 3}, num_joints=25)
    p = Pretrainer(enc, ("J", "M", "B"), ClassicModalities("ntu25"),
                   augment=AugmentConfig(part_view=1.0, p_corrupt=0.0, shear_range=0.0))
    g = torch.Generator().manual_seed(0)
    mods = {k: torch.randn(6, 2, 20, 25, 3, generator=g) for k in ("J", "M", "B")}
    out = p._spatial(mods, g, ("J", "M", "B"))
    present = (out["J"] != 0).any(-1).any(1).any(1)                   # (N, V): joints left in each view
    parts = {tuple(row.tolist()) for row in p.part_masks}
    for row in present:
        assert tuple(row.tolist()) in parts                                   # one part of J kept
    assert torch.equal(out["M"], mods["M"]) and torch.equal(out["B"], mods["B"])  # M, B are not positions
    assert torch.isfinite(p({"ntu25": torch.randn(4, 2, 20, 25, 3, generator=g)})["loss"])
