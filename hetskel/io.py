"""Run folders, configs, metrics and checkpoints: the small I/O every other module shares.

Rules this module enforces so that nothing a user made is lost:
- a run folder is never reused or replaced unless asked (``make_run_dir``, the one place that makes
  run folders: an empty ``run_dir`` makes a new timestamped one under ``runs/<name>/``; an existing
  one is refused, numbered ``-2``, ``-3`` or handed to the caller's own check, as asked);
- every file write is atomic (write ``*.tmp`` in the same folder, then ``os.replace``);
- checkpoints load with ``torch.load(..., weights_only=True)``;
- metrics are JSON lines, appended.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping


class RunDirExists(FileExistsError):
    pass


# Files the batch runner (hetskel.runs) writes into a run folder before the notebook starts; a folder
# holding only these is still fresh for the notebook that will use it as its run_dir.
RUNNER_FILES = frozenset({"notebook.ipynb", "params.json", "run.json", "run.log"})


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
    return not path.exists() or (path.is_dir() and all(p.name in RUNNER_FILES for p in path.iterdir()))


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
      nothing is deleted);
    - ``on_exists="number"`` (the batch runner): when ``run_dir`` exists at all, the first free
      ``<run_dir>-2``, ``-3`` ... is made instead; ``overwrite=True`` deletes ``run_dir`` and makes
      it afresh (``python -m hetskel.runs --overwrite``);
    - ``on_exists="check"`` (``hetskel.train``, ``hetskel.experiment``): the path is returned as
      it is, neither made nor checked, for the caller's own rule (the same training run resumes, a
      different one is refused: ``hetskel.train.state``); only an empty ``run_dir`` makes a folder.

    Returns the folder (made, except for ``"check"``).
    """
    if on_exists not in ON_EXISTS:
        raise ValueError(f"on_exists must be one of {list(ON_EXISTS)}, got {on_exists!r}")
    if not run_dir:
        return _numbered(project_root() / "runs" / name / time.strftime("%Y%m%d-%H%M%S"))
    path = resolve_run_dir(run_dir)
    if on_exists == "check":
        return path
    if on_exists == "number":
        if overwrite and path.exists():
            shutil.rmtree(path)
        return _numbered(path)
    if not overwrite and not _is_fresh(path):
        raise RunDirExists(f"run folder {path} already exists and is not empty; choose a new run_dir "
                           f"or pass overwrite=True to replace its files")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _numbered(base: Path) -> Path:
    """Make and return the first of ``base``, ``base-2``, ``base-3``, ... that does not exist yet
    (``mkdir`` without ``exist_ok``: two processes never get the same folder)."""
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
