import numpy as np
import pytest
import torch

from hetskel.data.batches import ArrayDataset, iterate_batches, load_dataset
from hetskel.data.errors import DataError

H, W = 480, 640


def ramp3d(M, T, seed):
    """(M, T, 25, 3) clip moving linearly in time, no zeros."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(M, 1, 25, 3)) + 3.0
    vel = rng.normal(size=(M, 1, 25, 3)) * 0.1
    return (base + vel * np.arange(T)[None, :, None, None]).astype(np.float32)


def ann3d(fd, label, M, T, seed, pad_to=None):
    kp = ramp3d(M, T, seed)
    if pad_to:  # NTU-style trailing zero padding
        kp = np.concatenate([kp, np.zeros((M, pad_to - T, 25, 3), np.float32)], 1)
    return dict(frame_dir=fd, label=label, total_frames=kp.shape[1], keypoint=kp)


def ann2d(fd, label, M, T, seed):
    rng = np.random.default_rng(seed)
    kp = (rng.uniform(0.1, 0.9, size=(M, T, 17, 2)) * [W, H]).astype(np.float16)
    score = rng.uniform(0.3, 1.0, size=(M, T, 17)).astype(np.float16)
    return dict(frame_dir=fd, label=label, total_frames=T, img_shape=(H, W), keypoint=kp, keypoint_score=score)


@pytest.fixture
def pair():
    d3 = {"split": {"train": ["a", "b", "c"], "val": ["e"]}, "layout": "ntu25", "class_names": list("pqrs"),
          "annotations": [ann3d("a", 0, 1, 10, 0), ann3d("b", 1, 2, 30, 1, pad_to=40), ann3d("c", 2, 3, 25, 2),
                          ann3d("e", 3, 1, 8, 3)]}
    d2 = {"split": {"train": ["d", "c", "b"], "val": ["e"]},
          "annotations": [ann2d("b", 1, 1, 33, 4), ann2d("c", 2, 2, 27, 5), ann2d("d", 0, 1, 12, 6),
                          ann2d("e", 3, 2, 9, 7)]}
    return d3, d2


def test_pairs_by_frame_dir_and_builds_tensors(pair):
    d3, d2 = pair
    ds = load_dataset({"J": d3, "coco17": d2}, split="train", num_frames=16, max_persons=2)
    assert ds.frame_dirs == ["b", "c"]                         # first source's order, unpaired a/d dropped
    assert ds.layouts == {"J": "ntu25", "coco17": "coco17"}   # "layout" key, else the source name
    assert ds.x["J"].shape == (2, 2, 16, 25, 3) and ds.x["J"].dtype == torch.float32
    assert ds.x["coco17"].shape == (2, 2, 16, 17, 2) and ds.score["coco17"].shape == (2, 2, 16, 17)
    assert ds.labels.tolist() == [1, 2] and ds.num_classes == 4 and len(ds) == 2
    assert ds.lengths["J"].tolist() == [30, 25] and ds.lengths["coco17"].tolist() == [33, 27]
    assert ds.clip_lengths.tolist() == [33, 27]
    assert (ds.x["coco17"][0, 1] == 0).all()                  # clip b has one 2D person: the other is padding
    assert ds.x["coco17"].abs().max() <= 1.0                  # pixels -> [-1, 1]
    # PYSKL-normalised 3D: main person's shoulders on +x at the first frame
    sh = ds.x["J"][:, 0, 0, 8] - ds.x["J"][:, 0, 0, 4]
    assert (sh[:, 0] > 0).all() and sh[:, 1:].abs().max() < 1e-5


def test_resamples_each_source_over_its_valid_length(pair):
    d3, _ = pair
    ds = load_dataset({"ntu25": d3}, split="train", num_frames=7, normalize=False)
    b = d3["annotations"][1]["keypoint"]                      # 30 real frames + 10 zero frames
    x = ds.x["ntu25"][1].numpy()
    np.testing.assert_array_equal(x[:, 0], b[:, 0])
    np.testing.assert_array_equal(x[:, -1], b[:, 29])         # the padding was not stretched in
    np.testing.assert_allclose(x[:, 3], (b[:, 14] + b[:, 15]) / 2, rtol=1e-5)  # linear in between
    # three persons truncated to the two most energetic
    c = d3["annotations"][2]["keypoint"]
    energy = [c[m].reshape(-1, 3).std(0).sum() for m in range(3)]
    order = np.argsort(energy)[::-1][:2]
    np.testing.assert_array_equal(x_c := ds.x["ntu25"][2, :, 0].numpy(), c[order, 0])
    assert x_c.shape == (2, 25, 3)


def test_scores_threshold_2d_and_errors(pair):
    d3, d2 = pair
    d2["annotations"][0]["keypoint_score"][0, 0, 3] = 0      # clip b, frame 0, joint 3 undetected
    ds = load_dataset({"coco17": d2}, split="train", num_frames=33)
    i = ds.frame_dirs.index("b")
    assert (ds.x["coco17"][i, 0, 0, 3] == 0).all() and ds.score["coco17"][i, 0, 0, 3] == 0
    with pytest.raises(DataError, match="not in every source"):
        load_dataset({"ntu25": d3, "coco17": d2}, split="train", drop_unpaired=False)
    d2["annotations"][1]["label"] = 0
    with pytest.raises(DataError, match="label") as e:
        load_dataset({"ntu25": d3, "coco17": d2}, split="train")
    assert e.value.sample == "c"
    with pytest.raises(DataError, match="layout"):
        load_dataset({"J": d2})
    with pytest.raises(DataError, match="split"):
        load_dataset({"ntu25": d3}, split="xsub_train")
    del d2["annotations"][3]["img_shape"]
    with pytest.raises(DataError, match="img_shape") as e:
        load_dataset({"coco17": d2}, split="val")
    assert e.value.sample == "e"
    assert load_dataset({"coco17": d2}, split="val", img_shape=(H, W)).x["coco17"].shape[0] == 1
    d3["annotations"][0]["keypoint"] = np.zeros((1, 4, 17, 3), np.float32)
    with pytest.raises(DataError, match="V=25") as e:
        load_dataset({"ntu25": d3}, split="train")
    assert e.value.sample == "a" and e.value.field == "keypoint"


def test_dataset_methods_and_batches(pair):
    d3, _ = pair
    ds = load_dataset({"ntu25": d3}, num_frames=8, chunk_size=2)  # no split: all clips, several chunks
    assert ds.frame_dirs == ["a", "b", "c", "e"]
    sub = ds.subset(torch.tensor([2, 0]))
    assert sub.frame_dirs == ["c", "a"] and torch.equal(sub.x["ntu25"][0], ds.x["ntu25"][2])
    assert ds.subset(ds.labels >= 2).frame_dirs == ["c", "e"]
    batch = ds.to("cpu").get_batch(torch.tensor([3, 1]))
    assert set(batch) == {"ntu25", "label", "length"} and batch["label"].tolist() == [3, 1]
    assert batch["length"].tolist() == [8, 30]                  # original frame counts of clips e, b
    assert torch.equal(batch["ntu25"][1], ds.x["ntu25"][1])
    g = torch.Generator().manual_seed(0)
    idx = list(iterate_batches(10, 4, shuffle=True, generator=g))
    assert [len(i) for i in idx] == [4, 4, 2] and sorted(torch.cat(idx).tolist()) == list(range(10))
    assert [len(i) for i in iterate_batches(10, 4, shuffle=False, drop_last=True)] == [4, 4]
    assert torch.cat(list(iterate_batches(5, 2, shuffle=False))).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DataError):
        ArrayDataset(x={"label": torch.zeros(1)}, labels=torch.zeros(1, dtype=torch.long), frame_dirs=["a"],
                     layouts={"label": "ntu25"})


def test_loads_paths_through_pyskl(pair, tmp_path):
    from hetskel.data.pyskl import save_pyskl

    d3, d2 = pair
    p3, p2 = save_pyskl(d3, tmp_path / "j.pkl"), save_pyskl(d2, tmp_path / "c.pkl")
    ds = load_dataset({"ntu25": p3, "coco17": str(p2)}, split="val", num_frames=4)
    assert ds.frame_dirs == ["e"] and ds.class_names == list("pqrs")


def test_real_pyskl_2d_file(shared_data):
    path = shared_data / "pyskl_coco17_custom16" / "ntu60_hrnet.pkl"
    ds = load_dataset({"coco17": path}, split="xsub_test", num_frames=32)
    x = ds.x["coco17"]
    assert x.shape == (98, 2, 32, 17, 2) and torch.isfinite(x).all()
    assert ds.num_classes == 16 and ds.labels.min() >= 0 and ds.labels.max() <= 15  # file is 1-based
    assert (x[:, 1] == 0).all()                                # single-person file: padded second person
    assert (ds.lengths["coco17"] > 1).all()
    # most normalised keypoints lie inside the image
    present = x[:, 0] != 0
    assert (x[:, 0][present].abs() <= 1.0).float().mean() > 0.95
