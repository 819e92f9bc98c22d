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
# # 00 · A tour of the data
#
# Heterogeneous skeleton data is the problem this kit is about: the same action can arrive as
# **Kinect-25 3D** joints (NTU RGB+D, PKU-MMD: metres in camera space, with hand tips and thumbs but
# **no face**) or as **COCO-17 2D** keypoints (an HRNet detector on video: pixels, with nose, eyes and
# ears but **no hands**, feet or spine). The paper's claim is that the two are *complementary*, so a
# model that learns from both sees more than either alone.
#
# This notebook walks through
# 1. the skeleton **layouts** hetskel knows and the 30-joint **unified** skeleton of Kinect-25 and COCO-17;
# 2. **SynHet**, the kit's synthetic heterogeneous dataset, where the complementarity is built in and
#    can be measured;
# 3. the **real data** samples in `../shared/data` (NTU raw, a PYSKL COCO-17 file, UTD-MHAD, MSR
#    Action3D), when that folder exists;
# 4. the **transforms** every model input goes through (3D and 2D normalisation, temporal resizing).
#
# It writes figures to `figures/00_*` and its key numbers to `<run_dir>/metrics.json`.

# %% tags=["parameters"]
smoke = False        # CI sets True: small SynHet draw, runs in seconds on a CPU
run_dir = ""         # "" -> a new runs/00_data_tour/<time>/ folder
seed = 0             # SynHet draw
num_samples = 2000   # SynHet samples
num_frames = 64      # frames per SynHet clip
montage_frames = 6   # time steps per montage row
shared_data = ""     # real-data folder; "" -> ../shared/data (or $HETSKEL_SHARED_DATA) when present

# %%
# %matplotlib inline
from hetskel.studies import tour
from hetskel.data import synhet
from hetskel.data.arrays import load_msr_action3d, load_utd_mhad
from hetskel.data.ntu import read_skeleton, select_bodies
from hetskel.data.pyskl import format_summary, load_pyskl, summarize
from hetskel.io import load_json, make_run_dir, save_figure, save_json
from hetskel.layouts import get_layout, list_layouts, unify
from hetskel.viz.skeleton import skeleton_figure

if smoke:  # CI: a draw small enough for seconds on a CPU
    num_samples, num_frames, montage_frames = 100, 32, 4
run_dir = make_run_dir(run_dir, "00_data_tour")
figdir = run_dir / "figures" if smoke else None  # smoke figures stay out of the committed figures/
metrics = {"smoke": smoke, "seed": seed, "real": {}}
print("run folder:", run_dir)

# %% [markdown]
# ## 1. Layouts
#
# A *layout* names the joints along a tensor's joint axis `V` (every array here is `(M, T, V, C)`:
# persons, frames, joints, channels) and their bones. Each dataset format is one layout; joints carry
# canonical names, so converting between formats is a re-indexing, never a guess.

# %%
print(tour.layout_table())
metrics["layouts"] = list_layouts()

# %% [markdown]
# The paper's **unified skeleton** is the union of Kinect-25 and COCO-17: 30 joints, face first, then
# the 15 joints both formats share (after interpolating COCO's spine), then Kinect's hands and feet.
# An `x` marks the joints a format really has. Kinect lacks exactly the face; COCO lacks the hands,
# feet, neck, head and spine, and this gap is what the paper's lifter and prompts fill in.

# %%
unified = unify(["ntu25", "coco17"])
print(tour.unified_table(unified))
metrics["unified_missing"] = {s: unified.missing(s) for s in unified.sources}
metrics["unified_is_unified30"] = unified.layout.joints == get_layout("unified30").joints
print("same joints as the registered unified30:", metrics["unified_is_unified30"])

# %% [markdown]
# ## 2. SynHet: one motion, two formats
#
# SynHet renders each synthetic performance twice: as noisy Kinect-25 3D (camera metres) and as
# COCO-17 2D detections (1920x1080 pixels with confidence scores). Both dicts hold the same samples in
# the same order. Its classes come in four groups: **face** classes only move the head's orientation
# (seen by COCO's face points, invisible to Kinect, whose `head` joint stays put), **hand** classes
# share one arm path and differ only in the fingers (seen by Kinect's hand tips and thumbs, invisible
# to COCO), **body** and **two_person** classes are visible to both.

