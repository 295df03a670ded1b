"""Training that survives interruptions and leaves a record: ``fit`` into a run directory.

One call, :func:`fit`, trains a compiled (or default-compiled) Keras model and writes::

    run_dir/
      config.json    what was run: model, parameter counts, settings, device, versions
      history.csv    one row per finished epoch (loss, accuracy, val_loss, val_accuracy, seconds)
      best.keras     the model at its best validation loss
      last.keras     the model as training ended (after its last epoch)
      metrics.json   best and last epoch, timings, how the run went
      backup/        only while a run is unfinished: what a restart resumes from

:class:`brainlab.runs.RunFolder` knows where each lies and reads them back
(``RunFolder(run_dir).history()``, ``.config()``, ``.training_record()``).
Every file is written whole or not at all (:mod:`brainlab.runs`), so a Ctrl-C or a killed kernel
never leaves a broken one. Call ``fit`` again with the same run directory and the same settings:
an unfinished run resumes after its last finished epoch (after checking what it finds, and
repairing what an interruption leaves), a finished one is reused, not trained again. Other
settings are refused, naming each difference; so is a second process training in the same folder.

The cached-feature fast path: when every layer below the trainable ones is frozen and
nothing random happens there (no augmentation, no dropout), their output is the same in
every epoch. ``fit`` then computes it once (:func:`split_at_trainable`) and trains only the
trainable top on it. Same model, same numbers, many times faster: for the paper's model
that is the last ResNet50 layers plus the head.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from brainlab import __version__, runs
from brainlab.config import DEFAULT_SEED, set_seed
from brainlab.errors import BrainlabError
from brainlab.kept_epoch import MONITOR, best_row, monitored
from brainlab.models import NUM_CLASSES, parameter_counts
from brainlab.settings import PRECISIONS

__all__ = ["BFLOAT16_CPU_FLAGS", "CannotCacheFeatures", "DevicePolicy", "FitOptions", "FitResult",
           "PRECISION_ENV", "RUN_FILES", "class_weights", "compile_model", "cpu_has_bfloat16",
           "dataset_labels", "device_policy", "fine_tune_two_stage", "fit", "gpu_count", "gradient_norms",
           "precision_from_env", "run_finished", "split_at_trainable"]

RUN_FILES = (runs.CONFIG, runs.HISTORY, runs.BEST, runs.LAST, runs.METRICS)  # a finished run, nothing else


class CannotCacheFeatures(BrainlabError):
    """The model has no frozen, deterministic part below its trainable layers."""


# --------------------------------------------------------------------------- device
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
    """The dtype policy named by ``BRAINLAB_PRECISION``, or None when it is not set.

    :mod:`brainlab.settings` declares the variable (its values are :data:`~brainlab.settings.PRECISIONS`)
    and refuses any other value, in any other case too, with a :class:`~brainlab.errors.SettingError`.
    """
    from brainlab import settings  # import-light, as the command line checks the variable without TensorFlow

    return settings.get(PRECISION_ENV)


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
class _History(keras.callbacks.Callback):
    """Writes history.csv again after every epoch (atomically): one row per finished epoch."""

    def __init__(self, path: Path, rows: list[dict]):
        super().__init__()
        self.path, self.rows = path, list(rows)

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{key: float(value) for key, value in (logs or {}).items()}})
        runs.write_history(self.path, self.rows)


class _Backup(keras.callbacks.Callback):
    """Backs up the model being trained after every epoch (weights and optimizer state, backup/epoch-N.weights.h5).

    A resume restores ``restore`` when training begins (building the optimizer first, as Keras's
    BackupAndRestore does, so that its state has somewhere to go), then calls ``after_restore``
    (which writes best.keras again from it, see :func:`_resume_point`).
    """

    def __init__(self, run_dir: Path, restore: Path | None = None, after_restore=None):
        super().__init__()
        self.run_dir, self.restore, self.after_restore = run_dir, restore, after_restore

    def on_train_begin(self, logs=None):
        if self.restore is not None:
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self.restore)
        if self.after_restore is not None:
            self.after_restore()

    def on_epoch_end(self, epoch, logs=None):
        runs.save_backup(self.model, self.run_dir, epoch)


class _KeepBest(keras.callbacks.ModelCheckpoint):
    """Keras's ModelCheckpoint (save_best_only) for the full model, written atomically and stamped with its epoch.

    The full model is saved even while only a part of it (the head) trains. ``threshold`` is the
    kept model's score on a resume, so that only a better epoch replaces it.
    """

    def __init__(self, full_model, path: Path, monitor: str, mode: str, threshold: float | None):
        self.full_model, self.path, self.partial = full_model, path, runs.partial_path(path)
        super().__init__(str(self.partial), monitor=monitor, mode=mode, save_best_only=True,
                         initial_value_threshold=threshold)

    def set_model(self, model):
        super().set_model(self.full_model)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.partial.exists():  # it was the best epoch so far: ModelCheckpoint wrote it
            try:
                runs.stamp_model(self.partial, epoch=epoch, monitor=self.monitor, score=float(self.best))
                runs.commit(self.partial, self.path)
            finally:
                self.partial.unlink(missing_ok=True)


class _SaveAtEnd(keras.callbacks.Callback):
    """Saves the full model once, when training ends (a resume goes on from backup/, not from this file)."""

    def __init__(self, full_model, path: Path, last_epoch: int):
        super().__init__()
        self.full_model, self.path, self.last_epoch = full_model, path, last_epoch

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch

    def on_train_end(self, logs=None):
        runs.save_model(self.full_model, self.path, epoch=self.last_epoch)


class _EpochTimer(keras.callbacks.Callback):
    """Adds ``seconds`` (wall time of the epoch, validation included) to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


