"""Helpers for the prompts notebook (``notebooks/02_prompts.ipynb``): where skeleton prompts go.

The notebook's cells stay one call long; what they call lives here (tested in
``tests/test_prompt_study.py``)::

    >>> data = study_data(data3d, data_unified, ("ntu25", "coco20", "kinect20_msr"))  # SynHet -> pose frame
    >>> runs = train_prompts(data, ("prompt", "anchored", "zero"), steps=300)
    >>> prompt_explorer(data, runs, pick_samples(data))      # ipywidgets + plotly 3D viewer
    >>> trajectory_figure(runs, data)                        # prompts over training steps

The data. Every source layout is built from one SynHet draw, so all sources of a clip show the
same motion: Kinect layouts (``ntu25`` and its subsets, e.g. ``kinect20_msr``) from SynHet's noisy
Kinect-25 3D, other layouts (COCO) from SynHet's clean 3D ground truth at their joints (what a
perfect 2D->3D lifter would give; ``coco20``'s spine is interpolated from hips and shoulders as
for a real detector). Each source is then aligned like PYSKL (``normalize_3d``: spine on +z,
shoulders on +x, so a person faces +y) and put into the lifter's pose frame with its root
trajectory (``pose_frame`` + ``with_trajectory``, torso units), as ``HeteroProcessor`` does.

The objective: **cross-source completion**. In the paper the prompts get their gradient through
the encoder and the pretraining loss, so where they end up is hard to read. Here each source's
virtual joints are instead asked to match what the *other* sources of the same clip really see
there (their mean, per frame; squared distance over present frames). The best static prompt is then
the mean position of the joint over all frames and clips, the best anchored offset the mean offset
from its anchor, so training shows where each mode *can* put a virtual joint, and the remaining
error how well it can follow the body.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from hetskel.data.errors import DataError
from hetskel.data.transforms import normalize_3d
from hetskel.hetero.lifter import (
    frame_valid,
    joint_present,
    pose_frame,
    with_trajectory,
)
from hetskel.hetero.prompts import Unifier
from hetskel.layouts import convert, get_layout
from hetskel.train.fit import fit

Tensor = torch.Tensor
SOURCES = ("ntu25", "coco20", "kinect20_msr")
TARGET = "unified30"
# layouts a detector produces from a smaller one (their extra joints are interpolated, not detected)
DETECTED_AS = {"coco20": "coco17"}
# (source, virtual joint, class) for the within-clip figure: a face joint in a bowing clip, a
# finger joint in a waving clip
CASES = (("ntu25", "nose", "bow"), ("coco20", "right_hand_tip", "wave_right_hand"))
EXPLORER_CLASSES = ("bow", "wave_right_hand", "turn_head_left", "open_hand", "walk_forward", "handshake")


@contextlib.contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block: these tensors are small, and on a busy
    2-core machine a thread pool costs several times the work it shares."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class StudyData:
    """SynHet clips in several source layouts, one shared pose frame.

    x: ``{layout: (N, M, T, V_layout, 3)}`` float32, torso units, PYSKL-aligned (z up, +y forward);
    absent persons/frames are exact zeros. labels ``(N,)`` int64.
    """
    x: dict[str, Tensor]
    labels: Tensor
    class_names: list[str]
    frame_dirs: list[str]

    @property
    def sources(self) -> list[str]:
        return list(self.x)

    def summary(self) -> str:
        n, m, t = next(iter(self.x.values())).shape[:3]
        lines = [f"{n} clips x {m} persons x {t} frames, {len(set(self.labels.tolist()))} classes"]
        lines += [f"  {s:<13} {tuple(v.shape)}" for s, v in self.x.items()]
        return "\n".join(lines)


def _stack(data: dict, what: str) -> Tensor:
    try:
        return torch.from_numpy(np.stack([np.asarray(a["keypoint"], np.float32) for a in data["annotations"]]))
    except (KeyError, ValueError) as e:
        raise DataError(f"{what}: clips must share one keypoint shape ({e})", file=what, field="keypoint") from None


def study_data(data3d: dict, data_unified: dict, sources: Sequence[str] = SOURCES) -> StudyData:
    """SynHet ``generate(..., return_unified=True)`` dicts -> ``StudyData`` (module docstring)."""
    kinect, truth = _stack(data3d, "SynHet 3D"), _stack(data_unified, "SynHet unified")
    if kinect.shape[:3] != truth.shape[:3] or kinect.shape[-2:] != (25, 3) or truth.shape[-2:] != (30, 3):
        raise DataError(f"expected matching ntu25 (N,M,T,25,3) and unified30 (N,M,T,30,3) clips, got "
                        f"{tuple(kinect.shape)} and {tuple(truth.shape)}", file="SynHet", field="keypoint")
    with one_thread():
        x = _pose_frames(kinect, truth, sources)
    labels = torch.tensor([a["label"] for a in data3d["annotations"]], dtype=torch.int64)
    return StudyData(x, labels, list(data3d.get("class_names") or []),
                     [a["frame_dir"] for a in data3d["annotations"]])


def _pose_frames(kinect: Tensor, truth: Tensor, sources: Sequence[str]) -> dict[str, Tensor]:
    ntu = get_layout("ntu25")
    x = {}
    for s in sources:
        lay = get_layout(s)
        if all(ntu.has(j) for j in lay.joints):
            raw = convert(kinect, ntu, lay)[0]
        elif s in DETECTED_AS:  # the detector's joints from the truth, the rest interpolated from them
            raw = convert(convert(truth, TARGET, DETECTED_AS[s], derive=False)[0], DETECTED_AS[s], lay)[0]
        else:
            raw, real = convert(truth, TARGET, lay)
            if not real.all():
                raise DataError(f"layout {s!r} has joints SynHet does not model: "
                                f"{[j for j, r in zip(lay.joints, real) if not r]}", field=s)
        present = joint_present(raw)
        # PYSKL centring leaves spine_mid exactly 0 in the first frame: still present (3D presence is per frame)
        aligned = normalize_3d(raw, lay, valid=present)
        x[s] = with_trajectory(pose_frame(aligned, lay), present).float()
    return x


def pick_samples(data: StudyData, classes: Sequence[str] = EXPLORER_CLASSES) -> dict[str, int]:
    """``{"<class> #<index>": index}`` of the first clip of each class present in the draw."""
    out = {}
    for c in classes:
        if c in data.class_names:
            hit = torch.nonzero(data.labels == data.class_names.index(c)).flatten()
            if hit.numel():
                out[f"{c} #{int(hit[0])}"] = int(hit[0])
    if not out:
        raise LookupError(f"none of the classes {list(classes)} is in this draw")
    return out


# ---------------------------------------------------------------------------------------------
# the objective
def completion_targets(unifier: Unifier, data: StudyData) -> tuple[Tensor, Tensor]:
    """Per unified joint and frame, the mean of the sources that really have it there.

    Returns ``target (N, M, T, V_u, 3)`` and ``have (N, M, T, V_u)`` bool.
    """
    total = cnt = None
    for s, x in data.x.items():
        idx = torch.as_tensor(unifier.unified.index[get_layout(s).name])
        shape = (*x.shape[:-2], unifier.layout.num_joints)
        y = x.new_zeros(*shape, x.shape[-1]).index_copy(-2, idx, x)
        c = x.new_zeros(shape).index_copy(-1, idx, joint_present(x).to(x.dtype))
        total, cnt = (y, c) if total is None else (total + y, cnt + c)
    return total / cnt.clamp_min(1)[..., None], cnt > 0


def completion_error(unifier: Unifier, data: StudyData, target: Tensor, have: Tensor) -> dict[str, Tensor]:
    """``{source: (mean squared distance, mean distance)}`` of its virtual joints to ``target`` over
    present frames where some other source has the joint (sources with no such joint are left out)."""
    out = {}
    for s, x in data.x.items():
        u, real = unifier(x, s)
        w = have & ~real & frame_valid(x)[..., None]
        if w.any():
            d2 = ((u - target) ** 2).sum(-1)[w]
            out[s] = (d2.mean(), d2.clamp_min(1e-12).sqrt().mean())
    return out


@dataclass
class PromptRun:
    """One mode's training: the unifier and what its prompt tables did.

    tables: ``{source: (S+1, k, 3)}`` the ``prompt(source)`` table before training and after each
    of the S steps (prompt mode: positions; anchored: offsets from the anchors). loss: ``(S,)`` the
    batch objective of each step. error_before / error_after: ``{source: mean distance}`` on all
    persons; final_loss: the objective on all persons after training.
    """
    mode: str
    unifier: Unifier
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    error_before: dict[str, float] = field(default_factory=dict)
    error_after: dict[str, float] = field(default_factory=dict)
    final_loss: float = float("nan")

    def displacement(self) -> dict[str, float]:
        """Mean distance each source's prompt rows moved from their initial values (torso units)."""
        return {s: float(np.linalg.norm(t[-1] - t[0], axis=-1).mean()) if t.size else 0.0
                for s, t in self.tables.items()}


