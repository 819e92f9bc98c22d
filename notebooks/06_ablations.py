# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Ablations
#
# Which parts of the heterogeneous model matter? Every grid point is pretrained and evaluated from
# scratch, over several seeds (weights *and* SynHet draw), through the batch runner
# `hetskel.runs.run_grid`: each trial is its own papermill execution of `notebooks/trial.ipynb`
# (folder `<run_dir>/trials/<variant, seed>/` with its executed notebook, `metrics.json`, log and
# pretraining run), and a failing trial is recorded without stopping the grid.
#
# * **paper**: the full J+C+S model; *w/o lifter* (2D joints kept with zero depth);
#   *w/o words* (S from numeric +1/-1/0 motion signs instead of CLIP word embeddings);
#   *w/o prompts* (missing joints zero-padded instead of learned prompts);
# * **modalities**: J (3D Kinect joints), C (2D COCO keypoints), S (semantic motion), J+C;
# * **ours**: *anchored* prompts (a missing joint starts at its anchor joint, plus a learned
#   offset) and one person per clip (M=1). Reducer-width and vocabulary variants enter only where
#   `PretrainSpec` exposes those knobs (`hetskel.studies.ablation.OPTIONAL`).
#
# Every number is shown next to the same linear probe on the **untrained** network of the same spec
# and seed: on SynHet a random transformer is a strong baseline, and only the gap is learned.

# %% tags=["parameters"]
smoke = False                 # CI: 2 variants x 1 seed at the tiny SMOKE size (about a minute)
run_dir = ""                  # "" -> a new runs/06_ablations/<time>/ folder
groups = ["paper", "modalities", "ours"]
variants = []                 # explicit variant names instead of groups, e.g. ["full", "J", "C"]
seeds = [0, 1, 2]
preset = "tiny"
num_samples = 1500            # SynHet clips (xsub split ~ half for training)
epochs = 10
batch_size = 64
lr = 2e-3
lifter_width = 64             # 0 -> the spec's default (256 off the paper preset)
probe_epochs = 60
num_threads = 1               # torch threads per trial (shared CPU)
recipe = "hetskel"            # "hetskel" (default) | "paper": the configuration every trial starts from
progress = True
diagnosis_variants = ["J", "C", "J+C+S"]   # "Does adding formats help?": [] skips the section
diagnosis_seeds = [0, 1, 2]
diagnosis_features = "concat"  # probe features of the diagnosis: "fused" or "concat" (the kit's default)

# %%
# %matplotlib inline
from pathlib import Path

from hetskel.studies import ablation
from hetskel.io import load_json, make_run_dir, project_root, save_figure, save_json
from hetskel.runs.grid import run_grid

run_dir = make_run_dir(run_dir, "06_ablations")
if smoke:  # CI: two trials at the SMOKE size (trial.ipynb's smoke mode)
    variants, seeds = ["full", "no_prompts"], [0]
names = ablation.select(groups, variants)
fixed = {"smoke": bool(smoke), "preset": preset, "num_samples": num_samples, "epochs": epochs,
         "batch_size": batch_size, "lr": lr, "lifter_width": lifter_width, "probe_epochs": probe_epochs,
         "num_threads": num_threads, "recipe": recipe}
# variant and seed first: run_grid names each trial folder after its parameters (cut at 120 characters)
grid = [{"variant": n, "seed": int(s), **fixed} for n in names for s in seeds]
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
print("run folder:", run_dir)
print(f"{len(names)} variants x {len(seeds)} seeds = {len(grid)} trials:", ", ".join(names))
if ablation.skipped_variants():
    print("not in this grid (PretrainSpec has no such field):", ", ".join(ablation.skipped_variants()))

# %%
variant_changes = {n: {"label": ablation.label(n), "changes": ablation.available_variants()[n][2]} for n in names}
print("\n".join(f"{n:11s} {v['label']:18s} {v['changes']}" for n, v in variant_changes.items()))

# %% [markdown]
# ## The grid
#
# Each line is one papermill execution of `trial.ipynb`; its folder keeps everything that trial wrote.

