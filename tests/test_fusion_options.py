"""Issue 12's options: fusion forms, concatenated evaluation features, modality dropout, the
within-modality objective, the 3D centring choice, per-group accuracy, the supervised ceiling and
the diagnosis table. Defaults must stay the paper's (same modules, same numbers)."""
import math

import numpy as np
import pytest
import torch

from hetskel.eval.pretrained import Features, group_top1, knn_confusion
from hetskel.experiment.pretrain import build_pretrainer, load_data
from hetskel.experiment.spec import RECIPES, PretrainSpec
from hetskel.model.augment import AugmentConfig, bone
from hetskel.model.encoder import FUSIONS, UnifiedEncoder, get_preset
from hetskel.model.losses import intra_view_loss, vc_reg
from hetskel.model.objective import OBJECTIVES, Pretrainer

V = 6
TINY = dict(num_samples=48, preset="tiny", num_frames=8, lifter_width=16, epochs=1, batch_size=8, device="cpu",
            encoder={"d_model": 16, "ff_dim": 16, "proj_dims": [16, 16]})


def cfg(**kw):
    return get_preset("small", **{"d_model": 32, "ff_dim": 48, "num_frames": 12, "proj_dims": (40, 24), **kw})


def encoder(fusion="paper", seed=0):
    torch.manual_seed(seed)
    return UnifiedEncoder(cfg(fusion=fusion), {"J": 3, "C": 3, "S": 3}, num_joints=V)


def mods(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(n, 2, 12, V, 3, generator=g) for k in ("J", "C", "S")}


@pytest.fixture(scope="module", autouse=True)
def _threads(user_word_table):
    TINY["text_table"] = str(user_word_table)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- fusion ----------------------------------------------------------------------------------------
def test_paper_fusion_is_the_default_and_adds_nothing():
    assert get_preset("small").fusion == "paper" and FUSIONS[0] == "paper"
    paper = encoder()
    assert not any("fusion" in k for k in paper.state_dict())
    weighted = encoder("weighted")
    shared = {k: v for k, v in weighted.state_dict().items() if k in paper.state_dict()}
    assert set(shared) == set(paper.state_dict())  # same modules, created in the same order first
    assert all(torch.equal(v, paper.state_dict()[k]) for k, v in shared.items())
    with pytest.raises(ValueError, match="fusion"):
        cfg(fusion="mean")


@pytest.mark.parametrize("fusion", ["weighted", "gated"])
def test_learned_fusion_starts_as_the_mean_and_learns(fusion):
    x = mods()
    paper, other = encoder(), encoder(fusion)
    paper.eval(), other.eval()
    y0 = paper.encode_fused(x)
    assert torch.allclose(other.encode_fused(x), y0, atol=1e-5)  # equal weights at init: the paper's mean
    out = other(x)
    assert set(out) == {"fused", "single/J", "single/C", "single/S"} and out["fused"].shape == (5, 64)
    assert other.encode_fused({"J": x["J"], "S": x["S"]}).shape == (5, 64)  # a subset fuses by name
    with torch.no_grad():
        if fusion == "weighted":
            other.fusion_t.logits["J"].fill_(3.0)
        else:
            other.fusion_t.gates["J"].bias.fill_(3.0)
    assert not torch.allclose(other.encode_fused(x), y0, atol=1e-3)
    other.encode_fused(x).sum().backward()
    part = other.fusion_s.logits["C"] if fusion == "weighted" else other.fusion_s.gates["C"].weight
    assert part.grad is not None and part.grad.abs().sum() > 0


def test_concat_features_are_fused_then_every_single_stream():
    enc = encoder().eval()
    x = mods()
    y = enc.represent(x, stream="concat")
    assert y.shape == (5, 4 * 64) == (5, enc.feature_dim("concat"))
    assert torch.allclose(y[:, :64], enc.represent(x), atol=1e-5)
    assert torch.allclose(y[:, 64:128], enc.represent({"J": x["J"]}, stream="single"), atol=1e-5)
    assert enc.represent({"J": x["J"], "C": x["C"]}, stream="concat").shape == (5, 3 * 64)
    with pytest.raises(ValueError, match="stream"):
        enc.represent(x, stream="sum")


