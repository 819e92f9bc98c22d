"""How reliably does a small pretraining beat the untrained network? (sizing 05_evaluate's smoke check)

Pretrains J+C+S at a given small size for several seeds, probes each pretrained network and its
untrained twin (same spec and seed), and prints the linear and 1-NN gains per seed, their min and
mean. One torch thread, as the smoke run uses.

    .venv/bin/python tools/smoke_gain_study.py --seeds 0 1 2 3 4 5 6 7 \
        --set num_samples=400 epochs=10 batch_size=32 lr=1e-2

``--set`` overrides ``experiment.SMOKE`` fields (``augment`` as JSON).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from hetskel.config import parse_assignments
from hetskel.eval.pretrained import evaluate_pretrained
from hetskel.experiment import pretrain as experiment
from hetskel.experiment.spec import smoke_spec
from hetskel.io import save_json


def one_seed(seed: int, overrides: dict, probe_epochs: int) -> dict:
    spec = smoke_spec(seed=seed, data_seed=seed, **overrides)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = experiment.pretrain(spec, f"{tmp}/run")
        pre_s = time.perf_counter() - t0
        net, spec = experiment.load_pretrained(run.run_dir, device="cpu")
        train_ds, val_ds = experiment.load_data(spec)
        res = evaluate_pretrained(net, train_ds, val_ds, probe_epochs=probe_epochs, semi_fractions=(),
                                  untrained=experiment.build_pretrainer(spec))
    return {"seed": seed, "steps": run.epochs[-1]["global_step"] if run.epochs else 0, "pretrain_s": pre_s,
            "total_s": time.perf_counter() - t0, "num_val": len(val_ds),
            "linear": res["linear_top1"], "linear_random": res["linear_top1_random_init"],
            "knn": res["knn_top1"], "knn_random": res["knn_top1_random_init"],
            "groups": res["per_group_linear_top1"], "groups_random": res.get("per_group_linear_top1_random_init", {})}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--set", nargs="*", default=[], help="SMOKE overrides, key=value")
    ap.add_argument("--probe-epochs", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="", help="also write every row to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = parse_assignments(args.set)
    print("overrides:", overrides, flush=True)
    rows = []
    for seed in args.seeds:
        r = one_seed(seed, overrides, args.probe_epochs)
        rows.append(r)
        print(f"seed {seed}: steps {r['steps']}, val {r['num_val']}, linear {r['linear']:.1f} vs {r['linear_random']:.1f} "
              f"({r['linear'] - r['linear_random']:+.1f}), 1-NN {r['knn']:.1f} vs {r['knn_random']:.1f} "
              f"({r['knn'] - r['knn_random']:+.1f}), pretrain {r['pretrain_s']:.0f} s, all {r['total_s']:.0f} s", flush=True)
    lin = np.array([r["linear"] - r["linear_random"] for r in rows])
    knn = np.array([r["knn"] - r["knn_random"] for r in rows])
    print(f"linear gain: min {lin.min():+.1f} mean {lin.mean():+.1f} max {lin.max():+.1f}; "
          f"1-NN gain: min {knn.min():+.1f} mean {knn.mean():+.1f} max {knn.max():+.1f} over {len(rows)} seeds")
    for g in rows[0]["groups"]:   # per SynHet class group: what 05's smoke thresholds are sized on
        pre = np.array([r["groups"][g] for r in rows])
        rnd = np.array([r["groups_random"].get(g, np.nan) for r in rows])
        print(f"{g}: pretrained min {pre.min():.1f} mean {pre.mean():.1f} max {pre.max():.1f}; "
              f"random init min {np.nanmin(rnd):.1f} mean {np.nanmean(rnd):.1f} max {np.nanmax(rnd):.1f}; "
              f"paired gain min {np.nanmin(pre - rnd):+.1f} mean {np.nanmean(pre - rnd):+.1f}")
    if args.out:
        save_json(args.out, {"overrides": overrides, "probe_epochs": args.probe_epochs, "rows": rows})


if __name__ == "__main__":
    main()
