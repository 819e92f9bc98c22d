"""hetskel.experiment: spec checks, data, pretraining (1 process and torchrun), reload, evaluation."""
import json
import os

import pytest
import torch

from hetskel.data.errors import DataError
from hetskel.eval.pretrained import evaluate_pretrained, probe_batch_size
from hetskel.experiment.pretrain import (
    BUILDER,
    build_pretrainer,
    load_data,
    load_pretrained,
    pretrain,
    read_pretrain_run,
    run_description,
    table_banner,
    table_origin,
)
from hetskel.experiment.spec import PretrainSpec
from hetskel.io import RunDirExists, load_checkpoint, read_jsonl
from hetskel.train.config import resolve_builder
from hetskel.train.launch import torchrun_command

# a tiny network and a SynHet draw small enough for seconds on a CPU; the S words read a small user
# table (building open_clip's random text tower would cost more than the whole test)
TINY = dict(num_samples=48, preset="tiny", num_frames=8, lifter_width=16, epochs=2, batch_size=8, device="cpu",
            encoder={"d_model": 16, "ff_dim": 16, "proj_dims": [16, 16]})


def tiny(**kw) -> PretrainSpec:
    return PretrainSpec.from_dict({**TINY, **kw})


@pytest.fixture(scope="module", autouse=True)
def _setup(user_word_table):
    TINY["text_table"] = str(user_word_table)
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: oversubscribed threads only spin
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("pre") / "run"
    return pretrain(tiny(), d)


# --------------------------------------------------------------------------- spec
def test_unknown_key_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown PretrainSpec key\(s\) \['epoch'\].*valid keys: dataset"):
        PretrainSpec.from_dict({"epoch": 3})


@pytest.mark.parametrize("kw, match", [
    ({"modalities": "J,X"}, "modalities"), ({"modalities": "J,C,M"}, "modalities"), ({"modalities": "J,J"}, "modalities"),
    ({"dataset": "ntu"}, "dataset"), ({"preset": "huge"}, "preset.*small"), ({"epochs": "3"}, "epochs.*int"),
    ({"use_lifter": 1}, "use_lifter"), ({"encoder": {"width": 3}}, "width"), ({"semantic": "clip"}, "semantic"),
    ({"prompt_mode": "learned"}, "prompt_mode"), ({"augment": {"crop": 1}}, "augment"),
    ({"dataset": "pyskl"}, "paths"), ({"dataset": "pyskl", "paths": {"kinect": "x.pkl"}}, "layout name"),
    ({"dataset": "pyskl", "paths": {"ntu25": "x.pkl"}}, "C needs a 2D source"),
    ({"train": {"epochs": 3}}, "repeats"), ({"train": {"optimiser": "sgd"}}, "unknown TrainConfig"),
    ({"splits": ["train"]}, "splits"),
])
def test_bad_values_are_named(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny(**kw)


def test_resolved_fills_sizes_and_plans_sources():
    s = PretrainSpec(modalities="c, s").resolved()
    assert (s.modalities, s.num_frames, s.lifter_width) == ("C,S", 32, 256)
    assert PretrainSpec(preset="paper").resolved().lifter_width == 512
    assert s.plan(s.source_layouts()) == {"C": "coco17"}                   # S from C when there is no J
    assert PretrainSpec(modalities="S").plan({"a": "ntu25", "b": "coco17"}) == {"J": "ntu25"}
    assert PretrainSpec(modalities="J,M,B").classic
    # pyskl 2D-only data: C and S are fine
    PretrainSpec(dataset="pyskl", paths={"coco17": "gym.pkl"}, modalities="C,S", splits=["train", "val"]).validate()
    assert PretrainSpec.from_dict(s.to_dict()) == s                         # JSON round trip


# --------------------------------------------------------------------------- data and model
def test_load_data_tiny_synhet():
    tr, va = load_data(tiny(num_samples=40))
    assert len(tr) + len(va) == 40 and len(tr) > 0 and len(va) > 0
    assert tuple(tr.x["ntu25"].shape[1:]) == (2, 8, 25, 3) and tuple(tr.x["coco17"].shape[1:]) == (2, 8, 17, 2)
    assert tr.class_names[0] == "turn_head_left" and "length" in tr.get_batch(torch.arange(2))
    (only,) = load_data(tiny(num_samples=40, modalities="J"), which=("val",))
    assert only.sources == ["ntu25"] and len(only) == len(va)               # only what J needs is loaded


def test_build_is_seeded_and_classic_works():
    a, b = build_pretrainer(tiny()), build_pretrainer(tiny())
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        if torch.is_tensor(v):
            assert torch.equal(v, w), k
    c = build_pretrainer(tiny(seed=1))
    assert not torch.equal(a.encoder.fuse_t.weight, c.encoder.fuse_t.weight)
    assert table_origin(a) == "user"
    cl = build_pretrainer(tiny(modalities="J,M,B"))
    assert cl.encoder.num_joints == 25 and table_origin(cl) == "none"
    (tr,) = load_data(tiny(modalities="J,M,B"), which=("train",))
    out = cl(tr.get_batch(torch.arange(8)))
    assert torch.isfinite(out["loss"])


# --------------------------------------------------------------------------- pretraining
def test_pretrain_writes_run(run):
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "latest.pt"} <= files
    cfg = json.loads((run.run_dir / "config.json").read_text())
    assert cfg["extra"]["builder"] == BUILDER and cfg["extra"]["semantic_table"] == "user"
    assert cfg["extra"]["builder_args"]["spec"]["num_frames"] == 8
    assert [e["epoch"] for e in run.epochs] == [1, 2]
    assert {"loss", "intra", "inter", "vc", "rec"} <= set(run.final)
    assert run.samples_per_s > 0 and run.world_size == 1 and run.spec == tiny().resolved()
    assert len(read_jsonl(run.run_dir / "metrics.jsonl")) >= 4


