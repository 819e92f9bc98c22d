"""Figures and the interactive explorer of the prompts notebook (``notebooks/02_prompts.ipynb``).

    >>> prompt_explorer(data, runs, pick_samples(data))   # ipywidgets: sample / layout / mode / frame
    >>> trajectory_figure(runs, data)                     # matplotlib: prompts over training steps
    >>> loss_figure(runs); within_clip_figure(runs, data)

``data`` is a ``hetskel.studies.prompts.StudyData`` (pose frame, torso units: x towards the right
shoulder, y forward, z up) and ``runs`` the ``{mode: PromptRun}`` of ``train_prompts``. Real joints
are drawn filled, virtual (prompt-filled) joints hollow, as in ``hetskel.viz``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from hetskel.hetero.prompts import Unifier
from hetskel.layouts import get_layout
from hetskel.studies.prompts import (
    PromptRun,
    StudyData,
    clip_cases,
    joint_track,
    person_rows,
    truth_track,
)
from hetskel.viz import curves
from hetskel.viz.curves import Curve, Panel
from hetskel.viz.skeleton import skeleton_figure

MODE_COLOURS = {"prompt": "#ff7f0e", "anchored": "#2ca02c", "zero": "#7f7f7f"}
VIEWS = (("front", 0, "x (right)"), ("side", 1, "y (forward)"))   # horizontal axis of each view; z is up


def _unifier(run) -> Unifier:
    return run.unifier if isinstance(run, PromptRun) else run


# ---------------------------------------------------------------------------------------------
# plotly: one clip on the unified skeleton
def clip_figure(data: StudyData, run, source: str, index: int, title: str | None = None):
    """Animated plotly figure of clip ``index`` of ``source`` on the unified skeleton (``run``: a
    ``PromptRun`` or ``Unifier``); virtual joints hollow."""
    uni = _unifier(run)
    with torch.no_grad():
        u, real = uni(data.x[source][index], source)                  # (M, T, V_u, 3)
    return skeleton_figure(u, uni.layout, title=title, real_mask=real.numpy(), up="z")


def clip_figures(data: StudyData, runs: Mapping[str, object], index: int, mode: str = "anchored") -> dict:
    """``{"02_prompts_unified_<layout>": clip_figure}`` of clip ``index`` in every layout, filled by
    ``mode`` (the first mode when ``runs`` lacks it)."""
    mode = mode if mode in runs else next(iter(runs))
    return {f"02_prompts_unified_{s}": clip_figure(data, runs[mode], s, index,
                                                   title=f"{data.frame_dirs[index]} · {s} on unified30 · {mode}")
            for s in data.sources}


def frame_figure(animated, t: int, title: str, height: int = 520):
    """Frame ``t`` of a ``skeleton_figure`` as a still figure with the animation's fixed axes."""
    import plotly.graph_objects as go

    fig = go.Figure(data=animated.frames[t].data, layout=animated.layout)
    fig.layout.sliders, fig.layout.updatemenus = (), ()      # update_layout(sliders=[]) would keep them
    fig.update_layout(title=title, height=height, margin={"l": 0, "r": 0, "t": 40, "b": 0})
    return fig


def prompt_explorer(data: StudyData, runs: Mapping[str, object], samples: Mapping[str, int], height: int = 520):
    """Dropdowns for sample, source layout and mode and a frame slider over one plotly 3D view of
    the unified skeleton; returns the ``ipywidgets.VBox`` to display. Each (sample, layout, mode)
    figure is built once and cached; moving the slider only swaps the frame."""
    import ipywidgets as widgets
    from IPython.display import display

    sample_dd = widgets.Dropdown(options=list(samples), description="sample")
    layout_dd = widgets.Dropdown(options=data.sources, description="layout")
    mode_dd = widgets.Dropdown(options=list(runs), description="mode")
    T = next(iter(data.x.values())).shape[2]
    frame_slider = widgets.IntSlider(value=0, min=0, max=T - 1, description="frame", continuous_update=False)
    out = widgets.Output()
    cache: dict = {}
    box = widgets.VBox([widgets.HBox([sample_dd, layout_dd, mode_dd]), frame_slider, out])

    def draw(*_):
        key = (sample_dd.value, layout_dd.value, mode_dd.value)
        if key not in cache:
            cache[key] = clip_figure(data, runs[key[2]], key[1], samples[key[0]])
        target = _unifier(runs[key[2]]).layout.name
        note = " (virtual joints are 0: not drawn)" if key[2] == "zero" else " (hollow = virtual)"
        title = f"{key[0]} · {key[1]} → {target} · {key[2]} · frame {frame_slider.value}{note}"
        fig = frame_figure(cache[key], frame_slider.value, title, height)
        box.shown = fig                        # what the output shows now (for tests and consoles)
        with out:
            out.clear_output(wait=True)
            display(fig)

    for w in (sample_dd, layout_dd, mode_dd, frame_slider):
        w.observe(draw, "value")
    draw()
    return box


