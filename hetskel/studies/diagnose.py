"""Diagnosis of heterogeneous fusion: per modality set, per class group, four protocols, paired by seed.

    >>> from hetskel.studies.diagnose import diagnose, diagnosis_summary, diagnosis_markdown
    >>> rows = diagnose({"preset": "small", "epochs": 20}, seeds=(0, 1, 2), run_root="runs/diagnose/synhet")
    >>> print(diagnosis_markdown(diagnosis_summary(rows, reference="J")))

For every modality set of ``variants`` (default J, C, J+C, J+C+S) and every seed, one pretraining
run of the base spec with those modalities (``seed`` and, on SynHet, ``data_seed`` = the seed), then
four protocols on the spec's own split (train -> test), every number the final epoch's top-1 (%):

``ssl_linear``          linear probe on the frozen pretrained features (``evaluate_pretrained``);
``ssl_knn``             1-NN cosine retrieval of the same features;
``random_init_linear``  the linear probe on the untrained network (the run's exact initial weights);
``supervised``          that untrained network + a linear head trained end to end on the train labels
                        (``hetskel.eval.supervised.supervised_ceiling``): the same encoder's ceiling.

``diagnose`` returns long-form rows, one per (variant, seed, protocol): ``overall`` and one key per
class group present (SynHet: ``face``, ``hand``, ``body``, ``two_person``; none on other data).
``diagnosis_summary`` gives mean +- sample std over seeds and, with ``reference``, the per-seed
paired difference to that variant. The base may be any ``PretrainSpec`` (dict or object), so a
paired 3D+2D real dataset (``dataset="pyskl"``, ``paths={"ntu25": 3D file, "coco17": 2D file}``)
runs the same way. Options under test are spec fields: ``encoder={"fusion": "gated"}``,
``objective="umurl+intra_view"``, ``modality_dropout``, ``center_3d``, ``recipe="paper"``; ``stream``
(default: the recipe's) ``"concat"`` evaluates the concatenated fused + single-stream features.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: variant name -> modalities
VARIANTS: dict[str, str] = {"J": "J", "C": "C", "J+C": "J,C", "J+C+S": "J,C,S"}
PROTOCOLS = ("ssl_linear", "ssl_knn", "random_init_linear", "supervised")
GROUP_KEYS = ("face", "hand", "body", "two_person")


def variant_spec(base, modalities: str, seed: int):
    """``base`` (a ``PretrainSpec`` or a dict of its fields) with ``modalities`` and the seed (weights;
    SynHet's draw too)."""
    from hetskel.experiment.spec import PretrainSpec

    d = base.to_dict() if isinstance(base, PretrainSpec) else dict(base)
    over = {"modalities": modalities, "seed": int(seed)}
    if d.get("dataset", "synhet") == "synhet":
        over["data_seed"] = int(seed)
    return PretrainSpec.from_dict({**d, **over})


def diagnose_trial(spec, run_dir, probe_epochs: int = 100, supervised_epochs: int | None = None,
                   supervised_lr: float | None = None, supervised_batch_size: int | None = None,
                   stream: str | None = None, progress: bool = False) -> list[dict]:
    """Pretrain ``spec`` into ``run_dir/pretrain`` and run the four ``PROTOCOLS``: one row each.

    Supervised training: ``supervised_epochs`` (default the spec's pretraining epochs), Adam at
    ``supervised_lr`` (default the spec's lr), batch ``supervised_batch_size`` (default the spec's)."""
    from hetskel.eval.pretrained import evaluate_pretrained
    from hetskel.eval.supervised import supervised_ceiling
    from hetskel.experiment import pretrain as experiment

    t0 = time.time()
    run = experiment.pretrain(spec, Path(run_dir) / "pretrain", progress=progress)
    pretrainer, spec = experiment.load_pretrained(run.run_dir)
    train_ds, test_ds = experiment.load_data(spec)
    untrained = experiment.build_pretrainer(spec)
    t1 = time.time()
    res = evaluate_pretrained(pretrainer, train_ds, test_ds, probe_epochs=probe_epochs, semi_fractions=(),
                              untrained=untrained, stream=stream)
    t2 = time.time()
    device = next(pretrainer.parameters()).device
    sup = supervised_ceiling(untrained, train_ds, test_ds, epochs=supervised_epochs or spec.epochs,
                             lr=supervised_lr or spec.lr, batch_size=supervised_batch_size or spec.batch_size,
                             seed=spec.seed, device=device)
    t3 = time.time()
    meta = {"modalities": spec.modalities, "seed": spec.seed, "semantic_table": run.semantic_table,
            "features": res["features"], "num_train": len(train_ds), "num_test": len(test_ds),
            "pretrain_dir": str(run.run_dir), "pretrain_s": round(t1 - t0, 2)}
    found = {
        "ssl_linear": (res["linear_top1"], res["per_group_linear_top1"]),
        "ssl_knn": (res["knn_top1"], res["per_group_knn_top1"]),
        "random_init_linear": (res["linear_top1_random_init"], res["per_group_linear_top1_random_init"]),
        "supervised": (sup["top1_final"], sup["per_group_top1"]),
    }
    secs = {"ssl_linear": t2 - t1, "ssl_knn": 0.0, "random_init_linear": 0.0, "supervised": t3 - t2}
    return [{**meta, "protocol": p, "overall": float(found[p][0]), **{g: float(v) for g, v in found[p][1].items()},
             "seconds": round(secs[p], 2)} for p in PROTOCOLS]


def diagnose(spec, seeds: Sequence[int] = (0, 1, 2), variants: Mapping[str, str] | Sequence[str] | None = None,
             run_root=None, probe_epochs: int = 100, supervised_epochs: int | None = None,
             supervised_lr: float | None = None, supervised_batch_size: int | None = None, stream: str | None = None,
             progress: bool = False, log: Callable[[str], Any] | None = print) -> list[dict]:
    """Every variant x seed (``diagnose_trial``): long-form rows with ``variant`` added.

    spec:     the base ``PretrainSpec`` (or dict); its ``modalities`` and seeds are replaced.
    variants: ``{name: modalities}`` or names of ``VARIANTS`` (default: all of them).
    run_root: where the pretraining runs go (``<run_root>/<variant>/seed<k>/pretrain``); None: a new
              ``runs/diagnose/<time>`` folder.
    """
    from hetskel.io import make_run_dir

    if variants is None:
        variants = dict(VARIANTS)
    elif not isinstance(variants, Mapping):
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)} (or pass {{name: modalities}})")
        variants = {v: VARIANTS[v] for v in variants}
    root = Path(make_run_dir(run_root or None, "diagnose", on_exists="check"))  # each trial's run: its own rule
    rows = []
    for name, mods in variants.items():
        for seed in seeds:
            s = variant_spec(spec, mods, seed)
            trial = diagnose_trial(s, root / name.replace("+", "") / f"seed{seed}", probe_epochs=probe_epochs,
                                   supervised_epochs=supervised_epochs, supervised_lr=supervised_lr,
                                   supervised_batch_size=supervised_batch_size, stream=stream, progress=progress)
            rows += [{"variant": name, **r} for r in trial]
            if log:
                log(f"[diagnose] {name} seed {seed}: " + ", ".join(f"{r['protocol']} {r['overall']:.1f}" for r in trial))
    return rows


