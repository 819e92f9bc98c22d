"""How wide must the lifter be? MPJPE on a validation split carved from SynHet's training subjects,
per hidden width, with its GFLOPs per pretraining sample at the paper preset (T=64, M=2).

01_lifter's settings otherwise (2000 clips, 4 layers, dropout 0.2, 20 epochs, batch 512, lr 1e-3,
every 4th frame); one torch thread:

    .venv/bin/python tools/lifter_width.py --widths 256 512 1024 --out runs/lifter_width.json
"""
from __future__ import annotations

import argparse
import time

import torch

from hetskel.data import synhet
from hetskel.data.splits import carve_validation, validation_names
from hetskel.hetero.lifter import lifter_flops
from hetskel.hetero.lifter_train import LifterConfig, train_lifter
from hetskel.io import save_json
from hetskel.studies.lifter import split_rows, synhet_pairset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d3, d2 = synhet.generate(num_samples=args.num_samples, num_frames=64, seed=args.seed)
    d3["split"] = carve_validation(d3["split"], d3["annotations"], "xsub_train", 0.25, seed=args.seed)
    fit, val = validation_names("xsub_train")
    pairs = synhet_pairset(d3, d2)
    pairs.split = split_rows(d3)
    rows = []
    for width in args.widths:
        cfg = LifterConfig(width=width, num_layers=4, dropout=0.2, epochs=args.epochs, batch_size=512, lr=1e-3,
                           frame_stride=4, seed=args.seed)
        t0 = time.time()
        res = train_lifter(*pairs.split_pairs(fit, val), cfg)
        m = res.metrics["lifter"]
        rows.append({"width": width, "mpjpe_mm": m["mpjpe_mm"], "pa_mpjpe_mm": m["pa_mpjpe_mm"],
                     "train_s": round(time.time() - t0, 1),
                     "gflops_per_sample_paper": lifter_flops(20, 20, width, 4, 64, 2) / 1e9})
        print(f"width {width}: MPJPE {m['mpjpe_mm']:.1f} mm, PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm on {val} "
              f"({rows[-1]['gflops_per_sample_paper']:.3f} GFLOPs / sample at the paper preset, "
              f"{rows[-1]['train_s']:.0f} s)", flush=True)
    if args.out:
        save_json(args.out, {"num_samples": args.num_samples, "epochs": args.epochs, "seed": args.seed,
                             "validation": val, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
