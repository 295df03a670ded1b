"""Variants of one recipe side by side, chosen on validation, scored on every test set there is.

    python -m tools.compare_variants runs/audit/files.csv \\
        --variant standard runs/residual-cnn-128-official-seed* \\
        --variant source-shift runs/augment-seed* --variant head-crop runs/headcrop-seed*

Every run folder is a ``brainlab train --split official`` run (``evaluation.json``, ``predictions.csv``,
``run/history.csv``, read through :class:`brainlab.runs.RunFolder`); ``RUN/external/evaluation.json``,
where present, is the same model scored on another dataset's images by ``brainlab evaluate --out RUN/external``. For each variant the table
gives, as mean ± std over its runs (seeds): validation accuracy at the kept epoch (the epoch of
lowest validation loss, the model that is scored), then official-test accuracy, split into the
test images with and without a copy in Training (``files.csv`` of ``brainlab audit``), glioma
recall on the images without one, and the external accuracy and glioma recall.

The variant to prefer is chosen on validation accuracy alone and printed under the table; the
test columns are read after the choice, never used for it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import pandas as pd

from tools.copy_breakdown import TESTING_SPLITS, breakdown
from tools.markdown import markdown_table
from tools.results_table import mean_std

from brainlab import kept_epoch, protocols, runs
from brainlab.runs import RunFolderError

__all__ = ["COLUMNS", "kept_validation_accuracy", "evaluation", "scores", "settings_of", "table", "chosen", "main"]

COLUMNS = ("validation (kept epoch)", str(protocols.OFFICIAL_TEST), "with a copy in Training", "no copy",
           "no copy: glioma recall", "external", "external: glioma recall")


def kept_validation_accuracy(run: Path) -> float:
    """Validation accuracy at the epoch ``brainlab.train.fit`` kept (lowest validation loss)."""
    training = runs.RunFolder(run).training
    if not training.history_path.is_file():
        raise ValueError(f"{training.history_path} does not exist: is the run finished (a one-stage recipe such as "
                         "residual-cnn)?")
    monitor, mode = kept_epoch.monitored()
    return kept_epoch.best_row(training.history(), monitor, mode)["val_accuracy"]


def evaluation(run: Path) -> dict:
    """The evaluation record of a finished run (a ValueError naming the file when there is none)."""
    found = runs.RunFolder(run).evaluation()
    if found is None:
        raise ValueError(f"{runs.RunFolder(run).evaluation_path} does not exist: is the run in {run} finished?")
    return found


def scores(run: Path, files: pd.DataFrame) -> dict[str, float | None]:
    """One run's numbers, in the order of :data:`COLUMNS`."""
    folder = runs.RunFolder(run)
    metrics = evaluation(run)
    if metrics.get("split") not in TESTING_SPLITS:
        raise ValueError(f"{run} was evaluated on {metrics.get('split')}, not the Testing folder: "
                         "compare runs made with --split official")
    predictions = folder.predictions()
    if predictions is None:
        raise ValueError(f"{folder.predictions_path} does not exist: is the run in {run} finished?")
    parts = breakdown(predictions, files)
    external = folder.external.evaluation()
    return dict(zip(COLUMNS, (
        kept_validation_accuracy(run), metrics["accuracy"], parts["copy in Training"]["accuracy"],
        parts["no copy"]["accuracy"], parts["no copy"]["recall"]["glioma_tumor"],
        external["accuracy"] if external else None,
        external["per_class"]["glioma_tumor"]["recall"] if external else None)))


def settings_of(run: Path) -> dict:
    """The settings a run was made with, its seed left out: what the runs of one variant share."""
    settings = dict(evaluation(run).get("settings", {}))
    settings.pop("seed", None)
    return settings


def table(variants: dict[str, list[dict]]) -> str:
    """The markdown table: a row per variant, each column's mean ± std over its runs."""
    return markdown_table(["variant", "seeds", *COLUMNS],
                          [[name, len(runs), *(mean_std(r[c] for r in runs) for c in COLUMNS)]
                           for name, runs in variants.items()])


def chosen(variants: dict[str, list[dict]]) -> str:
    """The variant with the highest mean validation accuracy."""
    return max(variants, key=lambda v: statistics.mean(r[COLUMNS[0]] for r in variants[v]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files_csv", help="files.csv written by `brainlab audit` on the same dataset folder")
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
                        help="a name, then the run folders of that variant (one per seed)")
    args = parser.parse_args(argv)
    if not Path(args.files_csv).is_file():
        sys.exit(f"{args.files_csv} does not exist: run `brainlab audit --data DATA --out DIR` and pass DIR/files.csv")
    files = pd.read_csv(args.files_csv)
    variants = {}
    for name, *runs in args.variant:
        if not runs:
            sys.exit(f"--variant {name}: give its run folders after the name")
        folders = [Path(r) for r in runs]
        try:
            settings = [settings_of(f) for f in folders]
            if any(s != settings[0] for s in settings):
                sys.exit(f"--variant {name}: its runs differ in more than the seed; a variant is one command, "
                         "several seeds")
            variants[name] = [scores(f, files) for f in folders]
        except (OSError, ValueError, KeyError, RunFolderError) as exc:
            sys.exit(f"--variant {name}: {exc}")
    print(table(variants))
    print(f"\nChosen on validation accuracy: {chosen(variants)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
