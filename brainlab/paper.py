"""What the paper reports, as data, so that our numbers can be set beside it.

The paper: "Automated Brain Tumor Classification from MRI using a pretrained ResNet50
architecture", International Journal of Environmental Sciences (theaspd.com), DOI
10.64252/ygxffc75. Its abstract states the headline result: a fine-tuned ResNet50,
3264 MR images split into training and testing data, 51% accuracy on the test data.

Everything here is a plain constant. A value the paper reports but that is not recorded
here is ``None``, never a guess: comparison functions show it as "n/a".

>>> from brainlab import paper
>>> paper.TEST_ACCURACY
0.51
>>> paper.per_class_table()          # precision, recall, f1-score, support per class
"""
from __future__ import annotations

TITLE = "Automated Brain Tumor Classification from MRI using a pretrained ResNet50 architecture"
DOI = "10.64252/ygxffc75"
URL = "https://doi.org/10.64252/ygxffc75"

#: Accuracy on the official ``Testing`` split, as the abstract states it (51%).
TEST_ACCURACY = 0.51

#: Images reach the network at 128 x 128 pixels with 3 channels.
IMAGE_SIZE = 128
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)

#: Class names in label order 0..3 (the dataset's folder names).
CLASS_NAMES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")

#: Parameter counts from the paper's model summary.
TOTAL_PARAMS = 27_782_660
TRAINABLE_PARAMS = 5_249_668
NON_TRAINABLE_PARAMS = 22_532_992
PARAMS = {"total": TOTAL_PARAMS, "trainable": TRAINABLE_PARAMS, "non_trainable": NON_TRAINABLE_PARAMS}

#: Test images per class in the paper's classification report. They add up to 394 and
#: match the official ``Testing`` folder of the dataset.
TEST_SUPPORT = {"glioma_tumor": 100, "meningioma_tumor": 115, "no_tumor": 105, "pituitary_tumor": 74}

METRICS = ("precision", "recall", "f1-score")

#: The paper's per-class classification report (its figures 10-11 plot it).
#: The per-class precision, recall and f1-score values are NOT recorded here: no copy of
#: the paper's full text could be found to read them from, and a number we cannot check
#: is worse than no number. They stay ``None`` (shown as "n/a") until someone reads them
#: from the paper itself and fills them in.
PER_CLASS = {
    name: {"precision": None, "recall": None, "f1-score": None, "support": support}
    for name, support in TEST_SUPPORT.items()
}


def per_class_table():
    """The paper's per-class report as a DataFrame: one row per class, columns
    precision, recall, f1-score, support. Values not recorded here are missing (NaN)."""
    import pandas as pd

    table = pd.DataFrame.from_dict(PER_CLASS, orient="index", columns=[*METRICS, "support"])
    table[list(METRICS)] = table[list(METRICS)].astype(float)
    table.index.name = "class"
    return table


def reported(row: str, metric: str):
    """One number from the paper's classification report, or ``None`` when not recorded.

    ``row`` is a class name, ``"accuracy"``, ``"macro avg"`` or ``"weighted avg"``;
    ``metric`` is ``"precision"``, ``"recall"``, ``"f1-score"`` or ``"support"``.
    """
    total = sum(TEST_SUPPORT.values())
    if row == "accuracy":
        return {"f1-score": TEST_ACCURACY, "support": total}.get(metric)
    if row in ("macro avg", "weighted avg"):
        # The averages follow from the per-class values (once all of them are recorded);
        # the support is the test total.
        if metric == "support":
            return total
        values = [PER_CLASS[name][metric] for name in CLASS_NAMES]
        if any(value is None for value in values):
            return None
        weights = [1] * len(values) if row == "macro avg" else [TEST_SUPPORT[n] for n in CLASS_NAMES]
        return sum(w * v for w, v in zip(weights, values)) / sum(weights)
    if row not in PER_CLASS:
        raise KeyError(f"{row!r} is not a class of the paper: choose from {', '.join(CLASS_NAMES)}")
    return PER_CLASS[row][metric]
