"""Matching thumbnails: which images are copies of which, exact or edited.

Exact copies are files with the same bytes (or, optionally, the same decoded pixels):
:func:`exact_duplicate_pairs`. Near-duplicates are the same scan re-encoded, resized, lightly
cropped or with its brightness or contrast changed: :func:`near_duplicate_pairs` finds them within
one set of thumbnails, :func:`match_sets` finds the images of one set that copy images of another
(two datasets, say), with the same sieves and thresholds.

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

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from brainlab.audit.thumbnails import THUMB_SIZE, crop_view, crop_views, detail_view, shrink, unit

__all__ = ["COARSE_THRESHOLD", "NEAR_THRESHOLD", "NEIGHBOURS", "align", "exact_duplicate_pairs", "match_sets",
           "near_duplicate_pairs", "pair_frame", "split_cuts"]

_CANDIDATE_SIZE = 8  # side of the thumbnails that pick candidate pairs
_COARSE_SIZE = 32  # side of the thumbnails compared over the grid of crops
_FINE_SIZE = 64  # side of the thumbnails of the final check
NEIGHBOURS = 10  # candidates per image and view
_COARSE_CROPS = (0.0, 0.04, 0.08)  # fraction cut from each side in the coarse search
_COARSE_BLUR = 0.7  # Gaussian blur (pixels at 32x32) that makes the coarse score forgiving
COARSE_THRESHOLD = 0.95  # pairs below this after the coarse search are not checked further
_FINE_STEPS = (0.02, 0.01, 0.005)  # refinement of the best crop, per side, in three rounds
_MAX_CUT = 0.3  # no crop cuts more than this from a side
_ALIGN_GATE = 0.9  # pairs whose NCC at 64x64 stays below this after alignment are different images
NEAR_THRESHOLD = 0.91  # detail NCC from which a pair counts as a near-duplicate
# The type of every column a table of pairs may have: it keeps them when empty, and so through pd.concat.
_PAIR_TYPES = {"a": "int64", "b": "int64", "kind": "str", "coarse": "float64", "aligned": "float64",
              "score": "float64", "near": "bool"}


def pair_frame(rows=(), columns=("a", "b", "kind", "score")) -> pd.DataFrame:
    """A table of image pairs whose columns have their types (:data:`_PAIR_TYPES`), with rows or without."""
    return pd.DataFrame(list(rows), columns=list(columns)).astype({c: _PAIR_TYPES[c] for c in columns})


# ----------------------------------------------------------------------------- lining two images up


def split_cuts(cuts) -> tuple[tuple, tuple]:
    """Signed cuts (left, top, right, bottom) of a pair -> the crop of each image.

    A positive cut is taken from the first image, a negative one from the second: two
    framings of one scan can each show more on a different side.
    """
    return tuple(max(c, 0.0) for c in cuts), tuple(max(-c, 0.0) for c in cuts)


def _box_cuts(box_a, box_b) -> tuple[float, float, float, float]:
    """Signed cuts that make the head boxes of two images line up (see :func:`split_cuts`)."""
    out = []
    for lo in (0, 1):  # the horizontal axis (left, right), then the vertical one (top, bottom)
        start_a, end_a, start_b, end_b = box_a[lo], 1 - box_a[lo + 2], box_b[lo], 1 - box_b[lo + 2]
        width = (end_a - start_a) / max(end_b - start_b, 1e-3)  # b's whole frame, in units of a's frame
        x0 = start_a - start_b * width  # where b's frame starts and ends in a's frame
        x1 = x0 + width
        out.append((x0 if x0 >= 0 else x0 / width, 1 - x1 if x1 <= 1 else (1 - x1) / width))
    (left, right), (top, bottom) = out
    return tuple(float(np.clip(c, -_MAX_CUT, _MAX_CUT)) for c in (left, top, right, bottom))


# ----------------------------------------------------------------------------- near-duplicates


def _candidate_pairs(thumbs: np.ndarray, boxes: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``(M, 2)`` index pairs (i < j) worth a closer look: each image's nearest images at 8x8.

    Two views are used: the whole frame, and the head's bounding box (which lines up copies that
    were cropped or padded differently). At 8x8 a crop of a few percent moves the content by
    less than a pixel, so the real copy ranks among the nearest few.
    """
    n = len(thumbs)
    k = min(neighbours, n - 1)
    if k < 1:
        return np.zeros((0, 2), int)
    pairs = [_nearest(vectors, vectors, k, same_set=True) for vectors in _candidate_views(thumbs, boxes)]
    pairs = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(pairs, axis=0)


