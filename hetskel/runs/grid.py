"""Batch runs of notebooks: a parameter grid x seeds, executed with papermill, summarised.

    python -m hetskel.runs notebooks/04_pretrain.ipynb -p smoke True -p modalities J -p modalities J,C \\
        --seeds 0 1 --batch my-grid
    python -m hetskel.runs notebooks/06_ablations.ipynb --grid grid.yaml

Each run goes to ``runs/<notebook>/<run-name>/`` (executed notebook ``notebook.ipynb``,
``params.json``, ``run.json`` with status/error/wall time, ``run.log``, and whatever the notebook
writes into its ``run_dir``: ``metrics.json``, figures, checkpoints). A failing run is recorded
with its error and the batch goes on. An existing run folder is never reused: the new run gets a
``-2``, ``-3`` suffix unless ``overwrite=True``. The batch summary (mean +- std over seeds of
every numeric metric in ``metrics.json``) is written as CSV and Markdown next to the runs and printed.

A grid YAML looks like::

    parameters: {modalities: [J, "J,C"], epochs: [2]}
    seeds: [0, 1, 2]          # optional; becomes the notebook parameter `seed`
    fixed: {smoke: true}      # optional; same value in every run

Paths are resolved against the project root, so the same command works on any machine.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hetskel.io import load_json, make_run_dir, project_root, resolve_run_dir, save_json


@dataclass
class RunRecord:
    name: str
    params: dict
    run_dir: str
    status: str = "pending"  # ok | failed
    error: str = ""
    wall_s: float = 0.0
    metrics: dict = field(default_factory=dict)


def parse_value(text: str) -> Any:
    """CLI value -> Python literal when it is one (``2``, ``0.5``, ``True``, ``[1,2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def expand_grid(parameters: Mapping[str, Sequence[Any]], seeds: Sequence[int] | None = None,
                fixed: Mapping[str, Any] | None = None) -> list[dict]:
    """Cartesian product of ``parameters`` (name -> list of values) x seeds, each merged over ``fixed``."""
    names = list(parameters)
    axes = [list(v) if isinstance(v, (list, tuple)) else [v] for v in parameters.values()]
    combos = [dict(zip(names, vals)) for vals in itertools.product(*axes)] or [{}]
    out = []
    for combo in combos:
        for seed in (seeds if seeds else [None]):
            p = {**(fixed or {}), **combo}
            if seed is not None:
                p["seed"] = seed
            out.append(p)
    return out


def run_name(params: Mapping[str, Any], prefix: str = "") -> str:
    slug = "_".join(f"{k}={v}" for k, v in params.items() if k not in ("run_dir",))
    slug = re.sub(r"[^A-Za-z0-9=._,+-]+", "-", slug).strip("-")[:120] or "default"
    return f"{prefix}{slug}"


def notebook_parameters(notebook: "str | Path") -> dict:
    """Names and default values of the notebook's ``parameters`` cell (plain literals only), as
    papermill itself reads that cell (``papermill.inspect_notebook``): ``{name: python value}``."""
    import papermill as pm

    found = pm.inspect_notebook(str(notebook))
    if not found:
        raise ValueError(f"{notebook}: no cell tagged 'parameters' (or it assigns nothing)")
    return {name: ast.literal_eval(p["default"]) for name, p in found.items()}


def check_parameters(notebook: "str | Path", params: Mapping[str, Any]) -> None:
    """Misspelled parameters are an error (papermill would silently add them)."""
    valid = notebook_parameters(notebook)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"{Path(notebook).name}: unknown parameter(s) {unknown}; valid parameters are "
                         f"{sorted(valid)}")


@contextlib.contextmanager
def _stderr_to(log):
    """Send this process's stderr file descriptor, and so the kernel's (which inherits it), to ``log``.

    Why: a kernel writes warnings and library log lines straight to its stderr, so every notebook of
    a batch would repeat them on the terminal; in ``run.log`` they stay with their run
    (``warnings_in`` reads them back, e.g. for the demo to show each one once)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


_WARNING_LINE = re.compile(r"(?:^|: )(\w*Warning: .*|WARNING:\S*:.*)$")


def warnings_in(log_path) -> list[str]:
    """The warning messages a run printed to its ``run.log`` (file/line prefixes removed), in order."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [m.group(1) for line in lines if (m := _WARNING_LINE.search(line))]


def execute(notebook: "str | Path", params: Mapping[str, Any], run_dir: "str | Path", *, kernel: str | None = None,
            timeout: int | None = None, progress: bool = False) -> RunRecord:
    """Run one notebook with papermill into ``run_dir`` (which must exist); never raises for notebook errors."""
    import papermill as pm
    from traitlets.config import Config

    # the local kernel over IPC sockets, not TCP: nothing in plain text on a port, and no warning saying so
    local_kernel = Config(KernelManager={"transport": "ipc"}) if sys.platform != "win32" else None
    notebook, run_dir = Path(notebook), Path(run_dir)
    params = dict(params)
    params["run_dir"] = str(run_dir)
    rec = RunRecord(name=run_dir.name, params={k: v for k, v in params.items() if k != "run_dir"},
                    run_dir=str(run_dir))
    save_json(run_dir / "params.json", params)
    t0 = time.time()
    with open(run_dir / "run.log", "w") as log, _stderr_to(log):
        try:
            pm.execute_notebook(str(notebook), str(run_dir / "notebook.ipynb"), parameters=params,
                                kernel_name=kernel, cwd=str(project_root()), progress_bar=progress,
                                log_output=True, stdout_file=log, stderr_file=log, execution_timeout=timeout,
                                config=local_kernel)
            rec.status = "ok"
        except Exception as e:  # PapermillExecutionError carries the failing cell's ename/evalue
            rec.status = "failed"
            ename, evalue = getattr(e, "ename", type(e).__name__), getattr(e, "evalue", str(e))
            rec.error = f"{ename}: {evalue}".strip()
            log.write("\n" + "".join(traceback.format_exception_only(type(e), e)))
    rec.wall_s = round(time.time() - t0, 2)
    if (run_dir / "metrics.json").exists():
        try:
            rec.metrics = load_json(run_dir / "metrics.json")
        except json.JSONDecodeError as e:
            rec.error = (rec.error + f"; metrics.json unreadable: {e}").strip("; ")
    save_json(run_dir / "run.json", asdict(rec))
    return rec


def run_grid(notebook: "str | Path", grid: Sequence[Mapping[str, Any]], *, out: "str | Path | None" = None,
             batch: str | None = None, overwrite: bool = False, kernel: str | None = None,
             timeout: int | None = None, progress: bool = False, echo: bool = True) -> "GridResult":
    """Execute ``notebook`` once per parameter dict of ``grid``; returns the records and summary."""
    notebook = Path(notebook)
    if not notebook.is_absolute():
        notebook = project_root() / notebook
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} does not exist")
    for params in grid:
        check_parameters(notebook, params)
    root = resolve_run_dir(out) if out else project_root() / "runs" / notebook.stem
    batch = batch or time.strftime("%Y%m%d-%H%M%S")
    records = []
    for i, params in enumerate(grid):
        run_dir = make_run_dir(root / run_name(params, prefix=f"{batch}_"), overwrite=overwrite, on_exists="number")
        if echo:
            print(f"[{i + 1}/{len(grid)}] {run_dir.name} ...", flush=True)
        rec = execute(notebook, params, run_dir, kernel=kernel, timeout=timeout, progress=progress)
        if echo:
            print(f"    {rec.status} in {rec.wall_s:.1f}s" + (f": {rec.error}" if rec.error else ""), flush=True)
        records.append(rec)
    result = GridResult(records)
    result.write(root / f"summary_{batch}")
    if echo:
        print(result.markdown())
    return result


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            out.update(_flat_metrics(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


@dataclass
class GridResult:
    records: list[RunRecord]

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if r.status != "ok"]

    def rows(self) -> list[dict]:
        """One row per parameter setting (seeds pooled): n ok/failed and mean/std of each metric."""
        groups: dict[str, list[RunRecord]] = {}
        for r in self.records:
            key = json.dumps({k: v for k, v in r.params.items() if k != "seed"}, sort_keys=True, default=str)
            groups.setdefault(key, []).append(r)
        rows = []
        for key, recs in groups.items():
            row: dict[str, Any] = dict(json.loads(key))
            ok = [r for r in recs if r.status == "ok"]
            row["runs_ok"], row["runs_failed"] = len(ok), len(recs) - len(ok)
            values: dict[str, list[float]] = {}
            for r in ok:
                for k, v in _flat_metrics(r.metrics).items():
                    values.setdefault(k, []).append(v)
            for k, vs in sorted(values.items()):
                mean = sum(vs) / len(vs)
                std = math.sqrt(sum((v - mean) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0
                row[f"{k}_mean"], row[f"{k}_std"] = mean, std
            if len(ok) < len(recs):
                row["errors"] = " | ".join(r.error for r in recs if r.status != "ok")
            rows.append(row)
        return rows

    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows():
            for k in row:
                if k not in cols:
                    cols.append(k)
        return cols

    def markdown(self) -> str:
        rows, cols = self.rows(), self.columns()
        params = [c for c in cols if not (c.endswith("_mean") or c.endswith("_std") or c in
                                          ("runs_ok", "runs_failed", "errors"))]
        metrics = sorted({c[:-5] for c in cols if c.endswith("_mean")})
        head = params + ["ok/failed"] + metrics + (["errors"] if "errors" in cols else [])
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            cells = [str(row.get(p, "")) for p in params] + [f"{row['runs_ok']}/{row['runs_failed']}"]
            for m in metrics:
                cells.append(f"{row[m + '_mean']:.4g} +- {row[m + '_std']:.2g}" if m + "_mean" in row else "")
            if "errors" in cols:
                cells.append(str(row.get("errors", ""))[:200].replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, stem: Path) -> tuple[Path, Path]:
        stem.parent.mkdir(parents=True, exist_ok=True)
        csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns())
            w.writeheader()
            for row in self.rows():
                w.writerow(row)
        md_path.write_text(self.markdown() + "\n")
        return csv_path, md_path


def read_grid(path) -> dict:
    """A grid file: YAML ``{parameters: {name: value or list}, seeds: [..], fixed: {name: value}}``
    (all optional) -> that dict with the three keys filled in. Read with ``yaml.safe_load``, which
    builds plain data only (a ``!!python/...`` tag is refused, never run). Anything else is a
    ``ValueError`` naming the file."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:  # syntax errors, and the python tags safe_load refuses
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path}: not a valid grid YAML file{line}: {problem}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (YAML) file") from None
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a grid file must be a mapping with keys parameters, seeds, fixed; "
                         f"got a {type(spec).__name__}")
    bad = set(spec) - {"parameters", "seeds", "fixed"}
    if bad:
        raise ValueError(f"{path}: unknown key(s) {sorted(bad, key=str)}; valid: parameters, seeds, fixed")
    out = {"parameters": spec.get("parameters") or {}, "seeds": spec.get("seeds"), "fixed": spec.get("fixed") or {}}
    for key in ("parameters", "fixed"):
        if not isinstance(out[key], dict):
            raise ValueError(f"{path}: {key!r} must be a mapping name -> value(s), got {type(out[key]).__name__}")
    if out["seeds"] is not None and not isinstance(out["seeds"], list):
        out["seeds"] = [out["seeds"]]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hetskel.runs", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("notebook", help="notebook to execute, e.g. notebooks/04_pretrain.ipynb")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter value; repeat a NAME to make it a grid axis")
    ap.add_argument("--grid", help="YAML file with `parameters` (name -> list), optional `seeds` and `fixed`")
    ap.add_argument("--seeds", nargs="+", type=int, help="seeds (notebook parameter `seed`)")
    ap.add_argument("--batch", help="batch name (prefix of run folders; default: a timestamp)")
    ap.add_argument("--out", help="folder for the runs (default: runs/<notebook>)")
    ap.add_argument("--overwrite", action="store_true", help="replace run folders of the same name")
    ap.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's)")
    ap.add_argument("--timeout", type=int, help="per-cell timeout in seconds")
    ap.add_argument("--progress", action="store_true", help="papermill progress bars")
    args = ap.parse_args(argv)
    parameters: dict[str, list] = {}
    seeds, fixed = args.seeds, {}
    try:
        if args.grid:
            spec = read_grid(args.grid)
            parameters.update({k: (v if isinstance(v, list) else [v]) for k, v in spec["parameters"].items()})
            seeds = seeds or spec["seeds"]
            fixed = spec["fixed"]
        for name, value in args.parameter:
            parameters.setdefault(name, []).append(parse_value(value))
        result = run_grid(args.notebook, expand_grid(parameters, seeds, fixed), out=args.out, batch=args.batch,
                          overwrite=args.overwrite, kernel=args.kernel, timeout=args.timeout, progress=args.progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_bad = len(result.failed)
    print(f"{len(result.records) - n_bad} run(s) ok, {n_bad} failed")
    return 1 if n_bad else 0