# --------------------------------------------------------------------------- what a run folder holds
@dataclass
class _Start:
    """Where :func:`fit` starts in a run folder: a fresh run, or a resume after ``rows`` (finished epochs)."""

    epoch: int = 0  # the first epoch to train
    rows: list[dict] = field(default_factory=list)  # history.csv of the finished epochs
    restore: Path | None = None  # the backup to load first
    threshold: float | None = None  # the kept model's score: best.keras is replaced only by a better epoch
    rewrite_best: bool = False  # best.keras is to be written again from the backup


def _fresh_start(folder: runs.RunFolder) -> _Start:
    """A folder without config.json: empty, or left by a kill while config.json, the first file, was written."""
    leftovers = sorted(p.name for p in folder.path.iterdir() if not p.name.startswith(".") and p != folder.lock_path)
    if leftovers:
        raise runs.RunFolderError(
            f"{folder} holds {', '.join(leftovers)} but no {runs.CONFIG}, so not a run brainlab can go on with. "
            f"Use another output folder, or delete {folder} (rm -r '{folder}') to train there.")
    return _Start()


def _loaded(path: Path):
    """The model in a .keras file, or None when it is missing or does not load (damaged)."""
    from brainlab.models import load_model

    try:
        return load_model(path)
    except Exception:  # noqa: BLE001  Keras raises many kinds for a damaged file
        return None


