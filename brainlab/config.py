"""Where things live and how big the work is: paths, quick mode and seeds.

- :func:`quick_mode` and :func:`quick`: quick mode (``BRAINLAB_QUICK=1``), the bundled sample
  instead of the full dataset, few epochs and small images, so that everything finishes in
  about a minute on a CPU: ``EPOCHS = config.quick(30, 1)``.
- :func:`runs_dir`: where the notebooks record training runs; :func:`data_env`: the dataset
  folder named by the environment.
- :func:`keep_work_in`: the cache and the runs in one folder (a Google Drive on Colab, so that
  a runtime reset loses neither the downloads nor a training).
- :func:`set_seed`: Python, NumPy and Keras seeded at once, so that runs repeat.

Every setting can be changed with an environment variable, so the same notebook runs on a laptop,
on Colab and in CI without edits. :mod:`brainlab.settings` declares each ``BRAINLAB_*`` variable
once (its type, default, meaning and check; docs/settings.md lists them), and
:func:`check_environment` checks them all at once (the command line calls it before any work).
The cache itself (where it is, what it holds, pruning, clearing) is :mod:`brainlab.cache`.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brainlab import cache, settings
from brainlab.errors import BrainlabError

__all__ = ["DEFAULT_SEED", "COURSE_FOLDERS", "quick_mode", "quick", "runs_dir", "WorkFolders", "keep_work_in",
           "data_env", "set_seed", "check_environment"]

DEFAULT_SEED = 42


def quick_mode() -> bool:
    """True when ``BRAINLAB_QUICK`` asks for the small, fast version of everything."""
    return settings.get("BRAINLAB_QUICK")


def quick(full, quick_value):
    """Pick ``quick_value`` in quick mode and ``full`` otherwise: ``EPOCHS = quick(30, 1)``."""
    return quick_value if quick_mode() else full


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
    base = settings.get("BRAINLAB_RUNS")
    if base is None:
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
        new_cache = not work.cache.is_dir()
        for path in work:
            path.mkdir(parents=True, exist_ok=True)
        if new_cache:
            cache.mark(work.cache)
    except OSError as exc:
        raise BrainlabError(f"Cannot keep brainlab's work in {folder}: {exc}. Is the folder (or the drive) "
                            "mounted and writable?") from exc
    os.environ["BRAINLAB_CACHE"], os.environ["BRAINLAB_RUNS"] = str(work.cache), str(work.runs)
    return work


def data_env() -> Path | None:
    """The folder named by ``BRAINLAB_DATA``, if set; not looked at here (``find_data`` and ``brainlab doctor``
    say what is wrong with a missing one, and what to do)."""
    return settings.get("BRAINLAB_DATA")


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


def check_environment(skip=()) -> None:
    """Check every ``BRAINLAB_*`` variable brainlab reads that is set (but those in ``skip``); the first bad one
    raises a :class:`~brainlab.errors.SettingError` that names it and says what it takes.

    Each is checked as :mod:`brainlab.settings` declares it (:func:`brainlab.settings.check`), a
    folder on disk too; nothing heavy is imported (``BRAINLAB_PRECISION`` is checked without TensorFlow).
    """
    for setting in settings.SETTINGS.values():
        if setting.read_by == settings.PACKAGE and setting.name not in skip:
            settings.check(setting.name)
