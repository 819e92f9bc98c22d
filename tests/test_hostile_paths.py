"""Issue 14, findings 1-7 and 14-16: nothing the user owns is overwritten, every path the kit writes
follows one rule, `-p` values are checked, and every CLI user error is one short `error:` line."""
from __future__ import annotations

import errno
import io as _io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from notebook_checks import write_toy_notebook
from hetskel import io as hio
from hetskel.io import (
    KIT_MARKER,
    RunDirExists,
    check_replaceable,
    error_message,
    make_run_dir,
)
from hetskel.runs.grid import (
    SET_UNDER_SMOKE,
    GridResult,
    RunRecord,
    check_parameters,
    coerce_value,
    expand_grid,
    run_grid,
    smoke_overrides,
)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def cli(module, *args, **kw):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=180, cwd=ROOT, env=ENV, check=False, **kw)


def one_error_line(r, *needles):
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stdout + r.stderr
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert len(err) <= 320 and "\x1b" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def user_folder(tmp_path, name="mine"):
    d = tmp_path / name
    d.mkdir()
    (d / "notes.txt").write_text("precious")
    return d


def intact(d):
    assert (d / "notes.txt").read_text() == "precious"


@pytest.fixture
def toy_notebook(tmp_path):
    return write_toy_notebook(tmp_path / "toy.ipynb", "smoke = False\nrun_dir = ''\nseed = 0\nnum_samples = 2000\nscale = 1.0",
                              "import hetskel.io as hio\nif smoke:\n    num_samples = 100\n"
                              "rd = hio.make_run_dir(run_dir, 'toy')\n"
                              "hio.save_json(rd / 'metrics.json', {'num_samples': num_samples, 'score': scale})")


# ------------------------------------------------------------------ 1. batch names, --overwrite
def test_f1_batch_is_one_name_and_overwrite_never_deletes_a_users_folder(toy_notebook, tmp_path):
    for bad in ("../escape", "/abs/dir", "a/b", "..", ".", ""):
        with pytest.raises(ValueError, match="single folder name"):
            run_grid(toy_notebook, [{}], out=tmp_path / "runs", batch=bad, echo=False)
    assert not (tmp_path / "escape_default").exists() and not (tmp_path / "runs").exists()
    # a user's folder exactly where a run folder would go: --overwrite refuses it before anything runs
    (tmp_path / "runs").mkdir()
    mine = user_folder(tmp_path / "runs", "b_scale=2.0")
    with pytest.raises(RunDirExists, match="not made by hetskel"):
        run_grid(toy_notebook, [{"scale": 2.0}], out=tmp_path / "runs", batch="b", overwrite=True, echo=False)
    intact(mine)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["b_scale=2.0"]  # nothing ran
    r = cli("hetskel.runs", toy_notebook, "-p", "scale", "2.0", "--out", tmp_path / "runs", "--batch", "b",
            "--overwrite")
    one_error_line(r, "not made by hetskel", "b_scale=2.0")
    intact(mine)
    r = cli("hetskel.runs", toy_notebook, "--batch", str(tmp_path / "runs"), "--overwrite")
    one_error_line(r, "single folder name")
    intact(mine)
    # a folder hetskel made is what --overwrite replaces
    made = make_run_dir(tmp_path / "k", on_exists="number")
    (made / "old.txt").write_text("x")
    assert make_run_dir(made, overwrite=True, on_exists="number") == made and not (made / "old.txt").exists()
    with pytest.raises(ValueError, match="single folder name"):
        make_run_dir(None, name="../up")


def test_f1_every_overwrite_path_spares_a_users_folder(tmp_path):
    mine = user_folder(tmp_path)
    for on_exists in ("refuse", "number"):
        with pytest.raises(RunDirExists, match="not made by hetskel"):
            make_run_dir(mine, overwrite=True, on_exists=on_exists)
    with pytest.raises(RunDirExists):
        check_replaceable(mine)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(RunDirExists, match="symlink"):
        make_run_dir(link, overwrite=True, on_exists="number")
    from hetskel.train.state import _prepare_run_dir
    (mine / "config.json").write_text("{}")  # even with the training's own file names in it
    with pytest.raises(RunDirExists, match="not made by hetskel"):
        _prepare_run_dir(mine, {}, resume=True, overwrite=True, name="t")
    intact(mine)
    assert (mine / "config.json").read_text() == "{}"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert make_run_dir(empty, overwrite=True) == empty and (empty / KIT_MARKER).is_file()