# %%
data3d, data2d, data_unified = synhet.generate(num_samples=num_samples, num_frames=num_frames, seed=seed,
                                               return_unified=True)
print(format_summary(summarize(data3d)), end="\n\n")
print(format_summary(summarize(data2d)))

# %%
print(tour.class_table(data3d))

# %%
metrics["num_layouts"] = len(list_layouts())
metrics["unified_joints"] = unified.layout.num_joints
metrics["synhet"] = {"num_samples": len(data3d["annotations"]), "num_classes": len(data3d["class_names"]),
                     "num_frames": num_frames, "splits": {k: len(v) for k, v in data3d["split"].items()},
                     "class_groups": data3d["class_groups"],
                     "class_samples": {c: int(sum(a["label"] == k for a in data3d["annotations"]))
                                       for k, c in enumerate(data3d["class_names"])}}

# %% [markdown]
# ### A face class and a hand class in both formats
#
# Each row shows evenly spaced frames of one clip; left joints are blue, right red, centre grey. The
# first two rows are the whole body in each format, the last two a close-up of the region where the
# class happens, drawn with the joints each format has there. In a **face** clip the body stands
# still: the head turn shows only in the 2D close-up, where nose, eyes and ears move; the 3D close-up
# has only a `head` joint, which stays put. In a **hand** clip the right forearm rises the same way
# in both formats, and only the 3D close-up has the hand tip and thumb whose pose says which gesture
# it is; COCO's close-up is an elbow and a wrist.

# %%
face = tour.first_of(data3d, group="face")
fig = tour.formats_montage(data3d, data2d, face, focus="face", frames=montage_frames)
save_figure(fig, "00_synhet_face_montage", figdir)
fig

# %%
hand = tour.first_of(data3d, group="hand")
fig = tour.formats_montage(data3d, data2d, hand, focus="hand", frames=montage_frames)
save_figure(fig, "00_synhet_hand_montage", figdir)
fig

# %% [markdown]
# ### Where the class information sits
#
# A single clip hides the finger or face motion among everything else, so we measure it over the
# whole draw, on SynHet's clean ground truth in the unified skeleton. For every joint we summarise its
# pose *relative to its parent joint* (mean and spread over time, in shoulder widths) and compute an
# F ratio: how far apart the classes of a group are compared with the spread inside a class. F near 1
# (dashed line) means the joint says nothing about which class it is. Bars are coloured by which
# format has the joint. Expect face classes to be told apart only by COCO-only joints, hand classes
# only by Kinect-only joints (the wrist, which both have, follows the shared arm path and says
# nothing), and body classes by joints both formats have.

# %%
scores = tour.complementarity(data_unified)
print(tour.top_joints(scores, unified.layout.joints))
metrics["complementarity"] = tour.complementarity_summary(scores, unified)
fig = tour.complementarity_figure(scores, unified)
save_figure(fig, "00_synhet_complementarity", figdir)
fig

# %% [markdown]
# ### Interactive viewer
#
# The same viewer works for any layout and for one or two persons: press *Play* or drag the slider;
# hover a joint for its name and coordinates. 3D is drawn with the body's up axis vertical (Kinect:
# +y), 2D in image convention (y grows downward). The HTML files in `figures/` open in any browser,
# offline.

# %%
pair = tour.first_of(data3d, group="two_person", min_persons=2)
fig = skeleton_figure(data3d["annotations"][pair]["keypoint"], "ntu25", title="3D  " + tour.caption(data3d, pair))
save_figure(fig, "00_synhet_viewer_3d", figdir)
fig

# %%
fig = skeleton_figure(data2d["annotations"][pair]["keypoint"], "coco17", title="2D  " + tour.caption(data2d, pair))
save_figure(fig, "00_synhet_viewer_2d", figdir)
fig

# %% [markdown]
# ## 3. Real data
#
# Real recordings live outside the repository in `../shared/data` (their licences forbid copying
# them in). A fresh clone does not have them, so every section below checks for its files and prints
# why it is skipped when they are absent.

