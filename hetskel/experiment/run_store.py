"""What a pretraining run folder stores besides its spec, so that it reloads anywhere: the custom
layouts it uses, its in-memory datasets and its lifter checkpoint, under ``run_dir/data/``.

    >>> spec = store_in_memory_data(spec, run_dir)   # in-memory PYSKL dicts -> data/<layout>-<hash>.pkl
    >>> spec = store_lifter(spec, run_dir)           # lifter_init -> data/lifter-<hash>.pt
    >>> spec_layouts(spec)                           # {name: layout dict} of the custom layouts
    >>> relocate(spec.to_dict(), moved_run_dir)      # the stored files found again after a move

Files are named by the hash of their content and written by atomic rename, so two different
datasets in one folder never overwrite each other and a crash leaves no half-written file.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

from hetskel.data.errors import DataError
from hetskel.experiment.spec import PretrainSpec
from hetskel.layouts import BUILTIN_LAYOUTS, ensure_layout, layout_to_dict

DATA_DIR = "data"  # run_dir/data/<layout>-<hash>.pkl: in-memory datasets, written as PYSKL


def spec_layouts(spec: PretrainSpec) -> dict[str, dict]:
    """``{name: layout_to_dict}`` of the spec's source layouts that are not built in (custom ones):
    what a run folder stores so that it reloads in a process that never registered them."""
    return {lay: layout_to_dict(lay) for lay in sorted(set(spec.source_layouts().values()))
            if lay not in BUILTIN_LAYOUTS}


def register_stored_layouts(layouts: Mapping | None) -> None:
    """Register the layouts a run folder stored (``spec_layouts``) unless the same ones are registered
    already; a different layout under one of their names raises ``LayoutError``."""
    for d in (layouts or {}).values():
        ensure_layout(d)


def store_in_memory_data(spec: PretrainSpec, run_dir: Path) -> PretrainSpec:
    """``spec`` with every in-memory PYSKL dict of ``paths`` written to ``run_dir/data/<layout>-<hash>.pkl``
    (``save_pyskl``) and replaced by that file, so the run resumes and its data reloads without the
    caller's objects. The hash of the content names the file: other data in the same run folder is a
    different run (refused by ``hetskel.train``), not a silent resume on the old data."""
    if not any(isinstance(v, Mapping) for v in spec.paths.values()):
        return spec
    import os
    import tempfile

    from hetskel.data.pyskl import save_pyskl

    folder = Path(run_dir) / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = dict(spec.paths)
    for lay, data in spec.paths.items():
        if not isinstance(data, Mapping):
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{lay}-", suffix=".pkl", dir=folder)
        os.close(fd)
        try:
            save_pyskl({**data, "layout": lay}, tmp)
            final = keep_by_content(Path(tmp), folder, lay, ".pkl")
        finally:
            Path(tmp).unlink(missing_ok=True)
        paths[lay] = str(final.resolve())
    out = copy.copy(spec)
    out.paths = paths
    return out


def keep_by_content(tmp: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Move the finished file ``tmp`` to ``folder/<stem>-<hash of its bytes><suffix>`` (atomic
    rename; an identical file already there is kept and ``tmp`` dropped); returns the final path."""
    import hashlib
    import os

    final = folder / f"{stem}-{hashlib.sha1(tmp.read_bytes()).hexdigest()[:12]}{suffix}"
    if final.exists():
        tmp.unlink()
    else:
        os.replace(tmp, final)
    return final


def store_lifter(spec: PretrainSpec, run_dir: Path) -> PretrainSpec:
    """``spec`` with ``lifter_init`` copied to ``run_dir/data/lifter-<hash>.pt`` (the run reloads
    without the original file; the hash keeps two different lifters apart)."""
    import shutil

    src = Path(spec.lifter_init)
    if not src.is_file():
        raise DataError("no such lifter checkpoint", file=src, field="lifter_init")
    folder = Path(run_dir) / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".lifter.tmp"
    try:
        shutil.copyfile(src, tmp)
        final = keep_by_content(tmp, folder, "lifter", ".pt")
    finally:
        tmp.unlink(missing_ok=True)
    out = copy.copy(spec)
    out.lifter_init = str(final.resolve())
    return out


def fresh_for_data(run_dir: Path) -> bool:
    """No run there yet and nothing but the batch runner's files and our data folder."""
    from hetskel.io import RUNNER_FILES

    return not (run_dir / "config.json").exists() and (
        not run_dir.exists() or all(p.name in RUNNER_FILES or p.name == DATA_DIR for p in run_dir.iterdir()))


def relocate(spec_dict: dict, run_dir: Path) -> dict:
    """Data files a run stored in its own ``data/`` folder, found again when the folder has moved."""
    def found(v):
        if isinstance(v, str) and v and Path(v).parent.name == DATA_DIR and not Path(v).exists():
            here = Path(run_dir) / DATA_DIR / Path(v).name
            if here.exists():
                return str(here)
        return v

    paths = {k: found(v) for k, v in (spec_dict.get("paths") or {}).items()}
    return {**spec_dict, "paths": paths, "lifter_init": found(spec_dict.get("lifter_init") or "")}
