"""Interrupted and failing runs of the REAL pretraining objective (``Pretrainer`` around
``HeteroProcessor`` J+C+S, ``tiny`` encoder, lifter, prompts, word table of S), built by
``hetskel.experiment.pretrain:build_from_spec`` from a tiny SynHet draw, on the CPU.

- ``python -m hetskel.train --config run.json`` killed with SIGKILL mid-epoch after a checkpoint,
  then resumed, ends with the weights of an uninterrupted run (atol 1e-6), the same loss curve, and
  no temporary file behind;
- killed in the middle of WRITING a checkpoint: ``latest.pt`` is still the previous, whole
  checkpoint (loads with ``weights_only=True``), and the resumed run again ends exactly like the
  uninterrupted one;
- a different run in the same run folder is refused (nothing overwritten) unless asked;
- a NaN keypoint in the loaded data, or an absurd learning rate, stops the run with a message naming
  epoch/step/term, keeps the last good checkpoint and records ``{"event": "nonfinite_loss"}``.

How the child process is stopped at a known point: a ``sitecustomize.py`` written to a temporary
folder on the child's PYTHONPATH patches, only when ``HETSKEL_TEST_HANG`` is set, either
``ArrayDataset.get_batch`` (hang at the k-th batch) or ``hetskel.io._atomic_write_bytes`` (write
half of the k-th checkpoint's temporary file, then hang). The test waits for a marker file and
sends SIGKILL. The run itself is the unmodified CLI with the unmodified builder.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from kill_helpers import sigkill_when_ready

from hetskel.experiment.pretrain import build_from_spec, run_description
from hetskel.experiment.spec import PretrainSpec
from hetskel.io import read_jsonl
from hetskel.train.dist import epoch_shard
from hetskel.train.fit import NonFiniteLossError
from hetskel.train.loop import main, train

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH, EPOCHS = 3, 2          # 27 x-sub training clips of 60 SynHet samples / batch 8

HOOK = '''
import os, time
from pathlib import Path
_mode, _at, _ready = os.environ.get("HETSKEL_TEST_HANG", ""), int(os.environ.get("HETSKEL_TEST_AT", "-1")), \\
    os.environ.get("HETSKEL_TEST_READY", "")
if _mode == "batch":
    from hetskel.data.batches import ArrayDataset
    _orig, _calls = ArrayDataset.get_batch, [0]
    def get_batch(self, idx):
        if _calls[0] == _at:
            Path(_ready).write_text(str(_calls[0]))
            time.sleep(600)
        _calls[0] += 1
        return _orig(self, idx)
    ArrayDataset.get_batch = get_batch
elif _mode == "save":
    import hetskel.io as _io
    _orig, _calls = _io._atomic_write_bytes, [0]
    def _atomic_write_bytes(path, data):
        path = Path(path)
        if path.suffix == ".pt":
            if _calls[0] == _at:  # die half way through the temporary file, as a power cut would
                tmp = path.with_name(path.name + f".tmp{os.getpid()}")
                with open(tmp, "wb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                Path(_ready).write_text(str(_calls[0]))
                time.sleep(600)
            _calls[0] += 1
        return _orig(path, data)
    _io._atomic_write_bytes = _atomic_write_bytes
'''


def make_spec(tmp: Path, **over) -> dict:
    """A PretrainSpec dict: J+C+S on SynHet with the lifter, a fixed user word table (no text tower,
    no cache file) and a deliberately small encoder so that a step takes a fraction of a second."""
    table = tmp / "words.npy"
    if not table.exists():
        np.save(table, np.random.default_rng(0).normal(size=(7, 16)).astype(np.float32))
    spec = {"dataset": "synhet", "num_samples": 60, "data_seed": 1, "modalities": "J,C,S", "preset": "tiny",
            "num_frames": 12, "encoder": {"d_model": 32, "ff_dim": 32, "proj_dims": [32, 32]}, "lifter_width": 16,
            "text_table": str(table), "text_cache": "", "epochs": EPOCHS, "batch_size": 8, "lr": 1e-3, "seed": 3,
            "device": "cpu", "amp": "off", "save_every": 0,
            "train": {"checkpoint_every_steps": 2, "log_every": 1, "deterministic": True,
                      "milestones_for_epochs": None, "lr_milestones": [1]}}
    spec.update(over)
    return spec


def write_config(tmp: Path, run_dir: Path, name="run.json", **over) -> Path:
    spec = PretrainSpec.from_dict(make_spec(tmp, **over))
    desc = run_description(spec, run_dir, semantic_table="user")
    path = tmp / name
    path.write_text(json.dumps(desc))
    return path


def run_main(argv) -> int:
    """``hetskel.train.main`` in this process, single-threaded like the child (bitwise-equal sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def kill_at(tmp: Path, config: Path, mode: str, at: int) -> None:
    """Run the CLI in a child process, hang it at the ``at``-th batch/checkpoint write, SIGKILL it."""
    hook = tmp / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    ready = tmp / f"ready_{mode}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HETSKEL_TEST_HANG": mode, "HETSKEL_TEST_AT": str(at), "HETSKEL_TEST_READY": str(ready),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    sigkill_when_ready([sys.executable, "-m", "hetskel.train", "--config", str(config)], env, ROOT, ready)


def weights_only(path: Path) -> dict:
    """Load exactly as the kit must: plain ``torch.load(weights_only=True)`` (no custom classes)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def steps(run: Path) -> list[tuple[int, float]]:
    return [(r["global_step"], r["loss"]) for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "step"]


def assert_same(a, b, name: str) -> None:
    """Float tensors within 1e-6; everything else (counters, the augmentation generator's state in
    the objective's extra state) exactly."""
    if isinstance(b, dict):
        assert a.keys() == b.keys(), name
        for k in b:
            assert_same(a[k], b[k], f"{name}.{k}")
    elif torch.is_tensor(b) and b.is_floating_point():
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    elif torch.is_tensor(b):
        assert torch.equal(a, b), name
    else:
        assert a == b, name


def assert_same_run(run: Path, ref: Path) -> None:
    got, want = weights_only(run / "latest.pt"), weights_only(ref / "latest.pt")
    assert got["global_step"] == want["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert got["objective"].keys() == want["objective"].keys()
    for k, v in want["objective"].items():
        assert_same(got["objective"][k], v, k)
    a, b = steps(run), steps(ref)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))
    np.testing.assert_allclose([x for _, x in a], [x for _, x in b], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("interrupt")


@pytest.fixture(scope="module")
def reference(work):
    """The uninterrupted run."""
    ref = work / "ref"
    assert run_main(["--config", str(write_config(work, ref, "ref.json"))]) == 0
    ck = weights_only(ref / "latest.pt")
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (EPOCHS, 0, STEPS_PER_EPOCH * EPOCHS)
    assert all(np.isfinite(x) for _, x in steps(ref))
    return ref


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(work, reference):
    run = work / "cut"
    config = write_config(work, run, "cut.json")
    # batches 0..2 are epoch 0; latest.pt is refreshed at global step 2 (mid-epoch), 3 (epoch end) and
    # 4 (epoch 1, step 1); the child hangs fetching batch 4, i.e. mid-epoch 1 after that checkpoint
    kill_at(work, config, "batch", at=4)
    ck = weights_only(run / "latest.pt")
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (1, 1, 4)
    assert all(torch.isfinite(v).all() for v in ck["objective"].values() if torch.is_tensor(v) and v.is_floating_point())
    assert not list(run.glob("*.tmp*")), "a temporary file was left behind by a kill outside a save"
    assert max(s for s, _ in steps(run)) == 4
    assert run_main(["--config", str(config)]) == 0              # same command again: resumes
    events = [r for r in read_jsonl(run / "metrics.jsonl") if "event" in r]
    assert [e["event"] for e in events] == ["resumed", "done"] and events[0]["global_step"] == 4
    assert_same_run(run, reference)
    assert not list(run.glob("*.tmp*"))


@pytest.fixture(scope="module")
def killed_while_saving(work):
    run = work / "torn"
    config = write_config(work, run, "torn.json")
    # .pt writes: global step 2 (#0), epoch end 3 (#1), step 4 (#2: torn half way)
    kill_at(work, config, "save", at=2)
    return run, config


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(killed_while_saving, reference):
    run, config = killed_while_saving
    torn = list(run.glob("latest.pt.tmp*"))
    assert len(torn) == 1, "the kill should have happened half way through writing the temporary file"
    with pytest.raises(RuntimeError):                            # torch: "failed finding central directory"
        weights_only(torn[0])                                    # the torn file is garbage ...
    ck = weights_only(run / "latest.pt")                         # ... but latest.pt is whole
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (1, 0, 3)
    assert run_main(["--config", str(config)]) == 0
    assert_same_run(run, reference)


def test_resume_removes_torn_temporary_files(killed_while_saving, reference):
    run, _ = killed_while_saving
    assert (run / "latest.pt").is_file() and weights_only(run / "latest.pt")["global_step"] == 6  # resumed above
    assert not list(run.glob("*.tmp*"))


def test_only_the_kits_own_temporary_files_are_removed(tmp_path):
    from hetskel.train.state import remove_torn_temporaries

    torn = ["latest.pt.tmp123", "epoch_0003.pt.tmp9", "config.json.tmp77", "metrics.jsonl.tmp5"]
    kept = ["notes.tmp1", "latest.pt.tmpX", "latest.pt.tmp", "mine.pt.tmp12", "latest.pt", "epoch_x.pt.tmp3"]
    for name in torn + kept:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "latest.pt.tmp4").mkdir()                         # a folder is never removed
    assert sorted(p.name for p in remove_torn_temporaries(tmp_path)) == sorted(torn)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["latest.pt.tmp4"])


