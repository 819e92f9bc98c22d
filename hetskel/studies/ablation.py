"""Ablations of the heterogeneous pretraining (notebook 06): grid, one trial, summary.

A *variant* is a named set of ``PretrainSpec`` overrides on top of a common base (size, data,
epochs). One *trial* is variant x seed: pretrain on SynHet, then the linear probe and 1-NN
retrieval of ``hetskel.eval.pretrained.evaluate_pretrained`` on the frozen encoder, plus the same probe on
the untrained network of the same spec and seed (the baseline every gain is measured against).

    >>> from hetskel import ablation
    >>> names = ablation.select(["paper", "modalities"])          # ['full', 'no_lifter', ...]
    >>> m = ablation.run_trial("no_lifter", {"preset": "tiny", "num_samples": 400, "epochs": 5},
    ...                        seed=0, run_dir="runs/06_ablations/t", probe_epochs=30)
    >>> m["linear_top1"], m["knn_top1"], m["linear_top1_random_init"], m["trial_s"]

Notebook 06 runs every trial as its own papermill execution of ``notebooks/trial.ipynb`` through
``hetskel.runs.run_grid`` (a failing trial is recorded, the grid goes on) and then summarises the
records with ``summary_rows`` / ``summary_markdown`` / ``summary_figure``.

Groups. ``paper``: the paper's ablations: the full J+C+S model, without the lifter (2D
joints kept with zero depth), without semantic words (S from numeric +1/-1/0 motion signs), without
prompts (zero padding of missing joints). ``modalities``: J, C, S, J+C (J+C+S is ``full``).
``ours``: anchored prompts (a missing joint starts at its anchor joint), one person per clip
(M=1 instead of 2). Variants whose knob ``PretrainSpec`` does not have (e.g. a semantic reducer
width, a graded motion vocabulary) are listed in ``OPTIONAL`` and only enter the grid when the
spec exposes the field, so the grid never silently runs the full model under another name.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: name -> (group, label for tables, PretrainSpec overrides)
VARIANTS: dict[str, tuple[str, str, dict]] = {
    "full": ("paper", "full J+C+S", {}),
    "no_lifter": ("paper", "w/o lifter", {"use_lifter": False}),
    "no_words": ("paper", "w/o words", {"semantic": "numeric"}),
    "no_prompts": ("paper", "w/o prompts", {"prompt_mode": "zero"}),
    "J": ("modalities", "J", {"modalities": "J"}),
    "C": ("modalities", "C", {"modalities": "C"}),
    "S": ("modalities", "S", {"modalities": "S"}),
    "JC": ("modalities", "J+C", {"modalities": "J,C"}),
    "anchored": ("ours", "anchored prompts", {"prompt_mode": "anchored"}),
    "persons1": ("ours", "M=1 person", {"max_persons": 1}),
}

#: variants needing a PretrainSpec field that may not exist: name -> (group, label, overrides)
OPTIONAL: dict[str, tuple[str, str, dict]] = {
    "reducer1": ("ours", "reducer width 1", {"semantic_out_dim": 1}),
    "reducer8": ("ours", "reducer width 8", {"semantic_out_dim": 8}),
    "graded": ("ours", "graded vocabulary", {"vocabulary": "graded"}),
}

GROUPS = ("paper", "modalities", "ours")

#: what a trial records (all numbers; run_grid averages every numeric entry over seeds)
METRIC_KEYS = ("linear_top1", "linear_top1_best", "knn_top1", "linear_top1_random_init",
               "knn_top1_random_init", "final_loss", "pretrain_s", "eval_s", "trial_s")


def available_variants() -> dict[str, tuple[str, str, dict]]:
    """``VARIANTS`` plus the ``OPTIONAL`` ones whose fields ``PretrainSpec`` has."""
    from hetskel.experiment.spec import PretrainSpec

    fields = set(PretrainSpec.field_names())
    extra = {k: v for k, v in OPTIONAL.items() if set(v[2]) <= fields}
    return {**VARIANTS, **extra}


def skipped_variants() -> list[str]:
    """``OPTIONAL`` variants left out because ``PretrainSpec`` lacks their field."""
    return sorted(set(OPTIONAL) - set(available_variants()))


def select(groups: Sequence[str] = GROUPS, names: Sequence[str] = ()) -> list[str]:
    """Variant names of ``groups`` in table order, or exactly ``names`` when given (checked)."""
    avail = available_variants()
    if names:
        unknown = [n for n in names if n not in avail]
        if unknown:
            raise ValueError(f"unknown ablation variant(s) {unknown}; available: {list(avail)}"
                             + (f" (not exposed by PretrainSpec: {skipped_variants()})" if skipped_variants() else ""))
        return list(names)
    bad = sorted(set(groups) - set(GROUPS))
    if bad:
        raise ValueError(f"unknown ablation group(s) {bad}; valid: {list(GROUPS)}")
    return [n for n, (g, _, _) in avail.items() if g in groups]


def label(name: str) -> str:
    return available_variants().get(name, OPTIONAL.get(name, ("", name, {})))[1]


def trial_spec(name: str, base: Mapping[str, Any], seed: int):
    """The ``PretrainSpec`` of variant ``name`` over ``base`` overrides, seed for weights and data draw.

    The SynHet draw (``data_seed``) follows the seed too, so the std over seeds covers both the
    initialisation and the data, as a new experiment would."""
    from hetskel.experiment.spec import PretrainSpec

    avail = available_variants()
    if name not in avail:
        raise ValueError(f"unknown ablation variant {name!r}; available: {list(avail)}")
    clash = sorted(set(base) & set(avail[name][2]))
    if clash:  # a base that fixes the ablated knob would make the variant a no-op
        raise ValueError(f"base settings {clash} are what variant {name!r} changes; leave them out of the base")
    return PretrainSpec.from_dict({**dict(base), **avail[name][2], "seed": int(seed), "data_seed": int(seed)})


def run_trial(name: str, base: Mapping[str, Any], seed: int, run_dir, probe_epochs: int = 100,
              progress: bool = False) -> dict:
    """Pretrain variant ``name`` into ``run_dir/pretrain`` and evaluate it; returns ``METRIC_KEYS``
    (accuracies in %, times in s) plus ``variant``, ``label``, ``seed``, ``semantic_table``."""
    from hetskel.eval.pretrained import evaluate_pretrained
    from hetskel.experiment import pretrain as experiment

    spec = trial_spec(name, base, seed)
    t0 = time.time()
    run = experiment.pretrain(spec, Path(run_dir) / "pretrain", progress=progress)
    t1 = time.time()
    pretrainer, spec = experiment.load_pretrained(run.run_dir)
    train_ds, val_ds = experiment.load_data(spec)
    res = evaluate_pretrained(pretrainer, train_ds, val_ds, probe_epochs=probe_epochs, semi_fractions=(),
                              untrained=experiment.build_pretrainer(spec))
    t2 = time.time()
    out = {k: float(res[k]) for k in METRIC_KEYS if k in res}
    out.update(final_loss=float(run.final.get("loss", math.nan)), pretrain_s=round(t1 - t0, 2),
               eval_s=round(t2 - t1, 2), trial_s=round(t2 - t0, 2))
    return {"variant": name, "label": label(name), "seed": int(seed), "semantic_table": run.semantic_table,
            "num_train": int(res["num_train"]), "num_val": int(res["num_val"]), **out}


# ---------------------------------------------------------------------------------------------
# summary
def _mean_std(vs: Sequence[float]) -> tuple[float, float]:
    vs = [v for v in vs if v == v]  # drop NaN
    if not vs:
        return math.nan, math.nan
    m = sum(vs) / len(vs)
    return m, (math.sqrt(sum((v - m) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0)


def summary_rows(records: Sequence[Any]) -> list[dict]:
    """One row per variant (order of first appearance) from ``run_grid`` records (objects or dicts
    with ``params``, ``status``, ``metrics``, ``wall_s``): seeds ok/failed, mean and sample std
    (0 for one seed) of every ``METRIC_KEYS`` entry, and ``wall_s`` (whole papermill run)."""
    groups: dict[str, list] = {}
    for r in records:
        r = r if isinstance(r, Mapping) else vars(r)
        groups.setdefault(r["params"]["variant"], []).append(r)
    rows = []
    for name, recs in groups.items():
        ok = [r for r in recs if r["status"] == "ok" and r.get("metrics")]
        row = {"variant": name, "label": label(name), "group": available_variants().get(name, ("?",))[0],
               "seeds_ok": len(ok), "seeds_failed": len(recs) - len(ok)}
        for k in METRIC_KEYS + ("wall_s",):
            vals = [float(r["wall_s"] if k == "wall_s" else r["metrics"].get(k, math.nan)) for r in ok]
            row[f"{k}_mean"], row[f"{k}_std"] = _mean_std(vals)
        errors = [r.get("error", "") for r in recs if r not in ok]
        if errors:
            row["errors"] = " | ".join(e or "no metrics" for e in errors)
        rows.append(row)
    return rows


def _pm(row: Mapping, key: str, digits: int = 1) -> str:
    m, s = row[f"{key}_mean"], row[f"{key}_std"]
    return "n/a" if m != m else f"{m:.{digits}f} +- {s:.{digits}f}"


def summary_markdown(rows: Sequence[Mapping]) -> str:
    """The ablation table: linear / kNN top-1 (pretrained and random init) mean +- std, seconds."""
    head = ["variant", "group", "seeds", "linear top-1", "kNN top-1", "linear (random init)",
            "kNN (random init)", "s / trial"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], r["group"], f"{r['seeds_ok']}" + (f" ({r['seeds_failed']} failed)" if r["seeds_failed"]
                                                                else ""),
                 _pm(r, "linear_top1"), _pm(r, "knn_top1"), _pm(r, "linear_top1_random_init"),
                 _pm(r, "knn_top1_random_init"), _pm(r, "wall_s", 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_figure(rows: Sequence[Mapping], title: str = "ablations on SynHet"):
    """Grouped bars per variant: linear probe, kNN, and the random-init linear probe (mean, error
    bars = std over seeds)."""
    import matplotlib.pyplot as plt
    import numpy as np

    series = [("linear_top1", "linear probe", "tab:blue"), ("knn_top1", "1-NN retrieval", "tab:orange"),
              ("linear_top1_random_init", "linear, random init", "tab:gray")]
    x, w = np.arange(len(rows)), 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 3.6))
    for i, (key, name, color) in enumerate(series):
        means = np.array([r[f"{key}_mean"] for r in rows], dtype=float)
        stds = np.array([r[f"{key}_std"] for r in rows], dtype=float)
        ax.bar(x + (i - 1) * w, np.nan_to_num(means), w, yerr=np.nan_to_num(stds), capsize=2, color=color, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([r["label"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
