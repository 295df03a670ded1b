"""Thumbnails of every image and the views the matching compares: crops, shrinks, NCC vectors.

Every image is decoded once, small (through :func:`brainlab.images.decode`: a JPEG is decoded at
1/2, 1/4 or 1/8 scale), to a :data:`THUMB_SIZE` x :data:`THUMB_SIZE` grayscale thumbnail of the
whole frame (the aspect ratio is not kept: copies are compared frame to frame), with the box that
frames the head (:func:`content_box`). :func:`inventory` does it for a whole dataset folder.

The views are built with matrices (:func:`_resize_matrix`): a crop, resize and blur of a
thumbnail is two matrix products, so thousands of crops cost little. :func:`unit` turns a view
into a vector whose dot product with another is their normalised correlation (NCC).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from brainlab import catalogue, images
from brainlab.images import content_box

__all__ = ["THUMB_SIZE", "Inventory", "crop_view", "crop_views", "detail_view", "inventory", "read_thumbnail",
           "shrink", "unit"]

THUMB_SIZE = 128  # side of the whole-frame grayscale thumbnail kept for every image
_DETAIL_BLUR = (1.0, 3.0)  # the band of the detail view: Gaussians (pixels at 128x128) subtracted
_DETAIL_NORM = 4.0  # the detail is divided by its local strength, averaged over this Gaussian (pixels)


# ----------------------------------------------------------------------------- reading files


@dataclass
class Inventory:
    """One row per readable image (``files``) plus a 128x128 grayscale thumbnail of each."""

    root: Path
    files: pd.DataFrame  # path, split, class, label, width, height, aspect, file_kb, sha256, pixels_sha256
    thumbs: np.ndarray  # uint8 (N, THUMB_SIZE, THUMB_SIZE)
    boxes: np.ndarray  # float (N, 4): fractions cut (left, top, right, bottom) to frame the head
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def read_thumbnail(data: bytes, size: int = THUMB_SIZE, pixel_hash: bool = False):
    """Decode image bytes to ``(thumbnail, (width, height), pixels_sha256 or None)``.

    The thumbnail is a ``size`` x ``size`` ``uint8`` grayscale array of the whole frame, the size
    that of the whole upright image. The pixel hash (``pixel_hash=True``: a full decode, slower)
    is the SHA-256 of the decoded grayscale pixels, which ignores metadata and how the file was
    encoded. Decoding is :func:`brainlab.images.decode`'s, the loader's; a file that does not
    decode raises :class:`brainlab.images.UnreadableImageError`.
    """
    pixels = None
    if pixel_hash:
        gray, _ = images.decode(data, "L")
        pixels = hashlib.sha256(f"{gray.size}".encode() + gray.tobytes()).hexdigest()
    # for JPEGs, a decoder scale of at least twice the thumbnail, in grayscale straight away: several
    # times faster than decoding the full image and shrinking it
    im, (width, height) = images.decode(data, "L", min_size=2 * size, jpeg_gray=True)
    gray = im.resize((size, size), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.uint8), (width, height), pixels


def inventory(root, pixel_hash: bool = False, progress: bool = True,
              spec: catalogue.DatasetSpec = catalogue.BRAIN_TUMOR, splits=None) -> Inventory:
    """Read every image of ``spec``'s layout under ``root`` once: hashes, sizes and a thumbnail.

    ``splits`` (default: all of ``spec``'s) names the splits to read. Files that do not decode
    are listed in ``Inventory.unreadable`` (with the reason) rather than stopping the audit.
    """
    found = catalogue.scan(root, splits=splits, spec=spec)

    def read(f):
        try:
            raw = f.path.read_bytes()
        except OSError as exc:
            return f, None, f"cannot read the file ({exc})"
        try:
            thumb, (w, h), pixels = read_thumbnail(raw, pixel_hash=pixel_hash)
        except images.UnreadableImageError as exc:
            return f, None, exc.reason
        row = dict(path=f.relpath, split=f.split, **{"class": f.class_name}, label=f.label, width=w, height=h,
                   aspect=w / h, file_kb=len(raw) / 1024, sha256=hashlib.sha256(raw).hexdigest(),
                   pixels_sha256=pixels)
        return f, (row, thumb), None

    rows, thumbs = [], []
    unreadable = [(Path(path).relative_to(found.root).as_posix(), reason) for path, reason in found.broken]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        results = pool.map(read, found.files)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(found.files), desc="reading images", unit="img", leave=False)
        for f, got, reason in results:
            if got is None:
                unreadable.append((f.relpath, reason))
            else:
                rows.append(got[0])
                thumbs.append(got[1])
    thumbs = np.stack(thumbs) if thumbs else np.zeros((0, THUMB_SIZE, THUMB_SIZE), np.uint8)
    boxes = np.array([content_box(t) for t in thumbs]).reshape(-1, 4)
    return Inventory(Path(root), pd.DataFrame(rows), thumbs, boxes, unreadable)


# ----------------------------------------------------------------------------- views and NCC


@lru_cache(maxsize=16384)
def _resize_matrix(n_in: int, n_out: int, cut_start: float = 0.0, cut_end: float = 0.0,
                  blur: float = 0.0) -> np.ndarray:
    """``(n_out, n_in)`` matrix that crops a line of ``n_in`` pixels, shrinks it to ``n_out`` and blurs it.

    ``cut_start``/``cut_end`` are the fractions cut at each end. Each output pixel is the
    average of the input pixels it covers (area resampling), then, with ``blur`` > 0, a
    Gaussian of that standard deviation (in output pixels) smooths the line. So
    ``M_rows @ image @ M_cols.T`` crops, resizes and blurs an image with two matrix products.
    """
    edges = np.linspace(cut_start * n_in, (1 - cut_end) * n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0, None)
    matrix = overlap / overlap.sum(1, keepdims=True)
    if blur > 0:
        x = np.arange(n_out)
        kernel = np.exp(-0.5 * ((x[:, None] - x[None, :]) / blur) ** 2)
        matrix = (kernel / kernel.sum(1, keepdims=True)) @ matrix
    return matrix.astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    """Flatten the last two axes, subtract the mean and divide by the length.

    The dot product of two such vectors is their normalised correlation (NCC), from -1 to 1.
    """
    x = x.reshape(*x.shape[:-2], -1).astype(np.float32)
    x = x - x.mean(-1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def _crop_grid(thumb: np.ndarray, crops_y, crops_x, size: int, blur: float = 0.0) -> np.ndarray:
    """``(P, Q, size, size)`` crops of ``thumb``: rows cut by ``crops_y[p]``, columns by ``crops_x[q]``."""
    n = thumb.shape[-1]
    # rounding lets nearby searches share the cached matrices
    rows = np.concatenate([_resize_matrix(n, size, round(t, 4), round(b, 4), blur) for t, b in crops_y])
    cols = np.concatenate([_resize_matrix(n, size, round(l, 4), round(r, 4), blur) for l, r in crops_x])
    thumb = thumb.astype(np.float32, copy=False)
    # two plain matrix products give every crop at once, (P*size, Q*size); the side with fewer
    # crops goes first, which saves most of the work when one side has a single crop
    views = rows @ (thumb @ cols.T) if len(crops_y) > len(crops_x) else (rows @ thumb) @ cols.T
    return views.reshape(len(crops_y), size, len(crops_x), size).transpose(0, 2, 1, 3)


def crop_views(thumb: np.ndarray, crops_y, crops_x, size: int, blur: float = 0.0) -> np.ndarray:
    """Every combination of row crops ``(top, bottom)`` and column crops ``(left, right)``.

    Returns ``(len(crops_y) * len(crops_x), size * size)`` unit vectors (see :func:`unit`),
    row crops varying slowest.
    """
    return unit(_crop_grid(thumb, crops_y, crops_x, size, blur)).reshape(-1, size * size)


def crop_view(thumb: np.ndarray, box, size: int, blur: float = 0.0) -> np.ndarray:
    """One crop (left, top, right, bottom) of ``thumb``, resized to ``size``, as a unit vector."""
    left, top, right, bottom = box
    return crop_views(thumb, [(top, bottom)], [(left, right)], size, blur)[0]


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """Average blocks of pixels: ``(N, s, s)`` thumbnails to ``(N, size, size)`` (``s`` a multiple of ``size``)."""
    f = images.shape[-1] // size
    return images.reshape(len(images), size, f, size, f).mean((2, 4), dtype=np.float32)


def detail_view(thumb: np.ndarray, box, size: int = THUMB_SIZE) -> np.ndarray:
    """The fine detail of one crop, each region at the same contrast, as a unit vector.

    A band-pass (difference of Gaussians) removes what neighbouring slices share, the head's
    outline and overall brightness; its light blur also removes what a copy does not keep,
    JPEG noise and the pixel grid of a resize. Dividing by the local strength of the detail
    then lets the faint structure inside the brain count as much as the bright rim of the
    skull, which neighbouring slices share almost exactly.
    """
    (left, top, right, bottom), (fine, broad) = box, _DETAIL_BLUR
    light = _crop_grid(thumb, [(top, bottom)], [(left, right)], size, fine)[0, 0]
    heavy = _crop_grid(thumb, [(top, bottom)], [(left, right)], size, broad)[0, 0]
    band = light - heavy
    smooth = _resize_matrix(size, size, 0.0, 0.0, _DETAIL_NORM)  # a Gaussian blur, as a matrix
    strength = np.sqrt(smooth @ (band * band) @ smooth.T)
    return unit(band / (strength + 0.1 * strength.mean() + 1e-6)).reshape(-1)
