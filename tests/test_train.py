"""hetskel.train on a tiny toy objective: config checks, files written, run-folder safety,
non-finite losses, exact in-process resume, CLI."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from hetskel.io import RunDirExists, load_checkpoint, read_jsonl
from hetskel.train.config import TrainConfig, register_builder
from hetskel.train.fit import NonFiniteLossError
from hetskel.train.loop import main, train
from hetskel.train.state import load_weights, read_run


class Interrupt(Exception):
    pass


class ToyData:
    """N samples of 6 features and 3 classes; batches add noise from its own generator and a
    numpy-drawn scale (so every RNG stream the trainer checkpoints is exercised)."""

    def __init__(self, n=40, interrupt_at=None):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.generator = torch.Generator()
        self.calls, self.interrupt_at = 0, interrupt_at

    def __len__(self):
        return len(self.x)

    def to(self, device):
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def get_batch(self, idx):
        if self.interrupt_at is not None and self.calls == self.interrupt_at:
            raise Interrupt(f"simulated crash at call {self.calls}")
        self.calls += 1
        x = self.x[idx]
        scale = float(np.random.uniform(0.05, 0.15))
        return {"x": x + scale * torch.randn(x.shape, generator=self.generator), "y": self.y[idx]}


class ToyObjective(nn.Module):
    """Dropout (global torch RNG) and a lazily created augmentation generator exposed through the
    ``training_generators`` hook (as the real objective creates its generator on the data's device)."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        self.calls, self.nan_at = 0, nan_at
        self._gen = None

    def training_generators(self, device):
        if self._gen is None:
            self._gen = torch.Generator(device=device).manual_seed(11)
        return {"augment": self._gen}

    def forward(self, batch):
        scale = 1 + 0.1 * torch.rand(len(batch["x"]), 1, generator=self.training_generators("cpu")["augment"])
        ce = nn.functional.cross_entropy(self.net(batch["x"] * scale), batch["y"])
        aux = 0.01 * self.net[0].weight.pow(2).sum()
        if self.nan_at is not None and self.calls == self.nan_at:
            aux = aux * float("nan")
        self.calls += 1
        return {"loss": ce + aux, "ce": ce.detach(), "aux": aux.detach()}


def cfg(**kw):
    base = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "log_every": 2, "checkpoint_every_steps": 3,
            "save_every": 2, "progress": False, "device": "cpu", "seed": 5, "lr_milestones": [2],
            "milestones_for_epochs": None}
    base.update(kw)
    return TrainConfig.from_dict(base)


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return ToyObjective(**{k: v for k, v in kw.items() if k == "nan_at"}), ToyData(
        **{k: v for k, v in kw.items() if k == "interrupt_at"})


def weights(obj):
    return {k: v.clone() for k, v in obj.state_dict().items()}


# ------------------------------------------------------------------ config


def test_config_rejects_unknown_keys_listing_valid_ones():
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['epoch'\].*valid keys: epochs, batch_size"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize("key,value,match", [
    ("epochs", "3", "'epochs' expects int, got str"),
    ("lr", True, "'lr' expects float, got bool"),
    ("lr_milestones", [1, "2"], r"'lr_milestones\[1\]' expects int"),
    ("max_steps", 2.5, "'max_steps' expects int | None"),
])
def test_config_checks_types(key, value, match):
    with pytest.raises(TypeError, match=match):
        TrainConfig.from_dict({key: value})


def test_config_checks_values_and_scales_milestones():
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainConfig.from_dict({"epochs": 0})
    c = TrainConfig.from_dict({"epochs": 100, "lr": 1, "lr_milestones": [351], "max_steps": None})
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.lr_milestones == (351,)
    assert c.scaled_milestones() == (78,)  # 351/451 of 100 epochs
    assert TrainConfig().scaled_milestones() == (351,)
    assert TrainConfig(epochs=10, milestones_for_epochs=None, lr_milestones=(4,)).scaled_milestones() == (4,)
    assert c.amp_dtype(torch.device("cpu")) is None and c.amp_dtype(torch.device("cuda")) == torch.bfloat16


# ------------------------------------------------------------------ files


