"""Skeleton viewers: an animated plotly figure and a static matplotlib montage.

    >>> fig = skeleton_figure(ds.x["ntu25"][0], "ntu25", title="clip 0")   # (M, T, V, 3)
    >>> fig = montage(ds.x["coco17"][0], "coco17", frames=6)
    >>> hetskel.io.save_figure(fig, "clip0")                                # viewers never write files

Colours: left joints/bones blue, right red, centre grey (from the layout's joint names). Joints
marked virtual by ``real_mask`` (e.g. prompt-filled joints of the unified skeleton) are drawn as
hollow markers. Absent (all-zero) joints, frames and persons are not drawn.

Axes: 2D data is drawn in image convention (y downward). 3D data is drawn with its "up" axis
vertical: ``up="auto"`` takes the coordinate axis along which the body's spine (hips -> shoulders)
mostly points, with its sign, so raw Kinect (+y up) and PYSKL-normalised (+z up) data both stand
upright. The axis ranges are fixed over the whole sequence so the animation does not jump.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hetskel.layouts import Layout, get_layout

LEFT, RIGHT, CENTRE = "#1f77b4", "#d62728", "#7f7f7f"


# ---------------------------------------------------------------------------------------------
# shared preparation
def _as_sequences(x) -> np.ndarray:
    """``(T, V, C)`` or ``(M, T, V, C)`` tensor/array -> float64 ``(M, T, V, C)``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] not in (2, 3):
        raise ValueError(f"expected (T, V, C) or (M, T, V, C) with C 2 or 3, got shape {x.shape}")
    return x


def _prepare(x, layout, real_mask):
    """Common checks: returns (x (M', T, V, C) of present persons, present (M', T, V), layout, real)."""
    lay = get_layout(layout)
    x = _as_sequences(x)
    if x.shape[2] != lay.num_joints:
        raise ValueError(f"x has {x.shape[2]} joints but layout {lay.name!r} has {lay.num_joints}")
    present = (x != 0).any(-1)
    people = present.reshape(present.shape[0], -1).any(-1)
    if people.any():  # drop zero-padded persons; keep one (empty) when there is nothing at all
        x, present = x[people], present[people]
    else:
        x, present = x[:1], present[:1]
    real = np.ones(lay.num_joints, bool) if real_mask is None else np.asarray(real_mask, bool).reshape(-1)
    if real.shape != (lay.num_joints,):
        raise ValueError(f"real_mask has {real.size} entries for {lay.num_joints} joints")
    return x, present, lay, real


def _side(name: str) -> str:
    return "left" if name.startswith("left_") else "right" if name.startswith("right_") else "centre"


def _joint_colours(lay: Layout) -> list[str]:
    return [{"left": LEFT, "right": RIGHT, "centre": CENTRE}[_side(j)] for j in lay.joints]


def _bones_by_side(lay: Layout) -> dict[str, list[tuple[int, int]]]:
    """Bones grouped by colour: a bone takes the side of its child joint."""
    out: dict[str, list[tuple[int, int]]] = {"left": [], "right": [], "centre": []}
    for c, p in lay.bones:
        out[_side(lay.joints[c])].append((c, p))
    return out


def _up_axis(x: np.ndarray, present: np.ndarray, lay: Layout) -> tuple[int, float]:
    """(axis, sign) of the body's up direction: mean hips->shoulders vector over present frames."""
    def mid(a, b):
        if lay.has(a) and lay.has(b):
            return (x[..., lay.index(a), :] + x[..., lay.index(b), :]) / 2, \
                present[..., lay.index(a)] & present[..., lay.index(b)]
        return None, None

    top, ok_t = mid("left_shoulder", "right_shoulder")
    bot, ok_b = mid("left_hip", "right_hip")
    if top is None or bot is None:
        return 1, 1.0  # no torso: assume +y up (Kinect camera space)
    ok = ok_t & ok_b
    if not ok.any():
        return 1, 1.0
    v = (top - bot)[ok].mean(0)
    ax = int(np.abs(v).argmax())
    return ax, float(np.sign(v[ax]) or 1.0)


