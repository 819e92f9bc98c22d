"""What the linear probe says about a pretrained run, beyond its one number.

Two questions, each on a saved pretraining run (``hetskel.load_pretrained``), with the run's own
evaluation features (its recipe's stream):

``--fit-gap``: can the probe fit the labels at all? The run's training split is carved by subject
(``PretrainSpec.validation``, default 0.25; the test split is never read); the probe is fitted on
the fit part and scored on the fit part and on the carved subjects, as given, with standardised
features, with weight decay and with 4x the epochs. A high fit score and a low held-out score mean
the features hold the labels' information in a form tied to the training subjects.

``--label-curve N1 N2 ...``: does the probe need more labels? On the same carve as ``--fit-gap``,
the probe is fitted on the fit subjects' clips of SynHet draws of N1, N2, ... clips (the same
subjects, more clips of them; the network stays frozen) and scored on the held-out subjects' clips
of the run's own draw.

``--probe-seeds N``: how much does the probe alone move the test top-1? The run's train -> test
probe refitted with probe seeds 0..N-1 on the same frozen features.

    .venv/bin/python tools/probe_diagnosis.py runs/diagnose/kit_default_JCS/runs/JCS/seed0/pretrain --fit-gap
    .venv/bin/python tools/probe_diagnosis.py runs/diagnose/kit_default_JCS/runs/JCS/seed0/pretrain \
        --label-curve 2000 4000 8000
    .venv/bin/python tools/probe_diagnosis.py runs/msr_paired/J/pretrain_seed0 --probe-seeds 10

Prints one line per probe (overall and, on SynHet, per class group) and writes ``--out`` (JSON) if given.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from hetskel.eval.pretrained import Features, group_top1, probe_batch_size
from hetskel.eval.protocols import extract_features, linear_probe
from hetskel.experiment.pretrain import load_data, load_pretrained, read_pretrain_run
from hetskel.io import save_json


def _probe(train, test, num_classes: int, class_names, epochs: int, **kw) -> dict:
    (xtr, ytr), (xte, yte) = train, test
    r = linear_probe(xtr, ytr, xte, yte, num_classes, epochs=epochs, batch_size=probe_batch_size(len(xtr)), **kw)
    groups = group_top1(r["confusion"], class_names) if class_names else {}
    return {"top1": r["top1_final"], **groups}


def _line(tag: str, r: dict) -> str:
    return f"{tag:34s} " + ", ".join(f"{k} {v:.1f}" for k, v in r.items())


def fit_gap(run_dir, validation: float, epochs: int) -> list[dict]:
    net, spec = load_pretrained(run_dir)
    names = read_pretrain_run(run_dir).class_names
    fit, held = load_data(dataclasses.replace(spec, validation=validation))
    feat = Features(net, stream=spec.features)
    ftr, fte = extract_features(feat, fit, 512, None), extract_features(feat, held, 512, None)
    C = int(max(ftr[1].max(), fte[1].max())) + 1
    mu, sd = ftr[0].mean(0), ftr[0].std(0).clamp_min(1e-6)
    z = lambda f: ((f[0] - mu) / sd, f[1])  # noqa: E731 (statistics of the fit part only)
    rows = []
    for tag, tr, te, kw in (("as given", ftr, fte, {}), ("standardised", z(ftr), z(fte), {}),
                            ("weight decay 1e-4", ftr, fte, {"weight_decay": 1e-4}),
                            ("weight decay 1e-3", ftr, fte, {"weight_decay": 1e-3}),
                            ("weight decay 1e-2", ftr, fte, {"weight_decay": 1e-2}),
                            (f"{4 * epochs} epochs", ftr, fte, {"epochs": 4 * epochs})):
        kw = {"epochs": epochs, **kw}
        for where, target in (("fit clips", tr), ("held-out subjects", te)):
            r = {"probe": tag, "scored_on": where, **_probe(tr, target, C, names, **kw)}
            rows.append(r)
            print(_line(f"{tag}, {where}:", {k: v for k, v in r.items() if k not in ("probe", "scored_on")}), flush=True)
    print(f"({len(fit)} fit clips, {len(held)} held-out-subject clips; features {spec.features})")
    return rows


def label_curve(run_dir, sizes, validation: float, epochs: int) -> list[dict]:
    net, spec = load_pretrained(run_dir)
    if spec.dataset != "synhet":
        raise SystemExit(f"--label-curve draws more SynHet clips; {run_dir} was pretrained on {spec.dataset!r}")
    names = read_pretrain_run(run_dir).class_names
    feat = Features(net, stream=spec.features)
    _, held = load_data(dataclasses.replace(spec, validation=validation))
    fte = extract_features(feat, held, 512, None)
    rows = []
    for n in sizes:
        fit, _ = load_data(dataclasses.replace(spec, validation=validation, num_samples=n))
        ftr = extract_features(feat, fit, 512, None)
        C = int(max(ftr[1].max(), fte[1].max())) + 1
        r = {"num_samples": n, "fit_clips": len(fit), **_probe(ftr, fte, C, names, epochs)}
        rows.append(r)
        print(_line(f"{len(fit)} labelled fit clips (draw of {n}):", {k: v for k, v in r.items()
                                                                       if k not in ("num_samples", "fit_clips")}),
              flush=True)
    print(f"(scored on {len(held)} held-out-subject clips of the run's draw; features {spec.features})")
    return rows


def probe_seeds(run_dir, n: int, epochs: int) -> list[dict]:
    net, spec = load_pretrained(run_dir)
    names = read_pretrain_run(run_dir).class_names
    train, test = load_data(spec)
    feat = Features(net, stream=spec.features)
    ftr, fte = extract_features(feat, train, 512, None), extract_features(feat, test, 512, None)
    C = int(max(ftr[1].max(), fte[1].max())) + 1
    rows = [{"probe_seed": p, **_probe(ftr, fte, C, names, epochs, seed=p)} for p in range(n)]
    tops = [r["top1"] for r in rows]
    print(f"test top-1 over probe seeds 0..{n - 1}: " + " ".join(f"{t:.1f}" for t in tops) +
          f"; mean {statistics.fmean(tops):.2f}, std {statistics.stdev(tops):.2f}, range {min(tops):.1f}-{max(tops):.1f}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a pretraining run folder")
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--fit-gap", action="store_true", help="fit vs held-out-subject top-1 on a carve of the train split")
    how.add_argument("--probe-seeds", type=int, metavar="N", help="refit the test probe with N probe seeds")
    how.add_argument("--label-curve", type=int, nargs="+", metavar="N",
                     help="probe on the fit subjects' clips of SynHet draws of N clips, scored on the held-out subjects")
    ap.add_argument("--validation", type=float, default=0.25, help="share of training subjects held out (--fit-gap)")
    ap.add_argument("--probe-epochs", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="", help="write the rows to this JSON file (a new file)")
    args = ap.parse_args(argv)
    if args.out and Path(args.out).exists():
        ap.error(f"--out {args.out} exists; give a new file (nothing is overwritten)")
    torch.set_num_threads(args.threads)
    if args.fit_gap:
        rows = fit_gap(args.run_dir, args.validation, args.probe_epochs)
    elif args.label_curve:
        rows = label_curve(args.run_dir, args.label_curve, args.validation, args.probe_epochs)
    else:
        rows = probe_seeds(args.run_dir, args.probe_seeds, args.probe_epochs)
    if args.out:
        save_json(args.out, {"run_dir": str(args.run_dir), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
