"""NTU RGB+D ``.skeleton`` folder -> one PYSKL pickle, in parallel, with a report of what was skipped or bad.

    python -m hetskel.data convert-ntu nturgb+d_skeletons/ ntu60_3danno.pkl
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hetskel.data.errors import DataError
from hetskel.data.ntu import (
    MAX_ARRAY_BYTES,
    MAX_FILE_BYTES,
    MAX_PERSONS,
    NUM_JOINTS,
    EmptySkeletonError,
    check_array_budget,
    ntu_annotation,
    read_skeleton,
)
from hetskel.data.ntu_meta import (
    PROTOCOLS,
    class_names,
    detect_dataset,
    missing_samples,
    ntu_split,
    parse_name,
)


@dataclass
class ConvertReport:
    """What ``convert_ntu`` did. ``skipped``: (name, reason) for listed/empty samples (not errors);
    ``bad``: (file, error) for files that could not be read; nothing of theirs was written."""

    out_path: Path | None
    dataset: str
    fields: str
    converted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.bad and self.out_path is not None

    def format(self, max_lines: int = 20) -> str:
        out = [f"converted {self.converted} sample(s) ({self.dataset}, fields={self.fields})"
               + (f" -> {self.out_path}" if self.out_path else "; NOTHING WRITTEN (no sample converted)")]
        if self.splits:
            out.append("splits: " + "  ".join(f"{k}={v}" for k, v in self.splits.items()))
        for title, rows in (("skipped", self.skipped), ("bad", self.bad)):
            out.append(f"{title}: {len(rows)}")
            # a DataError message already starts with the file name: do not print it twice
            out += [f"  {why}" if why.startswith(name) else f"  {name}: {why}" for name, why in rows[:max_lines]]
            if len(rows) > max_lines:
                out.append(f"  ... and {len(rows) - max_lines} more")
        return "\n".join(out)


def check_output_file(out_path, inputs=(), overwrite: bool = False) -> Path:
    """``out_path`` as a Path if a file can be written there without losing anything: not empty, not a
    folder (``/`` included), no file on its way, not one of ``inputs``, and no existing file unless
    ``overwrite``. Otherwise ``DataError`` naming it. Cheap: run before any input is parsed."""
    import os

    if out_path is None or not str(out_path).strip():
        raise DataError("the output path is empty; give a file name such as ntu60_3d.pkl", field="OUT")
    out = Path(out_path)
    if out.is_dir():
        raise DataError("is a folder; the output must be a file path such as "
                        f"{out / 'ntu60_3d.pkl'}", file=out)
    parent = out.parent
    for anc in (parent, *parent.parents):  # the first part of the path that exists must be a folder
        if anc.exists():
            if not anc.is_dir():
                raise DataError(f"cannot be written: {anc} is a file, not a folder", file=out)
            break
    if out.exists() or out.is_symlink():
        real = os.path.realpath(out)
        if any(os.path.realpath(p) == real for p in inputs):
            raise DataError("is one of the inputs; the output must be a new file", file=out)
        if not out.is_file():
            raise DataError("exists and is not a regular file; not replaced", file=out)
        if not overwrite:
            raise DataError("already exists; pass --overwrite to replace it (or choose a new name)", file=out)
    return out


def _convert_one(path: str, max_persons: int, fields: str, max_bodies: int, max_file_bytes: int = MAX_FILE_BYTES,
                 max_array_bytes: int = MAX_ARRAY_BYTES):
    """Worker: ('ok', name, annotation) | ('skip', name, reason) | ('bad', path, error). Whatever
    goes wrong with one file (a DataError, a MemoryError, any other exception) is that file's
    'bad' entry: the other files are converted all the same."""
    try:
        sk = read_skeleton(path, max_bodies_per_frame=max_bodies, max_file_bytes=max_file_bytes,
                           max_array_bytes=max_array_bytes)
        # the sample this file becomes: (M, T, 25, C) float32 keypoints (+ (M, T, 25) scores)
        per_joint = 3 * 4 if fields == "xyz" else (2 + 1) * 4
        check_array_budget(max_persons * sk.num_frames * NUM_JOINTS * per_joint, max_array_bytes,
                           f"max_persons={max_persons} x {sk.num_frames} frames", path)
        return "ok", sk.name, ntu_annotation(sk, max_persons, fields)
    except EmptySkeletonError as e:
        return "skip", Path(path).name.split(".")[0], e.reason
    except DataError as e:
        return "bad", path, str(e)
    except MemoryError:
        return "bad", path, str(DataError("out of memory while reading this file", file=path))
    except Exception as e:  # noqa: BLE001 - one broken file must not lose the others
        return "bad", path, str(DataError(f"cannot convert ({type(e).__name__}: {e})", file=path))


def convert_ntu(src_dir, out_path, *, max_persons: int = 2, dataset: str = "auto", workers: int | None = None,
                progress: bool = True, fields: str = "xyz", missing_list=None,
                max_bodies_per_frame: int = 6, overwrite: bool = False, max_file_bytes: int = MAX_FILE_BYTES,
                max_array_bytes: int = MAX_ARRAY_BYTES) -> ConvertReport:
    """Convert every ``*.skeleton`` under ``src_dir`` (recursively) into one PYSKL pickle at ``out_path``.

    dataset: 'ntu60' | 'ntu120' | 'auto' (ntu120 when any setup > 17 or action > 60).
    missing_list: None -> the official list of the dataset (302 / 535 names); a path -> names read from
      that file; an iterable of names (``()`` disables skipping). Listed samples and files without any
      body are *skipped*; unreadable files are *bad*: reported with the error, never written.
    overwrite: replace an existing file at ``out_path`` (never one of the inputs); without it an
      existing file there is refused before any file is parsed (``check_output_file``).
    workers: processes (default min(cpu, 8)); 1 parses inline. Bounded: ``max_persons`` is
    1..``MAX_PERSONS``; a file that is not a regular file (a FIFO, a link to /dev/zero), larger than
    ``max_file_bytes``, or whose arrays (body IDs x frames, or the sample's max_persons x frames)
    would exceed ``max_array_bytes`` is *bad*, reported per file, and the others are converted. Output: layout 'ntu25', raw values
    (no normalisation), ``split`` for every protocol of the dataset, the authors' ``class_names``.
    """
    import concurrent.futures as cf
    import functools
    import os

    import tqdm

    from hetskel.data.pyskl import save_pyskl

    if dataset not in ("auto", *PROTOCOLS):
        raise ValueError(f"dataset must be 'auto', 'ntu60' or 'ntu120', got {dataset!r}")
    if fields not in ("xyz", "color2d"):
        raise ValueError(f"fields must be 'xyz' or 'color2d', got {fields!r}")
    if max_persons < 1 or max_bodies_per_frame < 1:
        raise ValueError(f"max_persons and max_bodies_per_frame must be >= 1, got {max_persons}, "
                         f"{max_bodies_per_frame}")
    if max_persons > MAX_PERSONS:
        raise ValueError(f"max_persons must be at most {MAX_PERSONS} (Kinect v2 tracks 6 bodies), got {max_persons}")
    if max_file_bytes < 1 or max_array_bytes < 1:
        raise ValueError(f"max_file_bytes and max_array_bytes must be >= 1, got {max_file_bytes}, {max_array_bytes}")
    src = Path(src_dir)
    if not src.is_dir():
        raise DataError("is not a directory (expected a folder of NTU .skeleton files)", file=src)
    files = sorted(src.rglob("*.skeleton"), key=lambda p: (p.name, str(p)))
    if not files:
        raise DataError("contains no *.skeleton files", file=src)
    check_output_file(out_path, inputs=[*files, *([missing_list] if isinstance(missing_list, (str, Path)) else [])],
                      overwrite=overwrite)  # before any file is parsed

    report = ConvertReport(out_path=None, dataset=dataset, fields=fields)
    by_name: dict[str, Path] = {}
    for p in files:  # names first: cheap checks in this process, before any parsing
        if not p.is_file():  # a FIFO would hang the reader, a link to /dev/zero never ends, a folder
            report.bad.append((str(p), str(DataError("not a regular file: not read", file=p))))
            continue
        try:
            meta = parse_name(p)
        except DataError as e:
            report.bad.append((str(p), str(e)))
            continue
        stem = p.name.split(".")[0]
        if stem in by_name:
            report.bad.append((str(p), f"duplicate sample name, also at {by_name[stem]}"))
        elif dataset == "ntu60" and (meta["setup"] > 17 or meta["action"] > 60):
            report.bad.append((str(p), f"not an NTU-60 sample (setup {meta['setup']}, action {meta['action']})"))
        else:
            by_name[stem] = p
    ds = detect_dataset(by_name) if dataset == "auto" else dataset
    report.dataset = ds
    if missing_list is None:
        missing = missing_samples(ds)
    elif isinstance(missing_list, (str, Path)):
        missing = missing_samples(path=missing_list)
    else:
        missing = set(missing_list)
    todo = []
    for stem, p in by_name.items():
        if stem in missing:
            report.skipped.append((stem, "on the missing-skeleton list"))
        else:
            todo.append(str(p))

    workers = min(os.cpu_count() or 1, 8) if workers is None else int(workers)
    fn = functools.partial(_convert_one, max_persons=max_persons, fields=fields, max_bodies=max_bodies_per_frame,
                           max_file_bytes=max_file_bytes, max_array_bytes=max_array_bytes)
    anns = []
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(todo))) if workers > 1 and len(todo) > 1 else None
    try:
        results = (pool.map(fn, todo, chunksize=max(1, len(todo) // (16 * workers))) if pool
                   else map(fn, todo))
        for status, name, payload in tqdm.tqdm(results, total=len(todo), desc="convert-ntu", unit="file",
                                               disable=not progress):
            if status == "ok":
                anns.append(payload)
            elif status == "skip":
                report.skipped.append((name, payload))
            else:
                report.bad.append((name, payload))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    report.converted = len(anns)
    if not anns:
        return report
    names = [a["frame_dir"] for a in anns]
    split: dict[str, list[str]] = {}
    for protocol in PROTOCOLS[ds]:
        split.update(ntu_split(names, protocol, ds))
    report.splits = {k: len(v) for k, v in split.items()}
    data = {"split": split, "annotations": anns, "layout": "ntu25", "dataset": ds,
            "class_names": class_names(ds), "fields": fields}
    report.out_path = save_pyskl(data, out_path)
    return report
