"""How images reach a model: find the data, list its files, decode them once, hand out tf.data.

The flow is one way::

    folder on disk --scan()--> list of files --load_split()--> ImageSet --.dataset()--> tf.data

- :func:`find_data` decides which folder to use (argument, ``BRAINLAB_DATA``, cache, download).
- :func:`scan` checks the folder layout and lists the image files, ignoring hidden clutter
  (it belongs to the catalogue, :mod:`brainlab.catalogue`, which knows each dataset's layout).
- Every file is decoded by :func:`brainlab.images.read_image` (any mode, any size, EXIF rotation), the
  one place that decodes images.
- :func:`load_split` / :func:`load_splits` decode every image once into memory (cached on disk
  for next time) and hand out :class:`ImageSet` objects; ``ImageSet.dataset()`` gives the
  ``tf.data.Dataset`` a model trains on. Images stay ``uint8`` until then: a model does its own
  preprocessing, so a loader never has to know which model it feeds.

What a dataset is (its classes, split folders, counts, checksums, where to download it) is in
:mod:`brainlab.catalogue`; :data:`CLASS_NAMES` here are the default dataset's classes, in the
order of a model's outputs. What the sets are called (``official-test``, ``clean-val`` ...) is
:mod:`brainlab.protocols`' to say.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import posixpath
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from brainlab import catalogue, config, protocols, runs
from brainlab import cache as _cache  # under another name: `cache` is the loaders' on/off argument
from brainlab.catalogue import CLASS_NAMES, SPLIT_FOLDERS, DatasetSpec, ImageFile, scan
from brainlab.errors import BrainlabError, DataLayoutError, DataNotFoundError
from brainlab.images import CROPS, UnreadableImageError, read_image

__all__ = ["CLASS_NAMES", "MANIFEST_PARTS", "ImageSet", "Splits", "find_data", "load_labelled", "load_split",
           "load_splits", "protocol", "read_manifest", "sample_dir", "scan", "scan_class_folders"]

# The parts a split manifest may name: a clean split's three, and "external" (images of another
# dataset with no copy in the training dataset, written by ``brainlab audit --against``).
MANIFEST_PARTS = (*protocols.PARTS, protocols.EXTERNAL)


# --------------------------------------------------------------------------- finding the data


def sample_dir() -> Path:
    """The small sample shipped inside brainlab (same layout as the full dataset)."""
    return Path(str(resources.files("brainlab").joinpath("sample")))


def find_data(path=None, *, download: bool = True, spec: DatasetSpec = catalogue.BRAIN_TUMOR) -> Path:
    """Return the dataset folder to use, looking in this order:

    1. ``path``, when given;
    2. in quick mode (``BRAINLAB_QUICK=1``), the bundled sample;
    3. the folder named by ``BRAINLAB_DATA`` (for the default dataset only);
    4. the per-user cache (where :func:`brainlab.download.fetch_data` puts it);
    5. a fresh download (only when ``download=True``).
    """
    if path is not None:
        return _checked(Path(path).expanduser(), "the path you passed", spec)
    if config.quick_mode():
        return sample_dir()
    env = config.data_env() if spec.name == catalogue.BRAIN_TUMOR.name else None  # BRAINLAB_DATA: the default dataset
    if env is not None:
        return _checked(env, "BRAINLAB_DATA", spec)
    cached = catalogue.default_location(spec)
    if cached.is_dir():
        return cached
    if not download:
        raise DataNotFoundError(
            "The dataset is not on this computer yet.\n" + catalogue.how_to_get_data(spec)
        )
    from brainlab.download import fetch_data

    return fetch_data(spec=spec)


def _checked(root: Path, where: str, spec: DatasetSpec) -> Path:
    if not root.is_dir():
        raise DataNotFoundError(f"{root} (from {where}) is not a folder.\n" + catalogue.how_to_get_data(spec))
    return root


# --------------------------------------------------------------------------- images in memory


@dataclass
class ImageSet:
    """Decoded images of one split, with the labels and the file each came from.

    ``split`` names the protocol and part (a :class:`~brainlab.protocols.ResultName` written out),
    e.g. ``"official-test"`` (a verified copy of the dataset), ``"clean-val"`` (a manifest),
    ``"sample-test"`` (the bundled sample) or ``"unverified-test"`` (any other folder; see
    :func:`protocol`), so every number computed from this set can say where it came from. A set
    read for an evaluation alone is named freely (:func:`load_labelled`).
    """

    split: str
    images: np.ndarray  # uint8, (N, H, W, C)
    labels: np.ndarray  # int32, (N,)
    paths: list[str]  # relative to the dataset root
    class_names: tuple[str, ...] = CLASS_NAMES
    root: Path | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"ImageSet({self.split!r}, {len(self)} images of shape {self.images.shape[1:]}, "
                f"per class {self.class_counts()})")

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    def subset(self, index, split: str | None = None) -> "ImageSet":
        """A new ImageSet with the images at ``index`` (an array of positions or a mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return ImageSet(split or self.split, self.images[index], self.labels[index],
                        [self.paths[i] for i in index], self.class_names, self.root)

    def dataset(self, batch_size: int = 32, shuffle: bool = False, seed: int = config.DEFAULT_SEED):
        """A ``tf.data.Dataset`` of ``(float32 images in 0..255, int32 labels)`` batches.

        The images are already decoded in memory, so every epoch after the first costs
        almost nothing. ``shuffle=False`` keeps the file order (use it for evaluation);
        ``shuffle=True`` reshuffles each epoch, reproducibly for a given ``seed``.
        """
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.images, self.labels.astype(np.int32)))
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                      num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)


