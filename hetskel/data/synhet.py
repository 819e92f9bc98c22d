"""SynHet: a synthetic heterogeneous action dataset, one motion rendered as Kinect-25 3D and COCO-17 2D.

It makes the paper's complementarity claim testable on a laptop: *face* classes are visible only to
COCO's nose/eyes/ears, *hand* classes only to Kinect's hand tips and thumbs, *body* and
*two_person* classes to both (``CLASS_GROUPS``; the puppet and the classes live in
``hetskel.data.synhet_motions``).

Usage::

    from hetskel.data.synhet import generate, save_synhet
    data3d, data2d = generate(num_samples=200, seed=1)
    data3d["annotations"][0]["keypoint"]        # (M=2, T=64, 25, 3) float32 metres, layout ntu25
    data2d["annotations"][0]["keypoint_score"]  # (2, 64, 17); keypoint (2, 64, 17, 2) pixels, coco17
    save_synhet("data/synhet", num_samples=10000, seed=0)  # synhet_3d.pkl, synhet_2d.pkl, class_names.txt

Each sample: a subject (own proportions) performs a class at a random speed in front of one of
three cameras (yaw ``camera_yaws_deg``, camera id 1..3 as NTU's C001..C003) of one of
``num_setups`` setups (distance, height, tilt). The clean unified30 joints are then

- put into Kinect camera space (metres; x grows to the image right, y up, z depth ~2.5-4 m;
  like NTU, a person facing the camera has their left side at smaller x), corrupted with Kinect-like
  noise (z noisier, hands/feet noisier, occasional hand-jitter bursts) -> ``ntu25``;
- projected by a pinhole camera (1920x1080, fx = fy = ``focal``, principal point at the centre, image
  v grows downward; like NTU's colour frames, u grows with camera x), corrupted with detector-like
  jitter (more on wrists/ankles and fast joints, rare outliers) whose size sets ``keypoint_score``
  -> ``coco17``.

M is always 2: one-person classes have an all-zero second person (score 0), as in NTU files.
Splits follow PYSKL's NTU-60 names: ``xsub_*`` by subject (NTU's train-subject list),
``xview_*`` by camera (2, 3 train; 1 val). Everything is a function of ``(config, seed)``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetskel import config as _config
from hetskel.data.errors import DataError
from hetskel.data.synhet_motions import (
    CHANNELS,
    CLASS_GROUPS,
    MOTIONS,
    U30,
    forward_kinematics,
    idle,
    sample_bodies,
)
from hetskel.layouts import convert, get_layout

XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)  # NTU-60
# detector jitter weight and best-case confidence per COCO joint: face points are sharp, limbs
# ends small and fast (order of coco17: 5 face, shoulders, elbows, wrists, hips, knees, ankles)
_JIT_W = np.array([0.5] * 5 + [1.0, 1.0, 1.3, 1.3, 1.8, 1.8, 1.1, 1.1, 1.3, 1.3, 1.7, 1.7])
_BASE_SCORE = np.array([0.95] * 5 + [0.92, 0.92, 0.88, 0.88, 0.82, 0.82, 0.9, 0.9, 0.87, 0.87, 0.8, 0.8])
# Kinect noise multipliers per unified30 joint: hands, tips, thumbs and feet are the noisiest
_K_W = np.array([2.0 if j.endswith(("hand", "hand_tip", "thumb", "foot")) else 1.0 for j in U30.joints])
_HAND_GROUPS_NTU = [[get_layout("ntu25").index(f"{s}_{p}") for p in ("hand", "hand_tip", "thumb")]
                    for s in ("left", "right")]


@dataclass
class SynHetConfig:
    """Everything that defines a SynHet draw. Angles in degrees, lengths in metres, jitter_2d is a
    fraction of the person's height in pixels."""

    num_samples: int = 10000
    num_frames: int = 64
    seed: int = 0
    num_subjects: int = 40
    num_setups: int = 17
    two_person_fraction: float | None = None  # share of two-person samples; None = classes uniform
    classes: tuple[str, ...] | None = None  # draw only these class names (labels still index class_names())
    camera_yaws_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)  # camera id 1, 2, 3 sees the scene turned by this about Y
    replication_yaw_deg: float = 0.0  # R001 faces +this, R002 -this (NTU: towards left/right camera)
    body_yaw_jitter_deg: float = 8.0
    speed_range: tuple[float, float] = (0.75, 1.33)  # time-warp factor, log-uniform
    distance_range: tuple[float, float] = (3.0, 3.8)  # per setup, camera to scene centre
    camera_height_range: tuple[float, float] = (0.9, 1.3)
    camera_tilt_deg_range: tuple[float, float] = (-2.0, 6.0)  # positive = looking down
    noise_3d: float = 0.008
    hand_jitter_prob: float = 0.04  # per frame and hand: Kinect's hand joints jump
    hand_jitter_3d: float = 0.04
    jitter_2d: float = 0.006
    outlier_prob_2d: float = 0.01
    focal: float = 1050.0
    image_size: tuple[int, int] = (1080, 1920)  # (height, width)
    chunk_size: int = 512  # samples rendered at once (memory), part of the definition of a draw

    def validate(self) -> SynHetConfig:
        """Check types (``hetskel.config``: numpy scalars -> Python, lists -> tuples, in place) and
        ranges; a bad field is a ``DataError`` with ``file="SynHetConfig"`` and that ``field``."""
        def bad(field, why):
            return DataError(f"{why}, got {getattr(self, field)!r}", file="SynHetConfig", field=field)
        try:
            _config.check_fields(self)
        except (_config.ConfigTypeError, _config.ConfigValueError) as e:
            why = e.reason if e.where == e.field else f"{e.where!r} {e.reason}"
            raise DataError(why, file="SynHetConfig", field=e.field) from None
        for f, least in (("num_samples", 1), ("num_frames", 2), ("num_setups", 1), ("chunk_size", 1)):
            if getattr(self, f) < least:
                raise bad(f, f"must be an integer >= {least}")
        if self.seed < 0:
            raise bad("seed", "must be an integer >= 0 (numpy seeds are non-negative)")
        if self.num_subjects < 3:
            raise bad("num_subjects", "needs at least 3 subjects so both x-sub splits are non-empty")
        if self.two_person_fraction is not None and not 0.0 <= self.two_person_fraction <= 1.0:
            raise bad("two_person_fraction", "must be in [0, 1] or None")
        if self.classes is not None:
            unknown = [c for c in self.classes if c not in class_names()]
            if unknown or not len(self.classes):
                raise bad("classes", f"must be a non-empty list of SynHet classes {class_names()}")
        if len(self.camera_yaws_deg) < 2:
            raise bad("camera_yaws_deg", "needs at least 2 cameras for an x-view split")
        for f in ("speed_range", "distance_range", "camera_height_range", "camera_tilt_deg_range"):
            lo, hi = getattr(self, f)
            if not (lo <= hi and np.isfinite([lo, hi]).all()):
                raise bad(f, "must be (low, high) with finite low <= high")
        if self.speed_range[0] <= 0 or self.distance_range[0] < 1.0:
            raise bad("speed_range" if self.speed_range[0] <= 0 else "distance_range", "out of range")
        for f in ("replication_yaw_deg", "body_yaw_jitter_deg", "camera_yaws_deg"):
            if not np.isfinite(getattr(self, f)).all():
                raise bad(f, "must be finite")
        for f in ("noise_3d", "hand_jitter_3d", "jitter_2d", "hand_jitter_prob", "outlier_prob_2d"):
            if not (getattr(self, f) >= 0 and np.isfinite(getattr(self, f))):
                raise bad(f, "must be a finite number >= 0")
        for f in ("hand_jitter_prob", "outlier_prob_2d"):
            if getattr(self, f) > 1:
                raise bad(f, "is a probability, must be <= 1")
        if not (self.focal > 0 and np.isfinite(self.focal)):
            raise bad("focal", "must be a finite positive focal length in pixels")
        if min(self.image_size) < 1:
            raise bad("image_size", "must be a positive (height, width)")
        return self


