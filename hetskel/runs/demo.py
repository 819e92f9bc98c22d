"""The main job: run the notebook sequence 00 -> 07 end to end on SynHet (and ../shared/data when present).

    python -m hetskel.runs.demo                 # demo size: every notebook, CPU, no download
    python -m hetskel.runs.demo --smoke         # CI size (each notebook's `smoke = True`)
    python -m hetskel.runs.demo --only 00 01    # a subset, by number prefix

Each notebook is executed with papermill into ``runs/demo/<time>/<notebook>/`` (executed notebook,
params, log, metrics.json, checkpoints); figures go to ``figures/``. The pretraining run of
``04_pretrain`` is handed to ``05_evaluate`` as ``pretrain_dir``. A failing notebook is reported and
the ones that do not depend on it still run. The job ends by printing (and writing
``results.md``) a table of every notebook's status, wall time and key metrics.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from hetskel.io import make_run_dir, project_root, save_json
from hetskel.runs.grid import (
    RunRecord,
    _flat_metrics,
    execute,
    notebook_parameters,
    warnings_in,
)

# Demo-size parameters per notebook (on top of each notebook's defaults): sized so that the whole
# sequence stays within ~15 minutes on a 2-core CPU. A key a notebook does not have is an error.
DEMO_PARAMS: dict[str, dict] = {
    "00_data_tour": {"num_samples": 1000},
    "01_lifter": {"num_samples": 800, "width": 256, "epochs": 8, "real_steps": 150},
    "02_prompts": {},
    "03_semantic_motion": {"num_samples": 600, "train_steps": 150},
    "04_pretrain": {"preset": "tiny", "num_samples": 1000, "epochs": 8, "batch_size": 64, "lr": 0.002,
                    "progress": False},
    "05_evaluate": {"probe_epochs": 60, "semi_seeds": [0, 1], "semi_epochs": 15, "progress": False},
    "06_ablations": {"variants": ["full", "no_lifter", "no_words", "no_prompts"], "seeds": [0],
                     "num_samples": 600, "epochs": 4, "probe_epochs": 30, "progress": False,
                     "diagnosis_variants": ["J", "J+C+S"], "diagnosis_seeds": [0]},
    "07_transfer": {"probe_epochs": 60, "progress": False},
}
# notebook -> (parameter, notebook whose run folder it receives)
LINKS = {"05_evaluate": ("pretrain_dir", "04_pretrain"), "07_transfer": ("pretrain_dir", "04_pretrain")}


def _params_for(nb: Path, smoke: bool) -> dict:
    """Demo (or smoke) parameters; a misspelled name is an error, not a silently ignored value."""
    wanted = {"smoke": True} if smoke else dict(DEMO_PARAMS.get(nb.stem, {}))
    unknown = sorted(set(wanted) - set(notebook_parameters(nb)))
    if unknown:
        raise ValueError(f"{nb.name}: demo parameter(s) {unknown} are not in its parameters cell")
    return wanted


def run_demo(smoke: bool = False, only: Sequence[str] | None = None, out: "str | Path | None" = None,
             progress: bool = False) -> list[RunRecord]:
    root = project_root()
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(o) for o in only)]
    base = make_run_dir(out or None, "demo", on_exists="number")  # never an existing folder
    print(f"hetskel demo: {len(notebooks)} notebook(s) -> {base}", flush=True)
    records: dict[str, RunRecord] = {}
    t0 = time.time()
    seen_warnings: set[str] = set()
    for nb in notebooks:
        params = _params_for(nb, smoke)
        if nb.stem in LINKS:
            name, source = LINKS[nb.stem]
            src = records.get(source)
            if src is None or src.status != "ok":
                rec = RunRecord(nb.stem, params, "", status="skipped", error=f"needs a successful {source}")
                records[nb.stem] = rec
                print(f"  {nb.stem}: skipped ({rec.error})", flush=True)
                continue
            params[name] = src.run_dir
        run_dir = base / nb.stem
        run_dir.mkdir(parents=True)
        print(f"  {nb.stem} ...", end="", flush=True)
        rec = execute(nb, params, run_dir, progress=progress)
        rec.name = nb.stem
        records[nb.stem] = rec
        print(f" {rec.status} in {rec.wall_s:.0f}s" + (f": {rec.error}" if rec.error else ""), flush=True)
        for message in warnings_in(run_dir / "run.log"):  # each warning once per demo, not once per notebook
            if message not in seen_warnings:
                seen_warnings.add(message)
                print(f"    {message}", flush=True)
    total = time.time() - t0
    table = results_table(list(records.values()), total)
    (base / "results.md").write_text(table + "\n")
    save_json(base / "results.json", {"total_s": total, "runs": [vars(r) for r in records.values()]})
    print("\n" + table)
    return list(records.values())


HEADLINE = ("linear_top1", "linear_top1_random_init", "knn_top1", "knn_top1_random_init", "mpjpe", "mpjpe_baseline")
# left out of the table: at demo size, semi-supervised fine-tuning (15 epochs instead of 80) is far
# too short to mean anything, and its numbers, well below the linear probe, would read as a bug
OMITTED = ("semi_",)
OMITTED_NOTE = ("semi-supervised results (semi_*) are not shown: demo-size fine-tuning is too short to mean "
                "anything; they are in 05_evaluate's metrics.json")


def results_table(records: Sequence[RunRecord], total_s: float) -> str:
    lines = ["| notebook | status | wall (s) | key metrics |", "|---|---|---|---|"]
    omitted = False
    for r in records:
        metrics = _flat_metrics(r.metrics)
        hidden = [k for k in metrics if k.split(".")[-1].startswith(OMITTED)]
        omitted |= bool(hidden)
        for k in hidden:
            del metrics[k]
        # the headline numbers first (any nesting level), then whatever else the notebook reported
        keys = sorted(metrics, key=lambda k: (min((i for i, h in enumerate(HEADLINE) if k.split(".")[-1] == h),
                                                   default=len(HEADLINE)), k))
        shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in keys[:6])
        lines.append(f"| {r.name} | {r.status} | {r.wall_s:.0f} | {shown} |")
    lines.append(f"| **total** | | {total_s:.0f} | |")
    if omitted:
        lines += ["", OMITTED_NOTE]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hetskel.runs.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CI size (smoke = True in every notebook)")
    ap.add_argument("--only", nargs="+", help="number prefixes of the notebooks to run, e.g. 00 04 05")
    ap.add_argument("--out", help="output folder (default runs/demo/<time>)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from hetskel.io import error_message, quiet_broken_pipe
    try:
        records = run_demo(smoke=args.smoke, only=args.only, out=args.out, progress=args.progress)
        sys.stdout.flush()
    except BrokenPipeError as e:
        quiet_broken_pipe()
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:  # a bad --out (a file, under a file, not writable), disk full
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    return 0 if records and all(r.status == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
