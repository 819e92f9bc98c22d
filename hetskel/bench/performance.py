"""``python -m hetskel.bench``: the numbers behind the paper's efficiency claim and our own speed.

    python -m hetskel.bench --quick --out bench.json            # CI-sized, well under a minute on 2 cores
    python -m hetskel.bench --out bench.json --baseline old.json  # full run, flags >10% regressions
    python -m hetskel.bench --results bench.json --baseline old.json  # re-render / compare, no measuring

Measuring (``measure`` and its ``bench_*`` sections) and the CLI live here; ``hetskel.bench.report``
holds what is read: the targets, the ``--baseline`` comparison, the Markdown table (printed, and
written with the results as ``FILE.json`` + ``FILE.md``), the machine header and the exit code.
What is measured:

* ``gflops_fused_paper``: inference FLOPs per sample of the fused J+C+S encoder at the paper preset
  (T=64, M=2, unified 30 joints), every modality subset and the three single streams, at 30 and at
  25 joints (UmURL's setting, the configuration at or under the paper's 2.54G), counted by
  ``hetskel.model.flops`` on the meta device;
* ``ntu_parse_speedup``: ``hetskel.data.ntu`` against the line-by-line baseline (``bench_ntu``) on
  the real ``../shared/data/ntu_raw_sample`` files (skipped, with the reason, when absent);
* ``synth_samples_per_s``: ``synhet.generate`` (wall clock, 64 frames per clip);
* ``train_samples_per_s_cpu``: real pretraining steps (``Pretrainer`` + ``HeteroProcessor`` J+C+S on
  SynHet batches, forward + backward + Adam) at the ``small`` preset; warm-up steps excluded, rate
  from the median step time (robust to bursts of other processes on a shared machine). The first
  warm-up step runs under ``FlopCounterMode``, which gives the forward FLOPs of the whole step (K+1
  views, processor included) and the processor's share. Also the data part of a step (batch gather +
  K+1 crops + spatial draws, timed alone) against the full step, and the same step on one thread
  (``train_cpu_1thread``; its samples per CPU second is the rate least disturbed by other processes);
* with CUDA: the same at the paper preset in bf16 autocast, ``train_samples_per_s_gpu``, MFU
  (3 x counted forward FLOPs x samples/s / peak bf16 FLOP/s; the counted forward+backward is kept
  too) and peak memory (``torch.cuda.max_memory_allocated``). ``--compile`` wraps it in ``torch.compile``;
* augmentation: ``crop_batch`` + ``spatial_augment`` on a whole batch vs the same calls one sample
  at a time.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from hetskel.bench.gpu_check import gpu_check
from hetskel.bench.report import (
    REGRESSION_TOLERANCE,
    machine_info,
    report,
)
from hetskel.bench.steps import (
    build_pretrainer,
    data_part,
    lifter_gflops,
    pair_models,
    peak_flops,
    sync,
    synhet_dataset,
)
from hetskel.io import load_json, save_json, shared_data_dir

SETTINGS = {  # quick: CI on a shared 2-core CPU; full: a few minutes
    "quick": {"ntu_rounds": 2, "synth_samples": 1000, "cpu_batch": 8, "cpu_warmup": 1, "cpu_steps": 3,
              "cpu_data": 64, "aug_batch": 256, "aug_loop": 32, "gpu_batch": 256, "gpu_warmup": 3,
              "gpu_steps": 10, "gpu_data": 1024, "paper_batch": 4, "paper_rounds": 2},
    "full": {"ntu_rounds": 5, "synth_samples": 10000, "cpu_batch": 32, "cpu_warmup": 2, "cpu_steps": 6,
             "cpu_data": 512, "aug_batch": 1024, "aug_loop": 256, "gpu_batch": 512, "gpu_warmup": 5,
             "gpu_steps": 30, "gpu_data": 4096, "paper_batch": 16, "paper_rounds": 4},
}


# ---------------------------------------------------------------------------------------------
def bench_flops() -> dict:
    """Inference FLOPs per sample at the paper preset (30 and 25 joints)."""
    from hetskel.model.flops import (
        PAPER_FUSED_GFLOPS,
        PAPER_THREE_STREAMS_GFLOPS,
        flops_table,
    )

    out = {"paper_gflops": {"fused": PAPER_FUSED_GFLOPS, "three_streams": PAPER_THREE_STREAMS_GFLOPS}}
    for joints, suffix in ((30, ""), (25, "_25j")):
        rows = flops_table("paper", num_joints=joints)
        out[f"gflops_fused_paper{suffix}"] = next(r["gflops"] for r in rows if r["model"] == "fused"
                                                  and r["modalities"] == "J+C+S")
        out[f"gflops_three_streams_paper{suffix}"] = rows[-1]["gflops"]
        out[f"flops_table{suffix}"] = rows
    return out


def bench_ntu(rounds: int, data_dir: Path | None) -> dict:
    folder = (data_dir or shared_data_dir() or Path("../shared/data")) / "ntu_raw_sample"
    files = sorted(folder.glob("*.skeleton"))
    if not files:
        return {"skipped": f"no .skeleton files in {folder} (set HETSKEL_SHARED_DATA or --shared-data)"}
    from hetskel.bench.ntu_reader import ntu_parse_speedup

    return {**ntu_parse_speedup(files, rounds=rounds), "dir": str(folder), "rounds": rounds}


def bench_synth(num_samples: int, num_frames: int = 64) -> dict:
    from hetskel.data.synhet import generate

    t0, c0 = time.perf_counter(), time.process_time()
    generate(num_samples=num_samples, num_frames=num_frames, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"samples": num_samples, "frames": num_frames, "seconds": wall, "cpu_seconds": cpu,
            "samples_per_s": num_samples / wall}


# ---------------------------------------------------------------------------------------------
# pretraining step
def bench_train(preset: str, device: str, batch_size: int, warmup: int, steps: int, data_samples: int,
                lifter_width: int = 512, compile: bool = False, peak_tflops: float | None = None,
                amp: str = "auto", ds=None, details: bool = True) -> dict:
    """samples/s of full pretraining steps (``train.py``'s step: gather, autocast forward, backward,
    Adam), FLOPs of a step, data-vs-compute split, MFU and peak memory on CUDA. ``amp`` is
    ``TrainConfig.amp`` ("auto": bf16 on CUDA, fp32 on CPU; "bf16" on CPU checks the GPU's path).
    ``ds``: a SynHet ``ArrayDataset`` to reuse; ``details=False``: only the step times (no FLOP count,
    no data-part timing)."""
    from hetskel.train.config import TrainConfig, make_optimizer

    dev = torch.device(device)
    warmup = max(warmup, 2 if compile else 1)  # warm-up step 0 is the FLOP count; compile needs one more
    ds = (ds if ds is not None and len(ds) >= batch_size else synhet_dataset(max(data_samples, batch_size))).to(dev)
    obj = build_pretrainer(preset, lifter_width).to(dev).train()
    cfg = TrainConfig(amp=amp)
    amp = cfg.amp_dtype(dev)
    opt = make_optimizer(cfg, [p for p in obj.parameters() if p.requires_grad])
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).to(dev)
    per_epoch = len(ds) // batch_size
    model = obj

    def step(i: int, counter: FlopCounterMode | None = None) -> dict | None:
        idx = order[(i % per_epoch) * batch_size:(i % per_epoch + 1) * batch_size]
        batch = ds.get_batch(idx)
        with torch.autocast(dev.type, dtype=amp) if amp else nullcontext():
            out = model(batch)
        fwd = counter.get_flop_counts() if counter is not None else None  # a copy: forward only
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        return fwd

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with FlopCounterMode(display=False) if details else nullcontext() as counter:
        fwd_counts = step(0, counter)
    times, cpu_times = [], []
    if compile:
        model = torch.compile(obj)
    for i in range(1, warmup):
        step(i)
    for i in range(warmup, warmup + steps):
        sync(dev)
        t0, c0 = time.perf_counter(), time.process_time()
        step(i)
        sync(dev)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    step_s = statistics.median(times)
    rate = batch_size / step_s
    out = {"preset": preset, "device": str(dev), "amp": str(amp).replace("torch.", "") if amp else "fp32",
           "compile": compile, "lifter_width": lifter_width, "batch_size": batch_size, "warmup_steps": warmup,
           "steps": steps, "step_s": [round(t, 4) for t in times], "step_s_median": step_s,
           "samples_per_s": rate, "samples_per_s_mean": batch_size * steps / sum(times),
           # process CPU seconds per step (all threads): well under threads x step_s = cores taken by others;
           # on one thread, samples per CPU second hardly depends on other processes (a stable rate)
           "step_cpu_s_median": statistics.median(cpu_times),
           "samples_per_cpu_s": batch_size / statistics.median(cpu_times),
           "torch_threads": torch.get_num_threads()}
    if not details:
        return out
    g = torch.Generator(device=dev).manual_seed(1)
    data_times = []
    for i in range(max(3, steps // 2)):
        idx = order[(i % per_epoch) * batch_size:(i % per_epoch + 1) * batch_size]
        sync(dev)
        t0 = time.perf_counter()
        data_part(obj, ds, idx, g)
        sync(dev)
        data_times.append(time.perf_counter() - t0)

    data_s = statistics.median(data_times)
    fwd = sum(fwd_counts["Global"].values())
    # the processor runs through forward() per view, or through process_clip()/view() once per clip
    # (not a module call: then only its submodules, e.g. the lifters, are named in the counts)
    proc_keys = [k for k in fwd_counts if k == "Pretrainer.processor" or k.startswith("Pretrainer.processor.")]
    proc_keys = [k for k in proc_keys if not any(k.startswith(o + ".") for o in proc_keys)]
    proc_fwd = sum(sum(fwd_counts[k].values()) for k in proc_keys)
    train_flops = 3 * fwd / batch_size  # the usual 3x forward (backward = 2x forward)
    out.update({"data_s_median": data_s, "data_fraction": data_s / step_s,
                "fwd_gflops_per_sample": fwd / batch_size / 1e9,
                "fwd_processor_fraction": proc_fwd / fwd if fwd else None,
                "fwd_bwd_gflops_per_sample_counted": counter.get_total_flops() / batch_size / 1e9,
                "train_gflops_per_sample": train_flops / 1e9,
                "achieved_tflops": train_flops * rate / 1e12})
    peak = peak_flops(dev, peak_tflops)
    out["peak_tflops"] = peak / 1e12 if peak else None
    out["mfu"] = train_flops * rate / peak if peak else None
    if dev.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


# ---------------------------------------------------------------------------------------------
# J+M+B vs J+C+S at the paper preset, side by side (the GPU check: hetskel.bench.gpu_check)
def bench_pair(preset: str, device: str, batch_size: int, warmup: int, steps: int, lifter_width: int = 512,
               amp: str = "auto", ds=None, process: str | None = None) -> dict:
    """samples/s of the J+M+B and the J+C+S pretraining step (same encoder preset and views), their
    steps interleaved (one of each per round) so both see the same machine load; rate from the median
    step. ``ratio`` = J+C+S / J+M+B. Also the lifter's FLOPs per sample (one pass per clip) beside
    the fused encoder's."""
    from hetskel.model.flops import encoder_flops
    from hetskel.train.config import TrainConfig, make_optimizer

    dev = torch.device(device)
    frames = 64
    ds = (ds if ds is not None and len(ds) >= batch_size else synhet_dataset(max(batch_size, 16), frames)).to(dev)
    models = {k: m.to(dev).train() for k, m in pair_models(preset, lifter_width, process).items()}
    cfg = TrainConfig(amp=amp)
    amp_dtype = cfg.amp_dtype(dev)
    opts = {k: make_optimizer(cfg, [p for p in m.parameters() if p.requires_grad]) for k, m in models.items()}
    idx = torch.arange(batch_size, device=dev)
    batch = ds.get_batch(idx)
    times: dict[str, list[float]] = {k: [] for k in models}
    for r in range(warmup + steps):
        for k, m in models.items():
            sync(dev)
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                out = m(batch)
            opts[k].zero_grad(set_to_none=True)
            out["loss"].backward()
            opts[k].step()
            sync(dev)
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
    rows = {}
    for k, m in models.items():
        med = statistics.median(times[k])
        rows[k] = {"samples_per_s": batch_size / med, "step_s": [round(t, 4) for t in times[k]],
                   "joints": m.encoder.num_joints, "per_clip": m.per_clip}
    jcs = models["J+C+S"]
    return {"preset": preset, "device": str(dev), "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
            "batch_size": batch_size, "warmup_rounds": warmup, "rounds": steps, "interleaved": True,
            "lifter_width": lifter_width, "rows": rows,
            "ratio": rows["J+C+S"]["samples_per_s"] / rows["J+M+B"]["samples_per_s"],
            "lifter_gflops_per_sample": lifter_gflops(jcs),
            "encoder_gflops_per_sample": encoder_flops(preset, ("J", "C", "S"), jcs.encoder.num_joints) / 1e9}


def profile_step(preset: str = "paper", batch_size: int = 16, steps: int = 2, lifter_width: int = 512,
                 row_limit: int = 15, model: str = "J+C+S") -> dict:
    """``torch.profiler`` of ``steps`` full pretraining steps of ``model`` (``"J+C+S"`` or ``"J+M+B"``)
    at ``preset`` on the CPU, after one warm-up step: the top operators by self CPU time (forward and
    backward ops alike; backward ones are named ``...Backward``) as a printed table and as rows."""
    from torch.profiler import ProfilerActivity, profile

    from hetskel.train.config import TrainConfig, make_optimizer

    ds = synhet_dataset(max(batch_size, 16), 64)
    m = pair_models(preset, lifter_width)[model].train()
    opt = make_optimizer(TrainConfig(), [p for p in m.parameters() if p.requires_grad])
    batch = ds.get_batch(torch.arange(batch_size))

    def step():
        out = m(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    avg = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in avg) or 1
    rows = [{"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3 / steps, "share": e.self_cpu_time_total / total,
             "calls_per_step": e.count / steps} for e in avg[:row_limit]]
    lines = ["| operator | self CPU ms / step | share | calls / step |", "|---|---:|---:|---:|"]
    lines += [f"| `{r['op']}` | {r['self_cpu_ms']:.1f} | {100 * r['share']:.1f}% | {r['calls_per_step']:.0f} |"
              for r in rows]
    return {"preset": preset, "model": model, "batch_size": batch_size, "steps": steps, "lifter_width": lifter_width,
            "step_ms": total / 1e3 / steps, "rows": rows, "table": "\n".join(lines)}


# ---------------------------------------------------------------------------------------------
def bench_augment(batch: int, loop_samples: int, device: str = "cpu", out_frames: int = 64) -> dict:
    """One UmURL view (crop-resize + spatial) of SynHet ntu25 clips: whole batch vs one sample at a time."""
    from hetskel.model.augment import AugmentConfig, crop_batch, spatial_augment

    dev = torch.device(device)
    ds = synhet_dataset(batch)
    x, lengths = ds.x["ntu25"].to(dev), ds.lengths["ntu25"].to(dev)
    cfg, g = AugmentConfig(), torch.Generator(device=dev).manual_seed(0)

    def view(xb, lb):
        return spatial_augment(crop_batch({"x": xb, "length": lb}, out_frames, cfg, g)["x"], cfg, g)

    def batched():
        view(x, lengths)

    def loop():
        for i in range(loop_samples):
            view(x[i:i + 1], lengths[i:i + 1])

    rates = {}
    for name, fn, n in (("batched", batched, batch), ("loop", loop, loop_samples)):
        fn()  # warm-up
        best = float("inf")
        for _ in range(3):
            sync(dev)
            t0 = time.perf_counter()
            fn()
            sync(dev)
            best = min(best, time.perf_counter() - t0)
        rates[name] = n / best
    return {"device": str(dev), "batch": batch, "loop_samples": loop_samples, "out_frames": out_frames,
            "batched_samples_per_s": rates["batched"], "loop_samples_per_s": rates["loop"],
            "speedup": rates["batched"] / rates["loop"]}


# ---------------------------------------------------------------------------------------------
def measure(quick: bool, skip=(), shared_data: Path | None = None, gpu_batch: int | None = None,
            compile: bool = False, peak_tflops: float | None = None, lifter_width: int = 512,
            cpu_amp: str = "auto") -> dict:
    """Every section not in ``skip`` (flops, ntu, synth, train, gpu, augment). A section that raises
    is recorded as ``{"error": ...}`` under its key (and in ``errors``) and the others still run."""
    s = SETTINGS["quick" if quick else "full"]
    res: dict = {"mode": "quick" if quick else "full", "machine": machine_info(), "section_s": {}, "errors": {}}
    t0, c0 = time.perf_counter(), time.process_time()

    def flops():
        res.update(bench_flops())

    def ntu():
        res["ntu_parse_speedup"] = bench_ntu(s["ntu_rounds"], shared_data)

    def synth():
        res["synth"] = bench_synth(s["synth_samples"])
        res["synth_samples_per_s"] = res["synth"]["samples_per_s"]

    def train():
        ds = synhet_dataset(max(s["cpu_data"], s["cpu_batch"]))
        res["train_cpu"] = one = bench_train("small", "cpu", s["cpu_batch"], s["cpu_warmup"], s["cpu_steps"],
                                             s["cpu_data"], lifter_width, amp=cpu_amp, ds=ds)
        res["train_samples_per_s_cpu"] = res["train_cpu"]["samples_per_s"]
        threads = torch.get_num_threads()
        if threads > 1:
            # the same step on one thread: on a shared machine, OpenMP threads that wait for each
            # other at every op's barrier can cost more than the second core gives; and its
            # samples per CPU second is the rate least disturbed by other processes
            torch.set_num_threads(1)
            try:
                one = bench_train("small", "cpu", s["cpu_batch"], 1, 3, s["cpu_data"], lifter_width, amp=cpu_amp,
                                  ds=ds, details=False)
            finally:
                torch.set_num_threads(threads)
        res["train_cpu_1thread"] = {k: one[k] for k in ("samples_per_s", "samples_per_cpu_s", "step_s",
                                                        "step_cpu_s_median")}

    def paper():
        res["train_cpu_paper"] = bench_pair("paper", "cpu", s["paper_batch"], 1, s["paper_rounds"], lifter_width,
                                            amp=cpu_amp)
        res["jcs_vs_jmb_cpu_paper"] = res["train_cpu_paper"]["ratio"]

    def gpu():
        if not torch.cuda.is_available():
            res["train_gpu"] = {"skipped": "no CUDA device"}
            return
        res["train_gpu"] = bench_train("paper", "cuda", gpu_batch or s["gpu_batch"], s["gpu_warmup"],
                                       s["gpu_steps"], s["gpu_data"], lifter_width, compile, peak_tflops)
        res["train_samples_per_s_gpu"] = res["train_gpu"]["samples_per_s"]
        res["mfu_gpu"] = res["train_gpu"]["mfu"]
        res["peak_memory_gb_gpu"] = res["train_gpu"]["peak_memory_gb"]

    def augment():
        res["augment"] = bench_augment(s["aug_batch"], s["aug_loop"])
        if torch.cuda.is_available() and "gpu" not in skip:
            res["augment_gpu"] = bench_augment(s["aug_batch"], s["aug_loop"], "cuda")

    sections = {"flops": (flops, "flops"), "ntu": (ntu, "ntu_parse_speedup"),
                "synth": (synth, "synth"), "train": (train, "train_cpu"),
                "paper": (paper, "train_cpu_paper"), "gpu": (gpu, "train_gpu"),
                "augment": (augment, "augment")}
    for name, (fn, key) in sections.items():
        if name in skip:
            res[key] = {"skipped": f"--skip {name}"}
            continue
        tick = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 -- one broken section must not hide the others' numbers
            res["errors"][name] = f"{type(e).__name__}: {e}"
            res[key] = {"error": res["errors"][name]}
            traceback.print_exc()
        res["section_s"][name] = round(time.perf_counter() - tick, 2)
    res["elapsed_s"] = time.perf_counter() - t0
    # CPU seconds of this process over wall seconds: far below torch_threads means others had the cores
    res["process_cpu_s"] = time.process_time() - c0
    res["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hetskel.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI-sized run (well under a minute on 2 cores)")
    p.add_argument("--out", type=Path, help="write results to FILE.json and the table to FILE.md")
    p.add_argument("--baseline", type=Path, help="earlier results JSON: flag rates more than --tolerance lower")
    p.add_argument("--tolerance", type=float, default=REGRESSION_TOLERANCE)
    p.add_argument("--results", type=Path, help="do not measure: load these results (re-render, compare)")
    p.add_argument("--skip", default="", help="comma list of flops,ntu,synth,train,paper,gpu,augment")
    p.add_argument("--shared-data", type=Path, help="folder holding ntu_raw_sample/ (default ../shared/data)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads before measuring")
    p.add_argument("--gpu-batch", type=int, help="batch size of the GPU pretraining run")
    p.add_argument("--lifter-width", type=int, default=512,
                   help="HeteroProcessor lifter width (512: the paper preset's default; the lifting literature's 1024)")
    p.add_argument("--compile", action="store_true", help="torch.compile the Pretrainer in the GPU run")
    p.add_argument("--cpu-amp", default="auto", choices=("auto", "bf16", "off"),
                   help="autocast of the CPU pretraining run (bf16 exercises the GPU run's autocast path)")
    p.add_argument("--peak-tflops", type=float, help="peak bf16 TFLOP/s for MFU (default: from the GPU name)")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a rate regressed")
    p.add_argument("--gpu-check", action="store_true",
                   help="only the prepared GPU check (paper preset, bf16, batch 512, NTU-60-sized data; JSON to --out)")
    p.add_argument("--smoke", action="store_true", help="with --gpu-check: a tiny run that works on CPU")
    p.add_argument("--profile", choices=("J+C+S", "J+M+B"),
                   help="only torch.profiler's top operators of that model's paper-preset CPU step (batch 16)")
    a = p.parse_args(argv)
    command = "python -m hetskel.bench " + " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.profile:
        res = profile_step("small" if a.quick else "paper", 4 if a.quick else 16, 1 if a.quick else 2,
                           a.lifter_width, model=a.profile)
        res["command"], res["machine"] = command, machine_info()
        if a.out:
            save_json(a.out, res)
        print(f"{res['model']} step at the {res['preset']} preset, batch {res['batch_size']}: "
              f"{res['step_ms']:.0f} ms of operator self time per step\n{res['table']}")
        return 0
    if a.gpu_check:
        res = gpu_check(a.smoke, lifter_width=a.lifter_width, peak_tflops=a.peak_tflops)
        res["command"] = command
        res["machine"] = machine_info()
        text = json.dumps(res, indent=1, default=str)
        if a.out:
            save_json(a.out, res)
        print(text)
        return 0 if not any("error" in r for r in res["runs"]) else 1
    if a.results:
        res = load_json(a.results)
        res["rendered_by"] = command
    else:
        res = measure(a.quick, {x.strip() for x in a.skip.split(",") if x.strip()}, a.shared_data, a.gpu_batch,
                      a.compile, a.peak_tflops, a.lifter_width, a.cpu_amp)
        res["command"] = command
    return report(res, a.out, a.baseline, a.tolerance, a.fail_on_regression)

