"""`brainlab evaluate`: a finished run scored on a labelled folder from elsewhere, as training scores it."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from conftest import brain_like, make_dataset
from test_audit_across import make_external

from brainlab import data
from brainlab.audit import audit_across
from brainlab.cli import main

NICK_FOLDERS = ("glioma", "meningioma", "notumor", "pituitary")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One quick small-cnn run on the bundled sample (64 px, 1 epoch), shared by the tests of this file."""
    out = tmp_path_factory.mktemp("run") / "small"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRAINLAB_CACHE", str(out.parent / "cache"))
        mp.delenv("BRAINLAB_DATA", raising=False)
        assert main(["train", "--recipe", "small-cnn", "--quick", "--epochs", "1", "--out", str(out)]) == 0
    return out


def nickparvar_folder(root, per_class: int = 3):
    """A folder of class folders named as in the second dataset, 80x80 grayscale JPEGs."""
    for i, folder in enumerate(NICK_FOLDERS):
        (root / folder).mkdir(parents=True)
        for j in range(per_class):
            brain_like(500 + 10 * i + j, 80).save(root / folder / f"Te-{j}.jpg", quality=90)
    return root


@pytest.mark.slow
def test_evaluate_writes_what_training_writes(finished_run, tmp_path, capsys):
    folder = nickparvar_folder(tmp_path / "external")
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(finished_run), "--data", str(folder), "--out", str(out)]) == 0
    assert "Accuracy on external-nickparvar (12 images)" in capsys.readouterr().out
    assert not (out / "metrics.json").exists()  # an evaluation's record is evaluation.json, never metrics.json
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["split"] == "external-nickparvar" and metrics["n_images"] == 12
    assert metrics["trained_on"] == "sample-train" and metrics["recipe"] == "small-cnn"
    assert metrics["settings"]["image_size"] == 64 and metrics["settings"]["channels"] == 3  # the run's own
    assert {c: v["support"] for c, v in metrics["per_class"].items()} == {
        "glioma_tumor": 3, "meningioma_tumor": 3, "no_tumor": 3, "pituitary_tumor": 3}
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 12 and predictions["correct"].mean() == pytest.approx(metrics["accuracy"])
    assert predictions["path"].str.split("/").str[0].tolist() == [f for f in NICK_FOLDERS for _ in range(3)]
    assert (predictions["true"] == predictions["path"].map(
        lambda p: {"glioma": "glioma_tumor", "meningioma": "meningioma_tumor", "notumor": "no_tumor",
                   "pituitary": "pituitary_tumor"}[p.split("/")[0]])).all()
    report = (out / "report.md").read_text()
    assert "external-nickparvar" in report and "official" not in report.split("\n")[0]
    assert {"confusion.png", "roc.png", "per_class.png", "curves.png"} <= {p.name for p in out.iterdir()}


@pytest.mark.slow
def test_evaluate_on_the_images_an_audit_left(finished_run, tmp_path):
    """A dataset folder plus the manifest of `brainlab audit --against`: only the images without a copy."""
    a = make_dataset(tmp_path / "a", per_class=3, size=64)
    b = tmp_path / "b"
    planted = make_external(b, a)
    manifest = tmp_path / "external_manifest.csv"
    audit_across(a, b).manifest.to_csv(manifest, index=False)
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(finished_run), "--data", str(b), "--manifest", str(manifest),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["split"] == "external-nickparvar" and metrics["n_images"] == 12
    paths = set(pd.read_csv(out / "predictions.csv")["path"])
    assert len(paths) == 12 and not paths & set(planted)


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    ("missing", "class folder(s) missing: pituitary"),
    ("unknown", "unknown class folder(s) tumour"),
    ("dataset-root", "is a dataset folder (Testing/ inside)"),
])
def test_bad_data_folders_are_explained(finished_run, tmp_path, capsys, damage, message):
    folder = nickparvar_folder(tmp_path / "external")
    if damage == "missing":
        shutil.rmtree(folder / "pituitary")
    elif damage == "unknown":
        (folder / "tumour").mkdir()
        brain_like(1, 32).save(folder / "tumour" / "x.jpg")
    else:
        folder = tmp_path / "root"
        nickparvar_folder(folder / "Testing")
    assert main(["evaluate", "--run", str(finished_run), "--data", str(folder), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "evaluation.json").exists()


@pytest.mark.slow
def test_a_run_made_before_evaluation_json_is_still_read(finished_run, tmp_path):
    """A run folder from before the evaluation record had its own name keeps it in metrics.json: still read."""
    old = tmp_path / "old"
    shutil.copytree(finished_run, old)
    (old / "evaluation.json").rename(old / "metrics.json")
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(old), "--data", str(nickparvar_folder(tmp_path / "external")),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["trained_on"] == "sample-train" and metrics["recipe"] == "small-cnn"  # from the old record
    assert not (out / "metrics.json").exists() and not (old / "evaluation.json").exists()  # nothing renamed


def test_a_run_folder_without_a_model_is_explained(tmp_path, capsys):
    (tmp_path / "run" / "run").mkdir(parents=True)
    folder = nickparvar_folder(tmp_path / "external")
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--data", str(folder), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "holds no trained model (looked for run/best.keras)" in err and "brainlab train" in err


def test_an_official_name_is_refused(tmp_path, capsys):
    (tmp_path / "run" / "run").mkdir(parents=True)
    (tmp_path / "run" / "run" / "best.keras").write_bytes(b"")
    folder = nickparvar_folder(tmp_path / "external")
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--data", str(folder), "--name", "official-test",
                 "--out", str(tmp_path / "o")]) == 2
    assert "'official' names the paper's own Testing split" in capsys.readouterr().err


def test_load_labelled_reads_either_naming(tmp_path):
    nick = data.load_labelled(nickparvar_folder(tmp_path / "n"), image_size=16, channels=1, progress=False)
    plain = data.load_labelled(make_dataset(tmp_path / "p", per_class=2) / "Testing", image_size=16, progress=False)
    assert nick.split == "external-nickparvar" and nick.class_counts() == dict.fromkeys(data.CLASS_NAMES, 3)
    assert nick.images.shape == (12, 16, 16, 1)
    assert plain.split == "external-sartaj" and plain.class_counts() == dict.fromkeys(data.CLASS_NAMES, 2)
