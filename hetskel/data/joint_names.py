"""A dataset's joint names -> the kit's joint vocabulary, and a ``Layout`` built from them.

    m = map_joint_names(["Head", "Neck", "Torso", "LShoulder", "ShoulderRight", "l_hip", ...])
    print(m.report())        # each name -> vocabulary joint, alternatives, what stays missing
    lay = layout_from_names("my15", names, parents=[None, "Head", "Neck", ...], dims=3)

Names are normalised (case, camelCase, ``-``/space/``.``), a side is read from a ``left``/``l``/``right``/``r``
prefix or suffix (``l_hip``, ``LShoulder``, ``ShoulderLeft``, ``hip.R``), and the rest is looked up in
the synonym table ``PART_SYNONYMS`` (torso/belly/spine -> ``spine_mid``, pelvis/hip centre ->
``spine_base``, shoulder centre/thorax -> ``spine_shoulder``, face -> ``nose``, toe -> ``foot``, ...).
Some choices are ambiguous (``neck``: Kinect's neck or the mid-shoulder point; OpenNI's ``hand``
sits at the wrist): ``JointMapping.alternatives`` lists them and ``choose={name: joint}`` overrides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from hetskel.layouts import (
    DERIVED,
    Layout,
    LayoutError,
    get_layout,
    joint_vocabulary,
    parent_indices,
    register_joints,
    register_layout,
)

# body part (side removed, normalised) -> vocabulary part; sided parts get left_/right_ prepended
PART_SYNONYMS: dict[str, str] = {
    # centre line
    "neck": "neck", "upper_neck": "neck",
    "spine_shoulder": "spine_shoulder", "shoulder_center": "spine_shoulder", "shoulder_centre": "spine_shoulder",
    "center_shoulder": "spine_shoulder", "mid_shoulder": "spine_shoulder", "thorax": "spine_shoulder",
    "upper_spine": "spine_shoulder", "spine3": "spine_shoulder", "chest": "spine_shoulder",
    "spine_mid": "spine_mid", "spine": "spine_mid", "mid_spine": "spine_mid", "middle_spine": "spine_mid",
    "torso": "spine_mid", "belly": "spine_mid", "abdomen": "spine_mid", "spine1": "spine_mid",
    "spine_base": "spine_base", "pelvis": "spine_base", "hip_center": "spine_base", "hip_centre": "spine_base",
    "center_hip": "spine_base", "mid_hip": "spine_base", "midhip": "spine_base", "hips": "spine_base",
    "root": "spine_base", "waist": "spine_base", "base_spine": "spine_base",
    "head": "head", "head_center": "head", "head_top": "head_top", "top_head": "head_top", "headtop": "head_top",
    "crown": "head_top", "face": "nose", "nose": "nose",
    # sided
    "shoulder": "shoulder", "elbow": "elbow", "wrist": "wrist", "hand": "hand", "palm": "hand",
    "hand_tip": "hand_tip", "handtip": "hand_tip", "fingertip": "hand_tip", "finger_tip": "hand_tip",
    "finger": "hand_tip", "fingers": "hand_tip", "thumb": "thumb",
    "hip": "hip", "knee": "knee", "ankle": "ankle", "foot": "foot", "toe": "foot", "toes": "foot",
    "big_toe": "foot", "bigtoe": "foot", "ball": "foot", "eye": "eye", "ear": "ear",
}
SIDED = {"shoulder", "elbow", "wrist", "hand", "hand_tip", "thumb", "hip", "knee", "ankle", "foot", "eye", "ear"}
# vocabulary joint -> (other joints a name may mean, why)
ALTERNATIVES: dict[str, tuple[tuple[str, ...], str]] = {
    "neck": (("spine_shoulder",), "an OpenPose/COCO-style neck is the mid-shoulder point (spine_shoulder); "
                                 "Kinect v2 has both"),
    "spine_shoulder": (("neck",), "Kinect v1 'shoulder centre' is spine_shoulder; some sets call it neck"),
    "spine_mid": (("spine_shoulder",), "OpenNI 'torso' and Kinect 'spine' are mid-spine; a 'chest' may be higher"),
    "nose": (("head",), "a 'face' point may be the head centre"),
    "head": (("head_top", "nose"), "H36M's head is the top of the head; 2D sets may mean the face"),
    "hand": (("wrist",), "OpenNI/NiTE 'hand' sits at the wrist"),
    "foot": (("ankle",), "some sets' 'foot' is the ankle"),
}
_SIDES = {"left": "left", "l": "left", "lft": "left", "right": "right", "r": "right", "rt": "right", "rgt": "right"}
# the unified target the report measures against (the paper's 30 joints)
UNIFIED = "unified30"


def _tokens(name: str) -> list[str]:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


def canonical_joint(name: str, extra: Mapping[str, str] | None = None) -> str | None:
    """The vocabulary joint a dataset's joint name means, or None. ``extra``: more ``{part: joint}``."""
    vocab = set(joint_vocabulary())
    table = {**PART_SYNONYMS, **(extra or {})}
    raw = str(name).strip()
    if raw in vocab:
        return raw
    toks = _tokens(raw)
    if not toks:
        return None
    side = None
    if toks[0] in _SIDES and len(toks) > 1:
        side, toks = _SIDES[toks[0]], toks[1:]
    elif toks[-1] in _SIDES and len(toks) > 1:
        side, toks = _SIDES[toks[-1]], toks[:-1]
    part = "_".join(toks)
    if side is None and part not in table:  # glued: lshoulder, leftknee, shoulderleft
        for pre, sd in (("left", "left"), ("right", "right"), ("l", "left"), ("r", "right")):
            if part.startswith(pre) and part[len(pre):] in table and table[part[len(pre):]] in SIDED:
                side, part = sd, part[len(pre):]
                break
            if part.endswith(pre) and part[:-len(pre)] in table and table[part[:-len(pre)]] in SIDED:
                side, part = sd, part[:-len(pre)]
                break
    target = table.get(part, part if part in vocab else None)
    if target is None:
        return None
    if side is not None:
        if target.startswith(("left_", "right_")):
            target = target.split("_", 1)[1]
        full = f"{side}_{target}"
        return full if full in vocab else None
    return target if target in vocab and target not in SIDED else None


