"""Batch runs of notebooks: a parameter grid x seeds, executed with papermill, summarised.

    python -m hetskel.runs notebooks/04_pretrain.ipynb -p smoke True -p modalities J -p modalities J,C \\
        --seeds 0 1 --batch my-grid
    python -m hetskel.runs notebooks/06_ablations.ipynb --grid grid.yaml

Each run goes to ``runs/<notebook>/<run-name>/`` (executed notebook ``notebook.ipynb``,
``params.json``, ``run.json`` with status/error/wall time, ``run.log``, and whatever the notebook
writes into its ``run_dir``: ``metrics.json``, figures, checkpoints). A failing run is recorded
with its error and the batch goes on. An existing run folder is never reused: the new run gets a
``-2``, ``-3`` suffix unless ``overwrite=True``, which replaces only folders hetskel made (marker
``.hetskel-run``; a user's own folder is refused before anything runs). The batch name is a single
folder name. The batch summary (mean +- std over seeds of every numeric metric in ``metrics.json``)
is written as CSV and Markdown next to the runs and printed; an existing ``summary_<batch>`` is never
replaced (the new one is ``summary_<batch>-2`` ...).

Parameters are checked against the notebook's ``parameters`` cell: unknown names and values of the
wrong type (``-p epochs ten`` where the default is an int) are errors; ``-p smoke false`` is False
(booleans, ints and floats are read as papermill's CLI reads them, and ``true``/``false``/``yes``/``no``
in any case for a boolean). An empty grid axis is an error. A swept parameter that the notebook sets
itself under ``smoke`` (an ``if smoke:`` block assigning it), or whose value in ``metrics.json``
differs from the one asked, is reported in a warning and in the summary's ``overridden`` column.

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

from hetskel.io import (
    check_name,
    check_replaceable,
    error_message,
    load_json,
    make_run_dir,
    project_root,
    quiet_broken_pipe,
    resolve_run_dir,
    save_json,
)


@dataclass
class RunRecord:
    name: str
    params: dict
    run_dir: str
    status: str = "pending"  # ok | failed
    error: str = ""
    wall_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    # parameters the notebook did not use as asked: name -> the value it reported in metrics.json,
    # or SET_UNDER_SMOKE when its smoke mode assigns the parameter itself
    overridden: dict = field(default_factory=dict)


SET_UNDER_SMOKE = "set by the notebook's smoke mode"


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
    for name, axis in zip(names, axes):
        if not axis:
            raise ValueError(f"grid axis {name!r} has no values (an empty list would silently drop it)")
    if seeds is not None and not isinstance(seeds, (str, bytes)) and len(list(seeds)) == 0:
        raise ValueError("seeds is an empty list; leave it out for one run per setting")
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
    out = {}
    for name, p in found.items():
        try:
            out[name] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[name] = None  # not a plain literal (an expression): its type is not checked
    return out


def _resolve_type(text: str) -> Any:
    """papermill's own CLI reading of ``-p NAME VALUE`` (``papermill.cli._resolve_type``)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def coerce_value(name: str, value: Any, default: Any) -> Any:
    """``value`` (command-line text, or a value from YAML/Python) as the notebook expects ``name``,
    judged by the type of its ``default``; a value of the wrong type is a ``ValueError`` naming it.

    bool default: ``True``/``False`` or the text true/false/yes/no/on/off/1/0 (any case) -- never
    the truthy string ``"false"``; int default: an int (``"10"``), never ``"ten"`` or 2.5; float
    default: any number; list/dict default: a list/dict literal; a str or None default: any value,
    text read as papermill's CLI reads it (``2`` -> 2, ``J,C`` stays text; None default: Python
    literals such as ``[1, 2]`` too)."""
    text = value if isinstance(value, str) else None

    def bad(kind: str) -> ValueError:
        from hetskel.io import escape
        return ValueError(f"parameter {name!r} expects {kind} (its default is {escape(repr(default), 60)}), got "
                          f"{escape(repr(value), 80)}")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if text is not None and text.strip().lower() in _TRUE | _FALSE:
            return text.strip().lower() in _TRUE
        raise bad("a boolean (True/False)")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text is not None:
            try:
                return int(text.strip())
            except ValueError:
                pass
        raise bad("an integer")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if text is not None:
            try:
                return float(text.strip())
            except ValueError:
                pass
        raise bad("a number")
    if isinstance(default, (list, tuple, dict)):
        parsed = parse_value(text) if text is not None else value
        if isinstance(default, dict) and isinstance(parsed, dict):
            return parsed
        if isinstance(default, (list, tuple)) and isinstance(parsed, (list, tuple)):
            return list(parsed)
        raise bad("a dict literal such as {'a': 1}" if isinstance(default, dict) else "a list literal such as [0, 1]")
    if default is None:
        return parse_value(text) if text is not None else value
    return _resolve_type(text) if text is not None else value


