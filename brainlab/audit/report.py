"""The audit on paper: figures of pairs and size cues, a Markdown summary, every table written down.

:func:`run_audit` audits a dataset and writes its tables (CSV), ``summary.json``, ``summary.md``,
figures (PNG) and ``clean_split.csv`` to a folder; the figure functions return matplotlib
Figures for a notebook.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainlab import catalogue, config, images
from brainlab.audit.groups import CLEAN_SPLIT_FILE, write_manifest
from brainlab.audit.matching import NEAR_THRESHOLD
from brainlab.audit.within import AuditResult, audit_dataset
from brainlab.protocols import CLEAN, OFFICIAL

__all__ = ["borderline_pairs", "pair_figure", "run_audit", "size_figure", "write_figures_and_summary"]


# ----------------------------------------------------------------------------- figures


def _display_image(path, side: int = 256) -> tuple[np.ndarray, tuple[int, int]]:
    """A grayscale copy of one file for display (longer side at most ``side``) and its real size."""
    im, size = images.decode(path, "L")
    im.thumbnail((side, side))
    return np.asarray(im), size


def pair_figure(root, pairs: pd.DataFrame, title: str, n: int = 6) -> "Figure":
    """Up to ``n`` pairs side by side, one pair per row, each file named under its image.

    ``pairs`` needs ``path_a, path_b, kind, score`` (a table of :class:`AuditResult`). A red
    name marks a pair whose labels differ (``class_a``/``class_b`` when the table has them, else
    the class folders). ``root`` is one dataset folder, or two, ``(root_a, root_b)``, for pairs
    across datasets.
    """
    root_a, root_b = (root, root) if isinstance(root, (str, Path)) else root
    from matplotlib.figure import Figure

    pairs = pairs.head(n)
    rows = max(len(pairs), 1)
    fig = Figure(figsize=(7.0, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    fig.suptitle(title)
    if pairs.empty:
        for ax in axes.ravel():
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, 0].set_xlabel("no pairs to show")
        axes[0, 1].set_xlabel("no pairs to show")
        return fig
    for row, pair in zip(axes, pairs.itertuples(index=False)):
        if hasattr(pair, "class_a") and hasattr(pair, "class_b"):
            conflict = pair.class_a != pair.class_b
        else:
            conflict = pair.path_a.split("/")[1] != pair.path_b.split("/")[1]
        for ax, path, side, base in zip(row, (pair.path_a, pair.path_b), ("A", "B"), (root_a, root_b)):
            image, (width, height) = _display_image(Path(base) / path)
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(path.replace("/", "/\n", 2), fontsize=8, color="tab:red" if conflict else "black")
            ax.set_title(f"{side}: {width}x{height} pixels", fontsize=8)
        row[0].set_ylabel(f"{pair.kind}, score {pair.score:.4f}", fontsize=9)
    return fig


def _one_per_group(pairs: pd.DataFrame, group_of: dict) -> pd.DataFrame:
    """The least similar pair of each duplicate group, least similar first: how far a copy can drift."""
    groups = pairs["path_a"].map(group_of)
    ordered = pairs.assign(_group=groups).sort_values("score", kind="stable")
    return ordered.drop_duplicates("_group").drop(columns="_group")


def _example_pairs(pairs: pd.DataFrame, group_of: dict, n: int = 6) -> pd.DataFrame:
    """Up to ``n`` pairs worth a look, each from another group: label conflicts, cross-split and
    within-split near-duplicates in about equal numbers (then exact copies), least similar first."""
    pairs = pairs.sort_values("score", kind="stable")
    group = pairs["path_a"].map(group_of)
    near = pairs["kind"] != "exact"
    kinds = [pairs["label_conflict"], near & pairs["cross_split"] & ~pairs["label_conflict"],
             near & ~pairs["cross_split"] & ~pairs["label_conflict"], ~near]
    chosen, used = [], set()
    for limit in (max(1, n // 3), n):  # first an equal share of each kind, then fill up
        for kind in kinds:
            taken = 0
            for i in pairs.index[kind]:
                if len(chosen) == n or taken == limit:
                    break
                if group[i] not in used:
                    used.add(group[i])
                    chosen.append(i)
                    taken += 1
    return pairs.loc[chosen]


def borderline_pairs(checked: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The ``n`` lowest-scoring pairs counted as near-duplicates and the ``n`` highest below the threshold."""
    scored = checked.dropna(subset=["score"])
    above = scored[scored["kind"] == "near"].nsmallest(n, "score")
    below = scored[scored["kind"] == "different"].nlargest(n, "score")
    return pd.concat([above, below], ignore_index=True)


