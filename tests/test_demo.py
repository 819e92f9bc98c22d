"""The demo's per-notebook parameters are real parameters of those notebooks (a typo would be ignored by papermill)."""
from pathlib import Path

import pytest

from hetskel.runs.demo import DEMO_PARAMS, LINKS, _params_for, results_table
from hetskel.runs.grid import RunRecord, notebook_parameters

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", sorted(DEMO_PARAMS))
def test_demo_parameters_exist_in_the_notebook(name):
    nb = NOTEBOOKS / f"{name}.ipynb"
    assert nb.is_file(), f"demo lists {name} but {nb} does not exist"
    valid = notebook_parameters(nb)
    assert set(DEMO_PARAMS[name]) <= set(valid)
    assert _params_for(nb, smoke=True) == {"smoke": True}
    if name in LINKS:
        assert LINKS[name][0] in valid


def test_every_numbered_notebook_is_in_the_demo():
    assert {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")} == set(DEMO_PARAMS)


def test_results_table_lists_status_and_metrics():
    table = results_table([RunRecord("04_pretrain", {}, "", "ok", wall_s=12.3, metrics={"loss": 1.5}),
                           RunRecord("05_evaluate", {}, "", "failed", error="boom")], 20.0)
    assert "| 04_pretrain | ok | 12 | loss=1.5 |" in table and "| 05_evaluate | failed |" in table


def test_results_table_leaves_out_demo_size_semi_supervised_numbers():
    metrics = {"linear_top1": 70.0, "linear_top1_random_init": 65.0, "semi_1pct_mean": 15.9, "semi_10pct_mean": 16.6}
    table = results_table([RunRecord("05_evaluate", {}, "", "ok", wall_s=5.0, metrics=metrics)], 5.0)
    assert "linear_top1=70" in table and "semi_1pct" not in table.split("\n\n")[0]
    assert "semi-supervised results" in table
    assert "semi-supervised" not in results_table([RunRecord("04_pretrain", {}, "", "ok", metrics={"loss": 1.0})], 1.0)
