"""Checks every notebook passes: notebooks/<name>.py (py:percent, the source) and notebooks/<name>.ipynb
are one notebook, committed without outputs, with one ``parameters`` cell of plain literals.

Imported by the notebook tests as a sibling module (tests/ has no __init__.py, so pytest puts
tests/ on sys.path):  ``from notebook_checks import assert_notebook_conventions``.
"""
from __future__ import annotations

import json
from pathlib import Path

import jupytext
import papermill as pm

from hetskel.runs.grid import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def cells(path: "str | Path") -> list[tuple[str, str, tuple[str, ...]]]:
    """``(cell type, source, tags)`` of every cell, as jupytext reads ``path`` (.ipynb or .py)."""
    nb = jupytext.read(str(path))
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def sync_problem(py: "str | Path") -> str:
    """"" when ``py`` and the .ipynb beside it hold the same cells (type, source, tags), else what
    differs first and how to fix it."""
    py = Path(py)
    ipynb = py.with_suffix(".ipynb")
    fix = f"run `jupytext --sync {py.name}` in {py.parent} (it updates the older of the two from the newer)"
    if not ipynb.is_file():
        return f"{ipynb.name} is missing beside {py.name}: {fix}"
    a, b = cells(py), cells(ipynb)
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return (f"{py.name} and {ipynb.name} are out of sync at cell {k} ({x[0]} in the .py: "
                    f"{x[1][:60]!r}, {y[0]} in the .ipynb: {y[1][:60]!r}): {fix}")
    if len(a) != len(b):
        return f"{py.name} has {len(a)} cells, {ipynb.name} {len(b)}: {fix}"
    return ""


def assert_notebook_conventions(name: str, folder: "str | Path" = NOTEBOOKS) -> dict:
    """``<folder>/<name>.ipynb`` and its source ``<name>.py`` are in sync; the .ipynb is committed
    without outputs or execution counts and has exactly one ``parameters`` cell, whose smoke /
    run_dir / seed (where it has one) default to False / "" / 0.

    Returns its parameters {name: default} for the notebook's own checks.
    """
    py = Path(folder) / f"{name}.py"
    path = py.with_suffix(".ipynb")
    assert py.is_file(), f"{py} is missing: every notebook's source is its py:percent file"
    problem = sync_problem(py)
    assert not problem, problem
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), \
        f"{path.name} is committed with outputs: clear them (Lab: Edit > Clear Outputs of All Cells) and save"
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and tagged[0]["cell_type"] == "code", f"{path.name}: {len(tagged)} parameters cells"
    found = pm.inspect_notebook(str(path))
    p = notebook_parameters(path)
    assert set(p) == set(found)
    assert p["smoke"] is False and p["run_dir"] == "" and p.get("seed", 0) == 0, p
    return p


def write_toy_notebook(path: Path, parameters: str, body: str) -> Path:
    """A two-cell notebook at ``path``: ``parameters`` (the cell tagged ``parameters``) and ``body``;
    what the batch-runner tests run instead of a real notebook."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ], metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    nbformat.write(nb, path)
    return path
