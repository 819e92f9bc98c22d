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
# # 07 · Transfer: pretrain on one dataset, evaluate on another
#
# A representation is only useful if it carries over. Here the encoder pretrained on one dataset is
# frozen and probed (linear probe and 1-NN retrieval) on datasets it never saw, recorded by
# other sensors in **other skeleton layouts**:
#
# | pretrained on | evaluated on | what changes |
# |---|---|---|
# | SynHet (J+C+S) | **UTD-MHAD** (real, `../shared/data`) | Kinect v1, 20 joints, UTD order; 3D only; 27 actions, 8 subjects |
# | SynHet (J+C+S) | **MSR Action3D** (real, `../shared/data`) | Kinect v1, 20 joints, MSR order; 3D only; 20 actions, 10 subjects |
# | NTU-60 | **PKU-MMD II** (when you point `pku_pyskl` at it) | same Kinect v2 layout, another dataset, 51 actions |
# | NTU-60 | **FineGYM** (when you point `finegym_pyskl` at it) | 2D COCO-17 only, gymnastics, 99 classes |
#
# Both real Kinect v1 sets use the standard cross-subject split: odd subjects train, even subjects test.
#
# **How a new layout meets the pretrained skeleton** (`hetskel.eval.transfer`). Nothing is retrained: the
# pretrained processor (pose frame, lifter, prompts, the semantic reducer of S) and encoder are used
# as they are. A Kinect v1 skeleton is re-indexed by joint name onto the pretrained 3D source
# (Kinect v2, `ntu25`): its 20 joints are all Kinect v2 joints. The 5 joints Kinect v1 lacks (neck,
# hand tips, thumbs) are filled per `fill`: `"anchor"` copies the nearest real joint along the bones
# (neck <- spine_shoulder, tips and thumbs <- hand), `"zero"` leaves them absent. The face joints
# every Kinect lacks get the pretrained prompts, exactly as in pretraining. There is no 2D skeleton,
# so **C is absent**: the features are the fused stream of J and S (S computed from J). FineGYM is
# the mirror image: only C (through the pretrained lifter) and S.
#
# Next to each result: the same protocol on the **untrained** network of the same spec and seed.

# %% tags=["parameters"]
smoke = False              # CI: tiny pretraining, short probe, the real data subsampled
run_dir = ""               # "" -> a new runs/07_transfer/<time>/ folder
pretrain_dir = ""          # a 04_pretrain run folder; "" -> pretrain here (SynHet, or NTU when ntu_3d is set)
seed = 0
targets = "utd_mhad,msr_action3d"   # real Kinect v1 targets read from shared_data
shared_data = ""           # "" -> ../shared/data (or $HETSKEL_SHARED_DATA)
fill = "anchor"            # anchor | zero: joints of the pretrained layout the target lacks
probe_epochs = 150
# pretraining here (pretrain_dir = ""): SynHet at 04's defaults, or NTU-60 PYSKL files (GPU scale)
preset = "small"
num_samples = 2000
epochs = 20
batch_size = 128
lr = 5e-4
recipe = "hetskel"         # "hetskel" (default) | "paper" (PretrainSpec.recipe)
ntu_3d = ""                # ntu60_3danno.pkl: pretrain on NTU-60 x-sub (with ntu_2d: J+C+S)
ntu_2d = ""                # ntu60_hrnet.pkl
pku_pyskl = ""             # PKU-MMD II as a PYSKL file (hetskel.data.pku.load_pku_mmd + save_pyskl), xsub_train/xsub_val
finegym_pyskl = ""         # FineGYM gym_hrnet.pkl (COCO-17 2D), splits train/val
own_data = True            # the "your own skeletons" path on UTD-MHAD from shared_data (skipped when absent)
progress = True

# %%
# %matplotlib inline
from pathlib import Path

import torch

from hetskel.eval.pretrained import results_table
from hetskel.experiment import pretrain as experiment
from hetskel.experiment.spec import PretrainSpec, smoke_spec
from hetskel.eval import transfer
from hetskel.io import load_json, make_run_dir, save_figure, save_json, shared_data_dir

run_dir = make_run_dir(run_dir, "07_transfer")
if smoke:
    progress = False
    torch.set_num_threads(1)  # tiny tensors: a second thread buys little and costs a lot on a busy machine
