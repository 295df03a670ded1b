"""brainlab.models: blocks, ResNet50 from blocks, the paper's model, weights handling."""
from __future__ import annotations

import hashlib
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import keras
import numpy as np
import pytest

from brainlab import models
from brainlab.errors import BrainlabError, WeightsNotFoundError


def count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def answer(model, x) -> np.ndarray:
    """The model's output for one small batch, as predict gives it (inference mode), without compiling a predict
    function first: for a ResNet50 that takes about a second each time, the answer itself a quarter of one."""
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def keras_resnet():
    """keras.applications' own ResNet50 (random weights), 64x64: the reference."""
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))


@pytest.fixture(scope="module")
def images64():
    return np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")


@pytest.fixture(scope="module")
def saved_resnet(keras_resnet, tmp_path_factory):
    """keras_resnet's weights in both formats Keras writes, saved once for the module (about 94 MB each):
    a .weights.h5 file, and a legacy .h5 like the ImageNet download."""
    folder = tmp_path_factory.mktemp("resnet")
    modern, legacy = folder / "resnet.weights.h5", folder / "resnet_legacy.h5"
    keras_resnet.save_weights(modern)
    keras_resnet.save(legacy)
    return modern, legacy


def test_paper_model_has_the_papers_parameter_counts():
    for kwargs in ({}, {"channels": 1}, {"preprocessing": "rescale"}):
        model = models.paper_model(weights=None, **kwargs)
        assert model.count_params() == 27_782_660, kwargs
        assert count(model.trainable_weights) == 5_249_668, kwargs
        assert count(model.non_trainable_weights) == 22_532_992, kwargs
    trainable = [layer.name for layer in model.layers if layer.trainable and layer.weights]
    assert trainable == ["conv5_block3_3_conv", "conv5_block3_3_bn", "dense", "predictions"]
    assert [layer.name for layer in models.resnet50_layers(model)][-4:] == list(models.PAPER_TRAINABLE_LAYERS)
    head = [type(layer).__name__ for layer in model.layers[-5:]]
    assert head == ["Flatten", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.get_layer("dense").units == 128 and model.get_layer("dense").activation.__name__ == "relu"
    assert model.output.shape == (None, 4)


def test_resnet50_from_blocks_equals_keras_applications(keras_resnet, images64):
    ours = models.resnet50(input_shape=(64, 64, 3))
    assert ours.count_params() == keras_resnet.count_params() == 23_587_712
    # Layer for layer: same names, types and weight shapes, in the same order (input layers aside).
    assert len(ours.layers) == len(keras_resnet.layers) == 175
    for mine, theirs in zip(ours.layers[1:], keras_resnet.layers[1:]):
        assert (mine.name, type(mine)) == (theirs.name, type(theirs))
        assert [w.shape for w in mine.weights] == [w.shape for w in theirs.weights], mine.name
    assert models.copy_weights_by_name(keras_resnet, ours) == sum(1 for layer in keras_resnet.layers if layer.weights)
    x = keras.applications.resnet50.preprocess_input(images64.copy())
    expected = answer(keras_resnet, x)
    np.testing.assert_allclose(answer(ours, x), expected, atol=1e-4, rtol=1e-4)
    assert expected.shape == (2, 2, 2, 2048) and np.abs(expected).max() > 0.1  # a real, non-trivial output


@pytest.mark.parametrize("start, end, filters, stride", [
    ("pool1_pool", "conv2_block1", 64, 1),     # projection shortcut: 64 -> 256 channels
    ("conv2_block1_out", "conv2_block2", 64, 1),  # identity shortcut
    ("conv2_block3_out", "conv3_block1", 128, 2),  # projection with stride 2
])
def test_bottleneck_block_equals_the_keras_block(keras_resnet, start, end, filters, stride):
    reference = keras.Model(keras_resnet.get_layer(start).output, keras_resnet.get_layer(f"{end}_out").output)
    inputs = keras.Input(reference.input.shape[1:])
    block = keras.Model(inputs, models.bottleneck_block(inputs, filters, stride=stride, name=end))
    assert sorted(layer.name for layer in block.layers[1:]) == sorted(layer.name for layer in reference.layers[1:])
    models.copy_weights_by_name(reference, block)
    x = np.random.default_rng(1).normal(size=(2, *reference.input.shape[1:])).astype("float32")
    np.testing.assert_allclose(block.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-4, rtol=1e-4)


def _zero_residual_branch(model, name):
    for i in (1, 2):
        conv = model.get_layer(f"{name}_{i}_conv")
        conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])


