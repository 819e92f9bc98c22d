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
