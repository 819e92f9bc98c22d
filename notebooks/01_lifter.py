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
# # 01 · Lifting 2D skeletons to 3D
#
# A COCO-17 2D skeleton from a video detector and a Kinect-25 3D skeleton of the same motion can only
# share one model if they live in one space. The paper lifts the 2D skeleton to 3D with a small
# per-frame MLP (4 fully connected layers with BatchNorm) trained with `L_rec`, the squared error on
# the 15 joints both formats share, against the paired 3D skeleton. This notebook trains
# that lifter alone, so it can be inspected:
#
# 1. on **SynHet** pairs, tested on **held-out subjects** (`xsub_val`): loss curves, an MPJPE /
#    PA-MPJPE table against the two baselines a lifter must beat, and side-by-side reconstructions;
# 2. on **real recordings** (when `../shared/data` exists): NTU RGB+D colour-image 2D -> camera 3D,
#    leave one file out over six files, and MSR Action3D screen (u, v) -> world 3D across subjects.
#    Neither has COCO joints, so each gets a lifter built for its own 2D layout.
#
# Everything happens in the **pose frame** (`hetskel.hetero.lifter.pose_frame`): per frame
# root-relative (root = mid-hip), divided by the person's mean torso length. A single 2D frame says
# nothing about absolute depth or scale, so the lifter is only asked for the pose around the body.
# Errors are computed in torso units and reported in millimetres after multiplying by each
# sequence's true 3D torso length.
#
# Figures go to `figures/01_*`, numbers to `<run_dir>/metrics.json` (`mpjpe`, `mpjpe_baseline`, ...).

# %% tags=["parameters"]
smoke = False         # CI sets True: a tiny draw and model, seconds on a CPU (need not beat the baselines)
run_dir = ""          # "" -> a new runs/01_lifter/<time>/ folder
seed = 0              # SynHet draw and training
progress = False      # tqdm progress bars (off under papermill)
num_samples = 2000    # SynHet samples (x-sub split: about half are held-out subjects)
num_frames = 64       # frames per SynHet clip
width = 512           # hidden width of the lifter MLP (LifterConfig's default is 1024)
num_layers = 4        # linear layers (the paper's 4)
dropout = 0.2
epochs = 20           # SynHet epochs (also for the SynHet pretraining of the real-data lifters)
batch_size = 512
lr = 0.001
noise_2d = 0.0        # extra Gaussian noise on the 2D pose frame while training (torso units)
frame_stride = 4      # keep every k-th SynHet frame (neighbours are near duplicates)
real_steps = 600      # optimiser steps per real-data training (scratch and fine-tune)
real_batch_size = 128
finetune_lr = 0.0003  # learning rate when fine-tuning the SynHet lifter on real clips
num_threads = 1       # torch CPU threads; these MLPs are small, more threads help little (0: torch's default)
shared_data = ""      # real-data folder; "" -> ../shared/data (or $HETSKEL_SHARED_DATA) when present

# %%
# %matplotlib inline
import time
from dataclasses import asdict

import torch

from hetskel.studies import lifter as lifter_study, tour
from hetskel.data import synhet
from hetskel.hetero.lifter_train import LifterConfig, train_lifter
from hetskel.io import load_json, make_run_dir, save_figure, save_json

if smoke:  # CI: small enough for seconds on a CPU
    num_samples, num_frames, width, epochs, real_steps = 200, 32, 32, 2, 10
if num_threads:
    torch.set_num_threads(num_threads)
run_dir = make_run_dir(run_dir, "01_lifter")
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
config = LifterConfig(width=width, num_layers=num_layers, dropout=dropout, epochs=epochs, batch_size=batch_size,
                      lr=lr, noise_2d=noise_2d, frame_stride=frame_stride, seed=seed)
real = dict(steps=real_steps, batch_size=real_batch_size, finetune_lr=finetune_lr, progress=progress)
metrics = {"smoke": smoke, "seed": seed, "lifter_config": asdict(config), "real_training": real, "wall_s": {},
           "real": {}}
t_start = time.time()
print("run folder:", run_dir)

# %% [markdown]
# ## 1. SynHet pairs
#
# SynHet renders every performance twice: COCO-17 2D detections (1920x1080 pixels, with detector
# jitter) and noisy Kinect-25 3D (camera metres). Same samples, same persons, same frames, so every
# frame where both skeletons exist is one training example. The x-sub split keeps whole subjects
# (body proportions) out of training. 2D is normalised by the image size to [-1, 1], as the
# pipeline does.

# %%
data3d, data2d = synhet.generate(num_samples=num_samples, num_frames=num_frames, seed=seed)
syn = lifter_study.synhet_pairset(data3d, data2d)

# %%
print(lifter_study.describe(syn))
metrics["synhet_pairs"] = {"layouts": [syn.layout_2d, syn.layout_3d], "image": list(syn.img_shape),
                           "shape_2d": list(syn.x2d.shape), "shape_3d": list(syn.x3d.shape), "clips": len(syn.clips),
                           "person_frames": int(syn.frames()),
                           "splits": {k: [len(v), int(syn.frames(k))] for k, v in syn.split.items()}}

