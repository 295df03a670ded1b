"""Runs in a subprocess for the training tests (a fresh TensorFlow each time).

    python _train_child.py resume RUN_DIR LOG KILL_AFTER_EPOCH   # -1: never killed
    python _train_child.py strategy OUT_JSON
    python _train_child.py cli LOG ARGS...     # brainlab ARGS (INTERRUPT as for resume)

``resume`` trains a tiny CNN on synthetic data for 4 epochs into RUN_DIR; after the epoch
KILL_AFTER_EPOCH it dies on the spot (``os._exit``: no cleanup, like a killed kernel).
LOG gets one JSON line per epoch start and end, with a checksum of the weights.

``INTERRUPT=NAME:N:SIGNAL:WHEN`` in the environment interrupts the run at a write instead: at the
N-th time a file called NAME is renamed into place, the process sends itself SIGNAL (INT: Ctrl-C;
KILL: no cleanup at all; PAUSE: it waits there, holding the folder, until killed) just before the
rename (WHEN=before: the new file is written under its temporary name, and for KILL cut to half its
size, as a kill in the middle of writing it would leave it) or just after it (WHEN=after). LOG gets
{"interrupted": NAME, ...} first.
``cli`` runs the command line (``brainlab ARGS``) the same way.
``strategy`` trains on two logical CPUs with a MirroredStrategy and deterministic ops, twice.
"""
from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import tensorflow as tf

# Ctrl-C must raise KeyboardInterrupt here even when the test run itself started with SIGINT ignored (nohup, CI).
signal.signal(signal.SIGINT, signal.default_int_handler)


def synthetic(n=48, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 1)).astype("float32")
    y = np.arange(n) % 4
    x[y == 1] *= 0.5  # something to learn
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def interrupt_at_write(spec, log):
    """Arm the interruption INTERRUPT describes (see the module docstring), by wrapping os.replace."""
    import signal
    import time

    name, nth, how, when = spec.split(":")
    real_replace, seen = os.replace, []

    def stop(src):
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "interrupted": name, "signal": how, "when": when}) + "\n")
        if how == "PAUSE":  # holds the run folder until the test ends it
            time.sleep(300)
        if how == "KILL" and when == "before":
            with open(src, "r+b") as f:
                f.truncate(os.path.getsize(src) // 2)
        os.kill(os.getpid(), signal.SIGKILL if how == "KILL" else signal.SIGINT)
        time.sleep(30)  # SIGINT arrives as KeyboardInterrupt here; SIGKILL ends the process

    def replace(src, dst, *args, **kwargs):
        hit = os.path.basename(dst) == name
        if hit:
            seen.append(dst)
        if hit and len(seen) == int(nth) and when == "before":
            stop(src)
        real_replace(src, dst, *args, **kwargs)
        if hit and len(seen) == int(nth) and when == "after":
            stop(dst)

    os.replace = replace


def resume(run_dir, log, kill_after):
    import keras

    class Record(keras.callbacks.Callback):
        def _write(self, **entry):
            entry["checksum"] = float(sum(np.abs(w).sum() for w in self.model.get_weights()))
            entry["steps"] = int(self.model.optimizer.iterations.numpy())  # the optimizer's state came back too
            with open(log, "a") as f:
                f.write(json.dumps({"pid": os.getpid(), **entry}) + "\n")

        def on_epoch_begin(self, epoch, logs=None):  # after the backup has been restored
            self._write(begin=epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._write(end=epoch)
            if epoch == kill_after:
                os._exit(17)

    tiny_fit(run_dir, [Record()])


def tiny_data():
    """(training, validation) of the runs ``resume`` makes. The validation labels are shuffled, so that the best
    epoch (1, of 0..3) comes before the last: a resumed epoch that scores worse must not replace the kept model."""
    train_ds = synthetic()
    x, y = (np.concatenate(parts) for parts in zip(*train_ds.as_numpy_iterator()))
    return train_ds, tf.data.Dataset.from_tensor_slices((x, np.random.default_rng(2).permutation(y))).batch(16)


def tiny_fit(run_dir, callbacks=(), model=None, **fit_kwargs):
    """The run ``resume`` makes (tests run it again in their own process): (model, FitResult)."""
    from brainlab import config, models, train

    config.set_seed(0)
    model = model or models.small_cnn(image_size=16, channels=1, filters=(4, 8))
    train.compile_model(model, 1e-2)
    train_ds, val_ds = tiny_data()
    return model, train.fit(model, train_ds, val_ds, run_dir, epochs=4, progress=False, callbacks=list(callbacks),
                            **fit_kwargs)


def strategy(out):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tensorflow.python.framework.config import is_op_determinism_enabled

    from brainlab import config, models, train

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = []
    for run in range(2):
        config.set_seed(0)
        model = models.small_cnn(image_size=16, channels=1, filters=(4, 8))
        before = [w.copy() for w in model.get_weights()]
        fitted = train.fit(model, synthetic(), synthetic(), f"{out}.run{run}", epochs=2, progress=False,
                           strategy=mirrored, deterministic=True)
        after = model.get_weights()
        results.append({"changed": float(max(np.abs(a - b).max() for a, b in zip(after, before))),
                        "weights": [w.tolist() for w in after], "loss": fitted.history["loss"]})
    with open(out, "w") as f:
        json.dump({"replicas": mirrored.num_replicas_in_sync, "runs": results,
                   "determinism": is_op_determinism_enabled()}, f)


if __name__ == "__main__":
    if sys.argv[1] == "cli":
        from brainlab.cli import main

        if os.environ.get("INTERRUPT"):
            interrupt_at_write(os.environ["INTERRUPT"], sys.argv[2])
        sys.exit(main(sys.argv[3:]))
    elif sys.argv[1] == "resume":
        if os.environ.get("INTERRUPT"):
            interrupt_at_write(os.environ["INTERRUPT"], sys.argv[3])
        try:
            resume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        except KeyboardInterrupt:
            sys.exit(130)  # as the command line does
    else:
        strategy(sys.argv[2])