def test_residual_block_identity_shortcut_is_y_equals_f_plus_x():
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, models.residual_block(inputs, 16, name="res"))
    names = [layer.name for layer in model.layers]
    assert "res_0_conv" not in names  # identity: the shortcut has no parameters
    assert count(model.weights) == 2 * (3 * 3 * 16 * 16 + 16) + 2 * 4 * 16
    _zero_residual_branch(model, "res")  # F(X) = 0, so Y = relu(0 + X)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x, 0), atol=1e-6)


def test_residual_block_projection_shortcut_is_y_equals_f_plus_ws_x():
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, models.residual_block(inputs, 32, stride=2, name="res"))
    assert model.output.shape == (None, 4, 4, 32)
    projection = model.get_layer("res_0_conv")
    assert projection.kernel.shape == (1, 1, 16, 32) and projection.strides == (2, 2)
    _zero_residual_branch(model, "res")  # Y = relu(BN(W_s X)); fresh BN at inference ~ identity
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
    kernel, bias = projection.get_weights()
    ws_x = x[:, ::2, ::2, :] @ kernel[0, 0] + bias
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(ws_x / np.sqrt(1 + models.BN_EPSILON), 0),
                               atol=1e-5)


def test_conv_block_halves_the_map():
    inputs = keras.Input((32, 32, 3))
    assert keras.Model(inputs, models.conv_block(inputs, 8)).output.shape == (None, 16, 16, 8)
    assert keras.Model(inputs, models.conv_block(inputs, 8, pool=False)).output.shape == (None, 32, 32, 8)


def test_small_cnn_is_small_and_has_its_grad_cam_layer():
    model = models.small_cnn(image_size=64, channels=1)
    assert 300_000 < model.count_params() < 500_000
    last_map = model.get_layer("block4_relu")
    assert last_map.output.shape == (None, 8, 8, 256)
    assert type(model.layers[model.layers.index(last_map) + 1]).__name__ == "GlobalAveragePooling2D"
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 1)).astype("float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_residual_cnn_layout():
    model = models.residual_cnn(image_size=128, channels=1)
    # stem 5x5/2 + pool: 128 -> 32; stages 2-4 halve it: 32 -> 16 -> 8 -> 4.
    assert model.get_layer("stem_pool").output.shape == (None, 32, 32, 32)
    assert model.get_layer("stage1_block2_out").output.shape == (None, 32, 32, 32)
    assert model.get_layer("stage4_block2_out").output.shape == (None, 4, 4, 256)
    # Projection shortcuts exactly where the shape changes: the first block of stages 2-4.
    projections = sorted(layer.name for layer in model.layers if layer.name.endswith("_0_conv"))
    assert projections == ["stage2_block1_0_conv", "stage3_block1_0_conv", "stage4_block1_0_conv"]
    assert 2_700_000 < model.count_params() < 2_900_000
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    x = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1, atol=1e-5)


def test_residual_cnn_standardizes_each_image():
    model = models.residual_cnn(image_size=16, channels=1, widths=(4,), blocks_per_stage=1, augment_images=False)
    standardize = keras.Model(model.input, model.get_layer("standardize").output)
    rng = np.random.default_rng(1)
    dark = rng.uniform(0, 60, (1, 16, 16, 1)).astype("float32")
    x = np.concatenate([dark, 3 * dark + 40])  # the same scan, brighter and with more contrast
    y = standardize.predict(x, verbose=0)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), 1, atol=1e-2)
    np.testing.assert_allclose(y[0], y[1], atol=1e-2)


def test_resnet50_keeps_keras_batch_norm_momentum():
    model = models.resnet50(input_shape=(32, 32, 3))
    assert {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.99}


