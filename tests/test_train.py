"""brainlab.train: run directories, resuming after a kill, the cached-feature path, devices."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from brainlab import config, models, runs, train
from brainlab.errors import BrainlabError

CHILD = Path(__file__).with_name("_train_child.py")


def synthetic(n=48, size=32, channels=3, seed=0, batch_size=16):
    """Random images with a learnable difference between classes, as a batched dataset."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, channels)).astype("float32")
    y = np.arange(n) % 4
    x[y == 1] *= 0.5
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_child(*args, timeout=240):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, str(CHILD), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_class_weights_are_balanced():
    weights = train.class_weights([0, 0, 0, 1, 1, 2])
    assert weights == pytest.approx({0: 6 / (3 * 3), 1: 6 / (3 * 2), 2: 6 / (3 * 1), 3: 1.0})
    assert train.class_weights(np.repeat([0, 1, 2, 3], 5)) == pytest.approx({0: 1, 1: 1, 2: 1, 3: 1})


def test_fit_writes_a_complete_run_directory(tmp_path):
    config.set_seed(0)
    model = models.small_cnn(image_size=32, filters=(8, 16))
    data = synthetic()
    result = train.fit(model, data, data, tmp_path, epochs=3, class_weight="balanced", progress=False)

    assert {p.name for p in tmp_path.iterdir()} == set(train.RUN_FILES)  # and no backup/ left behind
    rows = read_csv(tmp_path / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    assert result.history["val_loss"] == pytest.approx([float(r["val_loss"]) for r in rows])

    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"] == "small_cnn" and cfg["epochs"] == 3 and cfg["seed"] == config.DEFAULT_SEED
    assert cfg["parameters"]["total"] == model.count_params()
    assert cfg["class_weight"] == pytest.approx({"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0})
    assert cfg["cached_features"] is False and cfg["device"]["gpus"] == train.gpu_count()
    assert {"tensorflow", "keras", "brainlab"} <= set(cfg["versions"])

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    best_epoch = int(np.argmin(result.history["val_loss"]))
    assert metrics["best_epoch"] == best_epoch and metrics["epochs_finished"] == 3
    assert metrics["last"]["epoch"] == 2 and metrics["resumed_from_epoch"] == 0
    # times: each epoch's (history.csv) within the fit's, and the fit's within the time between the files
    epoch_seconds = [float(r["seconds"]) for r in rows]
    assert metrics["seconds_per_epoch"] == pytest.approx(float(np.median(epoch_seconds)))
    written = ((tmp_path / "metrics.json").stat().st_mtime - (tmp_path / "config.json").stat().st_mtime)
    assert 0 < sum(epoch_seconds) <= metrics["train_seconds"] <= written + 0.01

    # last.keras is the model as it ended; best.keras scores the best epoch's val_loss.
    x = next(iter(data))[0]
    last = models.load_model(tmp_path / "last.keras")
    np.testing.assert_allclose(last.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    best = models.load_model(tmp_path / "best.keras")
    assert best.evaluate(data, verbose=0, return_dict=True)["loss"] == pytest.approx(
        metrics["best"]["val_loss"], rel=1e-4)

    # The training-curves figure marks the epoch of best.keras (1-based on its axis), from the run or its file.
    from brainlab import plots

    for history in (result, tmp_path / "history.csv", result.history):
        marker = plots.training_curves(history).axes[1].get_lines()[-1]
        assert marker.get_xdata()[0] == metrics["best_epoch"] + 1

    # Rerun with the same settings, the finished run is reused: nothing trained, nothing rewritten, its last weights.
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    config.set_seed(1)
    again = models.small_cnn(image_size=32, filters=(8, 16))
    reused = train.fit(again, data, data, tmp_path, epochs=3, class_weight="balanced", progress=False)
    assert reused.reused and not result.reused and reused.metrics == metrics and reused.history == result.history
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == written
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # With another setting it is refused, naming each difference, and nothing is touched.
    with pytest.raises(BrainlabError) as refused:
        train.fit(models.small_cnn(image_size=32, filters=(8, 16)), data, data, tmp_path, epochs=1, seed=7,
                  class_weight="balanced", progress=False)
    assert str(refused.value).startswith(f"{tmp_path} holds a finished run trained with other settings:\n"
                                         "  epochs: 3 there, 1 now\n  seed: 42 there, 7 now\n")
    assert f"delete {tmp_path} (rm -r '{tmp_path}') to train it again" in str(refused.value)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == written


@pytest.mark.slow  # 10-30 s on a 2-core CPU: the full suite runs it, test --fast does not
def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "log.jsonl"
    killed = run_child("resume", run_dir, log, 1)  # dies right after epoch 1 (the second)
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert (run_dir / runs.BACKUP_DIR).is_dir() and not (run_dir / "metrics.json").exists()
    finished = run_child("resume", run_dir, log, -1)
    assert finished.returncode == 0, finished.stderr[-3000:]

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    first_pid, second_pid = entries[0]["pid"], entries[-1]["pid"]
    first = [e for e in entries if e["pid"] == first_pid]
    second = [e for e in entries if e["pid"] == second_pid]
    assert [e.get("begin", e.get("end")) for e in first] == [0, 0, 1, 1]
    assert [e["begin"] for e in second if "begin" in e] == [2, 3]  # resumed, not restarted
    # ...with the weights the killed process had after its last finished epoch.
    assert second[0]["checksum"] == pytest.approx(first[-1]["checksum"], rel=1e-6)
    assert second[0]["steps"] == first[-1]["steps"] == 2 * 3  # and its optimizer's state: 2 epochs of 3 batches

    assert [int(r["epoch"]) for r in read_csv(run_dir / "history.csv")] == [0, 1, 2, 3]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs_finished"] == 4
    assert not (run_dir / runs.BACKUP_DIR).exists()


def test_a_fit_folder_is_finished_by_its_own_training_record_only(tmp_path):
    """metrics.json in the folder itself decides: not an evaluation.json beside it, not a run/ folder inside it."""
    data = synthetic(n=32)

    def fit(run_dir):
        config.set_seed(0)
        return train.fit(models.small_cnn(image_size=32, filters=(8,)), data, data, run_dir, epochs=1,
                         progress=False)

    # A finished training with a folder called run/ (an experiment's training's name) inside it: reused, untouched.
    done = tmp_path / "done"
    first = fit(done)
    (done / "run").mkdir()
    written = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}
    assert train.run_finished(done)
    again = fit(done)
    assert again.reused and again.metrics == first.metrics
    assert {p.name: p.stat().st_mtime_ns for p in done.iterdir()} == written
    assert [row["epoch"] for row in runs.RunFolder(done).history()] == [0]  # history.csv kept, not cut back

    # Killed right after config.json (its first file), then an evaluation.json put beside it: not finished, so the
    # rerun trains (it used to be taken for a finished run and fail on the missing last.keras).
    started = tmp_path / "started"
    fit(started)
    for path in started.iterdir():
        if path.name != "config.json":
            path.unlink()
    runs.write_json(started / "evaluation.json", {"split": "official-test", "accuracy": 0.5})
    assert not train.run_finished(started)
    resumed = fit(started)
    assert not resumed.reused and resumed.metrics["epochs_finished"] == 1
    assert set(train.RUN_FILES) <= {p.name for p in started.iterdir()} and train.run_finished(started)


def _paper_fit(run_dir, cache_features):
    config.set_seed(3)
    model = models.paper_model(weights=None, image_size=32)
    # Plain SGD: Adam divides by the root of tiny squared gradients, which turns float noise in
    # gradients that are zero in theory (a conv bias before BatchNorm) into full-size steps.
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
    result = train.fit(model, synthetic(n=64), synthetic(n=32, seed=1), run_dir, epochs=3,
                       cache_features=cache_features, shuffle_cached=False, progress=False)
    return model, result


@pytest.mark.slow  # 10-30 s on a 2-core CPU: the full suite runs it, test --fast does not
def test_cached_features_train_the_same_model_as_a_full_fit(tmp_path):
    full_model, full = _paper_fit(tmp_path / "full", False)
    cached_model, cached = _paper_fit(tmp_path / "cached", True)
    assert not full.cached_features and cached.cached_features
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(cached.history[key], full.history[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b, w in zip(cached_model.get_weights(), full_model.get_weights(), full_model.weights):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4, err_msg=w.path)
    config.set_seed(3)  # the same start as both runs: training must have moved the trainable weights
    untrained = models.paper_model(weights=None, image_size=32)
    for name, moved in (("conv5_block3_3_conv", True), ("dense", True), ("conv5_block3_2_conv", False)):
        delta = np.abs(full_model.get_layer(name).get_weights()[0] - untrained.get_layer(name).get_weights()[0]).max()
        assert (delta > 1e-6) == moved, name
    # The saved full model is the trained one.
    last = models.load_model(tmp_path / "cached" / "last.keras")
    x = next(iter(synthetic(n=8)))[0]
    np.testing.assert_allclose(last.predict(x, verbose=0), cached_model.predict(x, verbose=0), atol=1e-5)


def test_split_at_trainable_cuts_the_paper_model_below_its_last_four_layers():
    model = models.paper_model(weights=None, image_size=32)
    extractor, head = train.split_at_trainable(model)
    assert not extractor.trainable_weights
    assert sorted(t.shape[-1] for t in extractor.outputs) == [512, 2048]  # conv5_block3_2_relu, conv5_block2_out
    assert [layer.name for layer in head.layers if layer.weights] == [
        "conv5_block3_3_conv", "conv5_block3_3_bn", "dense", "predictions"]
    assert head.get_layer("dense") is model.get_layer("dense")  # shared: training the head trains the model
    x = next(iter(synthetic(n=4)))[0]
    np.testing.assert_allclose(head.predict(extractor.predict(x, verbose=0), verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_no_cached_features_below_augmentation():
    model = models.improved_model(weights=None, image_size=32)
    with pytest.raises(train.CannotCacheFeatures, match="augment_flip"):
        train.split_at_trainable(model)
    inputs = keras.Input((4,))
    with pytest.raises(train.CannotCacheFeatures, match="nothing .* is frozen"):
        train.split_at_trainable(keras.Model(inputs, keras.layers.Dense(2)(inputs)))


@pytest.mark.skipif(train.gpu_count() > 0, reason="a GPU machine: this checks the CPU-only policy "
                    "(test_mixed_precision.py checks the GPU one)")
def test_device_policy_on_this_cpu():
    policy = train.device_policy(verbose=False)
    assert (policy.gpus, policy.mixed_precision, policy.xla) == (0, False, False)
    assert policy.strategy.num_replicas_in_sync == 1 and "CPU only" in str(policy)
    try:
        forced = train.device_policy(mixed_precision=True, verbose=False)
        assert forced.mixed_precision and keras.config.dtype_policy().name == "mixed_float16"
        model = models.small_cnn(image_size=32, filters=(4,))
        assert model.get_layer("block1_conv").compute_dtype == "float16"
        assert model.output.dtype == "float32"  # the softmax stays in float32
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.slow  # 10-30 s on a 2-core CPU: the full suite runs it, test --fast does not
def test_two_stage_fine_tuning_keeps_batchnorm_frozen(tmp_path):
    config.set_seed(0)
    model = models.improved_model(weights=None, image_size=32)
    data = synthetic(n=32)
    first, second = train.fine_tune_two_stage(model, data, data, tmp_path, head_epochs=1, fine_tune_epochs=1,
                                              progress=False)
    for stage in ("1_head", "2_fine_tune"):
        assert {p.name for p in (tmp_path / stage).iterdir()} == set(train.RUN_FILES)
    assert not first.cached_features and not second.cached_features  # augmentation: full path
    stage1 = models.load_model(tmp_path / "1_head" / "best.keras")

    def weights_of(m, name):
        return m.get_layer(name).get_weights()

    # Stage 1 trained the head only; stage 2 also conv5, with BatchNorm statistics untouched.
    assert not np.array_equal(weights_of(stage1, "predictions")[0], weights_of(model, "predictions")[0])
    assert not np.array_equal(weights_of(stage1, "conv5_block3_3_conv")[0], weights_of(model, "conv5_block3_3_conv")[0])
    np.testing.assert_array_equal(weights_of(stage1, "conv4_block6_3_conv")[0], weights_of(model, "conv4_block6_3_conv")[0])
    for a, b in zip(weights_of(stage1, "conv5_block3_3_bn"), weights_of(model, "conv5_block3_3_bn")):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "2_fine_tune" / "config.json").read_text())["optimizer"]["learning_rate"] == \
        pytest.approx(1e-5)


@pytest.mark.slow  # 10-30 s on a 2-core CPU: the full suite runs it, test --fast does not
def test_two_stage_reuses_a_finished_head_only_if_its_settings_match(tmp_path):
    data = synthetic(n=16, size=32)

    def two_stages(seed, **settings):
        config.set_seed(seed)
        model = models.improved_model(weights=None, image_size=32)
        return train.fine_tune_two_stage(model, data, data, tmp_path, head_epochs=1, fine_tune_epochs=1, seed=seed,
                                         progress=False, **settings)

    first, _ = two_stages(1)
    assert first is not None
    head_trained = (tmp_path / "1_head" / "best.keras").stat().st_mtime_ns
    again, second = two_stages(1)  # the same settings: the finished head is reused
    assert again is None and second.run_dir == tmp_path / "2_fine_tune"
    assert (tmp_path / "1_head" / "best.keras").stat().st_mtime_ns == head_trained

    with pytest.raises(BrainlabError) as refused:  # another seed in the same folder
        two_stages(2)
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / '1_head'} holds a finished run trained with other "
                              "settings:\n  seed: 1 there, 2 now\n")
    assert "Use another output folder (--out, or run_dir=), or delete" in message
    with pytest.raises(BrainlabError, match=r"optimizer.learning_rate: 0.001 there, 0.01 now"):
        two_stages(1, head_learning_rate=1e-2)
    with pytest.raises(BrainlabError, match=r"class_weight_setting: None there, 'balanced' now"):
        two_stages(1, class_weight="balanced")
    assert (tmp_path / "1_head" / "best.keras").stat().st_mtime_ns == head_trained  # refused: nothing touched


@pytest.mark.slow  # 10-30 s on a 2-core CPU: the full suite runs it, test --fast does not
def test_mirrored_strategy_and_deterministic_mode(tmp_path):
    out = tmp_path / "strategy.json"
    child = run_child("strategy", out)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["replicas"] == 2 and report["determinism"]
    first, second = report["runs"]
    assert first["changed"] > 0  # the trained weights came back into the caller's model
    assert first["loss"] == second["loss"]
    assert first["weights"] == second["weights"]
    cfg = json.loads((tmp_path / "strategy.json.run0" / "config.json").read_text())
    assert cfg["device"]["replicas"] == 2 and cfg["deterministic"] is True


def test_fit_without_validation_data_monitors_the_training_loss(tmp_path):
    config.set_seed(0)
    model = models.small_cnn(image_size=32, filters=(8,))
    result = train.fit(model, synthetic(n=32), None, tmp_path, epochs=2, progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["monitor"] == "loss" and metrics["epochs_finished"] == 2
    assert metrics["best_epoch"] == int(np.argmin(result.history["loss"]))
    assert all(np.isfinite(result.history["loss"]))
