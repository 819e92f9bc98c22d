"""One config check (``hetskel.config``, nested configs and ``Overrides`` included), one run-folder
maker (``hetskel.io.make_run_dir``) and one loss-curve figure (``hetskel.viz.curves``)."""
from __future__ import annotations

import copy
import json
import pickle

import pytest

from hetskel.config import ConfigTypeError, ConfigValueError, Overrides, to_plain
from hetskel.io import KIT_MARKER, RUNNER_FILES, RunDirExists, make_run_dir
from hetskel.model.augment import AugmentConfig
from hetskel.model.encoder import EncoderConfig


# --------------------------------------------------------------------------- make_run_dir
def test_run_dir_refuse_rule(tmp_path):
    d = make_run_dir(tmp_path / "a")
    assert d.is_dir()
    assert make_run_dir(d) == d                        # still empty: fresh
    (d / sorted(RUNNER_FILES)[0]).write_text("{}")
    assert make_run_dir(d) == d                        # only the runner's files: still fresh
    (d / "metrics.json").write_text("{}")
    with pytest.raises(RunDirExists, match="already exists and is not empty"):
        make_run_dir(d)
    assert make_run_dir(d, overwrite=True) == d and (d / "metrics.json").is_file()  # reused, nothing deleted


def test_run_dir_number_rule(tmp_path):
    base = tmp_path / "b"
    first = make_run_dir(base, on_exists="number")
    second = make_run_dir(base, on_exists="number")    # an existing folder, even an empty one, is taken
    third = make_run_dir(base, on_exists="number")
    assert (first, second, third) == (base, tmp_path / "b-2", tmp_path / "b-3")
    (base / "old.txt").write_text("x")
    again = make_run_dir(base, overwrite=True, on_exists="number")   # asked: replaced afresh
    assert again == base and [p.name for p in base.iterdir()] == [KIT_MARKER]  # afresh: only hetskel's marker


