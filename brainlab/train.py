"""Training that survives interruptions and leaves a record: ``fit`` into a run directory.

One call, :func:`fit`, trains a compiled (or default-compiled) Keras model and writes::

    run_dir/
      config.json    what was run: model, parameter counts, settings, device, versions
      history.csv    one row per finished epoch (loss, accuracy, val_loss, val_accuracy, seconds)
      best.keras     the model at its best validation loss
      last.keras     the model as training ended (after its last epoch)
      metrics.json   best and last epoch, timings, how the run went
      backup/        only while a run is unfinished: what a restart resumes from

Kill the kernel mid-run and call ``fit`` again with the same run directory: it resumes
after the last finished epoch (Keras's BackupAndRestore) instead of starting over.

The cached-feature fast path: when every layer below the trainable ones is frozen and
nothing random happens there (no augmentation, no dropout), their output is the same in
every epoch. ``fit`` then computes it once (:func:`split_at_trainable`) and trains only the
trainable top on it. Same model, same numbers, many times faster: for the paper's model
that is the last ResNet50 layers plus the head.
"""
from __future__ import annotations

import contextlib
import csv
import inspect
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from brainlab import __version__
from brainlab.config import DEFAULT_SEED, set_seed
from brainlab.errors import BrainlabError
from brainlab.history import MONITOR, best_row, monitored
from brainlab.models import NUM_CLASSES, parameter_counts

__all__ = ["BACKUP_DIR", "CannotCacheFeatures", "DevicePolicy", "FitResult", "RUN_FILES", "class_weights",
           "compile_model", "cpu_has_bfloat16", "dataset_labels", "device_policy", "fine_tune_two_stage", "fit",
           "gpu_count", "gradient_norms", "run_finished", "split_at_trainable"]

BACKUP_DIR = "backup"
RUN_FILES = ("config.json", "history.csv", "best.keras", "last.keras", "metrics.json")


class CannotCacheFeatures(BrainlabError):
    """The model has no frozen, deterministic part below its trainable layers."""


# --------------------------------------------------------------------------- device
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies brainlab runs under
PRECISION_ENV = "BRAINLAB_PRECISION"  # overrides the automatic choice, e.g. to run a GPU's policy on a CPU


@dataclass(frozen=True)
class DevicePolicy:
    """Where and how to train: GPUs found, the Keras dtype policy, XLA, distribution strategy."""

    gpus: int
    precision: str  # one of PRECISIONS
    xla: bool
    strategy: tf.distribute.Strategy = field(compare=False, repr=False)

    @property
    def mixed_precision(self) -> bool:
        """Whether the layers compute in 16 bits (float16 or bfloat16) while the weights stay float32."""
        return self.precision != "float32"

    def __str__(self) -> str:
        where = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else "CPU only (no GPU found)"
        spread = (f"{type(self.strategy).__name__} over {self.strategy.num_replicas_in_sync} replicas"
                  if self.strategy.num_replicas_in_sync > 1 else "one device")
        precision = self.precision
        if self.mixed_precision:
            precision += f" ({self.precision.removeprefix('mixed_')} compute, float32 weights)"
        return f"{where}: {precision}, XLA {'on' if self.xla else 'off'}, {spread}"


def gpu_count() -> int:
    return len(tf.config.list_physical_devices("GPU"))


def precision_from_env() -> str | None:
    """The dtype policy named by ``BRAINLAB_PRECISION``, or None when it is not set."""
    value = os.environ.get(PRECISION_ENV, "").strip()
    if not value:
        return None
    if value not in PRECISIONS:
        raise BrainlabError(f"{PRECISION_ENV}={value!r} is not a precision brainlab knows: set it to one of "
                            f"{', '.join(PRECISIONS)}, or unset it to let brainlab choose for this machine.")
    return value


BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU instructions that compute in bfloat16 natively


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo") -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX), from Linux's ``/proc/cpuinfo``.

    Without those instructions bfloat16 is emulated, and slower than float32. Where there is no
    ``/proc/cpuinfo`` to read (macOS, Windows) the answer is False.
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return any(flag in line.partition(":")[2].split() for flag in BFLOAT16_CPU_FLAGS)
    return False


