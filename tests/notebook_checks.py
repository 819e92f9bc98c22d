"""Checks every generated notebook passes (tools/make_<name>.py writes notebooks/<name>.ipynb).

Imported by the notebook tests as a sibling module (tests/ has no __init__.py, so pytest puts
tests/ on sys.path):  ``from notebook_checks import assert_notebook_conventions, checked_pins``.
"""
import importlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tools/ is not an installed package: `python -m pytest` has the repo root on sys.path (the cwd), plain `pytest` not
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hetskel.runs.grid import notebook_parameters
from tools.nb import write_notebook

PINS = ROOT / "tests" / "notebook_pins.json"


def assert_notebook_conventions(name: str) -> dict:
    """notebooks/<name>.ipynb equals what tools/make_<name>.py writes, is committed without outputs and
    has exactly one ``parameters`` cell, whose smoke / run_dir / seed default to False / "" / 0.

    Returns its parameters {name: default} for the notebook's own checks.
    """
    path = ROOT / "notebooks" / f"{name}.ipynb"
    gen = importlib.import_module(f"tools.make_{name}")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = json.loads(write_notebook(Path(tmp) / "nb.ipynb", gen.CELLS).read_text())
    nb = json.loads(path.read_text())
    assert fresh == nb, f"notebooks/{name}.ipynb is stale: run tools/make_{name}.py"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    p = notebook_parameters(path)
    assert p["smoke"] is False and p["run_dir"] == "" and p["seed"] == 0
    return p


def checked_pins(name: str) -> dict:
    """<name>'s pins in tests/notebook_pins.json ({cell id: stdout}), after checking there are some and
    that each sits on a ``# NBVAL_CHECK_OUTPUT`` cell of notebooks/<name>.ipynb and ends in a newline."""
    pins = json.loads(PINS.read_text())[name]
    cells = {c["id"]: "".join(c["source"])
             for c in json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]}
    assert pins
    for cid, text in pins.items():
        assert cells[cid].startswith("# NBVAL_CHECK_OUTPUT\n"), cid
        assert text.endswith("\n"), cid
    return pins