def test_writes_config_metrics_and_checkpoints(tmp_path):
    obj, data = make()
    res = train(obj, data, cfg(), tmp_path / "run", extra_config={"semantic_table": "words7"})
    d = res.run_dir
    assert res.steps == 15  # 40 samples / batch 8 = 5 steps x 3 epochs
    conf = json.loads((d / "config.json").read_text())
    assert conf["train"]["batch_size"] == 8 and conf["extra"] == {"semantic_table": "words7"}
    assert conf["objective"] == "ToyObjective" and conf["dataset"]["len"] == 40
    recs = read_jsonl(d / "metrics.jsonl")
    steps = [r for r in recs if r.get("kind") == "step"]
    epochs = [r for r in recs if r.get("kind") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert {"loss", "ce", "aux", "lr", "samples_per_s", "elapsed", "global_step"} <= set(steps[0])
    assert all(np.isfinite(r["loss"]) for r in steps)
    # lr x0.1 from epoch 2 (0-based): the step records report the lr the step used
    assert epochs[1]["lr"] == pytest.approx(1e-2) and epochs[2]["lr"] == pytest.approx(1e-3)
    assert (d / "latest.pt").is_file() and (d / "epoch_0002.pt").is_file() and not (d / "epoch_0001.pt").exists()
    ck = load_checkpoint(d / "latest.pt")  # weights_only load must work
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (3, 0, 15)
    assert {"objective", "optimizer", "scheduler", "rng"} <= set(ck)
    assert {"dataset.generator", "objective.augment()"} <= set(ck["rng"][0]["generators"])
    for k, v in obj.state_dict().items():
        assert torch.equal(v, ck["objective"][k])
    info = read_run(d)
    assert info.latest == d / "latest.pt" and len(info.epochs) == 3 and info.checkpoints == [d / "epoch_0002.pt"]
    fresh, _ = make(seed=99)
    assert load_weights(fresh, d)["global_step"] == 15
    assert res.final["epoch"] == 3 and res.final["loss"] == epochs[-1]["loss"]


def test_run_dir_is_never_overwritten_silently(tmp_path):
    run = tmp_path / "run"
    obj, data = make()
    train(obj, data, cfg(epochs=1), run)
    obj2, data2 = make()
    with pytest.raises(RunDirExists, match=r"different run; .*overwrite=True.*Differences: train.epochs: 1 -> 2"):
        train(obj2, data2, cfg(epochs=2), run)
    with pytest.raises(RunDirExists, match="already holds this run; pass resume=True"):
        train(obj2, data2, cfg(epochs=1), run, resume=False)
    # the same finished run with resume=True: nothing to do, weights come from the checkpoint
    res = train(obj2, data2, cfg(epochs=1, progress=True, log_every=7), run)
    assert res.steps == 5 and all(torch.equal(a, b) for a, b in zip(obj.state_dict().values(),
                                                                     obj2.state_dict().values()))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunDirExists):
        train(*make(), cfg(epochs=1), foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    res = train(*make(), cfg(epochs=2), run, overwrite=True)
    assert res.steps == 10 and json.loads((run / "config.json").read_text())["train"]["epochs"] == 2
    assert len([r for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "epoch"]) == 2


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    obj, data = make(nan_at=6)  # epoch 1, step 1 (5 steps per epoch)
    with pytest.raises(NonFiniteLossError, match=r"term\(s\) loss, aux at epoch 1, step 1 of 5") as e:
        train(obj, data, cfg(log_every=1000), run)
    assert "last good checkpoint is kept" in str(e.value)
    ck = load_checkpoint(run / "latest.pt")
    assert ck["global_step"] == 6  # saved before the bad step; the save at step 9 was refused
    assert all(torch.isfinite(v).all() for v in ck["objective"].values())
    ev = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("event") == "nonfinite_loss"]
    assert len(ev) == 1 and ev[0]["epoch"] == 1 and ev[0]["step"] == 1 and ev[0]["terms"] == ["loss", "aux"]


def test_nonfinite_loss_found_at_first_log_step(tmp_path):
    obj, data = make(nan_at=0)
    with pytest.raises(NonFiniteLossError, match="epoch 0, step 0.*none was written yet"):
        train(obj, data, cfg(log_every=2), tmp_path / "run")
    assert not (tmp_path / "run" / "latest.pt").exists()
    # the same run again (the bug fixed): nothing to resume, so it starts over and keeps the event
    res = train(*make(), cfg(log_every=2), tmp_path / "run")
    recs = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert res.steps == 15 and recs[0]["event"] == "nonfinite_loss" and recs[1]["global_step"] == 2


