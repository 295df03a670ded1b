"""The kernel playground: the pure function it draws, and the widget reacting to edits."""
from __future__ import annotations

import numpy as np
import pytest

from brainlab import widgets


def reference_correlation(image, kernel):
    """Zero-padded 'same' cross-correlation with plain loops, the definition written out."""
    kh, kw = kernel.shape
    padded = np.pad(image.astype(np.float64), ((kh // 2, kh // 2), (kw // 2, kw // 2)))
    out = np.zeros(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            out[i, j] = np.sum(padded[i:i + kh, j:j + kw] * kernel)
    return out


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(20, 24)).astype(np.uint8)


def test_feature_map_is_same_padded_cross_correlation(image):
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3) - 4  # not symmetric: a flip would show
    out = widgets.feature_map(image, kernel)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, reference_correlation(image, kernel), rtol=1e-5, atol=1e-3)
    five = np.random.default_rng(1).normal(size=(5, 5))
    np.testing.assert_allclose(widgets.feature_map(image, five), reference_correlation(image, five),
                               rtol=1e-4, atol=1e-3)


def test_feature_map_matches_tensorflow_conv2d_same(image):
    import tensorflow as tf
    kernel = np.array(widgets.PRESETS["vertical edges (Sobel x)"], dtype=np.float32)
    theirs = tf.nn.conv2d(image[None, :, :, None].astype(np.float32), kernel[:, :, None, None],
                          strides=1, padding="SAME")[0, :, :, 0].numpy()
    np.testing.assert_allclose(widgets.feature_map(image, kernel), theirs, rtol=1e-5, atol=1e-3)


def test_presets_do_what_their_names_say(image):
    flat = np.full((12, 12), 100.0)
    assert np.array_equal(widgets.feature_map(image, widgets.PRESETS["identity"]), image.astype(np.float32))
    inner = (slice(1, -1), slice(1, -1))  # away from the zero-padded border
    np.testing.assert_allclose(widgets.feature_map(flat, widgets.PRESETS["box blur"])[inner], 100.0, rtol=1e-5)
    for name in ("edges (Laplacian)", "vertical edges (Sobel x)", "horizontal edges (Sobel y)"):
        np.testing.assert_allclose(widgets.feature_map(flat, widgets.PRESETS[name])[inner], 0.0, atol=1e-4)
    step = np.zeros((8, 8))
    step[:, 4:] = 1.0  # dark left half, bright right half
    sobel_x = widgets.feature_map(step, widgets.PRESETS["vertical edges (Sobel x)"])
    assert sobel_x[4, 3] == 4.0 and sobel_x[4, 1] == 0.0  # responds at the edge, not in flat regions


def test_relu_and_colour_input(image):
    kernel = widgets.PRESETS["edges (Laplacian)"]
    raw = widgets.feature_map(image, kernel)
    assert raw.min() < 0
    np.testing.assert_array_equal(widgets.feature_map(image, kernel, relu=True), np.maximum(raw, 0))
    rgb = np.repeat(image[..., None], 3, axis=-1)
    np.testing.assert_allclose(widgets.feature_map(rgb, kernel), raw, atol=1e-4)
    np.testing.assert_allclose(widgets.feature_map(image[..., None], kernel), raw)


@pytest.mark.parametrize("bad_image", [np.zeros((2, 8, 8, 1)), np.zeros(8), np.zeros((8, 8, 2))])
def test_wrong_image_shape_is_explained(bad_image):
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        widgets.feature_map(bad_image, widgets.PRESETS["identity"])


@pytest.mark.parametrize("bad_kernel", [np.ones((2, 2)), np.ones((3, 4)), np.ones(3)])
def test_kernel_needs_odd_sides(image, bad_kernel):
    with pytest.raises(ValueError, match="odd sides"):
        widgets.feature_map(image, bad_kernel)


def test_playground_builds_and_redraws_on_every_change(image):
    playground = widgets.kernel_playground(image, kernel="vertical edges (Sobel x)")
    assert playground.preset.value == "vertical edges (Sobel x)"
    np.testing.assert_array_equal(playground.kernel, widgets.PRESETS["vertical edges (Sobel x)"])
    np.testing.assert_allclose(playground.output, widgets.feature_map(image, playground.kernel))
    first_picture = bytes(playground.picture.value)
    assert first_picture.startswith(b"\x89PNG")

    playground.preset.value = "box blur"  # choosing a preset fills the grid and redraws
    np.testing.assert_allclose(playground.kernel, np.full((3, 3), 1 / 9), atol=1e-4)
    np.testing.assert_allclose(playground.output, widgets.feature_map(image, playground.kernel))
    assert bytes(playground.picture.value) != first_picture

    playground.cells[4].value = 5.0  # editing one number: the preset becomes "custom"
    assert playground.preset.value == widgets.CUSTOM
    assert playground.kernel[1, 1] == 5.0
    np.testing.assert_allclose(playground.output, widgets.feature_map(image, playground.kernel))

    playground.relu.value = True
    assert playground.output.min() >= 0
    np.testing.assert_allclose(playground.output, widgets.feature_map(image, playground.kernel, relu=True))


def test_playground_accepts_an_array_and_rejects_unknown_presets(image):
    kernel = np.array([[0, 0, 0], [0, 2, 0], [0, 0, 0]])
    playground = widgets.kernel_playground(image, kernel=kernel)
    assert playground.preset.value == widgets.CUSTOM
    np.testing.assert_allclose(playground.output, 2.0 * image)
    with pytest.raises(ValueError, match="Unknown kernel 'emboss'"):
        widgets.kernel_playground(image, kernel="emboss")
    with pytest.raises(ValueError, match="3x3"):
        widgets.kernel_playground(image, kernel=np.ones((5, 5)))


# --------------------------------------------------------------------------- the prediction explorer

import keras  # noqa: E402  (a dependency: a broken install must fail here, not skip)

from brainlab import data, evaluate, explain  # noqa: E402

EXPLORER_SIZE = 24


@pytest.fixture(scope="module")
def classifier():
    """A small untrained CNN: its answers differ from image to image, which is all the explorer needs."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((EXPLORER_SIZE, EXPLORER_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def test_set():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, EXPLORER_SIZE, EXPLORER_SIZE, 3)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 0, 1], dtype=np.int32)
    return data.ImageSet("official-test", images, labels, [f"Testing/x/scan{i}.jpg" for i in range(6)])


def test_explore_order_puts_the_surest_mistakes_first():
    probabilities = np.array([[0.9, 0.1, 0, 0], [0.3, 0.7, 0, 0], [0.6, 0.4, 0, 0], [0.2, 0.8, 0, 0],
                              [0.55, 0.45, 0, 0]])
    preds = evaluate.Predictions(probabilities, [0, 0, 1, 0, 1], [f"#{i}" for i in range(5)],
                                 data.CLASS_NAMES, "official-test")
    assert widgets.explore_order(preds).tolist() == [0, 1, 2, 3, 4]
    # wrong: 1 (0.7), 2 (0.6), 3 (0.8), 4 (0.55) -> surest first, then the right one
    assert widgets.explore_order(preds, "mistakes first").tolist() == [3, 1, 2, 4, 0]
    assert list(widgets.explore_order(preds, "mistakes first")[:4]) == \
        list(evaluate.most_confident_mistakes(preds, n=10).index)
    assert widgets.explore_order(preds, "least confident first").tolist() == [4, 2, 1, 3, 0]
    with pytest.raises(ValueError, match="Unknown order 'random'"):
        widgets.explore_order(preds, "random")


def test_explorer_shows_each_image_with_its_label_probabilities_and_grad_cam(classifier, test_set):
    explorer = widgets.prediction_explorer(classifier, test_set)
    preds = explorer.predictions
    assert explorer.slider.max == len(test_set) - 1
    assert preds.split == "official-test" and np.array_equal(preds.y_true, test_set.labels)

    def shown_correctly(position):
        assert explorer.position == position
        np.testing.assert_allclose(explorer.probabilities, preds.probabilities[position])
        true, predicted = data.CLASS_NAMES[test_set.labels[position]], data.CLASS_NAMES[preds.y_pred[position]]
        assert f"true: <b>{true}</b>" in explorer.caption.value
        assert f"predicted: <b>{predicted}</b>" in explorer.caption.value
        assert test_set.paths[position] in explorer.caption.value
        assert explorer.figure._suptitle.get_text().startswith(f"true: {true} | predicted: {predicted}")
        expected = explain.grad_cam(classifier, test_set.images[position].astype(np.float32))
        np.testing.assert_allclose(explorer.heatmap, expected, atol=1e-5)
        assert explorer.heatmap.shape == (EXPLORER_SIZE, EXPLORER_SIZE)
        assert bytes(explorer.picture.value).startswith(b"\x89PNG")

    shown_correctly(0)
    first = (explorer.caption.value, bytes(explorer.picture.value))
    explorer.slider.value = 3  # what dragging the slider does
    shown_correctly(3)
    assert explorer.caption.value != first[0] and bytes(explorer.picture.value) != first[1]
    assert "4 of 6" in explorer.caption.value


def test_explorer_explains_the_class_asked_for(classifier, test_set):
    explorer = widgets.prediction_explorer(classifier, test_set)
    explorer.slider.value = 2
    predicted_map = explorer.heatmap
    other = next(k for k in range(4) if k != explorer.predictions.y_pred[2])
    explorer.target.value = other
    np.testing.assert_allclose(explorer.heatmap, explain.grad_cam(classifier, test_set.images[2], other), atol=1e-5)
    assert not np.allclose(explorer.heatmap, predicted_map)
    assert f"Grad-CAM for {data.CLASS_NAMES[other]}" in explorer.caption.value
    assert explorer.figure.axes[1].get_title() == f"Grad-CAM for {data.CLASS_NAMES[other]}"
    explorer.target.value = widgets.PREDICTED
    np.testing.assert_allclose(explorer.heatmap, predicted_map)


def test_explorer_order_restarts_at_the_first_image_of_the_new_order(classifier, test_set):
    preds = evaluate.predict(classifier, test_set)
    explorer = widgets.prediction_explorer(classifier, test_set, predictions=preds)
    explorer.slider.value = 4
    explorer.order.value = "least confident first"
    assert explorer.slider.value == 0
    assert explorer.position == int(np.argmin(preds.confidence))
    explorer.order.value = "file order"
    assert explorer.position == 0


def test_explorer_refuses_mismatched_inputs(classifier, test_set):
    preds = evaluate.predict(classifier, test_set)
    with pytest.raises(ValueError, match="6 predictions for 5 images"):
        widgets.prediction_explorer(classifier, test_set.images[:5], predictions=preds)
    with pytest.raises(ValueError, match="pass an ImageSet"):
        widgets.prediction_explorer(classifier, test_set.images)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        widgets.prediction_explorer(classifier, test_set.images[0], predictions=preds)
    with pytest.raises(ValueError, match="Unknown order"):
        widgets.prediction_explorer(classifier, test_set, predictions=preds, order="shuffled")