# ---------------------------------------------------------------------------------------------
# matplotlib: prompts over training
def _mean_pose(rows: StudyData, source: str) -> np.ndarray:
    """``(V, 3)`` mean position of each joint of ``source`` over its present frames."""
    x = rows.x[source].flatten(0, 2)                                  # (P*T, V, 3)
    ok = (x != 0).any(-1, keepdim=True).to(x.dtype)
    return ((x * ok).sum(0) / ok.sum(0).clamp_min(1)).numpy()


def _mean_unified(rows: StudyData, uni: Unifier) -> np.ndarray:
    """``(V_u, 3)`` mean position of each unified joint over the sources and frames that have it."""
    total, cnt = np.zeros((uni.layout.num_joints, 3)), np.zeros((uni.layout.num_joints, 1))
    for s in rows.sources:
        idx = uni.unified.index[get_layout(s).name]
        x = rows.x[s].flatten(0, 2)
        ok = (x != 0).any(-1, keepdim=True).to(x.dtype)
        total[idx] += (x * ok).sum(0).numpy()
        cnt[idx] += ok.sum(0).numpy()
    return total / np.maximum(cnt, 1)


def _draw_pose(ax, pose: np.ndarray, layout, h: int) -> None:
    lay = get_layout(layout)
    for c, p in lay.bones:
        ax.plot(pose[[c, p], h], pose[[c, p], 2], color="#bbbbbb", lw=1.5, zorder=1)
    ax.scatter(pose[:, h], pose[:, 2], s=6, color="#999999", zorder=2)


