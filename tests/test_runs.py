"""brainlab.runs: one writer per run folder, evaluations kept out of runs, resumes only with the recorded settings,
and the results of `brainlab train` written whole after real interruptions."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest

import _train_child
from brainlab import runs, train
from brainlab.cli import main
from brainlab.errors import BrainlabError

CHILD = Path(_train_child.__file__)


def child_env(tmp_path, interrupt=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "BRAINLAB_CACHE": str(tmp_path / "cache")}
    if interrupt:
        env["INTERRUPT"] = interrupt
    return env


def hold_with(folder: Path, pid: int, started=None) -> Path:
    """A lock file as process ``pid`` leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": socket.gethostname(), "process_started": started or runs._process_started(pid),
             "doing": "training", "since": "2030-01-01 00:00:00", "command": "brainlab train --out x"}
    (folder / runs.LOCK).write_text(json.dumps(owner))
    return folder / runs.LOCK


# --------------------------------------------------------------------------- the lock
def test_a_folder_held_by_a_live_process_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    folder = tmp_path / "run"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = hold_with(folder, other.pid)
        with pytest.raises(BrainlabError) as refused, runs.lock(folder):
            pass
        assert str(refused.value) == (
            f"{folder} is busy: process {other.pid} on {socket.gethostname()} has been training there since "
            f"2030-01-01 00:00:00 (`brainlab train --out x`). Wait for it to end or stop it, or use another folder; "
            f"if no such process runs any more, delete {lock}.")
        assert json.loads(lock.read_text())["pid"] == other.pid  # refused: the owner's lock is kept
    finally:
        other.kill()
        other.wait()
    with runs.lock(folder, "evaluating") as taken:  # its process is gone: the lock is stale
        assert json.loads(taken.read_text())["pid"] == os.getpid()
        assert json.loads(taken.read_text())["doing"] == "evaluating"
    assert not lock.exists()


def test_a_lock_whose_pid_now_belongs_to_another_process_is_stale(tmp_path):
    hold_with(tmp_path, os.getpid(), started="1")  # our pid, but a process that started at another time
    with runs.lock(tmp_path):
        with runs.lock(tmp_path):  # the same process may take it again
            pass
        assert (tmp_path / runs.LOCK).exists()
    assert not (tmp_path / runs.LOCK).exists()


def test_a_lock_is_released_on_an_error_and_an_empty_folder_it_made_removed(tmp_path):
    with pytest.raises(KeyboardInterrupt), runs.lock(tmp_path / "new" / "run"):
        assert (tmp_path / "new" / "run" / runs.LOCK).is_file()
        raise KeyboardInterrupt
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "run").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / f"{runs.PARTIAL}99-metrics.json").write_text("{")  # what a killed writer left
    with runs.lock(tmp_path / "kept"):
        assert list((tmp_path / "kept").iterdir()) == [tmp_path / "kept" / runs.LOCK]


def test_a_second_training_into_a_busy_folder_is_refused(tmp_path):
    """A real training holds its folder (paused at its first backup): a second one there is refused, and the
    folder is none the worse for it."""
    run_dir, log = tmp_path / "run", tmp_path / "log.jsonl"
    first = subprocess.Popen([sys.executable, str(CHILD), "resume", str(run_dir), str(log), "-1"],
                             env=child_env(tmp_path, "epoch-0.weights.h5:1:PAUSE:before"))
    try:
        deadline = time.monotonic() + 240
        while not (log.exists() and "interrupted" in log.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "the first training never got there"
            time.sleep(0.5)
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
        with pytest.raises(BrainlabError, match=rf"^{re.escape(str(run_dir))} is busy: process {first.pid} on .* has "
                                                r"been training there since .*_train_child.py resume"):
            _train_child.tiny_fit(run_dir)
        assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    finally:
        first.kill()
        first.wait()
    model, result = _train_child.tiny_fit(run_dir)  # its owner is gone: the run is taken over and finished
    assert result.metrics["epochs_finished"] == 4
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(train.RUN_FILES)


# --------------------------------------------------------------------------- evaluations stay out of runs
def fake_run(out: Path) -> Path:
    """What `brainlab train --out OUT` leaves, as far as telling a run folder goes."""
    (out / "run").mkdir(parents=True)
    (out / "run" / runs.CONFIG).write_text(json.dumps({"model": "small_cnn", "versions": {"brainlab": "0.1.0"}}))
    (out / "evaluation.json").write_text(json.dumps({"accuracy": 0.5}))
    return out


@pytest.mark.parametrize("where", ["RUN", "RUN/run", "RUN/evaluation", "OTHER/run/evaluation"])
def test_evaluate_out_may_not_be_a_run_folder_or_inside_one(tmp_path, capsys, where):
    run, other = fake_run(tmp_path / "trained"), fake_run(tmp_path / "other")
    out = Path(where.replace("RUN", str(run)).replace("OTHER", str(other)))
    kept = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["evaluate", "--run", str(run), "--data", str(tmp_path), "--out", str(out)]) == 1
    message = capsys.readouterr().err
    assert message.startswith(f"brainlab evaluate: --out {out} ")
    assert "the evaluation's evaluation.json, predictions.csv and report.md would overwrite or mix with that run's " \
           "own" in message
    assert f"--out {run.parent / 'trained-evaluation'}" in message and "Traceback" not in message
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == kept
    assert not (run / "evaluation").exists()


def test_an_evaluation_into_a_busy_folder_is_refused(tmp_path):
    from brainlab import experiment

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        hold_with(tmp_path / "busy", other.pid)
        with pytest.raises(BrainlabError, match=rf"^{re.escape(str(tmp_path / 'busy'))} is busy: process {other.pid} "):
            experiment.evaluate_run(fake_run(tmp_path / "trained"), tmp_path, tmp_path / "busy")
    finally:
        other.kill()
        other.wait()


