"""The reporting half of ``python -m hetskel.bench``: targets, baseline comparison, Markdown, output.

``hetskel.bench`` measures and builds the results dict (and holds the CLI); this module turns it into
what a reader sees: ``evaluate_targets`` (one status per goal: pass, fail, skipped, error, n/a,
recorded), ``compare`` (rates against a ``--baseline`` JSON, a drop of more than
``REGRESSION_TOLERANCE`` flagged unless the two runs are of different modes), ``to_markdown`` (the
tables) and ``report`` (all of these, then ``FILE.json`` + ``FILE.md`` written, the table printed,
the exit code). ``machine_info`` is the header's provenance, taken by ``measure`` at its start.
Apart from that, everything here works on plain dicts, so ``--results OLD.json`` re-renders
without measuring.

Why ``compare`` is not pytest-benchmark's: its regression check (``--benchmark-compare-fail``) runs only
inside a pytest session, on per-call timings its own fixture took (lower is better); ours are rates
from sections timed our way (median step, CPU seconds, GPU sync), flagged only between same-mode runs.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from hetskel.io import load_json, save_json

TARGET_FUSED_GFLOPS = 2.8           # fused J+C+S, paper preset, 30 joints
TARGET_NTU_SPEEDUP = 3.0            # NTU reader vs line-by-line baseline
TARGET_GPU_SAMPLES_PER_S = 5000.0   # pretraining at the paper preset on an H200
REGRESSION_TOLERANCE = 0.10
# rates compared against a baseline (higher is better): dotted paths into the results
RATES = ("train_samples_per_s_cpu", "train_cpu_1thread.samples_per_cpu_s", "train_samples_per_s_gpu",
         "synth_samples_per_s", "augment.batched_samples_per_s", "ntu_parse_speedup.files_per_s")


def machine_info() -> dict:
    """Where the numbers come from (CPU, cores, threads, versions, load, GPU): ``res["machine"]``, the
    report's header line and the baseline's same-machine check. Called by ``measure`` at its start."""
    import numpy as np  # here, not at the top: rendering saved results needs neither numpy nor torch
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(), "platform": platform.platform(),
            "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None, "gpu": None,
            # thread settings change CPU rates a lot on a shared machine (OMP_WAIT_POLICY=PASSIVE, 1 thread)
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")
                    if k in os.environ}}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                       "capability": f"{p.major}.{p.minor}", "cuda": torch.version.cuda}
    return info


def _get(d: dict, path: str):
    for part in path.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


# ---------------------------------------------------------------------------------------------
def compare(current: dict, baseline: dict, tolerance: float = REGRESSION_TOLERANCE) -> list[dict]:
    """Rows ``{metric, baseline, current, change, regressed}`` for every rate in both results;
    ``regressed`` when the current rate is more than ``tolerance`` below the baseline, None when the
    two runs are of different modes (quick and full use other batch sizes: not comparable)."""
    same = baseline.get("mode") == current.get("mode")
    rows = []
    for key in RATES:
        old, new = _get(baseline, key), _get(current, key)
        if isinstance(old, (int, float)) and isinstance(new, (int, float)) and old > 0:
            change = new / old - 1
            rows.append({"metric": key, "baseline": old, "current": new, "change": change,
                         "regressed": change < -tolerance if same else None})
    return rows


def evaluate_targets(res: dict) -> list[dict]:
    def row(name, value, target, ok, section):
        status = "pass" if ok else "fail"
        if value is None:
            why = _get(res, f"{section}.error") or _get(res, f"{section}.skipped")
            status = ("error" if _get(res, f"{section}.error") else "skipped") + (f": {why}" if why else "")
        return {"target": name, "value": value, "goal": target, "status": status}

    def num(path):
        v = _get(res, path)
        return v if isinstance(v, (int, float)) else None

    ntu, f30, f25 = num("ntu_parse_speedup.speedup"), num("gflops_fused_paper"), num("gflops_fused_paper_25j")
    gpu, gpu_name = num("train_samples_per_s_gpu"), _get(res, "train_gpu.gpu") or ""
    out = [row("fused J+C+S GFLOPs, paper preset, 30 joints", f30, f"<= {TARGET_FUSED_GFLOPS}",
               (f30 or 1e9) <= TARGET_FUSED_GFLOPS, "flops"),
           row("fused J+C+S GFLOPs, 25 joints (UmURL setting)", f25, "<= 2.54", (f25 or 1e9) <= 2.54 + 5e-3,
               "flops"),
           row("NTU reader speedup vs line-by-line", ntu, f">= {TARGET_NTU_SPEEDUP}x",
               (ntu or 0) >= TARGET_NTU_SPEEDUP, "ntu_parse_speedup")]
    g = row("pretraining samples/s, paper preset, H200 bf16", gpu, f">= {TARGET_GPU_SAMPLES_PER_S:.0f}",
            (gpu or 0) >= TARGET_GPU_SAMPLES_PER_S, "train_gpu")
    if gpu is not None and "H200" not in gpu_name:
        g["status"] = f"n/a ({gpu_name}, not an H200)"
    out.append(g)
    cpu = num("train_samples_per_s_cpu")
    reg = next((r for r in res.get("regressions", []) if r["metric"] == "train_samples_per_s_cpu"), None)
    c = row("pretraining samples/s, small preset, CPU", cpu, "recorded; no >10% drop vs baseline", True,
            "train_cpu")
    if cpu is not None:
        c["status"] = ("recorded" if reg is None or reg["regressed"] is None
                       else "fail (regressed)" if reg["regressed"] else "pass")
    out.append(c)
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def to_markdown(res: dict) -> str:
    m = res.get("machine", {})
    gpu = (m.get("gpu") or {}).get("name", "none")
    lines = [f"# hetskel bench ({res.get('mode')})", "",
             f"`{res.get('command')}`  ",
             (f"CPU: {m.get('cpu')} ({m.get('cores')} cores, torch threads {m.get('torch_threads')}), GPU: {gpu}, "
              f"torch {m.get('torch')}, load average at start {_fmt((m.get('loadavg_start') or [None])[0])}, "
              f"total {res.get('elapsed_s', 0):.0f} s wall / {res.get('process_cpu_s', 0):.0f} s CPU"), "",
             "| target | value | goal | status |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {_fmt(t['value'])} | {t['goal']} | {t['status']} |" for t in res.get("targets", [])]
    lines += ["", "| measurement | value |", "|---|---|"]
    for key in ("gflops_fused_paper", "gflops_fused_paper_25j", "gflops_three_streams_paper",
                "gflops_three_streams_paper_25j", "ntu_parse_speedup.files_per_s",
                "ntu_parse_speedup.files_per_s_baseline", "ntu_parse_speedup.speedup",
                "synth_samples_per_s", "train_samples_per_s_cpu", "train_cpu.step_s_median",
                "train_cpu.data_fraction", "train_cpu.fwd_gflops_per_sample", "train_cpu.fwd_processor_fraction",
                "train_cpu.achieved_tflops", "train_cpu.step_cpu_s_median", "train_cpu_1thread.samples_per_s",
                "train_cpu_1thread.samples_per_cpu_s",
                "train_samples_per_s_gpu", "train_gpu.mfu", "train_gpu.peak_memory_gb",
                "train_gpu.step_s_median", "train_gpu.data_fraction", "train_gpu.fwd_gflops_per_sample",
                "augment.batched_samples_per_s", "augment.loop_samples_per_s", "augment.speedup",
                "augment_gpu.batched_samples_per_s", "augment_gpu.loop_samples_per_s"):
        v = _get(res, key)
        if v is not None:
            lines.append(f"| {key} | {_fmt(v)} |")
    lines += [f"| error in {k} | {v} |" for k, v in (res.get("errors") or {}).items()]
    if res.get("flops_table"):
        lines += ["", "| encoder (paper preset) | modalities | GFLOPs 30 joints | GFLOPs 25 joints | paper |",
                  "|---|---|---|---|---|"]
        for a, b in zip(res["flops_table"], res.get("flops_table_25j") or res["flops_table"]):
            lines.append(f"| {a['model']} | {a['modalities']} | {a['gflops']:.3f} | {b['gflops']:.3f} | "
                         f"{_fmt(a['paper_gflops'])} |")
    if res.get("regressions"):
        lines += ["", f"Baseline: `{res.get('baseline_file')}`" + (f" ({w})" if (w := res.get("baseline_warning")) else ""),
                  "", "| rate | baseline | current | change | |", "|---|---|---|---|---|"]
        lines += [f"| {r['metric']} | {_fmt(r['baseline'])} | {_fmt(r['current'])} | {r['change']:+.1%} | "
                  f"{ {True: 'REGRESSION', False: 'ok', None: 'not comparable'}[r['regressed']]} |"
                  for r in res["regressions"]]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def report(res: dict, out: Path | None = None, baseline: Path | None = None,
           tolerance: float = REGRESSION_TOLERANCE, fail_on_regression: bool = False) -> int:
    """Compare ``res`` with ``baseline`` (if given), evaluate the targets (both stored in ``res``), write
    ``out`` (.json) and its .md, print the table; regressed metrics and failed sections go to stderr.
    Returns the exit code: 2 when a section failed, 1 when a rate regressed and ``fail_on_regression``,
    else 0."""
    res.pop("regressions", None)
    if baseline:
        base = load_json(baseline)
        res["baseline_file"] = str(baseline)
        res["regressions"] = compare(res, base, tolerance)
        if base.get("mode") != res.get("mode") or _get(base, "machine.cpu") != _get(res, "machine.cpu"):
            res["baseline_warning"] = (f"baseline is a {base.get('mode')} run on {_get(base, 'machine.cpu')}; "
                                       f"this is a {res.get('mode')} run on {_get(res, 'machine.cpu')}")
    res["targets"] = evaluate_targets(res)
    md = to_markdown(res)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_json(out, res)
        _write_text(out.with_suffix(".md"), md)
    print(md)
    regressed = [r["metric"] for r in res.get("regressions", []) if r["regressed"]]
    if regressed:
        print(f"REGRESSION (> {tolerance:.0%} slower than {baseline}): {', '.join(regressed)}", file=sys.stderr)
    if res.get("errors"):
        print(f"bench sections failed: {res['errors']}", file=sys.stderr)
        return 2
    return 1 if regressed and fail_on_regression else 0
