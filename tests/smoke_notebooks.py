"""Smoke copies of the notebooks for nbval: ``make test`` runs this, then ``pytest ... runs/ci/notebooks --nbval-lax``.

    .venv/bin/python tests/smoke_notebooks.py [NAME ...]     # default: every notebooks/[0-9]*.ipynb

Each copy is ``runs/ci/notebooks/<name>.ipynb`` with ``smoke = True`` injected by papermill
(prepare-only: nothing runs here); its ``run_dir`` stays the default, a new ``runs/<name>/<time>/``
per execution, so a copy can be run again. The copies carry no expected outputs: every notebook
ends with a smoke check cell that asserts on the ``metrics.json`` it has just written, so a wrong
number fails that cell under nbval wherever the cell sits.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare_smoke(names=(), src: Path = ROOT / "notebooks", out: Path = ROOT / "runs" / "ci" / "notebooks") -> list[Path]:
    """Write the smoke copies of ``names`` (default: every numbered notebook) into ``out``; returns their paths.

    With no ``names`` ``out`` is emptied first, so a deleted notebook leaves no stale copy behind."""
    import papermill as pm

    paths = [src / f"{n}.ipynb" for n in names] if names else sorted(src.glob("[0-9]*.ipynb"))
    if not names and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for nb in paths:
        if not nb.is_file():
            raise SystemExit(f"no notebook {nb}")
        dst = out / nb.name
        pm.execute_notebook(str(nb), str(dst), parameters={"smoke": True},
                            prepare_only=True, progress_bar=False, cwd=str(ROOT))
        written.append(dst)
    return written


if __name__ == "__main__":
    for path in prepare_smoke(sys.argv[1:]):
        print("wrote", path.relative_to(ROOT))
