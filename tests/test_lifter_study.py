"""hetskel.studies.lifter (the lifter notebook's helpers), lifter_train's additions, the notebook and what it prints."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from notebook_checks import assert_notebook_conventions

from hetskel.data import synhet
from hetskel.data.errors import DataError
from hetskel.hetero.lifter import lifter_for
from hetskel.hetero.lifter_train import LifterConfig, evaluate_lifter, train_lifter
from hetskel.studies import lifter as ls

TINY = LifterConfig(width=32, epochs=2, batch_size=256, frame_stride=2, dropout=0.1)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest)


@pytest.fixture(scope="module")
def draw():
    return synhet.generate(num_samples=60, num_frames=16, seed=4)


# ---------------------------------------------------------------------------------------------
# pair sets
def test_synhet_pairset_pairs_normalise_by_image_and_keep_absent_zero(draw):
    d3, d2 = draw
    ps = ls.synhet_pairset(d3, d2)
    assert ps.x2d.shape == (60, 2, 16, 17, 2) and ps.x3d.shape == (60, 2, 16, 25, 3)
    assert (ps.layout_2d, ps.layout_3d, ps.img_shape) == ("coco17", "ntu25", (1080, 1920))
    assert sorted(ps.split) == ["xsub_train", "xsub_val", "xview_train", "xview_val"]
    assert len(ps.rows("xsub_train")) + len(ps.rows("xsub_val")) == 60
    x2, _ = ps.pairs("xsub_val")
    assert x2.dtype == np.float32 and len(x2) == len(ps.rows("xsub_val"))
    absent = ~(ps.x2d[ps.rows("xsub_val")] != 0).any(-1)
    assert np.all(x2[absent] == 0) and absent.any()  # one-person classes have an empty second person
    # pixels -> [-1, 1] by the image size (y down): corners and a point on the vertical centre line
    joints = np.array([[0.0, 1080.0], [1920.0, 0.0]] * 8 + [[960.0, 270.0]], np.float32)
    probe = ls.PairSet("probe", "coco17", "ntu25", joints.reshape(1, 1, 1, 17, 2),
                       np.ones((1, 1, 1, 25, 3), np.float32), (1080, 1920), ["a"])
    p2, _ = probe.pairs()
    assert np.allclose(p2[0, 0, 0, :2], [[-1, 1], [1, -1]]) and np.allclose(p2[0, 0, 0, -1], [0, -0.5])
    # frames: person-frames where both skeletons exist
    both = (ps.x2d != 0).any(-1).any(-1) & (ps.x3d != 0).any(-1).any(-1)
    assert ps.frames() == int(both.sum()) and "person-frames" in ls.describe(ps)
    with pytest.raises(KeyError, match="no split"):
        ps.rows("test")


def test_projection_and_pinhole_fit_are_inverse():
    g = np.random.default_rng(0)
    x3 = np.concatenate([g.uniform(-0.8, 0.8, (3, 1, 9, 20, 2)), g.uniform(2.0, 4.0, (3, 1, 9, 20, 1))], -1)
    x3[0, 0, 3] = 0  # a padded frame stays absent
    uv = ls.project(x3.astype(np.float32), 285.0, (240, 320))
    assert np.all(uv[0, 0, 3] == 0)
    ps = ls.PairSet("cam", "kinect20_msr", "kinect20_msr", uv, x3.astype(np.float32), (240, 320), ["a", "b", "c"])
    cam = ls.fit_pinhole(ps)
    assert cam["fx"] == pytest.approx(285.0, rel=1e-4) and cam["fy"] == pytest.approx(-285.0, rel=1e-4)
    assert cam["cx"] == pytest.approx(160.0, abs=1e-2) and cam["cy"] == pytest.approx(120.0, abs=1e-2)
    assert cam["rms_px"] < 1e-3 and cam["points"] == 3 * 9 * 20 - 20
    assert "fx 285.0 px" in ls.pinhole_text(cam)
    assert ls.fit_pinhole(ps, [1, 2])["points"] == 2 * 9 * 20


def test_projected_pairset_is_synhet_in_a_custom_layout(draw):
    d3, _ = draw
    ps = ls.projected_pairset(d3, "kinect20_msr", 285.6, (240, 320))
    assert ps.x2d.shape == (60, 2, 16, 20, 2) and ps.x3d.shape == (60, 2, 16, 20, 3)
    assert ps.layout_2d == ps.layout_3d == "kinect20_msr"
    on = (ps.x3d != 0).any(-1)
    assert np.array_equal((ps.x2d != 0).any(-1), on)
    u = ps.x2d[..., 0][on]
    assert 0 < np.median(u) < 320  # the people are in the picture
    assert {k: list(v) for k, v in ps.split.items()} == {k: list(v) for k, v in ls.split_rows(d3).items()}


def test_first_clip_filters(draw):
    d3, _ = draw
    i = ls.first_clip(d3, "xsub_val", group="body", persons=1)
    a = d3["annotations"][i]
    assert a["frame_dir"] in d3["split"]["xsub_val"] and d3["class_names"][a["label"]] in d3["class_groups"]["body"]
    assert (np.asarray(a["keypoint"]).reshape(2, -1) != 0).any(-1).sum() == 1
    with pytest.raises(LookupError):
        ls.first_clip(d3, "xsub_val", group="face", camera=99)


# ---------------------------------------------------------------------------------------------
# lifter_train additions: init (fine-tuning) and evaluate_lifter
def test_init_fine_tunes_a_copy_and_evaluate_scores_without_training(draw):
    d3, d2 = draw
    ps = ls.synhet_pairset(d3, d2)
    train, val = ps.split_pairs()
    res = train_lifter(train, val, TINY)
    assert res.metrics["lifter"]["frames"] == res.metrics["zero_depth"]["frames"] > 0
    ev = evaluate_lifter(res.model, val, TINY, fit_pairs=train)
    for k in ("lifter", "mean_pose", "zero_depth"):
        assert ev[k]["mpjpe_mm"] == pytest.approx(res.metrics[k]["mpjpe_mm"], rel=1e-5)
    assert set(evaluate_lifter(res.model, val, TINY)) == {"lifter"}
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    same = train_lifter(train, val, LifterConfig(**{**TINY.__dict__, "epochs": 0}), init=res.model)
    assert same.metrics["lifter"]["mpjpe"] == pytest.approx(res.metrics["lifter"]["mpjpe"], rel=1e-5)
    tuned = train_lifter(train, val, TINY, init=res.model)
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert not torch.equal(tuned.model.mlp[0].weight, res.model.mlp[0].weight)
    for other in ("kinect20_msr", "ntu25"):  # 20 joints like coco20 but another root; 25 joints
        wrong, _ = lifter_for(other, width=8)
        with pytest.raises(DataError, match="lifts through"):
            train_lifter(train, val, TINY, init=wrong)
        with pytest.raises(DataError, match="lifts through"):
            evaluate_lifter(wrong, val, TINY)


# ---------------------------------------------------------------------------------------------
# real-data comparisons, tables, figures
@pytest.fixture(scope="module")
def small_real(draw):
    """A tiny stand-in for a real set: SynHet projected to ntu25 (a custom 2D layout), 6 clips."""
    d3, _ = draw
    ps = ls.projected_pairset(d3, "ntu25", 1050.0, (1080, 1920))
    keep = np.arange(6)
    return ls.PairSet("six", "ntu25", "ntu25", ps.x2d[keep], ps.x3d[keep], ps.img_shape,
                      [ps.clips[i] for i in keep])


def test_compare_variants_and_leave_one_out(draw, small_real):
    d3, _ = draw
    pre = ls.pretrain_on_synhet(d3, small_real, TINY, focal=1050.0)
    assert pre.model.in_joints == 25 and pre.config.layout_2d == "ntu25"
    out = ls.compare_variants(small_real, [0, 1, 2, 3], [4, 5], TINY, pretrained=pre.model, steps=4, batch_size=64)
    assert list(out) == list(ls.VARIANTS)
    assert len({round(v["mpjpe_mm"], 6) for v in out.values()}) == len(out)
    assert out["scratch"]["frames"] == small_real.frames([4, 5])
    assert set(ls.compare_variants(small_real, [0, 1, 2], [3], TINY, steps=2)) == {"scratch", "mean_pose",
                                                                                      "zero_depth"}
    cfg = ls.real_config(TINY, small_real, [0, 1, 2, 3], steps=10, batch_size=64)
    per_epoch = -(-small_real.frames([0, 1, 2, 3]) // 64)
    assert cfg.epochs == -(-10 // per_epoch) and cfg.frame_stride == 1 and cfg.layout_2d == "ntu25"

    folds = ls.leave_one_out(small_real, TINY, steps=2, batch_size=64)
    assert [f["test"] for f in folds] == small_real.clips
    pool = ls.pooled(folds)
    n = sum(f["scratch"]["frames"] for f in folds)
    assert pool["scratch"]["frames"] == n == small_real.frames()
    want = sum(f["scratch"]["mpjpe_mm"] * f["scratch"]["frames"] for f in folds) / n
    assert pool["scratch"]["mpjpe_mm"] == pytest.approx(want)
    s = ls.loo_summary(folds)
    assert len(s["folds"]) == 6 and set(s["folds"][0]) == {"test", "scratch", "mean_pose", "zero_depth"}
    table = ls.metrics_table({"held out": pool, "other": {"scratch": pool["scratch"]}})
    assert "held out" in table and "scratch" in table and "synhet zero-shot" not in table
    assert small_real.clips[0] in ls.fold_table(folds)
    assert isinstance(ls.real_figure({"six": pool}), Figure)


def test_figures(draw):
    d3, d2 = draw
    ps = ls.synhet_pairset(d3, d2)
    res = train_lifter(*ps.split_pairs(), TINY)
    assert isinstance(ls.loss_figure(res.history), Figure)
    i = ls.first_clip(d3, "xsub_val", group="body", persons=1)
    fig = ls.reconstruction_figure(res.model, ps, i, TINY, fit_rows="xsub_train", frames=3)
    assert len(fig.axes) == 9
    assert "coco20" in ls.describe_lifter(TINY) and "15 joints" in ls.describe_lifter(TINY)


# ---------------------------------------------------------------------------------------------
# real files
def test_ntu_and_msr_pairsets(shared_data):
    ntu = ls.ntu_pairset(shared_data / "ntu_raw_sample")
    assert len(ntu.clips) == 6 and ntu.x2d.shape[:2] == (6, 2) and ntu.x2d.shape[-2:] == (25, 2)
    assert ntu.frames() == 103 + 82 + 2 * 70 + 100 + 71 + 124
    cam = ls.fit_pinhole(ntu)
    assert 1000 < cam["fx"] < 1100 and cam["rms_px"] < 20  # colour pixels ~ a projection of the 3D joints
    msr = ls.msr_pairset(shared_data / "msr_action3d")
    assert len(msr.clips) == 557 and msr.layout_2d == "kinect20_msr" and msr.img_shape == (240, 320)
    assert len(msr.rows("xsub_train")) + len(msr.rows("xsub_val")) == 557
    assert np.abs(msr.x2d).max() < 4 * 320  # the recorder's 2.1e9 overflow values were set absent
    assert any("outside the image" in n for n in msr.notes)
    assert ls.fit_pinhole(msr, "xsub_train")["rms_px"] < 1.0  # screen = projection of world, rounded
    with pytest.raises(DataError, match="skeleton"):
        ls.ntu_pairset(shared_data / "msr_action3d")


# ---------------------------------------------------------------------------------------------
# notebook
def test_notebook_is_in_sync_output_free_with_its_parameters():
    p = assert_notebook_conventions("01_lifter")
    assert p["progress"] is False
    assert {"width", "epochs", "real_steps", "finetune_lr", "shared_data", "num_threads"} <= set(p)


# what the notebook prints in its smoke run (smoke = True, seed 0), exactly
SMOKE_PAIRS = (
    "SynHet: 200 clips, 2D coco17 (200, 2, 32, 17, 2) pixels of a 1920x1080 image -> 3D ntu25 (200, 2, 32, 25, 3) metres\n"
    "  person-frames with both skeletons: 7520\n"
    "  xsub_train    104 clips    3872 person-frames\n"
    "  xsub_val       96 clips    3648 person-frames\n"
    "  xview_train   133 clips    4960 person-frames\n"
    "  xview_val      67 clips    2560 person-frames\n"
)
SMOKE_LIFTER = (
    "coco17 -> coco20 (20 joints x 2) -> 20 joints x 3; 4 linear layers of width 32; 5,596 parameters\n"
    "L_rec supervises the 15 joints coco20 shares with ntu25: left_shoulder, right_shoulder, left_elbow, right_elbow, left_wrist, right_wrist, left_hip, right_hip, left_knee, right_knee, left_ankle, right_ankle, spine_shoulder, spine_base, spine_mid\n"
)


def test_the_notebooks_descriptions_exactly():
    d3, d2 = synhet.generate(num_samples=200, num_frames=32, seed=0)  # the notebook's smoke draw
    assert ls.describe(ls.synhet_pairset(d3, d2)) + "\n" == SMOKE_PAIRS
    assert ls.describe_lifter(LifterConfig(width=32)) + "\n" == SMOKE_LIFTER  # the smoke width
