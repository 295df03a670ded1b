"""Training speed and memory on this machine, printed as a markdown table.

    python benchmarks/bench_train.py                 # everything, about 6-10 minutes on 2 CPU cores
    python benchmarks/bench_train.py --steps 4 --images 96 --epochs 2   # a quick look
    python benchmarks/bench_train.py --only small_cnn resnet50_forward
    python benchmarks/bench_train.py --only small_cnn residual_cnn --precision float32 mixed_bfloat16 --xla off on

What it measures, at 128x128 RGB and batch 32, on synthetic images (speed does not depend on
what the pixels show):

- ``resnet50_forward``: ResNet50 inference img/s: the machine's reference FLOP rate.
- ``small_cnn``, ``residual_cnn`` (grayscale input, augmentation layers included),
  ``paper_model`` (weights=None is as fast as ImageNet weights),
  ``full_fine_tuning`` (the paper's model with every layer trainable): training img/s
  (``train_on_batch`` on one fixed batch: no input pipeline in the way).
- ``naive_fit`` / ``cached_fit``: ``brainlab.train.fit`` of the paper's model for a few epochs,
  the full way and the cached-feature way, same seed, same data: seconds per epoch and the
  final metrics, which must agree.

FLOPs: forward FLOPs per image come from TensorFlow's graph profiler (2 FLOPs per
multiply-add) on a batch-1 graph. Training FLOPs are estimated with the usual rule that the
backward pass costs twice the forward pass of the layers it runs through: 3x forward for a
fully trainable model, and forward + 2x forward(trainable top) for the paper's model, whose
gradients stop at its frozen part (the top comes from ``brainlab.train.split_at_trainable``).
"Share of forward FLOP/s" divides a training FLOP rate by ResNet50's measured forward rate.

``--precision`` (Keras dtype policies: float32, mixed_bfloat16, mixed_float16) and ``--xla``
(off, on: ``jit_compile``) measure every combination given; the first combination is the
reference, and a last table gives each other one's speed as a ratio to it. bfloat16 is fast
only on CPUs with bfloat16 instructions (AVX-512 BF16, AMX); elsewhere it is emulated.

Each measurement runs in its own Python process, so peak memory (``ru_maxrss``) is that
measurement's alone; ``baseline`` is a process that only imports TensorFlow and Keras.
Every timed step is timed on its own; the table gives the median and the best step.
On a shared machine the numbers are noisy: compare ratios, and rerun before you trust one.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

IMAGE_SIZE, BATCH = 128, 32
ALL = ("baseline", "resnet50_forward", "small_cnn", "residual_cnn", "paper_model", "full_fine_tuning", "naive_fit", "cached_fit")


# --------------------------------------------------------------------------- in the child process
def _batch(n=BATCH, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32"), rng.integers(0, 4, n)


def forward_flops(model) -> int:
    """FLOPs of one image through ``model`` in inference mode, counted by TensorFlow's profiler."""
    import tensorflow as tf

    specs = [tf.TensorSpec([1, *t.shape[1:]], t.dtype) for t in model.inputs]
    graph = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False)) \
        .get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def _timed(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"img_s_median": BATCH / statistics.median(times), "img_s_best": BATCH / min(times)}


def _training_speed(model, steps, warmup, train_flops, xla=False):
    from brainlab import train

    train.compile_model(model, xla=xla)
    x, y = _batch()
    x = x[..., :model.input_shape[-1]]  # grayscale models get one channel
    result = _timed(lambda: model.train_on_batch(x, y), steps, warmup)
    result["train_gflop_per_img"] = train_flops / 1e9
    return result


def measure(name, args) -> dict:
    if name == "baseline":
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

        return {}
    from brainlab import config, models, train

    train.device_policy(precision=args.precision, xla=args.xla == "on", verbose=False)
    xla = args.xla == "on"
    config.set_seed(0)
    if name == "resnet50_forward":
        model = models.resnet50(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
        x, _ = _batch()
        result = _timed(lambda: model.predict_on_batch(x), args.steps, args.warmup)
        result["forward_gflop_per_img"] = forward_flops(model) / 1e9
        return result
    if name == "small_cnn":
        model = models.small_cnn(image_size=IMAGE_SIZE)
        return _training_speed(model, args.steps * 3, args.warmup, 3 * forward_flops(model), xla)
    if name == "residual_cnn":
        model = models.residual_cnn(image_size=IMAGE_SIZE, channels=1)
        return _training_speed(model, args.steps * 3, args.warmup, 3 * forward_flops(model), xla)
    if name == "paper_model":
        model = models.paper_model(weights=None)
        _, head = train.split_at_trainable(model)
        return _training_speed(model, args.steps, args.warmup, forward_flops(model) + 2 * forward_flops(head), xla)
    if name == "full_fine_tuning":
        model = models.paper_model(weights=None)
        models.freeze(model.layers, trainable=True)
        return _training_speed(model, args.steps, args.warmup, 3 * forward_flops(model), xla)
    if name in ("naive_fit", "cached_fit"):
        import keras
        import tensorflow as tf

        x, y = _batch(args.images, seed=1)
        vx, vy = _batch(args.images // 4, seed=2)
        model = models.paper_model(weights=None)
        # SGD so that the two paths can be compared number for number (see tests/test_train.py).
        model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=xla)
        with tempfile.TemporaryDirectory() as run_dir:
            fitted = train.fit(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH),
                               tf.data.Dataset.from_tensor_slices((vx, vy)).batch(BATCH), run_dir, args.epochs,
                               cache_features=name == "cached_fit", shuffle_cached=False, progress=False)
        seconds = fitted.history["seconds"]
        return {"epoch_s_first": seconds[0], "epoch_s_later": statistics.median(seconds[1:] or seconds),
                "feature_cache_s": fitted.metrics["feature_cache_seconds"],
                "final_loss": fitted.history["loss"][-1], "final_val_loss": fitted.history["val_loss"][-1],
                "final_val_accuracy": fitted.history["val_accuracy"][-1]}
    raise ValueError(name)


