"""Real-data benchmark: UTD-MHAD (27 classes) and MSR Action3D (20 classes), each pretrained and
evaluated in its own Kinect v1 layout through the custom-layout path.

    python -m hetskel.bench.realdata                       # both datasets, small preset, 30 epochs (~6-12 min on a shared CPU)
    python -m hetskel.bench.realdata --quick               # CI size (< 60 s)
    python -m hetskel.bench.realdata --datasets utd --epochs 60 --preset tiny

Per dataset (read by ``hetskel.data.arrays``: UTD-MHAD all 861 clips; MSR Action3D real-world
coordinates, the 557 files of the CVPR'12 list), split cross-subject: odd subjects train
(``xsub_train``), even subjects test (``xsub_val``). The single source is the 3D skeleton in its
own layout (``kinect20_utd`` / ``kinect20_msr``), written to a temporary PYSKL file so that the run
goes through ``PretrainSpec(dataset="pyskl", paths={layout: file})`` exactly like a user's custom
dataset. Modalities: J and S (S computed from J; C is absent since there is no 2D source), or the
classic J,M,B with ``--modalities J,M,B``. Three rows, same encoder config and seed:

``ssl``          self-supervised pretraining (UmURL objective, its augmentations) on the train
                 split without labels; then a linear probe (SGD on frozen features) and 1-NN
                 cosine retrieval (train clips as gallery), both scored on the test split;
``random_init``  the same probe and 1-NN on the untrained network (``build_pretrainer(spec)``:
                 the SSL run's exact initial weights);
``supervised``   the same untrained network + ``Linear(2d, classes)`` trained end to end on the
                 train labels (cross-entropy, Adam, no augmentation: whole clip resized to T),
                 scored on the test split.

Every number is the FINAL epoch's test top-1 (no model selection on the test split; there is no
separate validation split in these datasets). ``*_best`` (max over epochs) is stored in the JSON
for reference only: it is selected on the test set and therefore optimistic.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from hetskel.data.arrays import load_msr_action3d, load_utd_mhad
from hetskel.data.pyskl import save_pyskl
from hetskel.eval.pretrained import Classifier, probe
from hetskel.eval.supervised import accuracy, train_supervised  # noqa: F401 (re-exported: bench API)
from hetskel.experiment.pretrain import (
    build_pretrainer,
    load_data,
    load_pretrained,
    pretrain,
    table_origin,
)
from hetskel.experiment.spec import PretrainSpec
from hetskel.io import make_run_dir, save_json, shared_data_dir

# name -> (folder under shared/data, reader, layout, number of classes)
DATASETS: dict[str, tuple[str, Callable[[Path], dict], str, int]] = {
    "utd": ("utd_mhad", load_utd_mhad, "kinect20_utd", 27),
    "msr": ("msr_action3d", lambda root: load_msr_action3d(root, coords="world", files="cvpr12"), "kinect20_msr", 20),
}
SPLIT = "xsub"  # xsub_train = odd subjects, xsub_val = even subjects (hetskel.data.arrays)

# full benchmark and CI sizes; epochs are SSL pretraining = supervised training epochs
FULL = {"preset": "small", "epochs": 30, "probe_epochs": 100, "batch_size": 32, "lr": 1e-3}
QUICK = {"preset": "tiny", "epochs": 2, "probe_epochs": 10, "batch_size": 32, "lr": 1e-3}

ROWS = (("ssl", "self-supervised + linear probe"), ("random_init", "random-init encoder + linear probe"),
        ("supervised", "supervised from scratch (same encoder)"))


def load_source(name: str, shared_data: str | Path | None = None) -> dict:
    """The PYSKL dict of dataset ``name`` (``"utd"`` / ``"msr"``) from ``shared_data`` (default
    ``../shared/data``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    folder, reader, _, _ = DATASETS[name]
    return reader(shared_folder(shared_data) / folder)


def shared_folder(shared_data: str | Path | None = None) -> Path:
    """The folder of the dataset presets: ``shared_data``, else ``../shared/data``; a clear error if absent."""
    base = Path(shared_data) if shared_data else shared_data_dir()
    if base is None or not Path(base).is_dir():
        raise FileNotFoundError(f"no shared data folder ({base or '../shared/data'} is absent; pass --shared-data)")
    return Path(base)


# supervised from scratch: hetskel.eval.supervised (train_supervised, accuracy re-exported here)
# ---------------------------------------------------------------------------------------------
# one dataset
def make_spec(data_file: str | Path, layout: str, preset: str, epochs: int, batch_size: int, lr: float,
              seed: int, modalities: str = "J,S", text_source: str = "auto") -> PretrainSpec:
    """The pretraining spec: one 3D source ``{layout: data_file}``, one person, T=32, x-sub split."""
    return PretrainSpec(dataset="pyskl", paths={layout: str(data_file)}, split=SPLIT, num_frames=32, max_persons=1,
                        modalities=modalities, preset=preset, epochs=epochs, batch_size=batch_size, lr=lr,
                        seed=seed, device="cpu", amp="off", save_every=0, text_source=text_source,
                        lifter_width=64 if preset == "tiny" else None).resolved()


def benchmark_dataset(name: str, out_dir: Path, shared_data=None, preset: str = "small", epochs: int = 100,
                      probe_epochs: int = 100, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                      modalities: str = "J,S", text_source: str = "auto", log=print) -> dict:
    """The three rows (``ROWS``) on dataset ``name``; the SSL run is kept in ``out_dir/<name>/pretrain``."""
    folder, _, layout, expected_classes = DATASETS[name]
    t0 = time.perf_counter()
    data = load_source(name, shared_data)
    # The PYSKL copy of the real data lives only in a temp folder: runs/ must not keep dataset copies.
    with tempfile.TemporaryDirectory(prefix=f"hetskel_{name}_") as tmp:
        path = save_pyskl(data, Path(tmp) / f"{folder}.pkl")
        spec = make_spec(path, layout, preset, epochs, batch_size, lr, seed, modalities, text_source)
        train_ds, test_ds = load_data(spec)
        C = len(data.get("class_names") or []) or max(train_ds.num_classes, test_ds.num_classes)
        log(f"[{name}] {folder}: {len(train_ds)} train / {len(test_ds)} test clips, {C} classes, layout {layout}, "
            f"modalities {spec.modalities}, preset {preset}")
        t = time.perf_counter()
        run = pretrain(spec, out_dir / name / "pretrain")
        ssl_s = time.perf_counter() - t
        # fresh network = the run's exact initial weights (same spec and seed, built the same way)
        pre = build_pretrainer(spec, train_ds)
        origin = table_origin(pre)
        trained, _ = load_pretrained(run.run_dir)
    log(f"[{name}] SSL: {epochs} epochs in {ssl_s:.0f} s, final loss {run.final.get('loss', float('nan')):.3f}")
    ssl = probe(trained, train_ds, test_ds, C, probe_epochs, seed=seed, device="cpu")
    rnd = probe(pre, train_ds, test_ds, C, probe_epochs, seed=seed, device="cpu")
    log(f"[{name}] probes done ({time.perf_counter() - t0:.0f} s)")
    t = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the head's init; the encoder is the random-init network's copy
        clf = Classifier(copy.deepcopy(pre), C)
    sup = train_supervised(clf, train_ds, test_ds, epochs, lr=lr, batch_size=batch_size, seed=seed)
    sup_s = time.perf_counter() - t
    log(f"[{name}] supervised: {epochs} epochs in {sup_s:.0f} s")
    return {
        "dataset": folder, "layout": layout, "num_classes": C, "expected_classes": expected_classes,
        "num_train": len(train_ds), "num_test": len(test_ds),
        "split": "cross-subject: odd subjects train (xsub_train), even subjects test (xsub_val)",
        "modalities": list(spec.modality_list), "preset": preset, "num_frames": spec.num_frames,
        "epochs": epochs, "probe_epochs": probe_epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "semantic_table": origin,
        "ssl": {"linear_top1": ssl["top1_final"], "linear_top1_best": ssl["top1_best"], "knn_top1": ssl["knn_top1"],
                "final_loss": run.final.get("loss"), "seconds": ssl_s, "run_dir": str(run.run_dir)},
        "random_init": {"linear_top1": rnd["top1_final"], "linear_top1_best": rnd["top1_best"],
                        "knn_top1": rnd["knn_top1"]},
        "supervised": {"top1": sup["top1_final"], "top1_best": sup["top1_best"],
                       "train_top1": sup["train_top1_final"], "final_train_loss": sup["train_loss"][-1],
                       "seconds": sup_s, "history": sup["history"]},
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------------------------
# reporting
def markdown_table(results: Mapping[str, Mapping]) -> str:
    """One row per dataset x protocol: linear probe / 1-NN / supervised test top-1 (%)."""
    lines = ["| dataset | train/test clips | method | linear probe top-1 | 1-NN top-1 | supervised top-1 |",
             "|---|---|---|---:|---:|---:|"]
    for r in results.values():
        clips = f"{r['num_train']}/{r['num_test']}"
        s, q, u = r["ssl"], r["random_init"], r["supervised"]
        name = f"{r['dataset']} ({r['num_classes']} cl.)"
        lines.append(f"| {name} | {clips} | {ROWS[0][1]} | {s['linear_top1']:.1f} | {s['knn_top1']:.1f} | - |")
        lines.append(f"| {name} | {clips} | {ROWS[1][1]} | {q['linear_top1']:.1f} | {q['knn_top1']:.1f} | - |")
        lines.append(f"| {name} | {clips} | {ROWS[2][1]} | - | - | {u['top1']:.1f} |")
    return "\n".join(lines)


def run_benchmark(datasets: Sequence[str] = ("utd", "msr"), out_dir=None, shared_data=None, quick: bool = False,
                  preset: str | None = None, epochs: int | None = None, probe_epochs: int | None = None,
                  seed: int = 0, modalities: str = "J,S", text_source: str = "auto", command: str = "",
                  log=print) -> dict:
    """Every dataset of ``datasets``; writes ``results.json`` and ``results.md`` to ``out_dir``
    (default ``runs/realdata/<time>``) and returns ``{"results": {name: ...}, "table", "out_dir", ...}``."""
    size = dict(QUICK if quick else FULL)
    for k, v in (("preset", preset), ("epochs", epochs), ("probe_epochs", probe_epochs)):
        if v is not None:
            size[k] = v
    out = make_run_dir(out_dir, "realdata")
    t0 = time.perf_counter()
    results = {name: benchmark_dataset(name, out, shared_data, seed=seed, modalities=modalities,
                                       text_source=text_source, log=log, **size) for name in datasets}
    table = markdown_table(results)
    wall = time.perf_counter() - t0
    report = {"command": command, "wall_seconds": wall, "torch_threads": torch.get_num_threads(),
              "settings": {**size, "seed": seed, "modalities": modalities, "quick": quick}, "results": results,
              "table": table}
    save_json(out / "results.json", report)
    md = (f"# Real-data benchmark\n\n`{command}`\n\nSplit: cross-subject, odd subjects train, even subjects "
          f"test. Final-epoch test top-1 (%). Wall time {wall:.0f} s, {torch.get_num_threads()} torch thread(s).\n\n"
          f"{table}\n")
    (out / "results.md").write_text(md)
    return {**report, "out_dir": str(out)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hetskel.bench.realdata", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["utd", "msr"])
    ap.add_argument("--epochs", type=int, default=None, help="SSL pretraining and supervised epochs "
                    f"(default {FULL['epochs']}, quick {QUICK['epochs']})")
    ap.add_argument("--probe-epochs", type=int, default=None,
                    help=f"linear probe epochs (default {FULL['probe_epochs']}, quick {QUICK['probe_epochs']})")
    ap.add_argument("--preset", choices=("tiny", "small", "paper"), default=None,
                    help=f"encoder preset (default {FULL['preset']}, quick {QUICK['preset']})")
    ap.add_argument("--modalities", default="J,S", help="J,S (heterogeneous; C needs 2D) or J,M,B (classic)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CI size: tiny preset, 2 epochs (< 60 s)")
    ap.add_argument("--shared-data", default=None, help="folder holding utd_mhad/ and msr_action3d/ "
                    "(default ../shared/data or $HETSKEL_SHARED_DATA)")
    ap.add_argument("--text-source", default="auto", choices=("auto", "cache", "openclip", "random"),
                    help="S's word table (hetskel.hetero.semantic.text_table); 'random' = NOT CLIP")
    ap.add_argument("--out", default=None, help="output folder (default runs/realdata/<time>)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    command = "python -m hetskel.bench.realdata " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rep = run_benchmark(args.datasets, args.out, args.shared_data, args.quick, args.preset, args.epochs,
                        args.probe_epochs, args.seed, args.modalities, args.text_source, command.strip())
    print(rep["table"])
    print(f"\ncommand: {rep['command']}\nwall time: {rep['wall_seconds']:.0f} s\nwritten: {rep['out_dir']}/results.json, "
          f"results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