def _cross_candidate_pairs(thumbs_a: np.ndarray, boxes_a: np.ndarray, thumbs_b: np.ndarray, boxes_b: np.ndarray,
                          neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``(M, 2)`` pairs (index in A, index in B) worth a closer look, as :func:`_candidate_pairs` picks them.

    Each image of B has its nearest images of A as candidates, and each image of A its nearest
    images of B, in both views.
    """
    n_a, n_b = len(thumbs_a), len(thumbs_b)
    if n_a == 0 or n_b == 0:
        return np.zeros((0, 2), int)
    pairs = []
    for view_a, view_b in zip(_candidate_views(thumbs_a, boxes_a), _candidate_views(thumbs_b, boxes_b)):
        pairs.append(_nearest(view_a, view_b, min(neighbours, n_b)))
        pairs.append(_nearest(view_b, view_a, min(neighbours, n_a))[:, ::-1])
    return np.unique(np.concatenate(pairs), axis=0)


def _candidate_views(thumbs: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of the whole frame and of the head box of every thumbnail, at 8x8."""
    s = _CANDIDATE_SIZE
    whole = unit(shrink(thumbs, s))
    boxed = np.stack([crop_view(t, b, s) for t, b in zip(thumbs, boxes)])
    return whole, boxed


def _nearest(query: np.ndarray, reference: np.ndarray, k: int, same_set: bool = False) -> np.ndarray:
    """``(len(query) * k, 2)`` pairs (query index, reference index): each query's ``k`` most correlated."""
    pairs = []
    for start in range(0, len(query), 2048):  # blocks keep memory at 2048 x n scores
        sim = query[start:start + 2048] @ reference.T
        rows = np.arange(start, start + len(sim))
        if same_set:
            sim[rows - start, rows] = -np.inf  # an image is not its own candidate
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        pairs.append(np.stack([np.repeat(rows, k), nearest.ravel()], 1))
    return np.concatenate(pairs)


def _coarse_scores(thumbs: np.ndarray, boxes: np.ndarray, pairs: np.ndarray):
    """Best NCC of each pair over the grid of crops, at 32x32, blurred.

    The blur (:data:`_COARSE_BLUR`) makes the score forgiving: the grid's crops are up to half a
    step away from the true crop, and without blur a misalignment of 2% of the side already
    drops the NCC of two copies to about 0.77.

    Returns ``(score, direction, crop)``: ``direction`` 0 means the first image of the pair was
    cropped by ``crop`` (left, top, right, bottom), 1 the second one, and 2 that both were cut to
    their head boxes.
    """
    n, size = len(thumbs), _COARSE_SIZE
    small = shrink(thumbs, THUMB_SIZE // 2)  # 64x64: enough detail for 32x32 crops
    plain = np.stack([crop_view(t, (0, 0, 0, 0), size, _COARSE_BLUR) for t in small])
    boxed = np.stack([crop_view(t, b, size, _COARSE_BLUR) for t, b in zip(small, boxes)])
    grid = list(itertools.product(_COARSE_CROPS, _COARSE_CROPS))  # (start, end) cuts of one axis
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
        scores = crop_views(small[i], grid, grid, size, _COARSE_BLUR) @ plain[directed[rows, 1]].T
        best_crop[rows] = scores.argmax(0)
        best[rows] = scores.max(0)
    m = len(pairs)
    both = np.stack([best[:m], best[m:], np.einsum("kd,kd->k", boxed[pairs[:, 0]], boxed[pairs[:, 1]])], 1)
    direction = both.argmax(1)
    crop = np.array([crops[best_crop[r + (m if d == 1 else 0)]] if d < 2 else (0, 0, 0, 0)
                     for r, d in enumerate(direction)], dtype=float).reshape(-1, 4)
    return both.max(1), direction, crop


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
    for step in _FINE_STEPS:
        for first, second in ((1, 3), (0, 2)):  # (top, bottom), then (left, right)
            options = [(min(max(cuts[first] + d1, -_MAX_CUT), _MAX_CUT),
                        min(max(cuts[second] + d2, -_MAX_CUT), _MAX_CUT))
                       for d1 in (-step, 0.0, step) for d2 in (-step, 0.0, step)]
            crop_a, crop_b = split_cuts(cuts)
            views = []
            for thumb, fixed, sign in ((thumb_a, crop_a, 1), (thumb_b, crop_b, -1)):
                moving = [(max(sign * c1, 0.0), max(sign * c2, 0.0)) for c1, c2 in options]
                distinct = sorted(set(moving))  # often one: the other image is not cut on this axis
                if first == 1:  # rows move, columns stay
                    found = crop_views(thumb, distinct, [(fixed[0], fixed[2])], _FINE_SIZE)
                else:
                    found = crop_views(thumb, [(fixed[1], fixed[3])], distinct, _FINE_SIZE)
                views.append(found[[distinct.index(m) for m in moving]])
            scores = np.einsum("kd,kd->k", *views)
            k = int(scores.argmax())
            cuts[first], cuts[second] = options[k]
            best = float(scores[k])
        if best < _ALIGN_GATE:
            break
    return best, tuple(cuts)


def _detail_score(thumb_a: np.ndarray, thumb_b: np.ndarray, cuts) -> float:
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
    # Thousands of small matrix products: threads of the BLAS library cost more than they save,
    # and on a busy machine much more (measured: 10x slower with 2 threads on 2 shared cores).
    with threadpool_limits(1, user_api="blas"):
        pairs = _candidate_pairs(thumbs, boxes)
        return _score_pairs(thumbs, boxes, pairs, threshold, progress)


def match_sets(thumbs_a: np.ndarray, boxes_a: np.ndarray, thumbs_b: np.ndarray, boxes_b: np.ndarray,
               threshold: float = NEAR_THRESHOLD, progress: bool = True) -> pd.DataFrame:
    """Match one set of thumbnails against another: which images of B are near-duplicates of images of A.

    The same sieves, settings and scores as :func:`near_duplicate_pairs` (a pair scores the same
    whether its two images sit in one set or in two), with candidates taken across the sets only
    (:func:`_cross_candidate_pairs`). Returns the same columns; ``a`` indexes A and ``b`` indexes B.
    """
    n_a = len(thumbs_a)
    with threadpool_limits(1, user_api="blas"):
        pairs = _cross_candidate_pairs(thumbs_a, boxes_a, thumbs_b, boxes_b)
        out = _score_pairs(np.concatenate([thumbs_a, thumbs_b]), np.concatenate([boxes_a, boxes_b]).reshape(-1, 4),
                           pairs + np.array([0, n_a]), threshold, progress)
    out["b"] -= n_a
    return out


def _score_pairs(thumbs: np.ndarray, boxes: np.ndarray, pairs: np.ndarray, threshold: float,
                 progress: bool) -> pd.DataFrame:
    """The coarse search, alignment and detail score of each candidate pair (see the module's notes)."""
    columns = ["a", "b", "coarse", "aligned", "score", "near"]
    if len(pairs) == 0:
        return pair_frame(columns=columns)
    coarse, direction, crop = _coarse_scores(thumbs, boxes, pairs)
    keep = np.flatnonzero(coarse >= COARSE_THRESHOLD)

    def check(k):
        a, b = pairs[k]
        start = {0: crop[k], 1: -crop[k], 2: _box_cuts(boxes[a], boxes[b])}[direction[k]]
        aligned, cuts = align(thumbs[a], thumbs[b], tuple(start))
        score = _detail_score(thumbs[a], thumbs[b], cuts) if aligned >= _ALIGN_GATE else np.nan
        return a, b, float(coarse[k]), aligned, score

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # NumPy releases the GIL
        rows = pool.map(check, keep)
        if progress:
            from tqdm.auto import tqdm

            rows = tqdm(rows, total=len(keep), desc="checking near-duplicates", unit="pair", leave=False)
        rows = list(rows)
    out = pair_frame(rows, columns[:-1])
    out["near"] = out["score"] >= threshold
    return out.sort_values("score", ascending=False, ignore_index=True, na_position="last")


# ----------------------------------------------------------------------------- exact duplicates


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
    return pair_frame(rows)
