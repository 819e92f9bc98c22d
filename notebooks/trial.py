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
# # One ablation trial (run by 06_ablations)
#
# One grid point of notebook 06: pretrain the ablation `variant` (see `hetskel.studies.ablation.VARIANTS`)
# on SynHet with `seed`, then the linear probe and 1-NN retrieval on the frozen encoder and the same
# probe on the untrained network. `hetskel.runs.run_grid` executes this notebook once per variant and
# seed and reads the `metrics.json` it writes.

# %% tags=["parameters"]
smoke = False        # CI size: tiny pretraining (SMOKE), short probe
run_dir = ""         # "" -> a new runs/trial/<time>/ folder (run_grid passes one)
variant = "full"     # a name of hetskel.studies.ablation.VARIANTS
seed = 0             # weights and SynHet draw
preset = "tiny"
num_samples = 1500
epochs = 10
batch_size = 64
lr = 2e-3
lifter_width = 64    # 0 -> the spec's default (256 off the paper preset)
probe_epochs = 60
num_threads = 1      # torch threads (the CPU is shared; 1 was faster under load)
recipe = "hetskel"   # "hetskel" (default) | "paper" (PretrainSpec.recipe)
progress = False

# %%
import torch
from hetskel.studies import ablation
from hetskel.experiment.spec import SMOKE
from hetskel.io import make_run_dir, save_json

if num_threads:
    torch.set_num_threads(int(num_threads))
run_dir = make_run_dir(run_dir, "trial")
if smoke:
    base = {**SMOKE, "epochs": 4, "recipe": recipe}
    probe_epochs = 20
else:
    base = dict(dataset="synhet", preset=preset, num_samples=num_samples, epochs=epochs, batch_size=batch_size,
                lr=lr, save_every=0, recipe=recipe)
    if lifter_width:
        base["lifter_width"] = lifter_width
metrics = ablation.run_trial(variant, base, seed, run_dir, probe_epochs=probe_epochs, progress=progress)
save_json(run_dir / "metrics.json", metrics)
print({k: metrics[k] for k in ("variant", "seed", "linear_top1", "knn_top1", "linear_top1_random_init", "trial_s")})
