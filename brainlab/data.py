"""The brain MRI dataset: what it is, where it lives, and how images reach a model.

The flow is one way::

    folder on disk --scan()--> list of files --load_split()--> ImageSet --.dataset()--> tf.data

- :data:`BRAIN_TUMOR` declares the paper's dataset as data: classes in label order,
  expected counts, where to download it and the checksum of every file.
- :func:`find_data` decides which folder to use (argument, ``BRAINLAB_DATA``, cache, download).
- :func:`scan` checks the folder layout and lists the image files, ignoring hidden clutter.
- :func:`read_image` decodes one file robustly (any mode, any size, EXIF rotation).
- :func:`load_split` / :func:`load_splits` decode every image once into memory (cached on disk
  for next time) and hand out :class:`ImageSet` objects; ``ImageSet.dataset()`` gives the
  ``tf.data.Dataset`` a model trains on. Images stay ``uint8`` until then: a model does its own
  preprocessing, so a loader never has to know which model it feeds.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from brainlab import config
from brainlab.errors import BrainlabError, DataLayoutError, DataNotFoundError

CLASS_NAMES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")
SPLITS = ("Training", "Testing")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
# Clutter that operating systems and tools leave in folders; never treated as data.
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything brainlab knows about a dataset before it has seen a single file."""

    name: str
    title: str
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # split -> class -> number of files
    kaggle_handle: str | None = None
    archive_urls: tuple[str, ...] = ()
    homepage: str = ""
    checksum_file: str | None = None  # sha256sum-style list shipped in brainlab/checksums/
    checksums: dict[str, str] | None = None  # relpath -> sha256, when given directly

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.counts)

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
)

EXPECTED_LAYOUT = "\n".join(
    ["  <data folder>/"]
    + [line for split in SPLITS for line in [f"    {split}/"] + [f"      {c}/   (image files)" for c in CLASS_NAMES]]
)


# --------------------------------------------------------------------------- finding the data


def sample_dir() -> Path:
    """The small sample shipped inside brainlab (same layout as the full dataset)."""
    return Path(str(resources.files("brainlab").joinpath("sample")))


def default_location(spec: DatasetSpec = BRAIN_TUMOR) -> Path:
    """Where :func:`fetch_data` puts the dataset in the per-user cache."""
    return config.cache_dir() / "datasets" / spec.name


def find_data(path=None, *, download: bool = True, spec: DatasetSpec = BRAIN_TUMOR) -> Path:
    """Return the dataset folder to use, looking in this order:

    1. ``path``, when given;
    2. in quick mode (``BRAINLAB_QUICK=1``), the bundled sample;
    3. the folder named by ``BRAINLAB_DATA``;
    4. the per-user cache (where :func:`fetch_data` puts it);
    5. a fresh download (only when ``download=True``).
    """
    if path is not None:
        return _checked(Path(path).expanduser(), "the path you passed")
    if config.quick_mode():
        return sample_dir()
    env = config.data_env()
    if env is not None:
        return _checked(env, "BRAINLAB_DATA")
    cached = default_location(spec)
    if cached.is_dir():
        return cached
    if not download:
        raise DataNotFoundError(
            "The dataset is not on this computer yet.\n" + how_to_get_data(spec)
        )
    from brainlab.download import fetch_data

    return fetch_data(spec=spec)


def how_to_get_data(spec: DatasetSpec = BRAIN_TUMOR) -> str:
    return (
        "What you can do:\n"
        f"  - download it now:   brainlab fetch-data   (from Kaggle, or GitHub as a fallback)\n"
        f"  - or download it yourself from {spec.homepage}, unpack it and point brainlab at it:\n"
        "        export BRAINLAB_DATA=/path/to/folder   (the folder that holds Training/ and Testing/)\n"
        "  - or work with the small sample shipped with brainlab: set BRAINLAB_QUICK=1,\n"
        "    or pass root=brainlab.data.sample_dir()."
    )


def _checked(root: Path, where: str) -> Path:
    if not root.is_dir():
        raise DataNotFoundError(f"{root} (from {where}) is not a folder.\n" + how_to_get_data())
    return root


# --------------------------------------------------------------------------- scanning a folder