# --------------------------------------------------------------------------- resuming with the recorded settings
class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt  # Ctrl-C in a notebook


def unfinished_run(run_dir, **fit_kwargs):
    with pytest.raises(KeyboardInterrupt):
        _train_child.tiny_fit(run_dir, [StopAfterFirstEpoch()], **fit_kwargs)
    assert runs.latest_backup(run_dir)[0] == 0 and not train.run_finished(run_dir)
    return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}


def test_a_resume_with_other_settings_is_refused_naming_each_difference(tmp_path):
    from brainlab import models

    run_dir = tmp_path / "run"
    before = unfinished_run(run_dir, experiment={"data": "/data/a", "batch_size": 16})

    def again(model=None, **kwargs):
        _train_child.tiny_fit(run_dir, model=model, **kwargs)

    with pytest.raises(BrainlabError) as refused:
        again(seed=7, class_weight="balanced", experiment={"data": "/data/b", "batch_size": 16})
    assert str(refused.value) == (
        f"{run_dir} holds an unfinished run started with other settings:\n"
        "  class_weight_setting: None there, 'balanced' now\n  seed: 42 there, 7 now\n"
        "  experiment.data: '/data/a' there, '/data/b' now\n"
        "Going on would mix two experiments. Use another output folder (--out, or run_dir=), or delete "
        f"{run_dir} (rm -r '{run_dir}') to start over (or run it again with the settings it was started with, "
        "to resume it).")
    # another image size or model: refused the same way, not by Keras failing to load the backup
    with pytest.raises(BrainlabError, match=r"input_shape: \[None, 16, 16, 1\] there, \[None, 24, 24, 1\] now"):
        again(models.small_cnn(image_size=24, channels=1, filters=(4, 8)),
              experiment={"data": "/data/a", "batch_size": 16})
    with pytest.raises(BrainlabError, match=r"model: 'small_cnn' there, 'residual_cnn' now"):
        again(models.residual_cnn(image_size=32, channels=1), experiment={"data": "/data/a", "batch_size": 16})
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before  # refused: nothing touched
    again(experiment={"data": "/data/a", "batch_size": 16})  # the recorded settings: it resumes
    metrics = json.loads((run_dir / runs.METRICS).read_text())
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs_finished"] == 4
    assert json.loads((run_dir / runs.CONFIG).read_text())["resumed"] is True


def test_what_an_interruption_cannot_leave_is_refused_with_the_command_that_starts_over(tmp_path):
    run_dir = tmp_path / "run"
    unfinished_run(run_dir)
    (run_dir / runs.BEST).write_bytes(b"PK\x03\x04 not a whole model")  # damaged from outside
    (run_dir / runs.HISTORY).write_text((run_dir / runs.HISTORY).read_text().replace("\n0,", "\n5,"))
    with pytest.raises(BrainlabError) as refused:
        _train_child.tiny_fit(run_dir)
    assert str(refused.value) == (f"{run_dir / runs.HISTORY} does not list epochs 0 to 0, which backup/ has "
                                  f"finished; delete {run_dir} to start it over: rm -r '{run_dir}'")
    # an older brainlab's backup (Keras's BackupAndRestore files), as a kill during its first write left it
    old = tmp_path / "old"
    unfinished_run(old)
    (old / runs.BACKUP_DIR / "epoch-0.weights.h5").unlink()
    (old / runs.BACKUP_DIR / "latest.weights.h5").write_bytes(b"\x89HDF\r\n" + bytes(100))
    with pytest.raises(BrainlabError) as refused:
        _train_child.tiny_fit(old)
    assert str(refused.value) == (f"{old / 'backup'} holds latest.weights.h5: a backup of an older brainlab, which "
                                  f"this one cannot resume; delete {old} to start it over: rm -r '{old}'")


# --------------------------------------------------------------------------- brainlab train, interrupted
@pytest.mark.slow
@pytest.mark.parametrize("interrupt", ["predictions.csv:1:KILL:before", "report.md:1:INT:before",
                                       "evaluation.json:1:KILL:after"])
def test_brainlab_train_interrupted_while_writing_its_results_is_finished_by_the_rerun(tmp_path, interrupt):
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    command = ["train", "--recipe", "small-cnn", "--quick", "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    child = subprocess.run([sys.executable, str(CHILD), "cli", str(log), *command],
                           env=child_env(tmp_path, interrupt), capture_output=True, text=True, timeout=400)
    name, _, how, _ = interrupt.split(":")
    assert json.loads(log.read_text())["interrupted"] == name, child.stderr[-3000:]
    assert child.returncode == (130 if how == "INT" else -9), child.stderr[-3000:]
    if how == "INT":
        assert "Interrupted" in child.stderr and "Traceback" not in child.stderr
    trained = (out / "run" / runs.BEST).read_bytes()

    assert main(command) == 0  # the same command again: the training is reused, the results written again

    assert (out / "run" / runs.BEST).read_bytes() == trained
    assert not list(out.rglob(f"{runs.PARTIAL}*")) and not list(out.rglob(runs.LOCK))
    assert not (out / "metrics.json").exists()  # the evaluation's record has its own name; run/ has the training's
    metrics = json.loads((out / "evaluation.json").read_text())
    predictions = pd.read_csv(out / runs.PREDICTIONS)
    assert len(predictions) == metrics["n_images"] == 40
    assert metrics["accuracy"] == pytest.approx((predictions["true"] == predictions["predicted"]).mean())
    assert f"{metrics['accuracy']:.1%} accuracy" in (out / runs.REPORT).read_text().splitlines()[0]
