"""hetskel.eval.transfer: layout adaptation onto the pretrained sources, transfer protocols, targets."""
import numpy as np
import pytest
import torch

from hetskel.data.arrays import from_arrays
from hetskel.data.batches import load_dataset
from hetskel.data.errors import DataError
from hetskel.data.pyskl import save_pyskl
from hetskel.eval.transfer import (
    adapt_dataset,
    comparison_figure,
    describe_plan,
    layout_plan,
    load_target,
    match_layout,
    modalities_used,
    transfer_evaluate,
)
from hetskel.experiment.pretrain import build_pretrainer
from hetskel.experiment.spec import PretrainSpec
from hetskel.layouts import convert, get_layout

TINY = dict(num_samples=48, preset="tiny", num_frames=8, lifter_width=16, device="cpu",
            encoder={"d_model": 16, "ff_dim": 16, "proj_dims": [16, 16]})


@pytest.fixture(scope="module")
def pretrainer(user_word_table):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_pretrainer(PretrainSpec.from_dict({**TINY, "text_table": str(user_word_table)}))
    torch.set_num_threads(n)


def kinect_v1(n=24, layout="kinect20_utd", seed=0, classes=3):
    """Random-walk 20-joint skeletons around a standing pose, odd/even subjects as in UTD-MHAD."""
    rng = np.random.default_rng(seed)
    lay = get_layout(layout)
    base = rng.normal(0, 0.3, (lay.num_joints, 3)) + np.array([0, 0, 3.0])
    arrays = [(base + np.cumsum(rng.normal(0, 0.01, (int(rng.integers(10, 20)), lay.num_joints, 3)), 0))
              .astype(np.float32) for _ in range(n)]
    labels = [i % classes for i in range(n)]
    fds = [f"a{lab + 1}_s{i % 4 + 1}_t{i}" for i, lab in enumerate(labels)]
    splits = {"xsub_train": [f for i, f in enumerate(fds) if (i % 4 + 1) % 2], "xsub_val": [f for i, f in enumerate(fds)
                                                                                       if not (i % 4 + 1) % 2]}
    return from_arrays(arrays, labels, layout, frame_dirs=fds, splits=splits,
                       class_names=[f"c{i}" for i in range(classes)], dataset="tiny_v1")


def test_layout_plans():
    a = layout_plan("kinect20_utd", "ntu25", "anchor")
    assert a["to"] == "ntu25" and a["dropped"] == []
    assert sorted(a["missing"]) == sorted(["neck", "left_hand_tip", "right_hand_tip", "left_thumb", "right_thumb"])
    assert a["filled_from"] == {"neck": "spine_shoulder", "left_hand_tip": "left_hand", "left_thumb": "left_hand",
                                "right_hand_tip": "right_hand", "right_thumb": "right_hand"}
    z = layout_plan("kinect20_msr", "ntu25", "zero")
    assert z["filled_from"] == {} and z["index"] == list(range(25))
    assert layout_plan("h36m17", "ntu25")["dropped"] == ["head_top"]
    with pytest.raises(ValueError, match="fill"):
        layout_plan("kinect20_utd", "ntu25", "prompt")


def test_match_layout():
    assert match_layout("kinect20_msr", ["ntu25", "coco17"]) == "ntu25"
    assert match_layout("coco17", ["ntu25", "coco17"]) == "coco17"
    with pytest.raises(DataError, match="no 2D source"):
        match_layout("coco17", ["ntu25"])


@pytest.mark.parametrize("fill", ["anchor", "zero"])
def test_adapt_dataset_values(pretrainer, fill):
    ds = load_dataset({"kinect20_utd": kinect_v1()}, split="xsub_train", num_frames=8)
    out, report = adapt_dataset(ds, pretrainer, fill)
    x, y = ds.x["kinect20_utd"], out.x["ntu25"]
    assert tuple(y.shape) == (*x.shape[:3], 25, 3) and out.layouts == {"ntu25": "ntu25"}
    ref, real = convert(x, "kinect20_utd", "ntu25")
    torch.testing.assert_close(y[..., real, :], ref[..., real, :], rtol=0, atol=0)   # real joints copied exactly
    ntu = get_layout("ntu25")
    tip, hand = ntu.index("left_hand_tip"), ntu.index("left_hand")
    if fill == "anchor":
        torch.testing.assert_close(y[..., tip, :], y[..., hand, :], rtol=0, atol=0)
    else:
        assert y[..., tip, :].abs().sum() == 0
    assert torch.equal(out.labels, ds.labels) and out.lengths["ntu25"].equal(ds.lengths["kinect20_utd"])
    assert report["kinect20_utd"]["to"] == "ntu25" and "index" not in report["kinect20_utd"]