# %%
result = run_grid(project_root() / "notebooks" / "trial.ipynb", grid, out=Path(run_dir) / "trials",
                  batch="ablation", echo=progress)
print(f"{len(result.records) - len(result.failed)} trials ok, {len(result.failed)} failed")
for r in result.failed:
    print("FAILED", r.name, r.error)

# %% [markdown]
# ## Summary
#
# Mean +- sample std over seeds (accuracies in %, `s / trial` is the whole papermill execution:
# kernel start, data, pretraining, both probes).

# %%
rows = ablation.summary_rows(result.records)
table = ablation.summary_markdown(rows)
print(table)
if smoke:
    assert not result.failed, "an ablation trial failed"

# %%
fig = ablation.summary_figure(rows, title=f"ablations on SynHet ({preset if not smoke else 'smoke'}, "
                                          f"{len(seeds)} seed(s))")
save_figure(fig, "06_ablations", figdir)
fig

# %% [markdown]
# ## Does adding formats help? Per class group, with the supervised ceiling
#
# The kit's claim, tested where it should hold: SynHet's *face* classes are visible only in COCO's
# face joints (C), its *hand* classes only in Kinect's hand joints (J). For each modality set and
# seed, one pretraining at the grid's size, then four protocols on the same split: the linear probe
# and 1-NN on the frozen features, the probe on the untrained network, and the **same encoder
# trained supervised** (its ceiling: what the data allows this network to learn). "+-" is the sample
# std over seeds; the bracket is the per-seed difference to J (paired: same draw, same initial
# weights).

# %%
from hetskel.experiment.spec import PretrainSpec, smoke_spec
from hetskel.studies.diagnose import diagnose, diagnosis_markdown, diagnosis_summary

diagnosis_table, diagnosis_rows = "", []
if diagnosis_variants:
    base = smoke_spec(recipe=recipe) if smoke else PretrainSpec(
        preset=preset, num_samples=num_samples, epochs=epochs, batch_size=batch_size, lr=lr,
        lifter_width=lifter_width or None, recipe=recipe)
    diagnosis_rows = diagnose(base, seeds=[0] if smoke else diagnosis_seeds,
                              variants=["J", "J+C+S"] if smoke else diagnosis_variants,
                              run_root=Path(run_dir) / "diagnosis", probe_epochs=probe_epochs,
                              stream=diagnosis_features, log=print if progress else None)
    diagnosis_table = diagnosis_markdown(diagnosis_summary(diagnosis_rows, reference="J"))
    print(diagnosis_table)

# %% [markdown]
# ## Key numbers
#
# `metrics.json` holds the table rows and where every trial lives; `trials/summary_ablation.md` /
# `.csv` hold run_grid's own summary of every numeric metric.

# %%
save_json(run_dir / "metrics.json", {"smoke": bool(smoke), "seeds": list(seeds), "fixed": fixed,
                                     "skipped_variants": ablation.skipped_variants(), "variants": variant_changes,
                                     "rows": rows, "table": table, "trials": [r.run_dir for r in result.records],
                                     "diagnosis": {"features": diagnosis_features, "rows": diagnosis_rows,
                                                   "table": diagnosis_table}})
print("wrote", run_dir / "metrics.json")

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True`: two variants, one seed, every trial ok (checked
# above), and the variants just written must be these.

# %%
if smoke:
    written = load_json(run_dir / "metrics.json")
    assert written["variants"] == {"full": {"label": "full J+C+S", "changes": {}},
                                   "no_prompts": {"label": "w/o prompts", "changes": {"prompt_mode": "zero"}}}, \
        written["variants"]
    assert written["seeds"] == [0] and len(written["trials"]) == 2, written
    if diagnosis_variants:  # J and J+C+S x 4 protocols, every SynHet group reported
        diag = written["diagnosis"]["rows"]
        assert sorted({(r["variant"], r["protocol"]) for r in diag}) == sorted(
            (v, p) for v in ("J", "J+C+S") for p in ("ssl_linear", "ssl_knn", "random_init_linear", "supervised"))
        assert all({"face", "hand", "body", "two_person"} <= set(r) for r in diag)
    print("smoke check passed")
