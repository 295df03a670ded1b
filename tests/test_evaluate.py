"""brainlab.evaluate and brainlab.paper: metrics against numbers worked out by hand."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from brainlab import evaluate, paper, runs
from brainlab.catalogue import CLASS_NAMES
from brainlab.evaluate import Predictions


# A small known case. Confusion matrix (rows true, columns predicted):
#   glioma      [2, 1, 1, 0]   support 4
#   meningioma  [1, 2, 0, 0]   support 3
#   no_tumor    [0, 0, 1, 1]   support 2
#   pituitary   [0, 0, 0, 1]   support 1
# Column totals (predicted) 3, 3, 2, 2.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 3, 3]
PRECISION = [2 / 3, 2 / 3, 1 / 2, 1 / 2]
RECALL = [2 / 4, 2 / 3, 1 / 2, 1 / 1]
F1 = [4 / 7, 2 / 3, 1 / 2, 2 / 3]  # 2PR / (P + R)
SUPPORT = [4, 3, 2, 1]
ACCURACY = 6 / 10


@pytest.fixture
def known() -> Predictions:
    return Predictions.from_labels(Y_TRUE, Y_PRED, CLASS_NAMES, split="official-test")


# Probabilities for a known AUC. Class 0's column: positives 0.7, 0.4; negatives
# 0.5, 0.1, 0.2, 0.1, 0.15, 0.05 -> 11 of the 12 (positive, negative) pairs are ordered
# right: AUC 11/12. Class 3's column: positives 0.5, 0.8; negatives 0.1 x5 and 0.5 (a
# tie, counting one half) -> AUC 11.5/12.
AUC_Y_TRUE = [0, 0, 1, 1, 2, 2, 3, 3]
AUC_PROBABILITIES = [
    [0.70, 0.10, 0.10, 0.10],
    [0.40, 0.30, 0.20, 0.10],
    [0.50, 0.30, 0.10, 0.10],
    [0.10, 0.60, 0.20, 0.10],
    [0.20, 0.20, 0.50, 0.10],
    [0.10, 0.10, 0.30, 0.50],
    [0.15, 0.15, 0.20, 0.50],
    [0.05, 0.05, 0.10, 0.80],
]


@pytest.fixture
def scored() -> Predictions:
    return Predictions(np.array(AUC_PROBABILITIES), AUC_Y_TRUE, [f"img{i}.jpg" for i in range(8)],
                       CLASS_NAMES, "clean-test")


# --------------------------------------------------------------------------- the paper


def test_paper_constants_are_the_papers():
    assert paper.TEST_ACCURACY == 0.51
    assert (paper.TOTAL_PARAMS, paper.TRAINABLE_PARAMS, paper.NON_TRAINABLE_PARAMS) == (
        27_782_660, 5_249_668, 22_532_992)
    assert paper.TOTAL_PARAMS == paper.TRAINABLE_PARAMS + paper.NON_TRAINABLE_PARAMS
    assert paper.INPUT_SHAPE == (128, 128, 3)
    assert paper.CLASS_NAMES is CLASS_NAMES  # one definition, brainlab.catalogue'
    assert [paper.TEST_SUPPORT[c] for c in CLASS_NAMES] == [100, 115, 105, 74]


def test_paper_per_class_table_is_the_papers_figure_10():
    table = paper.per_class_table()
    assert list(table.index) == list(CLASS_NAMES)
    assert list(table.columns) == ["precision", "recall", "f1-score", "support"]
    assert table["support"].tolist() == [100, 115, 105, 74]
    assert not table.isna().any().any()
    # The printed report is consistent with itself, to its two decimals: f1 is the harmonic mean
    # of precision and recall; recall times support is a whole number of images; those images
    # add up to the accuracy; the macro average is the plain mean. A typo in any value breaks one.
    p, r, f1 = (table[m].to_numpy() for m in ("precision", "recall", "f1-score"))
    np.testing.assert_allclose(2 * p * r / (p + r), f1, atol=0.011)
    support = table["support"].to_numpy()
    correct = np.round(r * support)
    np.testing.assert_allclose(correct / support, r, atol=0.005)
    assert correct.sum() / support.sum() == pytest.approx(paper.TEST_ACCURACY, abs=0.005)
    assert correct.sum() / support.sum() == pytest.approx(paper.TEST_ACCURACY_PRECISE, abs=0.005)
    for metric, values in (("precision", p), ("recall", r), ("f1-score", f1)):
        assert paper.reported("macro avg", metric) == pytest.approx(values.mean(), abs=0.011)
        weighted = (values * support).sum() / support.sum()
        assert paper.reported("weighted avg", metric) == pytest.approx(weighted, abs=0.011)
    assert paper.reported("accuracy", "f1-score") == 0.51
    assert paper.reported("macro avg", "support") == 394
    assert paper.reported("accuracy", "precision") is None  # the report prints no such cell
    assert paper.TRAIN_ACCURACY > paper.TEST_ACCURACY_PRECISE
    with pytest.raises(KeyError, match="not a class of the paper"):
        paper.reported("astrocytoma", "recall")


def test_paper_numbers_match_its_full_text_where_present():
    """Read figure 10 and section IV.A from the paper's text (present for the developers only)."""
    text_file = Path(__file__).resolve().parents[2] / "shared" / "paper" / (
        "automated-brain-tumor-classification-resnet50.md")
    if not text_file.is_file():
        pytest.skip(f"the paper's text is not at {text_file}")
    text = text_file.read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] in {"0", "1", "2", "3"} and len(cells) == 5:
            rows[CLASS_NAMES[int(cells[0])]] = [float(c) for c in cells[1:4]] + [int(cells[4])]
        elif line.startswith(("macro avg", "weighted avg")):
            name = " ".join(cells[:2])
            rows[name] = [float(c) for c in cells[2:5]] + [int(cells[5])]
    assert len(rows) == 6, rows
    for name in CLASS_NAMES:
        assert [paper.PER_CLASS[name][k] for k in ("precision", "recall", "f1-score", "support")] == rows[name]
    for name in ("macro avg", "weighted avg"):
        assert [paper.AVERAGES[name][k] for k in ("precision", "recall", "f1-score", "support")] == rows[name]
    assert "64.11% and 50.76%" in text
    assert (paper.TRAIN_ACCURACY, paper.TEST_ACCURACY_PRECISE) == (0.6411, 0.5076)
    assert "accuracy\t\t\t0.51\t394" in text


