"""brainlab under every Keras dtype policy: float32 (CPUs), mixed_float16 (what
``train.device_policy()`` turns on with a GPU) and mixed_bfloat16.

The ``precision`` fixture (tests/conftest.py) runs a test once per policy and ``mixed_precision``
once per mixed policy; the models a test builds take that policy. Sizes are tiny: float16 has
no fast kernels on most CPUs.
"""
from __future__ import annotations

import functools
import json
import os
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import PRECISIONS, brain_like, dtype_policy  # noqa: E402

from brainlab import data, evaluate, explain, models, paper, plots, train, widgets  # noqa: E402
from brainlab.errors import BrainlabError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMPUTE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def scans(n: int, size: int, channels: int, seed: int = 100) -> np.ndarray:
    """``n`` brain-like float32 images in 0..255, (n, size, size, channels)."""
    gray = [np.asarray(brain_like(seed + i, size), dtype=np.float32)[..., None] for i in range(n)]
    return np.repeat(np.stack(gray), channels, axis=-1)


def image_set(n: int = 8, size: int = 24, channels: int = 3) -> data.ImageSet:
    labels = (np.arange(n) % 4).astype(np.int32)
    return data.ImageSet("official-test", scans(n, size, channels).astype(np.uint8), labels,
                         [f"Testing/{data.CLASS_NAMES[k]}/scan{i}.jpg" for i, k in enumerate(labels)])


# --------------------------------------------------------------------------- models
BUILDERS = {
    "small_cnn": (lambda: models.small_cnn(image_size=24, channels=1, filters=(4, 8)), "block1_conv", 24, 1),
    "residual_cnn": (lambda: models.residual_cnn(image_size=24, widths=(4, 8), blocks_per_stage=1),
                     "stem_conv", 24, 1),
    # The paper's size: its parameter counts are known to the parameter.
    "paper_model": (lambda: models.paper_model(weights=None), "conv1_conv", 128, 3),
}


@functools.cache
def float32_parameter_counts(name: str) -> dict:
    with dtype_policy("float32"):
        return models.parameter_counts(BUILDERS[name][0]())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_models_compute_in_the_policy_and_answer_in_float32(precision, name):
    build, conv, size, channels = BUILDERS[name]
    keras.utils.set_random_seed(0)
    model = build()
    assert model.get_layer(conv).compute_dtype == COMPUTE[precision]
    assert model.get_layer(conv).kernel.dtype == "float32"  # weights stay float32
    assert model.get_layer("predictions").dtype_policy.name == "float32"  # the softmax too
    assert model.output.dtype == "float32"
    if name == "paper_model":  # to the parameter, as the paper reports it
        assert models.parameter_counts(model) == paper.PARAMS
        return  # predicting at 128 px is slow in float16 on a CPU: the Grad-CAM test below predicts at 64 px
    assert models.parameter_counts(model) == float32_parameter_counts(name)
    probabilities = model.predict_on_batch(scans(2, size, channels))
    assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_resnet50_with_its_top_ends_in_a_float32_softmax():
    with dtype_policy("mixed_float16"):
        model = models.resnet50(input_shape=(32, 32, 3), include_top=True, classes=10)
    assert model.get_layer("conv1_conv").compute_dtype == "float16"
    assert model.output.dtype == "float32"


# --------------------------------------------------------------------------- training
def tiny_data(n=16, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 1)).astype("float32")
    y = np.arange(n) % 4
    x[y == 1] *= 0.5
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def frozen_base_cnn():
    """A small CNN whose first block is frozen: fit can cache that block's output."""
    keras.utils.set_random_seed(0)
    model = models.small_cnn(image_size=16, channels=1, filters=(4, 8))
    models.freeze([layer for layer in model.layers if layer.name.startswith("block1_")])
    train.compile_model(model)
    return model