def class_names() -> list[str]:
    """Class names in label order (0-based labels index this list)."""
    return [c for group in CLASS_GROUPS.values() for c in group]


def class_group(label_or_name) -> str:
    """``"face" | "hand" | "body" | "two_person"`` for a class name or 0-based label."""
    names = class_names()
    if isinstance(label_or_name, (int, np.integer)) and 0 <= label_or_name < len(names):
        label_or_name = names[label_or_name]
    for g, members in CLASS_GROUPS.items():
        if label_or_name in members:
            return g
    raise DataError(f"{label_or_name!r} is neither a SynHet class nor a label 0..{len(names) - 1}", field="label")


def xsub_train_subjects(num_subjects: int) -> list[int]:
    """NTU-60's 20 training subjects (those <= num_subjects); beyond 40, odd ids train."""
    return [s for s in range(1, num_subjects + 1) if (s in XSUB_TRAIN_SUBJECTS if s <= 40 else s % 2 == 1)]


# ---------------------------------------------------------------------------------------------
def _phase(rng, n: int, T: int, speed_range) -> np.ndarray:
    """Action phase (n, T) in [0, 1]: random onset, speed and a smooth monotone time warp."""
    t = np.linspace(0.0, 1.0, T)
    speed = np.exp(rng.uniform(*np.log(speed_range), (n, 1)))
    dur = np.clip(rng.uniform(0.7, 0.92, (n, 1)) / speed, 0.35, 1.0)
    onset = rng.uniform(0.0, 1.0, (n, 1)) * np.maximum(0.0, 1.0 - dur)
    p = np.clip((t - onset) / dur, 0.0, 1.0)
    warp = rng.uniform(-0.5, 0.5, (n, 1))  # |warp| < 1 keeps p monotone
    return p + warp * np.sin(2 * np.pi * p) / (2 * np.pi)