def make_unifier(sources: Sequence[str], mode: str, seed: int = 0, init_scale: float = 0.1) -> Unifier:
    """A ``Unifier`` onto unified30 whose initial tables depend only on ``seed`` (every mode starts
    from the same numbers: positions for ``prompt``, offsets for ``anchored``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Unifier(sources, target=TARGET, mode=mode, init_scale=init_scale)


def person_rows(data: StudyData) -> StudyData:
    """The same data with ``N * M`` persons flattened to ``(P, 1, T, V, 3)`` rows, absent persons
    dropped (most SynHet clips have one person and an all-zero second one): what training iterates."""
    keep = torch.stack([frame_valid(x).any(-1) for x in data.x.values()]).any(0).flatten()   # (N*M,)
    M = next(iter(data.x.values())).shape[1]
    who = torch.arange(keep.numel())[keep] // M
    return StudyData({s: x.flatten(0, 1)[keep][:, None] for s, x in data.x.items()}, data.labels[who],
                     data.class_names, [data.frame_dirs[i] for i in who.tolist()])


def _error(uni: Unifier, rows: StudyData, target: Tensor, have: Tensor, idx: Tensor | None = None):
    if idx is not None:
        rows = StudyData({s: x[idx] for s, x in rows.x.items()}, rows.labels[idx], rows.class_names, [])
        target, have = target[idx], have[idx]
    return completion_error(uni, rows, target, have)


def train_prompts(data: StudyData, modes: Sequence[str] = ("prompt", "anchored", "zero"), steps: int = 300,
                  lr: float = 0.03, batch_size: int = 32, seed: int = 0, init_scale: float = 0.1,
                  progress: bool = False) -> dict[str, PromptRun]:
    """Fit each mode's prompt tables to the completion objective with Adam on random batches of
    ``batch_size`` persons (the tables are the only parameters; ``zero`` has none and is only
    evaluated). Every mode sees the same batches. ``error_before/after`` are on all persons."""
    with one_thread():
        return _train(data, modes, steps, lr, batch_size, seed, init_scale, progress)


def _train(data, modes, steps, lr, batch_size, seed, init_scale, progress) -> dict[str, PromptRun]:
    rows = person_rows(data)
    return {mode: _train_mode(data, rows, mode, steps, lr, batch_size, seed, init_scale, progress) for mode in modes}


def _train_mode(data, rows, mode, steps, lr, batch_size, seed, init_scale, progress) -> PromptRun:
    P = len(rows.labels)
    uni = make_unifier(data.sources, mode, seed, init_scale)
    target, have = completion_targets(uni, rows)
    with torch.no_grad():
        before = {s: float(e[1]) for s, e in _error(uni, rows, target, have).items()}
    params = [p for p in uni.parameters() if p.requires_grad]
    tables = {s: [uni.prompt(s).detach().clone()] for s in data.sources}
    losses = []
    gen = torch.Generator().manual_seed(seed)  # every mode sees the same batches

    def batches(_epoch):  # one epoch of `steps` random batches of person rows
        for _ in range(steps):
            yield torch.randint(0, P, (min(batch_size, P),), generator=gen)

    def loss_of(idx):
        return torch.stack([e[0] for e in _error(uni, rows, target, have, idx).values()]).mean()

    def record(loss):
        losses.append(loss.item())
        for s in data.sources:
            tables[s].append(uni.prompt(s).detach().clone())
        if progress and len(losses) % max(1, steps // 10) == 0:
            print(f"{mode:<9} step {len(losses):>5}/{steps}  batch loss {losses[-1]:.4f}")

    if params:  # "zero" has no parameters: it is only evaluated
        fit(torch.optim.Adam(params, lr=lr), loss_of, batches, on_step=record)
    uni.eval()
    with torch.no_grad():
        err = _error(uni, rows, target, have)
    return PromptRun(mode, uni, {s: torch.stack(t).numpy() for s, t in tables.items()},
                     np.array(losses), before, {s: float(e[1]) for s, e in err.items()},
                     float(torch.stack([e[0] for e in err.values()]).mean()))


def training_table(runs: Mapping[str, PromptRun]) -> str:
    """Completion error (mean distance, torso units) before -> after training, per mode and source."""
    sources = list(next(iter(runs.values())).unifier.sources)
    lines = ["completion error of the virtual joints (torso units), before -> after training",
             f"{'mode':<10}" + "".join(f"{s:>22}" for s in sources)]
    for mode, r in runs.items():
        cells = [f"{r.error_before[s]:.3f} -> {r.error_after[s]:.3f}" if s in r.error_before else "-" for s in sources]
        lines.append(f"{mode:<10}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# tables and checks that do not depend on training
def source_table(sources: Sequence[str] = SOURCES, target: str = TARGET) -> str:
    """Real and virtual joints of each source on the target skeleton, with the anchors ``anchored``
    mode uses for the virtual ones."""
    uni = Unifier(sources, target=target, mode="anchored")
    lines = [f"{uni.layout.name}: {uni.layout.num_joints} joints, {len(uni.sources)} source layouts",
             f"{'layout':<14}{'V':>3}{'real':>6}{'virtual':>9}"]
    for s in uni.sources:
        real = int(uni.real_mask(s).sum())
        lines.append(f"{s:<14}{get_layout(s).num_joints:>3}{real:>6}{uni.layout.num_joints - real:>9}")
    for s in uni.sources:
        lines.append(f"{s} virtual joints <- anchor:")
        pairs = [f"{j} <- {a or '(none)'}" for j, a in uni.anchors(s).items()]
        lines += ["  " + ", ".join(pairs[k:k + 4]) for k in range(0, len(pairs), 4)]
    return "\n".join(lines)


def round_trip(runs: Mapping[str, PromptRun], data: StudyData) -> dict[str, dict[str, dict]]:
    """Per mode and source: ``deunify(unify(x)) == x`` and the real joints of the unified skeleton
    are the input's, bit for bit (``max_abs_diff`` over both)."""
    out = {}
    for mode, r in runs.items():
        out[mode] = {}
        for s, x in data.x.items():
            with torch.no_grad():
                u, real = r.unifier(x, s)
                back = r.unifier.deunify(u, s)
                idx = torch.as_tensor(r.unifier.unified.index[get_layout(s).name])
                diff = max(float((back - x).abs().max()), float((u.index_select(-2, idx) - x).abs().max()))
            out[mode][s] = {"exact": diff == 0.0, "max_abs_diff": diff, "real": int(real.sum()),
                            "virtual": int((~real).sum())}
    return out