def test_run_dir_check_rule_and_new_folders(tmp_path, monkeypatch):
    p = tmp_path / "c"
    assert make_run_dir(p, on_exists="check") == p and not p.exists()   # left to the caller's check
    monkeypatch.setenv("HETSKEL_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    a, b = make_run_dir(None, "x"), make_run_dir("", "x", on_exists="check")
    assert a != b and a.is_dir() and b.is_dir() and a.parent == b.parent == tmp_path / "runs" / "x"
    assert make_run_dir("rel", on_exists="check") == tmp_path / "rel"
    with pytest.raises(ValueError, match="on_exists must be one of"):
        make_run_dir(p, on_exists="replace")


# --------------------------------------------------------------------------- Overrides
def test_overrides_are_typed_plain_and_picklable():
    over = Overrides[EncoderConfig]({"proj_dims": [16, 8], "dropout": 0})
    assert over == {"proj_dims": (16, 8), "dropout": 0.0} and to_plain(over) == {"proj_dims": [16, 8], "dropout": 0.0}
    assert copy.deepcopy(over) == over and pickle.loads(pickle.dumps(over)) == over
    assert Overrides[AugmentConfig]({"p_zero": 0.1}).build().p_zero == 0.1
    with pytest.raises(ConfigTypeError, match=r"'proj_dims\[1\]' expects int, got float 2.5"):
        Overrides[EncoderConfig]({"proj_dims": [16, 2.5]})
    with pytest.raises(ConfigValueError, match=r"unknown EncoderConfig key\(s\) \['widht'\]; valid keys: d_model"):
        Overrides[EncoderConfig]({"widht": 3})


# --------------------------------------------------------------------------- PretrainSpec
def test_spec_nested_fields_are_checked_on_creation_and_stay_plain():
    from hetskel.experiment.spec import PretrainSpec

    with pytest.raises(ConfigValueError, match=r"PretrainSpec field 'encoder' has unknown EncoderConfig key\(s\) \['d_modle'\]"):
        PretrainSpec(encoder={"d_modle": 8})
    with pytest.raises(ConfigTypeError, match=r"PretrainSpec field 'augment.p_zero' expects float, got str"):
        PretrainSpec.from_dict({"augment": {"p_zero": "x"}})
    with pytest.raises(ConfigValueError, match=r"'synhet' has unknown SynHetConfig key\(s\) \['noise3d'\]"):
        PretrainSpec.from_dict({"synhet": {"noise3d": 0.1}})
    with pytest.raises(ConfigValueError, match=r"'synhet' repeats \['seed'\]"):
        PretrainSpec.from_dict({"synhet": {"seed": 3}})
    with pytest.raises(ConfigTypeError, match="'splits' expects"):
        PretrainSpec(splits="train")
    d = {"encoder": {"proj_dims": [16, 16]}, "augment": {"corrupt_fraction": 0.2}, "splits": ["a", "b"],
         "synhet": {"noise_3d": 0.0}, "train": {"grad_clip": 1.0}}
    s = PretrainSpec.from_dict(d)
    assert s.augment_config().corrupt_fraction == 0.2 and s.synhet_config().noise_3d == 0.0
    out = s.to_dict()
    assert {k: out[k] for k in d} == d and json.loads(json.dumps(out)) == out   # as written, plain JSON
    assert PretrainSpec.from_dict(out) == s


# --------------------------------------------------------------------------- ProcessorConfig
def test_processor_config_is_checked_and_equivalent_to_keywords():
    import torch

    from hetskel.hetero.pipeline import HeteroProcessor, ProcessorConfig

    cfg = ProcessorConfig(sources={"J": "ntu25", "C": "coco17"}, semantic="numeric", lifter_width=8,
                          semantic_config={"threshold": 0.02})
    a = HeteroProcessor(config=cfg)
    b = HeteroProcessor({"J": "ntu25", "C": "coco17"}, semantic="numeric", lifter_width=8,
                        semantic_config={"threshold": 0.02})
    assert a.config == b.config and a.semantic.config.threshold == 0.02
    assert HeteroProcessor(config={"semantic": None, "lifter_width": 8}, use_lifter=False).config.use_lifter is False
    with pytest.raises(ConfigTypeError, match="ProcessorConfig field 'lifter_width' expects int, got str"):
        HeteroProcessor(semantic=None, lifter_width="8")
    with pytest.raises(ConfigTypeError, match="'semantic_config.threshold' expects float"):
        ProcessorConfig(semantic_config={"threshold": "x"})
    with pytest.raises(ValueError, match=r"unknown HeteroProcessor option key\(s\) \['lifter_widht'\]"):
        HeteroProcessor(semantic=None, lifter_widht=8)
    with pytest.raises(ValueError, match="prompt_mode must be one of"):
        ProcessorConfig(prompt_mode="learned")
    with pytest.raises(ValueError, match="image_to_pose must be a 2x3 matrix"):
        HeteroProcessor(semantic=None, image_to_pose=torch.eye(3).tolist())


# --------------------------------------------------------------------------- loss curves
def test_loss_figure_panels_curves_and_extra_axes():
    from matplotlib.figure import Figure

    from hetskel.viz.curves import Curve, Panel, loss_figure

    fig = loss_figure([Panel([Curve([3.0, 2.0, 1.0], label="train"), Curve([2.5], level=True, style="--")],
                             logy=True, title="loss"),
                       Panel([Curve([1.0, 2.0, 3.0, 4.0], x=[0, 1, 2, 3], smooth=2, style="o")])], extra_axes=1)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    a, b, _ = fig.axes
    assert a.get_yscale() == "log" and a.get_title() == "loss" and a.get_legend() is not None
    assert len(b.lines) == 2 and list(b.lines[1].get_ydata()) == [1.5, 2.5, 3.5]   # raw + running mean
    with pytest.raises(ValueError, match="at least one panel"):
        loss_figure([])