def _perform(cfg, rng, labels, bodies_a, bodies_b) -> tuple[np.ndarray, np.ndarray]:
    """Scene-frame joints of the persons present ``(m, T, 30, 3)`` and their (sample, person) mask (n, 2).

    Rows are the ``True`` entries of the mask in C order: sample 0 person A, (sample 0 person B), ...
    """
    n, T = len(labels), cfg.num_frames
    names = class_names()
    present = np.zeros((n, 2), bool)
    present[:, 0] = True
    present[:, 1] = np.isin(labels, [names.index(c) for c in CLASS_GROUPS["two_person"]])
    b = np.flatnonzero(present[:, 1])
    p = _phase(rng, n, T, cfg.speed_range)
    poses = [{c: np.zeros((len(rows), T)) for c in CHANNELS} for rows in (labels, b)]
    for k in range(2):  # the same class-independent fidgeting for everybody
        for c, v in idle(rng, len(poses[k]["bow"]), T).items():
            poses[k][c] += v
    place = [{key: np.zeros(len(poses[k]["bow"])) for key in ("x0", "z0", "yaw0")} for k in range(2)]
    pos_b = np.cumsum(present[:, 1]) - 1  # sample index -> row of person B
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        people = MOTIONS[names[c]](rng, p[idx], len(idx))
        for k, channels in enumerate(people):
            rows = idx if k == 0 else pos_b[idx]
            for key, v in channels.items():
                if key in place[k]:
                    place[k][key][rows] = np.asarray(v).reshape(-1)
                else:
                    poses[k][key][rows] += v
    out = np.empty((int(present.sum()), T, U30.num_joints, 3))
    first = np.cumsum(present.sum(1)) - present.sum(1)  # row of each sample's person A
    out[first] = forward_kinematics(poses[0], bodies_a, **place[0])
    if b.size:
        out[first[b] + 1] = forward_kinematics(poses[1], bodies_b[b], **place[1])
    return out, present