# %%
shared = tour.find_shared_data(shared_data)

# %% [markdown]
# ### NTU RGB+D raw `.skeleton` file
#
# The raw Kinect v2 dump has, per frame and body, 25 joints with 12 fields each: 3D camera
# coordinates in metres, depth-image and colour-image pixel coordinates, a joint-orientation
# quaternion and a tracking state. So one file holds a 3D skeleton **and** its 2D projection into the
# colour camera, the same pairing SynHet draws. Below: a two-person clip (handshake), the 3D row
# viewed from the front and the colour-image row in pixels.

# %%
ntu_file = tour.real_path(shared, "ntu_raw_sample/S001C003P008R002A058.skeleton")
if ntu_file:
    sk = read_skeleton(ntu_file)
    print(tour.describe_ntu(sk))
    metrics["real"]["ntu_raw"] = {"frames": sk.num_frames, "bodies": sk.num_bodies}

# %%
if ntu_file:
    fig = tour.paired_montage([(select_bodies(sk, 2, "xyz"), "ntu25", "3D camera space (m)"),
                               (select_bodies(sk, 2, "color_xy"), "ntu25", "colour image (px)")],
                              frames=montage_frames, title=sk.name)
    save_figure(fig, "00_ntu_raw_montage", figdir)
    display(fig)

# %% [markdown]
# ### A PYSKL COCO-17 file
#
# PYSKL's annotation pickles are the kit's interchange format. This real HRNet file (a small
# 16-class phone-video dataset, despite its name) stores labels **1-based**; the loader notices and
# converts them to 0-based (the summary says so), and it has no `layout` key, so the layout is
# guessed from `V=17, C=2`.

# %%
pyskl_file = tour.real_path(shared, "pyskl_coco17_custom16/ntu60_hrnet.pkl")
if pyskl_file:
    hrnet = load_pyskl(pyskl_file)
    print(format_summary(summarize(hrnet)))
    metrics["real"]["pyskl_coco17"] = {"samples": len(hrnet["annotations"]),
                                       "label_base_detected": hrnet.get("label_base_detected")}

# %%
if pyskl_file:
    clip = hrnet["annotations"][tour.best_scored(hrnet)]
    fig = tour.paired_montage([(clip["keypoint"], "coco17", "HRNet COCO-17 (px)")], frames=montage_frames,
                              title=f"{clip['frame_dir']}: label {clip['label']}")
    save_figure(fig, "00_pyskl_coco17_montage", figdir)
    display(fig)

# %% [markdown]
# ### UTD-MHAD and MSR Action3D
#
# Two older Kinect v1 datasets with 20 joints, each in its own joint order (`kinect20_utd`,
# `kinect20_msr`): no hand tips, no thumbs, no face. Both load into the same PYSKL dict as everything
# else.

# %%
utd_root = tour.real_path(shared, "utd_mhad")
if utd_root:
    utd = load_utd_mhad(utd_root)
    print(format_summary(summarize(utd)))
    metrics["real"]["utd_mhad"] = {"samples": len(utd["annotations"]), "classes": len(utd["class_names"])}
    i = tour.first_of(utd, name="right hand wave")
    fig = tour.paired_montage([(utd["annotations"][i]["keypoint"], "kinect20_utd", "UTD-MHAD 3D")],
                              frames=montage_frames, title=tour.caption(utd, i))
    save_figure(fig, "00_utd_mhad_montage", figdir)
    display(fig)

# %%
msr_root = tour.real_path(shared, "msr_action3d")
if msr_root:
    msr = load_msr_action3d(msr_root)
    print(format_summary(summarize(msr)))
    metrics["real"]["msr_action3d"] = {"samples": len(msr["annotations"]), "classes": len(msr["class_names"])}
    i = tour.first_of(msr, name="high arm wave")
    fig = tour.paired_montage([(msr["annotations"][i]["keypoint"], "kinect20_msr", "MSR Action3D 3D")],
                              frames=montage_frames, title=tour.caption(msr, i))
    save_figure(fig, "00_msr_action3d_montage", figdir)
    display(fig)

