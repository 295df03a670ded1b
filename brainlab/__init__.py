"""brainlab: deep learning on brain MRI, from convolution to ResNet50, for teaching.

The notebooks import the pieces they need, for example ``from brainlab import data``.
Submodules are imported lazily so that ``import brainlab`` stays fast and does not
load TensorFlow until a model or dataset is asked for.
"""
from __future__ import annotations

import importlib

from brainlab import startup as _startup

# TensorFlow's informational C++ log lines stay out of notebooks (unless BRAINLAB_VERBOSE=1);
# real errors still show. brainlab.startup.import_tensorflow() also hides the lines printed
# before TensorFlow's logging can be told anything.
_startup.quiet_by_default()

__version__ = "0.1.0"

_SUBMODULES = {"config", "catalogue", "images", "data", "download", "audit", "models", "train", "evaluate", "plots",
               "explain", "widgets", "paper", "cli", "course", "startup", "experiment", "exercises", "errors",
               "kept_epoch", "runs", "settings", "cache", "protocols", "doctor"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'brainlab' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES) + ["__version__"]
