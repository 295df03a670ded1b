"""The audit across two datasets: which images of B are copies of images of A.

An "external" test set (images from another hospital, another collection) measures how a model
trained on A does on images it has never seen, but only when none of B's images is a copy of one
of A's. Collections reuse each other's images, so :func:`audit_across` looks for them with the
matching of the single-dataset audit: the same bytes (``exact``), the same decoded pixels
(``same-pixels``, with ``pixel_hash=True``) or the same scan re-encoded, resized, lightly cropped or
with other brightness (``near``, :func:`brainlab.audit.matching.match_sets`, same thresholds).

What it reports: every copy (B's file, A's file, kind, score), the images of B with no copy in A
(the external test set, as a manifest whose split is ``external``), counts per class, and the
copies whose labels differ between the two datasets. :func:`run_audit_across` writes it all down.

Each dataset is read with its own class folder names (:func:`brainlab.catalogue.detect_spec`);
classes are compared under brainlab's names. Paths are relative to each dataset's root.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from brainlab import catalogue
from brainlab.audit.matching import COARSE_THRESHOLD, NEAR_THRESHOLD, NEIGHBOURS, match_sets, pair_frame
from brainlab.audit.thumbnails import inventory
from brainlab.errors import BrainlabError

__all__ = ["COPY_COLUMNS", "CrossAudit", "audit_across", "run_audit_across"]

COPY_COLUMNS = ["path_b", "path_a", "kind", "score"]  # then class_b, class_a, split_a, label_disagrees


@dataclass
class CrossAudit:
    """What :func:`audit_across` found. ``summary`` holds the headline numbers."""

    root_a: Path
    root_b: Path
    spec_a: catalogue.DatasetSpec
    spec_b: catalogue.DatasetSpec
    files_a: pd.DataFrame  # one row per readable image of A (see brainlab.audit.thumbnails.inventory)
    files_b: pd.DataFrame  # the same for B, with has_copy and copy_kind
    copies: pd.DataFrame  # one row per (B file, A file) copy: COPY_COLUMNS + class_b, class_a, split_a, label_disagrees
    checked: pd.DataFrame  # every pair compared by the near-copy check: path_a, path_b, kind (near/different), score
    manifest: pd.DataFrame  # B's images with no copy in A: path, class, split ("external")
    summary: dict
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset "A"/"B", path, reason)


def _read(root, progress: bool, pixel_hash: bool):
    spec = catalogue.detect_spec(root)
    splits = catalogue.present_splits(root, spec)
    if not splits:
        raise BrainlabError(f"{root}: no {' or '.join(f'{s}/' for s in spec.splits)} folder inside. Give the "
                            f"dataset folder (the one that holds {' and/or '.join(spec.splits)}).")
    return spec, splits, inventory(root, pixel_hash=pixel_hash, progress=progress, spec=spec, splits=splits)


def audit_across(root_a, root_b, pixel_hash: bool = False, progress: bool = False) -> CrossAudit:
    """Find every image of dataset B that is an exact or near copy of an image of dataset A; writes nothing.

    Both are dataset folders (``<split>/<class folder>/``, any catalogue entry's folder names; the
    splits present are read, so a copy of B's ``Testing/`` alone works).
    """
    started = time.perf_counter()
    root_a, root_b = Path(root_a).expanduser(), Path(root_b).expanduser()
    spec_a, splits_a, inv_a = _read(root_a, progress, pixel_hash)
    spec_b, splits_b, inv_b = _read(root_b, progress, pixel_hash)
    for root, inv in ((root_a, inv_a), (root_b, inv_b)):
        if len(inv.files) == 0:
            raise BrainlabError(f"no readable images in {root} ({len(inv.unreadable)} files, none can be read). "
                                f"Run `brainlab doctor --data {root}` to see why each one fails.")
    fa, fb = inv_a.files, inv_b.files

    # exact copies: the same bytes (and, with pixel_hash, the same decoded pixels)
    rows = []
    for column, kind in (("sha256", "exact"), ("pixels_sha256", "same-pixels")):
        if fa[column].isna().all() or fb[column].isna().all():
            continue
        where_a = fa.groupby(column).indices
        for ib, key in enumerate(fb[column]):
            for ia in where_a.get(key, ()):
                rows.append((int(ib), int(ia), kind, 1.0))
    exact = pair_frame(rows, ["b", "a", "kind", "score"]).drop_duplicates(["b", "a"])

    # near copies, through the first file of each set of identical files on either side
    first_a = np.flatnonzero(~fa["sha256"].duplicated().to_numpy())
    first_b = np.flatnonzero(~fb["sha256"].duplicated().to_numpy())
    checked = match_sets(inv_a.thumbs[first_a], inv_a.boxes[first_a], inv_b.thumbs[first_b], inv_b.boxes[first_b],
                         progress=progress)
    checked["a"] = first_a[checked["a"].to_numpy()]
    checked["b"] = first_b[checked["b"].to_numpy()]
    same_a, same_b = fa.groupby("sha256").indices, fb.groupby("sha256").indices
    sha_a, sha_b = fa["sha256"].to_numpy(), fb["sha256"].to_numpy()
    exact_keys = set(zip(exact["b"], exact["a"]))
    near = [(int(y), int(x), "near", float(score))
            for a, b, score in checked.loc[checked["near"], ["a", "b", "score"]].itertuples(index=False)
            for x in same_a[sha_a[a]] for y in same_b[sha_b[b]] if (y, x) not in exact_keys]
    near = pair_frame(near, ["b", "a", "kind", "score"]).drop_duplicates(["b", "a"])
    found = pd.concat([exact, near], ignore_index=True)

    copies = pd.DataFrame({
        "path_b": fb["path"].to_numpy()[found["b"]], "path_a": fa["path"].to_numpy()[found["a"]],
        "kind": found["kind"].to_numpy(), "score": found["score"].round(4).to_numpy(),
        "class_b": fb["class"].to_numpy()[found["b"]], "class_a": fa["class"].to_numpy()[found["a"]],
        "split_a": fa["split"].to_numpy()[found["a"]]})
    copies["label_disagrees"] = copies["class_b"] != copies["class_a"]
    copies = copies.sort_values(["path_b", "kind", "path_a"], ignore_index=True)

    kind_order = {"exact": 0, "same-pixels": 1, "near": 2}
    best_kind = (copies.assign(rank=copies["kind"].map(kind_order)).sort_values("rank")
                 .drop_duplicates("path_b").set_index("path_b")["kind"])
    files_b = fb.drop(columns=["label"]).assign(has_copy=fb["path"].isin(best_kind.index),
                                                copy_kind=best_kind.reindex(fb["path"], fill_value="").to_numpy())
    manifest = files_b.loc[~files_b["has_copy"], ["path", "class"]].assign(split="external").reset_index(drop=True)

    checked_table = pd.DataFrame({
        "path_a": fa["path"].to_numpy()[checked["a"]], "path_b": fb["path"].to_numpy()[checked["b"]],
        "kind": np.where(checked["near"], "near", "different"),
        "aligned": checked["aligned"].round(4).to_numpy(), "score": checked["score"].round(4).to_numpy()})
    checked_table["class_a"] = checked_table["path_a"].map(dict(zip(fa["path"], fa["class"])))
    checked_table["class_b"] = checked_table["path_b"].map(dict(zip(fb["path"], fb["class"])))

    unreadable = [("A", p, r) for p, r in inv_a.unreadable] + [("B", p, r) for p, r in inv_b.unreadable]
    summary = _summary(root_a, root_b, spec_a, spec_b, splits_a, splits_b, fa, files_b, copies, unreadable)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return CrossAudit(root_a, root_b, spec_a, spec_b, fa.drop(columns=["label"]), files_b, copies, checked_table,
                      manifest, summary, unreadable)


def _summary(root_a, root_b, spec_a, spec_b, splits_a, splits_b, fa, files_b, copies, unreadable) -> dict:
    per_class = {}
    for c in catalogue.CLASS_NAMES:
        part = files_b[files_b["class"] == c]
        if part.empty:
            continue
        per_class[c] = {"images": len(part), "with_copy": int(part["has_copy"].sum()),
                        "exact": int((part["copy_kind"] == "exact").sum()),
                        "same_pixels": int((part["copy_kind"] == "same-pixels").sum()),
                        "near": int((part["copy_kind"] == "near").sum()),
                        "external": int((~part["has_copy"]).sum())}
    disagreeing = copies[copies["label_disagrees"]]
    # one row per B image whose copies in A carry another label: its class, and theirs
    per_image = (disagreeing.groupby("path_b")
                 .agg(class_b=("class_b", "first"), classes_a=("class_a", lambda s: ";".join(sorted(set(s)))),
                      paths_a=("path_a", ";".join)).reset_index())
    matrix = {f"{b} -> {a}": int(n) for (b, a), n in
              disagreeing.drop_duplicates(["path_b", "class_a"]).groupby(["class_b", "class_a"]).size().items()}
    with_copy = copies.drop_duplicates("path_b")
    return {
        "dataset_a": {"name": spec_a.name, "root": str(root_a), "splits": list(splits_a), "images": len(fa)},
        "dataset_b": {"name": spec_b.name, "root": str(root_b), "splits": list(splits_b), "images": len(files_b)},
        "images_b_with_copy_in_a": int(files_b["has_copy"].sum()),
        "images_b_external": int((~files_b["has_copy"]).sum()),
        "by_kind": {k: int((files_b["copy_kind"] == k).sum()) for k in ("exact", "same-pixels", "near")},
        "copy_pairs": len(copies),
        "images_b_with_copy_in_split_of_a": {s: int(copies[copies["split_a"] == s]["path_b"].nunique())
                                             for s in splits_a},
        "images_a_copied": int(copies["path_a"].nunique()),
        "per_class_b": per_class,
        "label_disagreements": {"images_b": len(per_image), "by_class": matrix,
                                "images": per_image.to_dict("records")},
        "images_b_copies_agree": int(len(with_copy) - len(per_image)),
        "unreadable": [{"dataset": d, "path": p, "reason": r} for d, p, r in unreadable],
        "method": {"near_threshold": NEAR_THRESHOLD, "score": "NCC of band-pass detail after alignment",
                   "coarse_threshold": COARSE_THRESHOLD, "neighbours": NEIGHBOURS},
    }


def _summary_markdown_across(result: CrossAudit) -> str:
    """A short human summary of the audit across two datasets, in Markdown."""
    s = result.summary
    a, b = s["dataset_a"], s["dataset_b"]
    dis = s["label_disagreements"]
    lines = [f"# Copies of {a['name']} in {b['name']}", "",
             f"A: `{a['root']}` ({', '.join(a['splits'])}, {a['images']} images). "
             f"B: `{b['root']}` ({', '.join(b['splits'])}, {b['images']} images). {s['seconds']:.0f} s.", "",
             f"- **{s['images_b_with_copy_in_a']} of {b['images']} images of B** are copies of images of A "
             f"({s['by_kind']['exact']} byte for byte, {s['by_kind']['same-pixels']} with the same pixels, "
             f"{s['by_kind']['near']} near copies); they copy {s['images_a_copied']} images of A "
             f"({', '.join(f'{n} in {k}' for k, n in s['images_b_with_copy_in_split_of_a'].items())}).",
             f"- **{s['images_b_external']} images of B have no copy in A**: the external test set "
             "(`external_manifest.csv`).",
             f"- **Label disagreements**: {dis['images_b']} images of B are copies of images that A files under "
             "another class" + (": " + ", ".join(f"{k} ({n})" for k, n in dis["by_class"].items()) if dis["by_class"]
                                else "") + ".", "",
             "| class | images of B | copy in A | exact | near | no copy (external) |",
             "|---|---:|---:|---:|---:|---:|"]
    for c, n in s["per_class_b"].items():
        lines.append(f"| {c} | {n['images']} | {n['with_copy']} | {n['exact'] + n['same_pixels']} | {n['near']} | "
                     f"{n['external']} |")
    lines += ["", "Files: external_copies.csv (every copy: path_b, path_a, kind, score, classes), "
              "external_manifest.csv (path, class, split=external), checked_pairs.csv (every pair compared, with "
              "its score), files_b.csv, summary.json; figures external_pairs.png, borderline_pairs.png, "
              "label_disagreements.png.",
              f"A pair is a near copy when the correlation of its aligned fine detail reaches {NEAR_THRESHOLD} "
              "(the single-dataset audit's threshold); borderline_pairs.png shows pairs on both sides of it."]
    return "\n".join(lines) + "\n"


def run_audit_across(root_a, root_b, out_dir, pixel_hash: bool = False, progress: bool = True) -> dict:
    """Audit B against A and write ``external_copies.csv``, ``external_manifest.csv``, tables, figures and
    ``summary.json``/``summary.md`` to ``out_dir``. Returns the summary dict."""
    from brainlab.audit.report import borderline_pairs, pair_figure, write_figures_and_summary

    result = audit_across(root_a, root_b, pixel_hash=pixel_hash, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.copies.to_csv(out / "external_copies.csv", index=False)
    result.manifest.to_csv(out / "external_manifest.csv", index=False)
    result.checked.to_csv(out / "checked_pairs.csv", index=False)
    result.files_b.to_csv(out / "files_b.csv", index=False)
    if result.unreadable:
        pd.DataFrame(result.unreadable, columns=["dataset", "path", "reason"]).to_csv(out / "unreadable.csv",
                                                                                       index=False)
    roots = (result.root_a, result.root_b)
    copies = result.copies
    shown = pd.concat([copies[copies["kind"] == "near"].nsmallest(3, "score"),
                       copies[copies["kind"] != "near"].head(3)]).drop_duplicates("path_b")
    figures = {
        "external_pairs.png": pair_figure(roots, shown, "Copies across datasets: A (left) and B (right), "
                                                        "the least similar near copies first"),
        "borderline_pairs.png": pair_figure(roots, borderline_pairs(result.checked),
                                            f"Near the threshold ({NEAR_THRESHOLD}): "
                                            "top rows counted as copies, bottom rows not"),
        "label_disagreements.png": pair_figure(roots, copies[copies["label_disagrees"]].drop_duplicates("path_b"),
                                               "Copies filed under different classes in A and B (red names)"),
    }
    return write_figures_and_summary(out, figures, result.summary, _summary_markdown_across(result))