def _choose_precision(precision: str | None, mixed_precision: bool | None, gpus: int, cpu_bfloat16: bool) -> str:
    """``precision`` or ``mixed_precision`` when given (they must agree), else the environment, else the machine."""
    from_env = precision_from_env()  # checked even when an argument decides
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision is not None and mixed_precision is not None and (precision != "float32") != bool(mixed_precision):
        raise ValueError(f"precision={precision!r} and mixed_precision={mixed_precision!r} contradict each other: "
                         "pass only one of them")
    if precision is not None:
        return precision
    if mixed_precision is not None:
        return "mixed_float16" if mixed_precision else "float32"
    if from_env:
        return from_env
    if gpus > 0:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_bfloat16 and cpu_has_bfloat16() else "float32"


def device_policy(mixed_precision: bool | None = None, xla: bool | None = None, apply: bool = True,
                  verbose: bool = True, precision: str | None = None, cpu_bfloat16: bool = False) -> DevicePolicy:
    """Decide (and report) how to use this machine; ``None`` means "the best choice here".

    On a GPU, mixed precision and XLA are on: both make convolutions much faster there.
    On a CPU both are off: float16 is slow on CPUs and XLA compiles for long and gains little
    (benchmarks/precision_and_xla.md). ``cpu_bfloat16=True`` chooses "mixed_bfloat16" on a CPU
    that computes in bfloat16 natively (:func:`cpu_has_bfloat16`): pass it for a model whose
    accuracy in bfloat16 was measured to match float32, as for the ``residual-cnn`` recipe
    (docs/results.md; 1.2-1.3 times faster on such a CPU).
    ``precision`` names the Keras dtype policy: "float32", "mixed_float16" or
    "mixed_bfloat16"; ``mixed_precision=True`` is short for "mixed_float16". Without either,
    the environment variable ``BRAINLAB_PRECISION`` decides when it is set (so a notebook
    can run under a GPU's policy on a CPU), else the machine does.
    With several GPUs the strategy is a ``MirroredStrategy`` over all of them: build the
    model inside ``with policy.strategy.scope():`` and ``fit`` uses every GPU.
    ``apply=True`` sets Keras's global dtype policy, which only affects models built afterwards.
    """
    gpus = gpu_count()
    precision = _choose_precision(precision, mixed_precision, gpus, cpu_bfloat16)
    xla = gpus > 0 if xla is None else bool(xla)
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    if apply:
        keras.mixed_precision.set_dtype_policy(precision)
    policy = DevicePolicy(gpus, precision, xla, strategy)
    if verbose:
        print(f"[brainlab] {policy}")
    return policy


def compile_model(model: keras.Model, learning_rate: float = 1e-3, xla: bool | None = None,
                  metrics=("accuracy",)) -> keras.Model:
    """Adam, sparse categorical cross-entropy, accuracy: the paper's training setup.

    ``learning_rate``: a number, or a ``keras.optimizers.schedules`` schedule (changes per step).

    ``xla=None`` uses XLA on a GPU only (Keras's own default would also use it on a CPU).
    ``metrics=()`` tracks the loss alone: for a run that only times the training (a random start),
    whose accuracies would mean nothing. Call it again after changing which layers are trainable.
    """
    with model.distribute_strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=list(metrics), jit_compile=gpu_count() > 0 if xla is None else xla)
    return model


# --------------------------------------------------------------------------- class weights
def class_weights(labels, num_classes: int = NUM_CLASSES) -> dict[int, float]:
    """Balanced class weights, n_samples / (n_classes * count), so rare classes count as much.

    Uses scikit-learn's ``compute_class_weight("balanced")``. Classes absent from
    ``labels`` get weight 1.0 (no sample uses it).
    """
    labels = np.asarray(labels).astype(int).ravel()
    present = np.unique(labels)
    balanced = compute_class_weight("balanced", classes=present, y=labels)
    weights = {c: 1.0 for c in range(num_classes)}
    weights.update({int(c): float(w) for c, w in zip(present, balanced)})
    return weights


