"""From pairs of copies to groups: duplicate groups, cross-split leaks, label conflicts, a clean split.

Every pair of copies links two files; the connected components of these links are the duplicate
groups (:func:`duplicate_groups`). A group whose members sit in different splits is a leak, one
whose members carry different labels a label conflict (:func:`mark_files`). :func:`clean_split`
deals whole groups out to train, validation and test, so that no copy can leak, and
:func:`write_manifest` saves that split for ``brainlab.data.load_splits(manifest=...)``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from brainlab import catalogue, config
from brainlab.errors import BrainlabError
from brainlab.protocols import CLEAN, PARTS

__all__ = ["CLEAN_SPLIT_FILE", "clean_split", "count_table", "duplicate_groups", "mark_files", "pair_table",
           "write_manifest"]

#: The file name the copy-free split is written under (:func:`write_manifest`), in an audit's folder; its name
#: tells :func:`brainlab.protocols.manifest_protocol` that the split is the clean one.
CLEAN_SPLIT_FILE = f"{CLEAN}_split.csv"



# ----------------------------------------------------------------------------- groups, leaks, conflicts


def duplicate_groups(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """Group number of each of ``n`` files: the connected components of the duplicate pairs.

    If A is a copy of B and B of C, all three form one group, even when A and C were never
    compared (what a union-find structure computes; SciPy does it on a sparse graph). Groups
    are numbered from 0 in the order of their first file; a file without copies is a group
    of its own.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = pairs["a"].to_numpy(int), pairs["b"].to_numpy(int)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # renumber groups by their first file
    renumber = np.empty(len(first), int)
    renumber[np.argsort(first)] = np.arange(len(first))
    return renumber[labels]


def pair_table(files: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (indices ``a, b``) with each file's path, split and class, and two flags.

    ``cross_split``: the two files sit in different splits (a test image seen in training);
    ``label_conflict``: they carry different labels.
    """
    out = pd.DataFrame({
        "path_a": files["path"].to_numpy()[pairs["a"]], "path_b": files["path"].to_numpy()[pairs["b"]],
        "kind": pairs["kind"].to_numpy(), "score": pairs["score"].to_numpy().round(4),
        "split_a": files["split"].to_numpy()[pairs["a"]], "class_a": files["class"].to_numpy()[pairs["a"]],
        "split_b": files["split"].to_numpy()[pairs["b"]], "class_b": files["class"].to_numpy()[pairs["b"]],
    })
    out["cross_split"] = out["split_a"] != out["split_b"]
    out["label_conflict"] = out["class_a"] != out["class_b"]
    return out


def mark_files(files: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Add each file's duplicate group and what it takes part in.

    Columns added: ``group``, ``group_size``, ``exact`` (has a byte-identical copy), ``near``
    (has a near-duplicate that is not byte-identical), ``cross_split`` (its group reaches into
    another split) and ``label_conflict`` (its group holds another class).
    """
    files = files.copy()
    files["group"] = duplicate_groups(len(files), pairs)
    per_group = files.groupby("group")
    files["group_size"] = per_group["path"].transform("size")
    files["cross_split"] = per_group["split"].transform("nunique") > 1
    files["label_conflict"] = per_group["class"].transform("nunique") > 1
    for column, kinds in (("exact", ["exact"]), ("near", ["near", "same-pixels"])):
        members = np.unique(pairs.loc[pairs["kind"].isin(kinds), ["a", "b"]].to_numpy().ravel())
        files[column] = False
        files.loc[members, column] = True
    return files


def count_table(files: pd.DataFrame) -> pd.DataFrame:
    """Per split and class: images, and how many take part in exact copies, near copies, leaks, conflicts."""
    order = [s for s in catalogue.SPLIT_FOLDERS if s in set(files["split"])]
    table = (files.groupby(["split", "class"])
             .agg(images=("path", "size"), exact=("exact", "sum"), near=("near", "sum"),
                  cross_split=("cross_split", "sum"), label_conflict=("label_conflict", "sum"))
             .reset_index())
    table["split"] = pd.Categorical(table["split"], order, ordered=True)
    table["class"] = pd.Categorical(table["class"], catalogue.CLASS_NAMES, ordered=True)
    return table.sort_values(["split", "class"], ignore_index=True).astype({"split": str, "class": str})


# ----------------------------------------------------------------------------- a copy-free split


def clean_split(files: pd.DataFrame, seed: int = config.DEFAULT_SEED, val_fraction: float = 0.15,
                test_fraction: float = 0.15) -> pd.DataFrame:
    """Train / val / test parts in which no duplicate group straddles two parts.

    ``files`` needs ``path``, ``class`` and ``group`` (see :func:`mark_files`). Whole groups are
    dealt out by scikit-learn's ``StratifiedGroupKFold``, which keeps each part's class mix
    close to the whole's: one fold of about ``test_fraction`` becomes the test part, then one
    fold of the rest the validation part. Every file is kept, copies included: they cannot leak
    because they always land in the same part. Returns columns ``path, class, split``, the
    manifest that ``brainlab.data.load_splits(manifest=...)`` reads.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups, labels = files["group"].to_numpy(), files["class"].to_numpy()
    if len(np.unique(groups)) < 3:
        raise BrainlabError(f"A clean split needs at least 3 distinct images; found {len(np.unique(groups))}.")

    def one_fold(index, fraction, seed):
        # about 1/fraction folds, but no more than there are groups, nor than the largest class has images
        n_groups = len(np.unique(groups[index]))
        if n_groups < 2:
            raise BrainlabError(f"Too few distinct images for a clean split into train, val and test: {n_groups} "
                                "left for two parts. Add images.")
        strata = labels[index]
        if np.unique(strata, return_counts=True)[1].max() < 2:  # one image per class: nothing to stratify
            strata = np.zeros(len(index), int)
        largest = np.unique(strata, return_counts=True)[1].max()
        n_splits = int(np.clip(round(1 / fraction), 2, min(largest, n_groups)))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(folds.split(index, strata, groups[index]))
        return index[rest], index[held]

    with warnings.catch_warnings():  # tiny datasets: "the least populated class has only N members"
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        rest, test = one_fold(np.arange(len(files)), test_fraction, seed)
        train, val = one_fold(rest, val_fraction / (1 - test_fraction), seed + 1)
    part = np.empty(len(files), dtype=object)
    for rows, name in zip((train, val, test), PARTS):  # PARTS: train, val, test
        part[rows] = name
    return pd.DataFrame({"path": files["path"], "class": files["class"], "split": part})


def write_manifest(split: pd.DataFrame, path) -> Path:
    """Write a split as ``path,class,split`` CSV, the format ``brainlab.data.read_manifest`` checks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    split[["path", "class", "split"]].to_csv(path, index=False)
    return path
