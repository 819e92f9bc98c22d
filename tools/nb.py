"""Write a notebook from a list of cells (for authoring notebooks as text; they stay editable in Lab).

    from tools.nb import write_notebook, md, code, params
    write_notebook("notebooks/01_lifter.ipynb", [md("# Title"), params("smoke = False\\nrun_dir = ''"), code("x = 1")])

A generator script ``tools/make_<name>.py`` defines ``NAME`` and ``CELLS`` and ends with
``def main(argv=None): return generate(NAME, CELLS, argv, __doc__)``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "tests" / "notebook_pins.json"  # {notebook name: {cell id: pinned stdout}}, one file for all


def _cell(kind: str, source: str, tags=()) -> dict:
    lines = source.strip("\n").splitlines(keepends=True)
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": lines}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def md(source: str) -> dict:
    return _cell("markdown", source)


def code(source: str, tags=()) -> dict:
    return _cell("code", source, tags)


def params(source: str) -> dict:
    return _cell("code", source, ("parameters",))


def write_notebook(path: str | Path, cells: list[dict]) -> Path:
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"
    nb = {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path = Path(path)
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path


def pins_from(executed: str | Path) -> dict:
    """The stdout of every ``# NBVAL_CHECK_OUTPUT`` cell of an executed (smoke) copy, by cell id."""
    pins = {}
    for cell in json.loads(Path(executed).read_text())["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith("# NBVAL_CHECK_OUTPUT"):
            outs = cell.get("outputs", [])
            if len(outs) != 1 or outs[0].get("output_type") != "stream" or outs[0].get("name") != "stdout":
                raise SystemExit(f"{executed}: pinned cell {cell['id']} must print to stdout only, got {outs}")
            pins[cell["id"]] = "".join(outs[0]["text"])
    return pins


def generate(name: str, cells: list[dict], argv=None, doc: str = "", extra: dict | None = None) -> Path:
    """A generator's command line: write notebooks/<name>.ipynb from ``cells``; returns its path.

    ``doc``: the script's docstring (its first paragraph is the --help text). ``extra``: {stem: cells}
    of helper notebooks written next to it first (06's trial.ipynb). ``--pins-from EXECUTED`` also
    stores that executed copy's checked outputs as ``name``'s pins in PINS.
    """
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])  # __doc__ is None under -OO
    ap.add_argument("--pins-from", type=Path, help="executed smoke copy whose checked outputs become the pins")
    args = ap.parse_args(argv)
    for stem, more in (extra or {}).items():
        write_notebook(ROOT / "notebooks" / f"{stem}.ipynb", more)
    path = write_notebook(ROOT / "notebooks" / f"{name}.ipynb", cells)
    if args.pins_from:
        allpins = json.loads(PINS.read_text()) if PINS.exists() else {}  # read-modify-write: keep others' keys
        allpins[name] = pins_from(args.pins_from)
        PINS.write_text(json.dumps(allpins, indent=1, sort_keys=True) + "\n")
        print(f"pinned {sorted(allpins[name])} in {PINS}")
    return path
