"""Choose the default configuration on a validation split carved from SynHet's training subjects.

Each candidate is a set of ``PretrainSpec`` fields; every candidate and seed pretrains J+C+S at the
notebooks' default size with ``validation=0.25`` (a quarter of the x-sub training subjects carved
out: pretraining and the probes use the other three quarters, the probes are scored on the carved
quarter; the test subjects are never read), then a 150-epoch linear probe and 1-NN on the fused and
on the concatenated features. One torch thread per process, so two can share two cores:

    .venv/bin/python tools/recipe_selection.py --out runs/recipe_selection/a --seeds 0 1 \
        --candidates paper shear_intra_view
    .venv/bin/python tools/recipe_selection.py --out runs/recipe_selection/b --seeds 0 1 \
        --candidates intra_view shear_intra_view_observed

A candidate that pretrains on a larger draw is scored on the default draw's clips (same subjects,
same carve) with ``--probe-num-samples``:

    .venv/bin/python tools/recipe_selection.py --out runs/recipe_selection/unlabeled4x --seeds 0 \
        --candidates unlabeled4x --probe-num-samples 2000

Writes ``OUT/rows.json`` and prints one line per run and the mean per candidate and feature set.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time

import torch

from hetskel.eval.pretrained import evaluate_pretrained
from hetskel.experiment import pretrain as experiment
from hetskel.io import make_run_dir, save_json
from hetskel.studies.diagnose import variant_spec

PAPER = {"recipe": "paper"}
#: candidate name -> PretrainSpec fields (over the paper's configuration)
CANDIDATES = {
    "paper": dict(PAPER),
    "intra_view": {**PAPER, "objective": "umurl+intra_view"},
    "shear_intra_view": {**PAPER, "objective": "umurl+intra_view", "augment": {"p_corrupt": 0.0}},
    "shear_intra_view_observed": {**PAPER, "objective": "umurl+intra_view", "augment": {"p_corrupt": 0.0},
                                  "keep_observed": "unsupervised"},
    # over the kit's default recipe (the chosen ``shear_intra_view``): jitter averaged out of the inputs
    "smooth5": {"recipe": "hetskel", "smooth_frames": 5},
    "smooth9": {"recipe": "hetskel", "smooth_frames": 9},
    "shear05": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "shear_range": 0.5}},
    "shear025": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "shear_range": 0.25}},
    "recon5": {"recipe": "hetskel", "reconstruction_weight": 5.0},
    "recon20": {"recipe": "hetskel", "reconstruction_weight": 20.0},
    "epochs60": {"recipe": "hetskel", "epochs": 60},
    "lr1e-3": {"recipe": "hetskel", "lr": 1e-3},
    "batch32": {"recipe": "hetskel", "batch_size": 32},
    "lambda1": {"recipe": "hetskel", "lambda_": 1.0},
    "lambda10": {"recipe": "hetskel", "lambda_": 10.0},
    "bones02": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "bone_scale": 0.2}},
    "bones04": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "bone_scale": 0.4}},
    "part25": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "part_view": 0.25}},
    "part50": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "part_view": 0.5}},
    "shear15": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "shear_range": 1.5}},
    "intra30": {"recipe": "hetskel", "intra_view_weight": 30.0},
    # 4x the unlabeled clips for pretraining (same subjects, same carve); pair with --probe-num-samples 2000
    "unlabeled4x": {"recipe": "hetskel", "num_samples": 8000},
    "crop_only": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "spatial": False}},
    # a random rotation instead of the shear (a shear can map a head turn's direction onto a nod's)
    "rot30": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "rotation_range": math.radians(30)}},
    "rot60": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "rotation_range": math.radians(60)}},
    # every bone at the person's mean length: a face bone's rotation as large as a forearm's
    "equal_bones": {"recipe": "hetskel", "equal_bones": True},
    "equal_bones_intra10": {"recipe": "hetskel", "equal_bones": True, "intra_view_weight": 10.0},
    # temporal crops: UmURL's rule keeps >= 64 original frames, so SynHet's 64-frame clips are never
    # cropped and two views differ only in space; these crop 50-100% / 10-100% of every clip
    "crop50": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "min_crop_frames": None, "crop_ratio": [0.5, 1.0]}},
    "crop10": {"recipe": "hetskel", "augment": {"p_corrupt": 0.0, "min_crop_frames": None}},
    "intra1": {"recipe": "hetskel", "intra_view_weight": 1.0},
    "intra3": {"recipe": "hetskel", "intra_view_weight": 3.0},
    "intra10": {"recipe": "hetskel", "intra_view_weight": 10.0},
    "observed_words": {"recipe": "hetskel", "semantic_from": "observed"},
    "smooth5_observed_words": {"recipe": "hetskel", "smooth_frames": 5, "semantic_from": "observed"},
    "smooth9_observed_words": {"recipe": "hetskel", "smooth_frames": 9, "semantic_from": "observed"},
}


def one_run(name: str, seed: int, out, probe_epochs: int, probe_num_samples: int | None = None) -> dict:
    spec = variant_spec({"dataset": "synhet", "validation": 0.25, **CANDIDATES[name]}, "J,C,S", seed)
    t0 = time.time()
    run = experiment.pretrain(spec, out / f"{name}_seed{seed}")
    net, spec = experiment.load_pretrained(run.run_dir)
    if probe_num_samples is not None:  # the probes' clips from another draw size (same subjects, same carve)
        spec = dataclasses.replace(spec, num_samples=probe_num_samples)
    fit, val = experiment.load_data(spec)
    row = {"candidate": name, "seed": seed, "fields": CANDIDATES[name], "probe_num_samples": spec.num_samples,
           "num_fit": len(fit), "num_validation": len(val),
           "pretrain_s": round(time.time() - t0), "semantic_table": run.semantic_table}
    for stream in ("fused", "concat"):
        r = evaluate_pretrained(net, fit, val, probe_epochs=probe_epochs, semi_fractions=(), stream=stream)
        row[stream] = {"linear": r["linear_top1"], "knn": r["knn_top1"], "groups": r["per_group_linear_top1"]}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="a new folder for the runs and rows.json")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--probe-epochs", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--probe-num-samples", type=int, default=None,
                    help="probe and score on a SynHet draw of this size instead of the candidate's (same subjects "
                         "and carve), so a candidate that pretrains on more clips is scored on the same clips")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = make_run_dir(args.out, "recipe_selection")
    rows = []
    for name in args.candidates:
        for seed in args.seeds:
            r = one_run(name, seed, out, args.probe_epochs, args.probe_num_samples)
            rows.append(r)
            print(f"{name} seed {seed}: " + "; ".join(
                f"{s} linear {r[s]['linear']:.1f} (" + ", ".join(f"{g} {v:.1f}" for g, v in r[s]["groups"].items())
                + f"), 1-NN {r[s]['knn']:.1f}" for s in ("fused", "concat")) +
                f" [{r['num_fit']} fit / {r['num_validation']} validation clips, {r['pretrain_s']} s]", flush=True)
            save_json(out / "rows.json", {"seeds": args.seeds, "rows": rows})
    for name in args.candidates:
        mine = [r for r in rows if r["candidate"] == name]
        print(name + ": " + ", ".join(f"{s} {statistics.fmean(r[s]['linear'] for r in mine):.2f}"
                                      for s in ("fused", "concat")) + f" (mean validation linear over {len(mine)} seeds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
