"""Shortcut cues: what the files give away about their label without anyone looking at the brain.

Image size, aspect ratio and file size per split and class (:func:`shortcut_table`), and how well
these alone predict the label (:func:`shortcut_accuracy`: a small decision tree trained on one
split, scored on another). A model can learn these cues instead of anatomy.
"""
from __future__ import annotations

import pandas as pd

from brainlab import config

__all__ = ["FILE_FEATURES", "SIZE_FEATURES", "shortcut_accuracy", "shortcut_table"]

SIZE_FEATURES = ("width", "height", "aspect")
FILE_FEATURES = SIZE_FEATURES + ("file_kb",)


def shortcut_table(files: pd.DataFrame) -> pd.DataFrame:
    """Image size, aspect ratio and file size per split and class.

    ``top_size`` is the most common size of that split and class, ``top_size_share`` the share
    of its images that have it. When these differ between classes, a model can tell the
    classes apart without looking at the brain.
    """
    rows = []
    for (split, class_name), part in files.groupby(["split", "class"], sort=False):
        sizes = part["width"].astype(str) + "x" + part["height"].astype(str)
        top = sizes.value_counts()
        rows.append(dict(split=split, **{"class": class_name}, images=len(part), distinct_sizes=len(top),
                         top_size=top.index[0], top_size_share=round(top.iloc[0] / len(part), 3),
                         median_width=part["width"].median(), median_height=part["height"].median(),
                         median_aspect=round(part["aspect"].median(), 3),
                         median_file_kb=round(part["file_kb"].median(), 1)))
    return pd.DataFrame(rows)


def shortcut_accuracy(train: pd.DataFrame, test: pd.DataFrame, features=SIZE_FEATURES,
                      seed: int = config.DEFAULT_SEED) -> dict:
    """How well a small decision tree predicts the class from ``features`` alone.

    Trained on ``train``, scored on ``test``. ``majority`` is the accuracy of always answering
    ``train``'s most common class: the tree beats it only by reading a cue of the files.
    """
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=5, random_state=seed)
    tree.fit(train[list(features)], train["class"])
    majority = train["class"].value_counts().index[0]
    return {"accuracy": round(float(tree.score(test[list(features)], test["class"])), 4),
            "majority": round(float((test["class"] == majority).mean()), 4),
            "train_images": len(train), "test_images": len(test)}
