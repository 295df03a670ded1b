"""What the paper reports, as data, so that our numbers can be set beside it.

The paper: S. K. Agarwal and Y. K. Gupta, "Automated Brain Tumor Classification from MRI
using a pretrained ResNet50 architecture", International Journal of Environmental Sciences
(theaspd.com), DOI 10.64252/ygxffc75. Every constant below names the section or figure of
the paper it was read from. What the paper does not state (epochs, batch size, optimizer
settings, learning rate, dropout rates, augmentation parameters, pixel preprocessing, the
validation split) is not here: where brainlab needs such a value it is brainlab's choice,
listed in :data:`NOT_STATED`.

>>> from brainlab import paper
>>> paper.TEST_ACCURACY                  # section IV.C, figure 10 (two decimals)
0.51
>>> paper.per_class_table()              # precision, recall, f1-score, support per class
"""
from __future__ import annotations

from brainlab.catalogue import CLASS_NAMES

TITLE = "Automated Brain Tumor Classification from MRI using a pretrained ResNet50 architecture"
AUTHORS = ("S. K. Agarwal", "Y. K. Gupta")
DOI = "10.64252/ygxffc75"
URL = "https://doi.org/10.64252/ygxffc75"

#: Accuracy on the official ``Testing`` split as the classification report gives it
#: (section IV.C, figure 10: "accuracy 0.51" on 394 images).
TEST_ACCURACY = 0.51
#: The same accuracy with two more digits, as section IV.A states it (50.76%).
TEST_ACCURACY_PRECISE = 0.5076
#: Accuracy on the training data, section IV.A (64.11%).
TRAIN_ACCURACY = 0.6411
#: Where it ran, section IV.A: Google Colab's default GPU session, TensorFlow and Keras.
HARDWARE = "Google Colab, default GPU session"
FRAMEWORK = "TensorFlow / Keras"

#: Images reach the network at 128 x 128 pixels with 3 channels (section III.D).
IMAGE_SIZE = 128
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)

# CLASS_NAMES (imported above from brainlab.catalogue, the one definition) are the dataset's folder
# names in label order 0..3; the paper's report numbers the classes 0-3 in this order: glioma,
# meningioma, no tumour, pituitary.

#: Parameter counts from the paper's model summary (figure 6).
TOTAL_PARAMS = 27_782_660
TRAINABLE_PARAMS = 5_249_668
NON_TRAINABLE_PARAMS = 22_532_992
PARAMS = {"total": TOTAL_PARAMS, "trainable": TRAINABLE_PARAMS, "non_trainable": NON_TRAINABLE_PARAMS}
#: The same summary's shapes (figure 6): ResNet50's last feature map at 128 px, and Flatten's output.
FEATURE_MAP_SHAPE = (4, 4, 2048)
FLATTEN_OUTPUTS = 32_768

#: Test images per class in the paper's classification report (figure 10). They add up to
#: 394 and match the official ``Testing`` folder of the dataset.
TEST_SUPPORT = {"glioma_tumor": 100, "meningioma_tumor": 115, "no_tumor": 105, "pituitary_tumor": 74}

METRICS = ("precision", "recall", "f1-score")

#: The paper's per-class classification report, section IV.C, figure 10 (figure 11 plots it),
#: as printed there: two decimals.
PER_CLASS = {
    "glioma_tumor": {"precision": 0.43, "recall": 0.19, "f1-score": 0.26, "support": 100},
    "meningioma_tumor": {"precision": 0.60, "recall": 0.52, "f1-score": 0.56, "support": 115},
    "no_tumor": {"precision": 0.50, "recall": 0.76, "f1-score": 0.61, "support": 105},
    "pituitary_tumor": {"precision": 0.44, "recall": 0.54, "f1-score": 0.48, "support": 74},
}

#: The two averaging rows of the same report (figure 10), as printed. They are the paper's
#: own numbers, not recomputed from the rounded per-class values.
AVERAGES = {
    "macro avg": {"precision": 0.49, "recall": 0.50, "f1-score": 0.48, "support": 394},
    "weighted avg": {"precision": 0.50, "recall": 0.51, "f1-score": 0.48, "support": 394},
}

#: Settings the paper does not state (section III.D names augmentation, the input size and the
#: split sizes, nothing more), each with the choice brainlab's ``paper`` recipe makes for it.
NOT_STATED = {
    "epochs": "20",
    "batch size": "32",
    "optimizer settings": "Adam with Keras's defaults",
    "learning rate": "1e-3 (Keras's default for Adam), constant",
    "dropout rates": "0.5 for both Dropout layers",
    "augmentation parameters": ("horizontal flips, rotations up to 0.05 of a turn (18 degrees), zooms and "
                                "contrast changes up to 10% (brainlab.models.augment)"),
    "pixel preprocessing": ("pixels / 255 ('rescale', as many reproductions do); the ImageNet weights expect "
                            "ImageNet's own preprocessing ('imagenet'), which notebook 07 compares"),
    "validation split": "15% of Training, drawn within each class with seed 42",
}


__all__ = ["AUTHORS", "AVERAGES", "CLASS_NAMES", "DOI", "FEATURE_MAP_SHAPE", "FLATTEN_OUTPUTS", "FRAMEWORK",
           "HARDWARE", "IMAGE_SIZE", "INPUT_SHAPE", "METRICS", "NON_TRAINABLE_PARAMS", "NOT_STATED", "PARAMS",
           "PER_CLASS", "TEST_ACCURACY", "TEST_ACCURACY_PRECISE", "TEST_SUPPORT", "TITLE", "TOTAL_PARAMS",
           "TRAINABLE_PARAMS", "TRAIN_ACCURACY", "URL", "per_class_table", "reported"]


def per_class_table():
    """The paper's per-class report as a DataFrame (figure 10).

    One row per class; columns precision, recall, f1-score, support.
    """
    import pandas as pd

    table = pd.DataFrame.from_dict(PER_CLASS, orient="index", columns=[*METRICS, "support"])
    table[list(METRICS)] = table[list(METRICS)].astype(float)
    table.index.name = "class"
    return table


def reported(row: str, metric: str):
    """One number from the paper's classification report (section IV.C, figure 10).

    ``row`` is a class name, ``"accuracy"``, ``"macro avg"`` or ``"weighted avg"``;
    ``metric`` is ``"precision"``, ``"recall"``, ``"f1-score"`` or ``"support"``.
    """
    total = sum(TEST_SUPPORT.values())
    if row == "accuracy":
        return {"f1-score": TEST_ACCURACY, "support": total}.get(metric)
    if row in AVERAGES:
        return AVERAGES[row][metric]
    if row not in PER_CLASS:
        raise KeyError(f"{row!r} is not a class of the paper: choose from {', '.join(CLASS_NAMES)}")
    return PER_CLASS[row][metric]
