"""Every figure the notebooks show. Each function returns a matplotlib ``Figure``.

Leave the call as the last line of a notebook cell to show the figure, or keep it and call
``fig.savefig("name.png")``. The figures are built without pyplot's global state, so
making many in a loop does not pile up open windows, and nothing is drawn twice.

All figures have a title, labelled axes and class names (never label numbers), and fit a
notebook's width (10 inches at most). Functions that show results take the
:class:`brainlab.evaluate.Predictions` of one split and put the split's name in the title.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from brainlab import evaluate, paper, runs
from brainlab.kept_epoch import MONITOR, best_row, monitored

__all__ = ["CORRECT_COLOR", "MAX_WIDTH", "METRICS", "WRONG_COLOR", "class_balance", "confident_mistakes",
           "confusion_heatmap", "explained_prediction", "overlay", "per_class_metrics", "roc_curves", "run_spread",
           "sample_grid", "show_image", "training_curves"]

MAX_WIDTH = 10.0  # inches: what a notebook shows without scrolling
METRICS = ("precision", "recall", "f1-score")
CORRECT_COLOR, WRONG_COLOR = "tab:green", "tab:red"


def _figure(width: float, height: float, **subplots) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(min(width, MAX_WIDTH), height), layout="constrained")
    axes = fig.subplots(squeeze=False, **subplots)
    return fig, axes


# --------------------------------------------------------------------------- training


def _history_frame(history) -> pd.DataFrame:
    """A training history as a DataFrame, from a Keras History, a dict, a DataFrame or the
    ``history.csv`` of a run folder (one row per finished epoch, read by :func:`brainlab.runs.read_history`)."""
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, (str, Path)):
        path = Path(history)
        if not path.is_file():
            raise FileNotFoundError(f"No training history at {path}. Pass the history.csv of a run folder "
                                    "(brainlab.train.fit writes it there), or the History object that "
                                    "model.fit returned.")
        return pd.DataFrame(runs.read_history(path))
    if hasattr(history, "history"):  # keras.callbacks.History
        history = history.history
    if isinstance(history, Mapping):
        return pd.DataFrame(dict(history))
    raise TypeError(f"Cannot read a training history from {type(history).__name__}: pass a Keras "
                    "History, a dict of lists, a DataFrame or the path of a history.csv")


def _metric_column(frame: pd.DataFrame, wanted: str) -> str | None:
    if wanted in frame:
        return wanted
    candidates = [c for c in frame.columns if wanted[:3] in c and not c.startswith("val_")]
    return candidates[0] if candidates else None


def _run_monitor(history) -> str:
    """What the run chose its kept epoch by: from a FitResult's metrics or the training record of the run
    folder a history.csv is in; else what ``brainlab.train.fit`` watches by default."""
    metrics = getattr(history, "metrics", None)
    if metrics is None and isinstance(history, (str, Path)):
        metrics = runs.RunFolder(Path(history).parent).training_record()
    return (metrics or {}).get("monitor") or MONITOR


def training_curves(history, title: str = "Training curves") -> Figure:
    """Accuracy and loss per epoch, training against validation.

    ``history``: a :class:`brainlab.train.FitResult`, the ``history.csv`` of a run, a Keras
    History, a dict of lists or a DataFrame. The dotted line marks the epoch whose model
    ``brainlab.train.fit`` keeps (``best.keras``): by :mod:`brainlab.kept_epoch`'s rule, the lowest
    validation loss unless the run watched something else. A widening gap between the two
    curves is overfitting.
    """
    monitor, mode = monitored(_run_monitor(history))
    frame = _history_frame(history)
    epochs = frame["epoch"].to_numpy() + 1 if "epoch" in frame else np.arange(1, len(frame) + 1)
    columns = {name: _metric_column(frame, name) for name in ("accuracy", "loss")}
    if not any(columns.values()):
        raise ValueError(f"The history has neither accuracy nor loss; its columns are {list(frame.columns)}")

    fig, axes = _figure(MAX_WIDTH, 4.0, ncols=2)
    rows = [{**row, "position": k} for k, row in enumerate(frame.to_dict("records"))]
    kept = best_row(rows, monitor, mode) if monitor in frame else None
    best_epoch = epochs[kept["position"]] if kept else None
    best_label = f"kept: {'lowest' if mode == 'min' else 'highest'} {monitor} (epoch {best_epoch})"
    for ax, (name, column) in zip(axes[0], columns.items()):
        if column:
            ax.plot(epochs, frame[column], marker="o", markersize=3, label="training")
            if f"val_{column}" in frame:
                ax.plot(epochs, frame[f"val_{column}"], marker="o", markersize=3, label="validation")
            if best_epoch is not None:
                ax.axvline(best_epoch, color="grey", linestyle=":", label=best_label)
            ax.legend()
        ax.set_title(name.capitalize())
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- evaluation


def confusion_heatmap(predictions, kind: str = "both", title: str | None = None) -> Figure:
    """The confusion matrix as a heatmap: rows true class, columns predicted class.

    ``kind``: ``"counts"`` (number of images), ``"rows"`` (each row divided by its total,
    so the diagonal is each class's recall) or ``"both"`` side by side.
    """
    panels = {"counts": ["counts"], "rows": ["rows"], "both": ["counts", "rows"]}.get(kind)
    if panels is None:
        raise ValueError(f"kind must be 'counts', 'rows' or 'both', not {kind!r}")
    fig, axes = _figure(5.0 * len(panels), 4.6, ncols=len(panels))
    for ax, panel in zip(axes[0], panels):
        normalised = panel == "rows"
        matrix = evaluate.confusion(predictions, normalize=normalised)
        sns.heatmap(matrix, annot=True, fmt=".2f" if normalised else "d", cmap="Blues",
                    vmin=0, vmax=1 if normalised else None, cbar=False, square=True,
                    linewidths=0.5, ax=ax)
        ax.set_title("share of each true class (row-normalised)" if normalised else "number of images")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(axis="x", labelrotation=30)
        ax.tick_params(axis="y", labelrotation=0)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle(title or f"Confusion matrix ({predictions.split}, {len(predictions)} images)")
    return fig


def roc_curves(predictions, title: str | None = None) -> Figure:
    """One-vs-rest ROC curve of every class, with its AUC in the legend."""
    curves = evaluate.roc_curves(predictions)
    auc = evaluate.roc_auc(predictions)
    fig, axes = _figure(6.5, 5.5)
    ax = axes[0, 0]
    for name, curve in curves.items():
        ax.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUC {auc[name]:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance (AUC 0.50)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title(f"macro AUC {auc['macro avg']:.3f}")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.suptitle(title or f"ROC curves, one class against the rest ({predictions.split})")
    return fig


def per_class_metrics(predictions, compare_with_paper: bool = False, title: str | None = None) -> Figure:
    """Precision, recall and F1 of every class as bars (the paper's figures 10-11).

    With ``compare_with_paper=True``, one panel per metric with our bars beside the
    paper's; a value the paper's table does not give here is marked "n/a".
    """
    table = evaluate.classification_table(predictions).loc[list(predictions.class_names)]
    long = table[list(METRICS)].rename_axis("class").reset_index().melt(
        id_vars="class", var_name="metric", value_name="score")
    if not compare_with_paper:
        fig, axes = _figure(MAX_WIDTH, 4.5)
        ax = axes[0, 0]
        sns.barplot(data=long, x="class", y="score", hue="metric", ax=ax)
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=1)
        ax.set_ylim(0, 1.12)
        ax.set_xlabel("class")
        ax.set_ylabel("score")
        ax.set_title(f"accuracy {evaluate.accuracy(predictions):.3f} on {len(predictions)} images")
        ax.legend(loc="upper right", ncols=3)
        fig.suptitle(title or f"Precision, recall and F1 per class ({predictions.split})")
        return fig

    fig, axes = _figure(MAX_WIDTH, 4.2, ncols=len(METRICS), sharey=True)
    names = list(predictions.class_names)
    rows = np.arange(len(names))
    height = 0.38
    for ax, metric in zip(axes[0], METRICS):
        ours = table[metric].to_numpy(dtype=float)
        theirs = np.array([_paper_value(name, metric) for name in names], dtype=float)
        ours_bars = ax.barh(rows - height / 2, ours, height, label=f"ours ({predictions.split})")
        ax.bar_label(ours_bars, fmt="%.2f", fontsize=8, padding=2)
        paper_bars = ax.barh(rows + height / 2, np.nan_to_num(theirs), height, label="paper (official test)",
                             color="tab:orange")
        ax.bar_label(paper_bars, labels=[f"paper: {evaluate.MISSING}" if np.isnan(v) else f"{v:.2f}" for v in theirs],
                     fontsize=8, padding=2)
        ax.set_yticks(rows, names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.15)
        ax.set_title(metric)
        ax.set_xlabel("score")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_ylabel("class")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    fig.suptitle(title or f"Per-class metrics: ours ({predictions.split}) beside the paper's")
    return fig


def _paper_value(class_name: str, metric: str) -> float:
    value = paper.PER_CLASS.get(class_name, {}).get(metric)
    return np.nan if value is None else float(value)


# --------------------------------------------------------------------------- images


def _as_displayable(image) -> tuple[np.ndarray, str | None]:
    """An image as uint8 for imshow, and the colormap it needs (gray for one channel)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0], "gray"
    return image, ("gray" if image.ndim == 2 else None)


def show_image(ax, image, title: str, color: str = "black") -> None:
    """Draw one image (uint8 or float 0..255, 1 or 3 channels) on ``ax`` with a title."""
    pixels, cmap = _as_displayable(image)
    ax.imshow(pixels, cmap=cmap, vmin=0, vmax=255)
    ax.set_title(title, fontsize=9, color=color)
    ax.set_xticks([])
    ax.set_yticks([])


def _pick_per_class(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` positions, taking classes in turn, chosen at random with ``seed``."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in np.unique(labels)]
    chosen = []
    for turn in range(max(len(p) for p in per_class)):
        chosen += [p[turn] for p in per_class if turn < len(p)]
    return np.array(chosen[:n], dtype=int)


def sample_grid(images, labels=None, *, class_names=None, predictions=None, n: int = 12,
                columns: int | None = None, seed: int = 42, title: str | None = None) -> Figure:
    """A grid of images titled with their class, classes taken in turn.

    ``images`` is an :class:`~brainlab.data.ImageSet` (labels and class names come with
    it) or an array of shape (N, H, W, C) with ``labels`` beside it. With
    ``predictions`` (of the same images, same order) each title reads true / predicted
    class with the probability, green when right and red when wrong.
    """
    split = getattr(images, "split", None)
    if hasattr(images, "images"):
        labels = images.labels if labels is None else labels
        class_names = class_names or images.class_names
        images = images.images
    images = np.asarray(images)
    if predictions is not None:
        labels = predictions.y_true if labels is None else labels
        class_names = class_names or predictions.class_names
        split = split or predictions.split
    if labels is None:
        raise ValueError("sample_grid needs the labels of the images (or an ImageSet)")
    labels = np.asarray(labels, dtype=int)
    n_classes = int(labels.max()) + 1
    class_names = evaluate.resolve_class_names(class_names, None if n_classes <= 4 else n_classes)
    chosen = _pick_per_class(labels, n, seed)

    columns = columns or (4 if predictions is not None else 6)  # two-line titles need room
    rows = int(np.ceil(len(chosen) / columns))
    title_height = 0.55 if predictions is not None else 0.3
    fig, axes = _figure(MAX_WIDTH, rows * (MAX_WIDTH / columns + title_height) + 0.4,
                        nrows=rows, ncols=columns)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, chosen):
        ax.set_axis_on()
        if predictions is None:
            show_image(ax, images[i], class_names[labels[i]])
        else:
            right = predictions.y_pred[i] == labels[i]
            text = (f"true: {class_names[labels[i]]}\n"
                    f"pred: {class_names[predictions.y_pred[i]]} ({predictions.confidence[i]:.2f})")
            show_image(ax, images[i], text, CORRECT_COLOR if right else WRONG_COLOR)
    what = "Predictions on sample images" if predictions is not None else "Sample images"
    fig.suptitle(title or (f"{what} ({split})" if split else what))
    return fig


def _images_of(predictions, positions, images):
    """The images at ``positions``: from ``images`` when given, else read from the files."""
    if images is not None:
        images = np.asarray(getattr(images, "images", images))
        return [images[i] for i in positions]
    from brainlab.images import read_image

    root = Path(predictions.root) if predictions.root else Path()
    missing = [p for p in (root / predictions.paths[i] for i in positions) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Cannot show the images: {missing[0]} is not there. Pass the "
                                "images (the ImageSet you predicted on) as images=...")
    return [read_image(root / predictions.paths[i], image_size=256) for i in positions]


def confident_mistakes(predictions, images=None, n: int = 8, columns: int = 4,
                       title: str | None = None) -> Figure:
    """The ``n`` wrong predictions the model was surest about, with true and predicted class.

    ``images`` is the ImageSet (or array) the predictions were made on; without it the
    images are read from their files. Confident mistakes are where to look for label
    errors, duplicates and shortcuts the model learned.
    """
    mistakes = evaluate.most_confident_mistakes(predictions, n)
    names = predictions.class_names
    if mistakes.empty:
        fig, axes = _figure(6, 2)
        axes[0, 0].set_axis_off()
        axes[0, 0].text(0.5, 0.5, "No mistakes on this split.", ha="center", va="center")
        fig.suptitle(title or f"Most confident mistakes ({predictions.split})")
        return fig
    positions = mistakes.index.to_numpy()
    pictures = _images_of(predictions, positions, images)
    rows = int(np.ceil(len(positions) / columns))
    fig, axes = _figure(MAX_WIDTH, rows * (MAX_WIDTH / columns + 0.8) + 0.4, nrows=rows, ncols=columns)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i, picture in zip(axes.flat, positions, pictures):
        ax.set_axis_on()
        show_image(ax, picture, f"true: {names[predictions.y_true[i]]}\n"
                           f"pred: {names[predictions.y_pred[i]]} ({predictions.confidence[i]:.2f})",
              WRONG_COLOR)
        ax.set_xlabel(Path(predictions.paths[i]).name, fontsize=8)
    fig.suptitle(title or f"The {len(positions)} most confident mistakes ({predictions.split})")
    return fig


def _counts_frame(sets, class_names) -> pd.DataFrame:
    """Long table (split, class, images) from ImageSets, label arrays or count dicts."""
    if hasattr(sets, "labels"):  # one ImageSet
        sets = [sets]
    if not isinstance(sets, Mapping):  # brainlab.data.Splits or a list of ImageSets
        sets = {s.split: s for s in sets}
    rows = []
    for split, value in sets.items():
        names = evaluate.resolve_class_names(class_names or getattr(value, "class_names", None))
        if isinstance(value, Mapping):  # {class name: count}, e.g. from catalogue.Scan.counts()
            counts = [int(value.get(name, 0)) for name in names]
        else:
            labels = np.asarray(getattr(value, "labels", value), dtype=int)
            counts = np.bincount(labels, minlength=len(names))[:len(names)]
        rows += [(split, name, int(count)) for name, count in zip(names, counts)]
    return pd.DataFrame(rows, columns=["split", "class", "images"])


def class_balance(sets, class_names=None, title: str = "Images per class") -> Figure:
    """Bars of the number of images of each class, one colour per split.

    ``sets``: an ImageSet, a list of them, ``brainlab.data.Splits``, or a mapping of
    split name to an ImageSet, an array of labels or a ``{class: count}`` dict.
    """
    counts = _counts_frame(sets, class_names)
    fig, axes = _figure(MAX_WIDTH if counts["split"].nunique() > 1 else 7, 4.2)
    ax = axes[0, 0]
    sns.barplot(data=counts, x="class", y="images", hue="split", ax=ax)
    for bars in ax.containers:
        ax.bar_label(bars, fontsize=8, padding=1)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_ylim(0, counts["images"].max() * 1.3 + 1)  # room for the legend
    totals = counts.groupby("split", sort=False)["images"].sum()
    ax.set_title(", ".join(f"{split}: {total} images" for split, total in totals.items()), fontsize=10)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- one prediction, explained


def overlay(image, heatmap, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """The heatmap coloured and blended over the image: uint8 RGB of the image's size."""
    from matplotlib import colormaps

    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    colours = colormaps[colormap](np.clip(heatmap, 0, 1))[..., :3] * 255.0
    return np.clip((1 - alpha) * image + alpha * colours, 0, 255).astype(np.uint8)


def explained_prediction(image, probabilities, heatmap, class_names=None, true_label=None,
                         explained=None, alpha: float = 0.4, title: str | None = None) -> Figure:
    """One image, its Grad-CAM overlay and the model's probability for every class.

    ``probabilities``: the model's output for this image (one value per class).
    ``heatmap``: a Grad-CAM map of the image's height and width (``brainlab.explain.grad_cam``)
    for the class ``explained`` (default: the predicted one). With ``true_label`` the true
    class's bar is outlined and the title says whether the prediction is right.
    """
    probabilities = np.asarray(probabilities, dtype=float).ravel()
    names = evaluate.resolve_class_names(class_names, len(probabilities))
    predicted = int(probabilities.argmax())
    explained = predicted if explained is None else int(explained)

    fig, axes = _figure(MAX_WIDTH, 3.6, ncols=3, width_ratios=[1, 1, 1.3])
    picture, heat, bars = axes[0]
    show_image(picture, image, "image")
    show_image(heat, overlay(np.asarray(image, dtype=np.float32), heatmap, alpha),
               f"Grad-CAM for {names[explained]}")
    colours = [CORRECT_COLOR if k == true_label else "tab:gray" for k in range(len(names))]
    if true_label is None:
        colours[predicted] = "tab:blue"
    rows = np.arange(len(names))
    drawn = bars.barh(rows, probabilities, color=colours)
    bars.bar_label(drawn, fmt="%.2f", fontsize=8, padding=2)
    bars.set_yticks(rows, names)
    bars.invert_yaxis()
    bars.set_xlim(0, 1.15)
    bars.set_xlabel("predicted probability")
    bars.set_ylabel("class")
    bars.set_title("green: the true class" if true_label is not None else "the model's answer", fontsize=9)
    if title is None:
        truth = "" if true_label is None else f"true: {names[int(true_label)]} | "
        verdict = "" if true_label is None else (" (right)" if int(true_label) == predicted else " (wrong)")
        title = f"{truth}predicted: {names[predicted]}, p = {probabilities[predicted]:.2f}{verdict}"
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- many runs


def run_spread(results, value: str = "test accuracy", by: str = "variant", reference: float | None = None,
               reference_label: str = "the paper", title: str | None = None) -> Figure:
    """Every run as a dot, and each group's mean with a bar of one standard deviation.

    ``results``: a DataFrame with one row per run (a variant trained with one seed, say),
    a ``by`` column naming the group and a ``value`` column. Groups are drawn top to bottom
    in the order they first appear. ``reference`` (e.g. ``paper.TEST_ACCURACY``) draws a
    dashed line. One run per group is one draw: its spread is unknown, and no bar is drawn.
    """
    frame = pd.DataFrame(results)
    for column in (by, value):
        if column not in frame:
            raise ValueError(f"results have no column {column!r}; its columns are {list(frame.columns)}")
    groups = list(dict.fromkeys(frame[by]))
    fig, axes = _figure(MAX_WIDTH, 1.2 + 0.45 * len(groups))
    ax = axes[0, 0]
    rng = np.random.default_rng(0)
    for row, group in enumerate(groups):
        values = frame.loc[frame[by] == group, value].to_numpy(dtype=float)
        ax.scatter(values, row + rng.uniform(-0.12, 0.12, len(values)), color="tab:gray", s=18, alpha=0.7,
                   zorder=2, label="one run" if row == 0 else None)
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.errorbar(values.mean(), row, xerr=spread if len(values) > 1 else None, fmt="o", color="tab:blue",
                    capsize=4, markersize=7, zorder=3, label="mean ± std over runs" if row == 0 else None)
    if reference is not None:
        ax.axvline(reference, color="tab:orange", linestyle="--", label=f"{reference_label} ({reference:.2f})")
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel(value)
    ax.set_ylabel(by)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    counts = frame.groupby(by, sort=False)[value].size()
    runs = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    plural = "s" if counts.max() > 1 else ""
    fig.suptitle(title or f"{value[:1].upper() + value[1:]}, {runs} run{plural} per {by}")
    return fig
