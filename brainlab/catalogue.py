"""The catalogue: every dataset brainlab knows, as data, and how its copy on disk is checked.

A dataset is one :class:`DatasetSpec`: its classes in label order (brainlab's class names), the
folder each class has on disk, its splits and their counts, where to download it (a Kaggle handle,
archive URLs) and the SHA-256 checksum of every file. :data:`BRAIN_TUMOR`, the paper's dataset, is
the default everywhere; :data:`CATALOGUE` lists every entry by name. Adding a dataset means adding
a spec (and its checksum file in ``brainlab/checksums/``), not code.

The rest of this module works from a spec alone, before any image is decoded:

- :func:`scan` checks a folder's layout (``<split>/<class folder>/<images>``), explains what is
  wrong when it does not match, and lists the image files with their labels;
- :func:`verify` compares a folder with its spec: counts per split and class, then checksums;
- :func:`default_location` and :func:`how_to_get_data` say where a copy goes and how to get one.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from brainlab import cache
from brainlab.errors import DataLayoutError
from brainlab.images import IMAGE_SUFFIXES

__all__ = ["ALIASES", "BRAIN_TUMOR", "CATALOGUE", "CLASS_NAMES", "NICKPARVAR", "SPLIT_FOLDERS", "DatasetSpec",
           "ImageFile", "Scan", "Verification", "default_location", "detect_spec", "expected_layout", "how_to_get_data",
           "is_ignored", "list_images", "present_splits", "scan", "sha256_of", "spec_for_folders", "spec_named",
           "unopenable", "unopenable_note", "verify"]

CLASS_NAMES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")  # the paper's label order
# The dataset's split folders on disk (not protocols or parts: see brainlab.protocols).
SPLIT_FOLDERS = ("Training", "Testing")
# Clutter that operating systems and tools leave in folders; never treated as data.
_IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything brainlab knows about a dataset before it has seen a single file.

    ``class_names`` are brainlab's names, in label order; ``class_folders`` maps a class name to
    the folder that holds its images on disk, for datasets whose folders are named otherwise
    (a class left out has a folder of its own name). ``counts`` gives, per split, the number of
    files of each class (by class name); its keys are the split folders. Checksums are keyed by
    the files' paths on disk, relative to the dataset folder (``"Testing/notumor/x.jpg"``).
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # split -> class name -> number of files
    kaggle_handle: str | None = None
    archive_urls: tuple[str, ...] = ()
    homepage: str = ""
    checksum_file: str | None = None  # sha256sum-style list shipped in brainlab/checksums/
    checksums: dict[str, str] | None = None  # relpath -> sha256, when given directly
    class_folders: dict[str, str] = field(default_factory=dict)  # class name -> folder name, where they differ
    short_name: str = ""  # what names its numbers: "external-<short_name>", `--dataset <short_name>`
    attribution: str = ""  # who made it and where it comes from, for READMEs and reports
    checksum_note: str = ""  # what the checksum file does not cover, and why

    def __post_init__(self):
        unknown = sorted(set(self.class_folders) - set(self.class_names))
        unknown += sorted({c for per_class in self.counts.values() for c in per_class} - set(self.class_names))
        if unknown:
            raise ValueError(f"dataset {self.name!r}: {', '.join(map(repr, unknown))} "
                             f"{'is not one' if len(unknown) == 1 else 'are not'} of its class names {self.class_names}")

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.counts)

    def folder(self, class_name: str) -> str:
        """The folder that holds ``class_name``'s images on disk."""
        return self.class_folders.get(class_name, class_name)

    def folder_names(self) -> tuple[str, ...]:
        """The class folders on disk, in label order."""
        return tuple(self.folder(c) for c in self.class_names)

    def class_of_folder(self, folder: str) -> str:
        """brainlab's class name for the folder ``folder`` (the inverse of :meth:`folder`)."""
        for c in self.class_names:
            if self.folder(c) == folder:
                return c
        raise KeyError(folder)

    def checksummed_splits(self) -> tuple[str, ...]:
        """The splits whose files the checksum list covers."""
        listed = {rel.split("/", 1)[0] for rel in self.file_checksums()}
        return tuple(s for s in self.splits if s in listed)

    def total(self, split: str | None = None) -> int:
        splits = [split] if split else self.splits
        return sum(sum(self.counts[s].values()) for s in splits)

    def file_checksums(self) -> dict[str, str]:
        """``{"Training/glioma_tumor/gg (1).jpg": sha256, ...}`` for every file of the dataset."""
        if self.checksums is not None:
            return dict(self.checksums)
        if not self.checksum_file:
            return {}
        text = resources.files("brainlab").joinpath("checksums", self.checksum_file).read_text("utf-8")
        sums = {}
        for line in text.splitlines():
            if line.strip():
                digest, relpath = line.split("  ", 1)
                sums[relpath] = digest
        return sums


