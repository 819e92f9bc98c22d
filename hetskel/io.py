"""Run folders, configs, metrics and checkpoints: the small I/O every other module shares.

Rules this module enforces so that nothing a user made is lost:
- a run folder is never reused or replaced unless asked (``make_run_dir``, the one place that makes
  run folders: an empty ``run_dir`` makes a new timestamped one under ``runs/<name>/``; an existing
  one is refused, numbered ``-2``, ``-3`` or handed to the caller's own check, as asked);
- nothing the kit did not create is ever deleted or replaced: every folder ``make_run_dir`` makes
  gets a marker file ``KIT_MARKER`` (``.hetskel-run``), and ``overwrite`` reaches only folders that
  carry it (``check_replaceable``); names of runs and batches are single path components
  (``check_name``);
- every file write is atomic (write ``*.tmp<pid>`` in the same folder, then ``os.replace``; the
  temporary is removed when the write fails, e.g. on a full disk);
- checkpoints load with ``torch.load(..., weights_only=True)``;
- metrics are JSON lines, appended.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping


class RunDirExists(FileExistsError):
    pass


# Files the batch runner (hetskel.runs) writes into a run folder before the notebook starts; a folder
# holding only these is still fresh for the notebook that will use it as its run_dir.
RUNNER_FILES = frozenset({"notebook.ipynb", "params.json", "run.json", "run.log"})

# The file every folder ``make_run_dir`` makes holds: "hetskel made this folder". ``overwrite`` may
# replace or clear only a folder that has it (a user's own folder never has it).
KIT_MARKER = ".hetskel-run"


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a single path component (a folder name: not empty, no ``/`` or ``\\``, not
    ``.`` or ``..``, not absolute, no NUL, at most 200 characters), else ``ValueError`` naming ``what``."""
    s = str(name)
    if (not s or s in (".", "..") or "/" in s or "\\" in s or "\0" in s or len(s) > 200
            or os.path.isabs(s) or s != s.strip()):
        raise ValueError(f"{what} {escape(s, 80)!r} must be a single folder name (no '/', '\\', '..', leading or "
                         f"trailing spaces, not absolute)")
    return s


def is_kit_dir(path: "str | Path") -> bool:
    """A real folder (not a symlink) holding ``KIT_MARKER``: made by ``make_run_dir``."""
    p = Path(path)
    return p.is_dir() and not p.is_symlink() and (p / KIT_MARKER).is_file()


def _mark(path: Path) -> None:
    marker = path / KIT_MARKER
    if not marker.exists():
        marker.write_text("made by hetskel (hetskel.io.make_run_dir); overwrite may replace this folder\n")


def check_replaceable(path: "str | Path") -> None:
    """Raise ``RunDirExists`` unless ``path`` is absent, a fresh folder (nothing in it but the batch
    runner's files) or a folder hetskel made (``is_kit_dir``): what ``overwrite`` may replace or clear."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        return
    if p.is_symlink() or not p.is_dir():
        raise RunDirExists(f"{p} exists and is not a folder hetskel made ({'a symlink' if p.is_symlink() else 'a file'}); "
                           f"not replaced: choose another name")
    if not (is_kit_dir(p) or _is_fresh(p)):
        raise RunDirExists(f"{p} was not made by hetskel (no {KIT_MARKER} marker in it); overwrite replaces only "
                           f"folders hetskel made: move it away or choose another name")


def project_root(start: "str | Path | None" = None) -> Path:
    """The hetskel checkout (folder with pyproject.toml and hetskel/), searched upwards from ``start``
    (default: the working directory, which is ``notebooks/`` under nbval and JupyterLab). Falls back
    to the working directory when hetskel is installed elsewhere."""
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").is_file() and (p / "hetskel").is_dir():
            return p
    env = os.environ.get("HETSKEL_ROOT")
    return Path(env) if env else here


def figures_dir() -> Path:
    d = project_root() / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout, or ``$HETSKEL_SHARED_DATA``; None when absent."""
    env = os.environ.get("HETSKEL_SHARED_DATA")
    cand = Path(env) if env else project_root().parent / "shared" / "data"
    return cand if cand.is_dir() else None


ON_EXISTS = ("refuse", "number", "check")


def resolve_run_dir(run_dir: "str | Path") -> Path:
    """``run_dir`` as an absolute path: a relative one is taken from the project root."""
    path = Path(run_dir)
    return path if path.is_absolute() else project_root() / path


def _is_fresh(path: Path) -> bool:
    """No folder there, or one holding nothing but the batch runner's own files (``RUNNER_FILES``)."""
    return not path.exists() or (path.is_dir() and all(p.name in RUNNER_FILES or p.name == KIT_MARKER
                                                       for p in path.iterdir()))


