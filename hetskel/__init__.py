"""hetskel: heterogeneous skeleton-based action representation learning.

Submodules are imported on use (``hetskel.layouts``, ``hetskel.data``, ``hetskel.hetero``,
``hetskel.model``, ``hetskel.train``, ``hetskel.eval.protocols``, ``hetskel.viz``), so ``import hetskel``
stays fast and never imports open_clip.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = {"layouts", "io", "data", "hetero", "model", "train", "evaluate", "viz", "runs", "bench",
               "demo"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"hetskel.{name}")
    raise AttributeError(f"module 'hetskel' has no attribute {name!r}")
