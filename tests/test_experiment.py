"""`brainlab reproduce` and `brainlab train`: the whole pipeline on the bundled sample."""
from __future__ import annotations

import json

import keras
import pandas as pd
import pytest

from brainlab.cli import main

REPORT_FILES = {"metrics.json", "predictions.csv", "report.md", "curves.png", "confusion.png", "roc.png", "per_class.png"}


def _check_outputs(out, recipe, epochs):
    assert REPORT_FILES <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "sample-test" and metrics["recipe"] == recipe and metrics["epochs"] == epochs
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["seconds"] > 0
    assert metrics["dtype_policy"] == keras.config.dtype_policy().name  # float32 unless a test sets another
    for name in ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"):
        entry = metrics["per_class"][name]
        assert entry["support"] == 10 and set(entry) >= {"precision", "recall", "f1-score", "auc"}
    report = (out / "report.md").read_text()
    assert "sample-test" in report and "Side by side with the paper" in report and "![Confusion matrix]" in report
    assert f"- Keras dtype policy: {metrics['dtype_policy']}" in report
    assert "0.510" in report  # the paper's accuracy beside ours
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 40 and predictions["correct"].mean() == pytest.approx(metrics["accuracy"])
    assert predictions["path"].str.startswith("Testing/").all()
    assert predictions.filter(like="p(").sum(axis=1).round(4).eq(1).all()
    return metrics


@pytest.mark.slow
def test_reproduce_quick_writes_every_file(tmp_path, capsys):
    out = tmp_path / "paper"
    assert main(["reproduce", "--quick", "--weights", "none", "--out", str(out)]) == 0
    metrics = _check_outputs(out, "paper", 2)
    assert metrics["settings"]["preprocessing"] == "rescale" and metrics["settings"]["weights"] == "none"
    assert {"history.csv", "best.keras", "config.json"} <= {p.name for p in (out / "run").iterdir()}
    assert "Test accuracy on sample-test" in capsys.readouterr().out


@pytest.mark.slow
def test_train_small_cnn_quick(tmp_path):
    out = tmp_path / "cnn"
    assert main(["train", "--recipe", "small-cnn", "--quick", "--epochs", "3", "--out", str(out)]) == 0
    metrics = _check_outputs(out, "small-cnn", 3)
    assert metrics["settings"]["image_size"] == 64 and metrics["settings"]["class_weight"] == "balanced"


@pytest.mark.slow
def test_train_residual_cnn_quick(tmp_path):
    out = tmp_path / "res"
    assert main(["train", "--recipe", "residual-cnn", "--quick", "--epochs", "1", "--out", str(out)]) == 0
    metrics = _check_outputs(out, "residual-cnn", 1)
    assert metrics["settings"]["channels"] == 1 and metrics["settings"]["lr_schedule"] == "cosine"
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["model"] == "residual_cnn"
    schedule = config["optimizer"]["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 5  # 1 epoch of 5 batches: 160 sample training images / 32


def test_learning_rate_schedules():
    from brainlab import experiment
    from brainlab.errors import BrainlabError

    constant = experiment.default_settings("small-cnn", quick=False)
    assert experiment.learning_rate(constant, steps_per_epoch=10) == 1e-3
    cosine = experiment.default_settings("residual-cnn", quick=False, epochs=4)
    schedule = experiment.learning_rate(cosine, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(20)) == pytest.approx(0.5e-3)  # half way: cos(pi/2)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-9)
    cosine.lr_schedule = "step"
    with pytest.raises(BrainlabError, match="choose constant or cosine"):
        experiment.learning_rate(cosine, steps_per_epoch=10)


def test_missing_weights_file_stops_with_a_message(tmp_path, capsys):
    code = main(["reproduce", "--quick", "--weights", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "nope.h5 does not exist" in err and "weights=None" in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_unknown_recipe_is_refused():
    from brainlab import experiment
    from brainlab.errors import BrainlabError

    with pytest.raises(BrainlabError, match="choose one of paper, improved, small-cnn, residual-cnn"):
        experiment.default_settings("vgg")