def test_a_different_run_in_the_same_folder_is_refused(work, reference, capsys):
    before = (reference / "latest.pt").read_bytes(), (reference / "metrics.jsonl").read_text()
    other = write_config(work, reference, "other.json", seed=4)     # another seed: another run
    assert run_main(["--config", str(other)]) == 2               # a user error: exit 2
    err = capsys.readouterr().err
    assert err.startswith("hetskel.train: error: run folder") and "holds a different run" in err
    assert "overwrite" in err and "Traceback" not in err
    same = work / "ref.json"
    assert run_main(["--config", str(same), "--no-resume"]) == 2
    assert "already holds this run" in capsys.readouterr().err
    assert ((reference / "latest.pt").read_bytes(), (reference / "metrics.jsonl").read_text()) == before
    assert run_main(["--config", str(same)]) == 0                  # same run, finished: nothing to do
    assert (reference / "latest.pt").read_bytes() == before[0]


# ============================================================================ numerical failure
def _bad_step_sample(n: int, spec: dict, global_step: int) -> int:
    """A sample drawn in optimizer step ``global_step`` (0-based) of the trainer's epoch order."""
    ep, st = divmod(global_step, STEPS_PER_EPOCH)
    b = spec["batch_size"]
    return int(epoch_shard(n, ep, spec["seed"])[st * b:(st + 1) * b][0])