@dataclass
class Splits:
    """The three parts a model needs: fit on ``train``, choose on ``val``, report on ``test``."""

    train: ImageSet
    val: ImageSet
    test: ImageSet

    def __iter__(self):
        return iter((self.train, self.val, self.test))

    def summary(self) -> str:
        rows = [f"{'split':<16}" + "".join(f"{c:>18}" for c in self.train.class_names) + f"{'total':>8}"]
        for s in self:
            counts = s.class_counts()
            rows.append(f"{s.split:<16}" + "".join(f"{counts[c]:>18}" for c in s.class_names) + f"{len(s):>8}")
        return "\n".join(rows)


def load_split(split: str = "Training", root=None, image_size: int = 128, channels: int = 3,
               progress: bool = True, cache: bool = True, spec: DatasetSpec | None = None,
               crop: str = "none") -> ImageSet:
    """Decode the ``Training`` or ``Testing`` split into an :class:`ImageSet`.

    ``crop="head"`` cuts every image to the square around the head first
    (:func:`brainlab.images.head_crop`); ``"none"`` keeps the whole frame.

    ``spec`` (default: the catalogue entry whose class folders ``root`` has, see
    :func:`brainlab.catalogue.detect_spec`) says how the class folders are named.
    The set is named after the folder it came from and the part (see :func:`protocol`):
    ``official-train``/``official-test`` for a verified copy of the dataset, ``sample-...`` for
    the bundled sample, ``unverified-...`` for any other folder.
    """
    root = find_data(root)
    spec = spec or _spec_of(root)
    return _load_split(split, root, protocol(root, spec), image_size, channels, progress, cache, spec, crop)


def _load_split(split, root, protocol_name, image_size, channels, progress, cache, spec, crop) -> ImageSet:
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be one of the split folders {SPLIT_FOLDERS}, not {split!r}")
    found = scan(root, splits=(split,), spec=spec)
    name = str(protocols.ResultName(protocol_name, "train" if split == "Training" else "test"))
    return _decode(root, found.files, name, image_size, channels, progress, cache, crop,
                   set_aside=_relative(found.root, found.broken))


def _relative(root: Path, entries) -> list[tuple[str, str]]:
    """``(path, reason)`` pairs with each path relative to ``root``, as an :class:`ImageSet` lists skipped files."""
    return [(Path(p).relative_to(root).as_posix(), reason) for p, reason in entries]


def _spec_of(root) -> DatasetSpec:
    """The catalogue entry whose class folders ``root`` has; the default one when none matches
    (then :func:`scan` explains what is wrong with the layout)."""
    return catalogue.detect_spec(root, default=catalogue.BRAIN_TUMOR)