@dataclass(frozen=True)
class ImageFile:
    """One image of the dataset, as found on disk."""

    path: Path
    relpath: str  # relative to the dataset root, with forward slashes: "Testing/no_tumor/image(1).jpg"
    split: str
    class_name: str
    label: int


@dataclass
class Scan:
    """What :func:`scan` found: usable-looking files and files it set aside, with the reason."""

    root: Path
    files: list[ImageFile]
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            out.setdefault(f.split, {}).setdefault(f.class_name, 0)
            out[f.split][f.class_name] += 1
        return out


def is_ignored(name: str) -> bool:
    """Hidden files and folders and OS clutter (``.DS_Store``, ``__MACOSX``, ...)."""
    return name.startswith(".") or name in IGNORED_NAMES or name.startswith("._")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_ignored(p.name))


def scan(root, splits=SPLITS, class_names=CLASS_NAMES) -> Scan:
    """List the image files under ``root/<split>/<class>/``, checking the layout on the way.

    A missing split, a missing, misnamed or empty class folder is a :class:`DataLayoutError`
    that shows the expected layout. Files without an image suffix are set aside in
    ``Scan.bad``; whether an image file really decodes is checked when it is loaded.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(f"{root} is not a folder.\nExpected layout:\n{EXPECTED_LAYOUT}")
    files: list[ImageFile] = []
    bad: list[tuple[Path, str]] = []
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataLayoutError(_missing_split_message(root, split))
        found = {p.name: p for p in _visible_dirs(split_dir)}
        missing = [c for c in class_names if c not in found]
        unexpected = [n for n in found if n not in class_names]
        if missing:
            hint = f"\nFound instead: {', '.join(unexpected)}" if unexpected else ""
            raise DataLayoutError(
                f"{split_dir}: class folder(s) missing: {', '.join(missing)}.{hint}\n"
                f"Class folders must be named exactly {', '.join(class_names)}.\n"
                f"Expected layout:\n{EXPECTED_LAYOUT}"
            )
        for name in unexpected:
            bad.append((found[name], "unexpected folder (not one of the class names); ignored"))
        for label, class_name in enumerate(class_names):
            class_dir = found[class_name]
            n_before = len(files)
            for path in sorted(class_dir.rglob("*")):
                rel_parts = path.relative_to(class_dir).parts
                if any(is_ignored(part) for part in rel_parts) or path.is_dir():
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    bad.append((path, f"not an image file (suffix {path.suffix or 'missing'})"))
                    continue
                relpath = path.relative_to(root).as_posix()
                files.append(ImageFile(path, relpath, split, class_name, label))
            if len(files) == n_before:
                raise DataLayoutError(
                    f"{class_dir} holds no image files. Put the {class_name} images of the {split} split there "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}).\nExpected layout:\n{EXPECTED_LAYOUT}"
                )
    return Scan(root, files, bad)


def _missing_split_message(root: Path, split: str) -> str:
    msg = f"{root}: no '{split}' folder."
    near = [p.name for p in _visible_dirs(root) if p.name.lower() == split.lower()]
    if near:
        msg += f" Found '{near[0]}': rename it to '{split}' (the names are case-sensitive)."
    else:
        nested = [p for p in _visible_dirs(root) if (p / split).is_dir()]
        if nested:
            msg += f" It is one level down: use {nested[0]} as the data folder."
    return msg + f"\nExpected layout:\n{EXPECTED_LAYOUT}"


# --------------------------------------------------------------------------- reading one image


def read_image(path, image_size: int | None = None, channels: int = 3) -> np.ndarray:
    """Decode one image file to a ``uint8`` array of shape (H, W, channels).

    Works for what people really have: grayscale, RGB, RGBA, palette, CMYK and 16-bit
    images, PNGs named ``.jpg``, photos with an EXIF rotation. Transparent pixels become
    black (the MRI background); images with more than 8 bits are stretched to 0..255.
    With ``image_size``, the image is resized to a square of that side (like
    ``keras.utils.image_dataset_from_directory``). Raises ``OSError``/``ValueError``
    for files that are not readable images.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    with Image.open(path) as im:
        if image_size and im.format == "JPEG":
            im.draft(None, (image_size, image_size))  # decode a JPEG at 1/2, 1/4, 1/8 scale: much faster
        im.load()
        im = ImageOps.exif_transpose(im)
        im = _to_8bit(im)
        im = im.convert("L" if channels == 1 else "RGB")
        if image_size:
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def _to_8bit(im: Image.Image) -> Image.Image:
    """Bring any PIL mode to L, RGB or RGBA-flattened-on-black."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im


def check_image(path) -> str | None:
    """``None`` when ``path`` decodes as an image, else a short reason a person can act on."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        read_image(path, image_size=8)
    except UnidentifiedImageError:
        return "not an image (the file's content is not a known image format)"
    except Image.DecompressionBombError:
        return "image too large to decode safely"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"cannot decode ({exc})"
    return None


