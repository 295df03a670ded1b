#!/usr/bin/env python3
"""How long does the duplicate audit take, and does it scale? Printed as a markdown table.

    python benchmarks/bench_audit.py [--data DIR] [--only 1x 2x]

Two measurements, each in a fresh subprocess (so its peak memory is its own):

- ``1x``: ``brainlab.audit.audit_dataset`` on the dataset as it is (3264 images);
- ``2x``: the same on a dataset twice that size, made in a temporary folder: every file, plus
  a copy of it resized to 80% and saved again as a JPEG at quality 85, in the same class folder.
  Every resized copy is a near-duplicate the audit has to find; the table says how many it
  found (``copies found``: the copy lands in its original's duplicate group).

Making the 2x dataset (decoding and re-encoding every image) is not timed. The audit itself
reads every file, so a cold disk cache makes the first measurement a little slower.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sartaj-brain-tumor-classification-mri"
COPY_SUFFIX = " resized"


def make_doubled(source: Path, target: Path, scale: float = 0.8) -> int:
    """Copy every image of ``source`` to ``target`` and add a resized, re-encoded copy of each."""
    from brainlab import data

    found = data.scan(source)
    for f in found.files:
        out = target / f.relpath
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(f.path.read_bytes())
        with Image.open(f.path) as im:
            im = im.convert("RGB")
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            copy = out.with_name(out.stem + COPY_SUFFIX + ".jpg")
            im.resize(size, Image.Resampling.BILINEAR).save(copy, quality=85)
    return 2 * len(found.files)


def stage(root: str) -> dict:
    from brainlab import audit

    started = time.perf_counter()
    result = audit.audit_dataset(root, progress=False)
    seconds = time.perf_counter() - started
    group = {str(Path(p).with_suffix("")): g for p, g in zip(result.files["path"], result.files["group"])}
    copies = [p for p in group if p.endswith(COPY_SUFFIX)]
    found = sum(group[p] == group.get(p.removesuffix(COPY_SUFFIX)) for p in copies)
    return {"images": len(result.files), "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pairs_checked": len(result.checked), "near_pairs": int((result.pairs["kind"] == "near").sum()),
            "copies": len(copies), "copies_found": int(found)}


def main() -> None:
    from brainlab import config  # BRAINLAB_DATA as brainlab reads it

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=config.data_env() or DEFAULT_DATA)
    p.add_argument("--only", nargs="+", choices=["1x", "2x"], default=["1x", "2x"])
    p.add_argument("--stage", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage)))
        return
    if not (Path(args.data) / "Training").is_dir():
        sys.exit(f"No dataset at {args.data}: pass --data DIR or set BRAINLAB_DATA.")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            root = Path(args.data)
            if name == "2x":
                root = Path(tmp) / "doubled"
                t = time.perf_counter()
                n = make_doubled(Path(args.data), root)
                print(f"made {n} images in {root} in {time.perf_counter() - t:.0f} s (not timed)", file=sys.stderr)
            cmd = [sys.executable, __file__, "--stage", str(root)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows[name] = json.loads(out.strip().splitlines()[-1])
    print(f"brainlab.audit.audit_dataset, {os.cpu_count()} CPU cores\n")
    print("| dataset | images | seconds | peak RSS MB | pairs checked | near pairs | copies found |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        found = f"{r['copies_found']} / {r['copies']}" if r["copies"] else "n/a"
        print(f"| {name} | {r['images']} | {r['seconds']:.0f} | {r['peak_mb']:.0f} | {r['pairs_checked']} | "
              f"{r['near_pairs']} | {found} |")


if __name__ == "__main__":
    main()
