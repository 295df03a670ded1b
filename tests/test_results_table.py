"""tools/results_table.py: seeds of one command become one row of mean ± std."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "results_table.py"
spec = importlib.util.spec_from_file_location("results_table", TOOL)
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)


def write_run(folder: Path, seed: int, accuracy: float, glioma_recall: float, split="official-test", epochs=10):
    folder.mkdir(parents=True)
    per_class = {c: {"recall": 0.5, "precision": 0.5} for c in results_table.CLASS_NAMES}
    per_class["glioma_tumor"]["recall"] = glioma_recall
    metrics = {
        "recipe": "small-cnn", "split": split, "accuracy": accuracy, "per_class": per_class, "macro_auc": 0.8,
        "seconds": 600.0, "seed": seed, "settings": {"recipe": "small-cnn", "epochs": epochs, "seed": seed},
        "command": f"brainlab train --recipe small-cnn --seed {seed} --out runs/x-seed{seed}",
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_a_group_of_seeds_is_one_row_of_mean_and_std(tmp_path, capsys):
    folders = [write_run(tmp_path / f"seed{s}", s, acc, rec) for s, acc, rec in
               [(1, 0.50, 0.10), (2, 0.60, 0.20), (3, 0.70, 0.30)]]
    assert results_table.main([str(f) for f in folders]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("| recipe | split | seeds | accuracy | recall glioma | recall meningioma | recall no_tumor | "
                        "recall pituitary | macro AUC | minutes per run | command |")
    assert lines[1].count("---") == lines[0].count("|") - 1  # one separator per column
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:5] == ["small-cnn", "official-test", "3", "0.600 ± 0.100", "0.200 ± 0.100"]
    assert cells[-2] == "10"  # minutes per run
    assert cells[-1] == "`brainlab train --recipe small-cnn --seed S --out runs/x-seedS`, S = 1, 2, 3"


def test_runs_that_differ_in_more_than_the_seed_are_refused(tmp_path):
    a = write_run(tmp_path / "a", 1, 0.5, 0.1)
    b = write_run(tmp_path / "b", 2, 0.5, 0.1, epochs=20)
    with pytest.raises(SystemExit, match="differ in more than their seed"):
        results_table.main([str(a), str(b)])
    with pytest.raises(SystemExit, match="is the run .* finished"):
        results_table.main([str(tmp_path / "missing")])


def test_the_split_is_the_runs_own_and_sample_runs_are_refused(tmp_path, capsys):
    own = [write_run(tmp_path / f"own{s}", s, 0.5, 0.1, split="unverified-test") for s in (1, 2)]
    assert results_table.main([str(f) for f in own]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| small-cnn | unverified-test | 2 |")
    sample = [write_run(tmp_path / f"sample{s}", s, 0.5, 0.1, split="sample-test") for s in (1, 2)]
    with pytest.raises(SystemExit, match="bundled sample .*sample-test.*not a result"):
        results_table.main([str(f) for f in sample])
