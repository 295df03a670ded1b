"""The audit of one dataset, within itself: every file read once, matched, grouped, summed up.

:func:`audit_dataset` chains the parts: :func:`~brainlab.audit.thumbnails.inventory` reads every
file, :mod:`~brainlab.audit.matching` finds exact and near copies, :mod:`~brainlab.audit.groups`
turns them into groups, leaks, label conflicts and a clean split, :mod:`~brainlab.audit.shortcuts`
measures the size cues. The result, :class:`AuditResult`, holds the tables and a summary; it
writes nothing (:func:`brainlab.audit.report.run_audit` does).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from brainlab import catalogue, config, data
from brainlab.audit.groups import CLEAN_SPLIT_FILE, clean_split, count_table, mark_files, pair_table
from brainlab.audit.matching import COARSE_THRESHOLD, NEAR_THRESHOLD, NEIGHBOURS, exact_duplicate_pairs, \
    near_duplicate_pairs, pair_frame
from brainlab.audit.shortcuts import FILE_FEATURES, SIZE_FEATURES, shortcut_accuracy, shortcut_table
from brainlab.audit.thumbnails import inventory
from brainlab.errors import BrainlabError
from brainlab.protocols import CLEAN, OFFICIAL, PARTS

__all__ = ["AuditResult", "audit_dataset"]


@dataclass
class AuditResult:
    """Everything the audit found, as tables. ``summary`` holds the headline numbers."""

    root: Path
    files: pd.DataFrame  # one row per image, with its group and flags (see mark_files)
    pairs: pd.DataFrame  # one row per duplicate pair: path_a, path_b, kind, score, splits, classes, flags
    checked: pd.DataFrame  # every pair that reached the alignment step, above and below the threshold
    counts: pd.DataFrame  # per split and class (see count_table)
    shortcuts: pd.DataFrame  # sizes per split and class (see shortcut_table)
    clean: pd.DataFrame  # the copy-free split: path, class, split
    summary: dict
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def groups(self) -> pd.DataFrame:
        """One row per group of two or more files: size, splits, classes and paths."""
        dup = self.files[self.files["group_size"] > 1]
        return (dup.groupby("group")
                .agg(size=("path", "size"), splits=("split", lambda s: ";".join(sorted(set(s)))),
                     classes=("class", lambda s: ";".join(sorted(set(s)))),
                     cross_split=("cross_split", "first"), label_conflict=("label_conflict", "first"),
                     paths=("path", ";".join))
                .reset_index())


def audit_dataset(root=None, seed: int = config.DEFAULT_SEED, pixel_hash: bool = False,
                  progress: bool = False) -> AuditResult:
    """Audit the dataset at ``root`` (default: as :func:`brainlab.data.find_data` decides); writes nothing.

    ``pixel_hash=True`` also hashes the decoded pixels of every file (a full decode: slower),
    to find copies whose bytes differ but whose pixels do not.
    """
    started = time.perf_counter()
    root = data.find_data(root)
    spec = catalogue.detect_spec(root, default=catalogue.BRAIN_TUMOR)  # which class folder names to read
    inv = inventory(root, pixel_hash=pixel_hash, progress=progress, spec=spec,
                    splits=catalogue.present_splits(root, spec) or None)
    if len(inv.files) < 2:
        raise BrainlabError(f"{root}: an audit needs at least 2 readable images; found {len(inv.files)}.")
    # Files with the same bytes are compared once, through their first file: this saves time and
    # keeps a much-copied image from filling its own list of candidates with its copies.
    same_bytes = inv.files.groupby("sha256").indices
    first = np.flatnonzero(~inv.files["sha256"].duplicated().to_numpy())
    checked = near_duplicate_pairs(inv.thumbs[first], inv.boxes[first], progress=progress)
    checked[["a", "b"]] = first[checked[["a", "b"]].to_numpy()].reshape(-1, 2)
    exact = exact_duplicate_pairs(inv.files)
    exact_keys = set(zip(exact["a"], exact["b"]))
    sha = inv.files["sha256"].to_numpy()
    near = [(min(x, y), max(x, y), "near", score)  # every copy of one file pairs with every copy of the other
            for a, b, score in checked.loc[checked["near"], ["a", "b", "score"]].itertuples(index=False)
            for x in same_bytes[sha[a]] for y in same_bytes[sha[b]]]
    near = pair_frame(pair for pair in near if pair[:2] not in exact_keys)
    pairs = pd.concat([exact, near], ignore_index=True)
    pairs = pairs.sort_values(["a", "b"], ignore_index=True)
    files = mark_files(inv.files, pairs)
    table = pair_table(files, pairs)
    checked_table = pair_table(files, checked.assign(kind=np.where(checked["near"], "near", "different")))
    checked_table.insert(3, "aligned", checked["aligned"].round(4).to_numpy())
    counts = count_table(files)
    shortcuts = shortcut_table(files)
    clean = clean_split(files, seed=seed)
    summary = _summary(root, files, table, counts, clean, seed)
    summary["unreadable"] = [{"path": p, "reason": r} for p, r in inv.unreadable]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return AuditResult(Path(root), files, table, checked_table, counts, shortcuts, clean, summary, inv.unreadable)


def _summary(root, files: pd.DataFrame, pairs: pd.DataFrame, counts: pd.DataFrame, clean: pd.DataFrame,
             seed: int) -> dict:
    per_split_class: dict = {}
    for row in counts.itertuples(index=False):
        per_split_class.setdefault(row.split, {})[row[1]] = {
            "images": int(row.images), "exact": int(row.exact), "near": int(row.near),
            "cross_split": int(row.cross_split), "label_conflicts": int(row.label_conflict)}
    totals = {k: int(counts[c].sum()) for k, c in (("images", "images"), ("exact", "exact"), ("near", "near"),
                                                    ("cross_split", "cross_split"),
                                                    ("label_conflicts", "label_conflict"))}
    pair_counts = {}
    for kind in ("exact", "same-pixels", "near"):
        of_kind = pairs[pairs["kind"] == kind]
        pair_counts[kind] = {"within_split": int((~of_kind["cross_split"]).sum()),
                             "cross_split": int(of_kind["cross_split"].sum()),
                             "label_conflict": int(of_kind["label_conflict"].sum())}
    grouped = files[files["group_size"] > 1].groupby("group")
    conflicts = [{"group": int(g), "files": [{"path": p, "class": c, "split": s}
                                             for p, c, s in zip(part["path"], part["class"], part["split"])]}
                 for g, part in grouped if part["class"].nunique() > 1]
    summary = {
        "dataset": str(root), "images": len(files),
        "per_split_class": per_split_class, "totals": totals, "pairs": pair_counts,
        "groups": {"with_copies": int(grouped.ngroups),
                   "cross_split": int(sum(part["split"].nunique() > 1 for _, part in grouped)),
                   "label_conflict": len(conflicts),
                   "largest": int(files["group_size"].max())},
        "redundant_copies": int(len(files) - files["group"].nunique()),
        "label_conflicts": conflicts,
        "method": {"near_threshold": NEAR_THRESHOLD, "score": "NCC of band-pass detail after alignment",
                   "coarse_threshold": COARSE_THRESHOLD, "neighbours": NEIGHBOURS},
    }
    training, testing = catalogue.SPLIT_FOLDERS
    if {training, testing} <= set(files["split"]):
        train, test = files[files["split"] == training], files[files["split"] == testing]
        summary["testing_with_copy_in_training"] = int(test["cross_split"].sum())
        summary["testing_with_exact_copy_in_training"] = int(test["sha256"].isin(set(train["sha256"])).sum())
        summary["shortcut"] = {
            "classifier": "DecisionTreeClassifier(max_depth=4, min_samples_leaf=5)",
            "size_only": {OFFICIAL: shortcut_accuracy(train, test, SIZE_FEATURES, seed)},
            "size_and_file_size": {OFFICIAL: shortcut_accuracy(train, test, FILE_FEATURES, seed)},
        }
        with_part = files.assign(part=clean["split"].to_numpy())  # clean lists the files in the same order
        clean_train, clean_test = with_part[with_part["part"] == "train"], with_part[with_part["part"] == "test"]
        for name, features in (("size_only", SIZE_FEATURES), ("size_and_file_size", FILE_FEATURES)):
            summary["shortcut"][name][CLEAN] = shortcut_accuracy(clean_train, clean_test, features, seed)
        summary["size_only_accuracy"] = summary["shortcut"]["size_only"][OFFICIAL]["accuracy"]
    part_groups = files.assign(part=clean["split"].to_numpy()).groupby("group")["part"].nunique()
    summary["clean_split"] = {
        "file": CLEAN_SPLIT_FILE, "seed": seed,
        "counts": {p: {c: int(n) for c, n in clean[clean["split"] == p]["class"].value_counts().sort_index().items()}
                   for p in PARTS},
        "groups_in_more_than_one_part": int((part_groups > 1).sum()),
    }
    return summary
