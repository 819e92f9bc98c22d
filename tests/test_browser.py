"""The interactive notebooks really work in JupyterLab: opened in headless Chromium, run from the Run
menu, their plotly 3D figures render (WebGL), their ipywidgets controls render and, when moved, make the
kernel redraw the linked figure/text, and no cell shows a traceback.

Needs Debian's /usr/bin/chromium (``.ci/run`` installs it) and the ``playwright`` package (no
``playwright install``). Without chromium the tests skip, except under CI (``$CI`` set), where a
missing browser is a failure. Screenshots are copied to ``runs/browser/`` (git-ignored) for a human.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import browser_lab
import pytest
from browser_lab import run_notebook_in_lab

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "runs" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module", autouse=True)
def _need_chromium():
    if not browser_lab.CHROMIUM.exists():
        msg = (f"{browser_lab.CHROMIUM} is absent; install it with `apt-get install chromium "
               f"fonts-dejavu-core` (.ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        msg = "the playwright package is missing: pip install -e '.[browser]' (no `playwright install` needed)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)


def _cell(kind: str, src: str) -> dict:
    c = {"cell_type": kind, "metadata": {}, "source": src.strip("\n").splitlines(keepends=True)}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def _write_nb(path: Path, cells: list) -> Path:
    for i, c in enumerate(cells):
        c["id"] = f"c{i}"
    path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}}, indent=1))
    return path


# The stand-in uses the pattern recommended for the real notebooks (plotly>=6 FigureWidget needs
# anywidget, which the kit does not install): an ipywidgets.Output redrawn by a callback with
# clear_output(wait=True) + fig.show() (Lab's plotly mimetype renderer, offline).
STANDIN_CELLS = [
    ("markdown", "# Stand-in for the browser harness"),
    ("code", """
import numpy as np
import plotly.graph_objects as go
import ipywidgets as widgets
from IPython.display import display
from hetskel.io import figures_dir, project_root
from hetskel.layouts import get_layout
"""),
    ("code", """
lay = get_layout("ntu25")
rng = np.random.default_rng(0)
clips = {name: rng.normal(size=(6, lay.num_joints, 3)) for name in ("walk", "wave", "sit")}
frame = widgets.IntSlider(value=0, min=0, max=5, description="frame")
clip = widgets.Dropdown(options=list(clips), value="walk", description="clip")
out = widgets.Output()

def draw(*_):
    xyz = clips[clip.value][frame.value]
    real = np.arange(lay.num_joints) % 5 != 0          # pretend every 5th joint is virtual
    fig = go.Figure([go.Scatter3d(x=xyz[m, 0], y=xyz[m, 1], z=xyz[m, 2], mode="markers", name=n,
                                  marker=dict(size=4, symbol=s))
                     for m, n, s in ((real, "real", "circle"), (~real, "virtual", "circle-open"))])
    fig.update_layout(title=f"{clip.value} frame {frame.value}", height=420, margin=dict(l=0, r=0, t=40, b=0))
    with out:
        out.clear_output(wait=True)
        fig.show()
        print(f"shown: {clip.value} frame {frame.value}")

frame.observe(draw, "value")
clip.observe(draw, "value")
draw()
display(widgets.HBox([clip, frame]), out)
"""),
    ("code", """