def test_transfer_3d_only_target(pretrainer):
    data = kinect_v1(n=32)
    tr, va = (load_dataset({"kinect20_utd": data}, split=s, num_frames=8) for s in ("xsub_train", "xsub_val"))
    res = transfer_evaluate(pretrainer, tr, va, probe_epochs=2, untrained=build_pretrainer(pretrainer.spec))
    assert res["modalities_used"] == ["J", "S"]                       # no 2D source: C is absent
    for k in ("linear_top1", "linear_top1_best", "knn_top1", "linear_top1_random_init", "knn_top1_random_init"):
        assert 0.0 <= res[k] <= 100.0
    assert res["num_classes"] == 3 and res["num_train"] == len(tr) and res["num_val"] == len(va)
    # untrained pretrainer == its own random init: identical protocol, identical numbers
    assert res["linear_top1"] == res["linear_top1_random_init"] and res["knn_top1"] == res["knn_top1_random_init"]
    fig = comparison_figure({"tiny": res})
    assert len(fig.axes[0].patches) == 4


def test_transfer_2d_only_target(pretrainer, tmp_path):
    """A FineGYM-like 2D-only file (COCO-17 pixels, scores, splits train/val) read through load_target."""
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(200, 800, (1, 12, 17, 2)).astype(np.float32) for _ in range(12)]
    scores = [rng.uniform(0.5, 1, (1, 12, 17)).astype(np.float32) for _ in range(12)]
    fds = [f"g{i}" for i in range(12)]
    data = from_arrays(arrays, [i % 2 for i in range(12)], "coco17", frame_dirs=fds, scores=scores,
                       img_shape=(1080, 1920), splits={"train": fds[:8], "val": fds[8:]})
    path = save_pyskl(data, tmp_path / "gym.pkl")
    tr, va = load_target(str(path), num_frames=8, splits=("train", "val"))
    assert (len(tr), len(va)) == (8, 4)
    assert modalities_used(pretrainer, tr) == ["C", "S"]
    res = transfer_evaluate(pretrainer, tr, va, probe_epochs=1)
    assert "linear_top1_random_init" not in res and 0 <= res["knn_top1"] <= 100


def test_describe_plan(pretrainer):
    text = describe_plan("kinect20_utd", pretrainer, "anchor")
    assert text.startswith("kinect20_utd -> ntu25: 20 joints copied") and "left_hand_tip <- left_hand" in text


def test_real_msr_action3d(shared_data, pretrainer):
    tr, va = load_target("msr_action3d", num_frames=8, root=shared_data)
    assert (len(tr), len(va), tr.num_classes) == (284, 273, 20) and tr.layouts == {"kinect20_msr": "kinect20_msr"}
    tr, va = tr.subset(range(0, len(tr), 8)), va.subset(range(0, len(va), 8))
    res = transfer_evaluate(pretrainer, tr, va, probe_epochs=2)
    assert res["modalities_used"] == ["J", "S"] and res["adapted"]["kinect20_msr"]["to"] == "ntu25"


def test_missing_shared_data_is_a_clear_error(monkeypatch):
    import hetskel.eval.transfer as t

    monkeypatch.setattr(t, "shared_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="shared/data is absent"):
        load_target("utd_mhad", num_frames=8)


def test_real_utd_mhad_adapts(shared_data, pretrainer):
    tr, va = load_target("utd_mhad", num_frames=8, root=shared_data)
    assert (len(tr), len(va), tr.num_classes) == (431, 430, 27)
    out, report = adapt_dataset(va.subset(range(0, len(va), 40)), pretrainer, "anchor")
    assert tuple(out.x["ntu25"].shape[-2:]) == (25, 3) and report["kinect20_utd"]["dropped"] == []
    assert modalities_used(pretrainer, out) == ["J", "S"]