def test_resnet_models_expose_the_last_feature_map_by_name():
    for model in (models.paper_model(weights=None, image_size=32),
                  models.improved_model(weights=None, image_size=32)):
        layer = model.get_layer(models.LAST_CONV_LAYER)
        assert len(layer.output.shape) == 4
        after = model.layers[model.layers.index(layer) + 1]
        assert type(after).__name__ in {"Flatten", "GlobalAveragePooling2D"}


def test_preprocessing_switch_and_grayscale_input():
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for preprocessing, expected in [("imagenet", keras.applications.resnet50.preprocess_input(x.copy())),
                                    ("rescale", x / 255)]:
        model = models.paper_model(weights=None, image_size=32, preprocessing=preprocessing)
        step = keras.Model(model.input, model.get_layer("preprocess").output)
        np.testing.assert_allclose(step.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-4)
    gray = models.paper_model(weights=None, image_size=32, channels=1)
    to_rgb = keras.Model(gray.input, gray.get_layer("gray_to_rgb").output)
    np.testing.assert_array_equal(to_rgb.predict(x[..., :1], verbose=0), np.repeat(x[..., :1], 3, axis=-1))
    with pytest.raises(ValueError, match="preprocessing"):
        models.paper_model(weights=None, preprocessing="zscore")


def test_improved_model_recipe():
    model = models.improved_model(weights=None, image_size=32)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 53 and not any(bn.trainable for bn in bns)
    assert [w.path for w in model.trainable_weights] == ["predictions/kernel", "predictions/bias"]
    assert type(model.get_layer("avg_pool")).__name__ == "GlobalAveragePooling2D"
    # Augmentation acts while training only.
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    augmented = keras.Model(model.input, model.get_layer("augment_contrast").output)
    np.testing.assert_array_equal(augmented(x, training=False).numpy(), x)
    assert np.abs(augmented(x, training=True).numpy() - x).max() > 1
    # Stage 2 opens the conv5 stage, BatchNorm stays frozen.
    opened = models.unfreeze_top(model)
    assert opened[0].startswith("conv5_block1") and all(name.startswith("conv5_") for name in opened)
    assert not any(bn.trainable for bn in bns)
    assert not model.get_layer("conv4_block6_3_conv").trainable and model.get_layer("conv5_block1_1_conv").trainable
    assert count(model.trainable_weights) == 14_961_668  # conv5 kernels and biases + the head


def test_weights_from_a_local_file(saved_resnet, keras_resnet, images64):
    """Both formats Keras writes: a .weights.h5 file, and a legacy .h5 like the ImageNet download."""
    modern, legacy = saved_resnet
    expected = keras_resnet.get_layer("conv5_block3_3_conv").get_weights()[0]
    features = answer(keras_resnet, images64)
    for path in (modern, legacy):
        ours = models.resnet50(input_shape=(64, 64, 3), weights=path)
        np.testing.assert_array_equal(ours.get_layer("conv5_block3_3_conv").get_weights()[0], expected)
        np.testing.assert_allclose(answer(ours, images64), features, atol=1e-4, rtol=1e-4)
    paper = models.paper_model(weights=str(modern), image_size=64)
    np.testing.assert_array_equal(paper.get_layer("conv5_block3_3_conv").get_weights()[0], expected)
    np.testing.assert_array_equal(paper.get_layer("conv1_bn").get_weights()[2],
                                  keras_resnet.get_layer("conv1_bn").get_weights()[2])


def test_missing_or_unreadable_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        models.paper_model(weights=tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(WeightsNotFoundError, match="Could not read ResNet50 weights"):
        models.resnet50(input_shape=(32, 32, 3), weights=junk)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_offline_without_cached_weights_gives_advice_not_a_traceback(tmp_path, monkeypatch):
    keras_home = tmp_path / "keras-home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(models, "IMAGENET_WEIGHTS_URL", f"http://127.0.0.1:{_closed_port()}/{models.IMAGENET_WEIGHTS_FILE}")
    assert models.imagenet_weights_cached() is None
    with pytest.raises(WeightsNotFoundError) as caught:
        models.paper_model(weights="imagenet")
    message = str(caught.value)
    assert isinstance(caught.value, BrainlabError)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "~/.keras/models/" in message and str(keras_home / "models") in message
    assert "weights=None" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained urllib traceback
    assert not (keras_home / "models" / models.IMAGENET_WEIGHTS_FILE).exists()  # nothing half-written


def test_imagenet_weights_cached_finds_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert models.imagenet_weights_cached() is None
    cached = tmp_path / "models" / models.IMAGENET_WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"\0" * 10)
    assert models.imagenet_weights_cached() == cached