def _check_stopped(run: Path, err: str, bad_global_step: int) -> None:
    ep, st = divmod(bad_global_step, STEPS_PER_EPOCH)
    assert f"at epoch {ep}, step {st} of {STEPS_PER_EPOCH}" in err and "non-finite loss in term(s) loss" in err
    assert f"the last good checkpoint is kept: {run / 'latest.pt'}" in err
    ev = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("event") == "nonfinite_loss"]
    assert len(ev) == 1 and (ev[0]["epoch"], ev[0]["step"], ev[0]["global_step"]) == (ep, st, bad_global_step + 1)
    assert "loss" in ev[0]["terms"]
    ck = weights_only(run / "latest.pt")                          # the step before the bad one
    assert ck["global_step"] == bad_global_step
    assert all(torch.isfinite(v).all() for v in ck["objective"].values() if torch.is_tensor(v) and v.is_floating_point())
    assert all(np.isfinite(r["loss"]) for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "step")
    assert not list(run.glob("*.tmp*"))


def test_nan_keypoint_in_the_loaded_data_stops_the_run(work):
    spec = make_spec(work, train={"checkpoint_every_steps": 1, "log_every": 1, "deterministic": True})
    obj, ds = build_from_spec(spec)
    assert len(ds) // spec["batch_size"] == STEPS_PER_EPOCH
    # epoch 0, step 2: its samples appear in no earlier step (they would poison that one instead)
    bad = 2
    s = _bad_step_sample(len(ds), spec, bad)
    ds.x["ntu25"][s, 0, 5, 0, 0] = float("nan")                   # one coordinate of one joint of one frame
    run = work / "nan_data"
    cfg = PretrainSpec.from_dict(spec).train_config()
    with pytest.raises(NonFiniteLossError) as e:
        train(obj, ds, cfg, run_dir=run)
    _check_stopped(run, str(e.value), bad)


def test_absurd_learning_rate_stops_the_cli_run(work, capsys):
    run = work / "huge_lr"
    config = write_config(work, run, "huge_lr.json", lr=1e30,
                          train={"checkpoint_every_steps": 1, "log_every": 1, "deterministic": True})
    assert run_main(["--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hetskel.train: error: non-finite loss") and len(err.strip().splitlines()) == 1
    bad = next(r["global_step"] for r in read_jsonl(run / "metrics.jsonl") if r.get("event") == "nonfinite_loss") - 1
    assert bad >= 1                                               # the first step (lr not yet used) was fine
    _check_stopped(run, err, bad)