# ------------------------------------------------------------------ resume


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    ref_obj, ref_data = make()
    ref = train(ref_obj, ref_data, cfg(), tmp_path / "ref")

    obj, data = make(interrupt_at=8)  # crash in epoch 1; latest.pt is from global step 6 (mid-epoch)
    with pytest.raises(Interrupt):
        train(obj, data, cfg(), tmp_path / "cut")
    ck = load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (1, 1, 6)
    np.random.seed(777)  # trash every RNG the run depends on: the checkpoint must restore them
    torch.manual_seed(777)
    obj2, data2 = make(seed=42)  # different initial weights: overwritten by the checkpoint
    res = train(obj2, data2, cfg(), tmp_path / "cut")
    assert res.steps == ref.steps
    for k, v in ref_obj.state_dict().items():
        torch.testing.assert_close(obj2.state_dict()[k], v, rtol=0, atol=1e-6)
    a = [(r["global_step"], r["loss"]) for r in read_jsonl(tmp_path / "ref" / "metrics.jsonl") if r.get("kind") == "step"]
    b = [(r["global_step"], r["loss"]) for r in read_jsonl(tmp_path / "cut" / "metrics.jsonl") if r.get("kind") == "step"]
    assert [s for s, _ in a] == [s for s, _ in b]  # records after the checkpoint were not duplicated
    np.testing.assert_allclose([x for _, x in b], [x for _, x in a], rtol=0, atol=1e-6)
    ea = [r["loss"] for r in read_jsonl(tmp_path / "ref" / "metrics.jsonl") if r.get("kind") == "epoch"]
    eb = [r["loss"] for r in read_jsonl(tmp_path / "cut" / "metrics.jsonl") if r.get("kind") == "epoch"]
    np.testing.assert_allclose(eb, ea, rtol=0, atol=1e-6)  # epoch means carried across the resume
    assert any(r.get("event") == "resumed" for r in read_jsonl(tmp_path / "cut" / "metrics.jsonl"))


def test_max_steps_stops_mid_epoch_and_checkpoints(tmp_path):
    obj, data = make()
    res = train(obj, data, cfg(max_steps=7), tmp_path / "run")
    assert res.steps == 7 and res.final["global_step"] == 7
    ck = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert (ck["epoch"], ck["step_in_epoch"]) == (1, 2)


def test_rejects_bad_objective_and_tiny_dataset(tmp_path):
    class NoLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, batch):
            return self.w.sum()

    with pytest.raises(TypeError, match="must return a dict with a scalar 'loss'"):
        train(NoLoss(), ToyData(), cfg(), tmp_path / "a")
    with pytest.raises(ValueError, match="smaller than one batch"):
        train(ToyObjective(), ToyData(n=4), cfg(), tmp_path / "b")


# ------------------------------------------------------------------ CLI


def test_cli_help_and_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "torchrun" in capsys.readouterr().out

    register_builder("toy", lambda n=40: (ToyObjective(), ToyData(n=n)))
    spec = {"builder": "toy", "builder_args": {"n": 24}, "run_dir": str(tmp_path / "cli"),
            "train": {"epochs": 2, "batch_size": 8, "progress": False, "device": "cpu"}}
    (tmp_path / "run.json").write_text(json.dumps(spec))
    assert main(["--config", str(tmp_path / "run.json"), "--set", "train.max_steps=4"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4
    assert read_run(tmp_path / "cli").config["extra"]["builder_args"] == {"n": 24}

    (tmp_path / "bad.json").write_text(json.dumps({**spec, "trian": {}}))
    assert main(["--config", str(tmp_path / "bad.json")]) == 2
    assert "unknown keys ['trian']" in capsys.readouterr().err


def test_bf16_autocast_and_linear_warmup_on_cpu(tmp_path):
    obj, data = make()
    res = train(obj, data, cfg(epochs=2, amp="bf16", warmup_epochs=1.0, log_every=1), tmp_path / "run")
    lrs = [r["lr"] for r in res.history if r.get("kind") == "step"]
    np.testing.assert_allclose(lrs[:6], [2e-3, 4e-3, 6e-3, 8e-3, 1e-2, 1e-2])  # 5 warmup steps, then lr
    assert all(np.isfinite(r["loss"]) for r in res.history if r.get("kind") == "step")
    with pytest.raises(ValueError, match="amp='fp16' needs CUDA"):
        train(*make(), cfg(amp="fp16"), tmp_path / "fp16")
    assert not (tmp_path / "fp16").exists()  # refused before the run folder was made