def _resume_point(folder: runs.RunFolder, monitor: str, mode: str) -> _Start:
    """Check an unfinished run folder against what an interruption can leave, repair that, refuse anything else.

    The writes of an epoch come in this order: history.csv, backup/, best.keras. So the epochs up to
    the backup's are finished; history.csv may have one row more (that epoch is trained again); and
    best.keras may lack the backup's epoch when the kill came just before it was written (it is
    written again from the backup). best.keras must be the best finished epoch (its stamp says
    which) and load; its score becomes the threshold of the resumed run.
    """
    start_over = f"delete {folder} to start it over: rm -r '{folder}'"
    foreign = sorted(p.name for p in folder.backup_path.glob("*") if not p.name.startswith("epoch-"))
    if foreign:
        raise runs.RunFolderError(f"{folder.backup_path} holds {', '.join(foreign)}: a backup of an older brainlab, "
                                  f"which this one cannot resume; {start_over}")
    found = runs.latest_backup(folder.path)
    last_done, restore = found if found else (-1, None)
    if restore is not None:
        import h5py

        try:
            with h5py.File(restore, "r") as f:
                f.keys()
        except OSError as exc:
            raise runs.RunFolderError(f"{restore} is damaged ({exc}); {start_over}") from None
    rows = folder.history()
    done = [row for row in rows if row["epoch"] <= last_done]
    if [row["epoch"] for row in done] != list(range(last_done + 1)):
        raise runs.RunFolderError(f"{folder.history_path} does not list epochs 0 to {last_done}, which backup/ "
                                  f"has finished; {start_over}")
    if done != rows:
        runs.write_history(folder.history_path, done)  # the unfinished epoch is trained again
    best, best_file = best_row(done, monitor, mode), folder.best_path
    stamp = runs.read_stamp(best_file) or {}
    if best is None:
        best_file.unlink(missing_ok=True)
        return _Start(last_done + 1, done, restore)
    if stamp.get("epoch") == best["epoch"] and _loaded(best_file) is not None:
        return _Start(last_done + 1, done, restore, threshold=stamp.get("score", best[monitor]))
    if best["epoch"] == last_done:  # interrupted between the backup and best.keras
        return _Start(last_done + 1, done, restore, threshold=best[monitor], rewrite_best=True)
    raise runs.RunFolderError(
        f"{best_file} is not the model of epoch {best['epoch']}, the best one in {runs.HISTORY} ({monitor} "
        f"{best[monitor]:.4f}), and that model cannot be made again; {start_over}")


def _reuse(model, folder: runs.RunFolder) -> FitResult:
    """A finished run rerun with its own settings: its files, and its last model's weights in ``model``."""
    last = _loaded(folder.last_path)
    if last is None:
        raise runs.RunFolderError(f"{folder.last_path} is missing or damaged; delete {folder} to train the run "
                                  f"again: rm -r '{folder}'")
    model.set_weights(last.get_weights())
    runs.remove_backups(folder.path)  # left by a kill between metrics.json and its removal
    metrics = folder.training_record()
    print(f"[brainlab] {folder} already holds this run, finished, with the same settings: reusing it, not "
          "training it again (delete the folder to train it again)")
    return FitResult(folder.path, _columns(folder.history()), metrics, bool(metrics.get("cached_features")),
                     reused=True)


# --------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class FitOptions:
    """The settings of :func:`fit` besides the model, the data, the folder and the epochs, with their defaults.

    The defaults are declared here and nowhere else (:func:`fit`'s signature takes them from this
    class); :func:`fit`'s docstring says what each setting does.
    """

    class_weight: str | dict | None = None  # None, "balanced" or {class: weight}
    early_stopping_patience: int | None = None
    monitor: str = MONITOR
    cache_features: bool | str = "auto"
    shuffle_cached: bool = True
    seed: int = DEFAULT_SEED
    deterministic: bool = False
    strategy: tf.distribute.Strategy | None = None
    progress: bool = True
    callbacks: tuple = ()  # Keras callbacks, run after brainlab's own
    experiment: dict | None = None


@dataclass
class FitResult:
    """What :func:`fit` returns: where the run lies and what it measured."""

    run_dir: Path
    history: dict[str, list[float]]  # every finished epoch, those before a resume too
    metrics: dict
    cached_features: bool
    reused: bool = False  # a finished run found in run_dir, with the same settings: nothing was trained

    @property
    def best_model_path(self) -> Path:
        return runs.RunFolder(self.run_dir).best_path


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


def _columns(rows: list[dict]) -> dict[str, list]:
    """History rows (one dict per epoch) as columns (one list per key), as :attr:`FitResult.history` keeps them."""
    return {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}


def _clone_under(model, strategy):
    """The same model (weights, trainable flags, compile settings) built inside ``strategy``."""
    with strategy.scope():
        twin = keras.models.clone_model(model)
        twin.set_weights(model.get_weights())
        if model.compiled:
            twin.compile_from_config(model.get_compile_config())
    return twin


