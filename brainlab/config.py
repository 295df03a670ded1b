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

:func:`check_environment` checks every ``BRAINLAB_*`` variable at once (the command line calls
it before any work), and :func:`check_folder` any folder a setting names.

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

from brainlab.errors import BrainlabError, SettingError

__all__ = ["DEFAULT_SEED", "COURSE_FOLDERS", "CACHE_MARKER", "quick_mode", "quick", "cache_dir", "runs_dir",
           "WorkFolders", "keep_work_in", "data_env", "set_seed", "CachePart", "cache_usage", "clear_cache",
           "cache_max_bytes", "prune", "human_size", "check_folder", "check_environment", "switch"]

DEFAULT_SEED = 42
_TRUE = {"1", "true", "yes", "on"}


_FALSE = {"", "0", "false", "no", "off"}


def switch(name: str) -> bool:
    """The on/off variable ``name`` (1/true/yes/on or 0/false/no/off, unset: off); any other value is refused."""
    value = os.environ.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise SettingError(f"{name}={os.environ[name]!r} is neither on nor off: set it to 1 or 0, or unset it.")
    return value in _TRUE


def quick_mode() -> bool:
    """True when ``BRAINLAB_QUICK`` asks for the small, fast version of everything."""
    return switch("BRAINLAB_QUICK")


def quick(full, quick_value):
    """Pick ``quick_value`` in quick mode and ``full`` otherwise: ``EPOCHS = quick(30, 1)``."""
    return quick_value if quick_mode() else full


#: The file that marks a folder as brainlab's cache (the Cache Directory Tagging convention, which backup
#: tools honour too). ``brainlab cache --clear`` deletes nothing in a folder without it.
CACHE_MARKER = "CACHEDIR.TAG"
_MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This folder is brainlab's cache: `brainlab cache` shows it, `brainlab cache --clear` empties it.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


def _default_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "brainlab"


def cache_dir() -> Path:
    """The per-user cache folder (created, with its :data:`CACHE_MARKER`, on first use).

    A folder brainlab creates is marked as its own; so is one that is empty, and the default
    ``~/.cache/brainlab`` (named by brainlab, so a cache from before the marker stays usable).
    A ``BRAINLAB_CACHE`` folder that held other things before is used, but never marked.
    """
    env = os.environ.get("BRAINLAB_CACHE", "").strip()
    base = check_folder(env or _default_cache(), "BRAINLAB_CACHE" if env else "the brainlab cache",
                        write=True, exists=False)
    adopt = not base.is_dir() or not any(base.iterdir()) or not env
    base.mkdir(parents=True, exist_ok=True)
    if adopt and not _is_marked(base):
        _write_marker(base)
    return base


def _is_marked(folder: Path) -> bool:
    try:
        return "brainlab" in (folder / CACHE_MARKER).read_text(errors="replace")
    except OSError:
        return False


def _write_marker(folder: Path) -> None:
    tmp = folder / f".{CACHE_MARKER}.{os.getpid()}.tmp"
    tmp.write_text(_MARKER_TEXT)
    os.replace(tmp, folder / CACHE_MARKER)


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
        new_cache = not work.cache.is_dir()
        for path in work:
            path.mkdir(parents=True, exist_ok=True)
        if new_cache:
            _write_marker(work.cache)
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


def clear_cache(everything: bool = False, dry_run: bool = False) -> list[CachePart]:
    """Delete what the cache rebuilds by itself (decoded images, verdicts); with ``everything``, downloads too.

    Only brainlab's own parts (:data:`CACHE_PARTS`) are deleted, and only in a folder that carries
    :data:`CACHE_MARKER`; anything else is refused with a :class:`~brainlab.errors.BrainlabError`
    before a file is touched. Returns the parts removed (``dry_run``: that would be), as they were.
    """
    root = cache_dir()
    parts = [p for p in cache_usage() if (everything or p.name in REBUILT_PARTS)
             and (p.path.exists() or p.path.is_symlink())]
    if parts and not _is_marked(root):
        raise BrainlabError(f"{root} has no {CACHE_MARKER} marker, so brainlab did not create it (BRAINLAB_CACHE "
                            f"names a folder that held other things before); nothing was deleted. Delete what you "
                            f"no longer need there yourself, or point BRAINLAB_CACHE at a folder of its own.")
    for part in parts:
        if part.path.is_symlink() or not part.path.is_dir():
            raise BrainlabError(f"{part.path} is {'a link' if part.path.is_symlink() else 'a file'}, which brainlab "
                                "never makes in its cache; nothing was deleted. Remove or move it yourself.")
    if not dry_run:
        for part in parts:
            shutil.rmtree(part.path)
    return parts