# ------------------------------------------------------------------ 2. the text-table cache
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_f2_text_cache_never_replaces_a_file_it_did_not_write(tmp_path, monkeypatch):
    from hetskel.hetero import semantic

    monkeypatch.setattr(semantic, "_MEMORY", {})  # the fake table must not outlive this test
    monkeypatch.setattr(semantic, "_random_tower", lambda words, *a, **k: torch.eye(len(words), 8))
    semantic._MEMORY.clear()
    theirs = tmp_path / "table.pt"
    theirs.write_bytes(b"my own weights, not a cache")
    with pytest.raises(FileExistsError, match="not a hetskel text-table cache"):
        semantic.text_table(semantic.WORDS, source="random", cache_path=theirs)
    assert theirs.read_bytes() == b"my own weights, not a cache"
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)  # a real torch file, not a cache
    before = other.read_bytes()
    with pytest.raises(FileExistsError):
        semantic.text_table(semantic.WORDS, source="random", cache_path=other)
    assert other.read_bytes() == before
    mine = user_folder(tmp_path)
    with pytest.raises(FileExistsError):
        semantic.text_table(semantic.WORDS, source="random", cache_path=mine)
    intact(mine)
    # its own cache file is written, and rewritten, as before
    ok = tmp_path / "cache.pt"
    semantic.text_table(semantic.WORDS, source="random", cache_path=ok)
    assert semantic._is_cache_file(ok)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_f2_pretrain_spec_text_cache_reaches_the_same_rule(tmp_path, monkeypatch):
    from hetskel.experiment.spec import PretrainSpec
    from hetskel.hetero import semantic

    theirs = tmp_path / "t.pt"
    theirs.write_text("user text")
    spec = PretrainSpec(text_cache=str(theirs), text_source="random")
    monkeypatch.setattr(semantic, "_MEMORY", {})  # the fake table must not outlive this test
    monkeypatch.setattr(semantic, "_random_tower", lambda words, *a, **k: torch.eye(len(words), 8))
    semantic._MEMORY.clear()
    from hetskel.experiment.pretrain import build_pretrainer
    with pytest.raises(FileExistsError, match="not a hetskel text-table cache"):
        build_pretrainer(spec)
    assert theirs.read_text() == "user text"


# ------------------------------------------------------------------ 3. output = input; 14. OUT checked first
def _skeleton_src(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "S001C001P001R001A001.skeleton").write_text("1\n0\n")  # would parse as bad/empty: never reached
    (src / "S001C001P001R001A002.skeleton").write_text("garbage\n")
    return src


def test_f3_convert_ntu_refuses_its_own_input_and_an_existing_output(tmp_path):
    src = _skeleton_src(tmp_path)
    target = src / "S001C001P001R001A001.skeleton"
    r = cli("hetskel.data", "convert-ntu", src, target, "--no-progress", "--overwrite")
    one_error_line(r, "one of the inputs")
    assert target.read_text() == "1\n0\n"
    lst = tmp_path / "skip.txt"
    lst.write_text("S001C001P001R001A009\n")
    r = cli("hetskel.data", "convert-ntu", src, lst, "--missing-list", lst, "--no-progress", "--overwrite")
    one_error_line(r, "one of the inputs")
    existing = tmp_path / "old.pkl"
    existing.write_bytes(b"user data")
    r = cli("hetskel.data", "convert-ntu", src, existing, "--no-progress")
    one_error_line(r, "already exists", "--overwrite")
    assert existing.read_bytes() == b"user data"


def test_f14_convert_ntu_checks_out_before_parsing_and_synth_checks_its_folder(tmp_path):
    src = _skeleton_src(tmp_path)  # its files are bad: reaching the parser would give exit 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    mine = user_folder(tmp_path)
    for out, needle in ((mine, "is a folder"), (afile / "o.pkl", "is a file, not a folder"),
                        ("", "output path is empty"), ("/", "is a folder")):
        one_error_line(cli("hetskel.data", "convert-ntu", src, out, "--no-progress"), needle)
    intact(mine)
    one_error_line(cli("hetskel.data", "synth", afile, "--num", "2", "--seed", "0"), "is a file")
    one_error_line(cli("hetskel.data", "synth", afile / "sub", "--num", "2", "--seed", "0"), "is a file")
    one_error_line(cli("hetskel.data", "synth", "", "--num", "2", "--seed", "0"), "empty")
    (mine / "synhet_3d.pkl").write_text("mine too")
    one_error_line(cli("hetskel.data", "synth", mine, "--num", "2", "--seed", "0"), "already exists")
    assert (mine / "synhet_3d.pkl").read_text() == "mine too"
    intact(mine)