def fit(model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset | None, run_dir, epochs: int, *,
        class_weight=FitOptions.class_weight, early_stopping_patience: int | None = FitOptions.early_stopping_patience,
        monitor: str = FitOptions.monitor, cache_features=FitOptions.cache_features,
        shuffle_cached: bool = FitOptions.shuffle_cached, seed: int = FitOptions.seed,
        deterministic: bool = FitOptions.deterministic, strategy: tf.distribute.Strategy | None = FitOptions.strategy,
        progress: bool = FitOptions.progress, callbacks=FitOptions.callbacks,
        experiment: dict | None = FitOptions.experiment) -> FitResult:
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
    - ``experiment``: settings that decide the result but that ``fit`` cannot see in the model
      (the data folder, the batch size, the recipe...): kept in config.json and compared like the rest.
    - An uncompiled model is compiled with :func:`compile_model`'s defaults.

    The same call again with the same ``run_dir`` goes on where it stopped, or, if the run there
    finished, reuses it (no training; ``model`` gets its last weights, ``reused`` is True). With any
    other setting it is refused, naming each difference. One process at a time trains in a folder.
    """
    options = FitOptions(class_weight=class_weight, early_stopping_patience=early_stopping_patience,
                         monitor=monitor, cache_features=cache_features, shuffle_cached=shuffle_cached, seed=seed,
                         deterministic=deterministic, strategy=strategy, progress=progress,
                         callbacks=tuple(callbacks), experiment=experiment)
    trained = model if strategy is None or model.distribute_strategy is strategy else _clone_under(model, strategy)
    with runs.lock(run_dir, "training"):
        result = _fit_in(runs.RunFolder(run_dir), trained, train_ds, val_ds, epochs, options)
    if trained is not model:
        model.set_weights(trained.get_weights())  # trained on the strategy's devices, kept in the model given
    return result


def _fit_in(folder: runs.RunFolder, model, train_ds, val_ds, epochs: int, options: FitOptions) -> FitResult:
    """:func:`fit`, step by step, while it holds ``folder``: the settings, where to start (or reuse a finished run),
    what to train on, config.json, the callbacks, Keras's own ``fit``, the training record."""
    _prepare(model, options)
    monitor, mode = monitored(options.monitor, has_validation=val_ds is not None)
    settings = _settings_record(model, epochs, monitor, options)
    saved = folder.config()
    start = _starting_point(folder, settings, saved, monitor, mode)
    if start is None:
        return _reuse(model, folder)
    inputs = _inputs(model, train_ds, val_ds, options)
    _write_config(folder, settings, saved, model, inputs)
    callbacks, history = _callbacks(model, folder, epochs, start, monitor, mode, options)
    started = time.perf_counter()
    inputs.model.fit(inputs.train, validation_data=inputs.val, epochs=epochs, initial_epoch=start.epoch,
                     class_weight=inputs.class_weight, callbacks=callbacks, verbose=0,
                     shuffle=False)  # the order is the dataset's own (or shuffle_cached)
    return _finish(folder, history.rows, epochs, start, monitor, mode, inputs, time.perf_counter() - started)


def _prepare(model, options: FitOptions) -> None:
    """Seed everything (and make TensorFlow deterministic if asked); compile an uncompiled model."""
    set_seed(options.seed)
    if options.deterministic:
        tf.config.experimental.enable_op_determinism()
    if not model.compiled:
        compile_model(model)


def _starting_point(folder: runs.RunFolder, settings: dict, saved: dict | None, monitor: str,
                    mode: str) -> _Start | None:
    """Where the training in ``folder`` starts: the beginning, or after its last finished epoch; None when the run
    there is finished (it is reused). A run started with other settings is refused."""
    if saved is None:
        return _fresh_start(folder)
    runs.check_same_settings(folder.path, settings)
    if folder.record_path.is_file():  # this folder's own training record, whatever else lies here
        return None
    return _resume_point(folder, monitor, mode)