def round_trip_table(checks: Mapping[str, Mapping[str, dict]]) -> str:
    modes = list(checks)
    lines = [f"{'layout':<14}" + "".join(f"{m:>10}" for m in modes)]
    for s in next(iter(checks.values())):
        lines.append(f"{s:<14}" + "".join(f"{'exact' if checks[m][s]['exact'] else 'CHANGED':>10}" for m in modes))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# virtual joints inside one clip
def clip_cases(data: StudyData, cases: Sequence[tuple[str, str, str]] = CASES) -> list[tuple[str, str, int]]:
    """``(source, joint, clip index)`` of the ``CASES`` whose source and class are in ``data``."""
    out = []
    for s, j, c in cases:
        if s in data.x and c in data.class_names and bool((data.labels == data.class_names.index(c)).any()):
            out.append((s, j, int(torch.nonzero(data.labels == data.class_names.index(c))[0])))
    return out


def joint_track(run: PromptRun, data: StudyData, source: str, joint: str, index: int) -> np.ndarray:
    """``(T, 3)`` the unified joint of person 0 of clip ``index`` as ``run``'s unifier fills it from ``source``."""
    with torch.no_grad():
        u, _ = run.unifier(data.x[source][index:index + 1], source)
    return u[0, 0, :, run.unifier.layout.index(joint)].numpy()


