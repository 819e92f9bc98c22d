"""Once-per-clip processing (``HeteroProcessor.process_clip`` + ``view``, ``Pretrainer(process="clip")``)
against processing every augmented view (``process="view"``): same losses where the crop is the
identity, the same J and C for a rigid clip under random crops, and one lifter / word pass per step."""
import copy

import pytest
import torch

from hetskel.hetero import pipeline
from hetskel.hetero.pipeline import HeteroProcessor
from hetskel.model.augment import AugmentConfig, crop_batch, sample_crop, valid_lengths
from hetskel.model.encoder import EncoderConfig, UnifiedEncoder
from hetskel.model.objective import Pretrainer

T = 12


def _batch(n=6, seed=0, rigid=False, pad=True):
    g = torch.Generator().manual_seed(seed)
    if rigid:  # a fixed pose translated along a random walk: crop-resize commutes with the pose frame
        x3 = (torch.randn(n, 2, 1, 25, 3, generator=g) + torch.randn(n, 2, T, 1, 3, generator=g).cumsum(2) * 0.1)
        x2 = (torch.randn(n, 2, 1, 17, 2, generator=g) + torch.randn(n, 2, T, 1, 2, generator=g).cumsum(2) * 0.1)
    else:
        x3, x2 = torch.randn(n, 2, T, 25, 3, generator=g), torch.randn(n, 2, T, 17, 2, generator=g)
    x3, x2 = x3.expand(n, 2, T, 25, 3).clone(), x2.expand(n, 2, T, 17, 2).clone()
    x3[0, 1], x2[0, 1] = 0, 0            # a one-person clip
    if pad:
        x3[1, :, 9:], x2[1, :, 9:] = 0, 0    # a padded clip (9 valid frames: never an identity crop)
    return {"ntu25": x3, "coco17": x2, "length": torch.full((n,), 40)}


def _proc(**kw):
    torch.manual_seed(0)
    table = torch.randn(7, 16, generator=torch.Generator().manual_seed(1))
    return HeteroProcessor({"J": "ntu25", "C": "coco17"}, text_table=table, lifter_width=32, lifter_dropout=0.0,
                           **kw)


def _pretrainer(process, augment=None, **kw):
    proc = _proc(**kw)
    cfg = EncoderConfig(d_model=16, num_frames=T, max_persons=2, num_heads=2, ff_dim=32, proj_dims=(32, 32))
    torch.manual_seed(1)
    enc = UnifiedEncoder(cfg, proc.modality_channels(), proc.layout.num_joints)
    return Pretrainer(enc, ("J", "C", "S"), processor=proc, augment=augment, seed=3, gather=False, process=process)


def test_auto_processes_once_per_clip_and_falls_back_per_view():
    assert _pretrainer("auto").per_clip
    assert not _pretrainer("view").per_clip
    assert not _pretrainer("auto", AugmentConfig(shared_crop=False)).per_clip
    with pytest.raises(ValueError, match="per_clip"):
        Pretrainer(_pretrainer("view").encoder, ("J", "C", "S"), processor=_proc(), spatial_stage="raw", process="clip")


@pytest.mark.parametrize("spatial", [False, True])
def test_identity_crop_gives_the_same_losses_and_gradients(spatial):
    """Whole-clip crops of T frames are the identity: both paths are the same computation."""
    aug = AugmentConfig(crop_ratio=(1.0, 1.0), min_crop_frames=None, spatial=spatial)
    clip = _pretrainer("clip", aug)
    view = copy.deepcopy(clip)
    view.process_mode = "view"
    batch = _batch(pad=False)
    batch.pop("length")
    a, b = clip(batch), view(batch)
    for k in ("loss", "intra", "inter", "vc", "rec"):
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, a[k], b[k])
    a["loss"].backward()
    b["loss"].backward()
    for (name, p), q in zip(clip.named_parameters(), view.parameters()):
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


def test_random_crops_of_a_rigid_clip_give_the_same_J_and_C():
    """The crop is linear: J, C (trajectory re-referenced per view) commute with it exactly when
    the pose frame does not depend on the crop (rigid torso; no lifter, whose MLP does not commute)."""
    proc = _proc(use_lifter=False, semantic=None).train()
    batch = _batch(rigid=True)
    valid = valid_lengths(batch)
    state, _ = proc.process_clip(batch)
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        start, length = sample_crop(valid, AugmentConfig(min_crop_frames=None), g)
        per_clip = proc.view(state, start, length, T)
        g = torch.Generator().manual_seed(seed)
        per_view, _ = proc(crop_batch(batch, T, AugmentConfig(min_crop_frames=None), g, valid=valid))
        for k in ("J", "C"):
            assert torch.allclose(per_clip[k], per_view[k], atol=1e-4), (k, (per_clip[k] - per_view[k]).abs().max())


def test_documented_differences_are_bounded():
    """With the lifter and the words (not linear in the frames), random crops change the losses a
    little, not wholesale: same order of magnitude, same L_rec up to the crop's sampling of frames."""
    clip = _pretrainer("clip")
    view = copy.deepcopy(clip)
    view.process_mode = "view"
    a, b = clip(_batch()), view(_batch())
    for k in ("loss", "rec"):
        assert torch.isfinite(a[k]) and 0.5 < float(a[k] / b[k]) < 2.0, (k, a[k], b[k])


def test_lifter_and_words_run_once_per_clip_per_step(monkeypatch):
    calls = {"words": 0}
    real = pipeline.motion_words

    def counted(*a, **kw):
        calls["words"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(pipeline, "motion_words", counted)
    for process, expect in (("clip", 1), ("view", 4)):
        obj = _pretrainer(process)
        lifts = []
        obj.processor.lifters["C"].register_forward_hook(lambda *_: lifts.append(1))
        words = calls["words"]
        obj(_batch())
        assert len(lifts) == expect
        if process == "clip":
            assert calls["words"] - words == 1