def make_run_dir(run_dir: "str | Path | None" = None, name: str = "run", overwrite: bool = False, *,
                 on_exists: str = "refuse") -> Path:
    """The run folder for ``run_dir``: the one function that makes run folders (notebooks, training,
    pretraining, the batch runner). Relative paths are taken from the project root.

    The rule: a folder that holds something is never reused or replaced unless asked.

    - ``run_dir`` empty/None: a new ``runs/<name>/<YYYYmmdd-HHMMSS>``, ``-2``, ``-3`` ... when that
      name is taken (always a new folder, whatever ``on_exists`` and ``overwrite`` say);
    - ``on_exists="refuse"`` (default): a folder that exists and holds more than the batch runner's
      files (``RUNNER_FILES``: a notebook the runner started uses its folder) raises
      ``RunDirExists``; ``overwrite=True`` reuses it (files are replaced as they are written,
      nothing is deleted) when hetskel made it (``KIT_MARKER``), and refuses it otherwise;
    - ``on_exists="number"`` (the batch runner): when ``run_dir`` exists at all, the first free
      ``<run_dir>-2``, ``-3`` ... is made instead; ``overwrite=True`` deletes ``run_dir`` and makes
      it afresh (``python -m hetskel.runs --overwrite``), only when hetskel made it (a user's own
      folder there is refused, never deleted);

    ``name`` must be a single folder name (``check_name``). Every folder made or taken gets the
    marker ``KIT_MARKER``.
    - ``on_exists="check"`` (``hetskel.train``, ``hetskel.experiment``): the path is returned as
      it is, neither made nor checked, for the caller's own rule (the same training run resumes, a
      different one is refused: ``hetskel.train.state``); only an empty ``run_dir`` makes a folder.

    Returns the folder (made, except for ``"check"``).
    """
    if on_exists not in ON_EXISTS:
        raise ValueError(f"on_exists must be one of {list(ON_EXISTS)}, got {on_exists!r}")
    check_name(name, "run name")
    if not run_dir:
        return _numbered(project_root() / "runs" / name / time.strftime("%Y%m%d-%H%M%S"))
    path = resolve_run_dir(run_dir)
    if on_exists == "check":
        return path
    if on_exists == "number":
        if path.exists() and not path.is_dir():
            raise RunDirExists(f"{path} exists and is a file, not a folder; choose another folder")
        if overwrite and (path.exists() or path.is_symlink()):
            check_replaceable(path)  # a folder hetskel did not make is never deleted
            shutil.rmtree(path)
        return _numbered(path)
    if path.exists() and not path.is_dir():
        raise RunDirExists(f"run folder {path} exists and is a file, not a folder; choose a new run_dir")
    if not overwrite and not _is_fresh(path):
        raise RunDirExists(f"run folder {path} already exists and is not empty; choose a new run_dir "
                           f"or pass overwrite=True to replace its files")
    if overwrite:
        check_replaceable(path)
    path.mkdir(parents=True, exist_ok=True)
    _mark(path)
    return path


def _numbered(base: Path) -> Path:
    """Make and return the first of ``base``, ``base-2``, ``base-3``, ... that does not exist yet
    (``mkdir`` without ``exist_ok``: two processes never get the same folder)."""
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            _mark(path)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # disk full, permission, interrupt: no torn temporary is left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy / torch scalars
        x = x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # JSON has no NaN/inf; keep them visible as strings
    return x


def save_json(path: "str | Path", obj: Any) -> Path:
    path = Path(path)
    _atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n").encode())
    return path


def load_json(path: "str | Path") -> Any:
    return json.loads(Path(path).read_text())


def append_jsonl(path: "str | Path", record: Mapping[str, Any]) -> None:
    """Append one JSON line (a single write call, so a crash leaves whole lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(_jsonable(record)) + "\n")


def read_jsonl(path: "str | Path") -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line after a kill: ignore it
                continue
    return out


def save_checkpoint(path: "str | Path", state: Mapping[str, Any]) -> Path:
    """``torch.save`` to ``path`` atomically (tmp file + ``os.replace``)."""
    import io as _io

    import torch

    buf = _io.BytesIO()
    torch.save(dict(state), buf)
    _atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_checkpoint(path: "str | Path", map_location: Any = "cpu") -> dict:
    """Load a checkpoint as data only (``weights_only=True``): a checkpoint cannot run code."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError with a long story; keep it short and named
        raise ValueError(f"checkpoint {path} could not be loaded as weights-only data: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def save_figure(fig: Any, name: str, directory: "str | Path | None" = None) -> Path:
    """Save a matplotlib figure as ``<name>.png`` or a plotly figure as ``<name>.html`` in ``figures/``."""
    d = Path(directory) if directory else figures_dir()
    d.mkdir(parents=True, exist_ok=True)
    if hasattr(fig, "savefig"):
        path = d / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
    elif hasattr(fig, "write_html"):
        path = d / f"{name}.html"
        fig.write_html(str(path), include_plotlyjs="directory", full_html=True)  # one shared plotly.min.js, works offline
    else:
        raise TypeError(f"save_figure: expected a matplotlib or plotly figure, got {type(fig).__name__}")
    return path


# --------------------------------------------------------------------------- CLI errors
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7f, *range(0x80, 0xa0))}


def escape(text: str, limit: int = 300, keep: str = "head") -> str:
    """``text`` safe for one terminal line: control characters (ANSI escapes, newlines) shown as
    ``\\xNN``, shortened to ``limit`` characters with ``...``; ``keep="tail"`` keeps the end (a
    path's file name says more than its first folders)."""
    s = str(text).translate(_CONTROL)
    if len(s) <= limit:
        return s
    return s[: max(0, limit - 3)] + "..." if keep == "head" else "..." + s[len(s) - max(0, limit - 3):]


def error_message(e: BaseException, limit: int = 300) -> str:
    """One short, escaped line for a user error: ``OSError`` as ``<file>: <what>`` (``no space
    left on device``, ``permission denied``, ...), anything else as its own text."""
    if isinstance(e, BrokenPipeError):
        text = "output closed before everything was written (broken pipe)"
    elif isinstance(e, OSError) and e.strerror and not isinstance(e, RunDirExists):
        what = e.strerror[0].lower() + e.strerror[1:]
        if e.errno == errno.ENOSPC:
            what = "no space left on device (nothing was replaced; free some space and run again)"
        where = ": ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        text = f"{where}: {what}" if where else what
    else:
        text = str(e) or type(e).__name__
    return escape(text.replace("\n", " "), limit)


def quiet_broken_pipe() -> None:
    """After a ``BrokenPipeError`` on stdout: point stdout at /dev/null so that the interpreter's
    final flush does not raise again (Python's documented recipe)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
