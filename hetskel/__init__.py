"""hetskel: heterogeneous skeleton-based action representation learning.

The public API is the table below: ``hetskel.<name>`` for each. Every name is imported on first use
(PEP 562), so ``import hetskel`` stays fast and never imports open_clip or the language models.

    import hetskel
    data = hetskel.load_pyskl("ntu60_3danno.pkl")                     # the PYSKL interchange dict
    spec = hetskel.PretrainSpec(dataset="pyskl", paths={"ntu25": "ntu60_3danno.pkl"}, modalities="J,S")
    run = hetskel.pretrain(spec, "runs/my_run")                        # a run folder
    net, spec = hetskel.load_pretrained("runs/my_run")                 # reloads anywhere
    train_ds, val_ds = hetskel.load_data(spec)
    res = hetskel.evaluate_pretrained(net, train_ds, val_ds, untrained=hetskel.build_pretrainer(spec))

The layers (each imports only from the ones before it): ``layouts``, ``io``, ``config``; ``data``,
``viz``; ``train``; ``model``; ``hetero``; ``eval``; ``experiment``; and the applications
``studies`` (notebook helpers), ``runs`` (papermill grids, the demo), ``bench`` (benchmarks).
"""
import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    # joints and layouts
    "Layout": "hetskel.layouts", "get_layout": "hetskel.layouts", "list_layouts": "hetskel.layouts",
    "register_layout": "hetskel.layouts", "unify": "hetskel.layouts", "convert": "hetskel.layouts",
    "load_layout": "hetskel.layouts", "image_twin": "hetskel.layouts",
    # data
    "DataError": "hetskel.data.errors", "load_pyskl": "hetskel.data.pyskl", "save_pyskl": "hetskel.data.pyskl",
    "validate_pyskl": "hetskel.data.pyskl", "from_arrays": "hetskel.data.arrays",
    "load_utd_mhad": "hetskel.data.arrays", "load_msr_action3d": "hetskel.data.arrays",
    "read_joint_rows": "hetskel.data.raw", "read_csv": "hetskel.data.raw", "read_npy": "hetskel.data.raw",
    "read_mat": "hetskel.data.raw", "read_skeleton_file": "hetskel.data.raw",
    "map_joint_names": "hetskel.data.joint_names", "layout_from_names": "hetskel.data.joint_names",
    "check_left_right": "hetskel.data.left_right", "carve_validation": "hetskel.data.splits",
    "absent_outside_image": "hetskel.data.arrays",
    "load_dataset": "hetskel.data.batches", "ArrayDataset": "hetskel.data.batches",
    # optimisation
    "TrainConfig": "hetskel.train.config", "fit": "hetskel.train.fit",
    # model and heterogeneous processing
    "UnifiedEncoder": "hetskel.model.encoder", "Pretrainer": "hetskel.model.objective",
    "HeteroProcessor": "hetskel.hetero.pipeline",
    # evaluation
    "linear_probe": "hetskel.eval.protocols", "knn_retrieval": "hetskel.eval.protocols",
    "evaluate_pretrained": "hetskel.eval.pretrained", "transfer_evaluate": "hetskel.eval.transfer",
    # one pretraining, end to end
    "PretrainSpec": "hetskel.experiment.spec", "build_pretrainer": "hetskel.experiment.pretrain",
    "load_data": "hetskel.experiment.pretrain", "pretrain": "hetskel.experiment.pretrain",
    "load_pretrained": "hetskel.experiment.pretrain",
}
_SUBPACKAGES = {"layouts", "io", "config", "data", "viz", "train", "model", "hetero", "eval", "experiment",
                "studies", "runs", "bench", "benchmark"}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"hetskel.{name}")
    raise AttributeError(f"module 'hetskel' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API) | _SUBPACKAGES)