def dataset_labels(dataset: tf.data.Dataset) -> np.ndarray:
    """All labels of a batched ``(images, labels)`` dataset, in one pass."""
    return np.concatenate([np.asarray(y) for _, y in dataset.as_numpy_iterator()])


# --------------------------------------------------------------------------- cached features
def _inputs_of(layer) -> list:
    x = layer.input
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _random_in_training(layer) -> bool:
    """Whether a layer may give a different output while training (dropout, augmentation...)."""
    if isinstance(layer, keras.Model):
        return any(_random_in_training(inner) for inner in layer.layers)
    if isinstance(layer, keras.layers.BatchNormalization):
        return layer.trainable  # a frozen BatchNormalization always uses its moving statistics
    return "training" in inspect.signature(layer.call).parameters


def split_at_trainable(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Cut ``model`` into (frozen feature extractor, trainable head) that share its layers.

    The head starts where a layer with trainable weights (or anything after one) reads a
    frozen tensor; those tensors are the extractor's outputs and the head's inputs. For the
    paper's model they are ``conv5_block3_2_relu`` (into the trainable conv5_block3_3_conv)
    and ``conv5_block2_out`` (the shortcut into conv5_block3_add). Training the head trains
    the model itself: the layers are the same objects.
    Raises :class:`CannotCacheFeatures` when nothing is frozen, or when a frozen layer is
    random while training (augmentation, dropout): its output then changes every epoch.
    """
    trained: set[int] = set()  # ids of tensors that depend on a trainable weight
    boundary: dict[int, object] = {}  # frozen tensors read by the trained part
    frozen_layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = _inputs_of(layer)
        if layer.trainable_weights or any(id(t) in trained for t in inputs):
            trained.add(id(layer.output))
            boundary.update({id(t): t for t in inputs if id(t) not in trained})
        else:
            frozen_layers.append(layer)
    if not trained:
        raise CannotCacheFeatures(f"{model.name} has no trainable weights")
    if not frozen_layers:
        raise CannotCacheFeatures(f"nothing in {model.name} is frozen below its trainable layers")
    random_layers = [layer.name for layer in frozen_layers if _random_in_training(layer)]
    if random_layers:
        raise CannotCacheFeatures(
            f"frozen layers {random_layers} behave differently while training (augmentation or dropout), "
            "so their output cannot be computed once for all epochs")
    features = list(boundary.values())
    extractor = keras.Model(model.inputs, features, name=f"{model.name}_frozen")
    head = keras.Model(features, model.outputs, name=f"{model.name}_trainable")
    return extractor, head


def _plan(model, cache_features) -> tuple[tuple | None, str]:
    """Choose the training path: ((extractor, head) or None, and why)."""
    if cache_features is False:
        return None, "cache_features=False"
    try:
        with model.distribute_strategy.scope():
            extractor, head = split_at_trainable(model)
    except CannotCacheFeatures as exc:
        if cache_features is True:
            raise
        return None, str(exc)
    if not extractor.weights and cache_features == "auto":
        return None, "the frozen part has no weights: caching it saves nothing"
    return (extractor, head), f"{len(extractor.layers) - 1} frozen layers computed once"


def _extract(extractor, dataset) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Run the frozen part over a dataset once: (features per head input, labels, batch size)."""
    chunks, labels = [], []
    for images, y in dataset:
        out = extractor.predict_on_batch(images)
        chunks.append(out if isinstance(out, (list, tuple)) else [out])
        labels.append(np.asarray(y))
    features = [np.concatenate(parts) for parts in zip(*chunks)]
    return features, np.concatenate(labels), len(labels[0])


def _cached_dataset(features, labels, batch_size, shuffle, seed):
    ds = tf.data.Dataset.from_tensor_slices((tuple(features), labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _compile_like(head, model):
    """Compile ``head`` as ``model`` is compiled, sharing its optimizer (and so its state)."""
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = model.optimizer
    with model.distribute_strategy.scope():
        head.compile(**config)


# --------------------------------------------------------------------------- callbacks
class _FullModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves the full model while only a part of it (the head) trains."""

    def __init__(self, full_model, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.full_model = full_model

    def set_model(self, model):
        super().set_model(self.full_model)


class _SaveAtEnd(keras.callbacks.Callback):
    """Saves the full model once, when training ends (resuming after a kill uses backup/, not this file)."""

    def __init__(self, full_model, path):
        super().__init__()
        self.full_model, self.path = full_model, path

    def on_train_end(self, logs=None):
        self.full_model.save(self.path)


class _EpochTimer(keras.callbacks.Callback):
    """Adds ``seconds`` (wall time of the epoch, validation included) to each epoch's logs."""

    first_epoch = None  # where this call started: above 0 after a resume

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [{k: (int(v) if k == "epoch" else _number(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> float:
    """A history.csv value; Keras's CSVLogger writes "NA" where a metric is missing (no validation data)."""
    return float("nan") if text in ("NA", "") else float(text)


def _write_history(path: Path, rows: list[dict]) -> None:
    """Keep one row per epoch (the last one written: an epoch re-run after a kill replaces its row)."""
    by_epoch = {row["epoch"]: row for row in rows}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    if rows:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


# --------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    """What :func:`fit` returns: where the run lies and what it measured."""

    run_dir: Path
    history: dict[str, list[float]]  # every finished epoch, those before a resume too
    metrics: dict
    cached_features: bool

    @property
    def best_model_path(self) -> Path:
        return self.run_dir / "best.keras"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _clone_under(model, strategy):
    """The same model (weights, trainable flags, compile settings) built inside ``strategy``."""
    with strategy.scope():
        twin = keras.models.clone_model(model)
        twin.set_weights(model.get_weights())
        if model.compiled:
            twin.compile_from_config(model.get_compile_config())
    return twin


def fit(model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset | None, run_dir, epochs: int, *,
        class_weight=None, early_stopping_patience: int | None = None, monitor: str = MONITOR,
        cache_features="auto", shuffle_cached: bool = True, seed: int = DEFAULT_SEED, deterministic: bool = False,
        strategy: tf.distribute.Strategy | None = None, progress: bool = True, callbacks=()) -> FitResult:
    """Train ``model`` into ``run_dir`` (see the module docstring for the files), resuming if interrupted.

    - ``train_ds``/``val_ds``: batched ``(float32 images in 0..255, int labels)`` datasets,
      as ``brainlab.data.ImageSet.dataset()`` makes them.
    - ``class_weight``: None, "balanced" (from the training labels, :func:`class_weights`) or a dict.
    - ``early_stopping_patience``: stop after that many epochs without a better ``monitor``
      and go back to the best weights; None trains all ``epochs``.
    - ``cache_features``: "auto" (use the fast path when possible), True (insist), False.
      ``shuffle_cached`` reshuffles the cached features every epoch (seeded); the full path
      trains on ``train_ds`` exactly as given.
    - ``seed`` seeds Python, NumPy and Keras; ``deterministic=True`` also makes TensorFlow's
      ops deterministic (slower; stays on for the rest of the process). Build the model
      after ``brainlab.config.set_seed`` too: initial weights and dropout seeds come from it.
    - ``strategy``: a ``tf.distribute`` strategy (e.g. ``device_policy().strategy``) to train
      on all its devices; the trained weights end up in ``model``.
    - An uncompiled model is compiled with :func:`compile_model`'s defaults.
    """
    if strategy is not None and model.distribute_strategy is not strategy:
        twin = _clone_under(model, strategy)
        result = fit(twin, train_ds, val_ds, run_dir, epochs, class_weight=class_weight,
                     early_stopping_patience=early_stopping_patience, monitor=monitor,
                     cache_features=cache_features, shuffle_cached=shuffle_cached, seed=seed,
                     deterministic=deterministic, progress=progress, callbacks=callbacks)
        model.set_weights(twin.get_weights())
        return result

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if not model.compiled:
        compile_model(model)
    monitor, mode = monitored(monitor, has_validation=val_ds is not None)

    history_csv, backup_dir = run_dir / "history.csv", run_dir / BACKUP_DIR
    resuming = backup_dir.is_dir() and any(backup_dir.iterdir())
    if not resuming:
        history_csv.unlink(missing_ok=True)  # a fresh run replaces an old one in the same folder
    earlier_best = best_row(_read_history(history_csv), monitor, mode)

    plan, plan_reason = _plan(model, cache_features)
    trained_model = plan[1] if plan else model
    cache_seconds = 0.0
    if plan:
        started = time.perf_counter()
        extractor, head = plan
        train_x, train_y, batch_size = _extract(extractor, train_ds)
        train_data = _cached_dataset(train_x, train_y, batch_size, shuffle_cached, seed)
        val_data = None
        if val_ds is not None:
            val_x, val_y, _ = _extract(extractor, val_ds)
            val_data = _cached_dataset(val_x, val_y, batch_size, False, seed)
        _compile_like(head, model)
        cache_seconds = time.perf_counter() - started
    else:
        train_data, val_data = train_ds, val_ds
    settings = _settings_record(model, epochs, monitor=monitor, class_weight=class_weight, seed=seed,
                                early_stopping_patience=early_stopping_patience, deterministic=deterministic,
                                shuffle_cached=shuffle_cached)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, not {class_weight!r}")
        labels = train_y if plan else dataset_labels(train_ds)
        class_weight = class_weights(labels, num_classes=int(model.outputs[0].shape[-1]))

    _write_json(run_dir / "config.json", {
        **settings, "class_weight": class_weight, "cached_features": bool(plan), "cached_features_reason": plan_reason,
        "resumed": resuming,
        "device": {"gpus": gpu_count(), "replicas": model.distribute_strategy.num_replicas_in_sync,
                   "dtype_policy": keras.config.dtype_policy().name, "jit_compile": model.jit_compile},
        "versions": {"brainlab": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })

    timer = _EpochTimer()
    all_callbacks = [
        timer,
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        _FullModelCheckpoint(model, str(run_dir / "best.keras"), monitor=monitor, mode=mode, save_best_only=True,
                             initial_value_threshold=earlier_best[monitor] if earlier_best else None),
        _SaveAtEnd(model, run_dir / "last.keras"),  # not every epoch: a ResNet50 file takes seconds to write
        # Last of the files, so a kill re-runs (never skips) an epoch. Two copies: one may be half-written.
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True),
    ]
    if early_stopping_patience is not None:
        all_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                           patience=early_stopping_patience,
                                                           restore_best_weights=True))
    if progress:
        from tqdm.keras import TqdmCallback

        all_callbacks.append(TqdmCallback(epochs=epochs, verbose=1))
    all_callbacks.extend(callbacks)

    started = time.perf_counter()
    keras_history = trained_model.fit(train_data, validation_data=val_data, epochs=epochs,
                                      class_weight=class_weight, callbacks=all_callbacks, verbose=0,
                                      shuffle=False)  # the order is the dataset's own (or shuffle_cached)
    train_seconds = time.perf_counter() - started

    rows = _read_history(history_csv)
    _write_history(history_csv, rows)
    rows = _read_history(history_csv)
    this_run = keras_history.history.get("seconds", [])
    best, last = best_row(rows, monitor, mode), (rows[-1] if rows else None)
    metrics = {
        "epochs_finished": len(rows), "epochs_requested": epochs,
        "resumed_from_epoch": timer.first_epoch or 0,
        "stopped_early": len(rows) < epochs,
        "best_epoch": best["epoch"] if best else None, "best": best, "last": last,
        "monitor": monitor, "cached_features": bool(plan),
        "feature_cache_seconds": cache_seconds, "train_seconds": train_seconds,
        "seconds_per_epoch": statistics.median(this_run) if this_run else None,
    }
    _write_json(run_dir / "metrics.json", metrics)
    history = {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}
    return FitResult(run_dir, history, metrics, bool(plan))


def _optimizer_config(optimizer) -> dict | None:
    """The optimizer's settings. Under mixed_float16 Keras wraps it in a LossScaleOptimizer:
    record the wrapped optimizer's settings (learning rate...) and that the loss was scaled."""
    if optimizer is None:
        return None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return {**optimizer.inner_optimizer.get_config(), "loss_scale": "dynamic"}
    return optimizer.get_config()


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n")


def _settings_record(model, epochs, *, monitor, class_weight, early_stopping_patience, seed, deterministic,
                     shuffle_cached) -> dict:
    """The part of config.json that decides a run's result, as JSON would give it back.

    ``class_weight`` is the setting as passed ("balanced", a dict or None); config.json also
    keeps the weights it resolved to.
    """
    record = {
        "model": model.name, "input_shape": model.input_shape, "parameters": parameter_counts(model), "epochs": epochs,
        "optimizer": _optimizer_config(model.optimizer),
        "loss": model.get_compile_config().get("loss") if model.compiled else None,
        "class_weight_setting": class_weight, "early_stopping_patience": early_stopping_patience, "monitor": monitor,
        "seed": seed, "deterministic": deterministic, "shuffle_cached": shuffle_cached,
    }
    return json.loads(json.dumps(_jsonable(record)))


def _requested_settings(model, epochs, has_validation: bool, fit_kwargs: dict) -> dict:
    """What :func:`fit` would record for ``fit_kwargs`` (its defaults filling the rest)."""
    chosen = {name: p.default for name, p in inspect.signature(fit).parameters.items() if p.default is not p.empty}
    chosen.update(fit_kwargs)
    monitor, _ = monitored(chosen["monitor"], has_validation)
    return _settings_record(model, epochs, monitor=monitor, class_weight=chosen["class_weight"], seed=chosen["seed"],
                            early_stopping_patience=chosen["early_stopping_patience"],
                            deterministic=chosen["deterministic"], shuffle_cached=chosen["shuffle_cached"])


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _differences(saved: dict, requested: dict) -> list[str]:
    """``"key: X there, Y now"`` for every requested setting the saved config does not match (one level deep).

    A nested ``name`` (the optimizer's, numbered by Keras: adam, adam_1 ...) is not a setting.
    """
    missing = object()
    found = []
    for key, wanted in requested.items():
        have = saved.get(key, missing)
        pairs = ([(f"{key}.{k}", have.get(k, missing), v) for k, v in wanted.items() if k != "name"]
                 if isinstance(wanted, dict) and isinstance(have, dict) else [(key, have, wanted)])
        found += [f"{name}: {'not recorded' if old is missing else _show(old)} there, {_show(new)} now"
                  for name, old, new in pairs if old != new]
    return found


# --------------------------------------------------------------------------- two stages
def run_finished(run_dir) -> bool:
    """Whether a :func:`fit` run in ``run_dir`` ran to its end (metrics written, no backup left)."""
    run_dir = Path(run_dir)
    return (run_dir / "metrics.json").is_file() and not (run_dir / BACKUP_DIR).exists()


def fine_tune_two_stage(model: keras.Model, train_ds, val_ds, run_dir, head_epochs: int = 5,
                        fine_tune_epochs: int = 10, head_learning_rate: float = 1e-3,
                        fine_tune_learning_rate: float = 1e-5, unfreeze_after: str = "conv4_block6_out",
                        metrics=("accuracy",), **fit_kwargs) -> tuple[FitResult | None, FitResult]:
    """The improved recipe's training: first the head alone, then the top block gently.

    Stage 1 (``run_dir/1_head``) trains the new head on a frozen ResNet50 at
    ``head_learning_rate``: a random head would send large, noisy gradients into the
    pretrained filters. Stage 2 (``run_dir/2_fine_tune``) starts from stage 1's best
    weights, opens the ResNet50 layers after ``unfreeze_after`` (BatchNorm stays frozen,
    :func:`brainlab.models.unfreeze_top`) and trains on at ``fine_tune_learning_rate``.
    A finished stage 1 is not repeated when the call is run again with the same settings (stage 2
    then resumes); a finished stage 1 with other settings (another seed, learning rate, number of
    epochs, model ...) is refused with a :class:`BrainlabError` rather than silently reused.
    ``fit_kwargs`` go to both :func:`fit` calls (class_weight, seed, ...).
    Returns the two :class:`FitResult` (the first is None when stage 1 was already done).
    """
    from brainlab.models import unfreeze_top

    run_dir = Path(run_dir)
    head_dir, tune_dir = run_dir / "1_head", run_dir / "2_fine_tune"
    first = None
    compile_model(model, head_learning_rate, metrics=metrics)
    if run_finished(head_dir):
        _check_same_settings(head_dir, _requested_settings(model, head_epochs, val_ds is not None, fit_kwargs))
    else:
        first = fit(model, train_ds, val_ds, head_dir, head_epochs, **fit_kwargs)
    best = head_dir / "best.keras"
    model.load_weights(best if best.exists() else head_dir / "last.keras")
    unfreeze_top(model, after=unfreeze_after)
    compile_model(model, fine_tune_learning_rate, metrics=metrics)
    second = fit(model, train_ds, val_ds, tune_dir, fine_tune_epochs, **fit_kwargs)
    return first, second


def _check_same_settings(run_dir: Path, requested: dict) -> None:
    """Refuse to reuse the finished run in ``run_dir`` when it was trained with other settings."""
    config_file = run_dir / "config.json"
    saved = json.loads(config_file.read_text()) if config_file.is_file() else {}
    differences = _differences(saved, requested)
    if differences:
        raise BrainlabError(
            f"{run_dir} holds a finished first stage (the head) trained with other settings:\n  "
            + "\n  ".join(differences)
            + f"\nReusing it would mix two experiments. Use another output folder (--out, or run_dir=), or delete "
            f"{run_dir} to train the head again.")


# --------------------------------------------------------------------------- looking inside
def gradient_norms(model: keras.Model, images, labels) -> dict[str, float]:
    """How large the loss gradient is at every layer with a kernel (convolutions, dense), input side first.

    One forward and backward pass on one batch, in training mode as :func:`fit` would run it,
    with the sparse categorical cross-entropy of the model's softmax output. The number per
    layer is the L2 norm of d(loss)/d(kernel): roughly how far one step of gradient descent
    would move that layer's weights. Nothing is updated. Frozen layers are left out.
    ``images`` are float 0..255 as everywhere in brainlab, ``labels`` integer classes.
    Computed in float32 under every dtype policy: float16 holds nothing below about 6e-8,
    and the vanishing gradients this measures can be far smaller.
    """
    images = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    labels = tf.convert_to_tensor(np.asarray(labels).astype(np.int32))
    kernels = [(layer.name, layer.kernel) for layer in model.layers
               if layer.trainable and getattr(layer, "kernel", None) is not None]
    if not kernels:
        raise ValueError(f"{model.name} has no trainable layer with a kernel")
    with _float32_compute(model), tf.GradientTape() as tape:
        probabilities = model(images, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
    gradients = tape.gradient(loss, [kernel for _, kernel in kernels])
    return {name: float(tf.norm(gradient)) for (name, _), gradient in zip(kernels, gradients)}


def _all_layers(layer):
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _all_layers(inner)


@contextlib.contextmanager
def _float32_compute(model: keras.Model):
    """Run ``model`` (and the models nested in it) in float32 for a while, whatever its dtype policy.

    Under mixed precision only the computation is in 16 bits, the weights are float32 already,
    so this changes no weight; the layers' own policies come back afterwards.
    """
    saved = [(layer, layer.dtype_policy) for layer in _all_layers(model)]
    try:
        for layer, policy in saved:
            if policy.compute_dtype != "float32":
                layer.dtype_policy = "float32"
        yield
    finally:
        for layer, policy in saved:
            layer.dtype_policy = policy