# ------------------------------------------------------------------ 4. summaries
def test_f4_a_reused_batch_name_never_replaces_its_summary(tmp_path):
    res = GridResult([RunRecord("a", {"m": 1, "seed": 0}, "", "ok", metrics={"acc": 0.5})])
    first = res.write(tmp_path / "summary_b")
    before = [p.read_text() for p in first]
    other = GridResult([RunRecord("a", {"m": 2, "seed": 0}, "", "ok", metrics={"acc": 0.9})])
    second = other.write(tmp_path / "summary_b")
    assert [p.name for p in second] == ["summary_b-2.csv", "summary_b-2.md"]
    assert [p.read_text() for p in first] == before
    (tmp_path / "summary_c.md").write_text("a user's notes")  # either file taken: both move on
    assert other.write(tmp_path / "summary_c")[0].name == "summary_c-2.csv"
    assert (tmp_path / "summary_c.md").read_text() == "a user's notes"


# ------------------------------------------------------------------ 5. typed parameters
def test_f5_parameters_are_read_as_their_defaults_type(toy_notebook):
    assert coerce_value("smoke", "false", False) is False and coerce_value("smoke", "False", True) is False
    assert coerce_value("smoke", "TRUE", False) is True and coerce_value("smoke", True, False) is True
    assert coerce_value("epochs", "10", 1) == 10 and coerce_value("lr", "1e-3", 0.5) == 1e-3
    assert coerce_value("lr", 2, 0.5) == 2.0 and isinstance(coerce_value("lr", 2, 0.5), float)
    assert coerce_value("modalities", "J,C", "J") == "J,C" and coerce_value("devices", "2", "auto") == 2
    assert coerce_value("seeds", "[0, 1]", [0]) == [0, 1] and coerce_value("x", "[1, 2]", None) == [1, 2]
    for name, value, default in (("epochs", "ten", 1), ("epochs", "2.5", 1), ("epochs", True, 1),
                                 ("smoke", "maybe", False), ("smoke", "", False), ("lr", "fast", 0.1),
                                 ("seeds", "0", [0]), ("smoke", 1, False)):
        with pytest.raises(ValueError, match=f"parameter '{name}' expects"):
            coerce_value(name, value, default)
    assert check_parameters(toy_notebook, {"smoke": "false", "num_samples": "200"}) == {"smoke": False,
                                                                                         "num_samples": 200}
    with pytest.raises(ValueError, match="run_dir is set by the runner"):
        check_parameters(toy_notebook, {"run_dir": "x"})
    r = cli("hetskel.runs", toy_notebook, "-p", "num_samples", "ten")
    one_error_line(r, "'num_samples' expects an integer", "'ten'")


# ------------------------------------------------------------------ 6. smoke overrides a swept parameter
def test_f6_readme_example_is_warned_about(toy_notebook, tmp_path):
    assert "num_samples" in smoke_overrides(ROOT / "notebooks" / "00_data_tour.ipynb")
    assert "-p smoke True -p num_samples 200" not in (ROOT / "README.md").read_text()
    grid = expand_grid({"smoke": ["True"], "num_samples": ["200", "400"]})
    res = run_grid(toy_notebook, grid, out=tmp_path / "runs", batch="b", echo=False)
    assert [r.status for r in res.records] == ["ok", "ok"]
    assert res.warnings and "num_samples" in res.warnings[0] and "smoke" in res.warnings[0]
    rows = res.rows()
    assert [r["num_samples"] for r in rows] == [200, 400]
    assert all("num_samples=" in r["overridden"] for r in rows)
    assert all(r.overridden["num_samples"] in (100, SET_UNDER_SMOKE) for r in res.records)
    md = (tmp_path / "runs" / "summary_b.md").read_text()
    assert md.startswith("WARNING:") and "overridden" in md
    # without smoke the swept values are used: no warning, no column
    clean = run_grid(toy_notebook, expand_grid({"num_samples": [200, 400]}), out=tmp_path / "runs", batch="c",
                     echo=False)
    assert not clean.warnings and all("overridden" not in r for r in clean.rows())