# --------------------------------------------------------------------------- images in memory


@dataclass
class ImageSet:
    """Decoded images of one split, with the labels and the file each came from.

    ``split`` names the protocol and part, e.g. ``"official-test"``, ``"clean-val"`` or
    ``"sample-test"`` (the bundled sample), so every number computed from this set can say
    where it came from.
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
               progress: bool = True, cache: bool = True) -> ImageSet:
    """Decode the official ``Training`` or ``Testing`` split into an :class:`ImageSet`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    root = find_data(root)
    found = scan(root, splits=(split,))
    name = f"{_protocol(root)}-{'train' if split == 'Training' else 'test'}"
    return _decode(root, found.files, name, image_size, channels, progress, cache)


def _protocol(root) -> str:
    """``"sample"`` for the bundled sample (its numbers mean little), else ``"official"``."""
    return "sample" if Path(root).resolve() == sample_dir().resolve() else "official"


def load_splits(root=None, image_size: int = 128, channels: int = 3, val_fraction: float = 0.15,
                seed: int = config.DEFAULT_SEED, manifest=None, progress: bool = True,
                cache: bool = True) -> Splits:
    """Train, validation and test sets.

    Without ``manifest``: the official protocol. ``test`` is the official Testing split and
    ``val`` a stratified, seeded ``val_fraction`` of Training, so that no decision is ever
    made by looking at the test set.

    With ``manifest`` (a CSV with columns ``path,class,split``, split being train/val/test,
    such as the leakage-free ``clean_split.csv`` written by ``brainlab audit``): exactly
    the files it lists. The sets are then named after the manifest, e.g. ``clean-test``.
    """
    root = find_data(root)
    if manifest is not None:
        return _load_manifest(root, Path(manifest), image_size, channels, progress, cache)
    from sklearn.model_selection import train_test_split

    training = load_split("Training", root, image_size, channels, progress, cache)
    testing = load_split("Testing", root, image_size, channels, progress, cache)
    positions = np.arange(len(training))
    train_idx, val_idx = train_test_split(positions, test_size=val_fraction, random_state=seed,
                                          stratify=training.labels)
    protocol = _protocol(root)
    return Splits(training.subset(np.sort(train_idx), f"{protocol}-train"),
                  training.subset(np.sort(val_idx), f"{protocol}-val"), testing)


