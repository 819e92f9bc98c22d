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
# # 02 · Skeleton prompts: filling the joints a layout lacks
#
# Every skeleton format misses some joints of the 30-joint **unified skeleton**: Kinect-25 (`ntu25`)
# has no face, COCO (`coco20`: COCO-17 plus an interpolated spine) no hands, feet, neck or head, an old
# Kinect v1 (`kinect20_msr`) neither face nor fingers. The paper fills them with **prompts**: one
# learnable 3D vector per (layout, missing joint), the same in every frame (`prompt_J` 5x3 for
# Kinect's face, `prompt_C` 10x3 for COCO's hands and feet). Its ablation fills them with **zeros**.
# Our extension, **anchored** prompts, learns each vector as an *offset from a joint the layout has*
# (the face from Kinect's `head`, fingers from COCO's wrists), so the virtual joint moves with the body.
#
# This notebook
# 1. lists real and virtual joints of three layouts on unified30 (any set of layouts works);
# 2. trains the prompts of each mode for a few seconds on SynHet and shows where they go;
# 3. lets you look at the unified skeletons in 3D: sample, source layout, mode and frame;
# 4. shows, inside single clips, that anchored virtual joints follow the body and static ones do not;
# 5. checks that real joints pass through unchanged, and writes `<run_dir>/metrics.json`.

# %% tags=["parameters"]
smoke = False          # CI sets True: a tiny draw and a few steps, runs in seconds on a CPU
run_dir = ""           # "" -> a new runs/02_prompts/<time>/ folder
seed = 0               # SynHet draw, prompt initialisation and training batches
progress = False       # print the training loss every tenth of the steps
num_samples = 300      # SynHet clips; every source layout is rendered from the same clips
num_frames = 32        # frames per clip
train_steps = 300      # Adam steps per mode
lr = 0.03              # Adam learning rate
batch_size = 64        # persons per step
modes = ["prompt", "anchored", "zero"]
sources = ["ntu25", "coco20", "kinect20_msr"]

# %%
# %matplotlib inline
from hetskel.studies import prompts as prompt_study, prompt_views
from hetskel.data import synhet
from hetskel.io import load_json, make_run_dir, save_figure, save_json

if smoke:  # CI: a draw small enough for seconds on a CPU
    num_samples, num_frames, train_steps = 80, 16, 30
run_dir = make_run_dir(run_dir, "02_prompts")
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
metrics = {"smoke": smoke, "seed": seed, "num_samples": num_samples, "num_frames": num_frames,
           "train_steps": train_steps, "modes": modes, "layouts": sources}
print("run folder:", run_dir)

# %% [markdown]
# ## 1. Real and virtual joints
#
# Each source layout is mapped onto unified30 by joint *name*: its own joints land in their slots
# unchanged (*real*), the others are *virtual* and must be filled. In `anchored` mode every virtual
# joint hangs off the nearest real joint of its layout (nearest along the bones of all the layouts,
# so COCO's head and neck hang off its nose, Kinect v1's fingertips off its hands).

# %%
print(prompt_study.source_table(sources))

# %% [markdown]
# ## 2. The data: one motion, three layouts
#
# SynHet (see notebook 00) draws each clip once and renders it for several sensors. The Kinect
# layouts come from its noisy Kinect-25 3D (`kinect20_msr` is the subset a Kinect v1 reports); COCO's
# joints come from its clean 3D ground truth, i.e. what a *perfect* 2D-to-3D lifter would give
# (notebook 01 trains the real lifter; leaving it out here keeps this experiment about the prompts).
# Every layout is then aligned like PYSKL (spine on +z, shoulders on +x, so the person faces +y) and
# put into the lifter's pose frame with its root trajectory, in torso units, as `HeteroProcessor`
# does before the `Unifier`.

# %%
data3d, _, data_unified = synhet.generate(num_samples=num_samples, num_frames=num_frames, seed=seed,
                                          return_unified=True)
data = prompt_study.study_data(data3d, data_unified, sources)
print(data.summary())

# %% [markdown]
# ## 3. A short training
#
# **The objective.** In the paper the prompts are trained end to end through the encoder and the
# pretraining loss, which makes it hard to say where they *should* go. Here we train them alone, with
# a transparent stand-in: **cross-source completion**. Each layout's virtual joints are asked to match
# what the *other* layouts of the same clip really see at that joint (the mean of those that have
# it), frame by frame, in squared torso units. Kinect's face prompts are pulled towards COCO's nose,
# eyes and ears, COCO's hand prompts towards Kinect's hands, and so on. The best a static prompt can
# do is the joint's mean position over all frames and clips; the best anchored offset is the mean
# offset from its anchor. Adam, batches of persons, the same batches and the same initial numbers for
# every mode; `zero` has nothing to train and is only evaluated.

