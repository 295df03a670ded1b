#!/usr/bin/env python3
"""Cut the small sample shipped in brainlab/sample/ from a full copy of the dataset.

    python -m tools.make_sample /path/to/brain-tumor-classification-mri

Picks, per split and class, a seeded random choice of images whose bytes occur only once in
the whole dataset (no byte-for-byte copies; re-encoded copies of one scan can still slip in, as
`brainlab audit` shows: see brainlab/sample/README.md), shrinks each so its longer side
is 128 px (keeping the aspect ratio, which is itself a property of the data) and saves it as
a JPEG. Writes the attribution and licence next to the images.
"""
from __future__ import annotations

import random
import shutil
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

from brainlab.catalogue import CLASS_NAMES, SPLIT_FOLDERS, scan, sha256_of
from brainlab.images import decode

__all__ = ["PER_CLASS", "SIDE", "SEED", "OUT", "main"]

PER_CLASS = {"Training": 40, "Testing": 10}
SIDE = 128
SEED = 2020
OUT = Path(__file__).resolve().parents[1] / "brainlab" / "sample"


def main(root: str) -> None:
    files = scan(root).files
    digests = {f.relpath: sha256_of(f.path) for f in files}
    seen = Counter(digests.values())
    rng = random.Random(SEED)
    for split in SPLIT_FOLDERS:
        shutil.rmtree(OUT / split, ignore_errors=True)
        for c in CLASS_NAMES:
            pool = [f for f in files if f.split == split and f.class_name == c and seen[digests[f.relpath]] == 1]
            (OUT / split / c).mkdir(parents=True)
            for f in sorted(rng.sample(pool, PER_CLASS[split]), key=lambda f: f.relpath):
                im, _ = decode(f.path, "L")  # brainlab's decoder: upright, 8-bit, as the loader sees it
                im.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
                im.save(OUT / split / c / f.path.name, "JPEG", quality=90)
    total = sum(p.stat().st_size for p in OUT.rglob("*.jpg"))
    print(f"wrote {sum(PER_CLASS.values()) * len(CLASS_NAMES)} images, {total / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/sartaj-brain-tumor-classification-mri")
