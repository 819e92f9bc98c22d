"""A validation split carved from a training split, by subject, so that settings are chosen without
looking at the test split.

    >>> from hetskel.data.splits import carve_validation
    >>> splits = carve_validation(data["split"], data["annotations"], "xsub_train", fraction=0.2, seed=0)
    >>> splits["xsub_train_fit"], splits["xsub_train_validation"]     # disjoint; their union is xsub_train

Why by subject: the test splits of the cross-subject protocols hold people the model never saw, so a
validation split that shares people with the training clips would flatter every setting that
memorises a person. The subject of a clip is its annotation's ``subject`` (SynHet, ``from_arrays``
extras), else the performer ``P###`` of an NTU-style ``frame_dir`` (``S001C002P003R002A013``); a
training split without either is carved by clip, and the result says so (``by``).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from hetskel.data.errors import DataError

_NTU_PERFORMER = re.compile(r"P(\d{3})")


def subject_of(annotation: Mapping):
    """The clip's subject id, or None when the annotation names none."""
    if annotation.get("subject") is not None:
        return annotation["subject"]
    m = _NTU_PERFORMER.search(str(annotation.get("frame_dir", "")))
    return int(m.group(1)) if m else None


def validation_names(train: str) -> tuple[str, str]:
    """The names of the carved splits: ``(<train>_fit, <train>_validation)``."""
    return f"{train}_fit", f"{train}_validation"


def carve_validation(splits: Mapping[str, Sequence[str]], annotations: Sequence[Mapping], train: str,
                     fraction: float, seed: int = 0, where: str | None = None) -> dict:
    """``splits`` plus ``<train>_fit`` and ``<train>_validation``: a ``fraction`` of the training
    split's subjects (at least one, never all) drawn with ``seed`` go to validation, the rest stay.

    Returns a new split dict (the given one is not changed). ``carve_by(annotations, splits[train])``
    says whether it split people or clips. ``where`` names the file in errors.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"the validation fraction must be in (0, 1), got {fraction!r}", file=where, field="validation")
    if train not in splits:
        raise DataError(f"has no split {train!r} to carve a validation split from (splits: {sorted(splits)})",
                        file=where, field="split")
    members = list(splits[train])
    if len(members) < 2:
        raise DataError(f"split {train!r} has {len(members)} clip(s); a validation split needs at least 2",
                        file=where, field="split")
    keys, _ = _carve_keys(annotations, members)
    unique = sorted(set(keys), key=str)
    rng = np.random.default_rng(seed)
    count = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    held = {unique[i] for i in rng.choice(len(unique), size=count, replace=False)}
    fit_name, val_name = validation_names(train)
    out = {k: list(v) for k, v in splits.items()}
    out[fit_name] = [fd for fd, k in zip(members, keys) if k not in held]
    out[val_name] = [fd for fd, k in zip(members, keys) if k in held]
    return out


def _carve_keys(annotations: Sequence[Mapping], members: Sequence[str]) -> tuple[list, str]:
    """What ``carve_validation`` splits by, per clip of ``members``: its subject when every clip names
    one and there are two or more subjects, else the clip itself; and ``"subject"`` or ``"clip"``."""
    by_dir = {a.get("frame_dir"): a for a in annotations}
    keys = [subject_of(by_dir.get(fd, {})) for fd in members]
    if keys and all(k is not None for k in keys) and len(set(keys)) > 1:
        return keys, "subject"
    return list(range(len(members))), "clip"


def carve_by(annotations: Sequence[Mapping], members: Sequence[str]) -> str:
    """``"subject"`` or ``"clip"``: how ``carve_validation`` splits the clips ``members``."""
    return _carve_keys(annotations, members)[1]