if not pretrain_dir:
    if ntu_3d:
        paths = {k: p for k, p in (("ntu25", ntu_3d), ("coco17", ntu_2d)) if p}
        pre_spec = PretrainSpec(dataset="pyskl", paths=paths, modalities="J,C,S" if ntu_2d else "J,S",
                                           preset=preset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                           recipe=recipe)
    else:
        pre_spec = PretrainSpec(preset=preset, num_samples=num_samples, epochs=epochs, batch_size=batch_size,
                                           lr=lr, seed=seed, data_seed=seed, recipe=recipe)
    if smoke:
        pre_spec = smoke_spec(pre_spec, seed=seed, data_seed=seed)
    pretrain_dir = experiment.pretrain(pre_spec, run_dir / "pretrain", progress=progress).run_dir
pretrainer, spec = experiment.load_pretrained(pretrain_dir)
data_root = shared_data or shared_data_dir()
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
metrics = {"smoke": smoke, "pretrain_dir": str(pretrain_dir), "fill": fill, "targets": {}}
print("run folder:", run_dir)
print("pretrained:", pretrain_dir, f"({spec.dataset}, {','.join(spec.modality_list)})")
print(experiment.table_banner(experiment.read_pretrain_run(pretrain_dir).semantic_table))

# %% [markdown]
# ## Layouts: what the target has, what the network expects
#
# For each Kinect v1 order, where its joints land on the pretrained 3D source and how the joints it
# lacks are filled.

# %%
print("pretrained sources:", transfer.pretrained_layouts(pretrainer))
metrics["pretrained_sources"] = transfer.pretrained_layouts(pretrainer)
metrics["plans"] = {}
for lay in ("kinect20_utd", "kinect20_msr"):
    print(transfer.describe_plan(lay, pretrainer, fill))
    plan = transfer.layout_plan(lay, transfer.match_layout(lay, list(metrics["pretrained_sources"].values())), fill)
    metrics["plans"][lay] = {k: v for k, v in plan.items() if k != "index"}

# %% [markdown]
# ## Real targets: UTD-MHAD and MSR Action3D
#
# Read from `../shared/data` (skipped, with the reason, when it is absent). Each clip is normalised
# like the pretraining data (PYSKL's 3D pre-normalisation) and resampled to the encoder's frames.

# %%
results = {}
names = [t.strip() for t in targets.split(",") if t.strip()]
if data_root is None:
    print("SKIPPED real-data transfer: ../shared/data is absent (set shared_data or $HETSKEL_SHARED_DATA)")
    names = []
for name in names:
    train_ds, val_ds = transfer.load_target(name, num_frames=spec.num_frames, max_persons=spec.max_persons,
                                            root=data_root)
    if smoke:  # CI: every other clip of each split keeps all classes and both subject halves
        train_ds, val_ds = train_ds.subset(range(0, len(train_ds), 2)), val_ds.subset(range(0, len(val_ds), 2))
    results[name] = transfer.transfer_evaluate(pretrainer, train_ds, val_ds, probe_epochs=probe_epochs, fill=fill,
                                               untrained=experiment.build_pretrainer(spec))
    r = results[name]
    print(f"== {name}: {r['num_train']} train / {r['num_val']} test clips, {r['num_classes']} classes, "
          f"features from {'+'.join(r['modalities_used'])}")
    print(results_table(r), end="\n\n")

# %% [markdown]
# ## NTU-60 -> PKU-MMD II and FineGYM (your files)
#
# The paper's transfer settings need data that cannot be shipped: point `pku_pyskl` / `finegym_pyskl`
# at PYSKL files (and pretrain on NTU-60 with `ntu_3d`/`ntu_2d`, or pass such a run as `pretrain_dir`).
# PKU-MMD II is Kinect v2 like NTU (J and S); FineGYM is 2D only (C through the pretrained lifter,
# and S).

# %%
for name, path, splits in (("pku_mmd2", pku_pyskl, ("xsub_train", "xsub_val")),
                           ("finegym", finegym_pyskl, ("train", "val"))):
    if not path:
        print(f"{name}: no file given (parameter {'pku_pyskl' if name == 'pku_mmd2' else 'finegym_pyskl'}), skipped")
        continue
    train_ds, val_ds = transfer.load_target(path, num_frames=spec.num_frames, max_persons=spec.max_persons,
                                            splits=splits)
    results[name] = transfer.transfer_evaluate(pretrainer, train_ds, val_ds, probe_epochs=probe_epochs, fill=fill,
                                               untrained=experiment.build_pretrainer(spec))
    print(f"== {name}: features from {'+'.join(results[name]['modalities_used'])}")
    print(results_table(results[name]), end="\n\n")

# %% [markdown]
# ## Pretrained vs untrained, per target