# ------------------------------------------------------------------ 7. empty axes
def test_f7_an_empty_grid_axis_is_an_error(toy_notebook, tmp_path):
    with pytest.raises(ValueError, match="grid axis 'scale' has no values"):
        expand_grid({"scale": [], "seed": [1]})
    with pytest.raises(ValueError, match="seeds is an empty list"):
        expand_grid({"scale": [1.0]}, seeds=[])
    (tmp_path / "g.yaml").write_text("parameters: {scale: []}\n")
    one_error_line(cli("hetskel.runs", toy_notebook, "--grid", tmp_path / "g.yaml", "--out", tmp_path / "r"),
                   "has no values")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ 15. disk full, read-only, torn temporaries
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_f15_disk_full_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    from hetskel.data import pyskl
    from hetskel.data.__main__ import main as data_main

    monkeypatch.setattr(pyskl.pickle, "dump", _enospc)
    out = tmp_path / "syn"
    assert data_main(["synth", str(out), "--num", "2", "--seed", "0", "--frames", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no space left on device" in err and len(err.splitlines()) == 1
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    monkeypatch.undo()
    # checkpoints (latest.pt of a pretraining): the atomic write removes its temporary on failure
    monkeypatch.setattr(hio.os, "fsync", _enospc)
    with pytest.raises(OSError):
        hio.save_checkpoint(tmp_path / "run" / "latest.pt", {"w": torch.zeros(2)})
    assert list((tmp_path / "run").iterdir()) == []
    monkeypatch.undo()
    # the batch runner and the training CLI: one line, no traceback
    import hetskel.runs.grid as grid
    monkeypatch.setattr(grid, "run_grid", lambda *a, **k: _enospc())
    assert grid.main(["nb.ipynb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no space left" in err and len(err.splitlines()) == 1
    monkeypatch.setattr(grid, "run_grid", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied", "/ro/runs")))
    assert grid.main(["nb.ipynb"]) == 2
    assert capsys.readouterr().err.strip() == "error: /ro/runs: permission denied"


def test_f15_error_text_is_short_and_escaped():
    msg = error_message(ValueError("frame_dir \x1b[31mred\x1b[0m\n" + "x" * 5_000_000))
    assert "\x1b" not in msg and "\n" not in msg and len(msg) <= 300 and msg.endswith("...")
    assert "\\x1b[31mred" in msg


# ------------------------------------------------------------------ 16. broken pipe
def test_f16_info_into_a_closed_pipe_is_one_line(tmp_path):
    from hetskel.data.synhet import save_synhet

    pkl = save_synhet(tmp_path / "s", num_samples=4, seed=0, num_frames=8)["3d"]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`head`) is gone before anything is written
    try:
        r = subprocess.run([sys.executable, "-m", "hetskel.data", "info", str(pkl)], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT, env=ENV, check=False)
    finally:
        os.close(write_end)
    err = r.stderr.strip()
    assert r.returncode == 2 and "Traceback" not in err and "Exception ignored" not in err, err
    assert err.startswith("error: ") and "broken pipe" in err and len(err.splitlines()) == 1


def test_f16_broken_pipe_in_process(capsys, monkeypatch, tmp_path):
    from hetskel.data.__main__ import main as data_main
    from hetskel.data.synhet import save_synhet

    pkl = save_synhet(tmp_path / "s", num_samples=4, seed=0, num_frames=8)["3d"]

    class Closed(_io.StringIO):
        def write(self, s):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert data_main(["info", str(pkl)]) == 2
    assert "broken pipe" in capsys.readouterr().err


# ------------------------------------------------------------------ the rule, across every command
def test_a_users_folder_survives_every_command_pointed_at_it(toy_notebook, tmp_path):
    mine = user_folder(tmp_path)
    src = _skeleton_src(tmp_path)
    cmds = [
        ("hetskel.data", "convert-ntu", src, mine, "--no-progress", "--overwrite"),
        ("hetskel.data", "synth", mine / "notes.txt", "--num", "2", "--seed", "0", "--overwrite"),
        ("hetskel.runs", toy_notebook, "--out", mine / "notes.txt"),
        ("hetskel.runs", toy_notebook, "--out", mine, "--batch", "../mine", "--overwrite"),
        ("hetskel.runs.demo", "--only", "99", "--out", mine / "notes.txt"),
    ]
    for cmd in cmds:
        r = cli(*cmd)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (cmd, r.stderr[-2000:])
        intact(mine)
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"], cmd
    # pointed at as the folder for new runs: new folders inside, nothing of the user's replaced
    res = run_grid(toy_notebook, [{"scale": 2.0}], out=mine, batch="b", echo=False)
    assert res.records[0].status == "ok"
    intact(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["b_scale=2.0", "notes.txt", "summary_b.csv", "summary_b.md"]
