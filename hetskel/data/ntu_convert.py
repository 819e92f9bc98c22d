"""NTU RGB+D ``.skeleton`` folder -> one PYSKL pickle, in parallel, with a report of what was skipped or bad.

    python -m hetskel.data convert-ntu nturgb+d_skeletons/ ntu60_3danno.pkl
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hetskel.data.errors import DataError
from hetskel.data.ntu import EmptySkeletonError, ntu_annotation, read_skeleton
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


def _convert_one(path: str, max_persons: int, fields: str, max_bodies: int):
    """Worker: ('ok', name, annotation) | ('skip', name, reason) | ('bad', path, error)."""
    try:
        sk = read_skeleton(path, max_bodies_per_frame=max_bodies)
    except EmptySkeletonError as e:
        return "skip", Path(path).name.split(".")[0], e.reason
    except DataError as e:
        return "bad", path, str(e)
    return "ok", sk.name, ntu_annotation(sk, max_persons, fields)


def convert_ntu(src_dir, out_path, *, max_persons: int = 2, dataset: str = "auto", workers: int | None = None,
                progress: bool = True, fields: str = "xyz", missing_list=None,
                max_bodies_per_frame: int = 6) -> ConvertReport:
    """Convert every ``*.skeleton`` under ``src_dir`` (recursively) into one PYSKL pickle at ``out_path``.

    dataset: 'ntu60' | 'ntu120' | 'auto' (ntu120 when any setup > 17 or action > 60).
    missing_list: None -> the official list of the dataset (302 / 535 names); a path -> names read from
      that file; an iterable of names (``()`` disables skipping). Listed samples and files without any
      body are *skipped*; unreadable files are *bad*: reported with the error, never written.
    workers: processes (default min(cpu, 8)); 1 parses inline. Output: layout 'ntu25', raw values
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
    src = Path(src_dir)
    if not src.is_dir():
        raise DataError("is not a directory (expected a folder of NTU .skeleton files)", file=src)
    files = sorted(src.rglob("*.skeleton"), key=lambda p: (p.name, str(p)))
    if not files:
        raise DataError("contains no *.skeleton files", file=src)

    report = ConvertReport(out_path=None, dataset=dataset, fields=fields)
    by_name: dict[str, Path] = {}
    for p in files:  # names first: cheap checks in this process, before any parsing
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
    fn = functools.partial(_convert_one, max_persons=max_persons, fields=fields, max_bodies=max_bodies_per_frame)
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
