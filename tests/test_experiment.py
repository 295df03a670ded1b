"""`brainlab reproduce` and `brainlab train`: the whole pipeline on the bundled sample."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from brainlab import train
from brainlab.cli import main

LOADED = time.time()  # no run of this module can take longer than the time since
REPORT_FILES = {"evaluation.json", "predictions.csv", "report.md", "curves.png", "confusion.png", "roc.png",
                "per_class.png"}


def _check_outputs(out, recipe, epochs):
    assert REPORT_FILES <= {p.name for p in out.iterdir()}
    assert not (out / "metrics.json").exists()  # that name is the training record's (in run/), not the evaluation's
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["split"] == "sample-test" and metrics["recipe"] == recipe and metrics["epochs"] == epochs
    assert metrics["dtype_policy"] == keras.config.dtype_policy().name  # float32 unless a test sets another
    for name in ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"):
        entry = metrics["per_class"][name]
        assert entry["support"] == 10 and set(entry) >= {"precision", "recall", "f1-score", "auc"}
    report = (out / "report.md").read_text()
    assert "sample-test" in report and "Side by side with the paper" in report and "![Confusion matrix]" in report
    assert f"- Keras dtype policy: {metrics['dtype_policy']}" in report
    assert "0.510" in report  # the paper's accuracy beside ours
    predictions = pd.read_csv(out / "predictions.csv")
    right = (predictions["true"] == predictions["predicted"]).sum()
    assert len(predictions) == 40 and metrics["accuracy"] == pytest.approx(right / 40)
    assert sum(metrics["confusion_matrix"][i][i] for i in range(4)) == right
    assert (predictions.filter(like="p(").idxmax(axis=1) == "p(" + predictions["predicted"] + ")").all()
    # the run's time covers its training (history.csv) and nothing before this test module was loaded
    history = pd.concat(pd.read_csv(p) for p in out.glob("run/**/history.csv"))
    assert history["seconds"].sum() <= metrics["seconds"] <= time.time() - LOADED
    assert predictions["path"].str.startswith("Testing/").all()
    assert predictions.filter(like="p(").sum(axis=1).round(4).eq(1).all()
    return metrics


@pytest.mark.slow
def test_reproduce_quick_writes_every_file(tmp_path, capsys):
    """The paper's setting (augmentation on) from a weights file: every file, every number."""
    import keras

    start = tmp_path / "start.weights.h5"  # a real start the test writes, as the ImageNet download would be
    keras.applications.ResNet50(include_top=False, weights=None, input_shape=(128, 128, 3)).save_weights(start)
    out = tmp_path / "paper"
    assert main(["reproduce", "--quick", "--weights", str(start), "--out", str(out)]) == 0
    metrics = _check_outputs(out, "paper", 2)
    assert metrics["settings"]["preprocessing"] == "rescale" and metrics["settings"]["augmentation"] == "standard"
    assert {"history.csv", "best.keras", "config.json"} <= {p.name for p in (out / "run").iterdir()}
    assert "Test accuracy on sample-test" in capsys.readouterr().out
    assert not json.loads((out / "run" / "config.json").read_text())["cached_features"]  # augmentation: full path
    report = (out / "report.md").read_text()
    assert "- augmentation: standard, crop: none" in report
    assert "- not stated in the paper, so brainlab's choice: epochs: 20; batch size: 32;" in report
    assert "- the paper's setting (section III.D): no: weights " in report  # a weights file, not ImageNet's


# Anything that reads as a measured number: "accuracy 0.393", "accuracy: 0.39", '"auc": 0.65', "recall=0.2"
METRIC_VALUE = re.compile(r"(accuracy|recall|precision|f1|auc)\W{0,4}\s*[0-9.]*[0-9]", flags=re.I)


