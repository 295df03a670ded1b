"""One experiment end to end: data -> model -> training -> evaluation -> figures -> report.

:func:`run` is what ``brainlab reproduce`` and ``brainlab train`` call, and what a notebook
can call to get the same files::

    out/
      run/ (or run/1_head, run/2_fine_tune)   config.json, history.csv, best.keras, last.keras, metrics.json
      evaluation.json   accuracy, split, per-class precision/recall/f1/support/AUC, epochs, seconds, dtype policy
      predictions.csv   every test image: path, true and predicted class, each class's probability
      report.md         the settings, the classification report, the comparison with the paper, figures
      *.png             training curves, confusion matrix, ROC curves, per-class bars, mistakes

The model is chosen on the validation split (best validation loss) and reported on the test
split, never the other way round. :class:`brainlab.runs.RunFolder` reads the folder back
(``RunFolder(out).evaluation()``, ``.predictions()``, ``.training.history()``...).
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from brainlab import config, protocols, runs
from brainlab.errors import BrainlabError, SettingError
from brainlab.images import CROPS
from brainlab.settings import check_folder

__all__ = ["BFLOAT16_MEASURED", "CHOICES", "COMMAND_LINE", "FAST_VARIANT", "FINE_TUNE_LEARNING_RATE", "FIXED",
           "IMAGENET_RECIPES", "IMAGE_SIZES", "MAX_BATCH_SIZE", "MAX_EPOCHS", "MAX_SEED", "MIN_EPOCHS", "ONLY",
           "RECIPES", "TIMING_ONLY", "Settings", "build_model", "check_settings", "default_settings",
           "departures_from_paper", "effective_settings", "evaluate_run", "learning_rate", "load_data", "run",
           "save_figures", "timing_only", "train_model", "write_report"]

RECIPES = ("paper", "improved", "small-cnn", "residual-cnn")
CHOICES = {"preprocessing": ("imagenet", "rescale"), "lr_schedule": ("constant", "cosine"),
           "augmentation": ("standard", "source-shift", "none"), "crop": CROPS}
# Where a recipe takes fewer values of a setting than CHOICES lists: (the values, why).
ONLY = {
    "paper": {"augmentation": (("standard", "none"), "applies the standard augmentation, as the paper does "
                               "(section III.D), or none for the fast variant")},
    "residual-cnn": {"augmentation": (("standard", "source-shift"), "trains with an augmentation")},
}

# A recipe honours every setting except those fixed here, at the one value it uses (and reports);
# any other value is refused: (value, why the recipe cannot take another).
FIXED = {
    "paper": {},
    "improved": {"preprocessing": ("imagenet", "always uses ImageNet preprocessing, which its pretrained filters need"),
                 "lr_schedule": ("constant", "trains in two stages, each at a constant learning rate"),
                 "augmentation": ("standard", "uses the standard augmentation only")},
    "small-cnn": {"weights": ("none", "trains from scratch"),
                  "preprocessing": ("rescale", "rescales pixels to 0..1 inside its model"),
                  "augmentation": ("standard", "uses the standard augmentation only")},
    "residual-cnn": {"weights": ("none", "trains from scratch"),
                     "preprocessing": ("standardize", "standardises every scan inside its model")},
}
COMMAND_LINE = ("weights", "preprocessing", "augmentation")  # the fixed settings `brainlab train` offers as options

# The image sizes each recipe's model takes: from its total downsampling (the last feature map must keep a
# pixel: 8 for the small CNN's three poolings, 32 for the ResNets) to 1024 px, twice the scans' own size.
IMAGE_SIZES = {"paper": (32, 1024), "improved": (32, 1024), "small-cnn": (8, 1024), "residual-cnn": (32, 1024)}
MIN_EPOCHS = {"improved": 2}  # one for the head, one for fine-tuning; every other recipe: 1
MAX_SEED = 2**32 - 1  # NumPy's seeds
MAX_EPOCHS, MAX_BATCH_SIZE = 10_000, 65_536  # beyond these a number is a typo, not a plan

# The ImageNet recipes: started from random weights (--weights none) they train for timing only, and their
# numbers are never shown (see :func:`timing_only`).
IMAGENET_RECIPES = frozenset({"paper", "improved"})
TIMING_ONLY = "timing only: no ImageNet weights (a random start), so no accuracy is shown"
#: What the paper's recipe without augmentation is called wherever it is used or reported.
FAST_VARIANT = ("augmentation none: not the paper's setting (the paper applies augmentation, section III.D); "
                "fast on a CPU, because the frozen ResNet50's features are computed once")

# Recipes whose accuracy in mixed_bfloat16 was measured to match float32 (3 seeds, docs/results.md):
# on a CPU with native bfloat16, `brainlab train` trains them in it (train.device_policy(cpu_bfloat16=True)).
BFLOAT16_MEASURED = frozenset({"residual-cnn"})

# The improved recipe's second stage: the head's learning rate is the ``learning_rate`` setting.
FINE_TUNE_LEARNING_RATE = 1e-5


@dataclass
class Settings:
    """Everything that decides an experiment's result, saved next to it."""

    recipe: str = "paper"
    split: str = protocols.OFFICIAL  # one of protocols.PROTOCOLS
    epochs: int = 20
    image_size: int = 128
    channels: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3  # the improved recipe: its first stage's (the head's)
    weights: str = "imagenet"  # "imagenet", "none" (random start) or a weights file
    preprocessing: str = "imagenet"
    class_weight: str | None = None
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over the run
    augmentation: str = "standard"  # or "source-shift" (residual-cnn), or "none" (the paper's fast variant)
    crop: str = "none"  # or "head": every image cut to the square around the head before resizing
    seed: int = config.DEFAULT_SEED
    quick: bool = False