def check_parameters(notebook: "str | Path", params: Mapping[str, Any]) -> dict:
    """``params`` checked against the notebook's ``parameters`` cell and returned with each value
    read as its default's type (``coerce_value``). Misspelled names are an error (papermill would
    silently add them), and so is ``run_dir`` (the runner sets it)."""
    valid = notebook_parameters(notebook)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"{Path(notebook).name}: unknown parameter(s) {unknown}; valid parameters are "
                         f"{sorted(valid)}")
    if "run_dir" in params:
        raise ValueError(f"{Path(notebook).name}: run_dir is set by the runner (use --out for the folder)")
    return {k: coerce_value(k, v, valid[k]) for k, v in params.items()}


def smoke_overrides(notebook: "str | Path") -> set[str]:
    """Names the notebook assigns inside an ``if smoke:`` block (read from its code, not run): under
    ``smoke=True`` the values given for them are not the ones used."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and any(isinstance(n, ast.Name) and n.id == "smoke"
                                                for n in ast.walk(node.test)):
                for stmt in node.body:
                    for sub in ast.walk(stmt):
                        targets = (sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                                   if isinstance(sub, (ast.AugAssign, ast.AnnAssign)) else [])
                        for t in targets:
                            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) or a == b
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


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
    if not grid:
        raise ValueError("the grid is empty: nothing to run")
    grid = [check_parameters(notebook, params) for params in grid]
    batch = check_name(batch, "batch name") if batch is not None else time.strftime("%Y%m%d-%H%M%S")
    if out is not None and not str(out).strip():
        raise ValueError("--out is empty; leave it out for runs/<notebook>")
    root = resolve_run_dir(out) if out else project_root() / "runs" / notebook.stem
    targets = [root / run_name(params, prefix=f"{batch}_") for params in grid]
    if overwrite:  # before anything runs: a folder hetskel did not make is never deleted
        for t in targets:
            check_replaceable(t)
    defaults = notebook_parameters(notebook)
    swept = {k for k in {k for p in grid for k in p} - {"seed"}
             if len({json.dumps(p.get(k, defaults.get(k)), sort_keys=True, default=str) for p in grid}) > 1}
    set_by_smoke = smoke_overrides(notebook) & swept
    warnings_: list[str] = []
    smoked = [p for p in grid if p.get("smoke", defaults.get("smoke")) is True]
    if set_by_smoke and smoked:
        warnings_.append(f"{notebook.name} sets {sorted(set_by_smoke)} itself when smoke=True: the swept values "
                         f"of {'it' if len(set_by_smoke) == 1 else 'them'} are not used in the smoke runs (see the "
                         f"'overridden' column); drop smoke=True to sweep {'it' if len(set_by_smoke) == 1 else 'them'}")
        if echo:
            print(f"warning: {warnings_[-1]}", file=sys.stderr, flush=True)
    records = []
    for i, (params, target) in enumerate(zip(grid, targets)):
        run_dir = make_run_dir(target, overwrite=overwrite, on_exists="number")
        if echo:
            print(f"[{i + 1}/{len(grid)}] {run_dir.name} ...", flush=True)
        rec = execute(notebook, params, run_dir, kernel=kernel, timeout=timeout, progress=progress)
        if params.get("smoke", defaults.get("smoke")) is True:
            rec.overridden.update({k: SET_UNDER_SMOKE for k in sorted(set_by_smoke)})
        for k in sorted(swept):  # a value the notebook reports in metrics.json that differs from the asked one
            if isinstance(rec.metrics, Mapping) and k in rec.metrics and not _same(rec.metrics[k], params.get(k)):
                rec.overridden[k] = rec.metrics[k]
        if rec.overridden:
            save_json(run_dir / "run.json", asdict(rec))
        if echo:
            print(f"    {rec.status} in {rec.wall_s:.1f}s" + (f": {rec.error}" if rec.error else ""), flush=True)
        records.append(rec)
    overridden = sorted({k for r in records for k, v in r.overridden.items() if v != SET_UNDER_SMOKE})
    if overridden:
        warnings_.append(f"{notebook.name} reported values of {overridden} in metrics.json that differ from the "
                         f"ones asked (see the 'overridden' column)")
        if echo:
            print(f"warning: {warnings_[-1]}", file=sys.stderr, flush=True)
    result = GridResult(records, warnings=warnings_)
    csv_path, md_path = result.write(root / f"summary_{batch}")
    if echo:
        print(result.markdown())
        print(f"summary: {csv_path} and {md_path}")
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
    warnings: list[str] = field(default_factory=list)

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
            over = sorted({f"{k}={v}" for r in recs for k, v in r.overridden.items()})
            if over:
                row["overridden"] = "; ".join(over)
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
                                          ("runs_ok", "runs_failed", "errors", "overridden"))]
        metrics = sorted({c[:-5] for c in cols if c.endswith("_mean")})
        head = (params + (["overridden"] if "overridden" in cols else []) + ["ok/failed"] + metrics
                + (["errors"] if "errors" in cols else []))
        lines = [f"WARNING: {w}" for w in self.warnings] + ([""] if self.warnings else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            cells = [str(row.get(p, "")) for p in params]
            if "overridden" in cols:
                cells.append(str(row.get("overridden", "")).replace("|", "/"))
            cells.append(f"{row['runs_ok']}/{row['runs_failed']}")
            for m in metrics:
                cells.append(f"{row[m + '_mean']:.4g} +- {row[m + '_std']:.2g}" if m + "_mean" in row else "")
            if "errors" in cols:
                cells.append(str(row.get("errors", ""))[:200].replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, stem: Path) -> tuple[Path, Path]:
        """``<stem>.csv`` and ``<stem>.md``; when either exists (a batch name used again), the first
        free ``<stem>-2``, ``-3`` ... instead: an existing summary is never replaced. Each file is
        created exclusively (``x`` mode); a failed write removes its partial file."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        k = 1
        while True:
            name = stem.name if k == 1 else f"{stem.name}-{k}"
            csv_path, md_path = stem.with_name(name + ".csv"), stem.with_name(name + ".md")
            if not any(p.exists() or p.is_symlink() for p in (csv_path, md_path)):
                try:
                    self._write_new(csv_path, md_path)
                    return csv_path, md_path
                except FileExistsError:  # taken meanwhile by another process
                    pass
            k += 1

    def _write_new(self, csv_path: Path, md_path: Path) -> None:
        made: list[Path] = []
        try:
            with open(csv_path, "x", newline="") as f:
                made.append(csv_path)
                w = csv.DictWriter(f, fieldnames=self.columns())
                w.writeheader()
                for row in self.rows():
                    w.writerow(row)
            with open(md_path, "x") as f:
                made.append(md_path)
                f.write(self.markdown() + "\n")
        except BaseException:
            for p in made:
                with contextlib.suppress(OSError):
                    p.unlink()
            raise