_GITHUB_COMMIT = "3ea9f4eae54c67e5bddbf6f7a73582967a5f5f79"
BRAIN_TUMOR = DatasetSpec(
    name="brain-tumor-classification-mri",
    title='"Brain Tumor Classification (MRI)", S. Bhuvaji, A. Kadam, P. Bhumkar, S. Dedge, S. Kanchan (2020)',
    class_names=CLASS_NAMES,
    counts={
        "Training": {"glioma_tumor": 826, "meningioma_tumor": 822, "no_tumor": 395, "pituitary_tumor": 827},
        "Testing": {"glioma_tumor": 100, "meningioma_tumor": 115, "no_tumor": 105, "pituitary_tumor": 74},
    },
    kaggle_handle="sartajbhuvaji/brain-tumor-classification-mri",
    archive_urls=(
        "https://github.com/SartajBhuvaji/Brain-Tumor-Classification-DataSet/archive/"
        f"{_GITHUB_COMMIT}.zip",
    ),
    homepage="https://www.kaggle.com/datasets/sartajbhuvaji/brain-tumor-classification-mri",
    checksum_file="brain-tumor-classification-mri.sha256",
    short_name="sartaj",
    attribution=(
        '"Brain Tumor Classification (MRI)" by Sartaj Bhuvaji, Ankita Kadam, Prajakta Bhumkar, Sameer Dedge and '
        "Swati Kanchan (2020), Kaggle sartajbhuvaji/brain-tumor-classification-mri, DOI 10.34740/KAGGLE/DSV/1183165; "
        "MIT licence according to its authors."),
)

# "Brain Tumor MRI Dataset": a combination of three sources made by its author, used here as a test set
# from elsewhere (external validation). Only its Testing split's checksums are known to brainlab.
NICKPARVAR = DatasetSpec(
    name="brain-tumor-mri-dataset",
    title='"Brain Tumor MRI Dataset", M. Nickparvar (2021)',
    class_names=CLASS_NAMES,
    counts={
        "Training": {"glioma_tumor": 1321, "meningioma_tumor": 1339, "no_tumor": 1595, "pituitary_tumor": 1457},
        "Testing": {"glioma_tumor": 300, "meningioma_tumor": 306, "no_tumor": 405, "pituitary_tumor": 300},
    },
    kaggle_handle="masoudnickparvar/brain-tumor-mri-dataset",
    homepage="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
    checksum_file="brain-tumor-mri-dataset.sha256",
    class_folders={"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "no_tumor": "notumor",
                   "pituitary_tumor": "pituitary"},
    short_name="nickparvar",
    attribution=(
        '"Brain Tumor MRI Dataset" by Masoud Nickparvar (Kaggle, masoudnickparvar/brain-tumor-mri-dataset), '
        "which combines three sources: the figshare brain tumour dataset (J. Cheng et al., T1-weighted "
        "contrast-enhanced slices), the SARTAJ dataset (\"Brain Tumor Classification (MRI)\", S. Bhuvaji et al.) "
        "and Br35H (A. Hamada, no-tumour images). Read its licence on the Kaggle page before sharing any file; "
        "brainlab downloads it for you and ships none of it."),
    checksum_note=(
        "Only the Testing split's 1311 files have checksums in brainlab's catalogue (they were computed from a "
        "byte-for-byte copy of that split); the Training split's files are checked by their counts alone."),
)
ALIASES = {spec.short_name: spec.name for spec in (BRAIN_TUMOR, NICKPARVAR)}

CATALOGUE: dict[str, DatasetSpec] = {spec.name: spec for spec in (BRAIN_TUMOR, NICKPARVAR)}


