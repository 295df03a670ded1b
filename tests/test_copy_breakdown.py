"""tools/copy_breakdown.py: official-test results on images with and without a copy in Training."""
from __future__ import annotations

import pandas as pd
import pytest

from tools import copy_breakdown

# Six test images: three with a copy in Training, three without.
FILES = pd.DataFrame({
    "path": [f"Testing/{c}/{i}.jpg" for i, c in enumerate(
        ["glioma_tumor", "glioma_tumor", "no_tumor", "glioma_tumor", "glioma_tumor", "pituitary_tumor"])]
    + ["Training/glioma_tumor/x.jpg"],
    "cross_split": ["True", "True", "True", "False", "False", "False", "True"],
})


def predictions(predicted):
    true = [p.split("/")[1] for p in FILES.path[:6]]
    return pd.DataFrame({"path": FILES.path[:6], "true": true, "predicted": predicted})


def test_breakdown_counts_by_hand():
    parts = copy_breakdown.breakdown(predictions(
        ["glioma_tumor", "meningioma_tumor", "no_tumor", "no_tumor", "glioma_tumor", "pituitary_tumor"]), FILES)
    copied, novel = parts["copy in Training"], parts["no copy"]
    assert copied["n"] == 3 and copied["accuracy"] == pytest.approx(2 / 3)
    assert copied["recall"]["glioma_tumor"] == pytest.approx(0.5) and copied["recall"]["no_tumor"] == 1.0
    assert copied["recall"]["pituitary_tumor"] is None  # no such image in this part
    assert novel["n"] == 3 and novel["accuracy"] == pytest.approx(2 / 3)
    assert novel["per_class_n"] == {"glioma_tumor": 2, "meningioma_tumor": 0, "no_tumor": 0, "pituitary_tumor": 1}


def test_table_and_command_line(tmp_path, capsys):
    files_csv = tmp_path / "files.csv"
    FILES.to_csv(files_csv, index=False)
    for seed, predicted in ((1, ["glioma_tumor"] * 6), (2, ["no_tumor"] * 6)):
        (tmp_path / f"run-seed{seed}").mkdir()
        predictions(predicted).to_csv(tmp_path / f"run-seed{seed}" / "predictions.csv", index=False)
    assert copy_breakdown.main([str(files_csv), str(tmp_path / "run-seed1"), str(tmp_path / "run-seed2")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | test images | n | accuracy | recall glioma")
    mean_rows = [line for line in lines if line.startswith("| mean ± std |")]
    assert len(mean_rows) == 2
    # copies: seed 1 gets the 2 gliomas (2/3), seed 2 the no_tumor (1/3): mean 0.5, std 0.236
    assert "| copy in Training | 3 (2, 0, 1, 0) | 0.500 ± 0.236 |" in mean_rows[0]


def test_predictions_from_another_dataset_are_refused(tmp_path):
    other = predictions(["glioma_tumor"] * 6).assign(path=lambda f: "elsewhere/" + f.path)
    with pytest.raises(ValueError, match="6 predicted images are not in the audit"):
        copy_breakdown.breakdown(other, FILES)
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="files.csv does not exist: run `brainlab audit"):
        copy_breakdown.main([str(tmp_path / "files.csv"), str(tmp_path / "run")])
    FILES.to_csv(tmp_path / "files.csv", index=False)
    with pytest.raises(SystemExit, match="predictions.csv does not exist"):
        copy_breakdown.main([str(tmp_path / "files.csv"), str(tmp_path / "run")])


def test_runs_on_a_manifest_split_are_refused(tmp_path, capsys):
    """The breakdown is about the Testing folder: a clean-split run's test images are another set."""
    import json

    FILES.to_csv(tmp_path / "files.csv", index=False)
    # the clean run is from before the evaluation record had its own name: its metrics.json is read the same
    for name, split, record in (("own", "unverified-test", "evaluation.json"), ("clean", "clean-test", "metrics.json")):
        (tmp_path / name).mkdir()
        predictions(["glioma_tumor"] * 6).to_csv(tmp_path / name / "predictions.csv", index=False)
        (tmp_path / name / record).write_text(json.dumps({"split": split}))
    assert copy_breakdown.main([str(tmp_path / "files.csv"), str(tmp_path / "own")]) == 0
    assert "| own | copy in Training | 3 (2, 0, 1, 0) | 0.667 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="evaluated on clean-test, not on the Testing folder"):
        copy_breakdown.main([str(tmp_path / "files.csv"), str(tmp_path / "own"), str(tmp_path / "clean")])