def test_fit_full_and_cached_paths_save_and_load(precision, tmp_path):
    runs = {}
    for cache in (False, True):
        model = frozen_base_cnn()
        result = train.fit(model, tiny_data(), tiny_data(8, seed=1), tmp_path / str(cache), 1,
                           cache_features=cache, shuffle_cached=False, progress=False)
        assert result.cached_features == cache
        assert np.isfinite(result.history["loss"]).all() and np.isfinite(result.history["val_loss"]).all()
        runs[cache] = model, result
    # Training on cached features is training the same model: the same numbers, up to rounding.
    tolerance = {"float32": 1e-5, "mixed_float16": 1e-3, "mixed_bfloat16": 1e-2}[precision]
    np.testing.assert_allclose(runs[True][1].history["loss"], runs[False][1].history["loss"], rtol=tolerance)

    model, result = runs[True]
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["device"]["dtype_policy"] == precision
    assert saved["optimizer"]["name"].startswith("adam") and saved["optimizer"]["learning_rate"] == pytest.approx(1e-3)
    assert ("loss_scale" in saved["optimizer"]) == (precision == "mixed_float16")  # Keras scales float16 losses

    x = next(iter(tiny_data()))[0]
    expected = model.predict_on_batch(x)
    for loading_policy in PRECISIONS:  # a saved model comes back under its own policy, whatever the session's
        with dtype_policy(loading_policy), warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # e.g. "Skipping variable loading for optimizer"
            loaded = models.load_model(result.run_dir / "last.keras")
            assert keras.config.dtype_policy().name == loading_policy
        assert loaded.dtype_policy.name == models.saved_dtype_policy(result.run_dir / "last.keras") == precision
        assert loaded.get_layer("block2_conv").compute_dtype == COMPUTE[precision]
        assert loaded.output.dtype == "float32"
        assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
        np.testing.assert_allclose(loaded.predict_on_batch(x), expected, atol=1e-6)


def test_gradient_norms_are_the_float32_ones_under_every_policy(mixed_precision):
    x, y = scans(4, 16, 3), np.arange(4)
    norms = {}
    for policy in ("float32", mixed_precision):
        with dtype_policy(policy):
            keras.utils.set_random_seed(0)
            model = models.deep_stack(8, shortcuts=False, image_size=16)
            norms[policy] = train.gradient_norms(model, x, y)
    assert model.get_layer("block1_1_conv").compute_dtype == COMPUTE[mixed_precision]  # its policy came back
    assert list(norms["float32"]) == list(norms[mixed_precision])
    # Without float32 the vanishing gradients near the input (about 1e-9 here) are 0 in float16.
    assert min(norms[mixed_precision].values()) > 0
    np.testing.assert_allclose(list(norms[mixed_precision].values()), list(norms["float32"].values()), rtol=1e-5)


# --------------------------------------------------------------------------- device_policy
def test_device_policy_takes_the_precision_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("BRAINLAB_PRECISION", "mixed_bfloat16")
    policy = train.device_policy()
    assert policy.precision == "mixed_bfloat16" and policy.mixed_precision
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    printed = capsys.readouterr().out
    assert "mixed_bfloat16 (bfloat16 compute, float32 weights)" in printed
    assert not re.search(r"(?<!b)float16 compute", printed)  # bfloat16 is not float16
    # An argument says more than the environment.
    assert train.device_policy(precision="float32", verbose=False).precision == "float32"
    assert train.device_policy(mixed_precision=True, verbose=False).precision == "mixed_float16"
    monkeypatch.setenv("BRAINLAB_PRECISION", "half")
    with pytest.raises(BrainlabError, match="BRAINLAB_PRECISION='half'.*float32, mixed_float16, mixed_bfloat16"):
        train.device_policy(verbose=False)


@pytest.mark.parametrize("precision_name", PRECISIONS)
def test_device_policy_accepts_a_precision_by_name(precision_name):
    policy = train.device_policy(precision=precision_name, verbose=False)
    assert policy.precision == keras.config.dtype_policy().name == precision_name
    assert policy.mixed_precision == (precision_name != "float32")
    assert policy.gpus == train.gpu_count()  # this machine's GPUs, none on most CPUs
    where = f"{policy.gpus} GPU{'s' if policy.gpus > 1 else ''}" if policy.gpus else "CPU only (no GPU found)"
    assert str(policy).startswith(f"{where}: {precision_name}")
    agreeing = train.device_policy(precision=precision_name, mixed_precision=precision_name != "float32",
                                   apply=False, verbose=False)
    assert agreeing.precision == precision_name