def spec_named(name: str) -> DatasetSpec:
    """The catalogue entry called ``name`` (its full name, or a short one: ``sartaj``, ``nickparvar``)."""
    name = ALIASES.get(name, name)
    if name not in CATALOGUE:
        raise ValueError(f"no dataset called {name!r} in brainlab's catalogue; choose from "
                         f"{', '.join(list(ALIASES) + list(CATALOGUE))}")
    return CATALOGUE[name]


def spec_for_folders(folders) -> DatasetSpec | None:
    """The catalogue entry whose class folders are exactly ``folders`` (names), or None."""
    folders = {f for f in folders if not is_ignored(f)}
    for spec in CATALOGUE.values():
        if folders == set(spec.folder_names()):
            return spec
    return None


def detect_spec(root, default: DatasetSpec | None = None) -> DatasetSpec:
    """Which catalogue entry the folder ``root`` holds, judged by its class folders' names.

    ``root`` is a dataset folder (``<split>/<class folder>/``, one split is enough) or a folder of
    class folders. A folder that matches no entry gives ``default`` when one is given (the caller
    then explains the layout), else a :class:`DataLayoutError` naming what was found and what
    each entry expects.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        if default is not None:
            return default
        raise DataLayoutError(f"{root} is not a folder.")
    candidates = [[p.name for p in _visible_dirs(root)]]
    candidates += [[p.name for p in _visible_dirs(root / s)] for s in SPLIT_FOLDERS if (root / s).is_dir()]
    for folders in candidates:
        spec = spec_for_folders(folders)
        if spec is not None:
            return spec
    if default is not None:
        return default
    found = "; ".join(", ".join(f) or "(none)" for f in candidates if f) or "no folders"
    known = "\n".join(f"  {s.name}: {', '.join(s.folder_names())}" for s in CATALOGUE.values())
    raise DataLayoutError(f"{root}: its class folders ({found}) match no dataset in brainlab's catalogue.\n"
                          f"Class folders must be named as one of these (in Training/ and Testing/, or directly):\n"
                          f"{known}")


def present_splits(root, spec: DatasetSpec = BRAIN_TUMOR) -> tuple[str, ...]:
    """The splits of ``spec`` that ``root`` has a folder for, in the spec's order."""
    return tuple(s for s in spec.splits if (Path(root) / s).is_dir())


# --------------------------------------------------------------------------- where a copy lives


def default_location(spec: DatasetSpec = BRAIN_TUMOR) -> Path:
    """Where :func:`brainlab.download.fetch_data` puts the dataset in the per-user cache."""
    return cache.cache_dir() / "datasets" / spec.name


def how_to_get_data(spec: DatasetSpec = BRAIN_TUMOR) -> str:
    """What a person can do to get ``spec``'s dataset, as lines of advice."""
    holds = " and ".join(f"{s}/" for s in spec.splits)
    return (
        "What you can do:\n"
        f"  - download it now:   brainlab fetch-data{' --dataset ' + spec.short_name if spec.short_name else ''}"
        f"   (from Kaggle{', or GitHub as a fallback' if spec.archive_urls else ''})\n"
        f"  - or download it yourself from {spec.homepage}, unpack it and point brainlab at it:\n"
        f"        export BRAINLAB_DATA=/path/to/folder   (the folder that holds {holds})\n"
        "  - or work with the small sample shipped with brainlab: set BRAINLAB_QUICK=1,\n"
        "    or pass root=brainlab.data.sample_dir()."
    )


# --------------------------------------------------------------------------- the layout on disk


def expected_layout(spec: DatasetSpec = BRAIN_TUMOR, splits=None) -> str:
    """The folder tree ``spec``'s dataset must have, for error messages."""
    folders = [spec.folder(c) for c in spec.class_names]
    return "\n".join(["  <data folder>/"] + [line for split in (splits or spec.splits)
                                             for line in [f"    {split}/"] + [f"      {f}/   (image files)"
                                                                              for f in folders]])


@dataclass(frozen=True)
class ImageFile:
    """One image of the dataset, as found on disk."""

    path: Path
    relpath: str  # relative to the dataset root, with forward slashes: "Testing/no_tumor/image(1).jpg"
    split: str
    class_name: str  # brainlab's class name (the folder may be named otherwise, see DatasetSpec.class_folders)
    label: int