(figures_dir() / "standin_marker.txt").write_text("written by the browser stand-in")
print("project root", project_root())
"""),
]


def _assert_healthy(run, need_slider_or_dropdown: bool = True):
    assert not run.errors, "cells showed tracebacks:\n" + "\n---\n".join(run.errors)
    assert all(any(ch.isdigit() for ch in p) for p in run.prompts), f"cells left unexecuted: {run.prompts}"
    assert run.plots >= 1, "no plotly figure (.js-plotly-plot) rendered in any output"
    assert run.gl_canvases >= 1, "the plotly figure has no WebGL canvas (3D scene not drawn)"
    if need_slider_or_dropdown:
        assert run.sliders + run.dropdowns >= 1, "no ipywidgets slider or dropdown rendered"
        assert run.controls, "no control was moved"
    for c in run.controls:
        assert c.readout_changed, f"{c.kind} did not change its value ({c.before!r})"
        assert c.linked_changed, (f"moving the {c.kind} {c.before!r} -> {c.after!r} did not change the "
                                  f"figure or printed output (titles {c.titles_before} -> {c.titles_after})")


def _keep_screenshot(run, name: str) -> None:
    if run.screenshot and run.screenshot.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run.screenshot, SHOTS / name)


def test_harness_on_standin_notebook(tmp_path):
    """The harness itself: a generated notebook with a slider + dropdown redrawing a 3D figure."""
    nb = _write_nb(tmp_path / "standin.ipynb", [_cell(k, s) for k, s in STANDIN_CELLS])
    hroot = tmp_path / "hetskel_root"
    repo_figs = set((ROOT / "figures").iterdir()) if (ROOT / "figures").is_dir() else set()
    run = run_notebook_in_lab(nb, tmp_path / "lab", hetskel_root=hroot, screenshot=tmp_path / "standin.png")
    print("stand-in timings", run.timings, [(c.kind, c.before, c.after, c.seconds) for c in run.controls])
    _keep_screenshot(run, "standin.png")
    _assert_healthy(run)
    assert run.sliders == 1 and run.dropdowns == 1 and len(run.controls) == 2
    slider, dropdown = run.controls
    assert slider.after in ("1", "4") and dropdown.after in ("wave", "sit")
    assert any(dropdown.after in t for t in dropdown.titles_after)        # the 3D title followed the control
    # the kernel ran from the temp copy and wrote into the temp project root, not into the checkout
    assert (hroot / "figures" / "standin_marker.txt").is_file()
    assert not (ROOT / "figures" / "standin_marker.txt").exists()
    assert (set((ROOT / "figures").iterdir()) if (ROOT / "figures").is_dir() else set()) == repo_figs
    assert run.screenshot.stat().st_size > 10_000


def test_harness_reports_tracebacks(tmp_path):
    """Tracebacks must reach ``run.errors`` (so the real test can fail): one from a widget callback,
    shown in its Output widget, and one from a cell, where run-all stops."""
    nb = _write_nb(tmp_path / "broken.ipynb", [
        _cell("code", """
import ipywidgets as widgets
from IPython.display import display
pick = widgets.Dropdown(options=["ok", "bad"], value="ok", description="pick")
def f(pick):
    if pick == "bad":
        raise KeyError("no such sample: bad")
    print("picked", pick)
display(pick, widgets.interactive_output(f, {"pick": pick}))
"""),
        _cell("code", "import hetskel\n1 / 0"), _cell("code", "print('after')")])
    run = run_notebook_in_lab(nb, tmp_path / "lab", expect_plotly=False, run_timeout_s=60, control_timeout_s=20)
    assert run.prompts[0] == "[1]:" and run.prompts[1] == "[2]:" and "[ ]" in run.prompts[2]
    assert run.plots == 0 and run.dropdowns == 1 and run.sliders == 0
    assert [(c.kind, c.before, c.after) for c in run.controls] == [("dropdown", "ok", "bad")]
    assert len(run.errors) == 2, run.errors
    assert "KeyError" in run.errors[0] and "no such sample" in run.errors[0]
    assert "ZeroDivisionError" in run.errors[1]


NB_PROMPTS = ROOT / "notebooks" / "02_prompts.ipynb"


def test_prompts_notebook_in_lab(tmp_path):
    """notebooks/02_prompts.ipynb: 3D unified skeletons (real + virtual joints) and the widget selector."""
    if not NB_PROMPTS.exists():
        pytest.skip("notebooks/02_prompts.ipynb not written yet")
    run = run_notebook_in_lab(NB_PROMPTS, tmp_path / "lab", screenshot=tmp_path / "02_prompts.png",
                              run_timeout_s=150)
    print("02_prompts timings", run.timings, [(c.kind, c.before, c.after, c.seconds) for c in run.controls])
    _keep_screenshot(run, "02_prompts.png")
    _assert_healthy(run)
