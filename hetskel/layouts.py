"""Skeleton layouts: one joint vocabulary, named layouts, their union, and conversion between them.

A *layout* is an ordered list of canonical joint names plus bones (each joint's parent) and a
default dimensionality (2 or 3). Left/right pairs are derived from the names (``left_x`` <->
``right_x``), so a mirrored layout cannot silently pair the wrong joints.

    >>> from hetskel.layouts import get_layout, unify, convert
    >>> u = unify(["ntu25", "coco17"])          # the paper's 30-joint unified skeleton
    >>> y, real = convert(x, "coco17", "coco20")  # x: (..., 17, C) -> y: (..., 20, C), real: (20,) bool

Adding a layout is one call::

    register_layout(Layout.from_bones("my15", joints=[...], bones={"left_elbow": "left_shoulder", ...}, dims=3))

Joint names must belong to the vocabulary (``JOINTS``); extend it with ``register_joints`` first
when a new format has genuinely new points (e.g. finger joints).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# The canonical vocabulary. Its order *is* the unified order: face (5), the 15 joints shared by
# Kinect v2 and COCO-20, then Kinect-only hand/foot joints (10), as in the paper. Names registered later
# are appended, so the union of any layouts is ordered by this list.
FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
COMMON = (
    "spine_base", "spine_mid", "spine_shoulder",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
HANDS_FEET = (
    "neck", "head", "left_hand", "right_hand", "left_hand_tip", "right_hand_tip",
    "left_thumb", "right_thumb", "left_foot", "right_foot",
)
_VOCAB: list[str] = [*FACE, *COMMON, *HANDS_FEET, "head_top"]

# Joints that can be computed from others when a layout lacks them (the paper's spine interpolation).
# Order matters: spine_mid needs the two joints derived before it.
DERIVED: dict[str, tuple[str, ...]] = {
    "spine_shoulder": ("left_shoulder", "right_shoulder"),
    "spine_base": ("left_hip", "right_hip"),
    "spine_mid": ("spine_shoulder", "spine_base"),
}


class LayoutError(ValueError):
    """A layout definition or a joint name that does not make sense."""


def joint_vocabulary() -> tuple[str, ...]:
    return tuple(_VOCAB)


def register_joints(names: Iterable[str]) -> None:
    """Append new canonical joint names (idempotent)."""
    for n in names:
        if not isinstance(n, str) or not n:
            raise LayoutError(f"joint names must be non-empty strings, got {n!r}")
        if n not in _VOCAB:
            _VOCAB.append(n)


def mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+.\-]{0,63}")


@dataclass(frozen=True)
class Layout:
    """An ordered skeleton format.

    name:    registry key, e.g. ``"ntu25"``.
    joints:  canonical joint names, in the order of the data's joint axis ``V``.
    parents: parent index per joint, ``-1`` for the root (VideoPose3D style).
    dims:    default channel count of coordinates in this format (2 or 3).
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    dims: int = 3
    description: str = ""
    _index: Mapping[str, int] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self):
        # a name is a registry key, a key of PretrainSpec.paths, part of file and folder names and of
        # comma-joined lists: one plain token ("ntu25", "coco17+spine"), never "", "../x" or "a,b"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise LayoutError(f"layout name must be letters, digits and _ + - . (not starting with . or -), "
                              f"at most 64 characters, got {self.name!r:.80}")
        joints = tuple(self.joints)
        object.__setattr__(self, "joints", joints)
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        vocab = set(_VOCAB)
        unknown = [j for j in joints if j not in vocab]
        if unknown:
            raise LayoutError(
                f"layout {self.name!r}: unknown joint name(s) {unknown}; valid names are "
                f"{sorted(vocab)} (add new ones with hetskel.layouts.register_joints)")
        dup = sorted({j for j in joints if joints.count(j) > 1})
        if dup:
            raise LayoutError(f"layout {self.name!r}: duplicate joint(s) {dup}")
        if len(self.parents) != len(joints):
            raise LayoutError(f"layout {self.name!r}: {len(joints)} joints but {len(self.parents)} parents")
        for i, p in enumerate(self.parents):
            if p < -1 or p >= len(joints) or p == i:
                raise LayoutError(f"layout {self.name!r}: joint {joints[i]!r} has invalid parent index {p}")
        if not joints:
            raise LayoutError(f"layout {self.name!r} has no joints")
        self._check_tree()
        if self.dims not in (2, 3):
            raise LayoutError(f"layout {self.name!r}: dims must be 2 or 3, got {self.dims!r}")
        object.__setattr__(self, "_index", {j: i for i, j in enumerate(joints)})

    def _check_tree(self) -> None:
        """Every joint must reach a root (parent -1) by following parents: bones form a forest.

        Walks each joint towards its root, remembering the joints already known to reach one, so the
        whole check is O(V); a joint met twice on the same walk closes a cycle."""
        reaches_root: set[int] = set()
        for start in range(len(self.parents)):
            path, seen, j = [], set(), start
            while j != -1 and j not in reaches_root:
                if j in seen:
                    cycle = [self.joints[k] for k in path[path.index(j):]] + [self.joints[j]]
                    raise LayoutError(f"layout {self.name!r}: parent cycle {' -> '.join(cycle)} "
                                      f"(bones must form a tree)")
                seen.add(j)
                path.append(j)
                j = self.parents[j]
            reaches_root.update(path)

    @classmethod
    def from_bones(cls, name: str, joints: Sequence[str], bones: Mapping[str, str], dims: int = 3,
                   description: str = "") -> "Layout":
        """Build from ``{child: parent}`` names; joints absent from ``bones`` are roots."""
        if not isinstance(bones, Mapping):
            raise LayoutError(f"layout {name!r}: bones must be a mapping {{child: parent}} of joint names, got a "
                              f"{type(bones).__name__} (a list of (child, parent) pairs: pass dict(pairs))")
        joints = tuple(joints)
        index = {j: i for i, j in enumerate(joints)}
        for child, parent in bones.items():
            for j in (child, parent):
                if j not in index:
                    raise LayoutError(f"layout {name!r}: bone {child!r}->{parent!r} names {j!r}, "
                                      f"which is not one of its joints")
        parents = [index[bones[j]] if j in bones else -1 for j in joints]
        return cls(name, joints, tuple(parents), dims, description)

    # -- queries ---------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise LayoutError(f"layout {self.name!r} has no joint {name!r}; it has {list(self.joints)}") from None

    def has(self, name: str) -> bool:
        return name in self._index

    @property
    def bones(self) -> list[tuple[int, int]]:
        """(child, parent) index pairs."""
        return [(i, p) for i, p in enumerate(self.parents) if p >= 0]

    @property
    def left_right(self) -> list[tuple[int, int]]:
        """(left, right) index pairs, derived from the names."""
        out = []
        for i, j in enumerate(self.joints):
            if j.startswith("left_") and self.has(mirror_name(j)):
                out.append((i, self.index(mirror_name(j))))
        return out

    @property
    def joints_left(self) -> list[int]:
        return [i for i, j in enumerate(self.joints) if j.startswith("left_")]

    @property
    def joints_right(self) -> list[int]:
        return [i for i, j in enumerate(self.joints) if j.startswith("right_")]

    @property
    def flip_permutation(self) -> list[int]:
        """Index permutation that swaps left and right joints (for mirror augmentation)."""
        return [self._index.get(mirror_name(j), i) for i, j in enumerate(self.joints)]

    def bone_parents(self) -> np.ndarray:
        """Parent index per joint with roots pointing at themselves (bone vector = x - x[parents])."""
        return np.array([p if p >= 0 else i for i, p in enumerate(self.parents)], dtype=np.int64)

    def ancestry(self) -> np.ndarray:
        """``(V, V)`` bool: ``[j, k]`` is True where ``k`` is ``j`` or one of its ancestors. Row ``j``
        is the path from ``j`` to its root, column ``k`` the subtree under ``k``."""
        out = np.eye(self.num_joints, dtype=bool)
        for j in range(self.num_joints):
            p = self.parents[j]
            while p >= 0:  # a forest (checked on creation), so every walk ends at a root
                out[j, p] = True
                p = self.parents[p]
        return out