def test_default_weights_say_which_start_and_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert models.default_weights() is None  # quick mode, nothing cached: no download for a smoke run
    assert capsys.readouterr().out == ("Weights: a random start (quick mode, and the ImageNet weights are not "
                                       "cached: no 94 MB download for a smoke run).\n")
    monkeypatch.setenv("BRAINLAB_QUICK", "0")
    assert models.default_weights() == "imagenet"  # full mode: always, downloaded once
    assert capsys.readouterr().out == "Weights: ImageNet (Keras downloads them once, about 94 MB).\n"
    cached = tmp_path / "models" / models.IMAGENET_WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"\0" * 10)
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert models.default_weights() == "imagenet"
    assert capsys.readouterr().out == f"Weights: ImageNet (quick mode, and they are cached at {cached}).\n"


def test_brainlab_weights_random_asks_for_a_random_start_in_every_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / models.IMAGENET_WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"\0" * 10)  # even with the weights at hand
    monkeypatch.setenv("BRAINLAB_WEIGHTS", "random")
    for quick in ("0", "1"):
        monkeypatch.setenv("BRAINLAB_QUICK", quick)
        assert models.default_weights() is None
        assert "for timing only, the accuracies mean nothing" in capsys.readouterr().out
    monkeypatch.setenv("BRAINLAB_WEIGHTS", "imagenet")
    assert models.default_weights() == "imagenet"
    monkeypatch.setenv("BRAINLAB_WEIGHTS", "resnet")
    with pytest.raises(ValueError, match="BRAINLAB_WEIGHTS='resnet': use imagenet, random, or leave it unset"):
        models.default_weights()


def test_imagenet_weights_download_through_keras_into_its_cache(tmp_path, monkeypatch, keras_resnet, saved_resnet):
    """The real download path (keras.utils.get_file with an MD5 check), served by a local HTTP server."""
    served = tmp_path / "served"
    served.mkdir()
    weights_file = served / models.IMAGENET_WEIGHTS_FILE
    weights_file.symlink_to(saved_resnet[1])  # the legacy .h5 format of the real ImageNet file
    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{models.IMAGENET_WEIGHTS_FILE}"
        monkeypatch.setattr(models, "IMAGENET_WEIGHTS_URL", url)
        monkeypatch.setattr(models, "IMAGENET_WEIGHTS_MD5", "0" * 32)  # a corrupt download is refused...
        with pytest.raises(WeightsNotFoundError, match="Could not download"):
            models.resnet50(input_shape=(64, 64, 3), weights="imagenet")
        assert models.imagenet_weights_cached() is None  # ...and not kept
        monkeypatch.setattr(models, "IMAGENET_WEIGHTS_MD5", hashlib.md5(weights_file.read_bytes()).hexdigest())
        model = models.paper_model(weights="imagenet", image_size=64)
    finally:
        server.shutdown()
        server.server_close()
    cached = models.imagenet_weights_cached()
    assert cached == keras_home / "models" / models.IMAGENET_WEIGHTS_FILE
    assert cached.read_bytes() == weights_file.read_bytes()
    np.testing.assert_array_equal(model.get_layer("conv5_block3_3_conv").get_weights()[0],
                                  keras_resnet.get_layer("conv5_block3_3_conv").get_weights()[0])
    # Once cached, no server is needed.
    again = models.resnet50(input_shape=(64, 64, 3), weights="imagenet")
    np.testing.assert_array_equal(again.get_layer("conv1_conv").get_weights()[0],
                                  keras_resnet.get_layer("conv1_conv").get_weights()[0])