def protocol(root, spec: DatasetSpec | None = None) -> str:
    """The protocol of data read from ``root``: the first half of its sets' names (see :mod:`brainlab.protocols`).

    - ``"sample"``: the bundled sample (a smoke test; its numbers mean little);
    - ``"official"``: a copy of the dataset that :func:`brainlab.catalogue.verify` accepts (the
      counts and every file's checksum match), so its numbers stand beside the paper's;
    - ``"unverified"``: any other folder (your own data, a test fixture, a copy with files added,
      removed or changed). ``brainlab doctor`` says why a copy does not verify;
    - another catalogue entry's short name (``"nickparvar"``) for a folder laid out like it.

    ``spec`` (default: the catalogue entry whose class folders ``root`` has) says which dataset.

    Checksumming every file takes a while on a slow disk, so the verdict is cached (in
    ``<cache>/verified/``), keyed by the folder's file names, sizes and modification times:
    a changed, added or removed file makes a new verdict.
    """
    root = Path(root)
    if root.resolve() == sample_dir().resolve():
        return protocols.SAMPLE
    spec = spec or _spec_of(root)
    if spec is not catalogue.BRAIN_TUMOR and spec.name in catalogue.CATALOGUE:
        return spec.short_name or spec.name  # another collection: never "official" beside the paper
    return protocols.OFFICIAL if _verifies(root, spec) else protocols.UNVERIFIED