@dataclass(frozen=True)
class _Inputs:
    """What Keras trains: the model on the datasets given, or only its trainable head on cached features."""

    model: keras.Model  # the model itself, or its trainable head (the same layers)
    train: tf.data.Dataset
    val: tf.data.Dataset | None
    class_weight: dict | None  # as Keras takes it: "balanced" resolved to the weights of the training labels
    cached: bool  # whether the frozen part's features were computed once (:func:`split_at_trainable`)
    reason: str  # why they were, or were not
    cache_seconds: float = 0.0  # how long computing them took


def _inputs(model, train_ds, val_ds, options: FitOptions) -> _Inputs:
    """Choose the training path (:func:`_plan`) and prepare what it trains on, class weights included."""
    plan, reason = _plan(model, options.cache_features)
    if plan is None:
        weights = _class_weight(options.class_weight, lambda: dataset_labels(train_ds), model)
        return _Inputs(model, train_ds, val_ds, weights, False, reason)
    started = time.perf_counter()
    extractor, head = plan
    train_x, train_y, batch_size = _extract(extractor, train_ds)
    train_data = _cached_dataset(train_x, train_y, batch_size, options.shuffle_cached, options.seed)
    val_data = None
    if val_ds is not None:
        val_x, val_y, _ = _extract(extractor, val_ds)
        val_data = _cached_dataset(val_x, val_y, batch_size, False, options.seed)
    _compile_like(head, model)
    seconds = time.perf_counter() - started
    weights = _class_weight(options.class_weight, lambda: train_y, model)
    return _Inputs(head, train_data, val_data, weights, True, reason, seconds)


def _class_weight(setting, labels, model) -> dict | None:
    """``class_weight`` as Keras takes it: "balanced" becomes the weights of ``labels()``, the training labels."""
    if not isinstance(setting, str):
        return setting
    if setting != "balanced":
        raise ValueError(f"class_weight must be None, 'balanced' or a dict, not {setting!r}")
    return class_weights(labels(), num_classes=int(model.outputs[0].shape[-1]))