def read_manifest(path) -> list[tuple[str, str, str]]:
    """Rows ``(path, class, split)`` of a split manifest, checked for the right columns and values."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Split manifest {path} does not exist. `brainlab audit --out DIR` writes one.")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"path", "class", "split"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise BrainlabError(f"{path}: a split manifest needs the columns path,class,split; "
                                f"found {reader.fieldnames}.")
        rows = [(r["path"], r["class"], r["split"]) for r in reader]
    for p, c, s in rows:
        if c not in CLASS_NAMES or s not in ("train", "val", "test"):
            raise BrainlabError(f"{path}: row {p!r} has class {c!r} and split {s!r}; classes must be one of "
                                f"{CLASS_NAMES} and splits one of train/val/test.")
    return rows


def _load_manifest(root, manifest: Path, image_size, channels, progress, cache) -> Splits:
    rows = read_manifest(manifest)
    protocol = manifest.stem.removesuffix("_split") or "manifest"
    files = []
    for rel, class_name, _ in rows:
        path = Path(root) / rel
        if not path.is_file():
            raise DataNotFoundError(f"{manifest} lists {rel}, which is not in {root}. "
                                    "Was the manifest written for another copy of the dataset?")
        files.append(ImageFile(path, rel, rel.split("/", 1)[0], class_name, CLASS_NAMES.index(class_name)))
    everything = _decode(Path(root), files, protocol, image_size, channels, progress, cache)
    part_of = {rel: s for rel, _, s in rows}
    parts = np.array([part_of[p] for p in everything.paths])
    return Splits(*(everything.subset(parts == s, f"{protocol}-{s}") for s in ("train", "val", "test")))


def _decode(root: Path, files: list[ImageFile], name: str, image_size: int, channels: int,
            progress: bool, cache: bool) -> ImageSet:
    """Decode ``files`` once (in threads: PIL releases the GIL), skipping unreadable ones.

    The result is cached as a ``.npz`` in the brainlab cache, keyed by the files' names, sizes
    and modification times plus the image size and channels, so a second run loads in a blink.
    """
    key = _cache_key(files, image_size, channels)
    cache_file = config.cache_dir() / "decoded" / f"{key}.npz"
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                skipped = [tuple(x) for x in z["skipped"].tolist()]
                result = ImageSet(name, z["images"], z["labels"], z["paths"].tolist(), CLASS_NAMES, root, skipped)
            _report_skipped(result.skipped, name)
            return result
        except (OSError, KeyError, ValueError):
            cache_file.unlink(missing_ok=True)  # a damaged cache file is simply rebuilt

    def decode(f: ImageFile):
        try:
            if f.path.stat().st_size == 0:
                return None, "empty file (0 bytes)"
            return read_image(f.path, image_size, channels), None
        except UnidentifiedImageError:
            return None, "not an image (unknown format)"
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return None, f"cannot decode ({exc})"

    images = np.zeros((len(files), image_size, image_size, channels), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)
    skipped = []
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
    return result


def _cache_key(files: list[ImageFile], image_size: int, channels: int) -> str:
    h = hashlib.sha256(f"v1|{image_size}|{channels}".encode())
    for f in files:
        st = f.path.stat()
        h.update(f"|{f.path.resolve()}|{f.label}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _save_atomically(target: Path, s: ImageSet) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
    skipped = np.array(s.skipped, dtype=str).reshape(-1, 2)
    np.savez(tmp, images=s.images, labels=s.labels, paths=np.array(s.paths, dtype=str), skipped=skipped)
    os.replace(tmp, target)


def _report_skipped(skipped, name: str) -> None:
    if skipped:
        lines = "\n".join(f"  {rel}: {reason}" for rel, reason in skipped)
        print(f"brainlab: skipped {len(skipped)} unreadable file(s) in {name}:\n{lines}", file=sys.stderr)


# --------------------------------------------------------------------------- checking a copy


@dataclass
class Verification:
    """The result of comparing a folder with a :class:`DatasetSpec`."""

    counts: dict[str, dict[str, int]]
    count_errors: list[str]
    mismatched: list[str]  # files whose sha256 differs
    missing: list[str]  # files listed in the checksums but absent
    extra: list[str]  # image files present but not listed

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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(root, spec: DatasetSpec = BRAIN_TUMOR, checksums: bool = True) -> Verification:
    """Check that ``root`` holds exactly ``spec``'s files: counts per split and class, then checksums."""
    found = scan(root, spec.splits, spec.class_names)
    counts = found.counts()
    count_errors = [
        f"{split}/{c}: expected {n} images, found {counts.get(split, {}).get(c, 0)}"
        for split, per_class in spec.counts.items() for c, n in per_class.items()
        if counts.get(split, {}).get(c, 0) != n
    ]
    mismatched, missing, extra = [], [], []
    expected = spec.file_checksums() if checksums else {}
    if expected:
        present = {f.relpath: f.path for f in found.files}
        for rel, digest in expected.items():
            if rel not in present:
                missing.append(rel)
            elif sha256_of(present[rel]) != digest:
                mismatched.append(rel)
        extra = sorted(set(present) - set(expected))
    return Verification(counts, count_errors, mismatched, missing, extra)
