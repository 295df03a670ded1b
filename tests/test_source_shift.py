"""Settings aimed at differences of source: the source-shift augmentation and cropping to the head."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import brain_like, make_dataset
from PIL import Image

from brainlab import data, images
from brainlab.cli import main
from brainlab.errors import BrainlabError


def framed_head(width=200, height=160, box=(20, 30, 100, 130), level=180) -> Image.Image:
    """A black frame with one bright ellipse (the 'head') filling ``box`` (left, top, right, bottom)."""
    yy, xx = np.mgrid[0:height, 0:width]
    left, top, right, bottom = box
    cx, cy, rx, ry = (left + right) / 2, (top + bottom) / 2, (right - left) / 2, (bottom - top) / 2
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    return Image.fromarray(np.where(inside, level, 0).astype(np.uint8))


# --------------------------------------------------------------------------- cropping to the head


def test_head_crop_is_the_square_around_the_head_with_a_margin():
    im = framed_head()
    crop = images.head_crop(im)
    assert crop.size[0] == crop.size[1]
    head_side = 100  # the taller side of the 80x100 ellipse
    assert head_side * 1.0 <= crop.size[0] <= head_side * (1 + 2 * images.HEAD_MARGIN) + 2
    arr = np.asarray(crop)
    # the head is centred: the same amount of black to its left and right, above and below
    cols, rows = np.flatnonzero(arr.max(0)), np.flatnonzero(arr.max(1))
    assert abs(cols[0] - (arr.shape[1] - 1 - cols[-1])) <= 2 and abs(rows[0] - (arr.shape[0] - 1 - rows[-1])) <= 2
    # and all of it is kept
    assert (arr > 0).sum() == pytest.approx((np.asarray(im) > 0).sum(), rel=0.01)


def test_a_head_at_the_edge_is_padded_with_black_and_a_blank_frame_is_left_alone():
    edge = images.head_crop(framed_head(box=(0, 0, 60, 140)))
    assert edge.size[0] == edge.size[1] >= 130  # the 140-pixel head, less the outliers content_box leaves out
    assert np.asarray(edge)[:, :3].max() == 0  # outside the original frame: black
    blank = Image.new("L", (90, 70))
    assert images.head_crop(blank) is blank


def test_read_image_crops_before_resizing_and_refuses_an_unknown_crop(tmp_path):
    path = tmp_path / "scan.png"
    framed_head(400, 300, box=(40, 40, 160, 200)).save(path)
    whole = images.read_image(path, 64, 1)
    cropped = images.read_image(path, 64, 1, crop="head")
    assert whole.shape == cropped.shape == (64, 64, 1)
    assert (cropped > 0).mean() > 2 * (whole > 0).mean()  # the head fills the frame
    with pytest.raises(ValueError, match="crop must be one of none, head"):
        images.read_image(path, 64, 1, crop="brain")


def test_loaders_honour_crop_and_cache_each_crop_apart(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=6, size=96)
    whole = data.load_splits(root, 48, 1, progress=False)
    cropped = data.load_splits(root, 48, 1, progress=False, crop="head")
    again = data.load_splits(root, 48, 1, progress=False, crop="head")  # from the cache
    assert whole.test.paths == cropped.test.paths
    assert not np.array_equal(whole.test.images, cropped.test.images)
    assert np.array_equal(cropped.test.images, again.test.images)
    expected = np.stack([images.read_image(root / p, 48, 1, crop="head") for p in cropped.test.paths])
    assert np.array_equal(cropped.test.images, expected)
    labelled = data.load_labelled(root / "Testing", 48, 1, progress=False, crop="head")
    assert np.array_equal(labelled.images, expected)
    with pytest.raises(BrainlabError, match="Unknown crop 'brain'"):
        data.load_splits(root, 48, 1, progress=False, crop="brain")


# --------------------------------------------------------------------------- the source-shift augmentation


def test_random_gamma_raises_each_image_to_one_power_while_training_only(precision):
    import keras

    from brainlab import models

    rng = np.random.default_rng(0)
    x = rng.uniform(20, 235, (6, 16, 16, 1)).astype("float32")
    layer = models.RandomGamma(0.4, seed=3)
    tolerance = 0.002 if precision == "float32" else 0.05
    unchanged = np.asarray(keras.ops.cast(layer(x, training=False), "float32"))  # 16-bit policies round it
    assert unchanged == pytest.approx(x, rel=tolerance / 10)
    y = np.asarray(keras.ops.cast(layer(x, training=True), "float32"))
    assert layer.compute_dtype == keras.mixed_precision.global_policy().compute_dtype
    gammas = np.log(np.clip(y, 1e-3, None) / 255) / np.log(x / 255)
    assert np.ptp(gammas.reshape(6, -1), axis=1).max() < tolerance * 10  # one power per image
    per_image = np.median(gammas.reshape(6, -1), axis=1)
    assert ((per_image > np.exp(-0.4) - tolerance) & (per_image < np.exp(0.4) + tolerance)).all()
    assert np.ptp(per_image) > 0.05  # images get different powers


def test_source_shift_augmentation_trains_on_changed_images_and_predicts_on_the_real_ones(precision, tmp_path):
    import keras

    from brainlab import models

    x = np.stack([np.asarray(brain_like(s, 64))[..., None] for s in range(4)]).astype("float32")
    inputs = keras.Input((64, 64, 1))
    augmenter = keras.Model(inputs, models.source_shift_augment(inputs))
    names = {layer.name for layer in augmenter.layers}
    assert {"augment_flip", "augment_rotate", "augment_gamma", "augment_blur", "augment_noise", "augment_zoom",
            "augment_shift"} <= names
    assert np.asarray(keras.ops.cast(augmenter(x, training=False), "float32")) == pytest.approx(x, abs=1.0)
    changed = np.asarray(keras.ops.cast(augmenter(x, training=True), "float32"))
    assert np.abs(changed - x).mean() > 5

    model = models.residual_cnn(64, augmentation="source-shift")
    assert {"augment_gamma", "augment_noise"} <= {layer.name for layer in model.layers}
    assert model.count_params() == models.residual_cnn(64).count_params()  # augmentation has no weights
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = models.load_model(path)
    assert np.asarray(reloaded(x, training=False)) == pytest.approx(np.asarray(model(x, training=False)), abs=1e-5)
    with pytest.raises(ValueError, match="augmentation must be 'standard' or 'source-shift'"):
        models.residual_cnn(64, augmentation="strong")


# --------------------------------------------------------------------------- through a run and an evaluation


@pytest.mark.slow
def test_a_run_on_head_crops_is_evaluated_on_head_crops(tmp_path):
    from brainlab import evaluate, models

    root = make_dataset(tmp_path / "data", per_class=6, size=96)
    run = tmp_path / "run"
    assert main(["train", "--recipe", "residual-cnn", "--data", str(root), "--epochs", "1", "--image-size", "48",
                 "--augmentation", "source-shift", "--crop", "head", "--out", str(run)]) == 0
    settings = json.loads((run / "evaluation.json").read_text())["settings"]
    assert (settings["augmentation"], settings["crop"]) == ("source-shift", "head")
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(run), "--data", str(root / "Testing"), "--out", str(out)]) == 0
    assert json.loads((out / "evaluation.json").read_text())["settings"]["crop"] == "head"
    scored = pd.read_csv(out / "predictions.csv")
    model = models.load_model(run / "run" / "best.keras")
    by_hand = evaluate.predict(model, data.load_labelled(root / "Testing", 48, 1, crop="head", progress=False,
                                                         name="external-test"))
    assert scored["path"].tolist() == by_hand.paths
    probabilities = scored[[c for c in scored.columns if c.startswith("p(")]].to_numpy()
    assert probabilities == pytest.approx(by_hand.probabilities, abs=1e-4)