MAX_GRID_BYTES = 1 << 20  # a grid file is a few lines; a larger one is refused unread


def _read_grid_text(path: Path) -> str:
    if path.is_file() and path.stat().st_size > MAX_GRID_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes is not a grid file (limit {MAX_GRID_BYTES})")
    return path.read_text()


def read_grid(path) -> dict:
    """A grid file: YAML ``{parameters: {name: value or list}, seeds: [..], fixed: {name: value}}``
    (all optional) -> that dict with the three keys filled in. Read with ``yaml.safe_load``, which
    builds plain data only (a ``!!python/...`` tag is refused, never run), after the event stream
    has been checked for aliases (refused: nested aliases expand exponentially) and the file for
    its size (at most ``MAX_GRID_BYTES``). Anything else is a ``ValueError`` naming the file."""
    import yaml

    try:
        text = _read_grid_text(Path(path))
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # events only: nothing is built yet
            if isinstance(event, yaml.AliasEvent):  # "billion laughs": 430 bytes of nested aliases -> 2 GB
                raise ValueError(f"{path}: YAML aliases (*name) are not allowed in a grid file (line "
                                 f"{event.start_mark.line + 1}); write the values out")
        spec = yaml.safe_load(text)
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
        for name, value in args.parameter:  # text: read as the notebook's default's type (check_parameters)
            parameters.setdefault(name, []).append(value)
        result = run_grid(args.notebook, expand_grid(parameters, seeds, fixed), out=args.out, batch=args.batch,
                          overwrite=args.overwrite, kernel=args.kernel, timeout=args.timeout, progress=args.progress)
        n_bad = len(result.failed)
        print(f"{len(result.records) - n_bad} run(s) ok, {n_bad} failed", flush=True)
    except BrokenPipeError as e:
        quiet_broken_pipe()
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:  # bad value/name/path, a folder not hetskel's, disk full, permission
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    return 1 if n_bad else 0