# --------------------------------------------------------------------------- paper comparison, JSON


def test_comparison_with_the_paper_fills_in_the_papers_report(known):
    table = evaluate.compare_with_paper(known)
    assert list(table.columns) == ["metric", "paper", "ours"]
    assert table.attrs["split"] == "official-test"
    rows = table.set_index("metric")
    assert rows.loc["accuracy", "paper"] == 0.51
    assert rows.loc["accuracy", "ours"] == pytest.approx(ACCURACY)
    assert rows.loc["glioma_tumor precision", "paper"] == 0.43
    assert rows.loc["glioma_tumor recall", "paper"] == 0.19
    assert rows.loc["glioma_tumor precision", "ours"] == pytest.approx(2 / 3)
    assert rows.loc["meningioma_tumor support", "paper"] == 115
    assert rows.loc["meningioma_tumor support", "ours"] == 3
    assert rows.loc["macro avg f1-score", "paper"] == 0.48
    assert rows.loc["weighted avg recall", "paper"] == 0.51
    assert rows.loc["weighted avg support", "paper"] == 394
    assert len(table) == 1 + 6 * 4  # accuracy + 4 classes and 2 averages x 4 columns
    text = evaluate.comparison_text(table)
    assert "ours: official-test" in text and "0.510" in text and "0.190" in text


def test_comparison_shows_a_value_the_paper_does_not_give_as_missing(known, monkeypatch):
    monkeypatch.setitem(paper.PER_CLASS["no_tumor"], "recall", None)
    assert evaluate.compare_with_paper(known).set_index("metric").loc["no_tumor recall", "paper"] == "n/a"
    assert "n/a" in evaluate.comparison_text(evaluate.compare_with_paper(known))
    numeric = evaluate.compare_with_paper(known, missing=float("nan")).set_index("metric")
    assert math.isnan(numeric.loc["no_tumor recall", "paper"])


def test_comparison_uses_paper_values_once_recorded(known, monkeypatch):
    monkeypatch.setitem(paper.PER_CLASS["glioma_tumor"], "precision", 0.42)
    rows = evaluate.compare_with_paper(known).set_index("metric")
    assert rows.loc["glioma_tumor precision", "paper"] == 0.42
    assert rows.loc["glioma_tumor recall", "paper"] == 0.19


def test_comparison_includes_parameter_counts_of_a_model(known):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                              keras.layers.Dense(4, activation="softmax")])
    rows = evaluate.compare_with_paper(known, model).set_index("metric")
    # Dense(4->3): 15, BatchNormalization(3): 6 trainable + 6 moving statistics, Dense(3->4): 16.
    assert rows.loc["total parameters", "ours"] == model.count_params() == 43
    assert rows.loc["trainable parameters", "ours"] == 37
    assert rows.loc["non-trainable parameters", "ours"] == 6
    assert rows.loc["total parameters", "paper"] == 27_782_660


def test_metrics_dict_is_json_and_complete(known, tmp_path):
    result = evaluate.metrics_dict(known, model="tiny", seed=3)
    text = json.dumps(result, allow_nan=False)  # strict JSON: no NaN anywhere
    assert json.loads(text) == result
    assert result["split"] == "official-test"
    assert result["accuracy"] == pytest.approx(ACCURACY)
    assert result["n_images"] == 10 and result["model"] == "tiny" and result["seed"] == 3
    glioma = result["per_class"]["glioma_tumor"]
    assert glioma["precision"] == pytest.approx(2 / 3)
    assert glioma["recall"] == pytest.approx(0.5)
    assert glioma["f1-score"] == pytest.approx(4 / 7)
    assert glioma["support"] == 4
    assert result["per_class"]["no_tumor"]["auc"] == pytest.approx(evaluate.roc_auc(known)["no_tumor"])
    assert result["macro_auc"] == pytest.approx(evaluate.roc_auc(known)["macro avg"])
    assert result["macro avg"]["precision"] == pytest.approx(7 / 12)
    assert result["confusion_matrix"][0] == [2, 1, 1, 0]
    saved = evaluate.save_metrics(known, runs.RunFolder(tmp_path / "run").evaluation_path, model="tiny")
    assert saved == tmp_path / "run" / "evaluation.json"
    assert runs.RunFolder(tmp_path / "run").evaluation()["per_class"]["pituitary_tumor"]["recall"] == 1.0


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255.0),
                             keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])


