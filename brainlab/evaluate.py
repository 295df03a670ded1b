"""From a trained model to numbers: predictions, accuracy, the classification report,
the confusion matrix, ROC curves and AUC, and a side-by-side comparison with the paper.

The flow is always the same: run the model once with :func:`predict`, then ask the
:class:`Predictions` for whatever you need. Every metric is computed by scikit-learn, and
every result says which split it came from, by its result name (``"official-test"``,
``"clean-test"``, ``"official-val"`` ...: a protocol and a part, see :mod:`brainlab.protocols`),
because a number without its split cannot be trusted.

>>> preds = evaluate.predict(model, splits.test)      # an ImageSet from brainlab.data
>>> evaluate.accuracy(preds)
>>> print(evaluate.classification_text(preds))       # the paper's table layout
>>> evaluate.compare_with_paper(preds, model)         # metric | paper | ours
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from brainlab import paper, runs
from brainlab.catalogue import CLASS_NAMES

__all__ = ["AVERAGE_ROWS", "MISSING", "Predictions", "REPORT_COLUMNS", "accuracy", "as_probabilities",
           "classification_table", "classification_text", "compare_with_paper", "comparison_text",
           "confusion", "metrics_dict", "most_confident_mistakes", "predict", "resolve_class_names",
           "roc_auc", "roc_curves", "save_metrics"]

AVERAGE_ROWS = ("macro avg", "weighted avg")
REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")
MISSING = "n/a"


@dataclass
class Predictions:
    """What a model said about every image of one split, in the split's file order.

    ``probabilities`` has one row per image and one column per class (each row sums to 1);
    ``y_true`` holds the true labels, ``paths`` the image files, ``split`` the split's name
    (its result name, :class:`brainlab.protocols.ResultName` written out, or an evaluation's own name).
    """

    probabilities: np.ndarray  # float, (N, n_classes)
    y_true: np.ndarray  # int, (N,)
    paths: list[str]
    class_names: tuple[str, ...]
    split: str
    root: Path | None = None  # folder the (relative) paths live in, when known

    def __post_init__(self):
        self.probabilities = np.asarray(self.probabilities, dtype=np.float64)
        self.y_true = np.asarray(self.y_true).astype(int).reshape(-1)
        self.class_names = tuple(self.class_names)
        self.paths = [str(p) for p in self.paths]
        n, k = self.probabilities.shape
        if len(self.y_true) != n or len(self.paths) != n:
            raise ValueError(f"{n} probability rows, {len(self.y_true)} labels and {len(self.paths)} "
                             "paths: there must be one of each per image")
        if k != len(self.class_names):
            raise ValueError(f"the model gives {k} scores per image but there are "
                             f"{len(self.class_names)} class names {self.class_names}")

    @classmethod
    def from_labels(cls, y_true, y_pred, class_names=None, split: str = "unnamed", paths=None):
        """Predictions from plain labels (each prediction gets probability 1), for
        trying the metrics by hand: ``Predictions.from_labels([0, 1, 1], [0, 1, 0])``."""
        y_pred = np.asarray(y_pred, dtype=int)
        n_classes = int(max(np.max(y_true), np.max(y_pred))) + 1
        class_names = resolve_class_names(class_names, None if n_classes <= 4 else n_classes)
        probabilities = np.eye(len(class_names))[y_pred]
        paths = paths if paths is not None else [f"#{i}" for i in range(len(y_pred))]
        return cls(probabilities, y_true, paths, class_names, split)

    def __len__(self) -> int:
        return len(self.y_true)

    def __repr__(self) -> str:
        return (f"Predictions({self.split!r}, {len(self)} images, "
                f"accuracy {accuracy(self):.3f})")

    @property
    def y_pred(self) -> np.ndarray:
        """The predicted label of every image: the class with the highest probability."""
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave to the class it predicted."""
        return self.probabilities.max(axis=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per image: path, true and predicted class, confidence, correct, and
        the probability of every class."""
        names = np.array(self.class_names)
        frame = pd.DataFrame({
            "path": self.paths,
            "true": names[self.y_true],
            "predicted": names[self.y_pred],
            "confidence": self.confidence,
            "correct": self.y_true == self.y_pred,
        })
        for k, name in enumerate(self.class_names):
            frame[f"p({name})"] = self.probabilities[:, k]
        frame.attrs["split"] = self.split
        return frame


def resolve_class_names(class_names=None, n_classes: int | None = None) -> tuple[str, ...]:
    """``class_names`` as a tuple. Without them: brainlab's four classes when there are
    four (or the number is not known), else ``"class 0"``, ``"class 1"`` ..."""
    if class_names is not None:
        return tuple(class_names)
    if n_classes is None or n_classes == len(CLASS_NAMES):
        return CLASS_NAMES
    return tuple(f"class {k}" for k in range(n_classes))


# How far from 1 a row of softmax outputs may sum, by the dtype the model computed in. A
# softmax in float16 or bfloat16 (a model without a float32 output layer under mixed precision)
# rounds every value: over 20,000 rows of 2 to 100 classes its rows summed to 1 within 0.0015
# (float16) and 0.0033 (bfloat16), already beyond float32's 1e-3.
_SUM_TOLERANCE = {"float16": 5e-3, "bfloat16": 2e-2}
_DEFAULT_SUM_TOLERANCE = 1e-3


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as float64 probabilities. brainlab's models end in softmax; a model that
    gives raw scores (logits) instead gets a softmax here, so that rows sum to 1.

    Outputs in float16 or bfloat16 (under a mixed-precision policy) are recognised as
    probabilities too, and their rows rescaled to sum to exactly 1.
    """
    outputs = np.asarray(outputs)
    tolerance = _SUM_TOLERANCE.get(outputs.dtype.name, _DEFAULT_SUM_TOLERANCE)
    low_precision = outputs.dtype.name in _SUM_TOLERANCE
    outputs = outputs.astype(np.float64)
    if outputs.ndim != 2:
        raise ValueError(f"expected model outputs of shape (images, classes), got {outputs.shape}")
    sums = outputs.sum(axis=1, keepdims=True)
    if outputs.min() >= 0 and np.allclose(sums, 1.0, atol=tolerance):
        return outputs / sums if low_precision else outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _batches(data, labels, batch_size: int):
    """(images, labels) batches, in order, from an ImageSet, a tf.data.Dataset or arrays."""
    if hasattr(data, "dataset") and hasattr(data, "labels"):  # a brainlab.data.ImageSet
        yield from data.dataset(batch_size=batch_size, shuffle=False)
    elif labels is None:  # a tf.data.Dataset (or any iterable) of (images, labels) batches
        for batch in data:
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
                raise TypeError("a dataset given to predict() must yield (images, labels) batches")
            yield batch[0], batch[1]
    else:  # plain arrays
        images, labels = np.asarray(data), np.asarray(labels)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        for start in range(0, len(images), batch_size):
            yield (images[start:start + batch_size].astype(np.float32),
                   labels[start:start + batch_size])


def predict(model, data, labels=None, *, split: str | None = None, class_names=None, paths=None,
            batch_size: int = 32) -> Predictions:
    """Run ``model`` on every image of ``data`` once, in order, and keep everything.

    ``data`` is a :class:`brainlab.data.ImageSet` (split name, paths and class names come
    with it), a ``tf.data.Dataset`` of ``(images, labels)`` batches, or an array of images
    with ``labels`` beside it. Images are float 0..255 as everywhere in brainlab: the model
    does its own preprocessing. ``split`` names where the images came from (it overrides
    the ImageSet's name).

    Images and labels are read from the same batch, so the pairing stays right even
    for a shuffled dataset; for a reproducible order pass an unshuffled one.
    """
    probabilities, true_labels = [], []
    for images, batch_labels in _batches(data, labels, batch_size):
        probabilities.append(np.asarray(model.predict_on_batch(images)))
        true_labels.append(np.asarray(batch_labels).reshape(-1))
    if not probabilities:
        raise ValueError(f"no images to predict on in {split or getattr(data, 'split', 'the data')!r}")
    probabilities = as_probabilities(np.concatenate(probabilities))
    y_true = np.concatenate(true_labels).astype(int)

    split = split or getattr(data, "split", None) or "unnamed"
    if paths is None:
        paths = getattr(data, "paths", None) or [f"#{i}" for i in range(len(y_true))]
    class_names = resolve_class_names(class_names or getattr(data, "class_names", None), probabilities.shape[1])
    return Predictions(probabilities, y_true, list(paths), class_names, split, getattr(data, "root", None))


# --------------------------------------------------------------------------- metrics


def accuracy(predictions: Predictions) -> float:
    """Share of images whose predicted class is the true class."""
    return float(skm.accuracy_score(predictions.y_true, predictions.y_pred))


def _report_dict(predictions: Predictions) -> dict:
    return skm.classification_report(
        predictions.y_true, predictions.y_pred, labels=list(range(len(predictions.class_names))),
        target_names=list(predictions.class_names), output_dict=True, zero_division=0)


def classification_table(predictions: Predictions) -> pd.DataFrame:
    """The classification report in the paper's layout, as a DataFrame.

    One row per class, then ``accuracy``, ``macro avg`` and ``weighted avg``; columns
    precision, recall, f1-score, support. As in scikit-learn's text report, the accuracy
    row has its value in the f1-score column and the number of images as support.
    The split's name is in ``table.attrs["split"]``.
    """
    report = _report_dict(predictions)
    acc = report.pop("accuracy", accuracy(predictions))
    table = pd.DataFrame(report).T[list(REPORT_COLUMNS)]
    accuracy_row = pd.DataFrame({"precision": [np.nan], "recall": [np.nan], "f1-score": [acc],
                                 "support": [len(predictions)]}, index=["accuracy"])
    names = list(predictions.class_names)
    table = pd.concat([table.loc[names], accuracy_row, table.loc[list(AVERAGE_ROWS)]])
    table["support"] = table["support"].astype(int)
    table.attrs["split"] = predictions.split
    return table


def classification_text(predictions: Predictions, digits: int = 2) -> str:
    """scikit-learn's text classification report, headed by the split's name."""
    text = skm.classification_report(
        predictions.y_true, predictions.y_pred, labels=list(range(len(predictions.class_names))),
        target_names=list(predictions.class_names), digits=digits, zero_division=0)
    return f"split: {predictions.split} ({len(predictions)} images)\n\n{text}"


def confusion(predictions: Predictions, normalize: bool = False) -> pd.DataFrame:
    """The confusion matrix: rows are true classes, columns predicted classes.

    With ``normalize=True`` each row is divided by its total, so the diagonal holds
    each class's recall (rows of a class with no images stay 0).
    """
    labels = list(range(len(predictions.class_names)))
    matrix = skm.confusion_matrix(predictions.y_true, predictions.y_pred, labels=labels)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    frame = pd.DataFrame(matrix, index=pd.Index(predictions.class_names, name="true class"),
                         columns=pd.Index(predictions.class_names, name="predicted class"))
    frame.attrs["split"] = predictions.split
    return frame


def roc_curves(predictions: Predictions) -> dict[str, pd.DataFrame]:
    """One-vs-rest ROC curve per class: ``{class name: DataFrame(fpr, tpr, threshold)}``.

    For each class, the question "is it this class?" is scored by that class's
    probability; a class with no images (or only images) in the split has no curve.
    """
    curves = {}
    for k, name in enumerate(predictions.class_names):
        is_class = predictions.y_true == k
        if is_class.all() or not is_class.any():
            continue
        fpr, tpr, thresholds = skm.roc_curve(is_class, predictions.probabilities[:, k])
        curves[name] = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds})
    return curves


