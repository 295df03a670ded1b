"""Summarise finished runs (folders with a metrics.json) as the markdown rows of docs/results.md.

    python tools/results_table.py runs/small-cnn-64-official-seed*    # one group per call
    python tools/results_table.py --group runs/a-seed* --group runs/b-seed*

Each group is the same command run with several seeds. A row gives the split, the number of
seeds, accuracy and per-class recall as mean ± standard deviation (sample std, n-1), the mean
training time, and the exact command of the first run with its seed shown as ``--seed S``.
Runs in one group must share their split and settings apart from the seed: the script refuses
to average anything else. The split is the one the runs name (``official-test`` for a verified
copy of the dataset, ``unverified-test`` for any other folder, ``clean-test`` ...); runs on the
bundled sample (``sample-test``) are smoke tests, not results, and are refused.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from brainlab.datasets import CLASS_NAMES

HEADER = ("| recipe | split | seeds | accuracy | "
          + " | ".join(f"recall {c if c == 'no_tumor' else c.split('_')[0]}" for c in CLASS_NAMES)
          + " | macro AUC | minutes per run | command |")


def mean_std(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def read_group(folders) -> list[dict]:
    runs = []
    for folder in folders:
        path = Path(folder) / "metrics.json"
        if not path.is_file():
            sys.exit(f"{path} does not exist: is the run in {folder} finished?")
        runs.append(json.loads(path.read_text()))
    if not runs:
        sys.exit("no run folders given")
    settings = [{k: v for k, v in r["settings"].items() if k != "seed"} for r in runs]
    if any(s != settings[0] for s in settings) or len({r["split"] for r in runs}) != 1:
        sys.exit(f"runs in {list(map(str, folders))} differ in more than their seed: not one group")
    if runs[0]["split"].startswith("sample-"):
        sys.exit(f"runs in {list(map(str, folders))} were evaluated on the bundled sample ({runs[0]['split']}): "
                 "a smoke test, not a result; train with --data on the dataset")
    return runs


def row(runs: list[dict]) -> str:
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
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="run folders of one group")
    parser.add_argument("--group", nargs="+", action="append", default=[], help="another group of run folders")
    args = parser.parse_args(argv)
    groups = ([args.folders] if args.folders else []) + args.group
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for folders in groups:
        print(row(read_group(folders)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