@dataclass
class JointMapping:
    """mapping: dataset name -> vocabulary joint (None: not mapped); unmapped: those names;
    duplicates: vocabulary joints two names map to; alternatives: name -> other joints it may mean
    and why; derived: unified joints the kit interpolates (e.g. spine_base from the hips);
    prompt_filled: unified joints that stay missing (filled by the joint prompts)."""

    mapping: dict
    unmapped: list = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)
    alternatives: dict = field(default_factory=dict)
    derived: list = field(default_factory=list)
    prompt_filled: list = field(default_factory=list)

    @property
    def joints(self) -> list:
        return [self.mapping[n] for n in self.mapping]

    def report(self) -> str:
        lines = [f"{n!r:>22} -> {j if j else 'NOT MAPPED'}" for n, j in self.mapping.items()]
        for n, (alts, why) in self.alternatives.items():
            lines.append(f"  choice: {n!r} could also be {', '.join(alts)} ({why}); override with choose=")
        if self.duplicates:
            lines.append(f"  duplicates: {self.duplicates}")
        if self.unmapped:
            lines.append(f"  not mapped: {self.unmapped} (choose={{name: joint}}, or new joints via register_joints)")
        lines.append(f"  of the {UNIFIED} joints: interpolated {self.derived or 'none'}; missing, prompt-filled "
                     f"({len(self.prompt_filled)}): {self.prompt_filled}")
        return "\n".join(lines)


def map_joint_names(names: Sequence[str], choose: Mapping[str, str] | None = None,
                    synonyms: Mapping[str, str] | None = None) -> JointMapping:
    """Map a dataset's joint names onto the vocabulary (see the module doc).

    choose: ``{dataset name: vocabulary joint}`` overrides (e.g. ``{"Neck": "spine_shoulder"}``);
    synonyms: more ``{part: vocabulary joint}`` entries for the lookup. Reports which joints of the
    unified skeleton the mapping leaves to interpolation and which stay missing (prompt-filled):
    choosing ``neck`` -> ``spine_shoulder`` for an OpenPose neck, say, makes spine_shoulder real."""
    choose = dict(choose or {})
    vocab = set(joint_vocabulary())
    bad = {n: j for n, j in choose.items() if j not in vocab}
    if bad:
        raise LayoutError(f"choose= names joints outside the vocabulary: {bad} (register_joints adds new ones)")
    mapping = {str(n): (choose[n] if n in choose else canonical_joint(n, synonyms)) for n in names}
    counts: dict = {}
    for n, j in mapping.items():
        if j is not None:
            counts.setdefault(j, []).append(n)
    dup = {j: ns for j, ns in counts.items() if len(ns) > 1}
    alts = {}
    for n, j in mapping.items():
        if j is None or n in choose or n == j:
            continue
        side, _, part = j.partition("_") if j.startswith(("left_", "right_")) else ("", "", j)
        if part in ALTERNATIVES:
            others, why = ALTERNATIVES[part]
            alts[n] = (tuple(f"{side}_{o}" if side and o in SIDED else o for o in others), why)
    have = {j for j in mapping.values() if j}
    unified = get_layout(UNIFIED).joints
    derived = []
    for j, parts in DERIVED.items():
        if j not in have and all(p in have or p in derived for p in parts):
            derived.append(j)
    missing = [j for j in unified if j not in have and j not in derived]
    return JointMapping(mapping, [n for n, j in mapping.items() if j is None], dup, alts,
                        [j for j in unified if j in derived], missing)


def layout_from_names(name: str, joint_names: Sequence[str], parents: Sequence, dims: int = 3, *,
                      choose: Mapping[str, str] | None = None, synonyms: Mapping[str, str] | None = None,
                      new_joints: bool = False, register: bool = True, description: str = "") -> Layout:
    """A ``Layout`` from a dataset's own joint names and parents, through ``map_joint_names``.

    parents: per joint a parent index (-1 or None = root) or the parent's dataset name.
    new_joints: names that map to nothing become new vocabulary joints (their normalised name,
    ``register_joints``) instead of an error. register: ``register_layout`` it (same definition again
    is fine). Raises ``LayoutError`` naming unmapped or doubly mapped names."""
    names = [str(n) for n in joint_names]
    if len(parents) != len(names):
        raise LayoutError(f"layout {name!r}: {len(names)} joint names but {len(parents)} parents")
    m = map_joint_names(names, choose, synonyms)
    if m.unmapped:
        if not new_joints:
            raise LayoutError(f"layout {name!r}: joint name(s) {m.unmapped} map to no vocabulary joint; pass "
                              f"choose={{name: joint}}, synonyms=, or new_joints=True\n{m.report()}")
        for n in m.unmapped:
            m.mapping[n] = "_".join(_tokens(n)) or n
        register_joints([m.mapping[n] for n in m.unmapped])
    if m.duplicates:
        raise LayoutError(f"layout {name!r}: several names map to the same joint {m.duplicates}; pass choose=\n"
                          f"{m.report()}")
    lay = Layout(name, tuple(m.mapping[n] for n in names), parent_indices(name, names, parents), dims, description)
    return register_layout(lay) if register else lay