@pytest.mark.slow
def test_a_random_start_of_the_paper_recipe_times_it_and_shows_no_number(tmp_path, capsys):
    out = tmp_path / "paper"
    assert main(["reproduce", "--quick", "--weights", "none", "--augmentation", "none", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Timing only: no ImageNet weights" in printed.out
    written = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    assert not {"predictions.csv", "confusion.png", "roc.png", "per_class.png", "curves.png"} & set(written)
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["timing_only"] is True and metrics["seconds"] > 0 and metrics["n_images"] == 40
    assert not {"accuracy", "per_class", "macro_auc", "confusion_matrix", "split"} & set(metrics)
    assert metrics["departures_from_paper"][0].startswith("augmentation none: not the paper's setting")
    history = pd.read_csv(out / "run" / "history.csv")
    assert not [c for c in history.columns if "acc" in c]  # not even tracked while training
    texts = [printed.out, printed.err] + [p.read_text() for name, p in written.items()
                                           if name.endswith((".json", ".md", ".csv"))]
    found = [m.group(0) for text in texts for m in METRIC_VALUE.finditer(text)]
    assert not found, f"a random start's numbers were shown: {found}"
    # and it cannot be scored later, under any name
    assert main(["evaluate", "--run", str(out), "--data", str(tmp_path), "--out", str(tmp_path / "ev")]) == 1
    assert "timing-only run" in capsys.readouterr().err


@pytest.mark.slow
def test_train_small_cnn_quick(tmp_path):
    out = tmp_path / "cnn"
    assert main(["train", "--recipe", "small-cnn", "--quick", "--epochs", "3", "--out", str(out)]) == 0
    metrics = _check_outputs(out, "small-cnn", 3)
    assert metrics["settings"]["image_size"] == 64 and metrics["settings"]["class_weight"] == "balanced"
    assert metrics["dtype_policy"] == ("mixed_float16" if train.gpu_count() else "float32")  # bfloat16 on a CPU: only
    # for recipes measured in it; mixed_float16 on a GPU


@pytest.mark.slow
def test_train_residual_cnn_quick(tmp_path):
    out = tmp_path / "res"
    assert main(["train", "--recipe", "residual-cnn", "--quick", "--epochs", "1", "--out", str(out)]) == 0
    metrics = _check_outputs(out, "residual-cnn", 1)
    # measured to keep its accuracy in bfloat16: trained in it on a CPU that computes in it natively
    assert metrics["dtype_policy"] == (
        "mixed_float16" if train.gpu_count() else "mixed_bfloat16" if train.cpu_has_bfloat16() else "float32")
    assert metrics["settings"]["channels"] == 1 and metrics["settings"]["lr_schedule"] == "cosine"
    assert "- learning rate: 0.001, cosine decay to 0\n" in (out / "report.md").read_text()
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["model"] == "residual_cnn"
    schedule = config["optimizer"]["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    # 1 epoch of 5 batches: the sample's 160 Training images are 136 to train on and 24 for validation
    from brainlab import data

    splits = data.load_splits(data.sample_dir(), image_size=64, channels=1, progress=False)
    assert [len(s) for s in splits] == [136, 24, 40]
    assert schedule["config"]["decay_steps"] == 5 == -(-136 // 32)


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
    with pytest.raises(SystemExit) as refused:  # a path option that names nothing: argparse's exit status 2
        main(["reproduce", "--quick", "--weights", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "o")])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "nope.h5 does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "evaluation.json").exists()


def test_unknown_recipe_is_refused():
    from brainlab import experiment
    from brainlab.errors import BrainlabError

    with pytest.raises(BrainlabError, match="choose one of paper, improved, small-cnn, residual-cnn"):
        experiment.default_settings("vgg")


@pytest.mark.slow
def test_a_run_on_your_own_folder_is_not_called_official(tmp_path):
    """Only a verified copy of the dataset is "official": a run on another folder says so everywhere."""
    from conftest import make_dataset

    mine = make_dataset(tmp_path / "mine", per_class=8)
    out = tmp_path / "run"
    assert main(["train", "--recipe", "small-cnn", "--data", str(mine), "--epochs", "1", "--image-size", "32",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["split"] == "unverified-test" and metrics["n_images"] == 32
    report = (out / "report.md").read_text()
    assert report.splitlines()[0].endswith("accuracy on unverified-test")
    assert "- split: **unverified-test** (32 images) (a folder that is not a verified copy of the dataset" in report


# --------------------------------------------------------------------------- settings: honoured or refused

REFUSED = [  # (recipe, setting, value, what the message says)
    ("improved", "preprocessing", "rescale", "the improved recipe always uses ImageNet preprocessing"),
    ("improved", "lr_schedule", "cosine", "the improved recipe trains in two stages"),
    ("small-cnn", "weights", "imagenet", "the small-cnn recipe trains from scratch: --weights cannot be used"),
    ("small-cnn", "preprocessing", "imagenet", "the small-cnn recipe rescales pixels to 0..1"),
    ("residual-cnn", "weights", "imagenet", "the residual-cnn recipe trains from scratch: --weights cannot be used"),
    ("residual-cnn", "weights", "model.weights.h5", "the residual-cnn recipe trains from scratch"),
    ("residual-cnn", "preprocessing", "rescale", "the residual-cnn recipe standardises every scan"),
    ("small-cnn", "augmentation", "source-shift", "the small-cnn recipe uses the standard augmentation only"),
    ("improved", "augmentation", "source-shift", "the improved recipe uses the standard augmentation only"),
    ("paper", "augmentation", "source-shift", "the paper recipe applies the standard augmentation, as the paper does"),
    ("residual-cnn", "augmentation", "none", "the residual-cnn recipe trains with an augmentation"),
]


@pytest.mark.parametrize(("recipe", "key", "value", "message"), REFUSED)
def test_a_setting_the_recipe_cannot_use_is_refused(recipe, key, value, message):
    from brainlab import experiment
    from brainlab.errors import BrainlabError

    with pytest.raises(BrainlabError, match=re.escape(message)) as refused:
        experiment.default_settings(recipe, quick=False, **{key: value})
    assert f"{key}={value!r} was given" in str(refused.value)
    settings = experiment.default_settings(recipe, quick=False)
    setattr(settings, key, value)  # Settings made by hand: build_model refuses them too
    with pytest.raises(BrainlabError, match=re.escape(message)):
        experiment.build_model(settings)


def test_the_value_a_recipe_uses_may_be_given():
    from brainlab import experiment

    assert experiment.default_settings("residual-cnn", weights="none").weights == "none"
    assert experiment.default_settings("small-cnn", preprocessing="rescale").preprocessing == "rescale"
    improved = experiment.default_settings("improved", preprocessing="imagenet", lr_schedule="constant")
    assert (improved.preprocessing, improved.lr_schedule) == ("imagenet", "constant")


def test_the_command_line_prints_a_refusal_without_a_traceback(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--recipe", "residual-cnn", "--weights", "imagenet", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainlab train: the residual-cnn recipe trains from scratch: --weights cannot be used "
                          "with it") and "Traceback" not in err
    assert not out.exists()  # refused before anything was written
    proc = subprocess.run([sys.executable, "-m", "brainlab", "train", "--recipe", "small-cnn", "--preprocessing",
                           "imagenet", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the small-cnn recipe rescales pixels to 0..1 inside its model: --preprocessing cannot" in proc.stderr


@pytest.mark.slow
def test_weights_and_preprocessing_are_honoured_by_the_resnet50_recipes(tmp_path):
    import keras

    from brainlab import experiment

    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights_file = tmp_path / "start.weights.h5"
    reference.save_weights(weights_file)
    expected = reference.get_layer("conv1_conv").get_weights()[0]
    for recipe in ("paper", "improved"):
        model = experiment.build_model(experiment.default_settings(recipe, image_size=32, weights=str(weights_file)))
        np.testing.assert_array_equal(model.get_layer("conv1_conv").get_weights()[0], expected)
        random = experiment.build_model(experiment.default_settings(recipe, image_size=32, weights="none"))
        assert not np.array_equal(random.get_layer("conv1_conv").get_weights()[0], expected)
    kinds = {p: type(experiment.build_model(experiment.default_settings(
        "paper", image_size=32, weights="none", preprocessing=p)).get_layer("preprocess")).__name__
        for p in ("imagenet", "rescale")}
    assert kinds == {"imagenet": "ResNetPreprocess", "rescale": "Rescaling"}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["paper", "improved", "small-cnn", "residual-cnn"])
def test_the_learning_rate_and_its_schedule_reach_the_optimizer(recipe, tmp_path):
    import tensorflow as tf

    from brainlab import experiment

    schedule = "constant" if recipe == "improved" else "cosine"
    s = experiment.default_settings(recipe, quick=True, image_size=32, epochs=2, learning_rate=3e-4,
                                    weights="none", lr_schedule=schedule)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, 32, 32, s.channels)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 4)).batch(8)
    model = experiment.build_model(s)
    experiment.train_model(s, model, data, data, tmp_path, steps_per_epoch=2, progress=False)
    if recipe == "improved":
        rates = [json.loads((tmp_path / stage / "config.json").read_text())["optimizer"]["learning_rate"]
                 for stage in ("1_head", "2_fine_tune")]
        assert rates == [pytest.approx(3e-4), pytest.approx(experiment.FINE_TUNE_LEARNING_RATE)]
        assert experiment.effective_settings(s)["fine_tune_learning_rate"] == experiment.FINE_TUNE_LEARNING_RATE
    else:
        rate = json.loads((tmp_path / "config.json").read_text())["optimizer"]["learning_rate"]
        assert rate["class_name"] == "CosineDecay"
        assert rate["config"]["initial_learning_rate"] == pytest.approx(3e-4)
        assert rate["config"]["decay_steps"] == 4  # 2 epochs of 2 steps


@pytest.mark.slow
def test_the_cli_trains_under_the_gpu_policy_it_is_given(tmp_path, monkeypatch):
    """`brainlab train` chooses the dtype policy as the notebooks do: BRAINLAB_PRECISION here stands in for a GPU."""
    from conftest import make_dataset

    monkeypatch.setenv("BRAINLAB_PRECISION", "mixed_bfloat16")
    mine, out = make_dataset(tmp_path / "mine", per_class=8), tmp_path / "run"
    try:
        assert main(["train", "--recipe", "small-cnn", "--data", str(mine), "--epochs", "1", "--image-size", "32",
                     "--out", str(out)]) == 0
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["dtype_policy"] == "mixed_bfloat16"
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["device"]["dtype_policy"] == "mixed_bfloat16"
    assert "- Keras dtype policy: mixed_bfloat16" in (out / "report.md").read_text()