def size_figure(files: pd.DataFrame, shortcut: dict | None = None) -> "Figure":
    """Image sizes per class and split: a scatter of width against height for each split, and
    the share of each class's images that have the dataset's commonest size.

    When a class sits on sizes that others rarely use, the size alone gives its label away. The
    title gives the size-only classifier's accuracy when known.
    """
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    splits = [s for s in catalogue.SPLIT_FOLDERS if s in set(files["split"])]
    classes = [c for c in catalogue.CLASS_NAMES if c in set(files["class"])]
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    axes = fig.subplots(1, len(splits) + 1, squeeze=False)[0]
    rng = np.random.default_rng(0)
    for ax, split in zip(axes, splits):
        part = files[files["split"] == split]
        spread = np.exp(rng.normal(0, 0.03, (2, len(part))))  # images of one size become a visible cloud
        sns.scatterplot(x=part["width"] * spread[0], y=part["height"] * spread[1], hue=part["class"],
                        hue_order=classes, s=8, alpha=0.4, linewidth=0, ax=ax, legend=False)
        ax.set(xscale="log", yscale="log", title=f"{split} ({len(part)} images)",
               xlabel="width (pixels, log scale)", ylabel="height (pixels, log scale)")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(FixedLocator([128, 256, 512, 1024]))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_locator(NullLocator())
    sizes = files["width"].astype(str) + "x" + files["height"].astype(str)
    commonest = sizes.value_counts().index[0]
    share = (files.assign(at_commonest=sizes == commonest)
             .groupby(["class", "split"], as_index=False)["at_commonest"].mean())
    sns.barplot(share, x="at_commonest", y="class", hue="split", order=classes, hue_order=splits, ax=axes[-1])
    axes[-1].set(xlim=(0, 1), title=f"Share of images at {commonest}", xlabel="share of the class's images",
                 ylabel="class")
    handles = [Line2D([], [], marker="o", linestyle="", color=color, label=c)
               for c, color in zip(classes, sns.color_palette(n_colors=len(classes)))]
    axes[0].legend(handles=handles, title="class", fontsize=7, title_fontsize=8, loc="upper left")
    title = "Image size per class and split: a shortcut a model can learn"
    if shortcut:
        acc = shortcut["size_only"][OFFICIAL]
        title += (f"\nA decision tree on size alone: {acc['accuracy']:.0%} on official Testing "
                  f"(always the commonest class: {acc['majority']:.0%})")
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- writing it all down