# %% [markdown]
# ## 2. The lifter
#
# COCO-17 first gets the three interpolated spine joints (COCO-20). The MLP maps the
# 20 x 2 pose-frame coordinates of one frame to 20 x 3, with its root pinned to the origin; `L_rec`
# supervises the 15 joints COCO-20 shares with Kinect-25 (the face outputs get no target and are
# ignored below). Padded frames never enter the MLP or its BatchNorm statistics.

# %%
print(lifter_study.describe_lifter(config))

# %%
t0 = time.time()
result = train_lifter(*syn.split_pairs("xsub_train", "xsub_val"), config, progress=progress)
metrics["lifter_parameters"] = sum(p.numel() for p in result.model.parameters())
metrics["wall_s"]["synhet_lifter"] = round(time.time() - t0, 1)
print(f"trained in {metrics['wall_s']['synhet_lifter']} s")

# %% [markdown]
# ### Loss curves
#
# `L_rec` per epoch on the training subjects (with dropout on, so it can sit above the held-out
# curve) and on the held-out subjects; right, the held-out MPJPE in torso units. A learning-rate
# cosine decay runs over all epochs.

# %%
fig = lifter_study.loss_figure(result.history, title="lifter on SynHet: held-out subjects")
save_figure(fig, "01_lifter_loss", figdir)
fig

# %% [markdown]
# ### Lifter vs baselines (held-out subjects)
#
# * **mean pose**: the training set's mean 3D pose, whatever the input: what you get by ignoring the 2D;
# * **zero depth**: the 2D pose itself with depth 0, each image axis scaled by a least-squares factor
#   fitted on the training frames: what you get by ignoring depth.
#
# MPJPE is the mean distance over the 15 supervised joints and all held-out frames; PA-MPJPE
# first aligns each predicted frame to the truth by the best rotation, scale and translation
# (Procrustes), so it measures the pose's shape only.

# %%
print(lifter_study.metrics_table({"SynHet xsub_val (held-out subjects)": result.metrics}))
m = result.metrics
metrics["synhet"] = lifter_study.summary(m)
metrics["mpjpe"], metrics["pa_mpjpe"] = m["lifter"]["mpjpe_mm"], m["lifter"]["pa_mpjpe_mm"]
metrics["mpjpe_baseline"] = min(m["mean_pose"]["mpjpe_mm"], m["zero_depth"]["mpjpe_mm"])
metrics["pa_mpjpe_baseline"] = min(m["mean_pose"]["pa_mpjpe_mm"], m["zero_depth"]["pa_mpjpe_mm"])
metrics["baselines"] = {k: lifter_study.summary(m)[k] for k in ("mean_pose", "zero_depth")}
verdict = "beats" if metrics["mpjpe"] < metrics["mpjpe_baseline"] else "does NOT beat"
print(f"\nthe lifter {verdict} the better baseline: {metrics['mpjpe']:.1f} mm vs {metrics['mpjpe_baseline']:.1f} mm"
      + ("  (smoke: a tiny model trained for seconds)" if smoke else ""))

# %% [markdown]
# ### Reconstructions
#
# A held-out one-person clip seen from the front camera. Grey: the Kinect ground truth; colour
# (left blue, right red): the prediction on the supervised joints; titles give that frame's MPJPE.
# Row 1 is the camera's view (x, y); rows 2 and 3 turn the skeleton by 90 degrees to look along x,
# so depth runs horizontally. Zero depth matches the camera's view almost by construction, so only
# the side view shows what lifting adds: arms reaching towards or away from the camera.

# %%
clip = lifter_study.first_clip(data3d, "xsub_val", group="body", camera=2, persons=1)
fig = lifter_study.reconstruction_figure(result.model, syn, clip, config, fit_rows="xsub_train")
save_figure(fig, "01_lifter_reconstructions", figdir)
fig

# %% [markdown]
# ## 3. Real recordings
#
# Two real sources pair 2D and 3D of the same joints, so a lifter can be trained and tested on them:
# NTU RGB+D raw files (Kinect v2: each joint's camera-space 3D and its colour-image pixel) and MSR
# Action3D (Kinect v1: real-world 3D and depth-image screen coordinates). Neither 2D layout is COCO,
# so each gets its own lifter from `lifter_for(layout)`: input and output are that layout (plus any
# spine joint it can derive), `L_rec` supervises every joint.
#
# There is little real data, so three lifters are compared on each test set, all against the two
# baselines fitted on the same training clips:
#
# * **synhet zero-shot**: a lifter for the real layout trained on SynHet only. Its 2D comes from
#   projecting SynHet's Kinect-25 3D, converted to the real layout, through a pinhole camera like
#   the real one (NTU colour camera: 1050 px, SynHet's own value; MSR: fitted on the training
#   subjects' pairs);
# * **scratch**: trained on the real training clips only;
# * **synhet + fine-tune**: the SynHet lifter trained further on the real training clips.
#
# The folder is outside the repository (licences); without it these sections print why they are
# skipped.