# -- objective options --------------------------------------------------------------------------------
def pretrainer(**kw):
    enc = encoder()
    torch.manual_seed(1)
    return Pretrainer(enc, ("J", "C", "S"), processor=None, **kw)


def test_modality_dropout_is_off_by_default_and_drops_subsets():
    batch = mods(6)
    base = pretrainer()
    assert base.modality_dropout == 0 and base.objective == "umurl" == OBJECTIVES[0]
    a = base(batch, generator=torch.Generator().manual_seed(0))["loss"].item()
    b = pretrainer(modality_dropout=0.0)(batch, generator=torch.Generator().manual_seed(0))["loss"].item()
    assert a == b
    p = pretrainer(modality_dropout=0.5)
    g = torch.Generator().manual_seed(0)
    subsets = {p._fused_modalities(g) for _ in range(200)}
    assert () not in subsets and len(subsets) == 7 and ("J", "C", "S") in subsets
    p.eval()
    assert p._fused_modalities(g) == ("J", "C", "S")  # evaluation never drops
    p.train()
    losses = {round(p(batch, generator=torch.Generator().manual_seed(s))["loss"].item(), 6) for s in range(4)}
    assert all(math.isfinite(v) for v in losses)
    with pytest.raises(ValueError, match="modality_dropout"):
        pretrainer(modality_dropout=1.0)


def test_intra_view_objective_adds_a_weighted_term_with_its_own_heads():
    batch = mods(6)
    base = pretrainer()
    assert not hasattr(base, "view_projectors")
    p = pretrainer(objective="umurl+intra_view", intra_view_weight=0.5)
    out = p(batch, generator=torch.Generator().manual_seed(0))
    assert {"loss", "intra", "inter", "vc", "intra_view"} <= set(out) and out["intra_view"] > 0
    expect = 5.0 * (out["intra"] + out["inter"]) + out["vc"] + 0.5 * out["intra_view"]
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    out["loss"].backward()
    assert all(h[0].weight.grad is not None for h in p.view_projectors.values())
    with pytest.raises(ValueError, match="objective"):
        pretrainer(objective="vicreg")


def test_intra_view_loss_rewards_agreement_and_spread():
    g = torch.Generator().manual_seed(0)
    a = {"J": torch.randn(32, 8, generator=g)}
    same = intra_view_loss(a, a, gather=False)
    assert same.item() == pytest.approx(2 * vc_reg(a["J"]).item(), rel=1e-6)
    other = intra_view_loss(a, {"J": torch.randn(32, 8, generator=g)}, gather=False)
    assert other > same