def default_settings(recipe: str, quick: bool | None = None, **overrides) -> Settings:
    """Each recipe's defaults; quick mode shrinks epochs (and the small CNN's images)."""
    if recipe not in RECIPES:
        raise SettingError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    quick = config.quick_mode() if quick is None else quick
    base = {
        # The paper's model: 128 px, augmentation (section III.D). Adam and its preprocessing are not stated:
        # a plain 1/255 rescale, as many reproductions used, is brainlab's choice (paper.NOT_STATED).
        "paper": dict(epochs=20, preprocessing="rescale", augmentation="standard"),
        "improved": dict(epochs=15, class_weight="balanced"),  # 5 head epochs + 10 fine-tuning epochs
        "small-cnn": dict(epochs=20, weights="none", preprocessing="rescale", class_weight="balanced"),
        # From scratch, grayscale, each scan standardised; cosine decay so the last epochs settle.
        "residual-cnn": dict(epochs=16, channels=1, weights="none", preprocessing="standardize",
                             class_weight="balanced", lr_schedule="cosine"),
    }[recipe]
    settings = Settings(recipe=recipe, quick=quick, **base)
    if quick:
        settings.epochs = 2
        if recipe in ("small-cnn", "residual-cnn"):
            settings.image_size = 64
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    if settings.split not in protocols.PROTOCOLS:
        raise SettingError(f"Unknown split {settings.split!r}: choose {' or '.join(protocols.PROTOCOLS)}.")
    check_settings(settings)
    return settings