def _to_view(x: np.ndarray, present: np.ndarray, lay: Layout, up: str):
    """3D data -> plot coordinates (horizontal, depth, up) and the axis titles."""
    names = "xyz"
    if up == "auto":
        ax, sign = _up_axis(x, present, lay)
    else:
        sign = -1.0 if up.startswith("-") else 1.0
        ax = names.index(up.lstrip("+-"))
    # horizontal = first remaining axis (x unless x is up: a front view for Kinect and PYSKL frames);
    # the depth axis is negated when needed so (horizontal, depth, up) stays right-handed (no mirror image)
    h, d = [k for k in range(3) if k != ax]
    flip = sign * (1.0 if (h, d, ax) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0)
    view = np.stack([x[..., h], x[..., d] * flip, x[..., ax] * sign], -1)
    titles = [names[h], ("-" if flip < 0 else "") + names[d], ("-" if sign < 0 else "") + names[ax] + " (up)"]
    return view, titles


def _ranges(x: np.ndarray, present: np.ndarray, cube: bool) -> list[tuple[float, float]]:
    pts = x[present]
    if pts.size == 0:
        return [(-1.0, 1.0)] * x.shape[-1]
    lo, hi = pts.min(0), pts.max(0)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    half = np.full_like(half, half.max()) if cube else half
    half = np.maximum(half * 1.08, 1e-3)
    return [(float(m - h), float(m + h)) for m, h in zip(mid, half)]


def _frame_points(x, present, m, t, joints):
    """Coordinates of ``joints`` of person m, frame t, with absent ones as None (plotly gaps)."""
    pts = x[m, t][joints]
    ok = present[m, t][joints]
    return [[float(v) if o else None for v, o in zip(pts[:, c], ok)] for c in range(x.shape[-1])]


def _bone_points(x, present, m, t, bones):
    """Bone segments as one polyline with None separators; bones touching an absent joint are skipped."""
    cols = [[] for _ in range(x.shape[-1])]
    for c, p in bones:
        if present[m, t, c] and present[m, t, p]:
            for k in range(x.shape[-1]):
                cols[k] += [float(x[m, t, c, k]), float(x[m, t, p, k]), None]
    return cols


