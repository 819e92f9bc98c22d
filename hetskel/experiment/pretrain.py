"""One experiment description -> data, pretraining (1 process or torchrun), evaluation.

    >>> from hetskel.experiment import PretrainSpec, load_data, pretrain, load_pretrained, evaluate_pretrained
    >>> spec = PretrainSpec(preset="small", epochs=20)                 # SynHet, J+C+S, x-sub
    >>> run = pretrain(spec, "runs/pre/jcs")                           # config.json, metrics.jsonl, latest.pt
    >>> pretrainer, spec = load_pretrained("runs/pre/jcs")
    >>> train_ds, val_ds = load_data(spec)
    >>> res = evaluate_pretrained(pretrainer, train_ds, val_ds, probe_epochs=150)
    >>> res["linear_top1"], res["linear_top1_random_init"], res["knn_top1"], res["semi_1pct_mean"]

A run folder is a ``hetskel.train`` run whose ``config.json`` records the builder
``hetskel.experiment.pretrain:build_from_spec`` with the resolved spec as its argument, and
``extra.semantic_table``, where the frozen word table of S came from (``"random-init:..."`` means
NOT CLIP: a seeded random text tower, see ``hetskel.hetero.semantic``). That is all
``load_pretrained`` needs, so runs made in a notebook, by ``python -m hetskel.train`` or by torchrun
load the same way, and a run started one way resumes the other way.

The description itself (``PretrainSpec``, the sizes of its presets, the CI size ``SMOKE`` /
``smoke_spec``) lives in ``hetskel.experiment.spec``; every name of it is re-exported here.

The evaluation protocols (``evaluate_pretrained``) and transfer to other datasets and layouts live
in ``hetskel.eval.transfer``; ``evaluate_pretrained`` & co. can be imported from here as well.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hetskel.data.batches import ArrayDataset, load_dataset
from hetskel.data.errors import DataError
from hetskel.data.splits import carve_validation, validation_names
from hetskel.eval.transfer import pretrained_layouts
from hetskel.experiment.run_store import (
    DATA_DIR,
    fresh_for_data,
    register_stored_layouts,
    relocate,
    spec_layouts,
    store_in_memory_data,
    store_lifter,
)
from hetskel.experiment.spec import CENTER_3D, PretrainSpec
from hetskel.hetero.lifter import spine_layout
from hetskel.hetero.lifter_train import load_lifter
from hetskel.hetero.pipeline import HeteroProcessor
from hetskel.io import load_checkpoint, make_run_dir, save_json
from hetskel.layouts import get_layout, list_layouts
from hetskel.model.encoder import UnifiedEncoder
from hetskel.model.objective import ClassicModalities, Pretrainer
from hetskel.train.config import register_builder
from hetskel.train.launch import launch_torchrun, resolve_devices, torchrun_command  # noqa: F401 (torchrun_command: API)
from hetskel.train.loop import train
from hetskel.train.state import read_run
from hetskel.viz import curves
from hetskel.viz.curves import Curve, Panel

BUILDER = "hetskel.experiment.pretrain:build_from_spec"


# ---------------------------------------------------------------------------------------------
# data
def _read_sources(spec: PretrainSpec) -> dict[str, dict]:
    """``{layout: PYSKL dict}`` of the sources the modalities use (with the carved validation
    split when ``spec.validation`` > 0)."""
    return _carve(spec, _read_source_files(spec))


def _carve(spec: PretrainSpec, sources: dict[str, dict]) -> dict[str, dict]:
    """Every source gets the same ``<train>_fit`` / ``<train>_validation`` clips: carved once from
    the first source (paired sources share clip names) with ``data_seed``."""
    if spec.validation <= 0 or not sources:
        return sources
    train = spec.data_split_names()[0]
    key = sorted(sources)[0]
    first, path = sources[key], spec.paths.get(key)
    carved = carve_validation(first.get("split", {}), first["annotations"], train, spec.validation,
                              seed=spec.data_seed, where=str(path) if isinstance(path, (str, Path)) else None)
    new = {k: carved[k] for k in validation_names(train)}
    return {lay: {**d, "split": {**d.get("split", {}), **new}} for lay, d in sources.items()}


def _read_source_files(spec: PretrainSpec) -> dict[str, dict]:
    needed = set(spec.plan(spec.source_layouts()).values())
    if spec.dataset == "synhet":
        from hetskel.data.synhet import generate

        d3, d2 = generate(spec.synhet_config())
        return {k: v for k, v in (("ntu25", d3), ("coco17", d2)) if k in needed}
    from hetskel.data.pyskl import load_pyskl

    out = {}
    for lay, path in spec.paths.items():
        if lay in needed:
            if isinstance(path, Mapping):  # an in-memory PYSKL dict (hetskel.from_arrays, load_pyskl)
                if "annotations" not in path:
                    raise DataError(f"paths[{lay!r}] is a dict without 'annotations': not a PYSKL dict "
                                    f"(make one with hetskel.from_arrays)", field="paths")
                data, where = path, f"<paths[{lay!r}]>"  # validated on a copy by load_dataset
            elif isinstance(path, (str, Path)):
                data, where = load_pyskl(path), path
            else:
                raise DataError(f"paths[{lay!r}] must be a PYSKL file or a PYSKL dict (hetskel.from_arrays), "
                                f"got {type(path).__name__}", field="paths")
            if data.get("layout") not in (None, lay):
                raise DataError(f"holds layout {data['layout']!r} but was given as paths[{lay!r}]", file=where)
            out[lay] = {**data, "layout": lay}
    return out


def load_data(spec: PretrainSpec, which: Sequence[str] = ("train", "val")) -> tuple[ArrayDataset, ...]:
    """``(train_ds, val_ds)`` (or the datasets named in ``which``): ``ArrayDataset`` s keyed by layout
    (``{"ntu25": (N, M, T, 25, 3), "coco17": (N, M, T, 17, 2)}``), T = the encoder's frames, with
    ``class_names``. Only the sources the modalities need are loaded."""
    spec = spec.resolved()
    sources = _read_sources(spec)
    names = dict(zip(("train", "val"), spec.split_names()))
    return tuple(load_dataset(sources, split=names[w], num_frames=spec.num_frames, max_persons=spec.max_persons,
                              norm3d={"variant": CENTER_3D[spec.center_3d]})
                 for w in which)


# ---------------------------------------------------------------------------------------------
# model
def build_pretrainer(spec: PretrainSpec, train_ds: ArrayDataset | None = None, text_table=None) -> Pretrainer:
    """The objective of ``spec``: processor + ``UnifiedEncoder`` + UmURL losses.

    Initial weights depend only on ``spec.seed`` (built under ``torch.manual_seed`` in a forked RNG),
    so the random-init baseline and every torchrun rank get the same network. ``text_table``: the
    S word table to use instead of resolving ``spec.text_source`` (``load_pretrained`` passes the
    checkpoint's). The spec is kept as ``pretrainer.spec``.
    """
    spec = spec.resolved()
    layouts = spec.source_layouts()
    if train_ds is not None and set(train_ds.layouts.values()) != set(spec.plan(layouts).values()):
        raise ValueError(f"the dataset has sources {train_ds.layouts}; the spec needs {spec.plan(layouts)}")
    plan, mods = spec.plan(layouts), spec.modality_list
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.classic:
            proc = ClassicModalities(plan["J"])
            channels, joints = {k: 3 for k in mods}, get_layout(plan["J"]).num_joints
        else:
            text_kw = {"source": spec.text_source}
            if spec.text_cache != "default":
                text_kw["cache_path"] = spec.text_cache or None
            table = text_table if text_table is not None else (spec.text_table or None)
            proc = HeteroProcessor(plan, prompt_mode=spec.prompt_mode, use_lifter=spec.use_lifter,
                                   semantic=spec.semantic if "S" in mods else None, lifter_width=spec.lifter_width,
                                   keep_observed=spec.keep_observed, smooth_frames=spec.smooth_frames,
                                   equal_bones=spec.equal_bones,
                                   semantic_from=spec.semantic_from,
                                   text_table=table, frame="pyskl", text_kw=text_kw)
            channels, joints = {k: v for k, v in proc.modality_channels().items() if k in mods}, proc.layout.num_joints
            if spec.lifter_init:
                _init_lifters(proc, spec.lifter_init)
        enc = UnifiedEncoder(spec.encoder_config(), channels, joints)
        obj = Pretrainer(enc, mods, proc, lambda_=spec.lambda_, augment=spec.augment_config(), seed=spec.seed,
                         objective=spec.pretrain_objective, intra_view_weight=spec.pretrain_intra_view_weight,
                         modality_dropout=spec.modality_dropout, reconstruction_weight=spec.reconstruction_weight)
    obj.spec = spec
    return obj


def _init_lifters(proc: HeteroProcessor, path) -> None:
    """Every 2D source's lifter becomes the checkpoint's (``load_lifter``, weights only), in training
    mode; a lifter of other joints is refused, naming the file."""
    if not proc.lifters:
        raise DataError("lifter_init is set but no modality lifts a 2D source (use_lifter off, or no 2D data)",
                        file=path, field="lifter_init")
    loaded, ck = load_lifter(path)  # read once; every 2D source gets its own copy
    for name, built in list(proc.lifters.items()):
        model = copy.deepcopy(loaded)
        want = {k: built.init_args[k] for k in ("in_joints", "out_joints", "in_channels", "out_channels", "root_index")}
        got = {k: model.init_args[k] for k in want}
        trained_on = (ck.get("config") or {}).get("layout_2d")
        if trained_on and trained_on in list_layouts() and \
                spine_layout(trained_on).joints != proc.unified_layouts[name].joints:
            raise DataError(f"this lifter was trained on {trained_on!r} joints; the source is "
                            f"{proc.layouts[name].name!r}", file=path, field="lifter_init")
        if got != want:
            raise DataError(f"this lifter maps {got['in_joints']} joints to {got['out_joints']} (root "
                            f"{got['root_index']}); the {proc.layouts[name].name} source needs {want['in_joints']} "
                            f"-> {want['out_joints']} (root {want['root_index']})", file=path, field="lifter_init")
        proc.lifters[name] = model.train()


def table_origin(pretrainer: Pretrainer) -> str:
    """Where S's word table came from, independent of caching: ``"clip:ViT-B-32/openai"``,
    ``"wordllama:l2_supercat/256"``,
    ``"random-init:ViT-B-32/seed0"`` (NOT CLIP), ``"user"``, ``"none (numeric)"`` or ``"none"``."""
    proc = pretrainer.processor
    src = getattr(proc, "text_source", "none")
    if not src.startswith("cache:"):
        return src
    if src.endswith("]") and "[" in src:
        return src[src.rindex("[") + 1:-1]
    try:  # a cache of real weights: its file says which
        return str(load_checkpoint(src[len("cache:"):]).get("origin", "cache"))
    except (FileNotFoundError, ValueError, AttributeError):
        return "cache"


def build_from_spec(spec: Mapping, layouts: Mapping | None = None) -> tuple[Pretrainer, ArrayDataset]:
    """The ``hetskel.train`` builder (``python -m hetskel.train`` / torchrun): ``(objective, train set)``.
    ``layouts``: the custom layouts the run stored (``spec_layouts``), registered first."""
    register_stored_layouts(layouts)
    s = PretrainSpec.from_dict(spec)
    (train_ds,) = load_data(s, which=("train",))
    return build_pretrainer(s, train_ds), train_ds


register_builder(BUILDER, build_from_spec)


# ---------------------------------------------------------------------------------------------
# pretraining
@dataclass
class PretrainRun:
    """What a pretraining left on disk, read back with ``hetskel.train.read_run``."""

    run_dir: Path
    spec: PretrainSpec
    semantic_table: str         # origin of S's word table ("random-init:..." = NOT CLIP)
    final: dict                 # last epoch record (loss terms: ``loss_terms(final)``)
    epochs: list                # every epoch record
    steps: list                 # every step record
    wall_time: float            # seconds, all sessions
    samples_per_s: float        # of the last session
    world_size: int
    checkpoint: Path | None
    class_names: list | None = None  # label names of the training data, when it had them


def run_folder(run_dir, name: str) -> Path:
    """``""`` -> a new ``runs/<name>/<time>`` folder; else the folder (relative to the project root),
    left for ``hetskel.train`` to check: the same run resumes (a finished one returns at once), a
    different run is refused. ``hetskel.io.make_run_dir(run_dir, name, on_exists="check")``."""
    return make_run_dir(run_dir, name, on_exists="check")


def run_description(spec: PretrainSpec, run_dir, semantic_table: str, progress: bool = False,
                    class_names: Sequence[str] | None = None) -> dict:
    """The JSON ``python -m hetskel.train`` reads: this module's builder with the resolved spec and
    the custom layouts it uses (``spec_layouts``); ``extra`` keeps the label names. ``paths`` must be
    files here (``store_in_memory_data`` writes in-memory datasets)."""
    if any(isinstance(v, Mapping) for v in spec.paths.values()):
        raise ValueError("run_description: in-memory datasets in spec.paths; write them with "
                         "store_in_memory_data(spec, run_dir) first")
    spec = spec.resolved()
    args = {"spec": spec.to_dict()}
    if spec_layouts(spec):
        args["layouts"] = spec_layouts(spec)
    extra = {"semantic_table": semantic_table}
    if class_names:
        extra["class_names"] = [str(c) for c in class_names]
    return {"builder": BUILDER, "builder_args": args,
            "train": spec.train_config(progress).to_dict(), "run_dir": str(run_dir),
            "extra": extra, "name": "pretrain"}


def pretrain(spec: PretrainSpec, run_dir, devices=1, progress: bool = False, overwrite: bool = False,
             timeout: float | None = None) -> PretrainRun:
    """Pretrain ``spec`` into ``run_dir`` (config.json, metrics.jsonl, latest.pt, epoch_XXXX.pt).

    ``devices`` 1: in this process (``hetskel.train.train``). N > 1 (or ``"auto"`` with several
    GPUs): the run description is written to a temporary ``run.json`` and ``torchrun --standalone
    --nproc_per_node N -m hetskel.train --config run.json`` runs it (gloo on CPU, NCCL on GPUs);
    a copy is kept as ``run_dir/torchrun.json``. Either way the run is read back from disk.
    """
    run_dir = run_folder(run_dir, "pretrain")
    lifter_to_store = bool(spec.lifter_init) and \
        Path(spec.lifter_init).resolve().parent != (Path(run_dir) / DATA_DIR).resolve()
    if any(isinstance(v, Mapping) for v in spec.paths.values()) or lifter_to_store:
        # in-memory datasets and the initial lifter are written into the run folder first (so resume
        # and reload work); a fresh folder then holds only them, which hetskel.train may take over
        fresh = fresh_for_data(Path(run_dir))
        if not fresh and not overwrite and not (Path(run_dir) / "config.json").exists():
            from hetskel.io import RunDirExists

            raise RunDirExists(f"run folder {run_dir} already exists and is not empty; choose a new run_dir "
                               f"or pass overwrite=True to replace its files")
        if fresh and not (Path(run_dir) / DATA_DIR).exists():
            run_dir = make_run_dir(run_dir, "pretrain")  # the kit's folder (overwrite may reach it)
        spec = store_in_memory_data(spec, run_dir)
        if lifter_to_store:
            spec = store_lifter(spec, run_dir)
        overwrite = overwrite or fresh
    spec = spec.resolved()
    nproc = resolve_devices(devices)
    if nproc == 1:
        (train_ds,) = load_data(spec, which=("train",))
        obj = build_pretrainer(spec, train_ds)
        desc = run_description(spec, run_dir, table_origin(obj), progress, train_ds.class_names)
        train(obj, train_ds, spec.train_config(progress), run_dir=run_dir, overwrite=overwrite,
              extra_config={"builder": desc["builder"], "builder_args": desc["builder_args"], **desc["extra"]},
              name="pretrain")
    else:  # the table is resolved here once, so the ranks find it in the cache
        origin = table_origin(build_pretrainer(spec))
        desc = run_description(spec, run_dir, origin, progress, _class_names(spec))
        launch_torchrun(desc, nproc, overwrite, progress, timeout)
        save_json(run_dir / "torchrun.json", desc)
    return read_pretrain_run(run_dir)


def _class_names(spec: PretrainSpec) -> list[str] | None:
    try:
        return next((list(d["class_names"]) for d in _read_sources(spec).values() if d.get("class_names")), None)
    except (OSError, DataError, ValueError):
        return None


def read_pretrain_run(run_dir) -> PretrainRun:
    """The run folder's spec, records and checkpoint; the custom layouts it stored are registered
    (``register_stored_layouts``), so this works in a process that never defined them."""
    info = read_run(run_dir)
    extra = info.config.get("extra", {})
    if extra.get("builder") != BUILDER:
        raise ValueError(f"{info.run_dir} is not a hetskel.experiment pretraining run "
                         f"(builder {extra.get('builder')!r}, expected {BUILDER!r})")
    register_stored_layouts(extra["builder_args"].get("layouts"))
    extra = {**extra, "builder_args": {**extra["builder_args"],
                                       "spec": relocate(extra["builder_args"]["spec"], info.run_dir)}}
    done = [e for e in info.events if e.get("event") == "done"]
    last = info.epochs[-1] if info.epochs else (info.steps[-1] if info.steps else {})
    return PretrainRun(run_dir=info.run_dir, spec=PretrainSpec.from_dict(extra["builder_args"]["spec"]),
                       semantic_table=str(extra.get("semantic_table", "")), final=last, epochs=info.epochs,
                       steps=info.steps, wall_time=float(last.get("elapsed", 0.0)),
                       samples_per_s=float(done[-1]["samples_per_s"]) if done else float("nan"),
                       world_size=int(info.config.get("meta", {}).get("world_size", 1)), checkpoint=info.latest,
                       class_names=extra.get("class_names"))


def load_pretrained(pretrain_dir, checkpoint: str | None = None, device="auto") -> tuple[Pretrainer, PretrainSpec]:
    """``(pretrainer in eval mode, spec)`` from a run folder's ``latest.pt`` (or ``checkpoint``, a
    file), loaded with ``weights_only=True``; the S table comes from the checkpoint, so no text
    tower is built, and no data is read. Works in a fresh process on any run folder
    ``pretrain`` wrote: custom layouts are stored in the run and registered here, in-memory datasets
    were written to ``run_dir/data/``. The label names are ``pretrainer.class_names`` (None when the
    data had none). ``device`` ``"auto"``: CUDA when available."""
    run = read_pretrain_run(pretrain_dir)
    path = Path(checkpoint) if checkpoint else run.checkpoint
    if path is None:
        raise FileNotFoundError(f"{run.run_dir} has no latest.pt (the run never reached a checkpoint)")
    state = load_checkpoint(path)["objective"]
    obj = build_pretrainer(run.spec, text_table=state.get("processor.semantic.table"))
    obj.load_state_dict(state)
    obj.class_names = run.class_names
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return obj.to(device).eval(), run.spec


# ---------------------------------------------------------------------------------------------
# reporting (notebook 04; the evaluation tables are in hetskel.eval.transfer)
def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def network_summary(pretrainer: Pretrainer) -> dict:
    """The network as plain data for ``metrics.json``: modality channels, joints, persons, frames,
    raw sources, encoder sizes, parameter counts (encoder, processor and each processor part)."""
    enc, proc = pretrainer.encoder, pretrainer.processor
    return {"modality_channels": {k: enc.modality_channels[k] for k in pretrainer.modalities},
            "num_joints": enc.num_joints, "max_persons": enc.config.max_persons, "num_frames": enc.config.num_frames,
            "sources": pretrained_layouts(pretrainer),
            "encoder": {k: getattr(enc.config, k) for k in ("d_model", "num_layers", "num_heads", "ff_dim")}
            | {"proj_dims": list(enc.config.proj_dims), "out_dim": enc.out_dim},
            "parameters": {"encoder": count_parameters(enc), "processor": count_parameters(proc)}
            | {k: count_parameters(m) for k, m in proc.named_children()}}


def describe(pretrainer: Pretrainer) -> str:
    """``network_summary`` as four lines of text (all exact)."""
    s = network_summary(pretrainer)
    e, counts = s["encoder"], dict(s["parameters"])
    params = f"parameters: encoder {counts.pop('encoder'):,}, processor {counts.pop('processor'):,}"
    parts = {k: v for k, v in counts.items() if v}
    if parts:
        params += " (" + ", ".join(f"{k} {v:,}" for k, v in parts.items()) + ")"
    return "\n".join([
        f"modalities: {s['modality_channels']} on {s['num_joints']} joints, {s['max_persons']} persons, "
        f"{s['num_frames']} frames",
        f"sources: {s['sources']}",
        f"encoder: d_model={e['d_model']}, layers={e['num_layers']}, heads={e['num_heads']}, ff={e['ff_dim']}, "
        f"projector {tuple(e['proj_dims'])}, features {e['out_dim']}-d",
        params])


def table_banner(origin: str) -> str:
    """One line for a real table, a loud box for the random-init fallback."""
    if origin.startswith("random-init"):
        bar = "!" * 78
        return (f"{bar}\n!! semantic table: {origin}\n!! NOT CLIP: a seeded, randomly initialised text tower. "
                f"S sees distinct word codes\n!! without language knowledge. Pass text_table=<CLIP table> "
                f"for the paper's setting.\n{bar}")
    return f"semantic table: {origin}"


LOSS_TERMS_SKIP = ("epoch", "step", "global_step", "lr", "elapsed", "samples_per_s", "kind")


def loss_terms(record: Mapping) -> dict:
    """The loss terms of a metrics record (``loss``, ``intra``, ``inter``, ``vc``, ``rec``, ...)."""
    return {k: float(v) for k, v in record.items() if k not in LOSS_TERMS_SKIP and isinstance(v, (int, float))}


def loss_figure(run: PretrainRun):
    """Loss terms against epochs: logged windows (lines) and epoch means (dots), one panel per term
    (``hetskel.viz.curves.loss_figure``)."""
    steps, epochs = [r["epoch"] for r in run.steps], [r["epoch"] for r in run.epochs]
    panels = [Panel([Curve([r[k] for r in run.steps], x=steps, color="tab:blue", lw=1),
                     Curve([r[k] for r in run.epochs], x=epochs, color="tab:red", style="o")], title=k)
              for k in loss_terms(run.final)]
    return curves.loss_figure(panels, title=f"pretraining {','.join(run.spec.modality_list)} on "
                                            f"{run.spec.dataset} ({run.spec.preset})")