def roc_auc(predictions: Predictions) -> pd.Series:
    """Area under each one-vs-rest ROC curve, and their mean as ``"macro avg"``.

    A class without a curve (absent from the split) gets NaN and is left out of the mean.
    With every class present the macro value equals scikit-learn's
    ``roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro")``.
    """
    values = {}
    for k, name in enumerate(predictions.class_names):
        is_class = predictions.y_true == k
        if is_class.all() or not is_class.any():
            values[name] = np.nan
        else:
            values[name] = skm.roc_auc_score(is_class, predictions.probabilities[:, k])
    per_class = pd.Series(values, dtype=float)
    auc = pd.concat([per_class, pd.Series({"macro avg": per_class.mean(skipna=True)})])
    auc.name = "AUC"
    auc.attrs["split"] = predictions.split
    return auc


def most_confident_mistakes(predictions: Predictions, n: int = 8) -> pd.DataFrame:
    """The ``n`` wrong predictions the model was surest about (see :meth:`Predictions.to_frame`).

    The index is each image's position in the split. Ties keep the split's order.
    """
    frame = predictions.to_frame()
    wrong = frame[~frame["correct"]]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(n)


# --------------------------------------------------------------------------- the paper and JSON


def compare_with_paper(predictions: Predictions, model=None, missing=MISSING) -> pd.DataFrame:
    """Our numbers beside the paper's: a DataFrame with columns metric, paper, ours.

    Rows: accuracy, then precision/recall/f1-score/support for every class and the two
    averages, then (when ``model`` is given) its parameter counts. A value the paper
    does not report, or that is not recorded in :mod:`brainlab.paper`, shows as
    ``missing`` ("n/a"; pass ``missing=float("nan")`` to compute with the columns).
    The paper's numbers are for the official test split: compare like with like
    (``table.attrs["split"]`` says which split ours came from).
    """
    table = classification_table(predictions)
    rows = [("accuracy", paper.TEST_ACCURACY, accuracy(predictions))]
    for row in [*predictions.class_names, *AVERAGE_ROWS]:
        for metric in REPORT_COLUMNS:
            ours = table.loc[row, metric]
            ours = int(ours) if metric == "support" else float(ours)
            rows.append((f"{row} {metric}", _paper_value(row, metric), ours))
    if model is not None:
        from brainlab.models import parameter_counts

        for kind, value in parameter_counts(model).items():
            rows.append((f"{kind.replace('_', '-')} parameters", paper.PARAMS[kind], value))
    rows = [(name, *(missing if _is_missing(v) else v for v in values)) for name, *values in rows]
    comparison = pd.DataFrame(rows, columns=["metric", "paper", "ours"], dtype=object)
    comparison.attrs["split"] = predictions.split
    return comparison


