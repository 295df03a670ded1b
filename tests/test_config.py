"""Where work is kept: the runs folder setting, and keep_work_in (the notebooks' Google Drive cell) moving it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from brainlab import config
from brainlab.errors import BrainlabError


def test_runs_dir_follows_brainlab_runs_and_keeps_quick_runs_apart(monkeypatch, tmp_path):
    assert config.runs_dir() == Path("runs")
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert config.runs_dir() == Path("runs") / "quick"
    monkeypatch.setenv("BRAINLAB_RUNS", str(tmp_path / "elsewhere"))
    assert config.runs_dir() == tmp_path / "elsewhere" / "quick"
    monkeypatch.setenv("BRAINLAB_QUICK", "0")
    assert config.runs_dir() == tmp_path / "elsewhere"


def test_notebooks_of_the_course_share_one_runs_folder(monkeypatch, tmp_path):
    """An exercise notebook finds the run that its course notebook made: both use the course's runs/."""
    course = tmp_path / "course"
    for name in config.COURSE_FOLDERS:
        (course / name).mkdir(parents=True)
    seen = set()
    for name in config.COURSE_FOLDERS:
        monkeypatch.chdir(course / name)
        seen.add(config.runs_dir().resolve())
    assert seen == {(course / "runs").resolve()}
    monkeypatch.chdir(course / "notebooks")
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert config.runs_dir().resolve() == (course / "runs" / "quick").resolve()
    # a folder called notebooks elsewhere (no solutions/ beside it) keeps its own runs/
    (tmp_path / "mine" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "mine" / "notebooks")
    assert config.runs_dir() == Path("runs") / "quick"


def test_after_keep_work_in_the_cache_and_a_training_run_land_there(monkeypatch, tmp_path):
    import keras

    from brainlab import data, train

    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    monkeypatch.setenv("BRAINLAB_RUNS", str(tmp_path / "old-runs"))  # undone after the test, like the cache
    drive = tmp_path / "drive" / "MyDrive" / "brainlab"
    work = config.keep_work_in(drive)
    assert work == (drive / "cache", drive / "runs") and work.cache.is_dir() and work.runs.is_dir()
    assert os.environ["BRAINLAB_CACHE"] == str(work.cache) and os.environ["BRAINLAB_RUNS"] == str(work.runs)
    assert config.cache_dir() == work.cache and config.runs_dir() == work.runs / "quick"

    splits = data.load_splits(data.sample_dir(), image_size=32, progress=False)  # decoded once, cached
    assert list((work.cache / "decoded").glob("*.npz")), "the decoded images are cached on the drive"
    config.set_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    result = train.fit(model, splits.train.dataset(16), splits.val.dataset(16), config.runs_dir() / "demo",
                       epochs=1, progress=False)
    run_dir = work.runs / "quick" / "demo"
    assert (run_dir / "history.csv").is_file() and Path(result.best_model_path).parent == run_dir
    assert not (tmp_path / "old-runs").exists()


def test_keep_work_in_an_unusable_folder_is_one_clear_message(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(BrainlabError, match="Cannot keep brainlab's work in .*a-file.*mounted and writable"):
        config.keep_work_in(tmp_path / "a-file" / "brainlab")
