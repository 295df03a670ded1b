"""brainlab.runs.RunFolder: one owner for where a run's files lie and for reading them back, and the only
place their names are spelled; train.fit's settings declared once, in FitOptions."""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from brainlab import runs

REPO = Path(__file__).resolve().parents[1]
# Literals outside runs.py that are a run file's name only by coincidence: (file, name) and why.
NOT_RUN_FILES = {("brainlab/models.py", "config.json"): "the config.json inside a .keras archive: Keras's own file"}


def spelled_names(root: Path) -> list[str]:
    """``file:line 'literal'`` for every string literal in brainlab/ and tools/ (runs.py aside) that is a run file's
    name or a path made of such names. Prose (a literal with a space in it: messages, docstrings) may name them."""
    found = []
    for path in sorted([*(root / "brainlab").rglob("*.py"), *(root / "tools").rglob("*.py")]):
        where = path.relative_to(root).as_posix()
        if where == "brainlab/runs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) \
                    or any(c.isspace() for c in node.value):
                continue
            named = set(node.value.split("/")) & set(runs.NAMES)
            if any((where, name) not in NOT_RUN_FILES for name in named):
                found.append((where, node.lineno, node.value))
    return [f"{where}:{line} {value!r}" for where, line, value in sorted(found)]


# --------------------------------------------------------------------------- the names have one owner
def test_run_file_names_are_spelled_in_runs_only():
    found = spelled_names(REPO)
    assert not found, ("spell these through brainlab.runs (RunFolder(...).history_path, .evaluation(), "
                       "runs.EVALUATION ...):\n  " + "\n  ".join(found))


def test_the_check_finds_a_name_in_code_and_lets_prose_name_it(tmp_path):
    (tmp_path / "brainlab").mkdir()
    (tmp_path / "tools" / "deep").mkdir(parents=True)
    (tmp_path / "brainlab" / "runs.py").write_text('CONFIG = "config.json"\n')
    (tmp_path / "brainlab" / "models.py").write_text('archive.read("config.json")\n')  # Keras's own, allowed
    (tmp_path / "tools" / "deep" / "t.py").write_text(
        '"""Reads metrics.json."""\n'
        'open(f"{out}/run/2_fine_tune/best.keras")\n'
        'print("no metrics.json here: prose")\n'
        'path = out / "evaluation.json"\n')
    assert spelled_names(tmp_path) == ["tools/deep/t.py:2 '/run/2_fine_tune/best.keras'",
                                       "tools/deep/t.py:4 'evaluation.json'"]


def test_the_names_are_distinct_and_the_evaluation_is_not_the_training_record():
    assert len(set(runs.NAMES)) == len(runs.NAMES)
    assert runs.EVALUATION == "evaluation.json" and runs.METRICS == "metrics.json"