# ---------------------------------------------------------------------------------------------
# plotly
def skeleton_figure(x, layout: str | Layout, title: str | None = None, real_mask=None, joint_names: bool = True,
                    up: str = "auto", fps: float = 15.0):
    """Animated plotly figure of one clip: one ``go.Frame`` per time step, slider and play button.

    x: ``(T, V, C)`` or ``(M, T, V, C)``, C = 2 (image y downward) or 3 (``Scatter3d``, fixed cube).
    real_mask: optional bool ``(V,)``; False joints are drawn hollow ("virtual").
    up: 3D only: ``"auto"``, or an axis such as ``"y"``, ``"-y"``, ``"z"``.
    Traces per frame, per present person: bones left, right, centre, then real joints, then (when
    ``real_mask`` has False entries) virtual joints.
    """
    import plotly.graph_objects as go

    x, present, lay, real = _prepare(x, layout, real_mask)
    M, T, V, C = x.shape
    axis_titles = ["x", "y"]
    if C == 3:
        x, axis_titles = _to_view(x, present, lay, up)
    ranges = _ranges(x, present, cube=(C == 3))
    colours = np.array(_joint_colours(lay))
    names = np.array(list(lay.joints) if joint_names else [str(i) for i in range(V)])
    groups = [np.flatnonzero(real)] + ([np.flatnonzero(~real)] if (~real).any() else [])
    bones = _bones_by_side(lay)
    scatter = go.Scatter3d if C == 3 else go.Scatter
    coords = "xyz"[:C]

    def traces(t: int) -> list:
        out = []
        for m in range(M):
            for side, colour in (("left", LEFT), ("right", RIGHT), ("centre", CENTRE)):
                pts = _bone_points(x, present, m, t, bones[side])
                out.append(scatter(**dict(zip(coords, pts)), mode="lines", line=dict(color=colour, width=4),
                                   hoverinfo="skip", showlegend=False, name=f"p{m} {side} bones"))
            for g, joints in enumerate(groups):
                pts = _frame_points(x, present, m, t, joints)
                hover = "%{text}<br>" + "<br>".join(f"{axis_titles[k]}=%{{{c}:.3f}}" for k, c in enumerate(coords))
                marker = dict(color=colours[joints].tolist(), size=5 if C == 3 else 8)
                if g == 1:  # virtual joints: hollow markers with a coloured outline
                    marker = dict(color="white", size=marker["size"], symbol="circle-open" if C == 3 else "circle",
                                  line=dict(color=colours[joints].tolist(), width=2))
                out.append(scatter(**dict(zip(coords, pts)), mode="markers", marker=marker,
                                   text=[f"p{m} {n}" + ("" if g == 0 else " (virtual)") for n in names[joints]],
                                   hovertemplate=hover + "<extra></extra>", showlegend=False,
                                   name=f"p{m} {'real' if g == 0 else 'virtual'} joints"))
        return out

    frames = [go.Frame(data=traces(t), name=str(t)) for t in range(T)]
    fig = go.Figure(data=frames[0].data, frames=frames)
    anim = dict(frame=dict(duration=1000.0 / fps, redraw=True), mode="immediate", fromcurrent=True,
                transition=dict(duration=0))
    fig.update_layout(
        title=title,
        updatemenus=[dict(type="buttons", showactive=False, x=0.0, y=0.0, xanchor="left", yanchor="top",
                          buttons=[dict(label="Play", method="animate", args=[None, anim]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=0, x=0.1, len=0.9, currentvalue=dict(prefix="frame "),
                      steps=[dict(label=str(t), method="animate",
                                  args=[[str(t)], dict(frame=dict(duration=0, redraw=True), mode="immediate")])
                             for t in range(T)])],
        margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    if C == 3:
        fig.update_layout(scene=dict(
            xaxis=dict(range=ranges[0], title=axis_titles[0], autorange=False),
            yaxis=dict(range=ranges[1], title=axis_titles[1], autorange=False),
            zaxis=dict(range=ranges[2], title=axis_titles[2], autorange=False),
            aspectmode="cube"))
    else:
        fig.update_xaxes(range=ranges[0], autorange=False, title="x")
        # image convention: y grows downward, so the range runs from max to min
        fig.update_yaxes(range=[ranges[1][1], ranges[1][0]], autorange=False, title="y (down)",
                         scaleanchor="x", scaleratio=1)
    return fig


# ---------------------------------------------------------------------------------------------
# matplotlib
def montage(x, layout: str | Layout, frames: int = 6, ax: Sequence | None = None, figsize=None, real_mask=None,
            up: str = "auto", title: str | None = None):
    """Static montage of ``frames`` evenly spaced time steps; returns the matplotlib ``Figure``.

    x: ``(T, V, C)`` or ``(M, T, V, C)``. 3D data is drawn as an orthographic front view
    (horizontal vs up axis, see the module docstring); 2D in image convention (y down).
    ax: optional sequence of ``frames`` Axes to draw into (their figure is returned); otherwise a
    new ``Figure`` (not registered with pyplot, so nothing leaks in loops) of ``figsize``.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    x, present, lay, real = _prepare(x, layout, real_mask)
    M, T, _, C = x.shape
    if C == 3:
        view, titles = _to_view(x, present, lay, up)
        x, labels = view[..., [0, 2]], (titles[0], titles[2])
    else:
        labels = ("x", "y (down)")
    frames = max(1, min(int(frames), T))
    ts = np.unique(np.linspace(0, T - 1, frames).round().astype(int))
    if ax is None:
        fig = Figure(figsize=figsize or (2.2 * len(ts), 3.0))
        axes = list(np.atleast_1d(fig.subplots(1, len(ts))))
    else:
        axes = list(ax)
        if len(axes) < len(ts):
            raise ValueError(f"montage: {len(ts)} frames need {len(ts)} axes, got {len(axes)}")
        fig = axes[0].figure
    (x0, x1), (y0, y1) = _ranges(x, present, cube=True)
    colours = np.array(_joint_colours(lay))
    sides = _bones_by_side(lay)
    for a, t in zip(axes, ts):
        for m in range(M):
            for side, colour in (("left", LEFT), ("right", RIGHT), ("centre", CENTRE)):
                seg = [x[m, t, [c, p]] for c, p in sides[side] if present[m, t, c] and present[m, t, p]]
                if seg:
                    a.add_collection(LineCollection(seg, colors=colour, linewidths=1.5))
            ok = present[m, t]
            r, v = ok & real, ok & ~real
            a.scatter(x[m, t, r, 0], x[m, t, r, 1], c=colours[r].tolist(), s=10, zorder=3)
            if v.any():
                a.scatter(x[m, t, v, 0], x[m, t, v, 1], facecolors="none", edgecolors=colours[v].tolist(),
                          s=18, zorder=3)
        a.set_xlim(x0, x1)
        a.set_ylim((y1, y0) if C == 2 else (y0, y1))
        a.set_aspect("equal")
        a.set_title(f"t={t}", fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    axes[0].set_xlabel(labels[0], fontsize=8)
    axes[0].set_ylabel(labels[1], fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
