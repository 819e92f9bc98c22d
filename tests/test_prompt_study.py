"""hetskel.studies.prompts / prompt_views (the prompts notebook's helpers), the notebook and what it prints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from notebook_checks import assert_notebook_conventions

from hetskel.data import synhet
from hetskel.data.errors import DataError
from hetskel.layouts import get_layout
from hetskel.studies import prompt_views as pv
from hetskel.studies import prompts as ps


@pytest.fixture(scope="module")
def draw():
    d3, _, du = synhet.generate(num_samples=40, num_frames=8, seed=3, return_unified=True)
    return d3, du


@pytest.fixture(scope="module")
def data(draw):
    return ps.study_data(*draw)


@pytest.fixture(scope="module")
def runs(data):
    return ps.train_prompts(data, steps=60, lr=0.05, batch_size=16, seed=1)


def test_study_data_puts_every_layout_in_one_pose_frame(data, draw):
    assert data.sources == list(ps.SOURCES)
    N = len(draw[0]["annotations"])
    for s, x in data.x.items():
        assert x.shape == (N, 2, 8, get_layout(s).num_joints, 3) and x.dtype == torch.float32
    present = {s: (x != 0).any(-1).any(-1) for s, x in data.x.items()}     # (N, M, T) frame has a skeleton
    assert all(torch.equal(p, present["ntu25"]) for p in present.values())
    absent = torch.tensor([not np.asarray(a["keypoint"])[1].any() for a in draw[0]["annotations"]])
    assert absent.any() and torch.all(data.x["coco20"][absent, 1] == 0)   # padded second persons stay zero
    # a Kinect subset is the same sensor: kinect20_msr joints equal ntu25's (same alignment and scale)
    msr, ntu = get_layout("kinect20_msr"), get_layout("ntu25")
    idx = [ntu.index(j) for j in msr.joints]
    assert torch.allclose(data.x["kinect20_msr"], data.x["ntu25"][..., idx, :], atol=1e-5)
    # pose frame: root (spine_base) at the origin in the first frame, z up, the person faces +y
    coco = get_layout("coco20")
    x = data.x["coco20"][:, 0]
    assert x[:, 0, coco.index("spine_base")].abs().max() < 1e-5
    up = x[..., coco.index("spine_shoulder"), :] - x[..., coco.index("spine_base"), :]
    assert torch.all(up[..., 2] > 0.5)
    ears = (x[..., coco.index("left_ear"), :] + x[..., coco.index("right_ear"), :]) / 2
    assert (x[..., coco.index("nose"), 1] - ears[..., 1]).mean() > 0.05
    # COCO's spine is interpolated from its hips and shoulders, as a detector's would be
    mid = (x[..., coco.index("spine_base"), :] + x[..., coco.index("spine_shoulder"), :]) / 2
    assert torch.allclose(x[..., coco.index("spine_mid"), :], mid, atol=1e-5)
    assert "40 clips x 2 persons x 8 frames" in data.summary()


def test_study_data_rejects_mismatched_draws(draw):
    d3, du = draw
    short = dict(du, annotations=du["annotations"][:5])
    with pytest.raises(DataError, match="matching"):
        ps.study_data(d3, short)
    with pytest.raises(DataError, match="does not model"):
        ps.study_data(d3, du, ("ntu25", "h36m17"))                        # h36m17's head_top


def test_person_rows_and_targets(data):
    rows = ps.person_rows(data)
    n_present = int(sum((x != 0).any(-1).any(-1).any(-1).sum() for x in [data.x["ntu25"]]))
    assert len(rows.labels) == n_present and rows.x["ntu25"].shape[1] == 1
    uni = ps.make_unifier(data.sources, "prompt")
    target, have = ps.completion_targets(uni, rows)
    L = uni.layout
    nose, wrist = L.index("nose"), L.index("left_wrist")
    coco, ntu = get_layout("coco20"), get_layout("ntu25")
    # the nose only COCO has: its value; a wrist all three have: their mean
    ok = have[..., nose]
    assert torch.equal(target[..., nose, :][ok], rows.x["coco20"][..., coco.index("nose"), :][ok])
    mean = sum(rows.x[s][..., get_layout(s).index("left_wrist"), :] for s in rows.sources) / 3
    assert torch.allclose(target[..., wrist, :][have[..., wrist]], mean[have[..., wrist]], atol=1e-6)
    assert torch.all(have[..., L.index("neck")] == (rows.x["ntu25"][..., ntu.index("neck"), :] != 0).any(-1))


def test_training_moves_prompts_and_orders_the_modes(runs):
    assert list(runs) == ["prompt", "anchored", "zero"]
    p, a, z = runs["prompt"], runs["anchored"], runs["zero"]
    for r in (p, a):
        assert r.loss.shape == (60,)
        assert r.tables["coco20"].shape == (61, 10, 3) and r.tables["ntu25"].shape == (61, 5, 3)
        assert all(r.error_after[s] < r.error_before[s] for s in r.error_before)
        assert all(d > 0 for d in r.displacement().values())
    # every mode starts from the same numbers (positions for prompt, offsets for anchored)
    assert np.array_equal(p.tables["ntu25"][0], a.tables["ntu25"][0])
    assert len(z.loss) == 0 and z.error_before == z.error_after and z.tables["ntu25"].shape == (1, 5, 3)
    for s in p.error_after:                                             # anchored < static < zero
        assert a.error_after[s] < p.error_after[s] < z.error_after[s]
    assert a.final_loss < p.final_loss < z.final_loss


def test_training_is_deterministic(data, runs):
    threads = torch.get_num_threads()
    again = ps.train_prompts(data, ("prompt",), steps=60, lr=0.05, batch_size=16, seed=1)
    assert np.array_equal(again["prompt"].tables["coco20"], runs["prompt"].tables["coco20"])
    other = ps.train_prompts(data, ("prompt",), steps=5, lr=0.05, batch_size=16, seed=2)
    assert not np.array_equal(other["prompt"].tables["coco20"][0], runs["prompt"].tables["coco20"][0])
    assert torch.get_num_threads() == threads                            # one_thread() restores the pool size


def test_static_prompt_converges_to_the_mean_target(data):
    """The objective is what the docstring says: the best static prompt is the joint's mean position."""
    rows = ps.person_rows(data)
    r = ps.train_prompts(data, ("prompt",), steps=400, lr=0.05, batch_size=len(rows.labels), seed=0)["prompt"]
    uni = r.unifier
    target, have = ps.completion_targets(uni, rows)
    valid = (rows.x["ntu25"] != 0).any(-1).any(-1)[..., None] & have
    means = torch.stack([target[..., k, :][valid[..., k]].mean(0)
                         for k in (uni.layout.index(j) for j in uni.missing("ntu25"))])
    assert torch.allclose(uni.prompt("ntu25").detach(), means, atol=0.05)   # Adam ends within ~lr of it
    with torch.no_grad():                                                   # and the mean is the optimum:
        uni.prompt("ntu25").copy_(means)                                    # zero gradient there
    uni.prompt("ntu25").grad = None
    loss = ps.completion_error(uni, rows, target, have)["ntu25"][0]
    loss.backward()
    assert uni.prompt("ntu25").grad.abs().max() < 1e-4


