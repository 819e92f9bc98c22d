"""PYSKL annotations -> one rectangular, device-resident tensor per skeleton source.

    >>> ds = load_dataset({"ntu25": "ntu60_3danno.pkl", "coco17": "ntu60_hrnet.pkl"}, split="xsub_train")
    >>> ds.x["ntu25"].shape, ds.x["coco17"].shape      # (N, 2, 64, 25, 3), (N, 2, 64, 17, 2)
    >>> ds = ds.to("cuda")
    >>> for idx in iterate_batches(len(ds), 512, shuffle=True, generator=g):
    ...     batch = ds.get_batch(idx)                   # {"ntu25": ..., "coco17": ..., "label": ...}

Sources are paired by ``frame_dir`` at the clip level: the files may hold different frame counts for
one clip (PYSKL's 3danno drops frames without bodies, the 2D file does not), so each source is
resampled on its own valid length (``transforms.resample_valid``) to ``num_frames``. The whole
pipeline (person padding/selection, normalisation, resampling) runs batched in torch, a chunk of
samples at a time so that padding every clip to the longest one never needs the whole dataset in
memory.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hetskel.data import transforms as tr
from hetskel.data.errors import DataError
from hetskel.layouts import LayoutError, get_layout

Tensor = torch.Tensor


@dataclass
class ArrayDataset:
    """A paired multi-source skeleton dataset held as tensors.

    x:           ``{source: (N, M, T, V, C) float32}``, e.g. ``{"ntu25": (N,2,64,25,3), "coco17": (N,2,64,17,2)}``.
    score:       ``{source: (N, M, T, V) float32}`` keypoint confidences of 2D sources.
    labels:      ``(N,)`` int64, 0-based.
    frame_dirs:  clip ids, in row order.
    layouts:     ``{source: layout name}``.
    class_names: optional list of names (``num_classes`` falls back to ``max(label) + 1``).
    lengths:     ``{source: (N,) int64}`` valid frame count of each clip before resampling.
    """

    x: dict[str, Tensor]
    labels: Tensor
    frame_dirs: list[str]
    layouts: dict[str, str]
    score: dict[str, Tensor] = field(default_factory=dict)
    class_names: list[str] | None = None
    lengths: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.frame_dirs)
        clash = {"label", "length"} & set(self.x)
        if clash:
            raise DataError(f"a source may not be called {sorted(clash)[0]!r} (get_batch uses that key)")
        if tuple(self.labels.shape) != (n,):
            raise DataError(f"labels have shape {tuple(self.labels.shape)} for {n} frame_dirs", field="label")
        for name, t in [*self.x.items(), *self.score.items(), *self.lengths.items()]:
            if t.shape[0] != n:
                raise DataError(f"source {name!r} has {t.shape[0]} rows for {n} frame_dirs")
        missing = set(self.x) - set(self.layouts)
        if missing:
            raise DataError(f"no layout given for source(s) {sorted(missing)}", field="layouts")

    def __len__(self) -> int:
        return len(self.frame_dirs)

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1 if len(self) else 0

    @property
    def sources(self) -> list[str]:
        return list(self.x)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def _map(self, fn, frame_dirs: list[str]) -> ArrayDataset:
        return ArrayDataset(x={k: fn(v) for k, v in self.x.items()}, labels=fn(self.labels), frame_dirs=frame_dirs,
                            layouts=dict(self.layouts), score={k: fn(v) for k, v in self.score.items()},
                            class_names=None if self.class_names is None else list(self.class_names),
                            lengths={k: fn(v) for k, v in self.lengths.items()})

    def to(self, device) -> ArrayDataset:
        """A copy with every tensor on ``device``."""
        return self._map(lambda t: t.to(device), list(self.frame_dirs))

    def subset(self, indices) -> ArrayDataset:
        """Rows ``indices`` (int sequence, LongTensor or bool mask) as a new dataset."""
        idx = torch.as_tensor(indices)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = idx.to(torch.int64)
        fds = [self.frame_dirs[i] for i in idx.tolist()]
        idx = idx.to(self.device)
        return self._map(lambda t: t[idx.to(t.device)], fds)

    @property
    def clip_lengths(self) -> Tensor | None:
        """``(N,)`` original frame count of each clip (the longest over sources), or None."""
        if not self.lengths:
            return None
        return torch.stack(list(self.lengths.values())).amax(0)

    def get_batch(self, idx: Tensor) -> dict[str, Tensor]:
        """``{source: x[idx], ..., "label": labels[idx], "length": clip_lengths[idx]}``, indexed on
        the data's device. ``"length"`` (present when ``lengths`` is) lets the augmentation express
        UmURL's minimum crop in original frames (``hetskel.model.augment``, ``length_key``)."""
        idx = idx.to(self.device)
        out = {k: v[idx] for k, v in self.x.items()}
        out["label"] = self.labels[idx]
        if self.lengths:
            out["length"] = self.clip_lengths[idx]
        return out