# %%
shared = tour.find_shared_data(shared_data)

# %% [markdown]
# ### NTU RGB+D: colour-image 2D -> camera 3D, leave one file out
#
# Six raw files (one with two bodies). Each fold trains on five files and tests on the sixth. The
# pinhole fit below checks the pairing: the colour camera sits a few centimetres beside the depth
# camera, so its pixels are close to, not exactly, a projection of the 3D joints.

# %%
ntu_dir = tour.real_path(shared, "ntu_raw_sample")
if ntu_dir:
    ntu = lifter_study.ntu_pairset(ntu_dir)
    print(lifter_study.describe(ntu))
    print(lifter_study.pinhole_text(lifter_study.fit_pinhole(ntu)))

# %%
if ntu_dir:
    t0 = time.time()
    ntu_pre = lifter_study.pretrain_on_synhet(data3d, ntu, config, focal=synhet.SynHetConfig().focal, progress=progress)
    print(lifter_study.metrics_table({"SynHet projected to ntu25 (held-out)": ntu_pre.metrics}), end="\n\n")
    folds = lifter_study.leave_one_out(ntu, config, pretrained=ntu_pre.model, **real)
    metrics["wall_s"]["ntu"] = round(time.time() - t0, 1)
    print(lifter_study.fold_table(folds))
    metrics["real"]["ntu_leave_one_out"] = lifter_study.loo_summary(folds)
    metrics["real"]["ntu_synhet_pretraining"] = lifter_study.summary(ntu_pre.metrics)

# %% [markdown]
# ### MSR Action3D: screen (u, v) -> world 3D, cross-subject
#
# 557 sequences (the usual list), odd subjects train, even subjects test. Screen coordinates are
# integer pixels of a 320x240 depth image; a few joints above the frame hold a recorder overflow
# (about 2.1e9) and are set absent.

# %%
msr_dir = tour.real_path(shared, "msr_action3d")
if msr_dir:
    msr = lifter_study.msr_pairset(msr_dir)
    msr_cam = lifter_study.fit_pinhole(msr, "xsub_train")
    print(lifter_study.describe(msr))
    print(lifter_study.pinhole_text(msr_cam))

# %%
if msr_dir:
    t0 = time.time()
    msr_pre = lifter_study.pretrain_on_synhet(data3d, msr, config, focal=abs(msr_cam["fx"]), progress=progress)
    msr_res = lifter_study.compare_variants(msr, "xsub_train", "xsub_val", config, pretrained=msr_pre.model, **real)
    metrics["wall_s"]["msr"] = round(time.time() - t0, 1)
    metrics["real"]["msr_xsub"] = lifter_study.summary(msr_res)
    metrics["real"]["msr_camera"] = msr_cam
    metrics["real"]["msr_synhet_pretraining"] = lifter_study.summary(msr_pre.metrics)

# %% [markdown]
# ### Real-data summary
#
# NTU numbers pool every held-out frame of the six folds. The mean-pose and zero-depth baselines
# are the bars a lifter must get under.

# %%
real_results = {}
if ntu_dir:
    real_results["NTU leave-one-file-out"] = lifter_study.pooled(folds)
if msr_dir:
    real_results["MSR Action3D x-sub"] = msr_res
if real_results:
    print(lifter_study.metrics_table(real_results))
    fig = lifter_study.real_figure(real_results)
    save_figure(fig, "01_lifter_real_data", figdir)
    display(fig)
else:
    print("no real data: section skipped")

# %% [markdown]
# ## 4. Key numbers
#
# `metrics.json` keeps the held-out SynHet MPJPE of the lifter (`mpjpe`, mm) and of the better
# baseline (`mpjpe_baseline`), PA-MPJPE, both baselines, the real-data results and the wall times.

# %%
metrics["wall_s"]["total"] = round(time.time() - t_start, 1)
save_json(run_dir / "metrics.json", metrics)
print("wrote", run_dir / "metrics.json")
print(f"SynHet held-out MPJPE: lifter {metrics['mpjpe']:.1f} mm, better baseline {metrics['mpjpe_baseline']:.1f} mm;"
      f" total {metrics['wall_s']['total']} s")

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True` (seed 0): the numbers just written must be these.

# %%
if smoke:
    written = load_json(run_dir / "metrics.json")
    pairs = written["synhet_pairs"]
    assert pairs["layouts"] == ["coco17", "ntu25"] and pairs["image"] == [1080, 1920], pairs
    assert pairs["shape_2d"] == [200, 2, 32, 17, 2] and pairs["shape_3d"] == [200, 2, 32, 25, 3], pairs
    if seed == 0:
        assert pairs["clips"] == 200 and pairs["person_frames"] == 7520, pairs
        assert pairs["splits"] == {"xsub_train": [104, 3872], "xsub_val": [96, 3648], "xview_train": [133, 4960],
                                   "xview_val": [67, 2560]}, pairs["splits"]
    if num_layers == 4:  # coco17 -> coco20, 4 linear layers of width 32
        assert written["lifter_parameters"] == 5596, written["lifter_parameters"]
    print("smoke check passed")
