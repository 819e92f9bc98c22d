"""The benchmark for any skeleton dataset: one PYSKL file (or a paired 3D + 2D pair of files), any
layout (a name or a layout file), any split names, any number of persons, several seeds.

    python -m hetskel.benchmark DATA.pkl --layout L [--data2d FILE --layout2d L2] \\
        --train-split NAME --test-split NAME [--persons M] [--preset P] [--epochs N] \\
        [--probe-epochs N] [--seeds S ...] --out DIR
    python -m hetskel.benchmark utd --out runs/utd          # a dataset preset: UTD-MHAD from ../shared/data
    python -m hetskel.benchmark msr --out runs/msr          # MSR Action3D (real-world 3D, CVPR'12 files)
    python -m hetskel.benchmark msr_paired --modalities J,C --out runs/msr_jc   # its 3D + screen 2D
    python -m hetskel.benchmark ../shared/data/pyskl_coco17_custom16/ntu60_hrnet.pkl --layout coco17 \\
        --train-split xsub_train --test-split xsub_test --out runs/coco     # 2D only: modalities C,S

``DATA`` is a PYSKL file or a dataset preset name (``DATASET_PRESETS``: ``utd``, ``msr``, ``msr_paired``; their
layout, splits and persons are filled in, the data is read from ``--shared-data``, default
``../shared/data``). ``--layout`` / ``--layout2d`` take a registered layout name or a layout file
(JSON or YAML: ``hetskel.layouts.load_layout``). ``--preset`` is the encoder size (tiny, small,
paper). Modalities default to what the data allows: J,S (3D only), C,S (2D only), J,C,S (both).
``--set FIELD=VALUE ...`` sets any other ``PretrainSpec`` field (``validation=0.25`` evaluates on a
split carved from the training subjects instead of the test split); ``--features concat`` probes
the fused and every single-modality stream together.

Per seed, the same rows as ``hetskel.bench.realdata`` (same encoder config and seed):
``ssl_linear`` / ``ssl_knn`` (self-supervised pretraining on the train split without labels, then a
linear probe and 1-NN on frozen features), ``random_linear`` / ``random_knn`` (the same on the
run's exact initial weights), ``supervised`` (that untrained network + a linear head trained end
to end). Every number is the final epoch's test top-1 (%). ``DIR/results.json`` holds them per
seed and as mean/std, with the pretraining run folders (``DIR/pretrain_seed<S>``), each reloadable
with ``hetskel.load_pretrained``; ``DIR/results.md`` the printed table.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from hetskel.bench.realdata import (
    DATASETS,
    FULL,
    load_source,
    shared_folder,
    train_supervised,
)
from hetskel.config import parse_assignments
from hetskel.data.arrays import absent_outside_image, load_msr_action3d
from hetskel.data.pyskl import load_pyskl, save_pyskl
from hetskel.eval.pretrained import Classifier, probe
from hetskel.experiment.pretrain import (
    build_pretrainer,
    load_data,
    load_pretrained,
    pretrain,
    table_origin,
)
from hetskel.experiment.spec import PretrainSpec
from hetskel.io import make_run_dir, save_json
from hetskel.layouts import get_layout, image_twin, layout_arg

METRICS = ("ssl_linear", "ssl_knn", "random_linear", "random_knn", "supervised")
LABELS = {"ssl_linear": "self-supervised + linear probe", "ssl_knn": "self-supervised + 1-NN",
          "random_linear": "random-init + linear probe", "random_knn": "random-init + 1-NN",
          "supervised": "supervised from scratch"}

# name -> the dataset and its protocol (cross-subject: odd subjects train, even subjects test)
DATASET_PRESETS: dict[str, dict] = {
    name: {"folder": folder, "layout": layout, "train_split": "xsub_train", "test_split": "xsub_val",
           "persons": 1, "classes": classes}
    for name, (folder, _reader, layout, classes) in DATASETS.items()}


def read_msr_paired(folder) -> tuple[dict, dict]:
    """MSR Action3D as two sources of the same 557 sequences: real-world 3D (``kinect20_msr``) and
    the depth camera's screen coordinates (``kinect20_msr_2d``, 320x240 pixels; the recorder's
    overflowed joints made absent)."""
    world = load_msr_action3d(folder, coords="world")
    screen = load_msr_action3d(folder, coords="screen")
    absent_outside_image(screen)
    screen["layout"] = image_twin(world["layout"]).name
    return world, screen


# paired 3D + 2D presets: the reader gives (3D dict, 2D dict)
DATASET_PRESETS["msr_paired"] = {**DATASET_PRESETS["msr"], "layout2d": "kinect20_msr_2d", "read": read_msr_paired}
# training sizes: "full" is hetskel.bench.realdata's benchmark, "tiny" the test size
SIZES = {"full": dict(FULL), "tiny": {"preset": "tiny", "epochs": 1, "probe_epochs": 2, "batch_size": 16, "lr": 1e-3}}


def default_modalities(layout: str, layout2d: str | None) -> str:
    dims = {get_layout(layout).dims} | ({get_layout(layout2d).dims} if layout2d else set())
    return "J,C,S" if dims == {2, 3} else ("J,S" if dims == {3} else "C,S")


def make_spec(paths: Mapping, train_split: str, test_split: str, persons: int, preset: str, epochs: int,
              batch_size: int, lr: float, seed: int, modalities: str, num_frames: int = 32,
              text_source: str = "auto", device: str = "cpu", overrides: Mapping | None = None) -> PretrainSpec:
    """The pretraining spec of one seed; ``overrides``: any other ``PretrainSpec`` fields (``--set``)."""
    base = dict(dataset="pyskl", paths=dict(paths), splits=(train_split, test_split), num_frames=num_frames,
                max_persons=persons, modalities=modalities, preset=preset, epochs=epochs, batch_size=batch_size,
                lr=lr, seed=seed, device=device, amp="off", save_every=0, text_source=text_source,
                lifter_width=64 if preset == "tiny" else None)
    return PretrainSpec.from_dict({**base, **dict(overrides or {})}).resolved()


def one_seed(spec: PretrainSpec, run_dir: Path, probe_epochs: int, log=print, features: str | None = None) -> dict:
    """The five numbers of one seed, and the run folder. ``features``: the probes' features
    (``hetskel.eval.pretrained.Features``: ``"fused"`` or ``"concat"``; None: the spec's recipe's)."""
    features = features or spec.features
    seed, t0 = spec.seed, time.perf_counter()
    train_ds, test_ds = load_data(spec)
    C = len(train_ds.class_names or []) or max(train_ds.num_classes, test_ds.num_classes)
    t = time.perf_counter()
    run = pretrain(spec, run_dir)
    ssl_s = time.perf_counter() - t
    pre = build_pretrainer(spec, train_ds)  # the run's exact initial weights
    trained, _ = load_pretrained(run.run_dir, device="cpu" if spec.device == "cpu" else "auto")
    dev = next(trained.parameters()).device
    ssl = probe(trained, train_ds, test_ds, C, probe_epochs, seed=seed, device=dev, stream=features)
    rnd = probe(pre.to(dev), train_ds, test_ds, C, probe_epochs, seed=seed, device=dev, stream=features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = Classifier(copy.deepcopy(pre), C)
    t = time.perf_counter()
    sup = train_supervised(clf, train_ds, test_ds, spec.epochs, lr=spec.lr, batch_size=spec.batch_size, seed=seed,
                           device=dev)
    out = {"ssl_linear": ssl["top1_final"], "ssl_knn": ssl["knn_top1"], "random_linear": rnd["top1_final"],
           "random_knn": rnd["knn_top1"], "supervised": sup["top1_final"], "run_dir": str(run.run_dir),
           "final_loss": run.final.get("loss"), "ssl_seconds": ssl_s, "supervised_seconds": time.perf_counter() - t,
           "seconds": time.perf_counter() - t0, "semantic_table": table_origin(pre),
           "num_train": len(train_ds), "num_test": len(test_ds), "num_classes": C, "features": features,
           "recipe": spec.recipe}
    log(f"[seed {seed}] " + ", ".join(f"{k} {out[k]:.1f}" for k in METRICS) + f" ({out['seconds']:.0f} s)")
    return out


def summary(per_seed: Mapping[str, Mapping]) -> dict:
    """``{metric: {"mean", "std", "n"}}`` over seeds (std 0 for one seed)."""
    out = {}
    for k in METRICS:
        vals = [float(r[k]) for r in per_seed.values()]
        out[k] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                  "n": len(vals)}
    return out


def markdown_table(report: Mapping) -> str:
    seeds = list(report["seeds"])
    lines = ["| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
             "|---|" + "---:|" * (len(seeds) + 2)]
    for k in METRICS:
        cells = [f"{report['seeds'][s][k]:.1f}" for s in seeds]
        m = report["summary"][k]
        lines.append(f"| {LABELS[k]} | " + " | ".join(cells) + f" | {m['mean']:.1f} | {m['std']:.1f} |")
    return "\n".join(lines)


def run_benchmark(data, layout: str | None = None, out=None, data2d=None, layout2d: str | None = None,
                  train_split: str | None = None, test_split: str | None = None, persons: int | None = None,
                  preset: str | None = None, epochs: int | None = None, probe_epochs: int | None = None,
                  seeds: Sequence[int] = (0,), modalities: str | None = None, size: str = "full",
                  batch_size: int | None = None, lr: float | None = None, num_frames: int = 32,
                  text_source: str = "auto", device: str = "cpu", shared_data=None, command: str = "",
                  overrides: Mapping | None = None, features: str | None = None, log=print) -> dict:
    """Benchmark ``data`` (a PYSKL file, an in-memory PYSKL dict, or a ``DATASET_PRESETS`` name);
    writes ``results.json`` / ``results.md`` to ``out`` and returns the report (see the module doc)."""
    t0 = time.perf_counter()
    out = make_run_dir(out, "benchmark")
    name = None
    if isinstance(data, str) and data in DATASET_PRESETS:
        name, p = data, DATASET_PRESETS[data]
        layout, train_split = layout or p["layout"], train_split or p["train_split"]
        test_split, persons = test_split or p["test_split"], persons or p["persons"]
        # the preset's data, read from the raw files once and kept with the results
        if "read" in p:  # a paired 3D + 2D preset
            d3, d2 = p["read"](shared_folder(shared_data) / p["folder"])
            data = str(save_pyskl(d3, out / "data" / f"{p['folder']}_3d.pkl"))
            data2d, layout2d = str(save_pyskl(d2, out / "data" / f"{p['folder']}_2d.pkl")), p["layout2d"]
        else:
            data = str(save_pyskl(load_source(name, shared_data), out / "data" / f"{p['folder']}.pkl"))
    if layout is None or train_split is None or test_split is None:
        raise ValueError("give --layout, --train-split and --test-split (or a dataset preset: "
                         f"{sorted(DATASET_PRESETS)})")
    layout = layout_arg(layout)
    paths = {layout: data}
    if data2d is not None:
        if not layout2d:
            raise ValueError("--data2d needs --layout2d")
        layout2d = layout_arg(layout2d)
        paths[layout2d] = data2d
    if persons is None:  # the data's own largest person count
        persons = max(int(a["keypoint"].shape[0]) for d in paths.values()
                      for a in (d if isinstance(d, Mapping) else load_pyskl(d))["annotations"])
    sz = dict(SIZES[size])
    for k, v in (("preset", preset), ("epochs", epochs), ("probe_epochs", probe_epochs), ("batch_size", batch_size),
                 ("lr", lr)):
        if v is not None:
            sz[k] = v
    modalities = modalities or default_modalities(layout, layout2d)
    log(f"benchmark: {name or data} layout {layout}" + (f" + {layout2d}" if layout2d else "") +
        f", splits {train_split}/{test_split}, {persons} person(s), modalities {modalities}, preset {sz['preset']}, "
        f"{sz['epochs']} epochs, probe {sz['probe_epochs']}, seeds {list(seeds)}")
    per_seed = {}
    for seed in seeds:
        spec = make_spec(paths, train_split, test_split, persons, sz["preset"], sz["epochs"], sz["batch_size"],
                         sz["lr"], seed, modalities, num_frames, text_source, device, overrides)
        per_seed[str(seed)] = one_seed(spec, out / f"pretrain_seed{seed}", sz["probe_epochs"], log, features)
    report = {"command": command, "dataset": name or (str(data) if not isinstance(data, Mapping) else "<in memory>"),
              "layout": layout, "layout2d": layout2d, "train_split": train_split, "test_split": test_split,
              "persons": persons, "modalities": modalities, "settings": {**sz, "num_frames": num_frames,
                                                                         "size": size, "device": device,
                                                                         "overrides": dict(overrides or {}),
                                                                         "features": features or "the recipe's"},
              "torch_threads": torch.get_num_threads(), "seeds": per_seed, "summary": summary(per_seed),
              "mean": {k: v["mean"] for k, v in summary(per_seed).items()},
              "std": {k: v["std"] for k, v in summary(per_seed).items()},
              "runs": [r["run_dir"] for r in per_seed.values()], "wall_seconds": time.perf_counter() - t0}
    report["table"] = markdown_table(report)
    save_json(out / "results.json", report)
    (out / "results.md").write_text(f"# Benchmark: {report['dataset']}\n\n`{command}`\n\nFinal-epoch test top-1 (%), "
                                    f"{train_split} -> {test_split}.\n\n{report['table']}\n")
    return {**report, "out_dir": str(out)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hetskel.benchmark", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help=f"a PYSKL file, or a dataset preset: {', '.join(sorted(DATASET_PRESETS))}")
    ap.add_argument("--layout", help="layout of DATA: a registered name or a layout file (JSON/YAML)")
    ap.add_argument("--data2d", help="a paired 2D PYSKL file (same clips)")
    ap.add_argument("--layout2d", help="layout of --data2d (name or file)")
    ap.add_argument("--train-split", help="split name to pretrain and train on")
    ap.add_argument("--test-split", help="split name to test on")
    ap.add_argument("--persons", type=int, default=None, help="persons per clip (default: the data's largest)")
    ap.add_argument("--preset", choices=("tiny", "small", "paper"), default=None,
                    help=f"encoder size (default {FULL['preset']})")
    ap.add_argument("--epochs", type=int, default=None, help=f"SSL and supervised epochs (default {FULL['epochs']})")
    ap.add_argument("--probe-epochs", type=int, default=None, help=f"linear probe epochs (default {FULL['probe_epochs']})")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--modalities", default=None, help="default: J,S (3D), C,S (2D), J,C,S (3D + 2D)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--frames", type=int, default=32, help="frames per clip T (default 32)")
    ap.add_argument("--text-source", default="auto", choices=("auto", "cache", "openclip", "wordllama", "random"),
                    help="S's word table (auto: CLIP if its weights are cached, else wordllama); 'random' = no language")
    ap.add_argument("--features", default=None, choices=("fused", "concat"),
                    help="probe features: the fused stream, or it and every modality's own stream "
                         "concatenated (default: the recipe's, concat; recipe=paper: fused)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="other PretrainSpec fields, e.g. objective=umurl+intra_view validation=0.25 "
                         "'augment={\"p_corrupt\": 0}' (JSON values where they parse as JSON)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--shared-data", default=None, help="folder of the dataset presets (default ../shared/data)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    ap.add_argument("--out", required=True, help="output folder (must not hold anything yet)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    command = "python -m hetskel.benchmark " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rep = run_benchmark(args.data, args.layout, args.out, args.data2d, args.layout2d, args.train_split, args.test_split,
                        args.persons, args.preset, args.epochs, args.probe_epochs, args.seeds, args.modalities,
                        batch_size=args.batch_size, lr=args.lr, num_frames=args.frames, text_source=args.text_source,
                        device=args.device, shared_data=args.shared_data, command=command.strip(),
                        overrides=parse_assignments(args.set), features=args.features)
    print(rep["table"])
    print(f"\nruns: {', '.join(rep['runs'])}\nwall time: {rep['wall_seconds']:.0f} s\n"
          f"written: {rep['out_dir']}/results.json, results.md")
    return 0