def _mean_std(vs: Sequence[float]) -> tuple[float, float]:
    vs = [float(v) for v in vs if not math.isnan(float(v))]
    if not vs:
        return math.nan, math.nan
    m = sum(vs) / len(vs)
    return m, (math.sqrt(sum((v - m) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0)


def diagnosis_summary(rows: Sequence[Mapping], reference: str | None = None) -> list[dict]:
    """One row per (variant, protocol), in order of appearance: ``seeds``, ``<key>_mean`` / ``_std``
    for ``overall`` and every group, and with ``reference`` (e.g. ``"J"``) ``<key>_delta_mean`` /
    ``_delta_std``: the difference to the reference variant's same protocol, paired by seed (seeds
    the reference lacks are left out of the difference)."""
    keys = ["overall"] + [g for g in GROUP_KEYS if any(g in r for r in rows)]
    ref = {(r["protocol"], r["seed"]): r for r in rows if reference is not None and r["variant"] == reference}
    if reference is not None and not ref:
        raise ValueError(f"reference variant {reference!r} is not in the rows")
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["protocol"]), []).append(r)
    out = []
    for (variant, protocol), rs in groups.items():
        row = {"variant": variant, "protocol": protocol, "seeds": len(rs)}
        for k in keys:
            row[f"{k}_mean"], row[f"{k}_std"] = _mean_std([r.get(k, math.nan) for r in rs])
            if reference is not None:
                diffs = [r.get(k, math.nan) - ref[(protocol, r["seed"])].get(k, math.nan)
                         for r in rs if (protocol, r["seed"]) in ref]
                row[f"{k}_delta_mean"], row[f"{k}_delta_std"] = _mean_std(diffs)
        out.append(row)
    return out


def diagnosis_markdown(summary: Sequence[Mapping], digits: int = 1) -> str:
    """The summary as a markdown table: variant, protocol, seeds, then overall and each group as
    ``mean +- std`` (and ``(+d vs ref)`` when the summary has paired differences)."""
    keys = [k[:-5] for k in summary[0] if k.endswith("_mean") and not k.endswith("_delta_mean")] if summary else []

    def cell(r, k):
        m, s = r[f"{k}_mean"], r[f"{k}_std"]
        if math.isnan(m):
            return "n/a"
        txt = f"{m:.{digits}f} +- {s:.{digits}f}"
        d = r.get(f"{k}_delta_mean")
        return txt if d is None or math.isnan(d) else f"{txt} ({d:+.{digits}f})"

    lines = ["| variant | protocol | seeds | " + " | ".join(keys) + " |", "|---|---|---:|" + "---:|" * len(keys)]
    lines += [f"| {r['variant']} | {r['protocol']} | {r['seeds']} | " + " | ".join(cell(r, k) for k in keys) + " |"
              for r in summary]
    return "\n".join(lines)
