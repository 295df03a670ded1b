"""Runs in a subprocess for tests/test_train.py (a fresh TensorFlow each time).

    python _train_child.py resume RUN_DIR LOG KILL_AFTER_EPOCH   # -1: never killed
    python _train_child.py strategy OUT_JSON

``resume`` trains a tiny CNN on synthetic data for 4 epochs into RUN_DIR; after the epoch
KILL_AFTER_EPOCH it dies on the spot (``os._exit``: no cleanup, like a killed kernel).
LOG gets one JSON line per epoch start and end, with a checksum of the weights.
``strategy`` trains on two logical CPUs with a MirroredStrategy and deterministic ops, twice.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import tensorflow as tf


def synthetic(n=48, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 1)).astype("float32")
    y = np.arange(n) % 4
    x[y == 1] *= 0.5  # something to learn
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def resume(run_dir, log, kill_after):
    import keras

    from brainlab import config, models, train

    class Record(keras.callbacks.Callback):
        def _write(self, **entry):
            entry["checksum"] = float(sum(np.abs(w).sum() for w in self.model.get_weights()))
            with open(log, "a") as f:
                f.write(json.dumps({"pid": os.getpid(), **entry}) + "\n")

        def on_epoch_begin(self, epoch, logs=None):  # after BackupAndRestore has restored
            self._write(begin=epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._write(end=epoch)
            if epoch == kill_after:
                os._exit(17)

    config.set_seed(0)
    model = models.small_cnn(image_size=16, channels=1, filters=(4, 8))
    data = synthetic()
    train.fit(model, data, data, run_dir, epochs=4, progress=False, callbacks=[Record()])


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
    if sys.argv[1] == "resume":
        resume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        strategy(sys.argv[2])