# --------------------------------------------------------------------------- the layouts
def fake_training(folder: Path, finished: bool = True) -> Path:
    """A fit run folder's files (made-up contents: nothing here loads a model)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"epochs": 2, "versions": {"brainlab": "test"}}))
    (folder / "history.csv").write_text("epoch,val_loss,val_accuracy\n0,0.9,NA\n1,0.7,0.5\n")
    (folder / "best.keras").write_bytes(b"kept")
    if finished:
        (folder / "last.keras").write_bytes(b"last")
        (folder / "metrics.json").write_text(json.dumps({"best_epoch": 1, "monitor": "val_loss"}))
    return folder


def fake_evaluation(folder: Path, name: str = "evaluation.json", split: str = "official-test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"split": split, "accuracy": 0.75}))
    (folder / "predictions.csv").write_text("path,true,predicted\nTesting/a.jpg,no_tumor,no_tumor\n"
                                            "Testing/b.jpg,glioma_tumor,no_tumor\n")
    return folder


def test_a_training_folder(tmp_path):
    folder = runs.RunFolder(str(fake_training(tmp_path / "fit", finished=False)))
    assert folder.path == tmp_path / "fit" and str(folder) == os.fspath(folder) == str(tmp_path / "fit")
    assert (folder.config_path, folder.history_path, folder.best_path, folder.last_path, folder.record_path,
            folder.backup_path, folder.lock_path) == tuple(tmp_path / "fit" / name for name in (
                "config.json", "history.csv", "best.keras", "last.keras", "metrics.json", "backup", "brainlab.lock"))
    assert folder.config() == {"epochs": 2, "versions": {"brainlab": "test"}}
    rows = folder.history()
    assert [row["epoch"] for row in rows] == [0, 1] and rows[1] == {"epoch": 1, "val_loss": 0.7, "val_accuracy": 0.5}
    assert pd.isna(rows[0]["val_accuracy"])  # "NA": a value Keras did not log
    assert not folder.finished() and folder.training_record() is None
    assert folder.best_model_path() == tmp_path / "fit" / "best.keras"
    assert not folder.is_two_stage() and folder.last_stage() == folder

    (tmp_path / "fit" / "metrics.json").write_text(json.dumps({"best_epoch": 1}))  # the last file of a training
    assert folder.finished() and folder.training_record() == {"best_epoch": 1}
    assert folder.evaluation() is None and folder.evaluation_file() is None  # a training's record is no evaluation
    assert runs.is_run_folder(folder.path)


def test_a_two_stage_training(tmp_path):
    folder = runs.RunFolder(tmp_path / "two")
    assert (folder.head.path, folder.fine_tune.path) == (tmp_path / "two" / "1_head", tmp_path / "two" / "2_fine_tune")
    fake_training(folder.head.path)
    assert folder.is_two_stage() and folder.last_stage() == folder.fine_tune
    assert not folder.finished() and folder.best_model_path() is None  # stage 1's model is not the result
    fake_training(folder.fine_tune.path)
    assert folder.finished() and folder.best_model_path() == tmp_path / "two" / "2_fine_tune" / "best.keras"


def test_an_experiment_folder(tmp_path):
    out = runs.RunFolder(tmp_path / "out")
    fake_training(tmp_path / "out" / "run")
    assert out.training.path == tmp_path / "out" / "run" and out.training.finished()
    assert not out.finished()  # trained, not yet evaluated
    assert out.best_model_path() == tmp_path / "out" / "run" / "best.keras"
    assert out.evaluation() is None and out.predictions() is None
    fake_evaluation(tmp_path / "out")
    assert out.finished() and out.evaluation() == {"split": "official-test", "accuracy": 0.75}
    assert out.evaluation_file() == out.evaluation_path == tmp_path / "out" / "evaluation.json"
    assert out.predictions().to_dict("list") == {"path": ["Testing/a.jpg", "Testing/b.jpg"],
                                                 "true": ["no_tumor", "glioma_tumor"],
                                                 "predicted": ["no_tumor", "no_tumor"]}
    assert (out.report_path, out.predictions_path, out.audit_path) == (
        tmp_path / "out" / "report.md", tmp_path / "out" / "predictions.csv", tmp_path / "out" / "audit")
    assert out.external.evaluation() is None
    fake_evaluation(tmp_path / "out" / "external", split="external-x")
    assert out.external.evaluation()["split"] == "external-x" and out.external.finished()
    assert runs.is_run_folder(out.path) and not runs.is_run_folder(out.external.path)
    # the improved recipe's training is two stages inside run/
    two = runs.RunFolder(tmp_path / "improved")
    fake_training(tmp_path / "improved" / "run" / "1_head")
    fake_training(tmp_path / "improved" / "run" / "2_fine_tune")
    assert two.best_model_path() == tmp_path / "improved" / "run" / "2_fine_tune" / "best.keras"


def test_a_folder_from_before_evaluation_json_reads_its_metrics_json(tmp_path):
    old = runs.RunFolder(fake_evaluation(tmp_path / "old", name="metrics.json"))
    fake_training(tmp_path / "old" / "run")
    assert old.evaluation_file() == tmp_path / "old" / "metrics.json"
    assert old.evaluation() == {"split": "official-test", "accuracy": 0.75} and old.finished()
    assert old.evaluation_path == tmp_path / "old" / "evaluation.json"  # what a new evaluation writes
    (tmp_path / "old" / "evaluation.json").write_text(json.dumps({"split": "official-test", "accuracy": 0.5}))
    assert old.evaluation()["accuracy"] == 0.5  # the new name wins once it is there


def test_a_damaged_record_is_named(tmp_path):
    folder = runs.RunFolder(fake_evaluation(tmp_path / "out"))
    (tmp_path / "out" / "evaluation.json").write_text('{"split": "offi')
    with pytest.raises(runs.RunFolderError, match=r"evaluation\.json is damaged .*rm -r"):
        folder.evaluation()


# --------------------------------------------------------------------------- fit's settings, declared once
def test_fit_takes_its_keywords_and_defaults_from_fit_options():
    import dataclasses
    import inspect

    from brainlab import train

    keywords = {name: p.default for name, p in inspect.signature(train.fit).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    defaults = {f.name: f.default for f in dataclasses.fields(train.FitOptions)}
    assert keywords == defaults
    assert "inspect.signature(fit" not in Path(train.__file__).read_text()
    with pytest.raises(dataclasses.FrozenInstanceError):
        train.FitOptions().seed = 1