@dataclass
class Scan:
    """What :func:`scan` found: image files that can be opened, and what it set aside, with the reason."""

    root: Path
    files: list[ImageFile]
    bad: list[tuple[Path, str]] = field(default_factory=list)  # not images: other files, unexpected folders
    broken: list[tuple[Path, str]] = field(default_factory=list)  # image files that cannot be opened (unopenable)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            out.setdefault(f.split, {}).setdefault(f.class_name, 0)
            out[f.split][f.class_name] += 1
        return out


def is_ignored(name: str) -> bool:
    """Hidden files and folders and OS clutter (``.DS_Store``, ``__MACOSX``, ...)."""
    return name.startswith(".") or name in _IGNORED_NAMES or name.startswith("._")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_ignored(p.name))


def unopenable(path: Path) -> str | None:
    """Why the file at ``path`` cannot be opened, and what to do, or ``None`` when it can.

    Catches what a listing of file names does not show: a dangling symbolic link (an un-fetched
    git-annex or DVC file looks like one), a link loop, a pipe or device, a file without read permission.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that leads back to itself (a loop): replace it with the image file, or delete it"
        if path.is_symlink():
            return (f"a symbolic link to {os.readlink(path)}, which does not exist (an un-fetched git-annex or "
                    "DVC file looks like this): fetch it (`git annex get`, `dvc pull`), or delete the link")
        return f"cannot be opened ({exc.strerror or exc}): check the file, or move it out of the folder"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe, socket or device): move it out of the folder"
    if not os.access(path, os.R_OK):
        return "no permission to read it: allow reading (chmod a+r), or move it out of the folder"
    return None


def list_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]], list[tuple[Path, str]]]:
    """The image files under ``folder`` (at any depth, sorted), then what was set aside, with the reason.

    Returns ``(images, not_images, broken)``: files without an image suffix, and image files that
    cannot be opened (:func:`unopenable`), are set aside; hidden files and OS clutter are left out.
    Every listing of image folders (:func:`scan`, :func:`brainlab.data.scan_class_folders`) goes through it,
    so what ``brainlab doctor`` calls usable is what training reads.
    """
    images, not_images, broken = [], [], []
    for path in sorted(folder.rglob("*")):
        if any(is_ignored(part) for part in path.relative_to(folder).parts) or path.is_dir():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            not_images.append((path, f"not an image file (suffix {path.suffix or 'missing'})"))
        elif reason := unopenable(path):
            broken.append((path, reason))
        else:
            images.append(path)
    return images, not_images, broken


def scan(root, splits=None, class_names=None, *, spec: DatasetSpec = BRAIN_TUMOR) -> Scan:
    """List the image files under ``root/<split>/<class folder>/``, checking the layout on the way.

    ``splits`` and ``class_names`` default to ``spec``'s; labels follow the order of
    ``class_names``. A missing split, a missing, misnamed or empty class folder is a
    :class:`DataLayoutError` that shows the expected layout. Files without an image suffix are
    set aside in ``Scan.bad``, image files that cannot be opened in ``Scan.broken`` (see
    :func:`list_images`); whether an image file really decodes is checked when it is loaded.
    """
    splits = tuple(splits or spec.splits)
    class_names = tuple(class_names or spec.class_names)
    layout = expected_layout(spec, splits)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(f"{root} is not a folder.\nExpected layout:\n{layout}")
    folder_of = {c: spec.folder(c) for c in class_names}
    files: list[ImageFile] = []
    bad: list[tuple[Path, str]] = []
    broken: list[tuple[Path, str]] = []
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataLayoutError(_missing_split_message(root, split, layout))
        found = {p.name: p for p in _visible_dirs(split_dir)}
        missing = [f for f in folder_of.values() if f not in found]
        unexpected = [n for n in found if n not in folder_of.values()]
        if missing:
            hint = f"\nFound instead: {', '.join(unexpected)}" if unexpected else ""
            raise DataLayoutError(
                f"{split_dir}: class folder(s) missing: {', '.join(missing)}.{hint}\n"
                f"Class folders must be named exactly {', '.join(folder_of.values())}.\n"
                f"Expected layout:\n{layout}"
            )
        for name in unexpected:
            bad.append((found[name], "unexpected folder (not one of the class names); ignored"))
        for label, class_name in enumerate(class_names):
            class_dir = found[folder_of[class_name]]
            images, not_images, cannot_open = list_images(class_dir)
            bad += not_images
            broken += cannot_open
            if not images:
                raise DataLayoutError(
                    f"{class_dir} holds no image files{unopenable_note(cannot_open)}. Put the {class_name} images "
                    f"of the {split} split there ({', '.join(sorted(IMAGE_SUFFIXES))}).\nExpected layout:\n{layout}"
                )
            files += [ImageFile(p, p.relative_to(root).as_posix(), split, class_name, label) for p in images]
    return Scan(root, files, bad, broken)


def unopenable_note(broken: list[tuple[Path, str]]) -> str:
    """What "holds no image files" adds when a folder's image files cannot be opened: how many, the first and why."""
    if not broken:
        return ""
    path, reason = broken[0]
    return f" that can be opened ({len(broken)} set aside; {path.name}: {reason})"


