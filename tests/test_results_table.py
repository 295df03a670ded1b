"""Measured results as data: tools/results_table.py makes a table's rows from run folders (seeds of one command
become one row of mean ± std), docs/results.md is rendered from docs/results.json (tools/results_page.py), and
every table is written by one helper (tools/markdown.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainlab import course, runs
from tools import results_page, results_table
from tools.markdown import markdown_table

REPO = Path(__file__).resolve().parents[1]


def write_run(folder: Path, seed: int, accuracy: float, glioma_recall: float, split="official-test", epochs=10):
    folder.mkdir(parents=True)
    per_class = {c: {"recall": 0.5, "precision": 0.5} for c in results_table.CLASS_NAMES}
    per_class["glioma_tumor"]["recall"] = glioma_recall
    metrics = {
        "recipe": "small-cnn", "split": split, "accuracy": accuracy, "per_class": per_class, "macro_auc": 0.8,
        "seconds": 600.0, "seed": seed, "settings": {"recipe": "small-cnn", "epochs": epochs, "seed": seed},
        "command": f"brainlab train --recipe small-cnn --seed {seed} --out runs/x-seed{seed}",
    }
    (folder / runs.EVALUATION).write_text(json.dumps(metrics))
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
    with pytest.raises(SystemExit, match=f"missing/{runs.EVALUATION} does not exist: is the run .* finished"):
        results_table.main([str(tmp_path / "missing")])
    (a / runs.EVALUATION).write_text("{half written")
    with pytest.raises(SystemExit, match="is damaged"):
        results_table.main([str(a)])


def test_the_split_is_the_runs_own_and_sample_runs_are_refused(tmp_path, capsys):
    own = [write_run(tmp_path / f"own{s}", s, 0.5, 0.1, split="unverified-test") for s in (1, 2)]
    assert results_table.main([str(f) for f in own]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| small-cnn | unverified-test | 2 |")
    sample = [write_run(tmp_path / f"sample{s}", s, 0.5, 0.1, split="sample-test") for s in (1, 2)]
    with pytest.raises(SystemExit, match="bundled sample .*sample-test.*not a result"):
        results_table.main([str(f) for f in sample])


def test_json_prints_the_table_as_a_block_of_results_json(tmp_path, capsys):
    folders = [write_run(tmp_path / f"seed{s}", s, acc, rec) for s, acc, rec in [(1, 0.50, 0.10), (2, 0.60, 0.20)]]
    assert results_table.main(["--json", *map(str, folders)]) == 0
    block = json.loads(capsys.readouterr().out)
    assert block["table"]["columns"] == list(results_table.COLUMNS)
    assert block["table"]["rows"][0][:4] == ["small-cnn", "official-test", "2", "0.550 ± 0.071"]
    # the same table as the markdown the page shows
    assert results_table.main(list(map(str, folders))) == 0
    assert capsys.readouterr().out == markdown_table(block["table"]["columns"], block["table"]["rows"]) + "\n"


def test_the_one_table_helper_aligns_escapes_and_refuses_ragged_rows():
    assert markdown_table(["run", "accuracy"], [["seed 1", "0.744"], ["a|b", 3]], align=["left", "right"]) == (
        "| run | accuracy |\n|---|---:|\n| seed 1 | 0.744 |\n| a\\|b | 3 |")
    assert markdown_table(["a"], []) == "| a |\n|---|"
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="align="):
        markdown_table(["a", "b"], [], align=["centre", "left"])


def test_docs_results_md_is_what_docs_results_json_renders_to():
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    data = course.read_results(REPO / "docs" / "results.json")
    assert page == results_page.render(data), ("docs/results.md is out of step with docs/results.json: edit the JSON, "
                                               "then run .venv/bin/python -m tools.results_page")
    tables = [block["table"] for section in data["sections"] for block in section["blocks"] if "table" in block]
    assert len(tables) == 7 and page.count("\n|---") == 7, "every table of the page comes from the data"
    assert results_page.dumps(data) + "\n" == (REPO / "docs" / "results.json").read_text(encoding="utf-8"), \
        "docs/results.json is kept as results_page.dumps writes it (a table row on one line)"


def test_the_page_is_written_again_from_the_data_and_check_finds_a_hand_edit(tmp_path):
    data, page = tmp_path / "results.json", tmp_path / "results.md"
    data.write_text((REPO / "docs" / "results.json").read_text(encoding="utf-8"), encoding="utf-8")

    def tool(*args):
        return subprocess.run([sys.executable, "-m", "tools.results_page", "--data", str(data), "--page", str(page),
                               *args], capture_output=True, text=True, cwd=REPO, timeout=120)

    assert tool("--check").returncode == 1  # no page yet
    done = tool()
    assert done.returncode == 0 and "written" in done.stdout, done.stderr
    assert page.read_text(encoding="utf-8") == (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    assert tool("--check").returncode == 0
    page.write_text(page.read_text(encoding="utf-8").replace("0.743 ± 0.015", "0.800 ± 0.015"), encoding="utf-8")
    checked = tool("--check")
    assert checked.returncode == 1 and "edit results.json, not the page" in checked.stderr
    assert tool().returncode == 0 and "0.800" not in page.read_text(encoding="utf-8")