def comparison_text(comparison: pd.DataFrame, digits: int = 3) -> str:
    """A comparison table as aligned text, missing values as "n/a"."""
    def show(value):
        if _is_missing(value) or value == MISSING:
            return MISSING
        return f"{value:,}" if isinstance(value, (int, np.integer)) else f"{value:.{digits}f}"

    # Format first: some pandas versions (3.0) ignore ``formatters`` for object columns.
    shown = comparison.assign(paper=comparison["paper"].map(show), ours=comparison["ours"].map(show))
    body = shown.to_string(index=False)
    return f"ours: {comparison.attrs.get('split', 'unnamed')}; paper: official test split\n{body}"


def _paper_value(row: str, metric: str):
    """The paper's number, or None for a class the paper does not have."""
    try:
        return paper.reported(row, metric)
    except KeyError:
        return None


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """numpy numbers to Python numbers, NaN to None: what JSON can hold."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if _is_missing(value) else value


def metrics_dict(predictions: Predictions, **extra) -> dict:
    """Everything worth keeping about an evaluation, as a JSON-ready dict.

    Keys: split, n_images, class_names, accuracy, per_class (precision, recall,
    f1-score, support and auc for each class), macro avg, weighted avg, macro_auc,
    confusion_matrix (rows true, columns predicted) and any ``extra`` you pass
    (model name, seed, epochs ...). Values that are undefined are ``None``.
    """
    table = classification_table(predictions)
    auc = roc_auc(predictions)
    per_class = {}
    for name in predictions.class_names:
        entry = {m: _plain(table.loc[name, m]) for m in REPORT_COLUMNS}
        entry["support"] = int(entry["support"])
        entry["auc"] = _plain(auc[name])
        per_class[name] = entry
    result = {
        "split": predictions.split,
        "n_images": len(predictions),
        "class_names": list(predictions.class_names),
        "accuracy": accuracy(predictions),
        "per_class": per_class,
        **{row: {m: _plain(table.loc[row, m]) for m in REPORT_COLUMNS} for row in AVERAGE_ROWS},
        "macro_auc": _plain(auc["macro avg"]),
        "confusion_matrix": confusion(predictions).to_numpy().tolist(),
    }
    result.update({key: _plain(value) for key, value in extra.items()})
    return result


def save_metrics(predictions: Predictions, path, **extra) -> Path:
    """Write :func:`metrics_dict` to a JSON file, whole or not at all, and return its path.

    An evaluation's folder keeps it as ``evaluation.json``: pass ``brainlab.runs.RunFolder(out).evaluation_path``,
    and ``RunFolder(out).evaluation()`` reads it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return runs.write_json(path, metrics_dict(predictions, **extra))
