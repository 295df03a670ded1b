"""What ``brainlab doctor`` looks at: your setup on one screen, and a dataset folder file by file.

A request for help needs the same few facts every time: which brainlab, Python, TensorFlow and
Keras; whether there is a GPU; whether quick mode is on; where the cache is and how much it
holds; where the data is and whether it matches the catalogue; whether the ImageNet weights
are already downloaded. :func:`setup_rows` gathers them as ``(what, value)`` rows.

:func:`check_dataset_folder` looks at one dataset folder the way training will: which catalogue entry
it is, how many readable images each split and class holds, every file that cannot be used
(with the reason :func:`brainlab.images.check_image` gives, the same as the loader's), and
whether counts and checksums match the catalogue. It returns a :class:`FolderCheck`.

Both only look and report; neither prints. ``brainlab doctor [--data DIR]``
(:mod:`brainlab.cli`) prints what they find.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

from brainlab import __version__, cache, catalogue, config, images
from brainlab.errors import BrainlabError

__all__ = ["FolderCheck", "check_dataset_folder", "setup_rows"]


# --------------------------------------------------------------------------- the setup


def setup_rows() -> list[tuple[str, str]]:
    """``(what, value)`` for brainlab, Python, TensorFlow, Keras, GPUs, quick mode, cache, data, ImageNet weights."""
    rows = [("brainlab", __version__), ("Python", f"{platform.python_version()} ({platform.platform()})")]
    try:
        import keras
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        rows += [("TensorFlow", tf.__version__), ("Keras", keras.__version__),
                 ("GPUs", ", ".join(g.name for g in gpus) if gpus else
                  "none: training runs on the CPU (use quick mode, or a GPU runtime on Colab; "
                  "`brainlab --verbose doctor` shows what TensorFlow says about it)")]
    except ImportError as exc:
        rows.append(("TensorFlow", f"NOT IMPORTABLE ({exc}); pip install tensorflow"))
    rows.append(("Quick mode", "on (BRAINLAB_QUICK=1): bundled sample, few epochs" if config.quick_mode()
                 else "off (set BRAINLAB_QUICK=1 for a fast run on the bundled sample)"))
    total = sum(part.bytes for part in cache.cache_usage())
    rows.append(("Cache", f"{cache.cache_dir()} ({cache.human_size(total)}; `brainlab cache` for details)"))
    rows.append(_data_row())
    rows.append(("ImageNet weights", _imagenet_weights()))
    return rows


def _data_row() -> tuple[str, str]:
    """Where the data is (BRAINLAB_DATA, the cache, or the sample in quick mode) and whether it verifies."""
    from brainlab import data

    if config.quick_mode():
        return "Data", f"{data.sample_dir()} (bundled sample, quick mode)"
    env = config.data_env()
    where = "BRAINLAB_DATA" if env else "brainlab cache"
    root = env or catalogue.default_location()
    if not root.is_dir():
        return "Data", (f"not found ({'BRAINLAB_DATA=' + str(env) if env else 'not downloaded yet'}): "
                        "run `brainlab fetch-data`, or set BRAINLAB_DATA")
    try:
        check = catalogue.verify(root)
    except BrainlabError as exc:
        return "Data", f"{root} (from {where}): NOT USABLE: {str(exc).splitlines()[0]}"
    n = sum(sum(c.values()) for c in check.counts.values())
    status = "verified: counts and checksums match" if check.ok else "does NOT verify:\n      " + \
        check.problems(limit=5).replace("\n", "\n      ")
    return "Data", f"{root} (from {where}), {n} images, {status}"


def _imagenet_weights() -> str:
    """Whether Keras has the ImageNet ResNet50 weights already, and where."""
    try:
        from brainlab.models import imagenet_weights_cached
    except ImportError:
        return "unknown (brainlab.models not available)"
    path = imagenet_weights_cached()
    return f"cached: {path}" if path else "not cached (Keras downloads them, about 94 MB, on first use)"


# --------------------------------------------------------------------------- one dataset folder


@dataclass
class FolderCheck:
    """What :func:`check_dataset_folder` found in one dataset folder."""

    root: Path
    spec: catalogue.DatasetSpec  # the catalogue entry the folder's class folders match
    splits: tuple[str, ...]  # the split folders present (all of the spec's, or e.g. Testing only)
    readable: dict[tuple[str, str], int]  # (split, class) -> images that decode
    bad: list[tuple[str, str]]  # (path, reason) of every file or folder that cannot be used
    verification: catalogue.Verification  # counts and checksums against the catalogue
    empty: list[str] = field(init=False)  # "split/class folder" with no readable image

    def __post_init__(self):
        self.empty = [f"{s}/{self.spec.folder(c)}" for s in self.splits for c in self.spec.class_names
                      if not self.readable.get((s, c))]

    @property
    def usable(self) -> bool:
        """Every split and class present has at least one readable image."""
        return not self.empty

    @property
    def complete(self) -> bool:
        """All of the spec's splits are there (a Testing-only copy can still serve for evaluation)."""
        return set(self.splits) == set(self.spec.splits)


def check_dataset_folder(root, progress: bool = True) -> FolderCheck:
    """Which dataset ``root`` holds, its readable images per split and class, what cannot be used, and the checksums.

    Layout problems (no split folders, missing class folders) raise
    :class:`~brainlab.errors.DataLayoutError` with the layout expected; files that cannot be used
    are listed in :attr:`FolderCheck.bad`, as training skips them.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    spec = catalogue.detect_spec(root, default=catalogue.BRAIN_TUMOR)
    splits = catalogue.present_splits(root, spec) or spec.splits  # none: scan explains the expected layout
    found = catalogue.scan(root, splits=splits, spec=spec)
    bad = found.bad + found.broken  # not images, and image files that cannot be opened: training skips both
    readable: dict[tuple[str, str], int] = {}
    for f in tqdm(found.files, desc="checking images", unit="img", leave=False, disable=not progress):
        reason = images.check_image(f.path)
        if reason:
            bad.append((f.path, reason))
        else:
            readable[f.split, f.class_name] = readable.get((f.split, f.class_name), 0) + 1
    return FolderCheck(root, spec, tuple(splits), readable, bad, catalogue.verify(root, spec, splits=splits))
