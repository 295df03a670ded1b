"""tools/compare_variants.py: variants chosen on validation, scored on official-test (by copy) and external."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tools import compare_variants

PATHS = [f"Testing/{c}/{i}.jpg" for i, c in enumerate(["glioma_tumor", "glioma_tumor", "no_tumor", "glioma_tumor"])]
FILES = pd.DataFrame({"path": PATHS, "cross_split": ["True", "True", "False", "False"]})


def make_run(folder: Path, predicted, val, external=None, seed=1, crop="none", record="evaluation.json") -> Path:
    """A finished official-split run: history with its kept epoch, predictions, its evaluation (and the external
    one), kept in ``record`` (metrics.json: a run from before the evaluation record had its own name)."""
    (folder / "run").mkdir(parents=True)
    true = [p.split("/")[1] for p in PATHS]
    pd.DataFrame({"path": PATHS, "true": true, "predicted": predicted}).to_csv(folder / "predictions.csv", index=False)
    # epoch 1 has the lowest validation loss: its accuracy is the one kept, not the higher one of epoch 2
    pd.DataFrame({"epoch": [0, 1, 2], "val_loss": [1.0, 0.5, 0.7], "val_accuracy": [0.5, val, 0.99]}).to_csv(
        folder / "run" / "history.csv", index=False)
    accuracy = sum(t == p for t, p in zip(true, predicted)) / len(true)
    metrics = {"split": "official-test", "accuracy": accuracy, "settings": {"seed": seed, "crop": crop}}
    (folder / record).write_text(json.dumps(metrics))
    if external is not None:
        (folder / "external").mkdir()
        (folder / "external" / record).write_text(json.dumps(
            {"split": "external-x", "accuracy": external, "per_class": {"glioma_tumor": {"recall": external / 2}}}))
    return folder


def test_table_choice_and_refusals(tmp_path, capsys):
    files_csv = tmp_path / "files.csv"
    FILES.to_csv(files_csv, index=False)
    right = ["glioma_tumor", "glioma_tumor", "no_tumor", "glioma_tumor"]
    a = [make_run(tmp_path / "a1", right, val=0.80, external=0.9, seed=1),
         make_run(tmp_path / "a2", right, val=0.80, external=0.9, seed=2, record="metrics.json")]
    b = [make_run(tmp_path / f"b{s}", ["no_tumor"] * 4, val=0.90, seed=s, crop="head") for s in (1, 2)]
    assert compare_variants.main([str(files_csv), "--variant", "A", *map(str, a), "--variant", "B", *map(str, b)]) == 0
    out = capsys.readouterr().out
    assert "| A | 2 | 0.800 ± 0.000 | 1.000 ± 0.000 | 1.000 ± 0.000 | 1.000 ± 0.000 | 1.000 ± 0.000 | 0.900 ± 0.000 | " \
           "0.450 ± 0.000 |" in out
    # B: right only on the no_tumor image (no copy): 1/4 overall, 0 with a copy, 1/2 without; no external runs
    assert "| B | 2 | 0.900 ± 0.000 | 0.250 ± 0.000 | 0.000 ± 0.000 | 0.500 ± 0.000 | 0.000 ± 0.000 | n/a | n/a |" in out
    assert out.strip().endswith("Chosen on validation accuracy: B")  # validation decides, not the test columns

    mixed = make_run(tmp_path / "c", right, val=0.8, seed=3, crop="head")
    with pytest.raises(SystemExit, match="differ in more than the seed"):
        compare_variants.main([str(files_csv), "--variant", "A", str(a[0]), str(mixed)])
    clean = make_run(tmp_path / "d", right, val=0.8)
    metrics = json.loads((clean / "evaluation.json").read_text())
    (clean / "evaluation.json").write_text(json.dumps({**metrics, "split": "clean-test"}))
    with pytest.raises(SystemExit, match="evaluated on clean-test"):
        compare_variants.main([str(files_csv), "--variant", "D", str(clean)])


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_a_run_without_a_readable_evaluation_is_named_with_its_variant(tmp_path, damage):
    files_csv = tmp_path / "files.csv"
    FILES.to_csv(files_csv, index=False)
    right = ["glioma_tumor", "glioma_tumor", "no_tumor", "glioma_tumor"]
    good, bad = make_run(tmp_path / "good", right, val=0.8), make_run(tmp_path / "bad", right, val=0.8, seed=2)
    if damage == "missing":
        (bad / "evaluation.json").unlink()
        problem = f"--variant E: {bad / 'evaluation.json'} does not exist: is the run in {bad} finished?"
    else:
        (bad / "evaluation.json").write_text("{not json")
        problem = f"--variant E: {bad / 'evaluation.json'} is damaged"
    with pytest.raises(SystemExit) as refused:
        compare_variants.main([str(files_csv), "--variant", "E", str(good), str(bad)])
    assert str(refused.value.code).startswith(problem), refused.value.code