@pytest.fixture(scope="module")
def tiny_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8), rng.integers(0, 4, 10)


def test_predict_on_arrays_keeps_order_across_batches(tiny_model, tiny_images):
    images, labels = tiny_images
    preds = evaluate.predict(tiny_model, images, labels, split="val", batch_size=4)
    expected = tiny_model.predict(images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(preds.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert preds.y_true.tolist() == labels.tolist()
    assert preds.y_pred.tolist() == expected.argmax(axis=1).tolist()
    assert preds.split == "val" and preds.class_names == CLASS_NAMES and len(preds) == 10
    again = evaluate.predict(tiny_model, images, labels, split="val", batch_size=3)
    np.testing.assert_allclose(again.probabilities, preds.probabilities, rtol=1e-5, atol=1e-6)
    frame = preds.to_frame()
    assert frame.attrs["split"] == "val"
    assert frame["correct"].tolist() == (preds.y_pred == labels).tolist()


def test_predict_on_an_image_set_carries_its_split_and_paths(tiny_model, tiny_images):
    from brainlab.data import ImageSet

    images, labels = tiny_images
    paths = [f"Testing/{CLASS_NAMES[k]}/image({i}).jpg" for i, k in enumerate(labels)]
    image_set = ImageSet("official-test", images, labels.astype(np.int32), paths)
    preds = evaluate.predict(tiny_model, image_set, batch_size=4)
    assert preds.split == "official-test" and preds.paths == paths
    assert preds.y_true.tolist() == labels.tolist()
    direct = evaluate.predict(tiny_model, images, labels)
    np.testing.assert_allclose(preds.probabilities, direct.probabilities, rtol=1e-5, atol=1e-6)
    assert evaluate.predict(tiny_model, image_set, split="clean-test").split == "clean-test"


def test_predict_on_a_dataset_pairs_images_with_their_labels(tiny_model, tiny_images):
    import tensorflow as tf

    images, labels = tiny_images
    ds = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels)).shuffle(10, seed=1).batch(3)
    preds = evaluate.predict(tiny_model, ds, split="shuffled")
    # Whatever the order, each probability row must still sit beside its own image's label:
    # find which image gave each row, and compare labels.
    expected = tiny_model.predict(images.astype(np.float32), verbose=0)
    source = [int(np.abs(expected - row).sum(axis=1).argmin()) for row in preds.probabilities]
    assert sorted(source) == list(range(10))
    assert preds.y_true.tolist() == labels[source].tolist()
    assert len(preds) == 10 and preds.split == "shuffled"


def test_predict_turns_logits_into_probabilities(tiny_images):
    import keras

    images, labels = tiny_images
    logits_model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    preds = evaluate.predict(logits_model, images, labels, split="val")
    logits = logits_model.predict(images.astype(np.float32), verbose=0).astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(preds.probabilities, softmax / softmax.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_class_names_default_to_brainlabs_only_for_four_classes(tiny_images):
    import keras

    images, labels = tiny_images
    binary = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(2, activation="softmax")])
    preds = evaluate.predict(binary, images, labels % 2, split="val")
    assert preds.class_names == ("class 0", "class 1")
    assert Predictions.from_labels([0, 1], [1, 1]).class_names == CLASS_NAMES


def test_mismatched_inputs_say_what_is_wrong(tiny_model, tiny_images):
    images, labels = tiny_images
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        evaluate.predict(tiny_model, images, labels[:9])
    with pytest.raises(ValueError, match="3 class names"):
        Predictions(np.full((2, 4), 0.25), [0, 1], ["a", "b"], CLASS_NAMES[:3], "val")


@pytest.mark.shared_data
def test_official_test_split_end_to_end_matches_the_papers_supports(shared_dataset):
    """The paper's table counts 100/115/105/74 test images: exactly the official Testing split."""
    import keras

    from brainlab import data

    test = data.load_split("Testing", shared_dataset, image_size=32, progress=False)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(4, 3, strides=2), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])
    preds = evaluate.predict(model, test, batch_size=128)
    assert preds.split == "official-test" and len(preds) == 394
    assert preds.paths[0].startswith("Testing/glioma_tumor/")
    rows = evaluate.compare_with_paper(preds).set_index("metric")
    for name in CLASS_NAMES:
        assert rows.loc[f"{name} support", "ours"] == rows.loc[f"{name} support", "paper"]
    result = evaluate.metrics_dict(preds)
    assert sum(result["per_class"][c]["support"] for c in CLASS_NAMES) == 394
    assert json.loads(json.dumps(result, allow_nan=False))["split"] == "official-test"
