"""brainlab's cache: where downloads and decoded images are kept, what it holds, how it is pruned and cleared.

Where (:func:`cache_dir`): the folder ``BRAINLAB_CACHE`` names, else the per-user cache folder of
the platform, as platformdirs knows it (:func:`default_cache_dir`)::

    Linux     ~/.cache/brainlab              ($XDG_CACHE_HOME/brainlab when that is set)
    macOS     ~/Library/Caches/brainlab
    Windows   %LOCALAPPDATA%\\brainlab\\Cache

brainlab used ``~/.cache/brainlab`` (or ``$XDG_CACHE_HOME/brainlab``) on every platform before;
where that folder exists, it stays in use, so nothing downloaded there is fetched again.

What (:func:`cache_usage`): four parts, :data:`CACHE_PARTS`. Decoded images and dataset
verification verdicts are rebuilt when needed; downloaded archives and datasets are not.

How big: decoded images are kept up to ``BRAINLAB_CACHE_MAX_MB`` (:func:`cache_max_bytes`);
past it, :func:`prune` removes the least recently used files first (a cache hit touches its file).

Whose: a folder brainlab makes carries :data:`CACHE_MARKER`, the Cache Directory Tagging
convention (backup tools honour it too), and :func:`clear_cache` deletes nothing in a folder
without it: ``BRAINLAB_CACHE=~`` must never cost anyone their files.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from brainlab import runs, settings
from brainlab.errors import BrainlabError

__all__ = ["CACHE_MARKER", "CACHE_PARTS", "CachePart", "cache_dir", "default_cache_dir",
           "mark", "cache_usage", "clear_cache", "cache_max_bytes", "prune", "human_size"]

_APP = "brainlab"  # the folder's name in the platform's cache folder

#: The file that marks a folder as brainlab's cache. ``brainlab cache --clear`` deletes nothing in a folder without it.
CACHE_MARKER = "CACHEDIR.TAG"
_MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This folder is brainlab's cache: `brainlab cache` shows it, `brainlab cache --clear` empties it.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


# --------------------------------------------------------------------------- where
def _earlier_default() -> Path:
    """brainlab's cache folder on every platform before it asked platformdirs."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / _APP


def default_cache_dir(platform_folder=None) -> Path:
    """The cache folder when ``BRAINLAB_CACHE`` is unset: the platform's, unless an earlier one is there.

    ``platform_folder`` is platformdirs' answer for this machine when not given
    (``platformdirs.user_cache_dir("brainlab", appauthor=False)``: no author folder on Windows);
    pass another platform's answer to see what brainlab would choose there. The folder is not
    created here (:func:`cache_dir` does that).
    """
    chosen = Path(platform_folder if platform_folder is not None
                  else platformdirs.user_cache_dir(_APP, appauthor=False)).expanduser()
    earlier = _earlier_default()
    return earlier if earlier != chosen and earlier.is_dir() else chosen


def cache_dir() -> Path:
    """The cache folder (created, with its :data:`CACHE_MARKER`, on first use).

    A folder brainlab creates is marked as its own; so is one that is empty, and the default
    folder (named by brainlab, so a cache from before the marker stays clearable). A
    ``BRAINLAB_CACHE`` folder that held other things before is used, but never marked.
    """
    chosen = settings.check("BRAINLAB_CACHE")  # writable or creatable, or a SettingError naming it
    base = chosen or settings.check_folder(default_cache_dir(), "the brainlab cache", write=True, exists=False)
    adopt = chosen is None or not base.is_dir() or not any(base.iterdir())
    base.mkdir(parents=True, exist_ok=True)
    if adopt and not _is_marked(base):
        mark(base)
    return base


def _is_marked(folder: Path) -> bool:
    try:
        return "brainlab" in (folder / CACHE_MARKER).read_text(errors="replace")
    except OSError:
        return False


def mark(folder) -> None:
    """Write :data:`CACHE_MARKER` into ``folder`` (which must exist): from now on it is brainlab's cache."""
    runs.write_text(Path(folder) / CACHE_MARKER, _MARKER_TEXT)


# --------------------------------------------------------------------------- what it holds
#: The parts of the cache: folder name -> what it holds. The first two are rebuilt when needed.
CACHE_PARTS = {
    "decoded": "decoded images (rebuilt when needed)",
    "verified": "dataset verification verdicts (rebuilt when needed)",
    "downloads": "downloaded archives",
    "datasets": "downloaded datasets",
}
_REBUILT_PARTS = ("decoded", "verified")


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
    root = cache_dir()
    parts = []
    for name, description in CACHE_PARTS.items():
        path = root / name
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
    parts = [p for p in cache_usage() if (everything or p.name in _REBUILT_PARTS)
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


# --------------------------------------------------------------------------- how big
def cache_max_bytes() -> int:
    """The size the decoded-image cache may reach, from ``BRAINLAB_CACHE_MAX_MB`` (see :mod:`brainlab.settings`)."""
    return int(settings.get("BRAINLAB_CACHE_MAX_MB") * 2**20)


def prune(folder, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used files of ``folder`` until it holds at most ``max_bytes``.

    ``keep`` (the file just written) is never removed, nor is a hidden file (a name that starts with a dot).
    Returns the files removed.
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