def check_settings(s: Settings) -> None:
    """Refuse, with a message, a setting that the recipe would otherwise ignore (see :data:`FIXED`) or
    a number out of its range (:data:`IMAGE_SIZES`, :data:`MIN_EPOCHS`): a :class:`SettingError`."""
    if s.recipe not in RECIPES:
        raise SettingError(f"Unknown recipe {s.recipe!r}: choose one of {', '.join(RECIPES)}.")
    low, high = IMAGE_SIZES[s.recipe]
    ranges = {"epochs": (MIN_EPOCHS.get(s.recipe, 1), MAX_EPOCHS), "batch_size": (1, MAX_BATCH_SIZE),
              "image_size": (low, high), "seed": (0, MAX_SEED)}
    for key, (low, high) in ranges.items():
        value = getattr(s, key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingError(f"--{key.replace('_', '-')} {value!r}: the {s.recipe} recipe takes a whole number "
                               f"from {low} to {high}.")
    for key, (value, why) in FIXED[s.recipe].items():
        given = "none" if key == "weights" and getattr(s, key) is None else getattr(s, key)
        if given != value:
            name = f"--{key}" if key in COMMAND_LINE else key  # as the user gave it
            raise SettingError(f"the {s.recipe} recipe {why}: {name} cannot be used with it "
                                f"({key}={given!r} was given; it uses {value!r}). Leave {name} out, "
                                f"or choose a recipe that takes it.")
    for key, allowed in CHOICES.items():
        if key not in FIXED[s.recipe] and getattr(s, key) not in allowed:
            raise SettingError(f"Unknown {key} {getattr(s, key)!r}: choose {' or '.join(allowed)}.")
    for key, (allowed, why) in ONLY.get(s.recipe, {}).items():
        if getattr(s, key) not in allowed:
            name = f"--{key}" if key in COMMAND_LINE else key
            raise SettingError(f"the {s.recipe} recipe {why}: {name} {getattr(s, key)} cannot be used with it "
                                f"({key}={getattr(s, key)!r} was given; choose {' or '.join(allowed)}).")


def timing_only(s: Settings) -> bool:
    """Whether a run of ``s`` can time the recipe but not measure it: an ImageNet recipe from random weights."""
    return s.recipe in IMAGENET_RECIPES and s.weights in (None, "none")


def departures_from_paper(s: Settings) -> list[str]:
    """How a ``paper`` recipe run differs from what the paper states (section III.D); empty: it does not."""
    if s.recipe != "paper":
        return []
    departures = []
    if s.augmentation == "none":
        departures.append(FAST_VARIANT)
    if s.image_size != 128:
        departures.append(f"{s.image_size} px images (the paper: 128 x 128)")
    if s.weights != "imagenet":
        departures.append(f"weights {s.weights} (the paper: ImageNet)")
    return departures


def effective_settings(s: Settings) -> dict:
    """The settings as they took effect, for evaluation.json and the report."""
    settings = asdict(s)
    if s.recipe == "improved":
        settings["fine_tune_learning_rate"] = FINE_TUNE_LEARNING_RATE
    return settings


def build_model(s: Settings):
    """The recipe's model, built with every model setting it honours (others are refused)."""
    from brainlab import models

    check_settings(s)

    weights = None if s.weights in (None, "none") else s.weights
    if s.recipe == "paper":
        return models.paper_model(weights=weights, image_size=s.image_size, channels=s.channels,
                                  preprocessing=s.preprocessing, augment_images=s.augmentation == "standard")
    if s.recipe == "improved":
        return models.improved_model(weights=weights, image_size=s.image_size, channels=s.channels)
    if s.recipe == "residual-cnn":
        return models.residual_cnn(image_size=s.image_size, channels=s.channels, augmentation=s.augmentation)
    return models.small_cnn(image_size=s.image_size, channels=s.channels, augment_images=True)


def learning_rate(s: Settings, steps_per_epoch: int):
    """``s.learning_rate`` itself, or a cosine decay from it to 0 over ``s.epochs`` epochs."""
    if s.lr_schedule == "constant":
        return s.learning_rate
    if s.lr_schedule == "cosine":
        import keras

        return keras.optimizers.schedules.CosineDecay(s.learning_rate, decay_steps=max(1, s.epochs * steps_per_epoch))
    raise BrainlabError(f"Unknown learning-rate schedule {s.lr_schedule!r}: choose constant or cosine.")


def load_data(s: Settings, data_dir, out: Path, manifest=None, allow_outside: bool = False):
    """The three splits for ``s.split``; the clean split is made by the audit when no manifest is given.

    A manifest's rows are checked before an image is decoded; paths outside the data folder only with
    ``allow_outside`` (see :func:`brainlab.data.read_manifest`)."""
    from brainlab import data

    root = data.sample_dir() if s.quick and data_dir is None else data.find_data(data_dir)
    if s.split == protocols.CLEAN and manifest is None:
        from brainlab.audit import CLEAN_SPLIT_FILE, run_audit

        manifest = runs.RunFolder(out).audit_path / CLEAN_SPLIT_FILE
        if not manifest.is_file():
            print(f"brainlab: auditing {root} to make the clean split ({manifest})")
            run_audit(root, runs.RunFolder(out).audit_path, seed=s.seed)
    return data.load_splits(root, s.image_size, s.channels, seed=s.seed, manifest=manifest, crop=s.crop,
                            allow_outside=allow_outside)


def run(recipe: str = "paper", out="runs/paper", *, data_dir=None, manifest=None, command: str | None = None,
        allow_outside: bool = False, **overrides) -> dict:
    """Train and evaluate one recipe into ``out``; returns the metrics dict (also in evaluation.json).

    ``overrides`` are :class:`Settings` fields (epochs, split, weights, seed, ...); ``None``
    keeps the recipe's default. ``allow_outside``: a manifest may name images outside the data folder.
    Running again with the same ``out`` and settings resumes an unfinished training, or reuses a
    finished one (and evaluates it again); other settings are refused, naming each difference
    (:func:`brainlab.train.fit`). One process at a time works in ``out``.
    """
    out = Path(out)
    s = default_settings(recipe, **overrides)
    with runs.lock(out, "training"):
        return _run(s, out, data_dir, manifest, command, allow_outside)


def _experiment_record(s: Settings, data_root=None, manifest=None) -> dict:
    """The settings of ``s`` that config.json records beside fit's own (seed, epochs...): compared on a rerun."""
    record = {k: v for k, v in effective_settings(s).items() if k not in ("seed", "epochs", "class_weight")}
    if data_root is not None:
        record.update(data=str(Path(data_root).resolve()), manifest=str(Path(manifest).resolve()) if manifest else None)
    return record


def _run(s: Settings, out: Path, data_dir, manifest, command, allow_outside) -> dict:
    """:func:`run`, while it holds ``out``."""
    from brainlab import evaluate, models, paper

    folder = runs.RunFolder(out)
    runs.check_same_settings(folder.training.path, {"experiment": _experiment_record(s)})  # before any slow work
    config.set_seed(s.seed)
    started = time.perf_counter()
    model = build_model(s)  # first: a missing weights file is reported before any slow work
    splits = load_data(s, data_dir, out, manifest, allow_outside)
    print(f"brainlab: {s.recipe} recipe on {protocols.ResultName.parse(splits.test.split).protocol} split\n"
          f"{splits.summary()}")
    train_ds = splits.train.dataset(s.batch_size, shuffle=True, seed=s.seed)
    val_ds = splits.val.dataset(s.batch_size)
    result = train_model(s, model, train_ds, val_ds, folder.training.path, steps_per_epoch=-(-len(splits.train) // s.batch_size),
                         experiment=_experiment_record(s, splits.train.root, manifest))
    best = models.load_model(result.best_model_path)
    if timing_only(s):
        return _write_timing_only(out, s, splits, best, result, time.perf_counter() - started, command)
    predictions = evaluate.predict(best, splits.test)
    seconds = time.perf_counter() - started
    metrics = evaluate.metrics_dict(predictions, recipe=s.recipe, epochs=s.epochs, seconds=round(seconds, 1),
                                    seed=s.seed, settings=effective_settings(s), dtype_policy=best.dtype_policy.name,
                                    command=command or _command_line())
    _write_results(out, metrics, predictions)
    figures = save_figures(out, predictions, runs.RunFolder(result.run_dir).history_path, best)
    write_report(out, s, predictions, best, figures, metrics)
    beside = (f"the paper reports {paper.TEST_ACCURACY:.2f}" if predictions.split == str(protocols.OFFICIAL_TEST)
              else f"the paper's {paper.TEST_ACCURACY:.2f} is on {protocols.OFFICIAL_TEST}, other images")
    print(f"\nTest accuracy on {predictions.split}: {metrics['accuracy']:.3f} ({beside}). "
          f"Report: {folder.report_path}")
    return metrics


def _write_results(out: Path, metrics: dict, predictions) -> None:
    """evaluation.json and predictions.csv, each written whole or not at all (:mod:`brainlab.runs`)."""
    folder = runs.RunFolder(out)
    runs.write_json(folder.evaluation_path, metrics)
    with runs.writing(folder.predictions_path) as partial:
        predictions.to_frame().to_csv(partial, index=False, float_format="%.6g")


def _write_timing_only(out: Path, s: Settings, splits, model, result, seconds: float, command: str | None) -> dict:
    """evaluation.json and report.md of a timing-only run: how long it took, and no number that would mislead."""
    test = splits.test
    predict_started = time.perf_counter()
    for images, _ in test.dataset(s.batch_size):  # the evaluation's cost is timed, its answers are not kept
        model.predict_on_batch(images)
    seconds += time.perf_counter() - predict_started
    metrics = {"recipe": s.recipe, "timing_only": True, "note": TIMING_ONLY, "test_images": test.split,
               "n_images": len(test), "epochs": s.epochs, "seconds": round(seconds, 1),
               "seconds_per_epoch": result.metrics.get("seconds_per_epoch"),
               "cached_features": result.cached_features, "seed": s.seed, "settings": effective_settings(s),
               "departures_from_paper": departures_from_paper(s), "dtype_policy": model.dtype_policy.name,
               "command": command or _command_line()}
    folder = runs.RunFolder(out)
    runs.write_json(folder.evaluation_path, metrics)
    lines = [f"# {s.recipe} recipe: {TIMING_ONLY}", "", f"Command: `{metrics['command']}`", "",
             f"This run started the ResNet50 from random weights, so it measures how long the recipe takes "
             f"({metrics['seconds']:.0f} s for {s.epochs} epochs and the {len(test)} images of {test.split}), "
             "not how well it does. Run it with the ImageNet weights (`--weights imagenet`, a 94 MB download) for "
             "numbers.", "", *_settings_lines(s, metrics)]
    runs.write_text(folder.report_path, "\n".join(lines) + "\n")
    print(f"\n{TIMING_ONLY[0].upper() + TIMING_ONLY[1:]}: {metrics['seconds']:.0f} s for {s.epochs} epochs and {len(test)} test "
          f"images. Report: {folder.report_path}")
    return metrics


def evaluate_run(run_dir, data_dir, out, *, manifest=None, name: str | None = None,
                 command: str | None = None, allow_outside: bool = False) -> dict:
    """Score a finished run (the ``out`` folder of :func:`run`) on any labelled folder; returns the metrics.

    ``data_dir`` holds one folder per class (brainlab's or a catalogue entry's names), or is a
    dataset folder whose images ``manifest`` lists (see :func:`brainlab.data.load_labelled`). The
    images are decoded at the model's own input size and channels and cut as its training images
    were (its ``crop`` setting); its preprocessing is inside the model. ``out`` gets what training writes:
    evaluation.json, predictions.csv, report.md, figures.
    The numbers are named ``name`` (default ``external-<dataset>``), never after the official split.
    ``out`` may not be a run folder or inside one (it would overwrite the run's own results), and
    one process at a time writes in it.
    """
    runs.check_evaluation_out(out, run_dir)
    check_folder(out, "--out", write=True, exists=False)  # before the work, not after it
    with runs.lock(out, "evaluating"):
        return _evaluate_run(Path(run_dir), data_dir, Path(out), manifest=manifest, name=name, command=command,
                             allow_outside=allow_outside)


def _evaluate_run(run_dir: Path, data_dir, out: Path, *, manifest, name, command, allow_outside) -> dict:
    """:func:`evaluate_run`, while it holds ``out``."""
    import dataclasses

    from brainlab import data, evaluate, models

    run = runs.RunFolder(run_dir)
    model_file = run.best_model_path()
    if not run_dir.is_dir() or model_file is None:
        raise BrainlabError(f"{run_dir} holds no trained model (looked for run/best.keras): give the --out folder "
                            "of a finished `brainlab train` or `brainlab reproduce`.")
    if name is not None and name.startswith(protocols.OFFICIAL):
        raise SettingError(f"--name {name!r}: 'official' names the paper's own Testing split; call this one "
                           "external-<dataset> or anything else.")
    trained = _run_evaluation(run)
    tested_on = protocols.ResultName.parse_or_none(trained.get("split"))
    trained_on = str(tested_on.train_counterpart()) if tested_on else "unknown"
    fields = {f.name for f in dataclasses.fields(Settings)}
    s = Settings(**{k: v for k, v in trained.get("settings", {}).items() if k in fields})
    if trained.get("timing_only") or (trained.get("settings") and timing_only(s)):
        raise BrainlabError(f"{run_dir} is a timing-only run ({TIMING_ONLY}): its scores would mean nothing. "
                            "Evaluate a run trained with the ImageNet weights, or a from-scratch recipe.")
    started = time.perf_counter()
    model = models.load_model(model_file)
    _check_classifier(model, model_file)
    _, height, width, channels = model.input_shape  # what the model was built for decides the decoding
    s.image_size, s.channels = int(height), int(channels)
    images = data.load_labelled(data_dir, s.image_size, s.channels, manifest=manifest, name=name, crop=s.crop,
                                allow_outside=allow_outside)
    predictions = evaluate.predict(model, images)
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluate.metrics_dict(predictions, recipe=s.recipe, epochs=s.epochs, seed=s.seed,
                                    seconds=round(time.perf_counter() - started, 1), settings=asdict(s),
                                    run=str(run_dir), trained_on=trained_on, data=str(data_dir),
                                    manifest=str(manifest) if manifest else None,
                                    command=command or _command_line())
    _write_results(out, metrics, predictions)
    history = runs.RunFolder(model_file.parent).history_path
    figures = save_figures(out, predictions, history, model) if history.is_file() else {}
    report = write_report(out, s, predictions, model, figures, metrics)
    title, rest = report.read_text().split("\n", 1)
    runs.write_text(report, f"{title}\n\nThe model of `{run_dir}` (trained on {trained_on}), scored on "
                    f"`{data_dir}`{f' (the images listed in `{manifest}`)' if manifest else ''}. The paper's numbers "
                    f"below are for its own test split, not these images.\n{rest}")
    return metrics


def _run_evaluation(run: runs.RunFolder) -> dict:
    """A run's evaluation record (empty when there is none), or a BrainlabError that names it as damaged."""
    path = run.evaluation_file()
    if path is None:
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        found = exc
    if not isinstance(found, dict) or not isinstance(found.get("settings", {}), dict) \
            or not isinstance(found.get("split", ""), str):
        raise BrainlabError(f"{path} is not the evaluation record of a brainlab run (damaged, or written by "
                            "something else): train the run again, or give the --out folder of another run.")
    return found


def _check_classifier(model, path: Path) -> None:
    """Refuse a model that is not one image in, one score per class out."""
    from brainlab.data import CLASS_NAMES

    inputs, outputs = [tuple(t.shape) for t in model.inputs], [tuple(t.shape) for t in model.outputs]
    if len(inputs) != 1 or len(inputs[0]) != 4 or inputs[0][-1] not in (1, 3) or None in inputs[0][1:] \
            or len(outputs) != 1 or outputs[0][1:] != (len(CLASS_NAMES),):
        raise BrainlabError(f"{path} is not a brainlab classifier: it takes {inputs} and gives {outputs}, not one "
                            f"image (height, width, 1 or 3 channels) in and {len(CLASS_NAMES)} class scores out. "
                            "Give the --out folder of a `brainlab train` or `brainlab reproduce` run.")


def train_model(s: Settings, model, train_ds, val_ds, run_dir: Path, steps_per_epoch: int, **fit_kwargs):
    """Train ``model`` as the recipe does: two stages for improved, one :func:`brainlab.train.fit` otherwise.

    Returns the (last) :class:`brainlab.train.FitResult`; ``fit_kwargs`` go to ``fit`` (progress=False...).
    """
    from brainlab import train

    fit_args = dict(class_weight=s.class_weight, seed=s.seed, **fit_kwargs)
    metrics = () if timing_only(s) else ("accuracy",)  # a random start's accuracies are not even tracked
    if s.recipe == "improved":
        head_epochs = max(1, s.epochs // 3)
        _, result = train.fine_tune_two_stage(model, train_ds, val_ds, run_dir, head_epochs=head_epochs,
                                              fine_tune_epochs=s.epochs - head_epochs,
                                              head_learning_rate=s.learning_rate,
                                              fine_tune_learning_rate=FINE_TUNE_LEARNING_RATE, metrics=metrics,
                                              **fit_args)
        return result
    train.compile_model(model, learning_rate(s, steps_per_epoch), metrics=metrics)
    return train.fit(model, train_ds, val_ds, run_dir, s.epochs, **fit_args)


def save_figures(out: Path, predictions, history_csv: Path, model) -> dict[str, str]:
    """Every figure of the report as a PNG in ``out``; returns {title: file name}."""
    from matplotlib import pyplot as plt

    from brainlab import plots

    makers = {
        "Training curves": ("curves.png", lambda: plots.training_curves(history_csv)),
        "Confusion matrix": ("confusion.png", lambda: plots.confusion_heatmap(predictions)),
        "ROC curves": ("roc.png", lambda: plots.roc_curves(predictions)),
        "Per-class metrics, with the paper": ("per_class.png",
                                              lambda: plots.per_class_metrics(predictions, compare_with_paper=True)),
        "Most confident mistakes": ("mistakes.png", lambda: plots.confident_mistakes(predictions)),
    }
    saved = {}
    for title, (name, make) in makers.items():
        if title == "Most confident mistakes" and (predictions.y_pred == predictions.y_true).all():
            continue  # nothing to show
        fig = make()
        with runs.writing(out / name) as partial:
            fig.savefig(partial, dpi=100, bbox_inches="tight")
        plt.close(fig)
        saved[title] = name
    return saved


def write_report(out: Path, s: Settings, predictions, model, figures: dict[str, str], metrics: dict) -> Path:
    """``report.md``: what was run, how it did, how that compares with the paper, and the figures."""
    from brainlab import evaluate

    comparison = evaluate.compare_with_paper(predictions, model)
    lines = [
        f"# {s.recipe} recipe: {metrics['accuracy']:.1%} accuracy on {predictions.split}",
        "",
        f"Command: `{metrics['command']}`",
        "",
        f"- split: **{predictions.split}** ({len(predictions)} images)" + _split_note(predictions.split),
        *_settings_lines(s, metrics),
        f"- macro AUC: {metrics['macro_auc']:.3f}" if metrics.get("macro_auc") is not None else "- macro AUC: n/a",
        "",
        "## Classification report",
        "",
        "```",
        evaluate.classification_text(predictions),
        "```",
        "",
        "## Side by side with the paper",
        "",
        "```",
        evaluate.comparison_text(comparison),
        "```",
        "",
    ]
    for title, name in figures.items():
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    return runs.write_text(runs.RunFolder(out).report_path, "\n".join(lines))


def _settings_lines(s: Settings, metrics: dict) -> list[str]:
    """The report's list of what was run; for the paper's recipe, how it departs from the paper and what
    brainlab chose where the paper is silent."""
    lines = [
        f"- epochs: {s.epochs}, image size: {s.image_size}, batch size: {s.batch_size}, seed: {s.seed}",
        f"- weights: {s.weights}, preprocessing: {s.preprocessing}, class weights: {s.class_weight}",
        f"- augmentation: {s.augmentation}, crop: {s.crop}",
        f"- learning rate: {_learning_rate_text(s)}",
        f"- Keras dtype policy: {metrics.get('dtype_policy', 'float32')}",
        f"- time: {metrics['seconds']:.0f} s",
    ]
    if s.recipe == "paper":
        from brainlab import paper

        departures = departures_from_paper(s)
        lines.append("- the paper's setting (section III.D): " + ("yes" if not departures else
                                                               "no: " + "; ".join(departures)))
        lines.append("- not stated in the paper, so brainlab's choice: "
                     + "; ".join(f"{key}: {value}" for key, value in paper.NOT_STATED.items()))
    return lines


def _split_note(split: str) -> str:
    """What a reader must know about a split's name before trusting its numbers."""
    name = protocols.ResultName.parse_or_none(split)
    return f" ({name.caveat})" if name is not None and name.caveat else ""


def _learning_rate_text(s: Settings) -> str:
    if s.recipe == "improved":
        return f"{s.learning_rate:g} for the head, then {FINE_TUNE_LEARNING_RATE:g} for fine-tuning"
    return f"{s.learning_rate:g}" + (", cosine decay to 0" if s.lr_schedule == "cosine" else "")


def _command_line() -> str:
    return "brainlab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "brainlab"