FLAGS = "fpu vme de pse tsc msr avx2 avx512f avx512bw"


@pytest.mark.parametrize("flags, native", [(FLAGS, False), (FLAGS + " avx512_bf16", True),
                                           (FLAGS + " amx_bf16 amx_tile", True), ("", False)])
def test_cpu_has_bfloat16_reads_the_flags_of_proc_cpuinfo(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert train.cpu_has_bfloat16(cpuinfo) is native
    assert train.cpu_has_bfloat16(tmp_path / "absent") is False  # no /proc/cpuinfo (macOS, Windows)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: avx512_bf16_not_a_flag\n")
    assert train.cpu_has_bfloat16(cpuinfo) is False


def test_bfloat16_on_a_cpu_only_where_asked_and_the_cpu_has_it(monkeypatch):
    native = train.cpu_has_bfloat16()  # this machine's answer: the test holds on CPUs with and without it
    on_gpu = train.gpu_count() > 0  # and on a GPU, whose mixed_float16 comes first: cpu_bfloat16 is for a CPU
    assert train.device_policy(verbose=False).precision == ("mixed_float16" if on_gpu else "float32")
    asked = train.device_policy(cpu_bfloat16=True, verbose=False)
    assert asked.precision == keras.config.dtype_policy().name == (
        "mixed_float16" if on_gpu else "mixed_bfloat16" if native else "float32")
    monkeypatch.setenv("BRAINLAB_PRECISION", "float32")  # the environment and arguments say more
    assert train.device_policy(cpu_bfloat16=True, verbose=False).precision == "float32"
    assert train.device_policy(cpu_bfloat16=True, precision="mixed_float16", verbose=False).precision == "mixed_float16"


def test_device_policy_refuses_contradictions_and_unknown_names():
    with pytest.raises(ValueError, match="contradict"):
        train.device_policy(precision="mixed_float16", mixed_precision=False, verbose=False)
    with pytest.raises(ValueError, match="contradict"):
        train.device_policy(precision="float32", mixed_precision=True, verbose=False)
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_float16, mixed_bfloat16"):
        train.device_policy(precision="float16", verbose=False)
    assert keras.config.dtype_policy().name == "float32"  # nothing was applied


def test_the_policy_comes_back_when_a_test_fails():
    """What the ``precision`` fixture runs around each test: a failure inside still restores the policy."""
    with pytest.raises(AssertionError, match="a failing test"):
        with dtype_policy("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise AssertionError("a failing test")
    assert keras.config.dtype_policy().name == "float32"


# --------------------------------------------------------------------------- evaluation
def test_predict_and_metrics_under_every_policy(precision):
    keras.utils.set_random_seed(0)
    model = models.small_cnn(image_size=24, filters=(4, 8))
    test = image_set()
    preds = evaluate.predict(model, test, batch_size=3)
    assert preds.probabilities.dtype == np.float64
    # The model's own answers for the same batches of 3: a batch of another size may take other 16-bit kernels
    # (oneDNN and cuDNN choose by shape), whose rounding differs by far more than 1e-6 on some machines.
    batches = [test.images[i:i + 3].astype(np.float32) for i in range(0, len(test), 3)]
    np.testing.assert_allclose(preds.probabilities, np.concatenate([model.predict_on_batch(b) for b in batches]),
                               atol=1e-6)
    metrics = json.loads(json.dumps(evaluate.metrics_dict(preds)))
    assert metrics["n_images"] == 8 and 0 <= metrics["accuracy"] <= 1


def test_a_16_bit_softmax_is_read_as_probabilities_not_as_scores(mixed_precision):
    """A model whose softmax is not float32 answers in 16 bits; its rows sum to 1 only roughly."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4, activation="softmax")])
    x = np.random.default_rng(0).normal(0, 3, (2000, 16)).astype("float32")
    outputs = model.predict(x, verbose=0, batch_size=1000)
    assert outputs.dtype.name == COMPUTE[mixed_precision]
    # How far the model's rows miss 1 depends on the machine's 16-bit kernels (at most 1.5e-3 in float16 and
    # 2.9e-3 in bfloat16 on a 2-core AMD EPYC, 4e-4 in float16 on an Intel Xeon with AMX; a kernel that
    # normalises after rounding could even hit 1), so rows that surely miss are made here as well: the exact
    # softmax rounded to 16 bits, which numpy and ml_dtypes do alike on every machine (3.5e-4 and 2.9e-3 at
    # most, beyond float32's slack of about 1e-7).
    half = outputs.dtype
    logits = np.random.default_rng(1).normal(0, 3, (2000, 4))
    exact = np.exp(logits - logits.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    rounded = exact.astype(half)
    assert np.abs(rounded.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    for answers in (outputs, rounded):
        probabilities = evaluate.as_probabilities(answers)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
        # rescaled, not pushed through a second softmax (which would flatten them towards 0.25)
        np.testing.assert_allclose(probabilities, answers.astype(np.float64), atol=0.02)
    # the rescaled rows are the exact softmax again, within 16-bit rounding
    epsilon = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[half.name]  # the step from 1 to the next number
    np.testing.assert_allclose(evaluate.as_probabilities(rounded), exact, atol=2 * epsilon)


# --------------------------------------------------------------------------- Grad-CAM
# Grad-CAM maps (normalised to 0..1) of the same weights under a mixed policy and under float32:
# the largest absolute difference, and the smallest correlation, over the class each model
# predicts for 4 brain-like images. Measured with weights=None, seeds 0..9 (small_cnn and
# residual_cnn at 32 px, paper_model at 64 px, TF 2.21, 2-core AMD EPYC without AVX-512):
#                  mixed_float16                  mixed_bfloat16
#   small_cnn      max |diff| <= 0.0013, r >= 0.99999   max |diff| <= 0.0084, r >= 0.99998
#   residual_cnn   max |diff| <= 0.0026, r >= 0.99999   max |diff| <= 0.0174, r >= 0.99986
#   paper_model    max |diff| <= 0.050,  r >= 0.9991    max |diff| <= 0.34,   r >= 0.942
# The paper's model at 64 px has a 2 x 2 last feature map, so one of its four numbers moving
# moves a quarter of the map; through 50 layers bfloat16's 8 significant bits move it most.
# The tolerances are about three times the worst measured difference (seed 0 is the test's):
GRAD_CAM_TOLERANCE = {  # (max abs difference, min correlation)
    "mixed_float16": {"small_cnn": (0.005, 0.9999), "residual_cnn": (0.01, 0.9999), "paper_model": (0.15, 0.99)},
    "mixed_bfloat16": {"small_cnn": (0.03, 0.999), "residual_cnn": (0.05, 0.999), "paper_model": (0.6, 0.8)},
}
CAM_BUILDERS = {
    "small_cnn": (lambda: models.small_cnn(image_size=32, channels=1, filters=(8, 16)), 32, 1),
    "residual_cnn": (lambda: models.residual_cnn(image_size=32, channels=1, widths=(8, 16), blocks_per_stage=1),
                     32, 1),
    "paper_model": (lambda: models.paper_model(weights=None, image_size=64), 64, 3),
}


@functools.cache
def float32_grad_cams(name: str):
    """(weights, images, explained classes, maps) of one model built under float32, seed 0."""
    build, size, channels = CAM_BUILDERS[name]
    with dtype_policy("float32"):
        keras.utils.set_random_seed(0)
        model = build()
        images = scans(4, size, channels)
        classes = model.predict_on_batch(images).argmax(axis=1)
        return model.get_weights(), images, classes, explain.grad_cam(model, images, classes)


@pytest.mark.parametrize("name", list(CAM_BUILDERS))
def test_grad_cam_under_mixed_precision_matches_float32(mixed_precision, name):
    weights, images, classes, expected = float32_grad_cams(name)
    model = CAM_BUILDERS[name][0]()
    model.set_weights(weights)
    maps = explain.grad_cam(model, images, classes)
    assert maps.dtype == np.float32 and maps.shape == expected.shape
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() == pytest.approx(1.0)
    largest, lowest = GRAD_CAM_TOLERANCE[mixed_precision][name]
    assert np.abs(maps - expected).max() <= largest
    assert min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(maps, expected)) >= lowest


def test_grad_cam_ignores_augmentation_layers(precision):
    """Augmentation layers act only while training; Grad-CAM explains the model at inference."""
    keras.utils.set_random_seed(0)
    model = models.residual_cnn(image_size=32, widths=(8,), blocks_per_stage=1, augment_images=True)
    image = scans(1, 32, 1)[0]
    first, again = explain.grad_cam(model, image, 0), explain.grad_cam(model, image, 0)
    np.testing.assert_array_equal(first, again)


# --------------------------------------------------------------------------- widgets and figures
def test_explorer_and_figures_under_every_policy(precision):
    keras.utils.set_random_seed(0)
    model = models.small_cnn(image_size=24, filters=(4, 8))
    test = image_set()
    explorer = widgets.prediction_explorer(model, test, order="least confident first")
    for step in (0, 5):
        explorer.slider.value = step
        assert explorer.heatmap.dtype == np.float32 and explorer.heatmap.shape == (24, 24)
        assert np.isfinite(explorer.heatmap).all() and 0 <= explorer.heatmap.min() <= explorer.heatmap.max() <= 1
        np.testing.assert_allclose(explorer.heatmap, explain.grad_cam(model, test.images[explorer.position]),
                                   atol=1e-5)
        bars = explorer.figure.axes[2].patches
        np.testing.assert_allclose([bar.get_width() for bar in bars], explorer.probabilities)
        assert bytes(explorer.picture.value).startswith(b"\x89PNG")

    preds = explorer.predictions
    roc = plots.roc_curves(preds)
    assert roc.axes and "ROC" in roc.get_suptitle()
    heatmap = explain.grad_cam(model, test.images[1])
    figure = plots.explained_prediction(test.images[1], preds.probabilities[1], heatmap, true_label=1)
    assert f"p = {preds.probabilities[1].max():.2f}" in figure.get_suptitle()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_figures_take_16_bit_arrays(dtype):
    half = tf.as_dtype(dtype).as_numpy_dtype
    image = scans(1, 24, 3)[0]
    heatmap = np.linspace(0, 1, 24 * 24, dtype=np.float32).reshape(24, 24)
    probabilities = np.array([0.125, 0.25, 0.5, 0.125], dtype=np.float32)
    figure = plots.explained_prediction(image.astype(half), probabilities.astype(half), heatmap.astype(half),
                                        true_label=2)
    np.testing.assert_allclose([bar.get_width() for bar in figure.axes[2].patches], probabilities)
    assert "predicted: no_tumor, p = 0.50 (right)" in figure.get_suptitle()
    shown = figure.axes[1].images[0].get_array()
    expected = plots.overlay(image, heatmap)
    assert np.abs(shown.astype(int) - expected).max() <= 2  # 16-bit heat, the same colours


# --------------------------------------------------------------------------- a notebook on a GPU's policy
@pytest.mark.slow
def test_notebook_08_runs_under_mixed_float16(tmp_path):
    """Notebook 08 in quick mode, in a fresh kernel told to use mixed_float16 as on a GPU."""
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / "08_can_we_trust_it.ipynb", as_version=4)
    probe = nbformat.v4.new_code_cell(  # the residual CNN it questions, and the paper's model of its optional cells
        'import keras\nprint("policy:", keras.config.dtype_policy().name, "| conv:",'
        ' model.get_layer("stem_conv").compute_dtype, "| output:", model.output.dtype)\n'
        'print("paper model | conv:", paper_model.get_layer("conv1_conv").compute_dtype, "| output:",'
        ' paper_model.output.dtype)')
    nb.cells.append(probe)
    env = {**os.environ, "BRAINLAB_QUICK": "1", "BRAINLAB_PRECISION": "mixed_float16",
           "BRAINLAB_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)

    errors = [(cell.get("id"), out.get("ename"), out.get("evalue")) for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, errors
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    # device_policy()'s report: "[brainlab] CPU only (no GPU found): mixed_float16 (float16 compute, ..."
    assert re.search(r"^\[brainlab\] .*: mixed_float16 \(float16 compute, float32 weights\)", printed, re.M), printed
    assert "policy: mixed_float16 | conv: float16 | output: float32" in printed
    assert "paper model | conv: float16 | output: float32" in printed