# %% [markdown]
# ## 4. Transforms
#
# Before a model sees a clip, `hetskel.data.transforms` makes it independent of where the camera
# stood: `normalize_3d` moves the main person's mid-spine (first frame) to the origin and turns the
# body so its spine points along +z and its shoulders along +x (PYSKL's pre-normalisation);
# `normalize_2d` maps pixels to [-1, 1] by the image size and drops keypoints the detector gave no
# confidence; `resize_time` resamples a clip to a fixed number of frames, keeping its first and last
# frame exactly. The sample is from camera 3, which sees the person from 45 degrees to one side: in
# the raw rows the shoulders look narrower and forward motions partly sideways; after `normalize_3d`
# the person faces us. `normalize_2d` divides
# x by half the width and y by half the height, so the 16:9 picture becomes a square and the person
# looks slimmer (PYSKL does the same). The checks print numbers that must be ~0 (centre, shoulder
# angle, bone-length change: a rigid motion), small (the spine is only approximately on z after the
# two PYSKL rotations) or inside [-1, 1].

# %%
turned = tour.first_of(data3d, group="body", camera=3)  # camera 3 sees the person turned by 45 degrees
demo = tour.transform_demo(data3d, data2d, turned, num_frames=num_frames // 2)
metrics["transforms"] = demo.checks()
for name, value in metrics["transforms"].items():
    print(f"{name:<26} {value}")

# %%
fig = tour.paired_montage([(demo.raw3d, "ntu25", "3D raw (camera m)"), (demo.norm3d, "ntu25", "normalize_3d"),
                           (demo.raw2d, "coco17", "2D raw (px)"), (demo.norm2d, "coco17", "normalize_2d")],
                          frames=montage_frames, title="before / after normalisation: " + tour.caption(data3d, turned))
save_figure(fig, "00_transforms_montage", figdir)
fig

# %%
fig = tour.resize_figure(demo, joint="right_wrist")
save_figure(fig, "00_transforms_resize_time", figdir)
fig

# %% [markdown]
# ## 5. Key numbers
#
# `metrics.json` in the run folder keeps the counts above, the complementarity summary (mean F ratio
# of the joints each format has alone) and the transform checks, so batch runs can compare them.

# %%
save_json(run_dir / "metrics.json", metrics)
print("wrote", run_dir / "metrics.json")

# %% [markdown]
# ## Smoke check
#
# `make test` runs this notebook with `smoke = True` (seed 0): the numbers just written must be these.

# %%
if smoke:
    written = load_json(run_dir / "metrics.json")
    assert written["layouts"] == ["coco17", "coco20", "h36m17", "kinect20_msr", "kinect20_utd", "ntu25", "openni15",
                                  "unified30"], written["layouts"]
    assert written["num_layouts"] == 8 and written["unified_joints"] == 30 and written["unified_is_unified30"]
    assert written["unified_missing"] == {
        "ntu25": ["nose", "left_eye", "right_eye", "left_ear", "right_ear"],
        "coco17": ["spine_base", "spine_mid", "spine_shoulder", "neck", "head", "left_hand", "right_hand",
                   "left_hand_tip", "right_hand_tip", "left_thumb", "right_thumb", "left_foot", "right_foot"]}
    syn = written["synhet"]
    assert syn["num_samples"] == 100 and syn["num_classes"] == 17 and syn["num_frames"] == 32, syn
    assert syn["class_groups"] == {
        "face": ["turn_head_left", "turn_head_right", "nod_head"], "hand": ["open_hand", "make_fist", "thumbs_up"],
        "body": ["wave_right_hand", "raise_both_arms", "squat", "jump", "kick_right", "walk_forward", "bow",
                 "punch_right"],
        "two_person": ["handshake", "approach", "push"]}, syn["class_groups"]
    if seed == 0:
        assert syn["class_samples"] == {
            "turn_head_left": 3, "turn_head_right": 6, "nod_head": 5, "open_hand": 10, "make_fist": 3, "thumbs_up": 1,
            "wave_right_hand": 6, "raise_both_arms": 5, "squat": 6, "jump": 9, "kick_right": 5, "walk_forward": 8,
            "bow": 6, "punch_right": 8, "handshake": 8, "approach": 5, "push": 6}, syn["class_samples"]
    print("smoke check passed")
