"""Loss curves: the one figure of training curves every study and the pretraining use.

    >>> from hetskel.viz.curves import Curve, Panel, loss_figure
    >>> fig = loss_figure([Panel([Curve(train, x=epochs, label="train"), Curve(val, x=epochs, label="val")],
    ...                          ylabel="loss", logy=True)], title="lifter")

A figure is a row of ``Panel`` s (one axes each: title, axis labels, log scale), each drawing
``Curve`` s: values against steps or epochs as lines and/or markers, optionally with their running
mean on top (``smooth``) or as one level (``level``: a dashed line where there was nothing to train).
Callers turn their own records into curves (``hetskel.experiment.pretrain.loss_figure``,
``hetskel.studies.lifter.loss_figure``, ``hetskel.studies.prompt_views.loss_figure``).

matplotlib's ``Figure`` (not pyplot): a notebook shows the figure once, where it asks.
Floor 2 (figures): imports nothing from hetskel.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Curve", "Panel", "draw_panel", "loss_figure"]


@dataclass
class Curve:
    """One series. ``x`` None: 1, 2, ..., len(y) (steps). ``style`` a matplotlib format (``"-"``,
    ``"o"``, ``"o-"``, ``"--"``). ``smooth`` > 0: the raw series thin and faint, its running mean
    over ``smooth`` points on top (carrying ``label``). ``level``: ``y[0]`` as a horizontal line."""

    y: Sequence[float]
    x: Sequence[float] | None = None
    label: str | None = None
    color: str | None = None
    style: str = "-"
    lw: float = 1.5
    ms: float = 3.0
    smooth: int = 0
    level: bool = False


@dataclass
class Panel:
    """One axes of curves, with its title, axis labels and (``logy``) a log y axis."""

    curves: Sequence[Curve] = field(default_factory=list)
    title: str = ""
    xlabel: str = "epoch"
    ylabel: str = ""
    logy: bool = False
    legend: bool | None = None  # None: when a curve has a label


def draw_panel(ax, panel: Panel):
    """Draw ``panel`` on the matplotlib axes ``ax``; returns ``ax``."""
    for c in panel.curves:
        y = np.asarray(c.y, dtype=float)
        if c.level:
            ax.axhline(float(y.reshape(-1)[0]), color=c.color, ls=c.style, lw=c.lw, label=c.label)
            continue
        x = np.arange(1, len(y) + 1) if c.x is None else np.asarray(c.x, dtype=float)
        if c.smooth and len(y):
            w = min(c.smooth, len(y))
            ax.plot(x, y, c.style, color=c.color, lw=0.6, alpha=0.4, ms=c.ms)
            ax.plot(x[w - 1:], np.convolve(y, np.ones(w) / w, mode="valid"), "-", color=c.color, lw=2, label=c.label)
        else:
            ax.plot(x, y, c.style, color=c.color, lw=c.lw, ms=c.ms, label=c.label)
    if panel.logy:
        ax.set_yscale("log")
    if panel.title:
        ax.set_title(panel.title)
    if panel.xlabel:
        ax.set_xlabel(panel.xlabel)
    if panel.ylabel:
        ax.set_ylabel(panel.ylabel)
    if panel.legend or (panel.legend is None and any(c.label for c in panel.curves)):
        ax.legend(fontsize=8)
    return ax


def loss_figure(panels: Sequence[Panel], title: str = "", figsize: tuple[float, float] | None = None,
                extra_axes: int = 0):
    """A row of ``panels`` (default size 3.2 x 2.8 inches each) and ``extra_axes`` empty axes after
    them for the caller (``fig.axes[len(panels):]``, e.g. a bar chart of final errors)."""
    from matplotlib.figure import Figure

    n = len(panels) + extra_axes
    if n < 1:
        raise ValueError("loss_figure needs at least one panel")
    fig = Figure(figsize=figsize or (3.2 * n, 2.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        draw_panel(ax, panel)
    if title:
        fig.suptitle(title)
    return fig