def _to_camera(cfg, rng, scene, cam, rep, setup_rows, owner) -> np.ndarray:
    """Scene (m, T, V, 3) -> Kinect camera space: rotate by the camera yaw, step back, tilt.

    Camera parameters are per sample (n,); ``owner`` (m,) says which sample each row belongs to,
    so both persons of a sample share one camera.
    """
    n = len(cam)
    yaw = np.radians(np.asarray(cfg.camera_yaws_deg, float)[cam - 1]
                     + np.where(rep == 1, 1.0, -1.0) * cfg.replication_yaw_deg
                     + rng.normal(0.0, cfg.body_yaw_jitter_deg, n))
    shift = rng.uniform(-0.25, 0.25, (n, 2))
    dist = setup_rows[:, 0] + rng.uniform(-0.2, 0.2, n)
    height, tilt = setup_rows[:, 1], np.radians(setup_rows[:, 2])

    def e(a):  # per sample (n,) -> per row (m, 1, 1), broadcast over frames and joints
        return a[owner, None, None]

    X, Y, Z = scene[..., 0], scene[..., 1], scene[..., 2]
    Xr = np.cos(e(yaw)) * X + np.sin(e(yaw)) * Z + e(shift[:, 0])
    Zr = -np.sin(e(yaw)) * X + np.cos(e(yaw)) * Z + e(shift[:, 1])
    # camera axes: x = -X (the facing person's left is at smaller x, as in NTU), z = depth
    y_lvl, z_lvl = Y - e(height), e(dist) - Zr
    y = np.cos(e(tilt)) * y_lvl + np.sin(e(tilt)) * z_lvl
    z = -np.sin(e(tilt)) * y_lvl + np.cos(e(tilt)) * z_lvl
    return np.stack([-Xr, y, z], -1)


def _normal(rng, shape, scale=1.0):
    return rng.standard_normal(shape, dtype=np.float32) * scale


def _kinect(cfg, rng, cam3d) -> np.ndarray:
    """Clean camera-space unified30 (m, T, 30, 3) -> noisy ntu25 (m, T, 25, 3) float32."""
    ntu, _ = convert(cam3d.astype(np.float32), "unified30", "ntu25")
    w, _ = convert(_K_W[:, None], "unified30", "ntu25")
    sd = (cfg.noise_3d * w * np.array([1.0, 1.0, 1.5])).astype(np.float32)  # depth: Kinect's noisiest axis
    ntu += _normal(rng, ntu.shape) * sd
    burst = rng.random((*ntu.shape[:2], 2), dtype=np.float32) < cfg.hand_jitter_prob
    k, t, side = np.nonzero(burst)  # rare: draw offsets only where a hand jumps
    offset = _normal(rng, (len(k), 1, 3), cfg.hand_jitter_3d)
    for s, group in enumerate(_HAND_GROUPS_NTU):
        sel = side == s
        ntu[k[sel, None], t[sel, None], np.array(group)[None]] += offset[sel]
    return ntu