def cache_max_bytes() -> int:
    """The size the decoded-image cache may reach, from ``BRAINLAB_CACHE_MAX_MB`` (default 4096 MB)."""
    value = os.environ.get("BRAINLAB_CACHE_MAX_MB", "").strip()
    if not value:
        return DEFAULT_CACHE_MAX_MB * 2**20
    try:
        mb = float(value)
    except ValueError:
        mb = -1
    if not 0 <= mb < 2**40:  # also refuses nan and inf
        raise SettingError(f"BRAINLAB_CACHE_MAX_MB={value!r} is not a number of megabytes; "
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


# --------------------------------------------------------------------------- checking settings


def check_folder(path, setting: str, *, write: bool = False, exists: bool = True) -> Path:
    """``path`` if it can serve as the folder ``setting`` names, or a :class:`~brainlab.errors.SettingError`.

    ``exists``: it must be there already (data to read); otherwise it may be created, in a folder
    that is there. ``write``: brainlab must be able to write in it (or create it).
    """
    path = Path(path).expanduser()
    what = f"{setting} {path}" if setting else str(path)
    if path.is_dir():
        if write and not os.access(path, os.W_OK | os.X_OK):
            raise SettingError(f"{what}: the folder is not writable; give a folder you can write in.")
        return path
    if path.exists() or path.is_symlink():
        kind = "a file" if path.exists() else "a link to nothing"
        raise SettingError(f"{what} is {kind}, not a folder: give a folder.")
    if exists:
        raise SettingError(f"{what} does not exist: give an existing folder.")
    parent = next(p for p in path.parents if p.exists() or p.is_symlink())
    if not parent.is_dir():
        raise SettingError(f"{what} cannot be created: {parent} is a file, not a folder.")
    if write and not os.access(parent, os.W_OK | os.X_OK):
        raise SettingError(f"{what} cannot be created: {parent} is not writable; "
                           "give a folder you can write in.")
    return path


def check_environment(skip=()) -> None:
    """Check every ``BRAINLAB_*`` variable that is set (but those in ``skip``); the first bad one raises
    a :class:`~brainlab.errors.SettingError` that names it and says what it takes.

    ``BRAINLAB_PRECISION`` is :mod:`brainlab.train`'s (which loads TensorFlow): see its ``precision_from_env``."""
    def folder(name, **kwargs):
        value = os.environ.get(name, "").strip()
        if value:
            check_folder(value, name, **kwargs)

    checks = {
        "BRAINLAB_QUICK": lambda: switch("BRAINLAB_QUICK"),
        "BRAINLAB_VERBOSE": lambda: switch("BRAINLAB_VERBOSE"),
        "BRAINLAB_CACHE": lambda: folder("BRAINLAB_CACHE", write=True, exists=False),
        "BRAINLAB_RUNS": lambda: folder("BRAINLAB_RUNS", write=True, exists=False),
        "BRAINLAB_DATA": lambda: folder("BRAINLAB_DATA"),
        "BRAINLAB_EXTERNAL_DATA": lambda: folder("BRAINLAB_EXTERNAL_DATA"),
        "BRAINLAB_CACHE_MAX_MB": cache_max_bytes,
        "BRAINLAB_WEIGHTS": weights_env,
    }
    for name, check in checks.items():
        if name not in skip and os.environ.get(name, "").strip():
            check()


def weights_env() -> str | None:
    """``BRAINLAB_WEIGHTS``: ``"imagenet"``, ``"random"`` or None (unset); any other value is refused."""
    value = os.environ.get("BRAINLAB_WEIGHTS", "").strip().lower()
    if value not in ("", "imagenet", "random"):
        raise SettingError(f"BRAINLAB_WEIGHTS={value!r}: use imagenet, random, or leave it unset.")
    return value or None