# --------------------------------------------------------------------------- in the parent process
def run_one(name, args, precision="float32", xla="off") -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, __file__, "--child", name, "--out", out, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--images", str(args.images), "--epochs", str(args.epochs),
           "--precision", precision, "--xla", xla]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{name} failed:\n{done.stderr[-4000:]}")
    with open(out) as f:
        result = json.load(f)
    os.unlink(out)
    result["process_s"] = time.perf_counter() - start
    print(f"  {name} ({precision}, XLA {xla}): done in {result['process_s']:.0f} s", file=sys.stderr, flush=True)
    return result


def ratios(by_setting: dict) -> str:
    """Each setting's median img/s as a ratio to the first setting's, per measurement."""
    (reference, base), *others = by_setting.items()
    lines = ["| measurement | " + " | ".join(f"{p}, XLA {x}" for p, x in by_setting) + " |",
             "|---|" + "---:|" * len(by_setting)]
    for name, r in base.items():
        if "img_s_median" not in r:
            continue
        cells = [f"{r['img_s_median']:.1f} img/s"] + [
            f"{o[name]['img_s_median'] / r['img_s_median']:.2f}x" if name in o else "-" for _, o in others]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results: dict) -> str:
    fwd = results.get("resnet50_forward")
    fwd_rate = fwd["img_s_median"] * fwd["forward_gflop_per_img"] if fwd else None
    lines = ["| measurement | img/s median (best) | GFLOP/img | GFLOP/s | share of forward FLOP/s | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        if "img_s_median" not in r:
            continue
        gflop = r.get("forward_gflop_per_img") or r.get("train_gflop_per_img")
        rate = r["img_s_median"] * gflop
        share = f"{rate / fwd_rate:.2f}" if fwd_rate else "-"
        lines.append(f"| {name} | {r['img_s_median']:.1f} ({r['img_s_best']:.1f}) | {gflop:.2f} | {rate:.0f} | "
                     f"{share} | {r['peak_rss_mib']:.0f} |")
    if "naive_fit" in results and "cached_fit" in results:
        naive, cached = results["naive_fit"], results["cached_fit"]
        lines += ["", "| fit of the paper's model | first epoch s | later epochs s (median) | feature cache s | "
                      "final loss | final val_loss | final val_accuracy | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in (("full (naive)", naive), ("cached features", cached)):
            lines.append(f"| {name} | {r['epoch_s_first']:.2f} | {r['epoch_s_later']:.3f} | {r['feature_cache_s']:.1f} | "
                         f"{r['final_loss']:.6f} | {r['final_val_loss']:.6f} | {r['final_val_accuracy']:.4f} | "
                         f"{r['peak_rss_mib']:.0f} |")
        lines.append(f"\nCached vs full, later epochs: {naive['epoch_s_later'] / cached['epoch_s_later']:.0f}x faster "
                     f"per epoch; whole run including the one-off feature pass: "
                     f"{naive['process_s'] / cached['process_s']:.1f}x (process wall time).")
    if "baseline" in results:
        lines.append(f"\nBaseline process (Python + TensorFlow + Keras imported): "
                     f"{results['baseline']['peak_rss_mib']:.0f} MiB peak RSS.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per measurement (small_cnn: 3x)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (graph tracing)")
    parser.add_argument("--images", type=int, default=320, help="training images for naive_fit/cached_fit")
    parser.add_argument("--epochs", type=int, default=3, help="epochs for naive_fit/cached_fit")
    parser.add_argument("--only", nargs="+", choices=ALL, help="run only these measurements")
    parser.add_argument("--precision", nargs="+", default=["float32"],
                        choices=["float32", "mixed_bfloat16", "mixed_float16"], help="Keras dtype policies to measure")
    parser.add_argument("--xla", nargs="+", default=["off"], choices=["off", "on"], help="jit_compile off, on")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.precision, args.xla = args.precision[0], args.xla[0]
        result = measure(args.child, args)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        with open(args.out, "w") as f:
            json.dump(result, f)
        return
    import platform

    print(f"brainlab training benchmark: {IMAGE_SIZE}x{IMAGE_SIZE}x3, batch {BATCH}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}", file=sys.stderr)
    by_setting = {}
    for precision in args.precision:
        for xla in args.xla:
            results = {name: run_one(name, args, precision, xla) for name in (args.only or ALL)}
            by_setting[precision, xla] = results
            print(f"\n### {precision}, XLA {xla}\n\n{table(results)}", flush=True)
    if len(by_setting) > 1:
        print(f"\n### Speed against {args.precision[0]}, XLA {args.xla[0]}\n\n{ratios(by_setting)}")


if __name__ == "__main__":
    main()