def test_rerun_resumes_and_other_run_is_refused(run):
    again = pretrain(tiny(), run.run_dir)                  # finished: read back, nothing retrained
    assert again.final == run.final
    with pytest.raises(RunDirExists, match="different run"):
        pretrain(tiny(lr=1e-3), run.run_dir)


def test_load_pretrained_round_trip(run):
    p, spec = load_pretrained(run.run_dir)
    assert spec == run.spec and not p.training
    (va,) = load_data(spec, which=("val",))
    batch = va.get_batch(torch.arange(6))
    ref = build_pretrainer(spec)
    ref.load_state_dict(load_checkpoint(run.run_dir / "latest.pt")["objective"])
    torch.testing.assert_close(p.features(batch), ref.features(batch), rtol=0, atol=0)
    # the trained weights differ from the initial ones
    assert not torch.equal(p.encoder.fuse_t.weight, build_pretrainer(spec).encoder.fuse_t.weight)


def test_evaluate_pretrained_keys(run):
    p, spec = load_pretrained(run.run_dir)
    tr, va = load_data(spec)
    res = evaluate_pretrained(p, tr, va, probe_epochs=3, semi_fractions=(0.1,), semi_seeds=(0, 1), semi_epochs=1,
                              untrained=build_pretrainer(spec))
    for k in ("linear_top1", "linear_top1_best", "linear_top1_random_init", "knn_top1", "knn_top1_random_init",
              "semi_10pct_mean", "semi_10pct_std", "semi_10pct_per_seed"):
        assert 0.0 <= res[k] <= 100.0 if not isinstance(res[k], list) else len(res[k]) == 2, k
    assert res["num_classes"] == 17 and len(res["confusion"]) == 17 and len(res["per_class_acc"]) == 17
    assert sum(map(sum, res["confusion"])) == len(va) == res["num_val"]
    assert len(res["probe_history"]) == 3 and res["linear_top1"] == res["probe_history"][-1]


def test_table_origin_ignores_caching(tmp_path):
    from types import SimpleNamespace as NS

    from hetskel.io import save_checkpoint

    def origin(src):
        return table_origin(NS(processor=NS(text_source=src)))
    assert origin("random-init:ViT-B-32/seed0") == "random-init:ViT-B-32/seed0"
    assert origin(f"cache:{tmp_path}/t.pt[random-init:ViT-B-32/seed0]") == "random-init:ViT-B-32/seed0"
    save_checkpoint(tmp_path / "real.pt", {"origin": "clip:ViT-B-32/openai"})
    assert origin(f"cache:{tmp_path}/real.pt") == "clip:ViT-B-32/openai"
    assert origin("none (numeric)") == "none (numeric)"
    assert "NOT CLIP" in table_banner("random-init:ViT-B-32/seed0") and "!!" not in table_banner("user")


