"""Official-test results split by whether each test image has a copy in Training.

    python -m tools.copy_breakdown runs/audit/files.csv runs/residual-cnn-128-official-seed*

``files.csv`` comes from ``brainlab audit``; its ``cross_split`` column marks the images whose
exact or near copy sits in the other split (Training or Testing). Each run folder needs the
``predictions.csv`` that ``brainlab train`` and ``brainlab reproduce`` write, from a run on
Training/Testing (``--split official``: its test split is ``official-test`` for a verified copy
of the dataset, ``unverified-test`` for another folder); runs on a manifest's split, such as
``clean-test``, are refused: their test images are not the Testing folder. For every run,
and as mean ± std over the runs, the script prints accuracy and per-class recall on the test
images that have a copy in Training (a model can get them right by remembering) and on those
that do not (the model must generalise, often to another source of images).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from brainlab import protocols, runs
from brainlab.catalogue import CLASS_NAMES

from tools.markdown import markdown_table
from tools.results_table import mean_std, recall_label  # the same cells and headings as docs/results.md's table

__all__ = ["TESTING_SPLITS", "breakdown", "table", "main"]

# Split names brainlab gives the Testing folder: a verified copy, another folder, the bundled sample.
TESTING_SPLITS = tuple(str(protocols.ResultName(protocol, "test"))
                       for protocol in (protocols.OFFICIAL, protocols.UNVERIFIED, protocols.SAMPLE))


def _split_of(run: Path) -> str | None:
    """The split a run was evaluated on, from its evaluation record (None where there is none)."""
    return (runs.RunFolder(run).evaluation() or {}).get("split")


def breakdown(predictions: pd.DataFrame, files: pd.DataFrame) -> dict[str, dict]:
    """{"copy in Training": {...}, "no copy": {...}}: n, accuracy, recall per class, per part."""
    copied = files.set_index("path")["cross_split"].astype(str).str.lower() == "true"
    missing = sorted(set(predictions["path"]) - set(copied.index))
    if missing:
        raise ValueError(f"{len(missing)} predicted images are not in the audit (first: {missing[0]}): "
                         "was it made from the same dataset folder?")
    predictions = predictions.assign(copied=predictions["path"].map(copied))
    parts = {}
    for name, part in (("copy in Training", predictions[predictions.copied]),
                       ("no copy", predictions[~predictions.copied])):
        correct = part["true"] == part["predicted"]
        recall = {c: (correct[part["true"] == c].mean() if (part["true"] == c).any() else None) for c in CLASS_NAMES}
        parts[name] = {"n": len(part), "accuracy": correct.mean() if len(part) else None, "recall": recall,
                       "per_class_n": {c: int((part["true"] == c).sum()) for c in CLASS_NAMES}}
    return parts


def table(results: dict[str, dict]) -> str:
    """The markdown table: per part, a row per run and, for several runs, their mean ± std."""
    columns = ["run", "test images", "n", "accuracy", *map(recall_label, CLASS_NAMES)]
    rows = []
    for part in ("copy in Training", "no copy"):
        by_run = {run: parts[part] for run, parts in results.items()}
        for run, r in list(by_run.items()) + ([("mean ± std", None)] if len(by_run) > 1 else []):
            chosen = list(by_run.values()) if r is None else [r]
            counts = chosen[0]["per_class_n"]
            rows.append([run, part, f"{chosen[0]['n']} ({', '.join(str(counts[c]) for c in CLASS_NAMES)})",
                         mean_std(x["accuracy"] for x in chosen),
                         *(mean_std(x["recall"][c] for x in chosen) for c in CLASS_NAMES)])
    return markdown_table(columns, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files_csv", help="files.csv written by `brainlab audit`")
    parser.add_argument("runs", nargs="+", help="run folders with predictions.csv (made with --split official)")
    args = parser.parse_args(argv)
    if not Path(args.files_csv).is_file():
        sys.exit(f"{args.files_csv} does not exist: run `brainlab audit --data DATA --out DIR` and pass DIR/files.csv")
    files = pd.read_csv(args.files_csv)
    results = {}
    for run in args.runs:
        split = _split_of(Path(run))
        if split is not None and split not in TESTING_SPLITS:
            sys.exit(f"{run} was evaluated on {split}, not on the Testing folder: use runs made with --split official")
        folder = runs.RunFolder(run)
        predictions = folder.predictions()
        if predictions is None:
            sys.exit(f"{folder.predictions_path} does not exist: is the run in {run} finished, and made by a "
                     "brainlab that writes it?")
        try:
            results[folder.path.name] = breakdown(predictions, files)
        except ValueError as exc:
            sys.exit(f"{run}: {exc}")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
