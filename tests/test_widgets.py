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
    tf = pytest.importorskip("tensorflow")
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