def iterate_batches(n: int, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
                    drop_last: bool = False, device=None) -> Iterator[Tensor]:
    """Yield LongTensor index batches covering ``range(n)`` (a fresh permutation when ``shuffle``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if device is not None:
        order = order.to(device)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


# ---------------------------------------------------------------------------------------------
# loading
def _load_source(name: str, src) -> tuple[dict, str | None]:
    """``(validated PYSKL dict, file or None)``. A path is read by ``load_pyskl`` (which validates);
    an in-memory dict is validated here too (NaN/inf, shapes, labels, splits), on a copy: the
    caller's dict and annotations are left exactly as they were.

    Labels of a dict are taken as the interchange format says (0-based) unless the dict records
    otherwise in ``label_base`` (1: a raw dict read with ``validate=False``). A dict that was
    validated already (``load_pyskl``, ``validate_pyskl``) says ``label_base: 0``, so its labels
    are never shifted twice. A dict's ``total_frames`` is not compared with the keypoints: loading
    takes every frame count from the ``keypoint`` array, so a stale count (a clip cropped in
    memory) changes nothing. The check costs ~0.2 s per 10k clips per source (~5% of loading)."""
    from hetskel.data.pyskl import load_pyskl, validate_pyskl

    if isinstance(src, (str, Path)):
        return load_pyskl(src), str(src)
    if isinstance(src, Mapping) and "annotations" in src:
        anns = src["annotations"]
        if isinstance(anns, list):  # shallow copies: validation normalises annotations in place
            anns = [{k: v for k, v in a.items() if k != "total_frames"} if isinstance(a, Mapping) else a
                    for a in anns]
        data = {"split": {}, **src, "annotations": anns}
        base = data.get("label_base", 0)
        validate_pyskl(data, file=f"<source {name!r}>", label_base=base if base in (0, 1) else 0)
        return data, None
    raise DataError(f"source {name!r} must be a PYSKL dict or a path to one, got {type(src).__name__}")


def _annotations(data: dict, split: str | None, file) -> list[dict]:
    if split is None:
        return list(data["annotations"])
    from hetskel.data.pyskl import select_split

    try:
        return select_split(data, split)
    except DataError as e:
        raise DataError(e.reason, file=file, field="split") from None


def _pair(per_source: dict[str, list[dict]], files: dict, drop_unpaired: bool) -> tuple[list[str], dict]:
    """frame_dirs present in every source (first source's order) and ``{source: [annotation]}``."""
    names = list(per_source)
    index = {}
    for name in names:
        idx = {}
        for a in per_source[name]:
            fd = str(a["frame_dir"])
            if fd in idx:
                raise DataError("frame_dir appears twice", file=files[name], sample=fd, field="frame_dir")
            idx[fd] = a
        index[name] = idx
    common = [str(a["frame_dir"]) for a in per_source[names[0]]
              if all(str(a["frame_dir"]) in index[n] for n in names[1:])]
    keep = set(common)
    unpaired = {n: [fd for fd in index[n] if fd not in keep] for n in names}
    if not drop_unpaired and any(unpaired.values()):
        n, fds = next((n, f) for n, f in unpaired.items() if f)
        raise DataError(f"{sum(map(len, unpaired.values()))} clip(s) are not in every source (e.g. {fds[0]!r} "
                        f"of {n!r}); pass drop_unpaired=True to drop them", file=files[n], sample=fds[0])
    if not common:
        raise DataError(f"no frame_dir is shared by all sources {names}")
    return common, {n: [index[n][fd] for fd in common] for n in names}


def _labels(anns: dict[str, list[dict]], frame_dirs: list[str], files: dict) -> np.ndarray:
    names = list(anns)
    lab = {n: np.array([int(a["label"]) for a in anns[n]], dtype=np.int64) for n in names}
    for n in names[1:]:
        bad = np.flatnonzero(lab[n] != lab[names[0]])
        if bad.size:
            i = int(bad[0])
            raise DataError(f"label {lab[n][i]} in source {n!r} but {lab[names[0]][i]} in {names[0]!r}",
                            file=files[n], sample=frame_dirs[i], field="label")
    out = lab[names[0]]
    if out.size and out.min() < 0:
        i = int(out.argmin())
        raise DataError(f"negative label {out[i]}", file=files[names[0]], sample=frame_dirs[i], field="label")
    return out


def _stack(anns: Sequence[dict], key: str, V: int, C: int | None, file, min_persons: int = 1) -> np.ndarray:
    """Zero-padded ``(n, max(M_max, min_persons), T_max, V[, C])`` float32 array of ``ann[key]``."""
    arrs = [np.asarray(a[key], dtype=np.float32) for a in anns]
    for a, arr in zip(anns, arrs):
        want = 4 if C is not None else 3
        if arr.ndim != want or arr.shape[2] != V or (C is not None and arr.shape[3] != C):
            exp = "(M, T, V, C)" if C is not None else "(M, T, V)"
            raise DataError(f"has shape {arr.shape}, expected {exp} with V={V}" + (f", C={C}" if C else ""),
                            file=file, sample=a["frame_dir"], field=key)
    M = max(min_persons, max(a.shape[0] for a in arrs))
    T = max(a.shape[1] for a in arrs)
    out = np.zeros((len(arrs), M, T) + arrs[0].shape[2:], dtype=np.float32)
    for i, arr in enumerate(arrs):  # one block copy per clip; clips are ragged so this is the stacking step
        out[i, :arr.shape[0], :arr.shape[1]] = arr
    return out


def _img_shapes(anns: Sequence[dict], default, file) -> np.ndarray:
    out = []
    for a in anns:
        hw = a.get("img_shape", default)
        if hw is None:
            raise DataError("is missing; 2D keypoints need the image size to be normalised (pass img_shape=(h, w) "
                            "to load_dataset to assume one)", file=file, sample=a["frame_dir"], field="img_shape")
        if not (float(hw[0]) > 0 and float(hw[1]) > 0):  # (0, 0) or negative: no image size to divide by
            raise DataError(f"must be a positive (h, w), got {tuple(hw)!r}", file=file, sample=a["frame_dir"],
                            field="img_shape")
        out.append([float(hw[0]), float(hw[1])])
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _build_source(anns: list[dict], layout, num_frames: int, max_persons: int, normalize: bool, norm3d: dict,
                  img_shape, chunk_size: int, file) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(x (N, max_persons, num_frames, V, C), score (N, ...) or None, lengths (N,))`` for one source."""
    V = layout.num_joints
    C = int(np.asarray(anns[0]["keypoint"]).shape[-1])
    if C not in (2, 3):
        raise DataError(f"has {C} channels, expected 2 or 3", file=file, sample=anns[0]["frame_dir"], field="keypoint")
    two_d = C == 2
    N = len(anns)
    x_out = torch.zeros((N, max_persons, num_frames, V, C))
    s_out = torch.zeros((N, max_persons, num_frames, V)) if two_d else None
    len_out = torch.zeros(N, dtype=torch.int64)
    # chunks of clips of similar length, so padding each chunk to its longest clip wastes little
    by_length = np.argsort([np.shape(a["keypoint"])[1] for a in anns], kind="stable")
    for i0 in range(0, N, chunk_size):
        rows = torch.from_numpy(by_length[i0:i0 + chunk_size])
        part = [anns[i] for i in rows.tolist()]
        x = torch.from_numpy(_stack(part, "keypoint", V, C, file, max_persons))
        if two_d:
            s = (torch.from_numpy(_stack(part, "keypoint_score", V, None, file, max_persons))
                 if all(a.get("keypoint_score") is not None for a in part)
                 else (x != 0).any(-1).to(torch.float32))  # no scores: present keypoints count as certain
        keep = tr.select_persons(x, max_persons)
        x = tr.take_persons(x, keep, max_persons)
        if two_d:
            s = tr.take_persons(s, keep, max_persons)
        if normalize:
            if two_d:
                x = tr.normalize_2d(x, s, _img_shapes(part, img_shape, file))
            else:
                x = tr.normalize_3d(x, layout, **norm3d)
        L = tr.valid_length(x)
        x_out[rows] = tr.resize_time(x, num_frames, start=0, length=L.clamp_min(1))
        if two_d:
            s_out[rows] = tr.resize_time(s[..., None], num_frames, 0, L.clamp_min(1))[..., 0]
        len_out[rows] = L
    return x_out, s_out, len_out


def load_dataset(sources: Mapping[str, object], split: str | None = None, num_frames: int = 64,
                 max_persons: int = 2, normalize: bool = True, drop_unpaired: bool = True,
                 norm3d: Mapping | None = None, img_shape=None, chunk_size: int = 1024) -> ArrayDataset:
    """Build an ``ArrayDataset`` from PYSKL sources paired by ``frame_dir``.

    sources:     ``{name: PYSKL dict or path}``; a path is read with ``hetskel.data.pyskl.load_pyskl``.
                 The layout of a source is its dict's ``"layout"`` key, else ``name`` (so
                 ``{"ntu25": ..., "coco17": ...}`` or ``{"J": d3 with layout "ntu25", ...}``).
    split:       split name applied to every source (``None``: all annotations).
    num_frames:  each clip's valid frames are linearly resampled to this many (per source).
    max_persons: person axis padded with zeros or truncated to the most energetic persons.
    normalize:   3D sources: ``transforms.normalize_3d(**norm3d)`` (PYSKL by default); 2D sources:
                 ``transforms.normalize_2d`` by ``img_shape`` with keypoints of score <= 0 zeroed.
    drop_unpaired: drop clips missing from some source; False raises ``DataError`` instead.
    img_shape:   ``(h, w)`` to assume for 2D clips without ``img_shape`` (default: error).
    Labels must agree across sources. Row order is the first source's (split) order.
    """
    if not sources:
        raise DataError("load_dataset needs at least one source")
    if num_frames < 1 or max_persons < 1:
        raise ValueError(f"num_frames and max_persons must be >= 1, got {num_frames}, {max_persons}")
    datas, files, layouts, per_source = {}, {}, {}, {}
    for name, src in sources.items():
        data, files[name] = _load_source(name, src)
        lay_name = data.get("layout") or name
        try:
            layouts[name] = get_layout(lay_name).name
        except LayoutError:
            raise DataError(f"source {name!r} has no 'layout' key and {lay_name!r} is not a known layout; "
                            f"set data['layout'] or use a layout name as the key", file=files[name]) from None
        datas[name] = data
        per_source[name] = _annotations(data, split, files[name])
    frame_dirs, anns = _pair(per_source, files, drop_unpaired)
    labels = _labels(anns, frame_dirs, files)
    x, score, lengths = {}, {}, {}
    for name in anns:
        xs, ss, ls = _build_source(anns[name], get_layout(layouts[name]), num_frames, max_persons, normalize,
                                   dict(norm3d or {}), img_shape, chunk_size, files[name])
        x[name], lengths[name] = xs, ls
        if ss is not None:
            score[name] = ss
    class_names = next((list(d["class_names"]) for d in datas.values() if d.get("class_names") is not None), None)
    if class_names is not None and labels.size and labels.max() >= len(class_names):
        raise DataError(f"label {labels.max()} is out of range for {len(class_names)} class_names", field="label")
    return ArrayDataset(x=x, labels=torch.from_numpy(labels), frame_dirs=frame_dirs, layouts=layouts, score=score,
                        class_names=class_names, lengths=lengths)