def trajectory_figure(runs: Mapping[str, PromptRun], data: StudyData, sources: Sequence[str] = ("ntu25", "coco20")):
    """Rows: sources; columns: front and side view per trained mode. Grey: the source's mean pose;
    lines: each virtual joint's position over the training steps (open circle: start, dot: end; an
    anchored joint is drawn at its anchor's mean position plus the offset); stars: where the other
    sources see that joint on average."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    rows = person_rows(data)
    trained = [m for m, r in runs.items() if r.tables and any(t.shape[0] > 1 for t in r.tables.values())]
    sources = [s for s in sources if s in data.x]
    ncol = 2 * len(trained)
    fig = Figure(figsize=(3.2 * ncol + 1.8, 3.6 * len(sources)), layout="constrained")
    grid = fig.subplots(len(sources), ncol, squeeze=False)
    for axes, s in zip(grid, sources):
        pose = _mean_pose(rows, s)
        for k, mode in enumerate(trained):
            uni = runs[mode].unifier
            seen = _mean_unified(rows, uni)
            missing = uni.missing(s)
            anchors = uni.anchors(s)
            base = np.stack([seen[uni.layout.index(anchors[j])] if mode == "anchored" and anchors[j] else np.zeros(3)
                             for j in missing])                               # (k, 3)
            path = runs[mode].tables[s] + base                                # (S+1, k, 3)
            colours = colormaps["tab10"](np.arange(len(missing)) % 10)
            for v, (view, h, label) in enumerate(VIEWS):
                ax = axes[2 * k + v]
                _draw_pose(ax, pose, s, h)
                for q, j in enumerate(missing):
                    c = colours[q]
                    ax.plot(path[:, q, h], path[:, q, 2], color=c, lw=1.2, label=j if (k, v) == (0, 0) else None)
                    ax.scatter(path[0, q, h], path[0, q, 2], s=28, facecolors="none", edgecolors=[c], zorder=3)
                    ax.scatter(path[-1, q, h], path[-1, q, 2], s=22, color=[c], zorder=4)
                    m = seen[uni.layout.index(j)]
                    ax.scatter(m[h], m[2], marker="*", s=90, color=[c], edgecolors="k", linewidths=0.5, zorder=5)
                ax.set_aspect("equal", adjustable="datalim")
                ax.set_title(f"{s} · {mode} · {view}", fontsize=10)
                ax.set_xlabel(label, fontsize=8)
                ax.set_ylabel("z (up)", fontsize=8)
                ax.tick_params(labelsize=7)
        handles, labels = axes[0].get_legend_handles_labels()
        axes[-1].legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle("virtual joints over training (torso units): o start, • end, ★ mean seen by the other sources")
    return fig


def loss_figure(runs: Mapping[str, PromptRun], window: int = 20):
    """Left: batch objective per step (thin) and its running mean, per trained mode; untrained modes
    as a dashed line at their objective. Right: completion error after training per source."""
    objective = Panel([Curve(r.loss, color=MODE_COLOURS.get(mode), smooth=window, label=f"{mode} (running mean)")
                       if len(r.loss) else
                       Curve([r.final_loss], color=MODE_COLOURS.get(mode), style="--", level=True,
                             label=f"{mode} (nothing to train)") for mode, r in runs.items()],
                      title="completion objective", xlabel="training step",
                      ylabel="mean squared distance (torso units²)", logy=True, legend=True)
    fig = curves.loss_figure([objective], figsize=(11, 3.6), extra_axes=1)
    b = fig.axes[1]
    sources = list(next(iter(runs.values())).error_after)
    width = 0.8 / len(runs)
    for k, (mode, r) in enumerate(runs.items()):
        pos = np.arange(len(sources)) + (k - (len(runs) - 1) / 2) * width
        b.bar(pos, [r.error_after.get(s, np.nan) for s in sources], width, color=MODE_COLOURS.get(mode), label=mode)
    b.set_xticks(np.arange(len(sources)), sources)
    b.set_ylabel("mean distance (torso units)")
    b.set_title("virtual joints vs the other sources, after training")
    b.legend(fontsize=8)
    return fig


def within_clip_figure(runs: Mapping[str, PromptRun], data: StudyData, cases=None):
    """Rows: ``(source, joint, clip)`` cases (``prompt_study.clip_cases``); columns x, y, z over
    the clip's frames: the virtual joint as each mode fills it, and the same joint as the other
    sources really see it (black)."""
    from matplotlib.figure import Figure

    cases = clip_cases(data) if cases is None else cases
    fig = Figure(figsize=(12, 3.0 * max(1, len(cases))), layout="constrained")
    grid = fig.subplots(max(1, len(cases)), 3, squeeze=False)
    for axes, (s, j, i) in zip(grid, cases):
        truth = truth_track(data, j, i, s)
        present = (data.x[s][i, 0] != 0).any(-1).any(-1).numpy()
        t = np.flatnonzero(present)
        tracks = {m: joint_track(r, data, s, j, i) for m, r in runs.items()}
        for c, (ax, name) in enumerate(zip(axes, ("x (right)", "y (forward)", "z (up)"))):
            ax.plot(t, truth[t, c], color="k", lw=2, label="seen by the other sources")
            for m, tr in tracks.items():
                ax.plot(t, tr[t, c], color=MODE_COLOURS.get(m), lw=1.5, ls=":" if m == "zero" else "-", label=m)
            ax.set_xlabel("frame", fontsize=8)
            ax.set_ylabel(name, fontsize=8)
            ax.tick_params(labelsize=7)
        cls = data.class_names[int(data.labels[i])] if data.class_names else str(int(data.labels[i]))
        axes[1].set_title(f"{s}: virtual {j} in a '{cls}' clip ({data.frame_dirs[i]})", fontsize=10)
        axes[0].legend(fontsize=7)
    return fig