def _write_config(folder: runs.RunFolder, settings: dict, saved: dict | None, model, inputs: _Inputs) -> None:
    """config.json: written whole when the run starts (its first file); marked ``resumed`` on its first resume."""
    if saved is None:
        runs.write_json(folder.config_path, _jsonable({
            **settings, "class_weight": inputs.class_weight, "cached_features": inputs.cached,
            "cached_features_reason": inputs.reason, "resumed": False,
            "device": {"gpus": gpu_count(), "replicas": model.distribute_strategy.num_replicas_in_sync,
                       "dtype_policy": keras.config.dtype_policy().name, "jit_compile": model.jit_compile},
            "versions": {"brainlab": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": platform.python_version()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }))
    elif not saved.get("resumed"):
        runs.write_json(folder.config_path, {**saved, "resumed": True})


def _callbacks(model, folder: runs.RunFolder, epochs: int, start: _Start, monitor: str, mode: str,
               options: FitOptions) -> tuple[list, _History]:
    """brainlab's callbacks (the run's files, early stopping, progress), then the caller's; and the history kept."""
    def rewrite_best():  # the model now holds the backup's epoch, the best finished one
        runs.save_model(model, folder.best_path, epoch=start.epoch - 1, monitor=monitor, score=start.threshold)

    history = _History(folder.history_path, start.rows)
    # The writes of an epoch, in the order _resume_point relies on: history.csv, backup/, best.keras.
    callbacks = [
        _EpochTimer(),
        keras.callbacks.TerminateOnNaN(),
        history,
        _Backup(folder.path, start.restore, rewrite_best if start.rewrite_best else None),
        _KeepBest(model, folder.best_path, monitor, mode, start.threshold),
        _SaveAtEnd(model, folder.last_path, start.epoch - 1),  # not every epoch: a ResNet50 takes seconds
    ]
    if options.early_stopping_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                       patience=options.early_stopping_patience,
                                                       restore_best_weights=True))
    if options.progress:
        from tqdm.keras import TqdmCallback

        callbacks.append(TqdmCallback(epochs=epochs, initial=start.epoch, verbose=1))
    return callbacks + list(options.callbacks), history


def _finish(folder: runs.RunFolder, rows: list[dict], epochs: int, start: _Start, monitor: str, mode: str,
            inputs: _Inputs, train_seconds: float) -> FitResult:
    """Write the training record (metrics.json, the run's last file), then drop backup/: the run is finished."""
    seconds = [row["seconds"] for row in rows if not np.isnan(row.get("seconds", np.nan))]
    best, last = best_row(rows, monitor, mode), (rows[-1] if rows else None)
    metrics = {
        "epochs_finished": len(rows), "epochs_requested": epochs,
        "resumed_from_epoch": start.epoch,
        "stopped_early": len(rows) < epochs,
        "best_epoch": best["epoch"] if best else None, "best": best, "last": last,
        "monitor": monitor, "cached_features": inputs.cached,
        "feature_cache_seconds": inputs.cache_seconds, "train_seconds": train_seconds,
        "seconds_per_epoch": statistics.median(seconds) if seconds else None,
    }
    runs.write_json(folder.record_path, _jsonable(metrics))
    runs.remove_backups(folder.path)  # last: until metrics.json is there, a rerun resumes from it
    return FitResult(folder.path, _columns(rows), metrics, inputs.cached)


def _optimizer_config(optimizer) -> dict | None:
    """The optimizer's settings. Under mixed_float16 Keras wraps it in a LossScaleOptimizer:
    record the wrapped optimizer's settings (learning rate...) and that the loss was scaled."""
    if optimizer is None:
        return None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return {**optimizer.inner_optimizer.get_config(), "loss_scale": "dynamic"}
    return optimizer.get_config()


def _settings_record(model, epochs: int, monitor: str, options: FitOptions) -> dict:
    """The part of config.json that decides a run's result, as JSON would give it back.

    ``options.class_weight`` is the setting as passed ("balanced", a dict or None); config.json also
    keeps the weights it resolved to. ``options.experiment``: what fit's caller adds (see :func:`fit`).
    """
    record = {
        "model": model.name, "input_shape": model.input_shape, "parameters": parameter_counts(model), "epochs": epochs,
        "optimizer": _optimizer_config(model.optimizer),
        "loss": model.get_compile_config().get("loss") if model.compiled else None,
        "class_weight_setting": options.class_weight, "early_stopping_patience": options.early_stopping_patience,
        "monitor": monitor, "seed": options.seed, "deterministic": options.deterministic,
        "shuffle_cached": options.shuffle_cached,
    }
    if options.experiment is not None:
        record["experiment"] = options.experiment
    return json.loads(json.dumps(_jsonable(record)))


# --------------------------------------------------------------------------- two stages
def run_finished(run_dir) -> bool:
    """Whether a :func:`fit` run in ``run_dir`` ran to its end (metrics.json, its last file, is written)."""
    return runs.RunFolder(run_dir).record_path.is_file()


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
    Each stage is a :func:`fit`: run again with the same settings, a finished stage 1 is not
    repeated (and stage 2 resumes, or is reused); with other settings (another seed, learning
    rate, number of epochs, model ...) it is refused with a :class:`BrainlabError`.
    ``fit_kwargs`` go to both :func:`fit` calls (class_weight, seed, ...).
    Returns the two :class:`FitResult` (the first is None when stage 1 was already done).
    """
    from brainlab.models import unfreeze_top

    folder = runs.RunFolder(run_dir)
    head, tune = folder.head, folder.fine_tune
    with runs.lock(folder.path, "training"):
        compile_model(model, head_learning_rate, metrics=metrics)
        first = fit(model, train_ds, val_ds, head.path, head_epochs, **fit_kwargs)
        model.load_weights(head.best_path if head.best_path.exists() else head.last_path)
        unfreeze_top(model, after=unfreeze_after)
        compile_model(model, fine_tune_learning_rate, metrics=metrics)
        second = fit(model, train_ds, val_ds, tune.path, fine_tune_epochs, **fit_kwargs)
    return (None if first.reused else first), second


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
