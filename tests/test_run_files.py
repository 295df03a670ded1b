"""A damaged or foreign file in a run folder is named as such by `brainlab evaluate`, never a traceback."""
from __future__ import annotations

import json
import zipfile

import keras
import pytest

from brainlab.cli import main
from conftest import make_dataset


def tiny_model(inputs=(32, 32, 3), outputs=4):
    x = keras.Input(inputs)
    y = keras.layers.Flatten()(x) if len(inputs) > 1 else x
    return keras.Model(x, keras.layers.Dense(outputs, activation="softmax")(y))


def damage(run, how):
    model_file = run / "run" / "best.keras"
    if how == "truncated":
        model_file.write_bytes(model_file.read_bytes()[:2000])
    elif how == "not a model":
        model_file.write_text("hello")
    elif how == "config only":  # what a kill during the save left behind
        with zipfile.ZipFile(model_file) as z:
            config = z.read("config.json")
        with zipfile.ZipFile(model_file, "w") as z:
            z.writestr("config.json", config)
    elif how == "3 outputs":
        tiny_model(outputs=3).save(model_file)
    elif how == "another rank":
        tiny_model(inputs=(32,)).save(model_file)
    elif how == "broken evaluation.json":
        (run / "evaluation.json").write_text('{"split": "unverified-te')
    elif how == "foreign evaluation.json":
        (run / "evaluation.json").write_text('["not", "a", "run"]')
    elif how == "broken old metrics.json":  # a run from before the evaluation record was called evaluation.json
        (run / "evaluation.json").unlink()
        (run / "metrics.json").write_text('{"split": "unverified-te')
    return model_file


@pytest.mark.parametrize("how, message", [
    ("truncated", "is not a Keras model file brainlab can load"),
    ("not a model", "is not a Keras model file brainlab can load"),
    ("config only", "is not a Keras model file brainlab can load"),
    ("3 outputs", "is not a brainlab classifier"),
    ("another rank", "is not a brainlab classifier"),
    ("broken evaluation.json", "evaluation.json is not the evaluation record of a brainlab run"),
    ("foreign evaluation.json", "evaluation.json is not the evaluation record of a brainlab run"),
    ("broken old metrics.json", "metrics.json is not the evaluation record of a brainlab run"),
])
def test_a_damaged_run_is_named(tmp_path, capsys, how, message):
    run = tmp_path / "run"
    (run / "run").mkdir(parents=True)
    tiny_model().save(run / "run" / "best.keras")
    (run / "evaluation.json").write_text(json.dumps({"split": "unverified-test", "settings": {"recipe": "small-cnn"}}))
    damage(run, how)
    data = make_dataset(tmp_path / "data", per_class=1, splits=("Testing",), size=32) / "Testing"
    code = main(["evaluate", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "File not found" not in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "ev" / "evaluation.json").exists()