def test_tables_and_round_trip(runs, data):
    table = ps.source_table()
    assert "unified30: 30 joints, 3 source layouts" in table
    assert "ntu25          25    25        5" in table and "coco20         20    20       10" in table
    assert "nose <- head" in table and "right_hand_tip <- right_wrist" in table and "right_foot <- right_ankle" in table
    checks = ps.round_trip(runs, data)
    assert all(c["exact"] and c["max_abs_diff"] == 0.0 for per in checks.values() for c in per.values())
    assert checks["zero"]["coco20"]["virtual"] == 10 and checks["prompt"]["ntu25"]["real"] == 25
    text = ps.round_trip_table(checks)
    assert text.splitlines()[1].split() == ["ntu25", "exact", "exact", "exact"]
    broken = json.loads(json.dumps(checks))
    broken["anchored"]["ntu25"]["exact"] = False
    assert ps.round_trip_table(broken).splitlines()[1].split() == ["ntu25", "exact", "CHANGED", "exact"]
    assert "completion error" in ps.training_table(runs)


def test_static_prompts_stand_still_inside_a_clip_and_anchored_ones_follow(runs, data):
    cases = ps.clip_cases(data, [("ntu25", "nose", data.class_names[int(data.labels[0])]),
                                 ("coco20", "right_hand_tip", data.class_names[int(data.labels[1])]),
                                 ("ntu25", "nose", "no_such_class")])
    assert [c[:2] for c in cases] == [("ntu25", "nose"), ("coco20", "right_hand_tip")]
    motion = ps.clip_motion(runs, data, cases)
    for rec in motion.values():
        assert rec["prompt_spread"] < 1e-6 and rec["zero_spread"] == 0.0
        assert rec["anchored_spread"] > 1e-3 and rec["truth_spread"] > 1e-3
        assert rec["anchored_error"] < rec["zero_error"]
    m = ps.study_metrics(runs, data, ps.round_trip(runs, data))
    assert m["sources"]["kinect20_msr"] == {"real": 20, "virtual": 10} and m["round_trip_exact"]
    assert set(m["prompt_displacement"]) == {"prompt", "anchored"}
    json.dumps(m)                                                        # JSON-ready