# %%
if results:
    fig = transfer.comparison_figure(results, title=f"transfer from {spec.dataset} ({','.join(spec.modality_list)})")
    save_figure(fig, "07_transfer", figdir)
else:
    fig = None
    print("no target was evaluated")
fig

# %% [markdown]
# ## Your own skeletons: arrays in, a pretrained model out, evaluated and reloaded
#
# The path for a dataset of your own, with public names only, shown on UTD-MHAD (Kinect v1, 20
# joints, one person). Yours: read each clip into a `(M, T, V, C)` array (`hetskel.read_joint_rows`,
# `read_csv`, `read_npy`, `read_mat`), define the layout (`hetskel.load_layout("my_layout.json")` or
# `hetskel.layout_from_names`), then `hetskel.from_arrays(clips, labels, layout_name, splits=...,
# class_names=..., img_shape=...)`; 1-based or string labels are detected and mapped. The dict goes
# straight into `PretrainSpec(paths={layout: data})`; the run folder keeps the data, the layouts and
# the label names, so `hetskel.load_pretrained` works in any later process.

# %%
own = {}
if own_data and data_root is not None and (Path(data_root) / "utd_mhad").is_dir():
    import hetskel

    utd = hetskel.load_utd_mhad(Path(data_root) / "utd_mhad")     # yours: hetskel.from_arrays(...)
    own_spec = hetskel.PretrainSpec(dataset="pyskl", paths={"kinect20_utd": utd}, splits=("xsub_train", "xsub_val"),
                                    max_persons=1, modalities="J,S", preset="tiny", num_frames=32,
                                    epochs=2 if smoke else 30, batch_size=32, lr=1e-3, seed=seed, recipe=recipe)
    own_run = hetskel.pretrain(own_spec, Path(run_dir) / "own_data", progress=progress)
    own_net, own_spec = hetskel.load_pretrained(own_run.run_dir)
    own_train, own_test = hetskel.load_data(own_spec)
    own_res = hetskel.evaluate_pretrained(own_net, own_train, own_test, probe_epochs=10 if smoke else probe_epochs,
                                          semi_fractions=(), untrained=hetskel.build_pretrainer(own_spec))
    own = {k: own_res[k] for k in ("linear_top1", "linear_top1_random_init", "knn_top1", "knn_top1_random_init",
                                   "num_train", "num_val", "num_classes", "features")}
    own["run_dir"] = str(own_run.run_dir)
    print(f"UTD-MHAD as your own data: {own['num_train']} / {own['num_val']} clips, {own['num_classes']} classes; "
          f"linear {own['linear_top1']:.1f} (untrained {own['linear_top1_random_init']:.1f}), "
          f"1-NN {own['knn_top1']:.1f}; run folder {own['run_dir']}")
else:
    print("skipped: no utd_mhad folder under", data_root)

# %% [markdown]
# ## Key numbers
#
# `metrics.json`: per target the probe and retrieval of the transferred and the untrained network,
# the modalities used and how the layout was adapted.

# %%
metrics["targets"] = {k: {m: v for m, v in r.items() if m != "confusion"} for k, r in results.items()}
metrics["spec"] = spec.to_dict()
metrics["own_data"] = own
save_json(run_dir / "metrics.json", metrics)
print("wrote", run_dir / "metrics.json")

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True` at its defaults: it pretrains the standard smoke
# run `smoke_spec()` here, so where the Kinect v1 joints land, just written, must be exactly this.

# %%
if smoke:
    written = load_json(run_dir / "metrics.json")
    if own_data and data_root is not None and (Path(data_root) / "utd_mhad").is_dir():
        assert (written["own_data"]["num_train"], written["own_data"]["num_val"]) == (431, 430), written["own_data"]
        assert written["own_data"]["num_classes"] == 27 and 0 <= written["own_data"]["linear_top1"] <= 100
    if spec.resolved().to_dict() == smoke_spec().resolved().to_dict() and fill == "anchor":
        assert written["pretrained_sources"] == {"J": "ntu25", "C": "coco17"}, written["pretrained_sources"]
        missing = ["neck", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"]
        filled = {"neck": "spine_shoulder", "left_hand_tip": "left_hand", "left_thumb": "left_hand",
                  "right_hand_tip": "right_hand", "right_thumb": "right_hand"}
        for lay in ("kinect20_utd", "kinect20_msr"):
            assert written["plans"][lay] == {"to": "ntu25", "missing": missing, "filled_from": filled, "dropped": []}, \
                written["plans"][lay]
    print("smoke check passed")
