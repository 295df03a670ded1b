"""The helpers notebooks 03-05 look inside models with: deep stacks, gradient norms, layer tables."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from brainlab import models, paper, train


def build_stack(depth, shortcuts, **kwargs):
    keras.utils.set_random_seed(0)
    return models.deep_stack(depth, shortcuts, **kwargs)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32"), np.arange(8) % 4


def test_plain_and_residual_stacks_differ_only_in_the_shortcuts():
    plain, residual = build_stack(3, False), build_stack(3, True)
    assert plain.count_params() == residual.count_params() == (9 * 3 + 1) * 16 + 3 * 2 * (9 * 16 + 1) * 16 + (16 + 1) * 4
    assert [layer.name for layer in residual.layers if isinstance(layer, keras.layers.Add)] == \
        ["block1_add", "block2_add", "block3_add"]
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    for a, b in zip(plain.weights, residual.weights):  # same seed, same initial weights
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert residual.output.shape == (None, 4)
    assert models.deep_stack(2, True, image_size=16, channels=1).input.shape == (None, 16, 16, 1)


def test_residual_stack_is_x_plus_f_of_x():
    model = build_stack(1, True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    inside = keras.Model(model.input, [model.get_layer(name).output
                                       for name in ("stem_conv", "block1_2_conv", "block1_add")])
    stem, residual, added = (np.asarray(t) for t in inside(x))
    np.testing.assert_allclose(added, stem + residual, rtol=1e-5, atol=1e-5)


def test_gradient_norms_match_the_gradient_worked_out_by_hand():
    # One dense softmax layer: d(mean cross-entropy)/dW = x^T (p - onehot(y)) / n.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="dense")(inputs))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5)).astype("float32"), np.array([0, 1, 2, 0, 1, 2])
    kernel, bias = model.get_layer("dense").get_weights()
    logits = x @ kernel + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = x.T @ (p - np.eye(3)[y]) / len(y)
    before = [np.asarray(w).copy() for w in model.weights]
    norms = train.gradient_norms(model, x, y)
    assert list(norms) == ["dense"]
    assert norms["dense"] == pytest.approx(np.linalg.norm(expected), rel=1e-4)
    for old, new in zip(before, model.weights):  # looking does not train
        np.testing.assert_array_equal(old, np.asarray(new))


def test_gradients_vanish_in_the_plain_stack_and_not_in_the_residual_one(batch):
    images, labels = batch
    depth = 10
    plain = train.gradient_norms(build_stack(depth, False), images, labels)
    residual = train.gradient_norms(build_stack(depth, True), images, labels)
    names = ["stem_conv"] + [f"block{i}_{j}_conv" for i in range(1, depth + 1) for j in (1, 2)] + ["predictions"]
    assert list(plain) == list(residual) == names  # input side first
    assert all(value > 0 for value in [*plain.values(), *residual.values()])
    plain_conv, residual_conv = np.array(list(plain.values())[:-1]), np.array(list(residual.values())[:-1])
    assert plain_conv[0] / plain_conv[-1] < 1e-4, plain_conv  # many orders of magnitude lost on the way down
    assert residual_conv[0] / residual_conv[-1] > 1e-2, residual_conv  # the shortcuts carry it through


def test_gradient_norms_leave_out_frozen_layers(batch):
    images, labels = batch
    model = build_stack(2, True)
    model.get_layer("stem_conv").trainable = False
    assert "stem_conv" not in train.gradient_norms(model, images, labels)
    for layer in model.layers:
        layer.trainable = False
    with pytest.raises(ValueError, match="no trainable layer"):
        train.gradient_norms(model, images, labels)


def test_layer_table_adds_up_like_the_model_summary():
    model = models.small_cnn(image_size=32)
    model.get_layer("block1_conv").trainable = False
    table = models.layer_table(model)
    assert list(table.columns) == ["type", "output shape", "parameters", "trainable", "non-trainable"]
    assert "image" not in table.index and table.index[0] == "rescale"
    assert table["parameters"].sum() == model.count_params()
    counts = models.parameter_counts(model)
    assert table["trainable"].sum() == counts["trainable"] and table["non-trainable"].sum() == counts["non_trainable"]
    assert (table["trainable"] + table["non-trainable"] == table["parameters"]).all()
    conv = table.loc["block1_conv"]
    assert (conv["type"], conv["output shape"], conv["trainable"], conv["non-trainable"]) == \
        ("Conv2D", "(None, 32, 32, 32)", 0, 3 * 3 * 3 * 32)
    bn = table.loc["block1_bn"]
    assert (bn["trainable"], bn["non-trainable"]) == (2 * 32, 2 * 32)  # gamma, beta | moving mean, variance


def test_layer_table_of_the_papers_model():
    table = models.layer_table(models.paper_model(weights=None))
    assert table["parameters"].sum() == paper.PARAMS["total"]
    assert table["trainable"].sum() == paper.PARAMS["trainable"]
    assert table["non-trainable"].sum() == paper.PARAMS["non_trainable"]
    assert list(table.index[table["trainable"] > 0]) == ["conv5_block3_3_conv", "conv5_block3_3_bn", "dense",
                                                         "predictions"]
    assert table.loc["flatten", "output shape"] == "(None, 32768)"
    assert table.loc["dense", "trainable"] == (32768 + 1) * 128