def test_pick_samples(data):
    picks = ps.pick_samples(data, [data.class_names[int(data.labels[5])], "no_such_class"])
    assert list(picks.values()) == [int(torch.nonzero(data.labels == data.labels[5])[0])]
    with pytest.raises(LookupError):
        ps.pick_samples(data, ["no_such_class"])


def test_figures(runs, data):
    fig = pv.trajectory_figure(runs, data)
    assert len(fig.axes) == 2 * 2 * 2                                    # 2 layouts x 2 trained modes x 2 views
    assert len(pv.loss_figure(runs).axes) == 2
    cases = ps.clip_cases(data, [("ntu25", "nose", data.class_names[int(data.labels[0])])])
    assert len(pv.within_clip_figure(runs, data, cases).axes) == 3
    figs = pv.clip_figures(data, runs, 0)
    assert sorted(figs) == sorted(f"02_prompts_unified_{s}" for s in data.sources)
    f = figs["02_prompts_unified_ntu25"]
    assert len(f.frames) == 8 and any("virtual" in (t.name or "") for t in f.data)


def test_explorer_redraws_on_every_control(runs, data):
    samples = ps.pick_samples(data, data.class_names)
    box = pv.prompt_explorer(data, runs, samples)
    (sample_dd, layout_dd, mode_dd), slider = box.children[0].children, box.children[1]
    assert list(layout_dd.options) == data.sources and list(mode_dd.options) == list(runs)
    assert slider.max == 7 and "frame 0" in box.shown.layout.title.text
    slider.value = 3
    assert "frame 3" in box.shown.layout.title.text
    sample_dd.value = sample_dd.options[1]
    layout_dd.value = "coco20"
    mode_dd.value = "zero"
    title = box.shown.layout.title.text
    assert sample_dd.options[1] in title and "coco20" in title and "zero" in title and "not drawn" in title
    assert not box.shown.layout.sliders and len(box.shown.data) > 0      # a still frame, no animation


def test_notebook_is_in_sync_output_free_with_its_parameters():
    p = assert_notebook_conventions("02_prompts")
    assert p["progress"] is False
    assert p["modes"] == ["prompt", "anchored", "zero"]
    assert p["sources"] == ["ntu25", "coco20", "kinect20_msr"]


# what the notebook prints for its default layouts and modes, exactly (the round trip is also
# asserted on the notebook's own metrics.json in its smoke check)
SOURCE_TABLE = (
    "unified30: 30 joints, 3 source layouts\n"
    "layout          V  real  virtual\n"
    "ntu25          25    25        5\n"
    "coco20         20    20       10\n"
    "kinect20_msr   20    20       10\n"
    "ntu25 virtual joints <- anchor:\n"
    "  nose <- head, left_eye <- head, right_eye <- head, left_ear <- head\n"
    "  right_ear <- head\n"
    "coco20 virtual joints <- anchor:\n"
    "  neck <- nose, head <- nose, left_hand <- left_wrist, right_hand <- right_wrist\n"
    "  left_hand_tip <- left_wrist, right_hand_tip <- right_wrist, left_thumb <- left_wrist, right_thumb <- right_wrist\n"
    "  left_foot <- left_ankle, right_foot <- right_ankle\n"
    "kinect20_msr virtual joints <- anchor:\n"
    "  nose <- head, left_eye <- head, right_eye <- head, left_ear <- head\n"
    "  right_ear <- head, neck <- spine_shoulder, left_hand_tip <- left_hand, right_hand_tip <- right_hand\n"
    "  left_thumb <- left_hand, right_thumb <- right_hand\n"
)
ROUND_TRIP_TABLE = (
    "layout            prompt  anchored      zero\n"
    "ntu25              exact     exact     exact\n"
    "coco20             exact     exact     exact\n"
    "kinect20_msr       exact     exact     exact\n"
)


def test_the_notebooks_tables_exactly(runs, data):
    assert ps.source_table(["ntu25", "coco20", "kinect20_msr"]) + "\n" == SOURCE_TABLE
    assert ps.round_trip_table(ps.round_trip(runs, data)) + "\n" == ROUND_TRIP_TABLE
