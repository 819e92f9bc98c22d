"""Ablation grid, trials and summary (notebook 06); the notebooks themselves run in the CI smoke."""
import json
import math
from pathlib import Path

import pytest
import torch
from notebook_checks import assert_notebook_conventions

from hetskel.experiment.spec import PretrainSpec
from hetskel.studies import ablation

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_samples=48, preset="tiny", num_frames=8, lifter_width=16, epochs=1, batch_size=8, device="cpu",
            encoder={"d_model": 16, "ff_dim": 16, "proj_dims": [16, 16]})


@pytest.fixture(scope="module")
def base(user_word_table):
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine
    yield {**TINY, "text_table": str(user_word_table), "text_source": "user"}
    torch.set_num_threads(n)


def test_groups_select_the_paper_ablations_and_modalities():
    paper = ablation.select(["paper"])
    assert paper == ["full", "no_lifter", "no_words", "no_prompts"]
    assert ablation.select(["modalities"]) == ["J", "C", "S", "JC"]
    assert {"anchored", "persons1"} <= set(ablation.select(["ours"]))
    assert ablation.select(["paper"], ["C", "full"]) == ["C", "full"]  # explicit names win, order kept
    with pytest.raises(ValueError, match="unknown ablation group"):
        ablation.select(["papers"])
    with pytest.raises(ValueError, match="unknown ablation variant.*available"):
        ablation.select(names=["no_lifters"])


def test_optional_variants_follow_the_spec_fields():
    fields = set(PretrainSpec.field_names())
    for name, (_, _, over) in ablation.OPTIONAL.items():
        assert (name in ablation.available_variants()) == (set(over) <= fields)
        assert (name in ablation.skipped_variants()) != (name in ablation.available_variants())


@pytest.mark.parametrize("name,field,value", [("no_lifter", "use_lifter", False), ("no_words", "semantic", "numeric"),
                                              ("no_prompts", "prompt_mode", "zero"), ("JC", "modalities", "J,C"),
                                              ("anchored", "prompt_mode", "anchored"), ("persons1", "max_persons", 1)])
def test_trial_spec_applies_the_variant(base, name, field, value):
    spec = ablation.trial_spec(name, base, seed=3)
    full = ablation.trial_spec("full", base, seed=3)
    assert getattr(spec, field) == value != getattr(full, field)
    assert spec.seed == spec.data_seed == 3 and spec.num_samples == base["num_samples"]


def test_trial_spec_refuses_a_base_that_fixes_the_knob(base):
    with pytest.raises(ValueError, match="prompt_mode.*no_prompts"):
        ablation.trial_spec("no_prompts", {**base, "prompt_mode": "anchored"}, 0)
    with pytest.raises(ValueError, match="unknown ablation variant"):
        ablation.trial_spec("nope", base, 0)


def _rec(variant, seed, status="ok", **metrics):
    return {"params": {"variant": variant, "seed": seed}, "status": status, "wall_s": 10.0 + seed,
            "error": "" if status == "ok" else "RuntimeError: boom", "metrics": metrics if status == "ok" else {}}


def test_summary_mean_std_and_failures():
    recs = [_rec("full", 0, linear_top1=60.0, knn_top1=50.0, linear_top1_random_init=40.0),
            _rec("full", 1, linear_top1=70.0, knn_top1=54.0, linear_top1_random_init=44.0),
            _rec("J", 0, linear_top1=30.0, knn_top1=20.0), _rec("J", 1, status="failed")]
    rows = ablation.summary_rows(recs)
    assert [r["variant"] for r in rows] == ["full", "J"]
    full, j = rows
    assert full["linear_top1_mean"] == 65.0 and full["linear_top1_std"] == pytest.approx(math.sqrt(50.0))
    assert full["knn_top1_mean"] == 52.0 and full["wall_s_mean"] == 10.5 and full["seeds_ok"] == 2
    assert j["seeds_ok"] == 1 and j["seeds_failed"] == 1 and "boom" in j["errors"]
    assert j["linear_top1_std"] == 0.0 and math.isnan(j["linear_top1_random_init_mean"])
    md = ablation.summary_markdown(rows)
    assert "| full J+C+S | paper | 2 | 65.0 +- 7.1 | 52.0 +- 2.8 | 42.0 +- 2.8 |" in md
    assert "1 (1 failed)" in md and "n/a" in md
    fig = ablation.summary_figure(rows)
    assert len(fig.axes[0].patches) == 3 * len(rows)


def test_run_trial_pretrains_and_probes(base, tmp_path):
    m = ablation.run_trial("no_prompts", base, seed=1, run_dir=tmp_path, probe_epochs=2)
    assert m["variant"] == "no_prompts" and m["seed"] == 1 and m["label"] == "w/o prompts"
    for k in ("linear_top1", "knn_top1", "linear_top1_random_init", "knn_top1_random_init"):
        assert 0.0 <= m[k] <= 100.0
    assert m["trial_s"] >= m["pretrain_s"] > 0 and math.isfinite(m["final_loss"])
    cfg = json.loads((tmp_path / "pretrain" / "config.json").read_text())
    assert cfg["extra"]["builder_args"]["spec"]["prompt_mode"] == "zero"


def test_notebooks_are_in_sync_and_wired():
    p06 = assert_notebook_conventions("06_ablations")
    assert {"smoke", "run_dir", "seeds", "groups", "variants", "preset", "num_samples", "epochs",
            "probe_epochs", "progress", "num_threads"} <= set(p06)
    trial = assert_notebook_conventions("trial")
    assert {"smoke", "run_dir", "variant", "seed"} <= set(trial)
    # every parameter 06 passes to a trial exists there (run_grid would refuse it otherwise)
    assert {"preset", "num_samples", "epochs", "batch_size", "lr", "lifter_width", "probe_epochs",
            "num_threads"} <= set(trial)
    src = "".join("".join(c["source"]) for c in json.loads((ROOT / "notebooks/06_ablations.ipynb").read_text())["cells"])
    assert "trial.ipynb" in src and "run_grid" in src and "06_ablations" in src


def test_the_smoke_variants_as_the_notebook_prints_them():
    names = ["full", "no_prompts"]  # 06's smoke grid (its smoke check asserts the same on metrics.json)
    text = "\n".join(f"{n:11s} {ablation.label(n):18s} {ablation.available_variants()[n][2]}" for n in names)
    assert text == "full        full J+C+S         {}\nno_prompts  w/o prompts        {'prompt_mode': 'zero'}"