# -- spec --------------------------------------------------------------------------------------------
def test_spec_defaults_and_wiring():
    s = PretrainSpec.from_dict(TINY)
    assert (s.center_3d, s.objective, s.intra_view_weight, s.modality_dropout) == ("clip", None, None, 0.0)
    # the default recipe: within-modality term, shear-only augmentation, concatenated features
    r = s.resolved()
    assert (s.recipe, r.objective, r.augment_config().p_corrupt, s.features) == ("hetskel", "umurl+intra_view", 0.0,
                                                                                  "concat")
    assert build_pretrainer(s).objective == "umurl+intra_view"
    assert r.intra_view_weight == RECIPES["hetskel"]["intra_view_weight"] == build_pretrainer(s).intra_view_weight
    assert PretrainSpec.from_dict({**TINY, "intra_view_weight": 0.5}).resolved().intra_view_weight == 0.5
    # the paper's configuration is one parameter away; a key the user sets wins over the recipe
    paper = PretrainSpec.from_dict({**TINY, "recipe": "paper"}).resolved()
    assert (paper.objective, paper.augment_config(), paper.features) == ("umurl", AugmentConfig(), "fused")
    mine = PretrainSpec.from_dict({**TINY, "augment": {"shear_range": 0.5}, "objective": "umurl"}).resolved()
    assert (mine.objective, mine.augment_config().p_corrupt, mine.augment_config().shear_range) == ("umurl", 0.0, 0.5)
    assert dict(mine.augment) == {"p_corrupt": 0.0, "shear_range": 0.5}   # the run stores it written out
    p = build_pretrainer(PretrainSpec.from_dict({**TINY, "objective": "umurl+intra_view", "intra_view_weight": 2.0,
                                                 "modality_dropout": 0.25, "keep_observed": "unsupervised",
                                                 "encoder": {**TINY["encoder"], "fusion": "gated"}}))
    assert (p.objective, p.intra_view_weight, p.modality_dropout, p.encoder.config.fusion) == \
        ("umurl+intra_view", 2.0, 0.25, "gated")
    assert p.processor.keep_observed == "unsupervised"
    p = build_pretrainer(PretrainSpec.from_dict({**TINY, "smooth_frames": 5, "semantic_from": "observed",
                                                 "reconstruction_weight": 3.0}))
    assert (p.processor.config.smooth_frames, p.processor.config.semantic_from) == (5, "observed")
    assert p.reconstruction_weight == 3.0 and set(p.decoders) == set(p.modalities)
    bones = build_pretrainer(PretrainSpec.from_dict({**TINY, "augment": {"bone_scale": 0.2}}))
    assert bones.augment.bone_scale == 0.2 and bones.processor.positional == ("J", "C")
    parts = build_pretrainer(PretrainSpec.from_dict({**TINY, "augment": {"part_view": 0.5}}))
    assert parts.augment.part_view == 0.5 and parts.part_masks.shape == (6, 30)        # unified30: face, arms, legs, neck
    (train,) = load_data(PretrainSpec.from_dict(TINY), which=("train",))
    out = bones(train.get_batch(torch.arange(4)))
    assert torch.isfinite(out["loss"])
    # equal bones: J and C reach the encoder with every observed bone at one length, S untouched
    equal = build_pretrainer(PretrainSpec.from_dict({**TINY, "equal_bones": True}))
    plain = build_pretrainer(PretrainSpec.from_dict(TINY))
    batch = train.get_batch(torch.arange(4))
    mods_eq, _ = equal.process(batch)
    mods_plain, _ = plain.process(batch)
    has_parent = torch.tensor(equal.processor.layout.parents) >= 0
    for k in ("J", "C"):
        person = mods_eq[k][:, 0]                                            # (N, T, V, 3), first person present
        length = bone(person, equal.processor.layout).norm(dim=-1)[..., has_parent]
        assert float((length - length.mean(-1, keepdim=True)).abs().max()) < 1e-4
        assert not torch.allclose(mods_eq[k], mods_plain[k])
    torch.testing.assert_close(mods_eq["S"], mods_plain["S"])
    assert torch.isfinite(equal(batch)["loss"])
    assert equal.processor.config.equal_bones and not plain.processor.config.equal_bones
    assert PretrainSpec.from_dict({**TINY, "text_source": "wordllama"}).text_source == "wordllama"
    for bad, field in (({"modality_dropout": 1.5}, "modality_dropout"), ({"intra_view_weight": -1.0},
                       "intra_view_weight"), ({"center_3d": "joint"}, "center_3d"), ({"objective": "x"}, "objective"),
                       ({"keep_observed": "face"}, "keep_observed"), ({"smooth_frames": 4}, "smooth_frames"),
                       ({"smooth_frames": 0}, "smooth_frames"), ({"semantic_from": "C"}, "semantic_from"),
                       ({"reconstruction_weight": -0.5}, "reconstruction_weight"),
                       ({"equal_bones": True, "modalities": "J,M"}, "equal_bones"),
                       ({"recipe": "ours"}, "recipe")):
        with pytest.raises((ValueError, TypeError), match=field):
            PretrainSpec.from_dict({**TINY, **bad})


def test_center_3d_frame_centres_every_frame():
    (clip,) = load_data(PretrainSpec.from_dict(TINY), which=("train",))
    (frame,) = load_data(PretrainSpec.from_dict({**TINY, "center_3d": "frame"}), which=("train",))
    from hetskel.layouts import get_layout
    mid = get_layout("ntu25").index("spine_mid")
    x_clip, x_frame = clip.x["ntu25"], frame.x["ntu25"]
    main = x_frame[:, 0, :, mid]                       # (N, T, 3) of the first person
    present = (x_frame[:, 0] != 0).any(-1).any(-1)     # (N, T)
    assert main[present].abs().max() < 1e-4            # spine_mid at the origin in every frame
    assert x_clip[:, 0, :, mid][present].abs().max() > 1e-2  # per clip: the body moves through space
    assert torch.allclose(x_clip[:, 0, 0, mid], torch.zeros(3), atol=1e-4)


