"""The papermill batch runner: grids, seeds, failures recorded, nothing overwritten, summary right."""
import json
import subprocess
import sys

import nbformat
import pytest

from notebook_checks import write_toy_notebook
from hetskel.runs.grid import (
    GridResult,
    RunRecord,
    check_parameters,
    expand_grid,
    notebook_parameters,
    parse_value,
    run_grid,
)


@pytest.fixture
def toy_notebook(tmp_path):
    return write_toy_notebook(tmp_path / "toy.ipynb", "smoke = False\nrun_dir = ''\nseed = 0\nscale = 1.0\nbroken = False",
                              "import hetskel.io as hio\nrd = hio.make_run_dir(run_dir, 'toy')\n"
                              "assert not broken, 'deliberately broken parameter set'\n"
                              "hio.save_json(rd / 'metrics.json', {'score': scale * 10 + seed, 'nested': {'acc': scale}})")


def test_notebook_parameters_are_papermills_defaults_as_values(toy_notebook, tmp_path):
    assert notebook_parameters(toy_notebook) == {"smoke": False, "run_dir": "", "seed": 0, "scale": 1.0,
                                                 "broken": False}
    bare = tmp_path / "bare.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), bare)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        notebook_parameters(bare)


def test_parse_and_expand():
    assert parse_value("2") == 2 and parse_value("True") is True and parse_value("J,C") == "J,C"
    grid = expand_grid({"a": [1, 2], "b": ["x"]}, seeds=[0, 1], fixed={"smoke": True})
    assert len(grid) == 4 and grid[0] == {"smoke": True, "a": 1, "b": "x", "seed": 0}


def test_misspelled_parameter_is_a_clear_error(toy_notebook):
    assert set(notebook_parameters(toy_notebook)) == {"smoke", "run_dir", "seed", "scale", "broken"}
    with pytest.raises(ValueError, match="unknown parameter.*'scal'.*valid parameters"):
        check_parameters(toy_notebook, {"scal": 2})


def test_grid_with_a_broken_run_goes_on_and_summarises(toy_notebook, tmp_path):
    grid = expand_grid({"scale": [1.0, 2.0], "broken": [False, True]}, seeds=[0, 1])
    res = run_grid(toy_notebook, grid, out=tmp_path / "runs", batch="b1", echo=False)
    assert len(res.records) == 8
    assert sorted(r.status for r in res.records) == ["failed"] * 4 + ["ok"] * 4
    failed = res.failed[0]
    assert "deliberately broken" in failed.error
    assert json.loads((tmp_path / "runs" / failed.name / "run.json").read_text())["status"] == "failed"
    rows = {(r["scale"], r["broken"]): r for r in res.rows()}
    ok = rows[(2.0, False)]
    assert ok["runs_ok"] == 2 and ok["score_mean"] == pytest.approx(20.5) and ok["score_std"] == pytest.approx(0.7071, 1e-3)
    assert ok["nested.acc_mean"] == 2.0
    assert rows[(1.0, True)]["runs_failed"] == 2 and "score_mean" not in rows[(1.0, True)]
    md = (tmp_path / "runs" / "summary_b1.md").read_text()
    assert "20.5 +- 0.71" in md and "0/2" in md
    assert (tmp_path / "runs" / "summary_b1.csv").read_text().count("\n") == 5
    # the same batch again never overwrites: new folders get a suffix
    again = run_grid(toy_notebook, grid[:1], out=tmp_path / "runs", batch="b1", echo=False)
    assert again.records[0].run_dir.endswith("-2")
    assert (tmp_path / "runs" / res.records[0].name / "notebook.ipynb").exists()


def test_cli_help_and_bad_parameter(toy_notebook):
    out = subprocess.run([sys.executable, "-m", "hetskel.runs", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "grid" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "hetskel.runs", str(toy_notebook), "-p", "scal", "2"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "valid parameters" in bad.stderr and "Traceback" not in bad.stderr


def test_summary_rows_pool_seeds_only():
    recs = [RunRecord("a", {"m": "J", "seed": s}, "", "ok", metrics={"acc": a}) for s, a in [(0, 0.5), (1, 0.7)]]
    recs.append(RunRecord("b", {"m": "C", "seed": 0}, "", "ok", metrics={"acc": 0.9}))
    rows = GridResult(recs).rows()
    assert [r["m"] for r in rows] == ["J", "C"] and rows[0]["acc_mean"] == pytest.approx(0.6)


def test_warnings_in_reads_a_runs_warnings_without_their_location(tmp_path):
    from hetskel.runs.grid import warnings_in

    log = tmp_path / "run.log"
    log.write_text("text\n/tmp/ipykernel_1/2.py:1: RandomTextTableWarning: table is NOT CLIP's\n"
                   "  table = text_table(vocab)\nWARNING:root:No pretrained weights loaded\nplain line\n")
    assert warnings_in(log) == ["RandomTextTableWarning: table is NOT CLIP's",
                                "WARNING:root:No pretrained weights loaded"]
    assert warnings_in(tmp_path / "missing.log") == []
