"""Is the test set really unseen? Duplicates, leakage, label conflicts and shortcuts in a dataset.

A test accuracy means nothing when test images are copies of training images, and published
results on this dataset run from about 51% to 99%: much of that spread is the evaluation, not
the model. This module looks at the files themselves, before any model:

1. **Exact duplicates**: files with the same bytes (SHA-256), and optionally files whose bytes
   differ but whose decoded pixels are the same.
2. **Near-duplicates**: the same scan re-encoded, resized, lightly cropped or with its
   brightness or contrast changed (see "How near-duplicates are found" below).
3. **Groups**: every pair found links two files; the connected components of these links
   (union-find) are the duplicate groups. A group whose members sit in different splits is a
   leak; a group whose members carry different labels is a **label conflict**.
4. **Shortcut cues**: image size, aspect ratio and file size per class and split, and how well
   these alone predict the label (a small decision tree trained on ``Training``, scored on
   ``Testing``). A model can learn these cues instead of anatomy.
5. **A leakage-free split**: train / validation / test, stratified by class, seeded, in which no
   duplicate group straddles two parts (see :func:`clean_split`).

``run_audit(root, out_dir)`` does all of it and writes tables (CSV), ``summary.json``,
``summary.md``, figures (PNG) and ``clean_split.csv``, which
``brainlab.data.load_splits(manifest=...)`` reads. In a notebook, :func:`audit_dataset` returns
the same results as pandas DataFrames without writing anything.

How near-duplicates are found
-----------------------------
Every image is decoded once, small (PIL's JPEG ``draft`` mode decodes at 1/2, 1/4 or 1/8 scale),
to a 128x128 grayscale thumbnail of the whole frame. Two thumbnails are compared with the
*normalised correlation* (NCC) of their pixels: subtract the mean, divide by the length, take
the dot product. NCC is 1 for identical images and does not change when brightness or contrast
change linearly, so re-encoding, resizing and contrast changes keep it near 1. A crop does not:
it shifts and scales the content (a shift of 2% of the side already drops the NCC of a copy at
32x32 to about 0.77), so the comparison searches over crops. Three sieves keep this affordable:

1. *Candidates*: 8x8 thumbnails of the whole frame and of the head's bounding box (Otsu
   threshold); each image's 10 most correlated images in either view are its candidates.
2. *Coarse alignment*: blurred 32x32 thumbnails; one image of the pair is cropped by 0, 4 or 8%
   on each side (81 crops) and the best NCC kept, in both directions, and head box against head
   box. Pairs below :data:`COARSE_THRESHOLD` are different images.
3. *Fine check*: the crop is refined in steps of 2, 1 and 0.5% at 64x64 (:func:`align`), then the
   two aligned crops are compared by their *fine detail* at 128x128 (:func:`detail_view`).

A pair is a near-duplicate when the detail NCC reaches :data:`NEAR_THRESHOLD`.

Why the detail, and not the plain NCC or a perceptual hash? Neighbouring slices of one patient
share the head's outline and differ only inside. Measured on this dataset, after alignment the
plain NCC at 64x64 of 1186 pairs of consecutive slices reaches 0.986, while edited copies of its
own images (JPEG quality 50, resized to 45% or 150%, brightness +30, contrast x0.7, gamma 0.7,
padding, crops of up to 8% a side, and mixtures) go as low as 0.985: no threshold separates them.
The detail NCC does: copies score at least 0.95, consecutive slices at most 0.87, and on the
whole dataset no compared pair scores between 0.871 and 0.929. Two slices very close together
can still look alike inside too: Testing/glioma_tumor/image(4).jpg and image(7).jpg score 0.945,
although the outline of the cyst differs a little. A perceptual hash (pHash, dHash) summarises
the low-frequency content that neighbouring slices share, and its Hamming distance has no room
to express the difference inside the head.

What it misses: mirrored or rotated copies, crops of more than about 10% of a side, copies
pasted into a frame with text or other images, and copies whose contrast was changed
non-monotonically. Look at ``borderline_pairs.png`` to see the pairs on both sides of the
threshold.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from threadpoolctl import threadpool_limits

from brainlab import config
from brainlab.errors import BrainlabError

# ----------------------------------------------------------------------------- settings

THUMB_SIZE = 128  # side of the whole-frame grayscale thumbnail kept for every image
CANDIDATE_SIZE = 8  # side of the thumbnails that pick candidate pairs
COARSE_SIZE = 32  # side of the thumbnails compared over the grid of crops
FINE_SIZE = 64  # side of the thumbnails of the final check
NEIGHBOURS = 10  # candidates per image and view
COARSE_CROPS = (0.0, 0.04, 0.08)  # fraction cut from each side in the coarse search
COARSE_BLUR = 0.7  # Gaussian blur (pixels at 32x32) that makes the coarse score forgiving
COARSE_THRESHOLD = 0.95  # pairs below this after the coarse search are not checked further
FINE_STEPS = (0.02, 0.01, 0.005)  # refinement of the best crop, per side, in three rounds
MAX_CUT = 0.3  # no crop cuts more than this from a side
ALIGN_GATE = 0.9  # pairs whose NCC at 64x64 stays below this after alignment are different images
DETAIL_BLUR = (1.0, 3.0)  # the band of the detail score: Gaussians (pixels at 128x128) subtracted
DETAIL_NORM = 4.0  # the detail is divided by its local strength, averaged over this Gaussian (pixels)
NEAR_THRESHOLD = 0.91  # detail NCC from which a pair counts as a near-duplicate
BOX_QUANTILE = 0.02  # the head box leaves out this share of foreground pixels on each side

PARTS = ("train", "val", "test")


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

    The thumbnail is a ``size`` x ``size`` ``uint8`` grayscale array of the whole frame (the
    aspect ratio is not kept: copies are compared frame to frame). For JPEGs, ``draft`` asks
    the decoder for a smaller scale straight away, which is several times faster than decoding
    the full image and shrinking it.
    """
    pixels = None
    if pixel_hash:
        with Image.open(io.BytesIO(data)) as full:
            gray = ImageOps.exif_transpose(full).convert("L")
            pixels = hashlib.sha256(f"{gray.size}".encode() + gray.tobytes()).hexdigest()
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF says: rotate by 90 degrees
            width, height = height, width
        if im.format == "JPEG":
            im.draft("L", (2 * size, 2 * size))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float: stretch to 0..255
            arr = np.asarray(im, dtype=np.float32)
            arr = (arr - arr.min()) / max(float(np.ptp(arr)), 1e-6) * 255
            im = Image.fromarray(arr.astype(np.uint8))
        gray = im.convert("L").resize((size, size), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.uint8), (width, height), pixels