def _summary_markdown(result: AuditResult) -> str:
    """A short human summary of the audit, in Markdown."""
    s = result.summary
    t = s["totals"]
    lines = [f"# Dataset audit: {result.root.name}", "",
             f"{s['images']} images read in {s['seconds']:.0f} s"
             + (f"; {len(s['unreadable'])} unreadable (see unreadable.csv)" if s["unreadable"] else "") + ".", ""]
    lines += [f"- **Exact duplicates** (same bytes): {t['exact']} images have one or more; "
              f"{s['pairs']['exact']['within_split']} pairs within a split, "
              f"{s['pairs']['exact']['cross_split']} across splits.",
              f"- **Near-duplicates** (same scan re-encoded, resized, cropped or with other brightness): "
              f"{t['near']} images; {s['pairs']['near']['within_split']} pairs within a split, "
              f"{s['pairs']['near']['cross_split']} across splits.",
              f"- **Duplicate groups**: {s['groups']['with_copies']} groups of two or more files (largest: "
              f"{s['groups']['largest']}); {s['redundant_copies']} files are redundant copies.",
              f"- **Cross-split leaks**: {t['cross_split']} images sit in a group that spans splits "
              f"({s['groups']['cross_split']} groups)."]
    if "testing_with_copy_in_training" in s:
        n_test = sum(v["images"] for v in s["per_split_class"].get(catalogue.SPLIT_FOLDERS[1], {}).values())
        lines.append(f"  {s['testing_with_copy_in_training']} of {n_test} Testing images have a copy in Training "
                     f"({s['testing_with_exact_copy_in_training']} byte for byte).")
    lines.append(f"- **Label conflicts**: {s['groups']['label_conflict']} groups ({t['label_conflicts']} images) "
                 "hold copies filed under different classes.")
    for conflict in s["label_conflicts"][:20]:
        lines.append("  - " + ", ".join(f"`{f['path']}`" for f in conflict["files"]))
    if len(s["label_conflicts"]) > 20:
        lines.append(f"  - ... {len(s['label_conflicts']) - 20} more in groups.csv")
    if "shortcut" in s:
        size, both = s["shortcut"]["size_only"], s["shortcut"]["size_and_file_size"]
        lines.append(f"- **Shortcut cues**: a decision tree that sees only width, height and aspect ratio, "
                     f"trained on Training, scores {size[OFFICIAL]['accuracy']:.1%} on official Testing "
                     f"(always answering the commonest class: {size[OFFICIAL]['majority']:.1%}); with file size too: "
                     f"{both[OFFICIAL]['accuracy']:.1%}. On the clean split: {size[CLEAN]['accuracy']:.1%} "
                     f"(size) and {both[CLEAN]['accuracy']:.1%} (size and file size).")
    clean = s["clean_split"]
    parts = ", ".join(f"{p} {sum(c.values())}" for p, c in clean["counts"].items())
    lines += [f"- **Clean split** (`clean_split.csv`, seed {clean['seed']}): {parts}; no duplicate group in more "
              "than one part. Use it with `brainlab train --split clean --manifest clean_split.csv` or "
              "`brainlab.data.load_splits(manifest=...)`.", "",
              "## Per split and class", "",
              "Images that have an exact copy, a near copy, a copy in the other split, a copy under another "
              "label:", "",
              "| split | class | images | exact | near | cross-split | label conflict |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for row in result.counts.itertuples(index=False):
        lines.append(f"| {row.split} | {row[1]} | {row.images} | {row.exact} | {row.near} | {row.cross_split} | "
                     f"{row.label_conflict} |")
    lines += ["", "Files: near_duplicates.csv (every pair), groups.csv, files.csv, counts.csv, shortcuts.csv, "
              "checked_pairs.csv (every pair compared, with its score), clean_split.csv, summary.json; figures "
              "duplicate_pairs.png, borderline_pairs.png, label_conflicts.png, size_shortcut.png.",
              f"A pair is a near-duplicate when the correlation of its aligned fine detail reaches "
              f"{NEAR_THRESHOLD}; borderline_pairs.png shows the pairs on both sides of that line."]
    return "\n".join(lines) + "\n"


def run_audit(root, out_dir, seed: int = config.DEFAULT_SEED, progress: bool = True,
              pixel_hash: bool = False) -> dict:
    """Audit ``root`` and write the tables, figures, ``summary.json``/``.md`` and ``clean_split.csv``
    to ``out_dir``. Returns the summary dict (also in ``summary.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = audit_dataset(root, seed=seed, pixel_hash=pixel_hash, progress=progress)
    result.pairs[["path_a", "path_b", "kind", "score", "split_a", "class_a", "split_b", "class_b", "cross_split",
                  "label_conflict"]].to_csv(out / "near_duplicates.csv", index=False)
    result.checked.to_csv(out / "checked_pairs.csv", index=False)
    result.groups().to_csv(out / "groups.csv", index=False)
    result.files.drop(columns=["label"]).to_csv(out / "files.csv", index=False)
    result.counts.to_csv(out / "counts.csv", index=False)
    result.shortcuts.to_csv(out / "shortcuts.csv", index=False)
    if result.unreadable:
        pd.DataFrame(result.unreadable, columns=["path", "reason"]).to_csv(out / "unreadable.csv", index=False)
    write_manifest(result.clean, out / CLEAN_SPLIT_FILE)

    pairs = result.pairs
    group_of = dict(zip(result.files["path"], result.files["group"]))
    figures = {
        "duplicate_pairs.png": pair_figure(result.root, _example_pairs(pairs, group_of),
                                           "Duplicate pairs: a label conflict, cross-split and within-split copies"),
        "borderline_pairs.png": pair_figure(result.root, borderline_pairs(result.checked),
                                            f"Near the threshold ({NEAR_THRESHOLD}): "
                                            "top rows counted as copies, bottom rows not"),
        "label_conflicts.png": pair_figure(result.root, _one_per_group(pairs[pairs["label_conflict"]], group_of),
                                           "Copies filed under different classes (red names)"),
        "size_shortcut.png": size_figure(result.files, result.summary.get("shortcut")),
    }
    return write_figures_and_summary(out, figures, result.summary, _summary_markdown(result))


def write_figures_and_summary(out: Path, figures: dict, summary: dict, markdown: str) -> dict:
    """Save each figure as ``out/<name>``, then ``summary.json`` (naming the figures) and ``summary.md``."""
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=90)
    summary["figures"] = list(figures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    return summary
