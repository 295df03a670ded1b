"""brainlab.explain: Grad-CAM on flat and nested models, checked against a model whose
answer is known by construction."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import keras  # noqa: E402  (a dependency: a broken install must fail here, not skip)

from brainlab import explain  # noqa: E402

SIZE = 16


def two_spot_image() -> np.ndarray:
    """Black image with a red square top-left and a green square bottom-right."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
    image[2:6, 2:6, 0] = 255.0
    image[10:14, 10:14, 1] = 255.0
    return image


def colour_detector_head(features):
    """Class 0 = "how red", class 1 = "how green": each class reads one feature channel."""
    x = keras.layers.Flatten(name="flatten")(features)
    return keras.layers.Dense(2, activation="softmax", name="predictions")(x)


def set_known_weights(model, conv):
    """1x1 conv: channel 0 = red, channel 1 = green. Dense: class k sums channel k."""
    conv.set_weights([np.array([[[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]]) / 255.0])
    kernel = np.zeros((SIZE * SIZE * 2, 2), dtype=np.float32)
    kernel[0::2, 0] = 1.0  # Flatten keeps (row, column, channel) order: channel 0 every 2nd
    kernel[1::2, 1] = 1.0
    model.get_layer("predictions").set_weights([kernel, np.zeros(2, dtype=np.float32)])


@pytest.fixture(scope="module")
def flat_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="colours")
    model = keras.Model(inputs, colour_detector_head(conv(inputs)), name="flat")
    set_known_weights(model, conv)
    return model


@pytest.fixture(scope="module")
def nested_model():
    """The same network, but the conv base is a frozen sub-model, as with a wrapped ResNet50."""
    base_in = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="colours")
    base = keras.Model(base_in, conv(base_in), name="base")
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0, name="identity")(inputs)
    model = keras.Model(inputs, colour_detector_head(base(x)), name="nested")
    set_known_weights(model, conv)
    return model


def quadrant_means(heatmap):
    half = SIZE // 2
    return heatmap[:half, :half].mean(), heatmap[half:, half:].mean()


@pytest.mark.parametrize("which", ["flat_model", "nested_model"])
def test_grad_cam_points_at_the_evidence_for_the_class_asked(which, request):
    model = request.getfixturevalue(which)
    image = two_spot_image()
    red = explain.grad_cam(model, image, class_index=0)
    green = explain.grad_cam(model, image, class_index=1)
    for heatmap in (red, green):
        assert heatmap.shape == (SIZE, SIZE)
        assert heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    top_left, bottom_right = quadrant_means(red)
    assert top_left > 0.1 and bottom_right == pytest.approx(0.0, abs=1e-6)
    top_left, bottom_right = quadrant_means(green)
    assert bottom_right > 0.1 and top_left == pytest.approx(0.0, abs=1e-6)
    assert np.abs(red - green).max() > 0.9
    # The brightest pixel of each map lies inside its square.
    row, col = np.unravel_index(red.argmax(), red.shape)
    assert 2 <= row < 6 and 2 <= col < 6


def test_flat_and_nested_give_the_same_heatmaps(flat_model, nested_model):
    image = two_spot_image()
    for k in (0, 1):
        np.testing.assert_allclose(explain.grad_cam(flat_model, image, k),
                                   explain.grad_cam(nested_model, image, k), atol=1e-5)


def test_last_conv_layer_is_found_in_flat_and_nested_models(flat_model, nested_model):
    assert explain.last_conv_layer(flat_model) == "colours"
    assert explain.last_conv_layer(nested_model) == "base/colours"
    cnn = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Conv2D(4, 3, name="c1"),
                            keras.layers.Conv2D(4, 3, name="c2"), keras.layers.MaxPooling2D(name="pool"),
                            keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    assert explain.last_conv_layer(cnn) == "c2"  # the map before pooling, not the pooled one


def test_layer_can_be_chosen_by_name_or_path(nested_model):
    image = two_spot_image()
    default = explain.grad_cam(nested_model, image, 0)
    np.testing.assert_allclose(explain.grad_cam(nested_model, image, 0, layer_name="colours"), default)
    np.testing.assert_allclose(explain.grad_cam(nested_model, image, 0, layer_name="base/colours"), default)
    with pytest.raises(ValueError, match="No layer named 'nope'.*base/colours"):
        explain.grad_cam(nested_model, image, 0, layer_name="nope")