def _verifies(root: Path, spec: DatasetSpec) -> bool:
    """Whether ``root`` verifies against ``spec``, from the cached verdict when the files are unchanged."""
    try:
        found = scan(root, spec=spec)
    except BrainlabError:  # a split or class folder missing: not the dataset
        return False
    counts = found.counts()
    if any(counts.get(s, {}).get(c, 0) != n for s, per_class in spec.counts.items() for c, n in per_class.items()):
        return False  # the counts differ: no need to read a single file
    h = hashlib.sha256(f"v1|{spec.name}|{root.resolve()}".encode())
    for f in found.files:
        st = f.path.stat()
        h.update(f"|{f.relpath}|{st.st_size}|{st.st_mtime_ns}".encode())
    verdict_file = _cache.cache_dir() / "verified" / f"{h.hexdigest()[:24]}.json"
    try:
        return bool(json.loads(verdict_file.read_text())["ok"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no verdict yet (or a damaged one): check the files
    ok = catalogue.verify(root, spec).ok
    verdict_file.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(verdict_file, {"root": str(root.resolve()), "dataset": spec.name, "ok": ok})
    return ok


def load_splits(root=None, image_size: int = 128, channels: int = 3, val_fraction: float = 0.15,
                seed: int = config.DEFAULT_SEED, manifest=None, progress: bool = True,
                cache: bool = True, crop: str = "none", allow_outside: bool = False) -> Splits:
    """Train, validation and test sets (every image cut to the head first with ``crop="head"``).

    Without ``manifest``: the official protocol. ``test`` is the Testing split and ``val`` a
    stratified, seeded ``val_fraction`` of Training, so that no decision is ever made by
    looking at the test set. The sets are named as :func:`protocol` says: ``official-test``
    only for a verified copy of the dataset, ``sample-test`` or ``unverified-test`` otherwise.

    With ``manifest`` (a CSV with columns ``path,class,split``, split being train/val/test,
    such as the copy-free ``clean_split.csv`` written by ``brainlab audit``): exactly
    the files it lists. The sets are then named after the manifest, e.g. ``clean-test``. Its rows are
    checked first (:func:`read_manifest`); paths outside ``root`` only with ``allow_outside``.
    """
    root = find_data(root)
    if manifest is not None:
        return _load_manifest(root, Path(manifest), image_size, channels, progress, cache, crop, allow_outside)
    from sklearn.model_selection import train_test_split

    spec = _spec_of(root)
    protocol_name = protocol(root, spec)
    training = _load_split("Training", root, protocol_name, image_size, channels, progress, cache, spec, crop)
    testing = _load_split("Testing", root, protocol_name, image_size, channels, progress, cache, spec, crop)
    positions = np.arange(len(training))
    try:
        train_idx, val_idx = train_test_split(positions, test_size=val_fraction, random_state=seed,
                                              stratify=training.labels)
    except ValueError as exc:  # too few images for a stratified validation part
        counts = ", ".join(f"{c}: {n}" for c, n in training.class_counts().items())
        raise BrainlabError(f"{root}/Training is too small to set {val_fraction:.0%} of it aside for validation with "
                            f"every class in both parts ({counts}; {exc}). Add images, or use the bundled "
                            "sample (quick mode).") from exc
    return Splits(training.subset(np.sort(train_idx), str(protocols.ResultName(protocol_name, "train"))),
                  training.subset(np.sort(val_idx), str(protocols.ResultName(protocol_name, "val"))), testing)


def read_manifest(path, root=None, *, parts=(), allow_outside: bool = False) -> list[tuple[str, str, str]]:
    """Rows ``(path, class, split)`` of a split manifest, every one checked before any image is read.

    Splits are train/val/test (a clean split) or external (another dataset's images, see
    ``brainlab audit --against``). Refused with a :class:`~brainlab.errors.BrainlabError` that names
    the line: text that is not UTF-8 (a spreadsheet's UTF-8 BOM is fine), a missing column or value,
    an unknown class or split, an image listed twice (in one part or in two). With ``root``, the
    folder the paths are relative to, also a path that leaves it (absolute or through ``..``; allowed
    with ``allow_outside``) and a file that is not there. Each of ``parts`` needs a row. Paths come
    back normalised (``a/./b`` is ``a/b``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Split manifest {path} does not exist. `brainlab audit --out DIR` writes one.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise BrainlabError(f"{path}, line {line}: byte {raw[exc.start]:#04x} is not UTF-8 (Latin-1, or a "
                            "spreadsheet's plain 'CSV'?): save the manifest as 'CSV UTF-8'.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    problems, rows, seen = [], [], {}
    try:
        if not reader.fieldnames or not {"path", "class", "split"} <= set(reader.fieldnames):
            raise BrainlabError(f"{path}: a split manifest needs the columns path,class,split; "
                                f"found {reader.fieldnames}.")
        for r in reader:
            line, (rel, c, s) = reader.line_num, (r.get(k) for k in ("path", "class", "split"))
            if None in r or not all((rel, c, s)):
                problems.append(f"line {line}: needs a path, a class and a split, and nothing more; found "
                                f"{','.join(str(v) for v in r.values() if v is not None)!r}")
                continue
            if c not in CLASS_NAMES or s not in MANIFEST_PARTS:
                problems.append(f"line {line}: {rel!r} has class {c!r} and split {s!r}; classes must be one of "
                                f"{', '.join(CLASS_NAMES)} and splits one of {'/'.join(MANIFEST_PARTS)}")
                continue
            rel = posixpath.normpath(rel.replace("\\", "/"))
            if rel in seen:
                first, part = seen[rel]
                problems.append(f"line {line}: {rel} is listed on line {first} already" + (
                    "; list each image once" if part == s else
                    f", in {part}, and here in {s}: an image in two parts leaks between them"))
                continue
            seen[rel] = line, s
            outside = posixpath.isabs(rel) or rel == ".." or rel.startswith("../")
            if root is not None and outside and not allow_outside:
                problems.append(f"line {line}: {rel} is outside the data folder {root}; give paths inside it "
                                "(or --allow-outside, allow_outside=True, to read it anyway)")
            elif root is not None and not (Path(root) / rel).is_file():
                problems.append(f"line {line}: {rel} is not a file in {root} (a manifest of another copy?)")
            rows.append((rel, c, s))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not CSV ({exc})")
    empty = [p for p in parts if not any(s == p for _, _, s in rows)]
    if empty and not problems:
        problems.append(f"no {'/'.join(empty)} rows; it needs at least one image in each of {', '.join(parts)}")
    if len(problems) == 1:
        raise BrainlabError(f"{path}, {problems[0]}.")
    if problems:
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise BrainlabError(f"{path}: {len(problems)} rows cannot be used:\n  " + "\n  ".join(problems[:5]) + more)
    return rows


def _load_manifest(root, manifest: Path, image_size, channels, progress, cache, crop, allow_outside) -> Splits:
    rows = read_manifest(manifest)  # its parts first: an external manifest is refused as such
    if any(s == protocols.EXTERNAL for _, _, s in rows):
        raise BrainlabError(f"{manifest} lists external images (to evaluate a model on, not to train one): "
                            "use `brainlab evaluate --manifest` or brainlab.data.load_labelled(manifest=...).")
    rows = read_manifest(manifest, root, parts=protocols.PARTS, allow_outside=allow_outside)
    name = protocols.manifest_protocol(manifest)
    files = [ImageFile(Path(root) / rel, rel, rel.split("/", 1)[0], class_name, CLASS_NAMES.index(class_name))
             for rel, class_name, _ in rows]
    everything = _decode(Path(root), files, name, image_size, channels, progress, cache, crop)
    part_of = {rel: s for rel, _, s in rows}
    parts = np.array([part_of[p] for p in everything.paths])
    return Splits(*(everything.subset(parts == s, str(protocols.ResultName(name, s))) for s in protocols.PARTS))


def scan_class_folders(root, spec: DatasetSpec | None = None,
                       split: str = "external") -> tuple[DatasetSpec, list[ImageFile], list[tuple[Path, str]]]:
    """The images of a folder that holds one folder per class, named as in a catalogue entry.

    Returns the entry (given, or found from the folder names), the files, labelled in brainlab's
    class order, with paths relative to ``root``, and the image files that cannot be opened, with
    the reason (see :func:`brainlab.catalogue.list_images`). A missing class folder, a folder named
    after no class, an empty class folder: a :class:`~brainlab.errors.DataLayoutError` that says which.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(f"{root} is not a folder: give a folder with one folder of images per class.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not catalogue.is_ignored(p.name))
    if spec is None:
        spec = catalogue.spec_for_folders(found)
    if spec is None:
        splits_inside = [s for s in SPLIT_FOLDERS if s in found]
        if splits_inside:
            raise DataLayoutError(
                f"{root} is a dataset folder ({', '.join(splits_inside)}/ inside), not a folder of class folders: "
                f"give {root / splits_inside[-1]} instead, or the dataset folder with --manifest CSV.")
        # the entry that shares most folder names explains best what is wrong
        spec = max(catalogue.CATALOGUE.values(), key=lambda s: len(set(s.folder_names()) & set(found)))
    expected = spec.folder_names()
    unknown = [f for f in found if f not in expected]
    missing = [f for f in expected if f not in found]
    names = "\n".join(f"  {s.name}: {', '.join(s.folder_names())}" for s in catalogue.CATALOGUE.values())
    if unknown:
        raise DataLayoutError(f"{root}: unknown class folder(s) {', '.join(unknown)}. Class folders must be named "
                              f"as in one of these datasets:\n{names}")
    if missing:
        raise DataLayoutError(f"{root}: class folder(s) missing: {', '.join(missing)} "
                              f"(found {', '.join(found) or 'none'}). "
                              f"Every class needs its folder of images:\n{names}")
    files, broken = [], []
    for label, class_name in enumerate(spec.class_names):
        folder = root / spec.folder(class_name)
        images, _, cannot_open = catalogue.list_images(folder)
        broken += cannot_open
        if not images:
            raise DataLayoutError(f"{folder} holds no image files{catalogue.unopenable_note(cannot_open)}; "
                                  f"put the {class_name} images there.")
        files += [ImageFile(p, p.relative_to(root).as_posix(), split, class_name, label) for p in images]
    return spec, files, broken


def load_labelled(root, image_size: int = 128, channels: int = 3, *, manifest=None, name: str | None = None,
                  progress: bool = True, cache: bool = True, crop: str = "none",
                  allow_outside: bool = False) -> ImageSet:
    """Decode any labelled folder for an evaluation: a folder of class folders, or a dataset and a manifest.

    Without ``manifest``, ``root`` holds one folder per class, named as brainlab names the classes
    or as a catalogue entry does (``glioma``, ``notumor``, ... for the Nickparvar dataset). With
    ``manifest`` (``path,class,split``, paths relative to ``root``, one split only, e.g. the
    ``external_manifest.csv`` of ``brainlab audit --against``), exactly the images it lists. The set
    is named ``name`` (default: ``external-<dataset>``, after the catalogue entry found). ``crop``
    as in :func:`load_split`: a model trained on head crops is evaluated on head crops. The manifest's
    rows are checked first (:func:`read_manifest`); paths outside ``root`` only with ``allow_outside``.
    """
    root = Path(root).expanduser()
    broken = []
    if manifest is not None:
        manifest = Path(manifest)
        rows = read_manifest(manifest, root, allow_outside=allow_outside)
        parts = sorted({s for _, _, s in rows})
        if len(parts) > 1:
            raise BrainlabError(f"{manifest} names several parts ({', '.join(parts)}); an evaluation reads one. "
                                "Write a manifest of the images to evaluate on alone.")
        if not rows:
            raise BrainlabError(f"{manifest} lists no images.")
        spec = _spec_of(root)
        files = [ImageFile(root / rel, rel, part, class_name, CLASS_NAMES.index(class_name))
                 for rel, class_name, part in rows]
    else:
        spec, files, broken = scan_class_folders(root)
    name = name or protocols.external_name(spec.short_name or spec.name)
    return _decode(root, files, name, image_size, channels, progress, cache, crop, set_aside=_relative(root, broken))


def _decode(root: Path, files: list[ImageFile], name: str, image_size: int, channels: int,
            progress: bool, cache: bool, crop: str = "none", set_aside=()) -> ImageSet:
    """Decode ``files`` once (in threads: PIL releases the GIL), skipping unreadable ones.

    ``set_aside`` lists ``(path, reason)`` of the files a scan could not even open; they are
    reported and listed in ``ImageSet.skipped`` with the files that do not decode.

    The result is cached as a ``.npz`` in the brainlab cache, keyed by the files' names, sizes
    and modification times plus the image size, channels and crop, so a second run loads in a blink.
    Past ``BRAINLAB_CACHE_MAX_MB`` the least recently used cache files are removed
    (``brainlab cache`` shows the cache, ``brainlab cache --clear`` empties it).
    """
    max_bytes = _cache.cache_max_bytes() if cache else None  # a bad setting is refused before any work
    if crop not in CROPS:
        raise BrainlabError(f"Unknown crop {crop!r}: choose {' or '.join(CROPS)}.")
    key = _cache_key(files, image_size, channels, crop, set_aside)
    cache_file = _cache.cache_dir() / "decoded" / f"{key}.npz"
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                skipped = [tuple(x) for x in z["skipped"].tolist()]
                result = ImageSet(name, z["images"], z["labels"], z["paths"].tolist(), CLASS_NAMES, root, skipped)
            os.utime(cache_file)  # used now: pruning removes the least recently used files first
            _report_skipped(result.skipped, name)
            return result
        except (OSError, KeyError, ValueError):
            cache_file.unlink(missing_ok=True)  # a damaged cache file is simply rebuilt

    def decode(f: ImageFile):
        try:
            return read_image(f.path, image_size, channels, crop), None
        except UnreadableImageError as exc:
            return None, exc.reason

    images = np.zeros((len(files), image_size, image_size, channels), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)
    skipped = list(set_aside)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        results = pool.map(decode, files)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(files), desc=f"decoding {name}", unit="img", leave=False)
        for i, (arr, reason) in enumerate(results):
            if arr is None:
                skipped.append((files[i].relpath, reason))
            else:
                images[i], ok[i] = arr, True
    result = ImageSet(name, images[ok], np.array([f.label for f in files], dtype=np.int32)[ok],
                      [f.relpath for f, good in zip(files, ok) if good], CLASS_NAMES, root, skipped)
    if not len(result):
        raise BrainlabError(f"None of the {len(files)} image files under {root} could be read. "
                            "Run `brainlab doctor --data DIR` to see why each one fails.")
    _report_skipped(skipped, name)
    if cache:
        _save_atomically(cache_file, result)
        _cache.prune(cache_file.parent, max_bytes, keep=cache_file)
    return result


def _cache_key(files: list[ImageFile], image_size: int, channels: int, crop: str = "none", set_aside=()) -> str:
    h = hashlib.sha256(f"v1|{image_size}|{channels}".encode() + (b"" if crop == "none" else f"|{crop}".encode()))
    for f in files:
        st = f.path.stat()
        h.update(f"|{f.path.resolve()}|{f.relpath}|{f.label}|{st.st_size}|{st.st_mtime_ns}".encode())
    for relpath, reason in set_aside:  # the cached list of skipped files includes them
        h.update(f"|set aside|{relpath}|{reason}".encode())
    return h.hexdigest()[:24]


def _save_atomically(target: Path, s: ImageSet) -> None:
    """The decoded images of a split, as the cache keeps them (an .npz), written whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    skipped = np.array(s.skipped, dtype=str).reshape(-1, 2)
    with runs.writing(target) as partial:  # the temporary name ends in .npz too, so NumPy adds nothing to it
        np.savez(partial, images=s.images, labels=s.labels, paths=np.array(s.paths, dtype=str), skipped=skipped)


def _report_skipped(skipped, name: str) -> None:
    if skipped:
        lines = "\n".join(f"  {rel}: {reason}" for rel, reason in skipped)
        print(f"brainlab: skipped {len(skipped)} unreadable file(s) in {name}:\n{lines}", file=sys.stderr)