def inventory(root, pixel_hash: bool = False, progress: bool = True) -> Inventory:
    """Read every image under ``root/<split>/<class>/`` once: hashes, sizes and a thumbnail.

    Files that do not decode are listed in ``Inventory.unreadable`` (with the reason) rather
    than stopping the audit.
    """
    from brainlab import data

    found = data.scan(root)

    def read(f):
        try:
            raw = f.path.read_bytes()
            thumb, (w, h), pixels = read_thumbnail(raw, pixel_hash=pixel_hash)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return f, None, f"cannot decode ({type(exc).__name__}: {exc})"
        row = dict(path=f.relpath, split=f.split, **{"class": f.class_name}, label=f.label, width=w, height=h,
                   aspect=w / h, file_kb=len(raw) / 1024, sha256=hashlib.sha256(raw).hexdigest(),
                   pixels_sha256=pixels)
        return f, (row, thumb), None

    rows, thumbs, unreadable = [], [], []
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


# ----------------------------------------------------------------------------- thumbnails and NCC


def otsu_threshold(gray: np.ndarray) -> int:
    """The gray level that best splits ``gray`` into two classes (Otsu's method): head vs background."""
    p = np.bincount(gray.ravel(), minlength=256) / gray.size
    weight = np.cumsum(p)  # share of pixels at or below each level
    mean = np.cumsum(p * np.arange(256))
    between = (mean[-1] * weight - mean) ** 2 / np.maximum(weight * (1 - weight), 1e-12)
    return int(np.argmax(between))


def content_box(thumb: np.ndarray) -> tuple[float, float, float, float]:
    """Fractions to cut (left, top, right, bottom) so that the frame fits the head.

    The head is the pixels above the Otsu threshold. Each side leaves out :data:`BOX_QUANTILE`
    of those pixels, so a stray bright speck or a thin frame line does not move the box.
    """
    mask = thumb > otsu_threshold(thumb)
    if mask.sum() < 16:
        return (0.0, 0.0, 0.0, 0.0)

    def cuts(profile):
        share = np.cumsum(profile) / profile.sum()
        first = np.searchsorted(share, BOX_QUANTILE)
        last = np.searchsorted(share, 1 - BOX_QUANTILE) + 1
        return first / len(profile), 1 - last / len(profile)

    left, right = cuts(mask.sum(0))
    top, bottom = cuts(mask.sum(1))
    return (left, top, right, bottom)