def test_batches_and_the_default_class(flat_model):
    image = two_spot_image()
    only_green = image.copy()
    only_green[..., 0] = 0  # no red at all: the model predicts green (class 1)
    batch = np.stack([image, only_green])
    maps = explain.grad_cam(flat_model, batch, class_index=[0, 1])
    assert maps.shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(maps[0], explain.grad_cam(flat_model, image, 0), atol=1e-6)
    predicted = explain.grad_cam(flat_model, only_green)  # class_index None: the predicted class
    np.testing.assert_allclose(predicted, explain.grad_cam(flat_model, only_green, 1), atol=1e-6)
    uint8 = explain.grad_cam(flat_model, image.astype(np.uint8), 0)
    np.testing.assert_allclose(uint8, maps[0], atol=1e-6)


def test_saturated_softmax_still_gives_a_heatmap(flat_model):
    """Scores before softmax are explained, so a 100%-sure model still has a map."""
    loud = keras.models.clone_model(flat_model)
    loud.set_weights([w * 50 for w in flat_model.get_weights()])
    image = two_spot_image()
    image[..., 1] = 0  # only the red square: class 0 wins by a mile
    assert float(loud.predict_on_batch(image[None])[0, 0]) == 1.0  # float32 softmax saturated
    heatmap = explain.grad_cam(loud, image, 0)
    assert heatmap.max() == pytest.approx(1.0) and quadrant_means(heatmap)[0] > 0.1


def test_models_without_feature_maps_or_not_a_chain_are_refused(nested_model):
    dense = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="no layer with a 2-D feature map"):
        explain.grad_cam(dense, np.zeros(8, dtype=np.float32))
    # A branch around the nested base: the layers cannot be run one after another.
    base = nested_model.get_layer("base")
    inputs = keras.Input((SIZE, SIZE, 3))
    side = keras.layers.Conv2D(2, 1, name="side")(inputs)
    joined = keras.layers.Add()([base(inputs), side])
    branched = keras.Model(inputs, colour_detector_head(joined), name="branched")
    with pytest.raises(ValueError, match="not a simple chain"):
        explain.grad_cam(branched, two_spot_image(), 0, layer_name="base/colours")
    # The default is the outer model's last feature map (the Add), which works.
    assert explain.last_conv_layer(branched) == branched.layers[-3].name
    assert explain.grad_cam(branched, two_spot_image(), 0).shape == (SIZE, SIZE)


def test_the_map_is_drawn_by_plots(flat_model):
    """explain computes the map; the one figure of an explained prediction is brainlab.plots'."""
    from brainlab import plots

    image = two_spot_image()
    heatmap = explain.grad_cam(flat_model, image, 0)
    probabilities = flat_model.predict_on_batch(image[None])[0]
    fig = plots.explained_prediction(image, probabilities, heatmap, ["red", "green"], true_label=1)
    assert fig.get_suptitle() == f"true: green | predicted: red, p = {probabilities[0]:.2f} (wrong)"
    assert fig.axes[1].get_title() == "Grad-CAM for red"
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), plots.overlay(image, heatmap))
    assert not hasattr(explain, "grad_cam_figure") and not hasattr(explain, "overlay")  # no second figure


# --------------------------------------------------------------------------- brainlab's own models


@pytest.fixture(scope="module")
def models():
    from brainlab import models

    return models


def assert_usable_heatmaps(model, image):
    maps = [explain.grad_cam(model, image, k) for k in range(4)]
    for heatmap in maps:
        assert heatmap.shape == image.shape[:2]
        assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1
    assert max(h.max() for h in maps) == pytest.approx(1.0)
    assert any(np.abs(maps[0] - other).max() > 1e-3 for other in maps[1:])


def test_grad_cam_on_the_small_cnn(models):
    keras.utils.set_random_seed(0)
    model = models.small_cnn(image_size=32, channels=1, filters=(8, 16))
    assert explain.last_conv_layer(model) == "block2_relu"
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 1)).astype(np.float32)
    assert_usable_heatmaps(model, image)


def test_grad_cam_on_the_residual_cnn(models):
    keras.utils.set_random_seed(0)
    model = models.residual_cnn(image_size=32, channels=1, widths=(8, 16), blocks_per_stage=1)
    assert explain.last_conv_layer(model) == "stage2_block1_out"
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 1)).astype(np.float32)
    assert_usable_heatmaps(model, image)


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["paper_model", "improved_model"])
def test_grad_cam_on_the_resnet50_models(models, builder):
    keras.utils.set_random_seed(0)
    model = getattr(models, builder)(weights=None, image_size=64)
    assert explain.last_conv_layer(model) == "conv5_block3_out"
    image = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    assert_usable_heatmaps(model, image)


@pytest.mark.slow
def test_grad_cam_on_a_nested_resnet50(models):
    keras.utils.set_random_seed(0)
    base = models.resnet50(input_shape=(64, 64, 3), weights=None)
    base.trainable = False
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), base,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    assert explain.last_conv_layer(model) == "resnet50/conv5_block3_out"
    image = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    assert_usable_heatmaps(model, image)
