"""Where things live and how big the work is: paths, quick mode and seeds.

Every setting can be changed with an environment variable, so the same notebook runs
on a laptop, on Colab and in CI without edits:

- ``BRAINLAB_DATA``: folder of the dataset (with ``Training/`` and ``Testing/`` inside).
- ``BRAINLAB_CACHE``: where downloads and decoded images are cached
  (default ``~/.cache/brainlab``, or ``$XDG_CACHE_HOME/brainlab``).
- ``BRAINLAB_QUICK=1``: quick mode. The bundled sample instead of the full dataset, few
  epochs and small images, so that everything finishes in about a minute on a CPU.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

DEFAULT_SEED = 42
_TRUE = {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``BRAINLAB_QUICK`` asks for the small, fast version of everything."""
    return os.environ.get("BRAINLAB_QUICK", "").strip().lower() in _TRUE


def quick(full, quick_value):
    """Pick ``quick_value`` in quick mode and ``full`` otherwise: ``EPOCHS = quick(30, 1)``."""
    return quick_value if quick_mode() else full


def cache_dir() -> Path:
    """The per-user cache folder (created on first use)."""
    if os.environ.get("BRAINLAB_CACHE"):
        base = Path(os.environ["BRAINLAB_CACHE"]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "brainlab"
    base.mkdir(parents=True, exist_ok=True)
    return base


def data_env() -> Path | None:
    """The folder named by ``BRAINLAB_DATA``, if set."""
    value = os.environ.get("BRAINLAB_DATA", "").strip()
    return Path(value).expanduser() if value else None


def set_seed(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and (when loaded) TensorFlow/Keras so runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:  # pragma: no cover - keras is a dependency
        pass
    return seed
