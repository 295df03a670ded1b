#!/usr/bin/env python3
"""How fast do images reach the model? brainlab's loader against Keras's directory loader.

    python benchmarks/bench_data.py [--data DIR] [--image-size 128] [--batch-size 32] [--epochs 3]

Each measurement runs in a fresh subprocess (so one cannot warm the next and the peak memory
is its own), on the Training split of the full dataset:

- brainlab, first epoch: decode every JPEG with PIL (draft mode, threads), then one pass of tf.data;
- brainlab, reload: the same call again, served from the decoded-image cache on disk;
- brainlab, cached epoch: further passes over the in-memory tf.data pipeline;
- keras.utils.image_dataset_from_directory, first epoch and ``.cache()``d epochs, for comparison.

Prints a markdown table: img/s and the process's peak resident memory.
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

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sartaj-brain-tumor-classification-mri"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def epoch(ds) -> int:
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n


def stage_brainlab(args) -> dict:
    from brainlab import data

    t = time.perf_counter()
    train = data.load_split("Training", args.data, args.image_size, progress=False)
    decode_s = time.perf_counter() - t
    ds = train.dataset(args.batch_size, shuffle=True)
    t = time.perf_counter()
    n = epoch(ds)
    first_pass_s = time.perf_counter() - t
    times = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        epoch(ds)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    data.load_split("Training", args.data, args.image_size, progress=False)  # served from the disk cache
    reload_s = time.perf_counter() - t
    return {"n": n, "first": n / (decode_s + first_pass_s), "reload": n / reload_s,
            "cached": n / min(times), "peak_mb": peak_mb()}


def stage_keras(args) -> dict:
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        Path(args.data) / "Training", image_size=(args.image_size, args.image_size),
        batch_size=args.batch_size, label_mode="int", seed=0, verbose=False,
    ).cache().prefetch(tf.data.AUTOTUNE)
    t = time.perf_counter()
    n = epoch(ds)
    first = n / (time.perf_counter() - t)
    times = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        epoch(ds)
        times.append(time.perf_counter() - t)
    return {"n": n, "first": first, "cached": n / min(times), "peak_mb": peak_mb()}


def main() -> None:
    from brainlab import config  # BRAINLAB_DATA as brainlab reads it

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=config.data_env() or DEFAULT_DATA)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="cached epochs to time (the best one counts)")
    p.add_argument("--stage", choices=["brainlab", "keras"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:
        print(json.dumps({"brainlab": stage_brainlab, "keras": stage_keras}[args.stage](args)))
        return
    if not (Path(args.data) / "Training").is_dir():
        sys.exit(f"No dataset at {args.data}: pass --data DIR or set BRAINLAB_DATA.")
    results = {}
    with tempfile.TemporaryDirectory() as cache:  # a cold decoded-image cache, as for a first-time user
        env = {**os.environ, "BRAINLAB_CACHE": cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
        for stage in ("brainlab", "keras"):
            cmd = [sys.executable, __file__, "--stage", stage, "--data", str(args.data),
                   "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
                   "--epochs", str(args.epochs)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            results[stage] = json.loads(out.strip().splitlines()[-1])
    b, k = results["brainlab"], results["keras"]
    print(f"Training split, {b['n']} images, {args.image_size} px, batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores\n")
    print("| loader | first epoch (decode) img/s | reload from disk cache img/s | cached epoch img/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    print(f"| brainlab.data | {b['first']:.0f} | {b['reload']:.0f} | {b['cached']:.0f} | {b['peak_mb']:.0f} |")
    print(f"| keras image_dataset_from_directory + cache() | {k['first']:.0f} | n/a | {k['cached']:.0f} | "
          f"{k['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
