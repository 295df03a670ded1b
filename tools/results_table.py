"""Summarise finished runs (their evaluation records) as a table of docs/results.md, one row per group.

    python -m tools.results_table runs/small-cnn-64-official-seed*    # one group per call
    python -m tools.results_table --group runs/a-seed* --group runs/b-seed*
    python -m tools.results_table --json runs/a-seed*                 # the table as docs/results.json keeps it

Each group is the same command run with several seeds. A row gives the split, the number of
seeds, accuracy and per-class recall as mean ± standard deviation (sample std, n-1), the mean
training time, and the exact command of the first run with its seed shown as ``--seed S``.
Runs in one group must share their split and settings apart from the seed: the script refuses
to average anything else. The split is the one the runs name (``official-test`` for a verified
copy of the dataset, ``unverified-test`` for any other folder, ``clean-test`` ...); runs on the
bundled sample (``sample-test``) are smoke tests, not results, and are refused.

The page's tables are data: ``--json`` prints the table block to put into docs/results.json, from
which ``python -m tools.results_page`` renders docs/results.md; without it the markdown is printed.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys

from brainlab import protocols
from brainlab.catalogue import CLASS_NAMES
from brainlab.runs import RunFolder, RunFolderError
from tools.markdown import markdown_table
from tools.results_page import dumps

__all__ = ["COLUMNS", "recall_label", "mean_std", "read_group", "row", "main"]


def recall_label(class_name: str) -> str:
    """``recall glioma``: the heading of a class's recall column (``no_tumor`` keeps its whole name)."""
    return f"recall {class_name if class_name == 'no_tumor' else class_name.split('_')[0]}"


COLUMNS = ("recipe", "split", "seeds", "accuracy", *map(recall_label, CLASS_NAMES),
           "macro AUC", "minutes per run", "command")


def mean_std(values) -> str:
    """``0.600 ± 0.100``: mean and sample standard deviation with 3 decimals (one value alone; ``n/a`` for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def read_group(folders) -> list[dict]:
    """The evaluation record of each run folder of one group, refused unless they differ in their seed alone."""
    runs = []
    for folder in map(RunFolder, folders):
        try:
            evaluation = folder.evaluation()
        except RunFolderError as exc:
            sys.exit(str(exc))
        if evaluation is None:
            sys.exit(f"{folder.evaluation_path} does not exist: is the run in {folder} finished?")
        runs.append(evaluation)
    if not runs:
        sys.exit("no run folders given")
    settings = [{k: v for k, v in r["settings"].items() if k != "seed"} for r in runs]
    if any(s != settings[0] for s in settings) or len({r["split"] for r in runs}) != 1:
        sys.exit(f"runs in {list(map(str, folders))} differ in more than their seed: not one group")
    if (name := protocols.ResultName.parse_or_none(runs[0]["split"])) is not None and name.is_sample:
        sys.exit(f"runs in {list(map(str, folders))} were evaluated on the bundled sample ({runs[0]['split']}): "
                 "a smoke test, not a result; train with --data on the dataset")
    return runs


def row(runs: list[dict]) -> list[str]:
    """The cells of a group's row: its split, seeds, mean ± std of each score, minutes and command."""
    first = runs[0]
    command = re.sub(r"--seed \d+", "--seed S", first["command"])
    command = re.sub(r"--out (\S*?)seed\d+", r"--out \1seedS", command)
    cells = [
        first["recipe"], first["split"], str(len(runs)), mean_std(r["accuracy"] for r in runs),
        *(mean_std(r["per_class"][c]["recall"] for r in runs) for c in CLASS_NAMES),
        mean_std(r["macro_auc"] for r in runs),
        f"{statistics.mean(r['seconds'] for r in runs) / 60:.0f}",
        f"`{command}`, S = {', '.join(str(r['seed']) for r in runs)}",
    ]
    return cells


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.results_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="run folders of one group")
    parser.add_argument("--group", nargs="+", action="append", default=[], help="another group of run folders")
    parser.add_argument("--json", action="store_true", help="print the table as a block of docs/results.json")
    args = parser.parse_args(argv)
    groups = ([args.folders] if args.folders else []) + args.group
    rows = [row(read_group(folders)) for folders in groups]
    if args.json:
        print(dumps({"table": {"columns": list(COLUMNS), "rows": rows}}))
    else:
        print(markdown_table(COLUMNS, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