def _detector(cfg, rng, cam3d) -> tuple[np.ndarray, np.ndarray]:
    """Project to pixels and add detector jitter: coco17 (m, T, 17, 2) and scores (m, T, 17), float32."""
    h, w = cfg.image_size
    coco, _ = convert(cam3d.astype(np.float32), "unified30", "coco17")
    f = np.float32(cfg.focal)
    uv = np.stack([w / 2 + f * coco[..., 0] / coco[..., 2], h / 2 - f * coco[..., 1] / coco[..., 2]], -1)
    # person size in pixels sets the jitter scale (a detector's error scales with the box)
    extent = uv[..., 1].max(-1) - uv[..., 1].min(-1)  # (m, T)
    scale = np.maximum(np.median(extent, axis=1), 50.0)[:, None, None]  # (m, 1, 1)
    speed = np.zeros(uv.shape[:-1], np.float32)
    speed[:, 1:] = np.linalg.norm(uv[:, 1:] - uv[:, :-1], axis=-1)
    speed[:, 0] = speed[:, 1] if uv.shape[1] > 1 else 0.0
    sigma = (cfg.jitter_2d * scale + 0.1 * speed) * _JIT_W.astype(np.float32)
    err = _normal(rng, uv.shape) * sigma[..., None]
    k, t, j = np.nonzero(rng.random(sigma.shape, dtype=np.float32) < cfg.outlier_prob_2d)
    err[k, t, j] += _normal(rng, (len(k), 2)) * (0.1 * scale[k, 0])  # rare gross failures
    r = np.sqrt((err ** 2).sum(-1)) / (0.04 * scale)  # OKS-like: error relative to person size
    score = _BASE_SCORE.astype(np.float32) * np.exp(-0.5 * r ** 2) * (0.9 + 0.1 * rng.random(r.shape, np.float32))
    return uv + err, np.clip(score, 0.02, 1.0)