# %%
runs = prompt_study.train_prompts(data, modes, steps=train_steps, lr=lr, batch_size=batch_size, seed=seed,
                                  progress=progress)
print(prompt_study.training_table(runs))

# %% [markdown]
# ## 4. Explore the unified skeletons
#
# Pick a clip, the layout it is seen in and the prompt mode; the slider steps through the frames.
# Filled markers are the layout's real joints, hollow ones the virtual joints the trained prompts
# fill in (hover for names). Try `bow` in `ntu25`: with `prompt` the face stays where the head is on
# average while the body bends; with `anchored` it bends with the head. In `zero` mode the virtual
# joints are exact zeros, which the viewer (like a padded joint) does not draw; the model would see
# them as points at the origin of the pose frame (the root in the clip's first frame).

# %%
samples = prompt_study.pick_samples(data)
prompt_views.prompt_explorer(data, runs, samples)

# %%
first = next(iter(samples.values()))  # that clip in every layout, animated, for offline viewing (figures/*.html)
for name, fig in prompt_views.clip_figures(data, runs, first).items():
    save_figure(fig, name, figdir)

# %% [markdown]
# ## 5. How the prompts move during training
#
# Rows: Kinect-25 (virtual face) and COCO-20 (virtual hands, feet, neck, head). Columns: front and
# side views of each trained mode, over the layout's mean pose (grey; its mean includes the root
# trajectory, so walking clips shift it forward). A line is one virtual joint over the training steps,
# from its initial value (open circle) to the last (dot). Static prompts start near the root (their
# initial values are small positions) and travel to the joint's average place; anchored ones start
# next to their anchor (small offsets) and move only a little. Both end at the star, the mean
# position where the other layouts see the joint: on *average* the two modes agree.

# %%
fig = prompt_views.trajectory_figure(runs, data)
save_figure(fig, "02_prompts_trajectories", figdir)
fig

# %% [markdown]
# They differ in the error left over: the objective per step (left) and, after training, the mean
# distance of the virtual joints to where the other layouts see them (right). A static point cannot
# follow a head that turns, a body that bends or walks, or a hand that waves; an offset from the
# wrist can, up to the hand's own pose. Zero filling is worst: it puts every missing joint at the root.

# %%
fig = prompt_views.loss_figure(runs)
save_figure(fig, "02_prompts_objective", figdir)
fig

# %% [markdown]
# ## 6. Inside one clip
#
# The anchored virtual joint moves with the body, the static prompt does not. Top: Kinect's virtual
# nose in a `bow` clip (the head goes forward and down); bottom: COCO's virtual right hand tip in a
# `wave_right_hand` clip (the hand goes up and waves). Black is where the other layouts really see
# the joint. The static prompt is a flat line at the joint's average; the anchored joint follows,
# off by the part of the motion its anchor does not make: a fixed offset does not turn with the head
# or the forearm, so with the arm raised the virtual fingertip still sits where fingers are on
# average relative to the wrist (below it, as for a hanging arm) while the real one points up.

# %%
fig = prompt_views.within_clip_figure(runs, data)
save_figure(fig, "02_prompts_within_clip", figdir)
fig

# %% [markdown]
# ## 7. Real joints pass through unchanged
#
# Whatever the mode, a layout's own joints are copied into the unified skeleton and come back out of
# `deunify` bit for bit: prompts only ever touch virtual joints. `exact` means both the unified
# skeleton's real joints and the round trip equal the input exactly, on every clip of the draw.

# %%
checks = prompt_study.round_trip(runs, data)
print(prompt_study.round_trip_table(checks))

# %% [markdown]
# ## 8. Key numbers
#
# `metrics.json` keeps the real/virtual joint counts per layout, the completion error before and
# after training per mode and layout, how far the prompt tables moved, the round-trip check and the
# within-clip motion of the two example joints (spread over frames: 0 for a static prompt).

# %%
metrics.update(prompt_study.study_metrics(runs, data, checks))
save_json(run_dir / "metrics.json", metrics)
print("wrote", run_dir / "metrics.json")
print({k: metrics[k] for k in ("round_trip_exact", "final_loss")})

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True`: every layout's real joints must pass through
# every mode bit for bit, and the joint counts must be these.

# %%
if smoke:
    written = load_json(run_dir / "metrics.json")
    assert written["round_trip_exact"] is True and written["round_trip_max_abs_diff"] == 0.0, written
    assert sorted(written["final_loss"]) == sorted(modes), written["final_loss"]
    counts = {"ntu25": {"real": 25, "virtual": 5}, "coco20": {"real": 20, "virtual": 10},
              "kinect20_msr": {"real": 20, "virtual": 10}}
    assert sorted(written["sources"]) == sorted(sources) and all(
        written["sources"][s] == counts[s] for s in sources if s in counts), written["sources"]
    print("smoke check passed")
