"""PretrainSpec(lifter_init=...): a trained lifter for 2D-only data, stored with the run."""
import subprocess
import sys

import pytest
import torch

from hetskel.data.errors import DataError
from hetskel.experiment.pretrain import build_pretrainer, load_pretrained, pretrain
from hetskel.experiment.spec import PretrainSpec
from hetskel.hetero.lifter import Lifter, lifter_for
from hetskel.hetero.lifter_train import LifterConfig, save_lifter

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_2D = dict(dataset="synhet", num_samples=24, modalities="C,S", preset="tiny", epochs=1, batch_size=8,
               lifter_width=64, text_source="random", device="cpu", amp="off")


def _lifter(path, layout="coco17", width=32):
    torch.manual_seed(5)
    model, _ = lifter_for(layout, width=width)
    save_lifter(path, model, LifterConfig(layout_2d=layout, width=width))
    return model


def test_the_lifter_starts_from_the_checkpoint_and_the_run_reloads_without_it(tmp_path):
    ref = _lifter(tmp_path / "mine.pt")
    spec = PretrainSpec(**TINY_2D, lifter_init=str(tmp_path / "mine.pt"))
    lifted = build_pretrainer(spec).processor.lifters["C"]
    assert lifted.init_args["width"] == 32    # the checkpoint's architecture, not lifter_width
    for a, b in zip(lifted.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
    run = pretrain(spec, tmp_path / "run")
    (tmp_path / "mine.pt").unlink()           # the user's file is gone: the run kept a copy
    assert run.spec.lifter_init.startswith(str((tmp_path / "run" / "data").resolve()))
    code = (f"import hetskel; p, s = hetskel.load_pretrained({str(run.run_dir)!r}, device='cpu'); "
            "print(p.processor.lifters['C'].init_args['width'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("32")
    p, _ = load_pretrained(run.run_dir, device="cpu")
    assert p.processor.lifters["C"].init_args["width"] == 32


def test_a_lifter_of_other_joints_or_no_file_is_refused(tmp_path):
    torch.manual_seed(0)
    save_lifter(tmp_path / "wrong.pt", Lifter(in_joints=15, out_joints=15, width=8))
    with pytest.raises(DataError, match="maps 15 joints to 15"):
        build_pretrainer(PretrainSpec(**TINY_2D, lifter_init=str(tmp_path / "wrong.pt")))
    with pytest.raises(DataError, match="no such lifter checkpoint"):
        pretrain(PretrainSpec(**TINY_2D, lifter_init=str(tmp_path / "absent.pt")), tmp_path / "run")
    with pytest.raises(DataError, match="no modality lifts"):
        build_pretrainer(PretrainSpec(**{**TINY_2D, "modalities": "J"}, lifter_init=str(tmp_path / "wrong.pt")))