def test_probe_batch_size_rule():
    assert probe_batch_size(40000) == 512 and probe_batch_size(1000) == 100 and probe_batch_size(30) == 8
    assert probe_batch_size(30, 64) == 64


# --------------------------------------------------------------------------- torchrun
def test_run_description_builds_the_same_objective(tmp_path):
    desc = run_description(tiny(), tmp_path / "r", "none")
    assert desc["builder"] == BUILDER and desc["train"]["epochs"] == 2 and desc["run_dir"].endswith("r")
    obj, ds = resolve_builder(desc["builder"])(**json.loads(json.dumps(desc["builder_args"])))
    ref = build_pretrainer(tiny())
    torch.testing.assert_close(obj.encoder.fuse_s.weight, ref.encoder.fuse_s.weight)
    assert len(ds) == len(load_data(tiny(), which=("train",))[0])
    cmd = torchrun_command("run.json", 2)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hetskel.train",
                       "--config", "run.json"]


@pytest.mark.skipif(os.environ.get("HETSKEL_SKIP_TORCHRUN") == "1", reason="HETSKEL_SKIP_TORCHRUN=1")
def test_torchrun_two_cpu_processes(tmp_path, run):
    """2 gloo processes: same losses as the 1-process run of the same spec (all-gathered loss)."""
    two = pretrain(tiny(), tmp_path / "ddp", devices=2, timeout=240)
    assert two.world_size == 2 and (two.run_dir / "torchrun.json").is_file()
    assert [e["epoch"] for e in two.epochs] == [1, 2]
    # BatchNorm sees each rank's half batch on CPU (no SyncBatchNorm), so losses agree only roughly
    assert abs(two.epochs[0]["loss"] - run.epochs[0]["loss"]) < 0.1 * abs(run.epochs[0]["loss"])
    p, _ = load_pretrained(two.run_dir)
    (va,) = load_data(tiny(), which=("val",))
    assert torch.isfinite(p.features(va.get_batch(torch.arange(4)))).all()
    assert read_pretrain_run(two.run_dir).semantic_table == "user"


def test_builder_rejects_other_runs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"extra": {"builder": "x:y"}}))
    with pytest.raises(ValueError, match="not a hetskel.experiment pretraining run"):
        read_pretrain_run(tmp_path)


def test_features_need_a_pretrained_modality(run):
    """Features use the pretrained modalities a batch has; none of them is a DataError."""
    from hetskel.eval.pretrained import Features

    p, spec = load_pretrained(run.run_dir)
    (va,) = load_data(spec, which=("val",))
    batch = va.get_batch(torch.arange(4))
    torch.testing.assert_close(Features(p)(batch), p.features(batch))          # all present: Pretrainer's path
    j_only = Features(p)({k: v for k, v in batch.items() if k != "coco17"})   # no 2D source: J and S
    assert j_only.shape == (4, p.encoder.out_dim) and not torch.allclose(j_only, p.features(batch))
    with pytest.raises(DataError):
        Features(p)({"kinect": torch.zeros(2, 2, 8, 20, 3)})


def test_the_smoke_network_is_the_one_notebooks_check():
    """Notebooks 04 and 05 assert that the CI smoke run wrote ``SMOKE_NETWORK``; this says so without
    running them (the default word table: CLIP's if cached, else wordllama's 256-d one)."""
    from hetskel.experiment.pretrain import build_pretrainer, network_summary
    from hetskel.experiment.spec import SMOKE_NETWORK, smoke_spec
    net = build_pretrainer(smoke_spec())
    summary = network_summary(net)
    assert json.loads(json.dumps(summary)) == summary            # plain data for metrics.json
    assert summary == SMOKE_NETWORK
    # another encoder size changes it
    assert network_summary(build_pretrainer(smoke_spec(encoder={"d_model": 32}))) != SMOKE_NETWORK
