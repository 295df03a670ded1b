"""Where things live and how big the work is: paths, quick mode and seeds.

Every setting can be changed with an environment variable, so the same notebook runs
on a laptop, on Colab and in CI without edits:

- ``BRAINLAB_DATA``: folder of the dataset (with ``Training/`` and ``Testing/`` inside).
- ``BRAINLAB_CACHE``: where downloads and decoded images are cached
  (default ``~/.cache/brainlab``, or ``$XDG_CACHE_HOME/brainlab``).
- ``BRAINLAB_RUNS``: where the notebooks record training runs (default ``runs`` in the
  current folder); quick mode keeps its runs apart, in ``quick/`` below it.
- ``BRAINLAB_CACHE_MAX_MB``: how big the decoded-image cache may grow before its least
  recently used files are removed (default 4096, i.e. 4 GB). ``brainlab cache`` shows the cache.
- ``BRAINLAB_QUICK=1``: quick mode. The bundled sample instead of the full dataset, few
  epochs and small images, so that everything finishes in about a minute on a CPU.

:func:`keep_work_in` points the cache and the runs at one folder (a Google Drive on Colab,
so that a runtime reset loses neither the downloads nor a training).
"""
from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brainlab.errors import BrainlabError

__all__ = ["DEFAULT_SEED", "COURSE_FOLDERS", "quick_mode", "quick", "cache_dir", "runs_dir", "WorkFolders",
           "keep_work_in", "data_env", "set_seed", "CachePart", "cache_usage", "clear_cache", "cache_max_bytes",
           "prune", "human_size"]

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


#: The course's notebook folders: notebooks opened from any of them share one ``runs/``.
COURSE_FOLDERS = ("notebooks", "solutions", "exercises")


def runs_dir() -> Path:
    """The folder training runs are recorded in: ``BRAINLAB_RUNS`` or ``runs``; in quick mode its ``quick/``.

    Without ``BRAINLAB_RUNS``, a notebook opened from the course's ``notebooks/``, ``solutions/``
    or ``exercises/`` folder records its runs in the course's own ``runs/`` (beside those
    folders), so that an exercise notebook finds the run its course notebook already made;
    anywhere else, in ``runs/`` under the current folder.
    Quick-mode runs (the sample, small images) are kept apart so that a full run never
    resumes from a quick one. The folder is created by whatever records a run in it.
    """
    value = os.environ.get("BRAINLAB_RUNS", "").strip()
    if value:
        base = Path(value).expanduser()
    else:
        here = Path.cwd()
        in_course = here.name in COURSE_FOLDERS and all((here.parent / name).is_dir() for name in COURSE_FOLDERS[:2])
        base = here.parent / "runs" if in_course else Path("runs")
    return base / "quick" if quick_mode() else base


class WorkFolders(NamedTuple):
    """Where :func:`keep_work_in` put the cache and the runs."""

    cache: Path
    runs: Path


def keep_work_in(folder) -> WorkFolders:
    """Keep the cache (downloads, decoded images) and the training runs in ``folder``, from now on.

    Sets ``BRAINLAB_CACHE`` to ``folder/cache`` and ``BRAINLAB_RUNS`` to ``folder/runs`` for this
    process (and the processes it starts), creates both, and returns them. On Colab, pass a
    folder on a mounted Google Drive: a runtime reset then loses neither data nor runs.
    Run folders already named by a notebook (``RUNS = config.runs_dir()``) keep their old place:
    call this before, in the setup cells.
    """
    folder = Path(folder).expanduser().resolve()
    work = WorkFolders(folder / "cache", folder / "runs")
    try:
        for path in work:
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrainlabError(f"Cannot keep brainlab's work in {folder}: {exc}. Is the folder (or the drive) "
                            "mounted and writable?") from exc
    os.environ["BRAINLAB_CACHE"], os.environ["BRAINLAB_RUNS"] = str(work.cache), str(work.runs)
    return work


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


# --------------------------------------------------------------------------- what the cache holds

#: The parts of the cache: folder name -> what it holds. The first two are rebuilt when needed.
CACHE_PARTS = {
    "decoded": "decoded images (rebuilt when needed)",
    "verified": "dataset verification verdicts (rebuilt when needed)",
    "downloads": "downloaded archives",
    "datasets": "downloaded datasets",
}
REBUILT_PARTS = ("decoded", "verified")
DEFAULT_CACHE_MAX_MB = 4096


@dataclass(frozen=True)
class CachePart:
    """One folder of the cache: its name, what it holds, where it is, how many files, how many bytes."""

    name: str
    description: str
    path: Path
    files: int
    bytes: int


def cache_usage() -> list[CachePart]:
    """Every part of the cache (see :data:`CACHE_PARTS`), with its file count and size."""
    parts = []
    for name, description in CACHE_PARTS.items():
        path = cache_dir() / name
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
        parts.append(CachePart(name, description, path, len(files), sum(p.stat().st_size for p in files)))
    return parts


def clear_cache(everything: bool = False) -> list[CachePart]:
    """Delete what the cache rebuilds by itself (decoded images, verdicts); with ``everything``, downloads too.

    Returns the parts removed, as they were before removal.
    """
    removed = []
    for part in cache_usage():
        if (everything or part.name in REBUILT_PARTS) and part.path.exists():
            shutil.rmtree(part.path)
            removed.append(part)
    return removed


def cache_max_bytes() -> int:
    """The size the decoded-image cache may reach, from ``BRAINLAB_CACHE_MAX_MB`` (default 4096 MB)."""
    value = os.environ.get("BRAINLAB_CACHE_MAX_MB", "").strip()
    if not value:
        return DEFAULT_CACHE_MAX_MB * 2**20
    try:
        mb = float(value)
    except ValueError:
        mb = -1
    if mb < 0:
        raise BrainlabError(f"BRAINLAB_CACHE_MAX_MB={value!r} is not a number of megabytes; "
                         f"set it to e.g. {DEFAULT_CACHE_MAX_MB}, or unset it for the default")
    return int(mb * 2**20)


def prune(folder: Path, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used files of ``folder`` until it holds at most ``max_bytes``.

    ``keep`` (the file just written) is never removed. Returns the files removed.
    """
    files = sorted((p for p in Path(folder).glob("*") if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    removed = []
    for path in files:
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def human_size(n: int) -> str:
    """``1536`` -> ``"1.5 KB"``: bytes for people."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