# -- per-group accuracy, supervised ceiling, diagnosis ---------------------------------------------
def test_group_top1_weights_classes_by_their_test_clips():
    names = ["nod_head", "thumbs_up", "open_hand", "not_synhet"]
    from hetskel.data.synhet import class_group
    assert class_group("nod_head") == "face" and class_group("thumbs_up") == "hand"
    conf = np.array([[3, 1, 0, 0], [0, 1, 1, 0], [0, 0, 6, 0], [0, 0, 0, 2]])
    got = group_top1(conf, names)
    assert got == {"face": 75.0, "hand": pytest.approx(100 * 7 / 8)}  # (1 + 6) / (2 + 6), unknown omitted
    assert group_top1(np.eye(2, dtype=int), ["a", "b"]) == {}
    ftr, ytr = torch.eye(3), torch.arange(3)
    assert np.array_equal(knn_confusion(ftr, ytr, ftr + 0.01, ytr, 3), np.eye(3, dtype=np.int64))


def test_a_collapsed_representation_fails_the_smoke_floor_on_body_classes():
    """05's smoke floor (body and two-person >= 80): one prediction for every clip scores at most
    one class's share of the body group, far below it."""
    from hetskel.data.synhet import class_names

    names = class_names()
    clips = np.full(len(names), 12)                    # 12 test clips per class
    conf = np.zeros((len(names), len(names)), dtype=np.int64)
    conf[:, names.index("squat")] = clips              # everything predicted as one body class
    got = group_top1(conf, names)
    assert got["body"] == pytest.approx(100 / 8) and got["two_person"] == 0.0 and got["face"] == 0.0


def test_evaluate_reports_groups_and_concat_features(tmp_path):
    from hetskel.eval.pretrained import evaluate_pretrained
    spec = PretrainSpec.from_dict(TINY)
    tr, va = load_data(spec)
    p = build_pretrainer(spec)
    assert Features(p, stream="concat")(tr.get_batch(torch.arange(3))).shape == (3, 4 * p.encoder.out_dim)
    res = evaluate_pretrained(p, tr, va, probe_epochs=2, semi_fractions=(), untrained=build_pretrainer(spec),
                              stream="concat")
    assert res["features"] == "concat" and res["feature_dim"] == 4 * p.encoder.out_dim
    for k in ("per_group_linear_top1", "per_group_knn_top1", "per_group_linear_top1_random_init"):
        assert set(res[k]) == {"face", "hand", "body", "two_person"}, k
        assert all(0 <= v <= 100 for v in res[k].values())


def test_supervised_ceiling_and_diagnose(tmp_path):
    from hetskel.eval.supervised import supervised_ceiling
    from hetskel.studies.diagnose import diagnose, diagnosis_markdown, diagnosis_summary

    spec = PretrainSpec.from_dict(TINY)
    tr, va = load_data(spec)
    untrained = build_pretrainer(spec)
    before = {k: v.clone() for k, v in untrained.state_dict().items() if isinstance(v, torch.Tensor)}
    sup = supervised_ceiling(untrained, tr, va, epochs=1, batch_size=8)
    assert set(sup["per_group_top1"]) == {"face", "hand", "body", "two_person"} and 0 <= sup["top1_final"] <= 100
    assert all(torch.equal(v, untrained.state_dict()[k]) for k, v in before.items())  # copied, not trained
    rows = diagnose(TINY, seeds=(0, 1), variants=["J", "J+C"], run_root=tmp_path / "diag", probe_epochs=2,
                    supervised_epochs=1, log=None)
    assert len(rows) == 2 * 2 * 4
    assert {r["protocol"] for r in rows} == {"ssl_linear", "ssl_knn", "random_init_linear", "supervised"}
    assert all({"overall", "face", "hand", "body", "two_person"} <= set(r) for r in rows)
    summary = diagnosis_summary(rows, reference="J")
    assert len(summary) == 8 and all(r["overall_delta_mean"] == 0 for r in summary if r["variant"] == "J")
    assert diagnosis_markdown(summary).count("\n") == 9