@lru_cache(maxsize=16384)
def resize_matrix(n_in: int, n_out: int, cut_start: float = 0.0, cut_end: float = 0.0,
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


def _views(thumb: np.ndarray, crops_y, crops_x, size: int, blur: float = 0.0) -> np.ndarray:
    """``(P, Q, size, size)`` crops of ``thumb``: rows cut by ``crops_y[p]``, columns by ``crops_x[q]``."""
    n = thumb.shape[-1]
    # rounding lets nearby searches share the cached matrices
    rows = np.concatenate([resize_matrix(n, size, round(t, 4), round(b, 4), blur) for t, b in crops_y])
    cols = np.concatenate([resize_matrix(n, size, round(l, 4), round(r, 4), blur) for l, r in crops_x])
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
    return unit(_views(thumb, crops_y, crops_x, size, blur)).reshape(-1, size * size)


def crop_view(thumb: np.ndarray, box, size: int, blur: float = 0.0) -> np.ndarray:
    """One crop (left, top, right, bottom) of ``thumb``, resized to ``size``, as a unit vector."""
    left, top, right, bottom = box
    return crop_views(thumb, [(top, bottom)], [(left, right)], size, blur)[0]


def split_cuts(cuts) -> tuple[tuple, tuple]:
    """Signed cuts (left, top, right, bottom) of a pair -> the crop of each image.

    A positive cut is taken from the first image, a negative one from the second: two
    framings of one scan can each show more on a different side.
    """
    return tuple(max(c, 0.0) for c in cuts), tuple(max(-c, 0.0) for c in cuts)


def box_cuts(box_a, box_b) -> tuple[float, float, float, float]:
    """Signed cuts that make the head boxes of two images line up (see :func:`split_cuts`)."""
    out = []
    for lo in (0, 1):  # the horizontal axis (left, right), then the vertical one (top, bottom)
        start_a, end_a, start_b, end_b = box_a[lo], 1 - box_a[lo + 2], box_b[lo], 1 - box_b[lo + 2]
        width = (end_a - start_a) / max(end_b - start_b, 1e-3)  # b's whole frame, in units of a's frame
        x0 = start_a - start_b * width  # where b's frame starts and ends in a's frame
        x1 = x0 + width
        out.append((x0 if x0 >= 0 else x0 / width, 1 - x1 if x1 <= 1 else (1 - x1) / width))
    (left, right), (top, bottom) = out
    return tuple(float(np.clip(c, -MAX_CUT, MAX_CUT)) for c in (left, top, right, bottom))


def detail_view(thumb: np.ndarray, box, size: int = THUMB_SIZE) -> np.ndarray:
    """The fine detail of one crop, each region at the same contrast, as a unit vector.

    A band-pass (difference of Gaussians) removes what neighbouring slices share, the head's
    outline and overall brightness; its light blur also removes what a copy does not keep,
    JPEG noise and the pixel grid of a resize. Dividing by the local strength of the detail
    then lets the faint structure inside the brain count as much as the bright rim of the
    skull, which neighbouring slices share almost exactly.
    """
    (left, top, right, bottom), (fine, broad) = box, DETAIL_BLUR
    light = _views(thumb, [(top, bottom)], [(left, right)], size, fine)[0, 0]
    heavy = _views(thumb, [(top, bottom)], [(left, right)], size, broad)[0, 0]
    band = light - heavy
    smooth = resize_matrix(size, size, 0.0, 0.0, DETAIL_NORM)  # a Gaussian blur, as a matrix
    strength = np.sqrt(smooth @ (band * band) @ smooth.T)
    return unit(band / (strength + 0.1 * strength.mean() + 1e-6)).reshape(-1)


# ----------------------------------------------------------------------------- near-duplicates


def candidate_pairs(thumbs: np.ndarray, boxes: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``(M, 2)`` index pairs (i < j) worth a closer look: each image's nearest images at 8x8.

    Two views are used: the whole frame, and the head's bounding box (which lines up copies that
    were cropped or padded differently). At 8x8 a crop of a few percent moves the content by
    less than a pixel, so the real copy ranks among the nearest few.
    """
    n = len(thumbs)
    k = min(neighbours, n - 1)
    if k < 1:
        return np.zeros((0, 2), int)
    s = CANDIDATE_SIZE
    whole = unit(_shrink(thumbs, s))
    boxed = np.stack([crop_view(t, b, s) for t, b in zip(thumbs, boxes)])
    pairs = []
    for vectors in (whole, boxed):
        for start in range(0, n, 2048):  # blocks keep memory at 2048 x n scores
            sim = vectors[start:start + 2048] @ vectors.T
            rows = np.arange(start, start + len(sim))
            sim[rows - start, rows] = -np.inf  # an image is not its own candidate
            nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            pairs.append(np.stack([np.repeat(rows, k), nearest.ravel()], 1))
    pairs = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(pairs, axis=0)


def coarse_scores(thumbs: np.ndarray, boxes: np.ndarray, pairs: np.ndarray):
    """Best NCC of each pair over the grid of crops, at 32x32, blurred.

    The blur (:data:`COARSE_BLUR`) makes the score forgiving: the grid's crops are up to half a
    step away from the true crop, and without blur a misalignment of 2% of the side already
    drops the NCC of two copies to about 0.77.

    Returns ``(score, direction, crop)``: ``direction`` 0 means the first image of the pair was
    cropped by ``crop`` (left, top, right, bottom), 1 the second one, and 2 that both were cut to
    their head boxes.
    """
    n, size = len(thumbs), COARSE_SIZE
    small = _shrink(thumbs, THUMB_SIZE // 2)  # 64x64: enough detail for 32x32 crops
    plain = np.stack([crop_view(t, (0, 0, 0, 0), size, COARSE_BLUR) for t in small])
    boxed = np.stack([crop_view(t, b, size, COARSE_BLUR) for t, b in zip(small, boxes)])
    grid = list(itertools.product(COARSE_CROPS, COARSE_CROPS))  # (start, end) cuts of one axis
    crops = [(l, t, r, b) for (t, b) in grid for (l, r) in grid]  # same order as crop_views
    # look both ways: (i, j) with i cropped, and (j, i) with j cropped
    directed = np.concatenate([pairs, pairs[:, ::-1]])
    order = np.argsort(directed[:, 0], kind="stable")
    best = np.full(len(directed), -1.0, np.float32)
    best_crop = np.zeros(len(directed), int)
    starts = np.searchsorted(directed[order, 0], np.arange(n + 1))
    for i in range(n):
        rows = order[starts[i]:starts[i + 1]]
        if len(rows) == 0:
            continue
        scores = crop_views(small[i], grid, grid, size, COARSE_BLUR) @ plain[directed[rows, 1]].T
        best_crop[rows] = scores.argmax(0)
        best[rows] = scores.max(0)
    m = len(pairs)
    both = np.stack([best[:m], best[m:], np.einsum("kd,kd->k", boxed[pairs[:, 0]], boxed[pairs[:, 1]])], 1)
    direction = both.argmax(1)
    crop = np.array([crops[best_crop[r + (m if d == 1 else 0)]] if d < 2 else (0, 0, 0, 0)
                     for r, d in enumerate(direction)], dtype=float).reshape(-1, 4)
    return both.max(1), direction, crop


def _shrink(images: np.ndarray, size: int) -> np.ndarray:
    """Average blocks of pixels: ``(N, s, s)`` thumbnails to ``(N, size, size)`` (``s`` a multiple of ``size``)."""
    f = images.shape[-1] // size
    return images.reshape(len(images), size, f, size, f).mean((2, 4), dtype=np.float32)


def align(thumb_a: np.ndarray, thumb_b: np.ndarray, cuts=(0.0, 0.0, 0.0, 0.0)):
    """Refine the signed ``cuts`` (see :func:`split_cuts`) that line up two images, at 64x64.

    For each step s (2%, 1% and 0.5% of a side) the top and bottom cuts move by -s, 0 or +s
    (9 combinations, the best kept), then the left and right cuts. The vertical and horizontal
    framing barely interact, so one axis at a time finds what a joint search would, with 18
    crops instead of 81. Returns ``(ncc, cuts)``; a pair far from matching after the first
    step is not refined further.
    """
    cuts = list(cuts)
    best = -1.0
    for step in FINE_STEPS:
        for first, second in ((1, 3), (0, 2)):  # (top, bottom), then (left, right)
            options = [(min(max(cuts[first] + d1, -MAX_CUT), MAX_CUT), min(max(cuts[second] + d2, -MAX_CUT), MAX_CUT))
                       for d1 in (-step, 0.0, step) for d2 in (-step, 0.0, step)]
            crop_a, crop_b = split_cuts(cuts)
            views = []
            for thumb, fixed, sign in ((thumb_a, crop_a, 1), (thumb_b, crop_b, -1)):
                moving = [(max(sign * c1, 0.0), max(sign * c2, 0.0)) for c1, c2 in options]
                distinct = sorted(set(moving))  # often one: the other image is not cut on this axis
                if first == 1:  # rows move, columns stay
                    found = crop_views(thumb, distinct, [(fixed[0], fixed[2])], FINE_SIZE)
                else:
                    found = crop_views(thumb, [(fixed[1], fixed[3])], distinct, FINE_SIZE)
                views.append(found[[distinct.index(m) for m in moving]])
            scores = np.einsum("kd,kd->k", *views)
            k = int(scores.argmax())
            cuts[first], cuts[second] = options[k]
            best = float(scores[k])
        if best < ALIGN_GATE:
            break
    return best, tuple(cuts)


def detail_score(thumb_a: np.ndarray, thumb_b: np.ndarray, cuts) -> float:
    """NCC of the fine detail (:func:`detail_view`) of two images lined up by ``cuts``, at 128x128."""
    crop_a, crop_b = split_cuts(cuts)
    return float(detail_view(thumb_a, crop_a) @ detail_view(thumb_b, crop_b))


def near_duplicate_pairs(thumbs: np.ndarray, boxes: np.ndarray, threshold: float = NEAR_THRESHOLD,
                         progress: bool = True) -> pd.DataFrame:
    """Score candidate pairs of thumbnails; returns every pair that reached the alignment step.

    Columns ``a, b`` (indices, ``a < b``), ``coarse`` (blurred NCC at 32x32), ``aligned`` (NCC
    at 64x64 after alignment), ``score`` (NCC of the fine detail, NaN when the alignment failed)
    and ``near`` (``score >= threshold``). Pairs below ``threshold`` are kept so that you can
    look at the near misses.
    """
    columns = ["a", "b", "coarse", "aligned", "score", "near"]
    # Thousands of small matrix products: threads of the BLAS library cost more than they save,
    # and on a busy machine much more (measured: 10x slower with 2 threads on 2 shared cores).
    with threadpool_limits(1, user_api="blas"):
        pairs = candidate_pairs(thumbs, boxes)
        if len(pairs) == 0:
            return pd.DataFrame(columns=columns)
        coarse, direction, crop = coarse_scores(thumbs, boxes, pairs)
        keep = np.flatnonzero(coarse >= COARSE_THRESHOLD)

        def check(k):
            a, b = pairs[k]
            start = {0: crop[k], 1: -crop[k], 2: box_cuts(boxes[a], boxes[b])}[direction[k]]
            aligned, cuts = align(thumbs[a], thumbs[b], tuple(start))
            score = detail_score(thumbs[a], thumbs[b], cuts) if aligned >= ALIGN_GATE else np.nan
            return a, b, float(coarse[k]), aligned, score

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # NumPy releases the GIL
            rows = pool.map(check, keep)
            if progress:
                from tqdm.auto import tqdm

                rows = tqdm(rows, total=len(keep), desc="checking near-duplicates", unit="pair", leave=False)
            rows = list(rows)
    out = pd.DataFrame(rows, columns=columns[:-1])
    out["near"] = out["score"] >= threshold
    return out.sort_values("score", ascending=False, ignore_index=True, na_position="last")


# ----------------------------------------------------------------------------- exact duplicates and groups


def exact_duplicate_pairs(files: pd.DataFrame) -> pd.DataFrame:
    """Pairs of files with the same bytes (``kind="exact"``) or the same decoded pixels.

    ``kind="same-pixels"`` pairs need ``pixels_sha256`` (``inventory(..., pixel_hash=True)``):
    two files that differ in their bytes (metadata, another encoder setting of a lossless
    format) but decode to the same grayscale pixels. Columns ``a, b, kind, score`` (``score`` is 1.0).
    """
    rows, seen = [], set()
    for column, kind in (("sha256", "exact"), ("pixels_sha256", "same-pixels")):
        if column not in files or files[column].isna().all():
            continue
        for members in files.groupby(column).indices.values():
            for a, b in itertools.combinations(sorted(members), 2):
                if (a, b) not in seen:
                    seen.add((a, b))
                    rows.append((int(a), int(b), kind, 1.0))
    return pd.DataFrame(rows, columns=["a", "b", "kind", "score"])


def duplicate_groups(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """Group number of each of ``n`` files: the connected components of the duplicate pairs.

    If A is a copy of B and B of C, all three form one group, even when A and C were never
    compared (what a union-find structure computes; SciPy does it on a sparse graph). Groups
    are numbered from 0 in the order of their first file; a file without copies is a group
    of its own.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = pairs["a"].to_numpy(int), pairs["b"].to_numpy(int)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # renumber groups by their first file
    renumber = np.empty(len(first), int)
    renumber[np.argsort(first)] = np.arange(len(first))
    return renumber[labels]


def pair_table(files: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (indices ``a, b``) with each file's path, split and class, and two flags.

    ``cross_split``: the two files sit in different splits (a test image seen in training);
    ``label_conflict``: they carry different labels.
    """
    out = pd.DataFrame({
        "path_a": files["path"].to_numpy()[pairs["a"]], "path_b": files["path"].to_numpy()[pairs["b"]],
        "kind": pairs["kind"].to_numpy(), "score": pairs["score"].to_numpy().round(4),
        "split_a": files["split"].to_numpy()[pairs["a"]], "class_a": files["class"].to_numpy()[pairs["a"]],
        "split_b": files["split"].to_numpy()[pairs["b"]], "class_b": files["class"].to_numpy()[pairs["b"]],
    })
    out["cross_split"] = out["split_a"] != out["split_b"]
    out["label_conflict"] = out["class_a"] != out["class_b"]
    return out


def mark_files(files: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Add each file's duplicate group and what it takes part in.

    Columns added: ``group``, ``group_size``, ``exact`` (has a byte-identical copy), ``near``
    (has a near-duplicate that is not byte-identical), ``cross_split`` (its group reaches into
    another split) and ``label_conflict`` (its group holds another class).
    """
    files = files.copy()
    files["group"] = duplicate_groups(len(files), pairs)
    per_group = files.groupby("group")
    files["group_size"] = per_group["path"].transform("size")
    files["cross_split"] = per_group["split"].transform("nunique") > 1
    files["label_conflict"] = per_group["class"].transform("nunique") > 1
    for column, kinds in (("exact", ["exact"]), ("near", ["near", "same-pixels"])):
        members = np.unique(pairs.loc[pairs["kind"].isin(kinds), ["a", "b"]].to_numpy().ravel())
        files[column] = False
        files.loc[members, column] = True
    return files


def count_table(files: pd.DataFrame) -> pd.DataFrame:
    """Per split and class: images, and how many take part in exact copies, near copies, leaks, conflicts."""
    from brainlab import data

    order = [s for s in data.SPLITS if s in set(files["split"])]
    table = (files.groupby(["split", "class"])
             .agg(images=("path", "size"), exact=("exact", "sum"), near=("near", "sum"),
                  cross_split=("cross_split", "sum"), label_conflict=("label_conflict", "sum"))
             .reset_index())
    table["split"] = pd.Categorical(table["split"], order, ordered=True)
    table["class"] = pd.Categorical(table["class"], data.CLASS_NAMES, ordered=True)
    return table.sort_values(["split", "class"], ignore_index=True).astype({"split": str, "class": str})


# ----------------------------------------------------------------------------- shortcut cues

SIZE_FEATURES = ("width", "height", "aspect")
FILE_FEATURES = SIZE_FEATURES + ("file_kb",)


def shortcut_table(files: pd.DataFrame) -> pd.DataFrame:
    """Image size, aspect ratio and file size per split and class.

    ``top_size`` is the most common size of that split and class, ``top_size_share`` the share
    of its images that have it. When these differ between classes, a model can tell the
    classes apart without looking at the brain.
    """
    rows = []
    for (split, class_name), part in files.groupby(["split", "class"], sort=False):
        sizes = part["width"].astype(str) + "x" + part["height"].astype(str)
        top = sizes.value_counts()
        rows.append(dict(split=split, **{"class": class_name}, images=len(part), distinct_sizes=len(top),
                         top_size=top.index[0], top_size_share=round(top.iloc[0] / len(part), 3),
                         median_width=part["width"].median(), median_height=part["height"].median(),
                         median_aspect=round(part["aspect"].median(), 3),
                         median_file_kb=round(part["file_kb"].median(), 1)))
    return pd.DataFrame(rows)


def shortcut_accuracy(train: pd.DataFrame, test: pd.DataFrame, features=SIZE_FEATURES,
                      seed: int = config.DEFAULT_SEED) -> dict:
    """How well a small decision tree predicts the class from ``features`` alone.

    Trained on ``train``, scored on ``test``. ``majority`` is the accuracy of always answering
    ``train``'s most common class: the tree beats it only by reading a cue of the files.
    """
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=5, random_state=seed)
    tree.fit(train[list(features)], train["class"])
    majority = train["class"].value_counts().index[0]
    return {"accuracy": round(float(tree.score(test[list(features)], test["class"])), 4),
            "majority": round(float((test["class"] == majority).mean()), 4),
            "train_images": len(train), "test_images": len(test)}


# ----------------------------------------------------------------------------- a leakage-free split


def clean_split(files: pd.DataFrame, seed: int = config.DEFAULT_SEED, val_fraction: float = 0.15,
                test_fraction: float = 0.15) -> pd.DataFrame:
    """Train / val / test parts in which no duplicate group straddles two parts.

    ``files`` needs ``path``, ``class`` and ``group`` (see :func:`mark_files`). Whole groups are
    dealt out by scikit-learn's ``StratifiedGroupKFold``, which keeps each part's class mix
    close to the whole's: one fold of about ``test_fraction`` becomes the test part, then one
    fold of the rest the validation part. Every file is kept, copies included: they cannot leak
    because they always land in the same part. Returns columns ``path, class, split``, the
    manifest that ``brainlab.data.load_splits(manifest=...)`` reads.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups, labels = files["group"].to_numpy(), files["class"].to_numpy()
    if len(np.unique(groups)) < 3:
        raise BrainlabError(f"A clean split needs at least 3 distinct images; found {len(np.unique(groups))}.")

    def one_fold(index, fraction, seed):
        # about 1/fraction folds, but no more than the largest class has images (tiny datasets)
        largest = np.unique(labels[index], return_counts=True)[1].max()
        n_splits = int(np.clip(round(1 / fraction), 2, min(largest, len(np.unique(groups[index])))))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(folds.split(index, labels[index], groups[index]))
        return index[rest], index[held]

    with warnings.catch_warnings():  # tiny datasets: "the least populated class has only N members"
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        rest, test = one_fold(np.arange(len(files)), test_fraction, seed)
        train, val = one_fold(rest, val_fraction / (1 - test_fraction), seed + 1)
    part = np.empty(len(files), dtype=object)
    part[train], part[val], part[test] = "train", "val", "test"
    return pd.DataFrame({"path": files["path"], "class": files["class"], "split": part})


def write_manifest(split: pd.DataFrame, path) -> Path:
    """Write a split as ``path,class,split`` CSV, the format ``brainlab.data.read_manifest`` checks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    split[["path", "class", "split"]].to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- the whole audit


@dataclass
class AuditResult:
    """Everything the audit found, as tables. ``summary`` holds the headline numbers."""

    root: Path
    files: pd.DataFrame  # one row per image, with its group and flags (see mark_files)
    pairs: pd.DataFrame  # one row per duplicate pair: path_a, path_b, kind, score, splits, classes, flags
    checked: pd.DataFrame  # every pair that reached the alignment step, above and below the threshold
    counts: pd.DataFrame  # per split and class (see count_table)
    shortcuts: pd.DataFrame  # sizes per split and class (see shortcut_table)
    clean: pd.DataFrame  # the leakage-free split: path, class, split
    summary: dict
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def groups(self) -> pd.DataFrame:
        """One row per group of two or more files: size, splits, classes and paths."""
        dup = self.files[self.files["group_size"] > 1]
        return (dup.groupby("group")
                .agg(size=("path", "size"), splits=("split", lambda s: ";".join(sorted(set(s)))),
                     classes=("class", lambda s: ";".join(sorted(set(s)))),
                     cross_split=("cross_split", "first"), label_conflict=("label_conflict", "first"),
                     paths=("path", ";".join))
                .reset_index())


def audit_dataset(root=None, seed: int = config.DEFAULT_SEED, pixel_hash: bool = False,
                  progress: bool = False) -> AuditResult:
    """Audit the dataset at ``root`` (default: as :func:`brainlab.data.find_data` decides); writes nothing.

    ``pixel_hash=True`` also hashes the decoded pixels of every file (a full decode: slower),
    to find copies whose bytes differ but whose pixels do not.
    """
    from brainlab import data

    started = time.perf_counter()
    root = data.find_data(root)
    inv = inventory(root, pixel_hash=pixel_hash, progress=progress)
    if len(inv.files) < 2:
        raise BrainlabError(f"{root}: an audit needs at least 2 readable images; found {len(inv.files)}.")
    # Files with the same bytes are compared once, through their first file: this saves time and
    # keeps a much-copied image from filling its own list of candidates with its copies.
    same_bytes = inv.files.groupby("sha256").indices
    first = np.flatnonzero(~inv.files["sha256"].duplicated().to_numpy())
    checked = near_duplicate_pairs(inv.thumbs[first], inv.boxes[first], progress=progress)
    checked[["a", "b"]] = first[checked[["a", "b"]].to_numpy(int)].reshape(-1, 2)
    exact = exact_duplicate_pairs(inv.files)
    exact_keys = set(zip(exact["a"], exact["b"]))
    sha = inv.files["sha256"].to_numpy()
    near = [(min(x, y), max(x, y), "near", score)  # every copy of one file pairs with every copy of the other
            for a, b, score in checked.loc[checked["near"], ["a", "b", "score"]].itertuples(index=False)
            for x in same_bytes[sha[a]] for y in same_bytes[sha[b]]]
    near = pd.DataFrame(near, columns=["a", "b", "kind", "score"])
    near = near[[(a, b) not in exact_keys for a, b in zip(near["a"], near["b"])]]
    pairs = pd.concat([exact, near], ignore_index=True).astype({"a": int, "b": int})
    pairs = pairs.sort_values(["a", "b"], ignore_index=True)
    files = mark_files(inv.files, pairs)
    table = pair_table(files, pairs)
    checked_table = pair_table(files, checked.assign(kind=np.where(checked["near"], "near", "different")))
    checked_table.insert(3, "aligned", checked["aligned"].round(4).to_numpy())
    counts = count_table(files)
    shortcuts = shortcut_table(files)
    clean = clean_split(files, seed=seed)
    summary = _summary(root, files, table, counts, clean, seed)
    summary["unreadable"] = [{"path": p, "reason": r} for p, r in inv.unreadable]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return AuditResult(Path(root), files, table, checked_table, counts, shortcuts, clean, summary, inv.unreadable)


def _summary(root, files: pd.DataFrame, pairs: pd.DataFrame, counts: pd.DataFrame, clean: pd.DataFrame,
             seed: int) -> dict:
    per_split_class: dict = {}
    for row in counts.itertuples(index=False):
        per_split_class.setdefault(row.split, {})[row[1]] = {
            "images": int(row.images), "exact": int(row.exact), "near": int(row.near),
            "cross_split": int(row.cross_split), "label_conflicts": int(row.label_conflict)}
    totals = {k: int(counts[c].sum()) for k, c in (("images", "images"), ("exact", "exact"), ("near", "near"),
                                                    ("cross_split", "cross_split"),
                                                    ("label_conflicts", "label_conflict"))}
    pair_counts = {}
    for kind in ("exact", "same-pixels", "near"):
        of_kind = pairs[pairs["kind"] == kind]
        pair_counts[kind] = {"within_split": int((~of_kind["cross_split"]).sum()),
                             "cross_split": int(of_kind["cross_split"].sum()),
                             "label_conflict": int(of_kind["label_conflict"].sum())}
    grouped = files[files["group_size"] > 1].groupby("group")
    conflicts = [{"group": int(g), "files": [{"path": p, "class": c, "split": s}
                                             for p, c, s in zip(part["path"], part["class"], part["split"])]}
                 for g, part in grouped if part["class"].nunique() > 1]
    summary = {
        "dataset": str(root), "images": len(files),
        "per_split_class": per_split_class, "totals": totals, "pairs": pair_counts,
        "groups": {"with_copies": int(grouped.ngroups),
                   "cross_split": int(sum(part["split"].nunique() > 1 for _, part in grouped)),
                   "label_conflict": len(conflicts),
                   "largest": int(files["group_size"].max())},
        "redundant_copies": int(len(files) - files["group"].nunique()),
        "label_conflicts": conflicts,
        "method": {"near_threshold": NEAR_THRESHOLD, "score": "NCC of band-pass detail after alignment",
                   "coarse_threshold": COARSE_THRESHOLD, "neighbours": NEIGHBOURS},
    }
    if {"Training", "Testing"} <= set(files["split"]):
        train, test = files[files["split"] == "Training"], files[files["split"] == "Testing"]
        summary["testing_with_copy_in_training"] = int(test["cross_split"].sum())
        summary["testing_with_exact_copy_in_training"] = int(test["sha256"].isin(set(train["sha256"])).sum())
        summary["shortcut"] = {
            "classifier": "DecisionTreeClassifier(max_depth=4, min_samples_leaf=5)",
            "size_only": {"official": shortcut_accuracy(train, test, SIZE_FEATURES, seed)},
            "size_and_file_size": {"official": shortcut_accuracy(train, test, FILE_FEATURES, seed)},
        }
        with_part = files.assign(part=clean["split"].to_numpy())  # clean lists the files in the same order
        clean_train, clean_test = with_part[with_part["part"] == "train"], with_part[with_part["part"] == "test"]
        for name, features in (("size_only", SIZE_FEATURES), ("size_and_file_size", FILE_FEATURES)):
            summary["shortcut"][name]["clean"] = shortcut_accuracy(clean_train, clean_test, features, seed)
        summary["size_only_accuracy"] = summary["shortcut"]["size_only"]["official"]["accuracy"]
    part_groups = files.assign(part=clean["split"].to_numpy()).groupby("group")["part"].nunique()
    summary["clean_split"] = {
        "file": "clean_split.csv", "seed": seed,
        "counts": {p: {c: int(n) for c, n in clean[clean["split"] == p]["class"].value_counts().sort_index().items()}
                   for p in PARTS},
        "groups_in_more_than_one_part": int((part_groups > 1).sum()),
    }
    return summary


# ----------------------------------------------------------------------------- figures


def _display_image(path, side: int = 256) -> tuple[np.ndarray, tuple[int, int]]:
    """A grayscale copy of one file for display (longer side at most ``side``) and its real size."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("L")
        size = im.size
        im.thumbnail((side, side))
        return np.asarray(im), size


def pair_figure(root, pairs: pd.DataFrame, title: str, n: int = 6) -> "Figure":
    """Up to ``n`` pairs side by side, one pair per row, each file named under its image.

    ``pairs`` needs ``path_a, path_b, kind, score`` (a table of :class:`AuditResult`). A red
    name marks a pair whose labels differ.
    """
    from matplotlib.figure import Figure

    pairs = pairs.head(n)
    rows = max(len(pairs), 1)
    fig = Figure(figsize=(7.0, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    fig.suptitle(title)
    if pairs.empty:
        for ax in axes.ravel():
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, 0].set_xlabel("no pairs to show")
        axes[0, 1].set_xlabel("no pairs to show")
        return fig
    for row, pair in zip(axes, pairs.itertuples(index=False)):
        conflict = pair.path_a.split("/")[1] != pair.path_b.split("/")[1]
        for ax, path, side in zip(row, (pair.path_a, pair.path_b), ("A", "B")):
            image, (width, height) = _display_image(Path(root) / path)
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(path.replace("/", "/\n", 2), fontsize=8, color="tab:red" if conflict else "black")
            ax.set_title(f"{side}: {width}x{height} pixels", fontsize=8)
        row[0].set_ylabel(f"{pair.kind}, score {pair.score:.4f}", fontsize=9)
    return fig


def _one_per_group(pairs: pd.DataFrame, group_of: dict) -> pd.DataFrame:
    """The least similar pair of each duplicate group, least similar first: how far a copy can drift."""
    groups = pairs["path_a"].map(group_of)
    ordered = pairs.assign(_group=groups).sort_values("score", kind="stable")
    return ordered.drop_duplicates("_group").drop(columns="_group")


def example_pairs(pairs: pd.DataFrame, group_of: dict, n: int = 6) -> pd.DataFrame:
    """Up to ``n`` pairs worth a look, each from another group: label conflicts, cross-split and
    within-split near-duplicates in about equal numbers (then exact copies), least similar first."""
    pairs = pairs.sort_values("score", kind="stable")
    group = pairs["path_a"].map(group_of)
    near = pairs["kind"] != "exact"
    kinds = [pairs["label_conflict"], near & pairs["cross_split"] & ~pairs["label_conflict"],
             near & ~pairs["cross_split"] & ~pairs["label_conflict"], ~near]
    chosen, used = [], set()
    for limit in (max(1, n // 3), n):  # first an equal share of each kind, then fill up
        for kind in kinds:
            taken = 0
            for i in pairs.index[kind]:
                if len(chosen) == n or taken == limit:
                    break
                if group[i] not in used:
                    used.add(group[i])
                    chosen.append(i)
                    taken += 1
    return pairs.loc[chosen]


def borderline_pairs(checked: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The ``n`` lowest-scoring pairs counted as near-duplicates and the ``n`` highest below the threshold."""
    scored = checked.dropna(subset=["score"])
    above = scored[scored["kind"] == "near"].nsmallest(n, "score")
    below = scored[scored["kind"] == "different"].nlargest(n, "score")
    return pd.concat([above, below], ignore_index=True)


def size_figure(files: pd.DataFrame, shortcut: dict | None = None) -> "Figure":
    """Image sizes per class and split: a scatter of width against height for each split, and
    the share of each class's images that have the dataset's commonest size.

    When a class sits on sizes that others rarely use, the size alone gives its label away. The
    title gives the size-only classifier's accuracy when known.
    """
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    from brainlab import data

    splits = [s for s in data.SPLITS if s in set(files["split"])]
    classes = [c for c in data.CLASS_NAMES if c in set(files["class"])]
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    axes = fig.subplots(1, len(splits) + 1, squeeze=False)[0]
    rng = np.random.default_rng(0)
    for ax, split in zip(axes, splits):
        part = files[files["split"] == split]
        spread = np.exp(rng.normal(0, 0.03, (2, len(part))))  # images of one size become a visible cloud
        sns.scatterplot(x=part["width"] * spread[0], y=part["height"] * spread[1], hue=part["class"],
                        hue_order=classes, s=8, alpha=0.4, linewidth=0, ax=ax, legend=False)
        ax.set(xscale="log", yscale="log", title=f"{split} ({len(part)} images)",
               xlabel="width (pixels, log scale)", ylabel="height (pixels, log scale)")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(FixedLocator([128, 256, 512, 1024]))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_locator(NullLocator())
    sizes = files["width"].astype(str) + "x" + files["height"].astype(str)
    commonest = sizes.value_counts().index[0]
    share = (files.assign(at_commonest=sizes == commonest)
             .groupby(["class", "split"], as_index=False)["at_commonest"].mean())
    sns.barplot(share, x="at_commonest", y="class", hue="split", order=classes, hue_order=splits, ax=axes[-1])
    axes[-1].set(xlim=(0, 1), title=f"Share of images at {commonest}", xlabel="share of the class's images",
                 ylabel="class")
    handles = [Line2D([], [], marker="o", linestyle="", color=color, label=c)
               for c, color in zip(classes, sns.color_palette(n_colors=len(classes)))]
    axes[0].legend(handles=handles, title="class", fontsize=7, title_fontsize=8, loc="upper left")
    title = "Image size per class and split: a shortcut a model can learn"
    if shortcut:
        acc = shortcut["size_only"]["official"]
        title += (f"\nA decision tree on size alone: {acc['accuracy']:.0%} on official Testing "
                  f"(always the commonest class: {acc['majority']:.0%})")
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- writing it all down


def summary_markdown(result: AuditResult) -> str:
    """A short human summary of the audit, in Markdown."""
    s = result.summary
    t = s["totals"]
    lines = [f"# Dataset audit: {result.root.name}", "",
             f"{s['images']} images read in {s['seconds']:.0f} s"
             + (f"; {len(s['unreadable'])} unreadable (see unreadable.csv)" if s["unreadable"] else "") + ".", ""]
    lines += [f"- **Exact duplicates** (same bytes): {t['exact']} images have one or more; "
              f"{s['pairs']['exact']['within_split']} pairs within a split, "
              f"{s['pairs']['exact']['cross_split']} across splits.",
              f"- **Near-duplicates** (same scan re-encoded, resized, cropped or with other brightness): "
              f"{t['near']} images; {s['pairs']['near']['within_split']} pairs within a split, "
              f"{s['pairs']['near']['cross_split']} across splits.",
              f"- **Duplicate groups**: {s['groups']['with_copies']} groups of two or more files (largest: "
              f"{s['groups']['largest']}); {s['redundant_copies']} files are redundant copies.",
              f"- **Cross-split leaks**: {t['cross_split']} images sit in a group that spans splits "
              f"({s['groups']['cross_split']} groups)."]
    if "testing_with_copy_in_training" in s:
        n_test = sum(v["images"] for v in s["per_split_class"].get("Testing", {}).values())
        lines.append(f"  {s['testing_with_copy_in_training']} of {n_test} Testing images have a copy in Training "
                     f"({s['testing_with_exact_copy_in_training']} byte for byte).")
    lines.append(f"- **Label conflicts**: {s['groups']['label_conflict']} groups ({t['label_conflicts']} images) "
                 "hold copies filed under different classes.")
    for conflict in s["label_conflicts"][:20]:
        lines.append("  - " + ", ".join(f"`{f['path']}`" for f in conflict["files"]))
    if len(s["label_conflicts"]) > 20:
        lines.append(f"  - ... {len(s['label_conflicts']) - 20} more in groups.csv")
    if "shortcut" in s:
        size, both = s["shortcut"]["size_only"], s["shortcut"]["size_and_file_size"]
        lines.append(f"- **Shortcut cues**: a decision tree that sees only width, height and aspect ratio, "
                     f"trained on Training, scores {size['official']['accuracy']:.1%} on official Testing "
                     f"(always answering the commonest class: {size['official']['majority']:.1%}); with file size too: "
                     f"{both['official']['accuracy']:.1%}. On the clean split: {size['clean']['accuracy']:.1%} "
                     f"(size) and {both['clean']['accuracy']:.1%} (size and file size).")
    clean = s["clean_split"]
    parts = ", ".join(f"{p} {sum(c.values())}" for p, c in clean["counts"].items())
    lines += [f"- **Clean split** (`clean_split.csv`, seed {clean['seed']}): {parts}; no duplicate group in more "
              "than one part. Use it with `brainlab train --split clean --manifest clean_split.csv` or "
              "`brainlab.data.load_splits(manifest=...)`.", "",
              "## Per split and class", "",
              "Images that have an exact copy, a near copy, a copy in the other split, a copy under another "
              "label:", "",
              "| split | class | images | exact | near | cross-split | label conflict |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for row in result.counts.itertuples(index=False):
        lines.append(f"| {row.split} | {row[1]} | {row.images} | {row.exact} | {row.near} | {row.cross_split} | "
                     f"{row.label_conflict} |")
    lines += ["", "Files: near_duplicates.csv (every pair), groups.csv, files.csv, counts.csv, shortcuts.csv, "
              "checked_pairs.csv (every pair compared, with its score), clean_split.csv, summary.json; figures "
              "duplicate_pairs.png, borderline_pairs.png, label_conflicts.png, size_shortcut.png.",
              f"A pair is a near-duplicate when the correlation of its aligned fine detail reaches "
              f"{NEAR_THRESHOLD}; borderline_pairs.png shows the pairs on both sides of that line."]
    return "\n".join(lines) + "\n"


def run_audit(root, out_dir, seed: int = config.DEFAULT_SEED, progress: bool = True,
              pixel_hash: bool = False) -> dict:
    """Audit ``root`` and write the tables, figures, ``summary.json``/``.md`` and ``clean_split.csv``
    to ``out_dir``. Returns the summary dict (also in ``summary.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = audit_dataset(root, seed=seed, pixel_hash=pixel_hash, progress=progress)
    result.pairs[["path_a", "path_b", "kind", "score", "split_a", "class_a", "split_b", "class_b", "cross_split",
                  "label_conflict"]].to_csv(out / "near_duplicates.csv", index=False)
    result.checked.to_csv(out / "checked_pairs.csv", index=False)
    result.groups().to_csv(out / "groups.csv", index=False)
    result.files.drop(columns=["label"]).to_csv(out / "files.csv", index=False)
    result.counts.to_csv(out / "counts.csv", index=False)
    result.shortcuts.to_csv(out / "shortcuts.csv", index=False)
    if result.unreadable:
        pd.DataFrame(result.unreadable, columns=["path", "reason"]).to_csv(out / "unreadable.csv", index=False)
    write_manifest(result.clean, out / "clean_split.csv")

    pairs = result.pairs
    group_of = dict(zip(result.files["path"], result.files["group"]))
    figures = {
        "duplicate_pairs.png": pair_figure(result.root, example_pairs(pairs, group_of),
                                           "Duplicate pairs: a label conflict, cross-split and within-split copies"),
        "borderline_pairs.png": pair_figure(result.root, borderline_pairs(result.checked),
                                            f"Near the threshold ({NEAR_THRESHOLD}): "
                                            "top rows counted as copies, bottom rows not"),
        "label_conflicts.png": pair_figure(result.root, _one_per_group(pairs[pairs["label_conflict"]], group_of),
                                           "Copies filed under different classes (red names)"),
        "size_shortcut.png": size_figure(result.files, result.summary.get("shortcut")),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=90)
    result.summary["figures"] = list(figures)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(result), encoding="utf-8")
    return result.summary