def truth_track(data: StudyData, joint: str, index: int, exclude: str) -> np.ndarray:
    """``(T, 3)`` the joint of person 0 as the sources other than ``exclude`` really see it (NaN where none)."""
    seen = [x[index, 0, :, get_layout(s).index(joint)] for s, x in data.x.items()
            if s != exclude and get_layout(s).has(joint)]
    if not seen:
        raise LookupError(f"no source other than {exclude!r} has joint {joint!r}")
    pts = torch.stack(seen)                                         # (S, T, 3)
    ok = (pts != 0).any(-1)[..., None].float()
    mean = (pts * ok).sum(0) / ok.sum(0).clamp_min(1)
    return torch.where(ok.sum(0) > 0, mean, torch.nan).numpy()


def clip_motion(runs: Mapping[str, PromptRun], data: StudyData, cases=None) -> dict[str, dict[str, float]]:
    """Per case ``"<source>:<joint>"``: how much the virtual joint moves inside its clip (spread of
    its position over frames, torso units) in each mode and in truth, and its mean distance to the
    truth per mode."""
    out = {}
    for s, j, i in cases if cases is not None else clip_cases(data):
        truth = truth_track(data, j, i, s).astype(np.float64)
        ok = ~np.isnan(truth).any(-1) & (data.x[s][i, 0] != 0).any(-1).any(-1).numpy()
        rec = {"clip": data.frame_dirs[i], "truth_spread": float(np.sqrt(truth[ok].var(0).sum()))}
        for mode, r in runs.items():
            track = joint_track(r, data, s, j, i)[ok].astype(np.float64)
            rec[f"{mode}_spread"] = float(np.sqrt(track.var(0).sum()))
            rec[f"{mode}_error"] = float(np.linalg.norm(track - truth[ok], axis=-1).mean())
        out[f"{s}:{j}"] = rec
    return out


def study_metrics(runs: Mapping[str, PromptRun], data: StudyData, checks: Mapping) -> dict:
    """What ``metrics.json`` keeps: joint counts, training, prompt displacement, checks, clip motion."""
    first = next(iter(checks.values()))
    return {"sources": {s: {"real": c["real"], "virtual": c["virtual"]} for s, c in first.items()},
            "completion_error_before": {m: r.error_before for m, r in runs.items()},
            "completion_error_after": {m: r.error_after for m, r in runs.items()},
            "final_loss": {m: r.final_loss for m, r in runs.items()},
            "prompt_displacement": {m: r.displacement() for m, r in runs.items() if m != "zero"},
            "round_trip_exact": all(c["exact"] for per in checks.values() for c in per.values()),
            "round_trip_max_abs_diff": max(c["max_abs_diff"] for per in checks.values() for c in per.values()),
            "clip_motion": clip_motion(runs, data)}
