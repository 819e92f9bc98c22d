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
# # 04 · Pretraining
#
# Self-supervised pretraining of the unified encoder: the heterogeneous processor turns each
# clip into the paper's modalities on one 30-joint skeleton (**J**: the Kinect-25 3D skeleton,
# **C**: the COCO-17 2D skeleton lifted to 3D by a trainable MLP, **S**: per-joint motion words
# reduced from a frozen text table), and UmURL's objective trains one shared transformer on them:
# each modality alone and their early fusion must agree (`intra`, `inter`), a variance-covariance
# term keeps the features from collapsing (`vc`), and the lifter's reconstruction loss (`rec`) ties
# C to J. Total loss `lambda (intra + inter) + vc + rec`.
#
# `recipe` picks the configuration: `"hetskel"` (the default) adds a within-modality term (two
# augmented views of the same modality made to agree, `intra_view`: it rewards what only one format
# sees, e.g. COCO's face joints) and augments by shear only (no joint corruption); `"paper"` is the
# paper's UmURL objective and augmentation. The README's "Does adding formats help?" has the
# validation numbers that chose the default and the test numbers of both.
#
# By default it pretrains on **SynHet** (generated in memory, CPU-sized: `small` preset, 32 frames);
# point `pyskl_3d` / `pyskl_2d` at PYSKL files (`ntu60_3danno.pkl`, `ntu60_hrnet.pkl`, PKU-MMD) with
# `preset = "paper"` for the real thing on GPUs. `devices` > 1 launches **torchrun** from here
# (`torchrun --standalone --nproc_per_node N -m hetskel.train --config run.json`) and reads the run
# back from disk, so one notebook drives 1 or N GPUs.
#
# `run_dir` *is* the training run folder: `config.json` (the resolved spec, the semantic table's
# origin), `metrics.jsonl` (loss terms per log window and epoch), `latest.pt` (+ `epoch_XXXX.pt` every
# `save_every` epochs). Running the notebook again with the same `run_dir` resumes an interrupted run
# (a finished one is read back at once); a different configuration there is refused.
# `05_evaluate` takes this folder as its `pretrain_dir`.

# %% tags=["parameters"]
smoke = False          # CI: a tiny SynHet pretraining on the CPU in seconds
run_dir = ""           # "" -> a new runs/04_pretrain/<time>/ folder (the training run folder itself)
seed = 0               # weights, augmentation and batch order
dataset = "synhet"     # "synhet" (generated) | "pyskl" (the files below)
pyskl_3d = ""          # PYSKL 3D file, e.g. ntu60_3danno.pkl (layout ntu25); empty: none
pyskl_2d = ""          # PYSKL 2D file, e.g. ntu60_hrnet.pkl (layout coco17); empty: none
split = "xsub"         # xsub | xview | xset (NTU-120): trains on <split>_train
modalities = "J,C,S"   # any of J, C, S; or "J,M,B" (UmURL's classic joint/motion/bone streams)
preset = "small"       # tiny | small | paper
num_samples = 2000     # SynHet clips
num_frames = 0         # frames per clip; 0: as the preset (32 tiny/small, 64 paper)
epochs = 20
batch_size = 128       # global (split over devices)
lr = 5e-4
recipe = "hetskel"     # "hetskel" (default: + within-modality term, shear-only augmentation) | "paper"
intra_view_weight = None  # the within-modality term's weight; None: the recipe's (hetskel: 1)
equal_bones = False    # J and C with every bone at the person's mean length (short bones count as much as long)
devices = "auto"       # "auto" (every GPU, else 1), 1, or N > 1 (torchrun)
prompt_mode = "prompt" # prompt | anchored | zero
use_lifter = True
semantic = "words"     # words | numeric
text_table = ""        # a (7, 512) CLIP text table (.pt / .npy); empty: cache, real open_clip, or the random fallback
progress = True        # progress bar

# %%
# %matplotlib inline
import json

import torch

from hetskel.experiment import pretrain as experiment
from hetskel.experiment.spec import SMOKE_NETWORK, PretrainSpec, smoke_spec
from hetskel.io import load_json, save_figure, save_json

