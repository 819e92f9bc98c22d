"""``python -m hetskel.bench --gpu-check [--smoke] --out F.json``: the prepared GPU check.

The paper preset's J+C+S and J+M+B pretraining steps in bf16 at batch 512 on NTU-60-sized
device-resident data (40,091 synthetic clips of the real shapes), within about 7 minutes on one
H100/H200: samples/s, MFU against the card's bf16 peak, peak memory, the data part's share of a step,
``torch.compile`` off/on, and the projected wall time of the paper's 451 epochs.
"""
from __future__ import annotations

import statistics
import time
import traceback

import torch
from torch.utils.flop_counter import FlopCounterMode

from hetskel.bench.steps import data_part, pair_models, peak_flops, sync


def ntu60_arrays(n: int, frames: int, device) -> dict:
    """Synthetic NTU-60-sized device-resident data of the real shapes: ``ntu25 (n,2,T,25,3)``,
    ``coco17 (n,2,T,17,2)``, original lengths; about half the clips have one person."""
    g = torch.Generator(device="cpu").manual_seed(0)
    solo = torch.rand(n, generator=g) < 0.5
    out = {}
    for key, (v, c) in {"ntu25": (25, 3), "coco17": (17, 2)}.items():
        x = torch.empty(n, 2, frames, v, c, device=device).normal_(generator=torch.Generator(device=device).manual_seed(1))
        x[solo.to(device), 1] = 0
        out[key] = x
    out["length"] = torch.randint(40, 300, (n,), generator=g).to(device)
    return out


def gpu_check(smoke: bool = False, compile_modes=(False, True), lifter_width: int = 512,
              peak_tflops: float | None = None, budget_s: float = 420.0) -> dict:
    """The paper preset's J+C+S and J+M+B pretraining steps in bf16 at batch 512 on NTU-60-sized
    device-resident data (40,091 clips): samples/s, MFU, peak memory, the data part's share of a step
    (gather + K+1 crops + spatial draws, timed alone), ``torch.compile`` off/on and the projected wall
    time of 451 epochs. ``smoke``: a tiny version (small preset, batch 4, 64 clips, CPU if no GPU,
    compile with the ``eager`` backend) that runs end to end anywhere. Stops starting new
    configurations past ``budget_s`` (recorded as skipped)."""
    from hetskel.train.config import TrainConfig, make_optimizer

    t_start = time.perf_counter()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset, batch_size, clips = ("small", 4, 64) if smoke else ("paper", 512, 40091)
    warmup, steps = (1, 2) if smoke else (3, 8)
    frames = 64
    data = ntu60_arrays(clips, frames, dev)
    res = {"smoke": smoke, "device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
           "preset": preset, "batch_size": batch_size, "clips": clips, "frames": frames, "amp": "bfloat16",
           "epochs": 451, "runs": []}
    peak = peak_flops(dev, peak_tflops)
    res["peak_tflops"] = peak / 1e12 if peak else None
    order = torch.randperm(clips, device=dev)
    for name in ("J+C+S", "J+M+B"):
        for comp in compile_modes:
            row = {"model": name, "compile": comp}
            res["runs"].append(row)
            if time.perf_counter() - t_start > budget_s:
                row["skipped"] = f"over the {budget_s:.0f} s budget"
                continue
            try:
                obj = pair_models(preset, lifter_width)[name].to(dev).train()
                opt = make_optimizer(TrainConfig(), [p for p in obj.parameters() if p.requires_grad])
                model = torch.compile(obj, backend="eager" if smoke else "inductor") if comp else obj
                keys = ("ntu25", "coco17", "length") if name == "J+C+S" else ("ntu25", "length")

                def get(i):
                    idx = order[(i * batch_size) % (clips - batch_size + 1):][:batch_size]
                    return {k: data[k][idx] for k in keys}

                def step(i, counter=None, model=model, opt=opt):
                    with torch.autocast(dev.type, dtype=torch.bfloat16):
                        out = model(get(i))
                    fwd = counter.get_total_flops() if counter is not None else None
                    opt.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    opt.step()
                    return fwd

                with FlopCounterMode(display=False) as counter:
                    fwd = step(0, counter) if not comp else None
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                t0 = time.perf_counter()
                for i in range(1, warmup + 1):
                    step(i)
                sync(dev)
                row["warmup_s"] = time.perf_counter() - t0
                times = []
                for i in range(warmup + 1, warmup + 1 + steps):
                    sync(dev)
                    t0 = time.perf_counter()
                    step(i)
                    sync(dev)
                    times.append(time.perf_counter() - t0)
                med = statistics.median(times)
                g = torch.Generator(device=dev).manual_seed(1)
                dts = []
                for i in range(3):
                    sync(dev)
                    t0 = time.perf_counter()
                    data_part(obj, GatheredBatch(get(i)), None, g)
                    sync(dev)
                    dts.append(time.perf_counter() - t0)
                rate = batch_size / med
                row.update({"step_s": [round(t, 4) for t in times], "samples_per_s": rate,
                            "data_fraction": statistics.median(dts) / med,
                            "projected_wall_h": 451 * clips / rate / 3600})
                if fwd is not None:
                    row["train_gflops_per_sample"] = 3 * fwd / batch_size / 1e9
                if dev.type == "cuda":
                    row["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
                del model, obj, opt
            except Exception as e:  # noqa: BLE001 -- record and go on with the other configurations
                row["error"] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
    for name in ("J+C+S", "J+M+B"):  # MFU from the eager run's counted FLOPs
        flops = next((r.get("train_gflops_per_sample") for r in res["runs"] if r["model"] == name
                      and r.get("train_gflops_per_sample")), None)
        for r in res["runs"]:
            if r["model"] == name and "samples_per_s" in r and flops and peak:
                r["mfu"] = flops * 1e9 * r["samples_per_s"] / peak
    res["elapsed_s"] = time.perf_counter() - t_start
    return res


class GatheredBatch:
    """A batch already gathered, for ``_data_part`` (its gather is then the copy the step makes)."""

    def __init__(self, batch: dict):
        self.batch = batch
        self.sources = [k for k in batch if k != "length"]

    def get_batch(self, idx):
        return {k: v.clone() for k, v in self.batch.items()}
