"""Every notebook has one source, its py:percent file: the .ipynb beside it is in sync, committed
without outputs, and every numbered notebook ends with a smoke check on the metrics.json it writes.

Shows the workflow too: edit the .py, run ``jupytext --sync``, and the checks pass; edit the .ipynb
and forget to sync, and the check says so and how to fix it.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from notebook_checks import NOTEBOOKS, assert_notebook_conventions, sync_problem

STEMS = sorted({p.stem for p in NOTEBOOKS.glob("*.py")} | {p.stem for p in NOTEBOOKS.glob("*.ipynb")})
NUMBERED = [s for s in STEMS if s[:1].isdigit()]


def test_every_notebook_has_both_files():
    assert NUMBERED and "trial" in STEMS
    for stem in STEMS:
        assert (NOTEBOOKS / f"{stem}.py").is_file() and (NOTEBOOKS / f"{stem}.ipynb").is_file(), stem


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_conventions(stem):
    assert_notebook_conventions(stem)


@pytest.mark.parametrize("stem", NUMBERED)
def test_numbered_notebook_ends_with_a_smoke_check_on_its_metrics(stem):
    code = [c.source for c in jupytext.read(NOTEBOOKS / f"{stem}.py").cells if c.cell_type == "code"]
    assert re.search(r"^if smoke:\n", code[-1], re.M), f"{stem}: the last code cell is not an `if smoke:` check"
    assert 'load_json(run_dir / "metrics.json")' in code[-1] and "assert " in code[-1], stem
    assert any('save_json(run_dir / "metrics.json"' in c for c in code[:-1]), stem
    # no positional output pins: nothing checks a cell's printed text by where the cell sits
    assert not any("NBVAL_CHECK_OUTPUT" in c for c in code), stem


def _sync(py: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(py)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


@pytest.fixture
def pair(tmp_path):
    """A copy of one notebook pair with the project's jupytext.toml (which declares the pairing)."""
    for name in ("00_data_tour.py", "00_data_tour.ipynb", "jupytext.toml"):
        shutil.copy2(NOTEBOOKS / name, tmp_path / name)
    return tmp_path / "00_data_tour.py"


def test_an_edit_of_the_py_synced_with_jupytext_passes(pair):
    text = pair.read_text()
    edits = [("# # 00 · A tour of the data\n", "# # 00 · A tour of the data (edited)\n#\n# A new paragraph.\n"),
             ('print("run folder:", run_dir)\n', 'print("run folder:", run_dir)\nprint("an edited cell")\n')]
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
    text += '\n# %% [markdown]\n# A new markdown cell.\n\n# %%\nprint("a new code cell")\n'
    pair.write_text(text)
    assert "out of sync" in sync_problem(pair)  # edited, not synced yet
    assert "Updating" in _sync(pair)
    assert sync_problem(pair) == ""
    params = assert_notebook_conventions("00_data_tour", pair.parent)
    assert params["shared_data"] == ""
    nb = json.loads(pair.with_suffix(".ipynb").read_text())
    src = ["".join(c["source"]) for c in nb["cells"]]
    assert any("(edited)" in s and "A new paragraph." in s for s in src)
    assert any('print("an edited cell")' in s for s in src) and src[-1] == 'print("a new code cell")'


def test_an_ipynb_edited_without_syncing_is_reported(pair):
    ipynb = pair.with_suffix(".ipynb")
    nb = json.loads(ipynb.read_text())
    md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    md["source"] = ["# 00 · edited in Lab, py not synced"]
    ipynb.write_text(json.dumps(nb, indent=1))
    problem = sync_problem(pair)
    assert "out of sync at cell 0" in problem and "jupytext --sync 00_data_tour.py" in problem, problem
    with pytest.raises(AssertionError, match="jupytext --sync"):
        assert_notebook_conventions("00_data_tour", pair.parent)
    # syncing now takes the newer file, the .ipynb, into the .py
    _sync(pair)
    assert sync_problem(pair) == "" and "edited in Lab, py not synced" in pair.read_text()


def test_outputs_in_the_committed_ipynb_are_refused(pair):
    ipynb = pair.with_suffix(".ipynb")
    nb = json.loads(ipynb.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["hi\n"]}]
    code["execution_count"] = 1
    ipynb.write_text(json.dumps(nb, indent=1))
    with pytest.raises(AssertionError, match="committed with outputs"):
        assert_notebook_conventions("00_data_tour", pair.parent)
