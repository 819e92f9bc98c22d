"""NTU RGB+D 60/120 at the dataset level: sample names, official splits, class names, missing-sample
lists, and ``convert_ntu`` (a folder of raw ``.skeleton`` files -> one PYSKL pickle).

The per-file reader lives in ``hetskel.data.ntu``, which re-exports everything here; import from there.

    >>> parse_name("S001C002P003R002A013")["action"]        # 13 (label 12)
    >>> ntu_split(names, "xsub", "ntu60")                   # {'xsub_train': [...], 'xsub_val': [...]}
    >>> convert_ntu("nturgb+d_skeletons/", "ntu60_3d.pkl")  # -> ConvertReport
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hetskel.data.errors import DataError

# ---------------------------------------------------------------------------------- names, splits
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
XSUB_TRAIN_60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XSUB_TRAIN_120 = XSUB_TRAIN_60 + (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81,
                                  82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
XVIEW_TRAIN_CAMERAS = (2, 3)
PROTOCOLS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}


def parse_name(name) -> dict:
    """``"S001C002P003R002A013"`` (or a path / ``.skeleton`` file) -> dict(setup, camera, performer,
    replication, action), all 1-based ints as in the name; the 0-based label is ``action - 1``."""
    stem = Path(str(name)).name.split(".")[0]
    m = _NAME.fullmatch(stem)
    if not m:
        raise DataError(f"not an NTU sample name (expected SsssCcccPpppRrrrAaaa), got {stem!r}",
                        file=name, field="name")
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


def detect_dataset(names: Iterable[str]) -> str:
    """'ntu120' if any name has setup > 17 or action > 60, else 'ntu60'."""
    for n in names:
        d = parse_name(n)
        if d["setup"] > 17 or d["action"] > 60:
            return "ntu120"
    return "ntu60"


def ntu_split(names: Iterable[str], protocol: str, dataset: str = "ntu60") -> dict[str, list[str]]:
    """Official split of ``names`` (order kept): {'<protocol>_train': [...], '<protocol>_val': [...]}.
    xsub: training performers (20 for NTU-60, 53 for NTU-120); xview: cameras 2, 3 train (NTU-60);
    xset: even setup ids train (NTU-120)."""
    if dataset not in PROTOCOLS:
        raise ValueError(f"dataset must be one of {sorted(PROTOCOLS)}, got {dataset!r}")
    if protocol not in PROTOCOLS[dataset]:
        raise ValueError(f"{dataset} has protocols {PROTOCOLS[dataset]}, not {protocol!r}")
    subjects = set(XSUB_TRAIN_60 if dataset == "ntu60" else XSUB_TRAIN_120)
    out: dict[str, list[str]] = {f"{protocol}_train": [], f"{protocol}_val": []}
    for n in names:
        d = parse_name(n)
        train = (d["performer"] in subjects if protocol == "xsub" else
                 d["camera"] in XVIEW_TRAIN_CAMERAS if protocol == "xview" else d["setup"] % 2 == 0)
        out[f"{protocol}_{'train' if train else 'val'}"].append(n)
    return out


def missing_samples(dataset: str = "ntu120", path=None) -> set[str]:
    """Names of the official samples with missing/empty skeletons: 302 for 'ntu60', 535 for 'ntu120'
    (a superset). ``path``: read a user list instead; every SsssCcccPpppRrrrAaaa token in it counts,
    so the official file with its two prose lines works as is."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise DataError(f"cannot read missing-sample list: {e.strerror or e}", file=path) from None
    else:
        if dataset not in PROTOCOLS:
            raise ValueError(f"dataset must be one of {sorted(PROTOCOLS)}, got {dataset!r}")
        fname = "ntu_missing_60.txt" if dataset == "ntu60" else "ntu_missing_120.txt"
        text = resources.files("hetskel.data").joinpath(fname).read_text(encoding="utf-8")
    return {m.group(0) for m in _NAME.finditer(text)}


# The authors' action names (github.com/shahroudy/NTURGB-D README), A001..A120; label = index.
NTU120_CLASSES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down",
    "make ok sign", "make victory sign", "staple book", "counting money", "cutting nails",
    "cutting paper (using scissors)", "snapping fingers", "open bottle", "sniff (smell)", "squat down",
    "toss a coin", "fold paper", "ball up paper", "play magic cube", "apply cream on face",
    "apply cream on hand back", "put on bag", "take off bag", "put something into a bag",
    "take something out of a bag", "open a box", "move heavy objects", "shake fist",
    "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles", "arm swings",
    "running on the spot", "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn",
    "stretch oneself", "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person", "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)
NTU60_CLASSES = NTU120_CLASSES[:60]


def class_names(dataset: str) -> list[str]:
    return list(NTU60_CLASSES if dataset == "ntu60" else NTU120_CLASSES)


# --------------------------------------------------------------------------------------- convert
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
    # imported here: hetskel.data.ntu imports this module to re-export it, so a top-level import of the
    # reader would be circular
    from hetskel.data.ntu import EmptySkeletonError, ntu_annotation, read_skeleton

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