paths = {k: p for k, p in (("ntu25", pyskl_3d), ("coco17", pyskl_2d)) if p}
spec = PretrainSpec.from_dict(dict(
    dataset=dataset, paths=paths, num_samples=num_samples, data_seed=seed, split=split, modalities=modalities,
    preset=preset, num_frames=num_frames or None, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
    prompt_mode=prompt_mode, use_lifter=use_lifter, semantic=semantic, text_table=text_table, recipe=recipe,
    intra_view_weight=intra_view_weight, equal_bones=equal_bones))
if smoke:  # CI: seconds of training on a small SynHet draw (SMOKE); the same code path as a full run
    spec = smoke_spec(spec)
    devices, progress = 1, False
    torch.set_num_threads(1)  # tiny tensors: a second thread buys little and costs a lot on a busy machine
spec = spec.resolved()
run_dir = experiment.run_folder(run_dir, "04_pretrain")
net = experiment.build_pretrainer(spec)  # resolves the semantic text table (a warning if it is not CLIP's)
print("run folder:", run_dir)
print(json.dumps(spec.to_dict(), indent=1))

# %% [markdown]
# ## The network
#
# The processor's modalities, their channels and the unified skeleton, and the encoder's size. Every
# modality is `(N, M, T, V, C)`: persons, frames, the 30 unified joints, 3 channels.

# %%
print(experiment.describe(net))
network = experiment.network_summary(net)

# %% [markdown]
# ## Pretraining
#
# One process trains in this kernel; with more than one device the same run is launched with
# torchrun (one process per GPU, features all-gathered for the loss, BatchNorm synchronised) and read
# back from `run_dir` when it ends.

# %%
run = experiment.pretrain(spec, run_dir, devices=devices, progress=progress)
print(f"{len(run.epochs)} epochs, {len(run.steps)} logged windows, world size {run.world_size}, "
      f"{run.wall_time:.1f} s, {run.samples_per_s:.0f} samples/s")
print("final:", {k: round(v, 4) for k, v in experiment.loss_terms(run.final).items()})
print("checkpoints:", sorted(p.name for p in run.run_dir.glob("*.pt")))

# %% [markdown]
# ### Where the words of S come from
#
# The paper encodes the 7 motion words with CLIP's text tower. CLIP weights cannot be downloaded
# everywhere; then the table comes from a cache, a user file (`text_table`), or, as a last resort, a
# seeded **randomly initialised** text tower, whose word codes are distinct but carry no language
# knowledge. The run records which one it used.

# %%
print(experiment.table_banner(run.semantic_table))

# %% [markdown]
# ## Loss curves
#
# Each term per logged window (thin) and per epoch (dots). `vc` falls as the features spread over
# their dimensions, `intra`/`inter` as the modality streams and the fused stream agree, `rec` as the
# lifter learns to place the 2D skeleton in the 3D pose frame.

# %%
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
fig = experiment.loss_figure(run)
save_figure(fig, "04_loss_curves", figdir)
fig

# %% [markdown]
# ## Key numbers
#
# `metrics.json` keeps the final loss terms, the speed and the wall time, and the semantic table's
# origin, so batch runs (`python -m hetskel.runs`) can compare them.

# %%
metrics = {"smoke": smoke, "final": experiment.loss_terms(run.final),
           "samples_per_s": run.samples_per_s, "wall_time_s": run.wall_time, "epochs": len(run.epochs),
           "world_size": run.world_size, "semantic_table": run.semantic_table,
           "modalities": list(spec.modality_list), "num_params": experiment.count_parameters(net), "network": network}
save_json(run_dir / "metrics.json", metrics)
print("wrote", run_dir / "metrics.json")

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True` at its defaults, i.e. the standard smoke
# pretraining `smoke_spec()`: the network just written must be exactly this one, and its loss finite.

# %%
import math

if smoke:
    written = load_json(run_dir / "metrics.json")
    assert all(math.isfinite(v) for v in written["final"].values()), written["final"]
    if spec.to_dict() == smoke_spec().resolved().to_dict():
        assert written["network"] == SMOKE_NETWORK, written["network"]
    # a real language model for S on any machine: CLIP when its weights are cached, else wordllama (offline)
    assert written["semantic_table"].startswith(("wordllama:", "clip:")), written["semantic_table"]
    print("smoke check passed")
