"""Does adding skeleton formats help? J, C, J+C, J+C+S per class group, four protocols, paired by seed.

One process per seed list; each trial on one torch thread so that two of these can share two cores:

    .venv/bin/python tools/fusion_diagnosis.py --out runs/diagnose/paper --seeds 0 1 2 \
        --set num_samples=1000 preset=tiny epochs=8 lifter_width=64 batch_size=64 lr=2e-3
    .venv/bin/python tools/fusion_diagnosis.py --out runs/diagnose/ours --seeds 0 1 2 --stream concat \
        --set num_samples=1000 preset=tiny epochs=8 lifter_width=64 batch_size=64 lr=2e-3 \
              objective=umurl+intra_view 'encoder={"fusion": "gated"}'

``--set`` takes ``PretrainSpec`` fields (JSON values where they parse as JSON). Writes
``OUT/rows.json`` (every row), ``OUT/summary.md`` (mean +- std over seeds, paired difference to J)
and prints the table.
"""
from __future__ import annotations

import argparse
import time

import torch

from hetskel.config import parse_assignments
from hetskel.io import make_run_dir, save_json
from hetskel.studies.diagnose import diagnose, diagnosis_markdown, diagnosis_summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="a new folder for the runs and the tables")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["J", "C", "J+C", "J+C+S"])
    ap.add_argument("--stream", default=None, help="evaluation features: fused | concat (default: the recipe's)")
    ap.add_argument("--probe-epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = make_run_dir(args.out, "diagnose")
    base = {"dataset": "synhet", **parse_assignments(args.set)}
    t0 = time.time()
    rows = diagnose(base, seeds=args.seeds, variants=args.variants, run_root=out / "runs",
                    probe_epochs=args.probe_epochs, stream=args.stream)
    save_json(out / "rows.json", {"base": base, "stream": args.stream, "seeds": args.seeds,
                                  "wall_s": round(time.time() - t0, 1), "rows": rows})
    table = diagnosis_markdown(diagnosis_summary(rows, reference="J" if "J" in args.variants else None))
    (out / "summary.md").write_text(table + "\n")
    print(table)
    print(f"({time.time() - t0:.0f} s; rows in {out / 'rows.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
