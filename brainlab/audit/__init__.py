"""Is the test set really unseen? Duplicates, leakage, label conflicts and shortcuts in a dataset.

A test accuracy means nothing when test images are copies of training images, and published
results on this dataset run from about 51% to 99%: much of that spread is the evaluation, not
the model. This package looks at the files themselves, before any model:

1. **Exact duplicates**: files with the same bytes (SHA-256), and optionally files whose bytes
   differ but whose decoded pixels are the same.
2. **Near-duplicates**: the same scan re-encoded, resized, lightly cropped or with its
   brightness or contrast changed (how: :mod:`brainlab.audit.matching`).
3. **Groups**: every pair found links two files; the connected components of these links
   (union-find) are the duplicate groups. A group whose members sit in different splits is a
   leak; a group whose members carry different labels is a **label conflict**.
4. **Shortcut cues**: image size, aspect ratio and file size per class and split, and how well
   these alone predict the label (a small decision tree trained on ``Training``, scored on
   ``Testing``). A model can learn these cues instead of anatomy.
5. **A copy-free split**: train / validation / test, stratified by class, seeded, in which no
   duplicate group straddles two parts (see :func:`~brainlab.audit.groups.clean_split`). It keeps
   copies of one image together, not one patient's neighbouring slices, which the dataset does
   not identify.

``run_audit(root, out_dir)`` does all of it and writes tables (CSV), ``summary.json``,
``summary.md``, figures (PNG) and ``clean_split.csv``, which
``brainlab.data.load_splits(manifest=...)`` reads. In a notebook, :func:`audit_dataset` returns
the same results as pandas DataFrames without writing anything.

Where each part lives:

- :mod:`~brainlab.audit.thumbnails`: every file read once, to a small thumbnail, and the views
  (crops, detail, NCC vectors) compared;
- :mod:`~brainlab.audit.matching`: exact and near copies, within one set of thumbnails or of one
  set against another (:func:`~brainlab.audit.matching.match_sets`);
- :mod:`~brainlab.audit.groups`: duplicate groups, cross-split leaks, label conflicts, the clean split;
- :mod:`~brainlab.audit.shortcuts`: what sizes and file sizes give away;
- :mod:`~brainlab.audit.within`: the audit of one dataset, end to end (:func:`audit_dataset`);
- :mod:`~brainlab.audit.report`: figures, the Markdown summary, and :func:`run_audit`, which writes it all;
- :mod:`~brainlab.audit.across`: one dataset against another (:func:`audit_across`,
  :func:`run_audit_across`): which images of B copy images of A, and B's images without a copy
  (an external test set, ``external_manifest.csv``).

The package offers the entry points above; the steps and their tuning constants (thresholds,
thumbnail sizes) stay in the part that uses them, and the head's box (``content_box``,
``otsu_threshold``) in :mod:`brainlab.images`, which owns it.
"""
from __future__ import annotations

from brainlab.audit.across import CrossAudit, audit_across, run_audit_across
from brainlab.audit.groups import CLEAN_SPLIT_FILE, write_manifest
from brainlab.audit.report import pair_figure, run_audit, size_figure
from brainlab.audit.within import AuditResult, audit_dataset

__all__ = [
    # one dataset: results as tables, or everything written to a folder
    "AuditResult", "audit_dataset", "run_audit",
    # one dataset against another
    "CrossAudit", "audit_across", "run_audit_across",
    # what a notebook shows and keeps
    "pair_figure", "size_figure", "write_manifest",
    # the name run_audit writes the copy-free split under
    "CLEAN_SPLIT_FILE",
]