def _missing_split_message(root: Path, split: str, layout: str) -> str:
    msg = f"{root}: no '{split}' folder."
    near = [p.name for p in _visible_dirs(root) if p.name.lower() == split.lower()]
    if near:
        msg += f" Found '{near[0]}': rename it to '{split}' (the names are case-sensitive)."
    else:
        nested = [p for p in _visible_dirs(root) if (p / split).is_dir()]
        if nested:
            msg += f" It is one level down: use {nested[0]} as the data folder."
    return msg + f"\nExpected layout:\n{layout}"


# --------------------------------------------------------------------------- checking a copy


@dataclass
class Verification:
    """The result of comparing a folder with a :class:`DatasetSpec`.

    ``not_checked`` says, one line each, what the comparison could not cover: a split that is not
    in the folder, a split whose files have no checksums in the catalogue. ``ok`` is about what
    was checked; read ``not_checked`` before calling a copy complete.
    """

    counts: dict[str, dict[str, int]]
    count_errors: list[str]
    mismatched: list[str]  # files whose sha256 differs
    missing: list[str]  # files listed in the checksums but absent
    extra: list[str]  # image files present but not listed
    splits: tuple[str, ...] = ()  # the splits that were checked
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.count_errors or self.mismatched or self.missing)

    def problems(self, limit: int = 10) -> str:
        out = list(self.count_errors)
        for label, items in (("checksum mismatch", self.mismatched), ("missing", self.missing)):
            out += [f"{label}: {p}" for p in items[:limit]]
            if len(items) > limit:
                out.append(f"... and {len(items) - limit} more {label}")
        return "\n".join(out)


def sha256_of(path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(root, spec: DatasetSpec = BRAIN_TUMOR, checksums: bool = True, splits=None) -> Verification:
    """Check that ``root`` holds exactly ``spec``'s files: counts per split and class, then checksums.

    ``splits`` (default: all of ``spec``'s) names the splits to check; ``splits="present"`` checks
    those the folder has (a copy of the Testing split alone, say) and lists the others in
    ``Verification.not_checked``, as it lists splits whose files have no checksums in the catalogue.
    """
    if splits == "present":
        splits = present_splits(root, spec) or spec.splits  # none present: let scan explain the layout
    splits = tuple(splits or spec.splits)
    found = scan(root, splits=splits, spec=spec)
    counts = found.counts()
    count_errors = [
        f"{split}/{spec.folder(c)}: expected {n} images, found {counts.get(split, {}).get(c, 0)}"
        for split, per_class in spec.counts.items() if split in splits for c, n in per_class.items()
        if counts.get(split, {}).get(c, 0) != n
    ]
    not_checked = [f"{s}/: not in this folder, not checked" for s in spec.splits if s not in splits]
    mismatched, missing, extra = [], [], []
    expected = spec.file_checksums() if checksums else {}
    if checksums:
        summed = {rel.split("/", 1)[0] for rel in expected}
        not_checked += [f"{s}/: no checksums in brainlab's catalogue, only the counts were checked"
                        + (f" ({spec.checksum_note})" if spec.checksum_note else "")
                        for s in splits if s not in summed]
        expected = {rel: d for rel, d in expected.items() if rel.split("/", 1)[0] in splits}
    if expected:
        present = {f.relpath: f.path for f in found.files}
        for rel, digest in expected.items():
            if rel not in present:
                missing.append(rel)
            elif sha256_of(present[rel]) != digest:
                mismatched.append(rel)
        summed_splits = {rel.split("/", 1)[0] for rel in expected}
        extra = sorted(rel for rel in set(present) - set(expected) if rel.split("/", 1)[0] in summed_splits)
    return Verification(counts, count_errors, mismatched, missing, extra, splits, not_checked)