# ---------------------------------------------------------------------------------------------
def generate(config: SynHetConfig | None = None, *, return_unified: bool = False, **kwargs):
    """Draw a SynHet dataset: ``(data3d, data2d)``, or ``(data3d, data2d, data_unified)``.

    ``config`` or keyword overrides of ``SynHetConfig`` fields. Both PYSKL dicts hold the same
    samples in the same order (same ``frame_dir``, ``label``, ``subject``, ``camera``, ``split``):
    ``data3d`` keypoint ``(2, T, 25, 3)`` float32 metres, layout ``ntu25``; ``data2d`` keypoint
    ``(2, T, 17, 2)`` float32 pixels + ``keypoint_score (2, T, 17)``, layout ``coco17``. With
    ``return_unified`` a third dict holds the clean camera-space ground truth ``(2, T, 30, 3)``,
    layout ``unified30`` (for lifter and prompt tests). Bitwise identical for equal configs.
    """
    unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(SynHetConfig)})
    if unknown:
        raise DataError(f"unknown SynHet option(s) {unknown}; options are the SynHetConfig fields",
                        file="SynHetConfig", field=unknown[0])
    cfg = dataclasses.replace(config or SynHetConfig(), **kwargs).validate()
    rng = np.random.default_rng(cfg.seed)
    names = class_names()
    S, N, T = cfg.num_subjects, cfg.num_samples, cfg.num_frames
    bodies = sample_bodies(rng, S)
    setups = np.stack([rng.uniform(*cfg.distance_range, cfg.num_setups),
                       rng.uniform(*cfg.camera_height_range, cfg.num_setups),
                       rng.uniform(*cfg.camera_tilt_deg_range, cfg.num_setups)], -1)
    used = np.array([cfg.classes is None or c in cfg.classes for c in names])
    two = np.array([class_group(c) == "two_person" for c in names]) & used
    one = ~two & used
    prob = used / used.sum()
    if cfg.two_person_fraction is not None:  # re-weight the two groups, uniform inside each
        frac = cfg.two_person_fraction if one.any() and two.any() else float(two.any())
        prob = two * frac / max(two.sum(), 1) + one * (1 - frac) / max(one.sum(), 1)
    labels = rng.choice(len(names), N, p=prob)
    subject = rng.integers(1, S + 1, N)
    partner = (subject - 1 + rng.integers(1, S, N)) % S + 1  # a different subject
    camera = rng.integers(1, len(cfg.camera_yaws_deg) + 1, N)
    setup = rng.integers(1, cfg.num_setups + 1, N)
    rep = rng.integers(1, 3, N)

    kp3 = np.zeros((N, 2, T, 25, 3), np.float32)  # absent second persons stay zero
    kp2 = np.zeros((N, 2, T, 17, 2), np.float32)
    sc2 = np.zeros((N, 2, T, 17), np.float32)
    kpu = np.zeros((N, 2, T, U30.num_joints, 3), np.float32) if return_unified else None
    for ci, lo in enumerate(range(0, N, cfg.chunk_size)):
        sl = slice(lo, min(N, lo + cfg.chunk_size))
        crng = np.random.default_rng([cfg.seed, ci + 1])  # independent stream per chunk
        scene, present = _perform(cfg, crng, labels[sl], bodies[subject[sl] - 1], bodies[partner[sl] - 1])
        owner = np.nonzero(present)[0]
        cam3d = _to_camera(cfg, crng, scene, camera[sl], rep[sl], setups[setup[sl] - 1], owner)
        rows = np.flatnonzero(present.ravel())  # scatter back into (n * 2) person slots
        kp3[sl].reshape(-1, T, 25, 3)[rows] = _kinect(cfg, crng, cam3d)
        uv, score = _detector(cfg, crng, cam3d)
        kp2[sl].reshape(-1, T, 17, 2)[rows] = uv
        sc2[sl].reshape(-1, T, 17)[rows] = score
        if kpu is not None:
            kpu[sl].reshape(-1, T, U30.num_joints, 3)[rows] = cam3d

    width = max(5, len(str(N - 1)))
    frame_dirs = [f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a + 1:03d}_{i:0{width}d}"
                  for i, (s, c, p, r, a) in enumerate(zip(setup, camera, subject, rep, labels, strict=True))]
    train_subj = np.isin(subject, xsub_train_subjects(S))
    train_view = camera != 1
    fd = np.array(frame_dirs)
    split = {"xsub_train": fd[train_subj].tolist(), "xsub_val": fd[~train_subj].tolist(),
             "xview_train": fd[train_view].tolist(), "xview_val": fd[~train_view].tolist()}

    def pack(kp, layout, scores=None):
        anns = []
        for i in range(N):
            a = {"frame_dir": frame_dirs[i], "label": int(labels[i]), "total_frames": T, "keypoint": kp[i],
                 "subject": int(subject[i]), "camera": int(camera[i]), "setup": int(setup[i])}
            if scores is not None:
                a["keypoint_score"], a["img_shape"] = scores[i], tuple(cfg.image_size)
            anns.append(a)
        return {"split": {k: list(v) for k, v in split.items()}, "annotations": anns, "layout": layout,
                "class_names": list(names), "dataset": "synhet",
                "class_groups": {g: list(m) for g, m in CLASS_GROUPS.items()}}

    out = (pack(kp3, "ntu25"), pack(kp2, "coco17", sc2))
    return (*out, pack(kpu, "unified30")) if return_unified else out


def save_synhet(out_dir, num_samples: int = 10000, seed: int = 0, num_frames: int = 64, **kw) -> dict:
    """Generate and write ``synhet_3d.pkl``, ``synhet_2d.pkl`` and ``class_names.txt`` under ``out_dir``.

    Extra keywords are ``SynHetConfig`` fields. Returns ``{"3d": Path, "2d": Path, "class_names": Path}``.
    """
    from hetskel.data.pyskl import save_pyskl

    out_dir = Path(out_dir)
    data3d, data2d = generate(num_samples=num_samples, seed=seed, num_frames=num_frames, **kw)
    paths = {"3d": save_pyskl(data3d, out_dir / "synhet_3d.pkl"),
             "2d": save_pyskl(data2d, out_dir / "synhet_2d.pkl"),
             "class_names": out_dir / "class_names.txt"}
    tmp = paths["class_names"].with_name(f"class_names.txt.tmp{os.getpid()}")
    try:
        tmp.write_text("\n".join(class_names()) + "\n")
        os.replace(tmp, paths["class_names"])  # atomic, like the pickles
    finally:
        tmp.unlink(missing_ok=True)  # after a failed write (disk full): no torn temporary
    return paths
