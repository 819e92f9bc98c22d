"""Write a notebook from a list of cells (for authoring notebooks as text; they stay editable in Lab).

    from tools.nb import write_notebook, md, code, params
    write_notebook("notebooks/01_lifter.ipynb", [md("# Title"), params("smoke = False\\nrun_dir = ''"), code("x = 1")])
"""
from __future__ import annotations

import json
from pathlib import Path


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