# ---------------------------------------------------------------------------------------------
# Registry
_REGISTRY: dict[str, Layout] = {}


def register_layout(layout: Layout, overwrite: bool = False) -> Layout:
    if layout.name in _REGISTRY and not overwrite and _REGISTRY[layout.name] != layout:
        raise LayoutError(f"layout {layout.name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[layout.name] = layout
    return layout


def image_twin(layout: "str | Layout") -> Layout:
    """The 2D layout of the same joints (``"kinect20_msr"`` -> ``"kinect20_msr_2d"``), registered:
    one skeleton recorded in 3D and on an image (MSR Action3D's world and screen coordinates, NTU's
    3D and colour 2D) is two sources, and two sources need two layout names."""
    lay = get_layout(layout)
    if lay.dims == 2:
        return lay
    return ensure_layout(Layout(f"{lay.name}_2d", lay.joints, lay.parents, dims=2,
                                description=f"{lay.name} on an image (2D)"))


def unregister_layout(name: str) -> None:
    """Remove a user layout (built-ins too, so use with care); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def list_layouts() -> list[str]:
    return sorted(_REGISTRY)


def get_layout(layout: "str | Layout") -> Layout:
    if isinstance(layout, Layout):
        return layout
    try:
        return _REGISTRY[layout]
    except (KeyError, TypeError):
        raise LayoutError(f"unknown layout {layout!r}; known layouts: {list_layouts()}") from None


# Kinect v2 / NTU RGB+D, official 0-based order.
register_layout(Layout.from_bones(
    "ntu25",
    ["spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
     "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
     "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder",
     "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"],
    {"spine_mid": "spine_base", "spine_shoulder": "spine_mid", "neck": "spine_shoulder", "head": "neck",
     "left_shoulder": "spine_shoulder", "left_elbow": "left_shoulder", "left_wrist": "left_elbow",
     "left_hand": "left_wrist", "left_hand_tip": "left_hand", "left_thumb": "left_hand",
     "right_shoulder": "spine_shoulder", "right_elbow": "right_shoulder", "right_wrist": "right_elbow",
     "right_hand": "right_wrist", "right_hand_tip": "right_hand", "right_thumb": "right_hand",
     "left_hip": "spine_base", "left_knee": "left_hip", "left_ankle": "left_knee", "left_foot": "left_ankle",
     "right_hip": "spine_base", "right_knee": "right_hip", "right_ankle": "right_knee", "right_foot": "right_ankle"},
    dims=3, description="Kinect v2 (NTU RGB+D, PKU-MMD), 25 joints"))

_COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
           "right_knee", "left_ankle", "right_ankle"]
_COCO_BONES = {"left_eye": "nose", "right_eye": "nose", "left_ear": "left_eye", "right_ear": "right_eye",
               "left_elbow": "left_shoulder", "left_wrist": "left_elbow", "right_elbow": "right_shoulder",
               "right_wrist": "right_elbow", "left_knee": "left_hip", "left_ankle": "left_knee",
               "right_knee": "right_hip", "right_ankle": "right_knee"}
# COCO-17 has no torso joints: hang shoulders/hips off the nose/each other so every joint is connected.
register_layout(Layout.from_bones(
    "coco17", _COCO17,
    {**_COCO_BONES, "left_shoulder": "nose", "right_shoulder": "nose", "left_hip": "left_shoulder",
     "right_hip": "right_shoulder"},
    dims=2, description="COCO-17 keypoints (HRNet etc.), 2D pixels"))
register_layout(Layout.from_bones(
    "coco20", _COCO17 + ["spine_shoulder", "spine_base", "spine_mid"],
    {**_COCO_BONES, "left_shoulder": "spine_shoulder", "right_shoulder": "spine_shoulder",
     "left_hip": "spine_base", "right_hip": "spine_base", "spine_mid": "spine_base",
     "spine_shoulder": "spine_mid", "nose": "spine_shoulder"},
    dims=2, description="COCO-17 + 3 interpolated spine joints"))

_V1_BONES = {"spine_mid": "spine_base", "spine_shoulder": "spine_mid", "head": "spine_shoulder",
             "left_shoulder": "spine_shoulder", "left_elbow": "left_shoulder", "left_wrist": "left_elbow",
             "left_hand": "left_wrist", "right_shoulder": "spine_shoulder", "right_elbow": "right_shoulder",
             "right_wrist": "right_elbow", "right_hand": "right_wrist", "left_hip": "spine_base",
             "left_knee": "left_hip", "left_ankle": "left_knee", "left_foot": "left_ankle",
             "right_hip": "spine_base", "right_knee": "right_hip", "right_ankle": "right_knee",
             "right_foot": "right_ankle"}
# Kinect v1 "shoulder centre", "spine", "hip centre" map to our spine_shoulder, spine_mid, spine_base.
register_layout(Layout.from_bones(
    "kinect20_msr",
    ["left_shoulder", "right_shoulder", "spine_shoulder", "spine_mid", "left_hip", "right_hip", "spine_base",
     "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand", "left_knee",
     "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot", "head"],
    _V1_BONES, dims=3, description="Kinect v1, 20 joints, MSR Action3D order"))
register_layout(Layout.from_bones(
    "kinect20_utd",
    ["head", "spine_shoulder", "spine_mid", "spine_base", "left_shoulder", "left_elbow", "left_wrist",
     "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee",
     "left_ankle", "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot"],
    _V1_BONES, dims=3, description="Kinect v1, 20 joints, UTD-MHAD order"))
# OpenNI/NiTE 15: "torso" is the mid-spine point; NiTE's "hand" joints sit at the wrist-hand.
register_layout(Layout.from_bones(
    "openni15",
    ["head", "neck", "spine_mid", "left_shoulder", "left_elbow", "left_hand", "right_shoulder",
     "right_elbow", "right_hand", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee", "right_foot"],
    {"neck": "spine_mid", "head": "neck", "left_shoulder": "neck", "left_elbow": "left_shoulder",
     "left_hand": "left_elbow", "right_shoulder": "neck", "right_elbow": "right_shoulder",
     "right_hand": "right_elbow", "left_hip": "spine_mid", "left_knee": "left_hip", "left_foot": "left_knee",
     "right_hip": "spine_mid", "right_knee": "right_hip", "right_foot": "right_knee"},
    dims=3, description="OpenNI / NiTE, 15 joints"))
# Human3.6M 17 (VideoPose3D order): 9 is the neck/nose point, 10 the top of the head.
register_layout(Layout.from_bones(
    "h36m17",
    ["spine_base", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
     "spine_mid", "spine_shoulder", "neck", "head_top", "left_shoulder", "left_elbow", "left_wrist",
     "right_shoulder", "right_elbow", "right_wrist"],
    {"right_hip": "spine_base", "right_knee": "right_hip", "right_ankle": "right_knee", "left_hip": "spine_base",
     "left_knee": "left_hip", "left_ankle": "left_knee", "spine_mid": "spine_base",
     "spine_shoulder": "spine_mid", "neck": "spine_shoulder", "head_top": "neck",
     "left_shoulder": "spine_shoulder", "left_elbow": "left_shoulder", "left_wrist": "left_elbow",
     "right_shoulder": "spine_shoulder", "right_elbow": "right_shoulder", "right_wrist": "right_elbow"},
    dims=3, description="Human3.6M, 17 joints (VideoPose3D order)"))


# ---------------------------------------------------------------------------------------------
# Union and conversion
def _vocab_rank(name: str) -> int:
    return _VOCAB.index(name)


@dataclass(frozen=True)
class Unified:
    """The union of several layouts.

    layout:    the union ``Layout`` (joints in vocabulary order).
    index:     ``{source name: int array (V_src,)}`` position of each source joint in the union.
    real_mask: ``{source name: bool array (V_u,)}`` which union joints the source really has.
    """

    layout: Layout
    sources: tuple[str, ...]
    index: Mapping[str, np.ndarray]
    real_mask: Mapping[str, np.ndarray]

    def missing(self, source: str) -> list[str]:
        return [j for j, r in zip(self.layout.joints, self.real_mask[source]) if not r]


def _union_parent(name: str, layouts: Sequence[Layout], members: set[str]) -> str | None:
    """Parent of ``name`` in the union: the first source layout's parent, walking up until a member."""
    for lay in layouts:
        if lay.has(name):
            p = lay.parents[lay.index(name)]
            while p >= 0 and lay.joints[p] not in members:
                p = lay.parents[p]
            if p >= 0:
                return lay.joints[p]
    return None


def unify(layouts: Sequence["str | Layout"], name: str | None = None) -> Unified:
    """Union of ``layouts``: joints in vocabulary order, bones taken from the first layout that has them.

    ``unify(["ntu25", "coco17"])`` gives exactly the registered ``unified30`` order.
    """
    lays = [get_layout(l) for l in layouts]
    if not lays:
        raise LayoutError("unify() needs at least one layout")
    members = {j for lay in lays for j in lay.joints}
    joints = sorted(members, key=_vocab_rank)
    bones = {j: p for j in joints if (p := _union_parent(j, lays, members)) is not None}
    # bones from different sources can close a cycle; drop the edge that would.
    parents: dict[str, str] = {}
    for j in joints:
        p = bones.get(j)
        seen = {j}
        q = p
        while q is not None and q not in seen:
            seen.add(q)
            q = parents.get(q)
        if p is not None and q is None:
            parents[j] = p
    union = Layout.from_bones(name or "+".join(l.name for l in lays), joints, parents,
                              dims=max(l.dims for l in lays))
    index = {l.name: np.array([union.index(j) for j in l.joints], dtype=np.int64) for l in lays}
    real = {l.name: np.array([l.has(j) for j in union.joints]) for l in lays}
    return Unified(union, tuple(l.name for l in lays), index, real)


register_layout(Layout(name="unified30", joints=unify(["ntu25", "coco17"]).layout.joints,
                       parents=unify(["ntu25", "coco17"]).layout.parents, dims=3,
                       description="union of ntu25 and coco17: face 5, common 15, hands/feet 10"))


# The layouts every fresh interpreter has (user layouts and derived ones such as "coco17+spine" come later).
BUILTIN_LAYOUTS: tuple[str, ...] = tuple(sorted(_REGISTRY))


def conversion_plan(src: "str | Layout", dst: "str | Layout", derive: bool = True):
    """For each destination joint: ``("copy", i)``, ``("mean", [i, j])`` on already-built dst joints, or None."""
    src, dst = get_layout(src), get_layout(dst)
    plan: list = [("copy", src.index(j)) if src.has(j) else None for j in dst.joints]
    if derive:
        available = {j: k for k, j in enumerate(dst.joints) if plan[k] is not None}
        for name, parts in DERIVED.items():
            k = dst._index.get(name)
            if k is not None and plan[k] is None and all(p in available or src.has(p) for p in parts):
                plan[k] = ("mean", list(parts))
                available[name] = k
    return plan


def convert(x, src: "str | Layout", dst: "str | Layout", derive: bool = True, fill: float = 0.0):
    """Re-index the joint axis (second to last) of ``x`` from ``src`` to ``dst``.

    x: array or tensor ``(..., V_src, C)``. Returns ``(y, real_mask)`` with y ``(..., V_dst, C)``
    (same type, dtype and device as x), joints ``dst`` lacks filled with ``fill``, and
    ``real_mask`` a bool numpy array ``(V_dst,)``. With ``derive`` the spine joints are
    interpolated when the source has their ingredients (COCO-17 -> COCO-20).
    """
    src, dst = get_layout(src), get_layout(dst)
    if x.ndim < 2 or x.shape[-2] != src.num_joints:
        raise LayoutError(f"convert: input has {x.shape[-2] if x.ndim >= 2 else 'no'} joints on axis -2 but layout "
                          f"{src.name!r} has {src.num_joints}")
    most = max(src.dims, dst.dims) + 1
    if not 1 <= x.shape[-1] <= most:
        # channels: a per-joint value (1), 2D/3D coordinates, or coordinates + a score
        raise LayoutError(f"convert: input has {x.shape[-1]} channels on the last axis; layouts {src.name!r} "
                          f"({src.dims}D) and {dst.name!r} ({dst.dims}D) take 1..{most} (coordinates, "
                          f"optionally + a score): is the array (..., V, C)?")
    plan = conversion_plan(src, dst, derive)
    is_torch = not isinstance(x, np.ndarray)
    if is_torch:
        import torch
        y = torch.full((*x.shape[:-2], dst.num_joints, x.shape[-1]), fill, dtype=x.dtype, device=x.device)
    else:
        y = np.full((*x.shape[:-2], dst.num_joints, x.shape[-1]), fill, dtype=x.dtype)
    copy_dst = [k for k, p in enumerate(plan) if p is not None and p[0] == "copy"]
    copy_src = [plan[k][1] for k in copy_dst]
    if copy_dst:
        y[..., copy_dst, :] = x[..., copy_src, :]
    # derived joints in DERIVED order (spine_mid needs the two before it), whatever dst's order
    for name in DERIVED:
        k = dst._index.get(name)
        p = plan[k] if k is not None else None
        if p is not None and p[0] == "mean":
            parts = [y[..., dst.index(n), :] if dst.has(n) and plan[dst.index(n)] is not None
                     else x[..., src.index(n), :] for n in p[1]]
            y[..., k, :] = sum(parts[1:], parts[0]) / len(parts)
    real = np.array([p is not None for p in plan])
    return y, real


# ---------------------------------------------------------------------------------------------
# Layouts as plain data: run folders store them, layout files (JSON / YAML) define them
def layout_to_dict(layout: "str | Layout") -> dict:
    """``{"name", "joints", "parents", "dims", "description"}``: JSON-able, read back by ``layout_from_dict``."""
    lay = get_layout(layout)
    return {"name": lay.name, "joints": list(lay.joints), "parents": list(lay.parents), "dims": lay.dims,
            "description": lay.description}


def layout_from_dict(d: Mapping, name: str | None = None, new_joints: bool = True) -> Layout:
    """A ``Layout`` from ``{"name", "joints", "parents" | "bones", "dims", "description"}``.

    ``parents``: per joint a parent index (-1 = root) or a parent joint name (``None`` = root);
    ``bones``: ``{child: parent}`` names instead. ``new_joints``: joint names not yet in the
    vocabulary are added to it (``register_joints``). Not registered: see ``load_layout``."""
    if not isinstance(d, Mapping):
        raise LayoutError(f"a layout definition must be a mapping, got {type(d).__name__}")
    name = str(d.get("name") or name or "")
    if not name:
        raise LayoutError("a layout definition needs a 'name'")
    joints = d.get("joints")
    if not isinstance(joints, (list, tuple)) or not all(isinstance(j, str) for j in joints):
        raise LayoutError(f"layout {name!r}: 'joints' must be a list of joint names")
    unknown = [j for j in joints if j not in _VOCAB]
    if unknown and new_joints:
        register_joints(unknown)
    dims, desc = int(d.get("dims", 3)), str(d.get("description", ""))
    if "bones" in d:
        return Layout.from_bones(name, joints, dict(d["bones"]), dims=dims, description=desc)
    parents = d.get("parents")
    if not isinstance(parents, (list, tuple)):
        raise LayoutError(f"layout {name!r}: give 'parents' (a list, one per joint) or 'bones' ({{child: parent}})")
    if len(parents) != len(joints):
        raise LayoutError(f"layout {name!r}: {len(joints)} joints but {len(parents)} parents")
    return Layout(name, tuple(joints), parent_indices(name, joints, parents), dims, desc)


def parent_indices(name: str, joints: Sequence[str], parents: Sequence) -> tuple[int, ...]:
    """Each joint's parent as an index (-1 for a root) from parents given as indices, joint names or None."""
    idx = {j: i for i, j in enumerate(joints)}
    out = []
    for j, p in zip(joints, parents):
        if p is None:
            out.append(-1)
        elif isinstance(p, str):
            if p not in idx:
                raise LayoutError(f"layout {name!r}: joint {j!r} has parent {p!r}, which is not one of its joints")
            out.append(idx[p])
        else:
            out.append(int(p))
    return tuple(out)


def same_layout(a: "str | Layout", b: "str | Layout") -> bool:
    """Same joints, parents and dims (the name and description aside)."""
    a, b = get_layout(a), get_layout(b)
    return (a.joints, a.parents, a.dims) == (b.joints, b.parents, b.dims)


def ensure_layout(d: "Mapping | Layout") -> Layout:
    """Register a stored layout definition unless the same one is registered already; a different
    layout under the same name is an error (it would silently re-order the joints)."""
    lay = d if isinstance(d, Layout) else layout_from_dict(d)
    have = _REGISTRY.get(lay.name)
    if have is None:
        return register_layout(lay)
    if not same_layout(have, lay):
        raise LayoutError(f"layout {lay.name!r} is registered in this process with other joints/parents/dims "
                          f"than the stored one ({have.num_joints} vs {lay.num_joints} joints); "
                          f"unregister_layout({lay.name!r}) first to use the stored one")
    return have


def load_layout(path: "str | Path", register: bool = True) -> Layout:
    """A layout from a JSON or YAML file (``{"name", "joints", "parents" | "bones", "dims",
    "description"}``; the name defaults to the file's stem), registered (``ensure_layout``) unless
    ``register=False``::

        {"name": "my15", "dims": 3, "joints": ["head", "neck", ...], "parents": [null, "head", ...]}
    """
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise LayoutError(f"cannot read layout file {p}: {e}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        d = yaml.safe_load(text)
    else:
        import json

        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise LayoutError(f"layout file {p}: not valid JSON ({e})") from None
    lay = layout_from_dict(d, name=p.stem)
    return ensure_layout(lay) if register else lay


LAYOUT_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def layout_arg(value: "str | Layout") -> str:
    """A command line's layout argument: a registered name, or a layout file (JSON / YAML), which is
    loaded and registered. Returns the layout's name."""
    if isinstance(value, Layout):
        return ensure_layout(value).name
    s = str(value)
    if s in _REGISTRY:
        return s
    if s.lower().endswith(LAYOUT_FILE_SUFFIXES):
        return load_layout(s).name
    return get_layout(s).name  # raises, listing the known layouts
