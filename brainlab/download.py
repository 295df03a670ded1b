"""Fetching a catalogue entry safely: verified, extracted safely, moved into place atomically.

``fetch_data()`` tries Kaggle first (through ``kagglehub``), then the dataset's archive (through
``pooch``, which shows a progress bar and never gives a half-downloaded file its final name, so
an interrupted download simply starts again next time). Whatever goes wrong with one source
(no network, no or broken Kaggle credentials, a handle Kaggle rejects), the next one is tried,
with a line saying why; when all fail, one message names every reason. Whatever the source, the
files are unpacked into a hidden staging folder next to the target, checked against the counts
and SHA-256 checksums of the dataset's :class:`brainlab.catalogue.DatasetSpec`, and only then
renamed to the target folder. A half-written dataset can therefore never be mistaken for a good
one, and a failed attempt leaves nothing behind.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from brainlab import cache
from brainlab.catalogue import BRAIN_TUMOR, DatasetSpec, default_location, how_to_get_data, verify
from brainlab.errors import DataNotFoundError, DownloadError, UnsafeArchiveError

__all__ = ["SOURCES", "download_file", "fetch_data", "find_dataset_root", "safe_extract"]

SOURCES = ("kaggle", "github")


def fetch_data(to=None, *, spec: DatasetSpec = BRAIN_TUMOR, sources=None, url: str | None = None,
               progress: bool = True) -> Path:
    """Download ``spec``'s dataset into ``to`` (default: the brainlab cache) and return that folder.

    ``sources`` are tried in order: ``"kaggle"`` and ``"github"`` (an archive URL; ``url``
    replaces the spec's own, e.g. a mirror); by default, every source the spec has. An existing
    complete copy is returned at once. What the checksums do not cover (a split the catalogue has
    no checksums for) is said when the copy is made.
    """
    if sources is None:  # every source the dataset has: Kaggle, and an archive where it has one
        sources = tuple(s for s in SOURCES if s == "kaggle" or spec.archive_urls or url)
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ValueError(f"unknown download source(s) {unknown or sources!r}; choose from {SOURCES}")
    target = Path(to).expanduser() if to else default_location(spec)
    if target.exists():
        check = verify(target, spec) if target.is_dir() else None
        if check is not None and check.ok:
            return target
        raise DownloadError(
            f"{target} already exists but is not a complete copy of the dataset"
            + (f":\n{check.problems()}" if check else " (it is not a folder).")
            + "\nNothing was changed. Move it away (or pick another folder with --to) and fetch again."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for number, source in enumerate(sources):
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            if source == "kaggle":
                root = _stage_from_kaggle(spec, staging)
            else:
                root = _stage_from_archive(url or _archive_url(spec), spec, staging, progress)
            check = verify(root, spec)
            if not check.ok:
                raise DownloadError(f"the downloaded files do not match the dataset's checksums:\n{check.problems()}")
            root.rename(target)  # atomic on one file system: the target appears complete or not at all
            print(f"brainlab: dataset ready in {target} ({spec.total()} images, counts and checksums verified)")
            for line in check.not_checked:
                print(f"brainlab: {line}")
            return target
        except Exception as exc:  # whatever a source raises (kagglehub: ValueError for a bad handle or
            # credentials file; requests, OSError, ...), try the next one and report all reasons together
            failures.append(f"  - {source}: {_one_line(exc)}")
            if number + 1 < len(sources):
                print(f"brainlab: {source} failed ({_one_line(exc).splitlines()[0]}); trying {sources[number + 1]}",
                      file=sys.stderr)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise DataNotFoundError(
        "Could not download the dataset. What went wrong:\n" + "\n".join(failures)
        + "\nNothing was written. If you are offline, that is the reason.\n" + how_to_get_data(spec)
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first, _, rest = text.partition("\n")
    return f"{type(exc).__name__}: {first}" + (f"\n      {rest.strip()}".replace("\n", "\n      ") if rest else "")


def _archive_url(spec: DatasetSpec) -> str:
    if not spec.archive_urls:
        raise DownloadError("this dataset has no archive URL (give one: url=... or `brainlab fetch-data --url`)")
    return spec.archive_urls[0]


def _stage_from_kaggle(spec: DatasetSpec, staging: Path) -> Path:
    if not spec.kaggle_handle:
        raise DownloadError("this dataset has no Kaggle handle")
    import kagglehub  # kagglehub keeps its own cache and shows its own progress

    downloaded = Path(kagglehub.dataset_download(spec.kaggle_handle))
    root = find_dataset_root(downloaded, spec)
    copy = staging / "data"
    shutil.copytree(root, copy)
    return copy


def _stage_from_archive(url: str, spec: DatasetSpec, staging: Path, progress: bool) -> Path:
    archive = download_file(url, f"{spec.name}.zip", progress)
    try:
        safe_extract(archive, staging / "unpacked", progress)
        return find_dataset_root(staging / "unpacked", spec)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive.name} is not a valid zip archive ({exc}); it was deleted") from exc
    finally:
        # Extracted or refused, the archive is not kept: the files are checked one by one against
        # their checksums, and a bad archive must not be reused by the next try.
        archive.unlink(missing_ok=True)


def download_file(url: str, fname: str, progress: bool = True) -> Path:
    """Download ``url`` into the brainlab cache's ``downloads/`` folder, with a progress bar.

    pooch writes to a temporary file and renames it only when the transfer is complete, so a
    cut connection leaves no file behind and the next call starts cleanly.
    """
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    folder = cache.cache_dir() / "downloads"
    try:
        path = pooch.retrieve(url, known_hash=None, fname=fname, path=folder,
                              downloader=pooch.HTTPDownloader(progressbar=progress, timeout=60))
    except requests.RequestException as exc:
        raise DownloadError(f"downloading {url} failed ({_one_line(exc)}); nothing was kept, try again") from exc
    return Path(path)


def safe_extract(archive, dest, progress: bool = True) -> Path:
    """Extract a zip archive into ``dest``, refusing any entry that would land outside it.

    Every entry is checked before anything is written: absolute paths, ``..`` components
    and symbolic links are refused with :class:`UnsafeArchiveError` ("zip slip").
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            name = info.filename
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            parts = PurePosixPath(name.replace("\\", "/")).parts
            inside = (base / name).resolve().is_relative_to(base)
            if is_link or name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or not inside:
                raise UnsafeArchiveError(
                    f"{archive}: the entry {name!r} would be written outside {dest}. "
                    "The archive was not extracted. Delete it and download the dataset from a source you trust."
                )
        if progress:
            from tqdm.auto import tqdm

            members = tqdm(members, desc=f"extracting {archive.name}", unit="file", leave=False)
        for info in members:
            zf.extract(info, dest)
    return dest


def find_dataset_root(folder: Path, spec: DatasetSpec = BRAIN_TUMOR, depth: int = 2) -> Path:
    """The folder at or below ``folder`` (``depth`` levels at most) that holds all of ``spec``'s splits."""
    candidates = [folder]
    for _ in range(depth + 1):
        for c in candidates:
            if all((c / s).is_dir() for s in spec.splits):
                return c
        candidates = [d for c in candidates for d in sorted(c.iterdir()) if d.is_dir()]
    raise DownloadError(f"no folder with {' and '.join(spec.splits)} inside was found in {folder}")
