"""Drive a notebook in a real JupyterLab through headless Chromium (Playwright), for tests/test_browser.py.

What a user sees in Lab is not what nbval/papermill check: widgets and plotly outputs are rendered by
Lab's front-end extensions, and a widget callback only runs when a browser moves the control. This
module starts a throw-away JupyterLab server, opens one notebook in Chromium, runs all cells from the
Run menu, moves the first slider and the first dropdown it finds and reports what the page showed.

Nothing outside the given work folder is written: the server and the browser get their own HOME,
XDG, Jupyter config/runtime/settings/workspace folders, and ``HETSKEL_ROOT`` points at a temp
project root so ``hetskel.io.figures_dir()`` inside the kernel writes there (the notebook runs
from a temp copy, so the upward search for the checkout finds nothing and falls back to it).

Recipe (see /work/shared/notes/jupyterlab-in-chromium.md): Debian's /usr/bin/chromium, never
``playwright install``; lab settings ``windowingMode: none`` (else cells below the fold are not in
the DOM) and no news toast; ``?reset`` in the URL; ``POST /api/shutdown`` to end server and kernels.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:          # test_browser.py skips (or fails under CI) before anything here runs
    PlaywrightTimeout, sync_playwright = TimeoutError, None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-unsafe-swiftshader"]          # software WebGL, which plotly's 3D scenes need

# Written as user settings into a temp settings folder (not the venv's overrides.json).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false",
                                                    "doNotDisturbMode": True},
}

# CSS selectors of the JupyterLab 4 / ipywidgets 8 / plotly DOM this module relies on.
SEL_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
SEL_IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
SEL_RUN_ALL = "li.lm-Menu-item[data-command='runmenu:run-all']"
SEL_PLOT = ".jp-OutputArea-output .js-plotly-plot"
SEL_GL = ".jp-OutputArea-output .js-plotly-plot .gl-container canvas"
SEL_SLIDER = ".jp-OutputArea-output .widget-slider"
SEL_DROPDOWN = ".jp-OutputArea-output .widget-dropdown"

# JS run in the page. Error outputs: Lab renders an `error` output (a traceback) with the stderr
# mime type, so a stderr output holding "Traceback" or "Error:" lines is a failure, while plain
# warnings on stderr are not.
_JS_STATE = """(panel) => {
  const cells = [...document.querySelectorAll(panel + ' .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
  const errors = [...document.querySelectorAll(panel +
      ' .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText).filter(t => /Traceback|^\\w*(Error|Exception)\\b.*:/m.test(t));
  return {prompts, errors, idle: !!document.querySelector(panel + " .jp-Notebook-ExecutionIndicator[data-status='idle']"),
          plots: document.querySelectorAll(panel + ' .jp-OutputArea-output .js-plotly-plot').length,
          gl: document.querySelectorAll(panel + ' .jp-OutputArea-output .js-plotly-plot .gl-container canvas').length};
}"""

# What a control is linked to: every plotly figure (title + trace coordinates, read from the graph
# div that Plotly.newPlot fills) and the text printed into widget Output areas. Widget readouts are
# deliberately left out, so a change here means the kernel callback really redrew something.
_JS_LINKED = """(panel) => {
  const plots = [...document.querySelectorAll(panel + ' .jp-OutputArea-output .js-plotly-plot')].map(gd => {
    const t = gd.layout && gd.layout.title;
    return JSON.stringify([typeof t === 'string' ? t : (t && t.text) || '',
                           (gd.data || []).map(d => [d.name || '', d.x || [], d.y || [], d.z || []])]);
  });
  const texts = [...document.querySelectorAll(panel + ' .widget-output .jp-OutputArea-output')]
    .filter(o => !o.querySelector('.js-plotly-plot')).map(o => o.innerText);
  const titles = [...document.querySelectorAll(panel + ' .js-plotly-plot .gtitle')].map(e => e.textContent);
  return {sig: JSON.stringify([plots, texts]), n_plots: plots.length, titles, texts};
}"""


# The toolbar's execution indicator says 'idle' before a kernel is attached too (then 'initializing',
# then 'idle' again), and a Run All clicked in that window is silently dropped. The status bar's
# kernel item reads "<kernel> | Idle" only once the session's kernel is really connected.
_JS_KERNEL_READY = """([idle, dialog]) => !!document.querySelector(dialog) || (!!document.querySelector(idle) &&
  [...document.querySelectorAll('.jp-StatusBar-Item')].some(e => /\\|\\s*Idle\\s*$/.test(e.innerText)))"""


class LabError(RuntimeError):
    """The server or the page did not get where it had to; the message says where and shows logs."""


@dataclass
class LabServer:
    url: str
    token: str
    root_dir: Path
    proc: subprocess.Popen
    log: Path
    env: dict

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class ControlCheck:
    """One control moved by the harness: its readout and the linked outputs before/after."""
    kind: str                      # "slider" | "dropdown"
    before: str
    after: str
    linked_changed: bool
    titles_before: list = field(default_factory=list)
    titles_after: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def readout_changed(self) -> bool:
        return self.before != self.after


@dataclass
class LabRun:
    """What the page showed after run-all and the control changes (counts are DOM elements)."""
    notebook: str
    code_cells: int
    prompts: list
    plots: int
    gl_canvases: int
    sliders: int
    dropdowns: int
    errors: list
    controls: list
    screenshot: Path | None
    timings: dict
    console_errors: list


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(work: Path, hetskel_root: Path) -> dict:
    """Environment for server, kernels and browser: every per-user folder inside ``work``."""
    env = dict(os.environ)
    home = work / "home"
    for sub in ("home", "xdg_config", "xdg_cache", "xdg_data", "jupyter_config", "jupyter_runtime"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(work / "xdg_config"), XDG_CACHE_HOME=str(work / "xdg_cache"),
               XDG_DATA_HOME=str(work / "xdg_data"), JUPYTER_CONFIG_DIR=str(work / "jupyter_config"),
               JUPYTER_RUNTIME_DIR=str(work / "jupyter_runtime"), IPYTHONDIR=str(home / ".ipython"),
               MPLCONFIGDIR=str(work / "xdg_config" / "matplotlib"), HETSKEL_ROOT=str(hetskel_root),
               JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    # The kernel should plot like a user's Lab (inline backend), not like CI's MPLBACKEND=Agg.
    env.pop("MPLBACKEND", None)
    # Keep real data reachable: its default place is found from the checkout, which the temp copy lacks.
    if "HETSKEL_SHARED_DATA" not in env:
        shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
        if shared.is_dir():
            env["HETSKEL_SHARED_DATA"] = str(shared)
    return env


def write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _api(url: str, token: str, method: str = "GET", timeout: float = 5.0) -> bytes:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"},
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


@contextmanager
def jupyter_lab(root_dir: Path, work: Path, hetskel_root: Path, start_timeout: float = 90.0) -> Iterator[LabServer]:
    """Run ``python -m jupyter lab`` (this interpreter's environment) on 127.0.0.1 with a free port and a
    random token; always stopped on exit: POST /api/shutdown (ends the kernels too), then SIGTERM/SIGKILL."""
    port, token = free_port(), os.urandom(16).hex()
    env = isolated_env(work, hetskel_root)
    settings = work / "lab_settings"
    write_lab_settings(settings)
    log = work / "jupyter_lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root_dir}",
           f"--IdentityProvider.token={token}", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={work / 'lab_workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ServerApp.shutdown_no_activity_timeout=900",       # a safety net if this process dies
           "--MappingKernelManager.cull_idle_timeout=900"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, proc, log, env)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise LabError(f"jupyter lab exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                _api(f"{server.url}/api/status", token, timeout=2)
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise LabError(f"jupyter lab not answering after {start_timeout:.0f} s:\n{server.log_tail()}")
                time.sleep(0.25)
        yield server
    finally:
        stop_lab(server)


def stop_lab(server: LabServer, timeout: float = 20.0) -> None:
    proc = server.proc
    if proc.poll() is None:
        try:
            _api(f"{server.url}/api/shutdown", server.token, method="POST")
        except (urllib.error.URLError, OSError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):        # our own session group only
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(5)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue


@contextmanager
def chromium(work: Path, env: dict) -> Iterator[object]:
    """A headless Chromium browser from /usr/bin/chromium with a fresh profile."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                     env={k: env[k] for k in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                                                              "PATH") if k in env},
                                     timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def _wait(page, js: str, arg, timeout_s: float, what: str, server: LabServer | None = None) -> None:
    try:
        page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=250)
    except PlaywrightTimeout as e:         # add what the page and the server said
        state = page.evaluate(_JS_STATE, SEL_PANEL)
        tail = server.log_tail(1500) if server else ""
        raise LabError(f"timed out after {timeout_s:.0f} s waiting for {what}; page state {state}\n"
                       f"server log tail:\n{tail}") from e


def _move_slider(slider) -> tuple[str, Callable[[], str]]:
    """Focus the handle and press an arrow key (left when already at the maximum). The value is read
    from the readout, or from the handle's aria-valuenow when the slider has ``readout=False``."""
    readout, handle = slider.locator(".widget-readout").first, slider.locator(".noUi-handle").first

    def read() -> str:
        text = readout.inner_text(timeout=5000).strip() if readout.count() else ""
        return text or (handle.get_attribute("aria-valuenow", timeout=5000) or "")

    before = read()
    handle.focus(timeout=5000)
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    at_max = now is not None and top is not None and float(now) >= float(top)
    handle.press("ArrowLeft" if at_max else "ArrowRight")
    return before, read


def _move_dropdown(dropdown) -> tuple[str, Callable[[], str]]:
    """Select the first option other than the current one (ipywidgets uses the labels as values)."""
    select = dropdown.locator("select").first

    def read() -> str:
        return select.input_value(timeout=5000)

    before = read()
    values = select.evaluate("s => [...s.options].map(o => o.value)")
    other = next((v for v in values if v != before), None)
    if other is None:
        raise LabError(f"dropdown has the single option {values}; nothing to change")
    select.select_option(other, timeout=5000)
    return before, read


def _check_control(page, kind: str, control, timeout_s: float, server: LabServer) -> ControlCheck:
    """Move one control, then wait until its readout changed, the kernel went idle and the linked
    outputs (plotly figures + Output-widget text) differ from before."""
    control.scroll_into_view_if_needed(timeout=5000)
    linked0 = page.evaluate(_JS_LINKED, SEL_PANEL)
    t0 = time.monotonic()
    before, read = _move_slider(control) if kind == "slider" else _move_dropdown(control)
    deadline = time.monotonic() + timeout_s
    after = read()
    while after == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        after = read()
    # The callback's output has arrived when the linked signature changed and every figure that was
    # there is back (clear_output(wait=True) swaps them in one step; a bare clear_output would show a
    # transient empty state that we must not take for the answer).
    changed = True
    try:
        page.wait_for_function(
            f"([panel, sig, n]) => {{ const s = ({_JS_LINKED})(panel); return (s.sig !== sig && s.n_plots >= n)"
            f" || ({_JS_STATE})(panel).errors.length > 0; }}",     # a traceback ends the wait early
            arg=[SEL_PANEL, linked0["sig"], linked0["n_plots"]], timeout=timeout_s * 1000, polling=200)
    except PlaywrightTimeout:
        changed = False
    _wait(page, "(sel) => !!document.querySelector(sel)", f"{SEL_PANEL} {SEL_IDLE}", timeout_s,
          f"kernel idle after moving the {kind}", server)
    linked1 = page.evaluate(_JS_LINKED, SEL_PANEL)
    return ControlCheck(kind, before, after, changed and linked1["sig"] != linked0["sig"],
                        linked0["titles"], linked1["titles"], round(time.monotonic() - t0, 2))


_JS_STARTED = ("(panel) => [...document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputArea-prompt')]"
               ".some(e => /[*\\d]/.test(e.textContent))")


def _run_all(page, server: LabServer, attempts: int = 3) -> int:
    """Run > Run All Cells. Right after the kernel first reports idle a click can be dropped (the
    notebook's session is still being wired up), so check that cells got queued and retry if not."""
    for k in range(1, attempts + 1):
        page.keyboard.press("Escape")                       # close any menu left open by a failed try
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(SEL_RUN_ALL).click()
        try:
            page.wait_for_function(_JS_STARTED, arg=SEL_PANEL, timeout=10_000, polling=200)
            return k
        except PlaywrightTimeout:
            pass                   # nothing queued: the click was dropped, try again
    raise LabError(f"Run > Run All Cells queued no cell after {attempts} tries:\n{server.log_tail(1500)}")


def run_notebook_in_lab(nb_path: Path, work: Path, *, hetskel_root: Path | None = None,
                        expect_plotly: bool = True, move_controls: bool = True,
                        run_timeout_s: float = 120.0, control_timeout_s: float = 30.0,
                        screenshot: Path | None = None) -> LabRun:
    """Copy ``nb_path`` into ``work/root``, open it in JupyterLab in headless Chromium, run all cells,
    move the first slider and the first dropdown, and return what the page showed.

    Raises ``LabError`` when the server/page cannot get there (no kernel, dialog, timeout); content
    checks (errors, missing plots, unresponsive controls) are left to the caller's asserts.
    """
    work = Path(work)
    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    hetskel_root = Path(hetskel_root or work / "hetskel_root")
    hetskel_root.mkdir(parents=True, exist_ok=True)
    nb = root / Path(nb_path).name
    shutil.copy2(nb_path, nb)
    timings: dict = {}
    t_start = time.monotonic()
    with jupyter_lab(root, work, hetskel_root) as server, chromium(work, server.env) as browser:
        timings["server_start_s"] = round(time.monotonic() - t_start, 2)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        console_errors: list = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            t0 = time.monotonic()
            page.goto(f"{server.url}/lab/tree/{nb.name}?reset&token={server.token}", wait_until="domcontentloaded")
            _wait(page, "(sel) => !!document.querySelector(sel)", f"{SEL_PANEL} .jp-Cell", 60, "the notebook to open", server)
            dialog = page.locator(".jp-Dialog")
            _wait(page, _JS_KERNEL_READY, [f"{SEL_PANEL} {SEL_IDLE}", ".jp-Dialog"], 90, "the kernel to start", server)
            if dialog.count():
                raise LabError(f"JupyterLab showed a dialog instead of a running kernel: {dialog.first.inner_text()!r}")
            timings["open_to_idle_s"] = round(time.monotonic() - t0, 2)

            t0 = time.monotonic()
            timings["run_all_clicks"] = _run_all(page, server)
            # Run-all queues every cell ([*]) at once; done when none is pending and the kernel is idle.
            _wait(page, "([panel, idle]) => { const p = [...document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputArea-prompt')]"
                        ".map(e => e.textContent); return !p.some(t => t.includes('*')) && p.some(t => /\\d/.test(t))"
                        " && !!document.querySelector(panel + ' ' + idle); }",
                  [SEL_PANEL, SEL_IDLE], run_timeout_s, "run-all to finish", server)
            timings["run_all_s"] = round(time.monotonic() - t0, 2)
            state = page.evaluate(_JS_STATE, SEL_PANEL)
            if expect_plotly and not state["errors"]:
                t0 = time.monotonic()
                _wait(page, "([p, g]) => !!document.querySelector(p) && !!document.querySelector(g)",
                      [f"{SEL_PANEL} {SEL_PLOT}", f"{SEL_PANEL} {SEL_GL}"], 30, "a plotly figure with a WebGL canvas", server)
                timings["plot_render_s"] = round(time.monotonic() - t0, 2)

            controls = []
            sliders = page.locator(f"{SEL_PANEL} {SEL_SLIDER}")
            dropdowns = page.locator(f"{SEL_PANEL} {SEL_DROPDOWN}")
            n_sliders, n_dropdowns = sliders.count(), dropdowns.count()
            if move_controls:              # also after a failed cell: a control above it may still work
                if n_sliders:
                    controls.append(_check_control(page, "slider", sliders.first, control_timeout_s, server))
                if n_dropdowns:
                    controls.append(_check_control(page, "dropdown", dropdowns.first, control_timeout_s, server))
            state = page.evaluate(_JS_STATE, SEL_PANEL)        # callbacks may have printed tracebacks

            shot = None
            if screenshot is not None:
                # Show the first figure's whole output (controls above it included) from its top.
                page.evaluate("""(sel) => { const p = document.querySelector(sel);
                    const o = p && (p.closest('.jp-Cell-outputWrapper') || p); if (o) o.scrollIntoView({block: 'start'}); }""",
                              f"{SEL_PANEL} {SEL_PLOT}")
                page.wait_for_timeout(300)
                shot = Path(screenshot)
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), timeout=30_000)
        except LabError as e:
            if screenshot is None:
                raise
            fail_shot = Path(screenshot).with_name(Path(screenshot).stem + "_failed.png")
            fail_shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(fail_shot), timeout=30_000)
            raise LabError(f"{e}\nscreenshot of the page: {fail_shot}") from e
        page.close()
    timings["total_s"] = round(time.monotonic() - t_start, 2)
    return LabRun(nb.name, len(state["prompts"]), state["prompts"], state["plots"], state["gl"], n_sliders,
                  n_dropdowns, state["errors"], controls, shot, timings, console_errors)
