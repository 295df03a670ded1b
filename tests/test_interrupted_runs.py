"""A training process stopped at every write of its run folder (Ctrl-C and SIGKILL), then run again.

Each case starts tests/_train_child.py (a tiny CNN, 4 epochs) with INTERRUPT set, so that the child
stops itself at one chosen write: just before a file takes its real name (its temporary file
written, and for SIGKILL cut to half, as a kill in the middle of writing leaves it), or just after.
What it leaves must be whole files only, and the same training run again must end with a complete,
loadable run whose files agree with each other.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import _train_child
from brainlab import kept_epoch, models, runs, train

CHILD = Path(_train_child.__file__)
# Every write of a 4-epoch run, in the order they happen (the N-th time that name is renamed into place).
POINTS = [
    ("config.json", 1, "before"),  # the very first write
    ("history.csv", 1, "before"),  # epoch 0's row
    ("epoch-0.weights.h5", 1, "before"),  # the first backup
    ("best.keras", 1, "before"),  # the first kept model
    ("history.csv", 3, "before"),  # epoch 2's row: epoch 2 is trained again
    ("epoch-2.weights.h5", 1, "before"),  # a later backup, an older one still there
    ("best.keras", 2, "before"),  # a better epoch replacing the kept model
    ("best.keras", 2, "after"),  # just kept: the backup of that epoch is older than it
    ("last.keras", 1, "before"),  # every epoch done
    ("metrics.json", 1, "before"),
    ("metrics.json", 1, "after"),  # finished; backup/ not yet removed
]
CASES = [(*point, signal) for point in POINTS for signal in ("INT", "KILL")]


def case_id(case):
    name, nth, when, signal = case
    return f"{signal}-{when}-{name}-{nth}"


def _interrupt(case, run_dir: Path, log: Path) -> subprocess.CompletedProcess:
    name, nth, when, signal = case
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "INTERRUPT": f"{name}:{nth}:{signal}:{when}", "BRAINLAB_CACHE": str(run_dir.parent / "cache")}
    return subprocess.run([sys.executable, str(CHILD), "resume", str(run_dir), str(log), "-1"], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def interrupted(request, tmp_path_factory):
    """The selected cases' children, run two at a time: {case: (run folder, log, finished process)}."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "module", None) is request.module and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("interrupted")
    folders = {case: root / case_id(case) for case in selected}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(selected, pool.map(lambda c: _interrupt(c, folders[c] / "run", folders[c] / "log.jsonl"),
                                           selected)))
    return {case: (folders[case] / "run", folders[case] / "log.jsonl", done[case]) for case in selected}


def _whole(run_dir: Path) -> None:
    """Every file under its real name is complete: JSON parses, history.csv reads, models load, backups open."""
    for name in (runs.CONFIG, runs.METRICS):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())
    rows = runs.read_history(run_dir / runs.HISTORY)
    assert [row["epoch"] for row in rows] == list(range(len(rows)))
    for name in (runs.BEST, runs.LAST):
        if (run_dir / name).exists():
            models.load_model(run_dir / name)
            assert runs.read_stamp(run_dir / name)["epoch"] < len(rows)
    for backup in (run_dir / runs.BACKUP_DIR).glob("epoch-*.weights.h5"):
        with h5py.File(backup, "r") as f:
            assert "vars" in f or "layers" in f


def _complete(run_dir: Path, model, result) -> None:
    """A finished 4-epoch run: only its files, every epoch once, and models that score what history.csv says."""
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(train.RUN_FILES)
    rows = runs.read_history(run_dir / runs.HISTORY)
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    metrics = json.loads((run_dir / runs.METRICS).read_text())
    best = kept_epoch.best_row(rows, "val_loss", "min")
    assert metrics["epochs_finished"] == 4 and metrics["best_epoch"] == best["epoch"]
    assert metrics["best"] == pytest.approx(best) and metrics["last"] == pytest.approx(rows[-1])
    assert result.metrics == metrics and result.history["val_loss"] == [row["val_loss"] for row in rows]
    data = _train_child.tiny_data()[1]
    for name, row in ((runs.BEST, best), (runs.LAST, rows[-1])):
        kept = models.load_model(run_dir / name)
        assert runs.read_stamp(run_dir / name)["epoch"] == row["epoch"], name
        score = kept.evaluate(data, verbose=0, return_dict=True)["loss"]
        assert score == pytest.approx(row["val_loss"], rel=1e-5), name
    x = next(iter(data))[0]
    np.testing.assert_allclose(models.load_model(run_dir / runs.LAST).predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    assert json.loads((run_dir / runs.CONFIG).read_text())["epochs"] == 4


class Steps(keras.callbacks.Callback):
    """Records (epoch, optimizer steps taken) as each epoch begins."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, int(self.model.optimizer.iterations.numpy())))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_run_interrupted_at_any_write_is_finished_by_the_rerun(case, interrupted):
    name, nth, when, signal = case
    run_dir, log, child = interrupted[case]
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    # It was stopped where the case says, by the signal the case says.
    assert {"interrupted": name, "signal": signal, "when": when} in [
        {k: e.get(k) for k in ("interrupted", "signal", "when")} for e in entries], child.stderr[-3000:]
    assert child.returncode == (130 if signal == "INT" else -9), child.stderr[-3000:]
    # It left whole files only; Ctrl-C also its temporary file and the lock, a kill both behind.
    partials = [p.name for where in (run_dir, run_dir / runs.BACKUP_DIR) for p in where.glob(f"{runs.PARTIAL}*")]
    assert bool(partials) == (signal == "KILL" and when == "before"), partials
    assert (run_dir / runs.LOCK).exists() == (signal == "KILL")
    _whole(run_dir)
    backup = runs.latest_backup(run_dir)
    finished = (run_dir / runs.METRICS).exists()

    steps = Steps()
    model, result = _train_child.tiny_fit(run_dir, [steps])  # the same training again

    _complete(run_dir, model, result)
    assert result.reused == finished
    if not finished:
        first = backup[0] + 1 if backup else 0
        assert result.metrics["resumed_from_epoch"] == first
        if first < 4:  # the optimizer goes on from its state after the backup's epoch (3 batches an epoch)
            assert steps.seen[0] == (first, 3 * first)
