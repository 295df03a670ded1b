"""Where work is kept: the runs folder, keep_work_in (the notebooks' Google Drive cell) moving it, and the cache:
its folder on each platform, the folder of earlier versions, and a clear that deletes only brainlab's own."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs.macos
import pytest

from brainlab import cache, config
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
    assert cache.cache_dir() == work.cache and config.runs_dir() == work.runs / "quick"

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


# --------------------------------------------------------------------------- the cache deletes only its own
def test_a_folder_that_was_not_brainlabs_is_never_cleared(monkeypatch, tmp_path, capsys):
    """BRAINLAB_CACHE=~ once removed ~/downloads and ~/datasets/thesis: without the marker nothing goes."""
    from brainlab.cli import main

    home = tmp_path / "home"
    for name in ("downloads/paper.pdf", "datasets/thesis/data.csv", "notes.txt"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text("mine")
    monkeypatch.setenv("BRAINLAB_CACHE", str(home))
    assert cache.cache_dir() == home and not (home / cache.CACHE_MARKER).exists()  # used, never marked
    assert main(["cache", "--clear", "--all"]) == 1
    err = capsys.readouterr().err
    assert f"{home} has no {cache.CACHE_MARKER} marker, so brainlab did not create it" in err
    assert "nothing was deleted" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) == [
        "datasets/thesis/data.csv", "downloads/paper.pdf", "notes.txt"]


def test_a_cache_brainlab_creates_is_marked_and_cleared_part_by_part(monkeypatch, tmp_path, capsys):
    from brainlab.cli import main

    monkeypatch.setenv("BRAINLAB_CACHE", str(tmp_path / "new" / "cache"))
    root = cache.cache_dir()
    assert "Signature: 8a477f597d28d172789f06886806bc55" in (root / cache.CACHE_MARKER).read_text()
    (root / "datasets" / "x").mkdir(parents=True)
    (root / "datasets" / "x" / "a.jpg").write_bytes(b"x" * 10)
    (root / "my-notes.txt").write_text("not a part of the cache")
    assert main(["cache", "--clear", "--all"]) == 0
    out = capsys.readouterr().out
    listed, removed = out.index("deletes, in"), out.index("removed ")
    assert listed < removed and "datasets/  downloaded datasets, 1 files" in out  # listed first, then removed
    assert not (root / "datasets").exists() and (root / "my-notes.txt").is_file() and (root / cache.CACHE_MARKER).is_file()


def test_the_default_cache_from_before_the_marker_stays_clearable(monkeypatch, tmp_path):
    monkeypatch.delenv("BRAINLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    old = tmp_path / "xdg" / "brainlab" / "decoded"
    old.mkdir(parents=True)
    (old / "k.npz").write_bytes(b"x")
    assert [p.name for p in cache.clear_cache()] == ["decoded"] and not old.exists()
    assert (tmp_path / "xdg" / "brainlab" / cache.CACHE_MARKER).is_file()


def test_a_link_or_file_where_a_part_belongs_is_not_followed(monkeypatch, tmp_path):
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (cache.cache_dir() / "decoded").symlink_to(elsewhere)
    with pytest.raises(BrainlabError, match=r"decoded is a link, which brainlab never makes in its cache; nothing"):
        cache.clear_cache()
    assert (elsewhere / "keep.txt").is_file()


def test_keep_work_in_marks_the_cache_it_makes(tmp_path):
    work = config.keep_work_in(tmp_path / "drive")
    assert (work.cache / cache.CACHE_MARKER).is_file()


def test_prune_removes_the_least_recently_used_files_and_never_the_one_kept(tmp_path):
    files = []
    for i, name in enumerate(("old", "middle", "new")):
        path = tmp_path / f"{name}.npz"
        path.write_bytes(b"x" * 1000)
        os.utime(path, ns=(i + 1, i + 1))
        files.append(path)
    (tmp_path / ".partial-1-x.npz").write_bytes(b"x" * 5000)  # hidden: a write under way, never counted or removed
    assert cache.prune(tmp_path, 2000, keep=files[0]) == [files[1]]
    assert [p.name for p in sorted(tmp_path.iterdir())] == [".partial-1-x.npz", "new.npz", "old.npz"]
    assert cache.prune(tmp_path, 0, keep=files[2]) == [files[0]]
    assert cache.human_size(1536) == "1.5 KB" and cache.human_size(5) == "5 bytes"


# --------------------------------------------------------------------------- the cache's folder on each platform
@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder of its own, no BRAINLAB_CACHE and no XDG_CACHE_HOME: the defaults, as a new user has them."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("BRAINLAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="platformdirs answers for Linux on Linux only")
def test_on_linux_the_cache_is_in_dot_cache_or_xdg_cache_home(home, monkeypatch):
    assert cache.default_cache_dir() == home / ".cache" / "brainlab"
    assert cache.cache_dir() == home / ".cache" / "brainlab" and (home / ".cache" / "brainlab" / "CACHEDIR.TAG").is_file()
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    assert cache.default_cache_dir() == home / "xdg" / "brainlab"  # the earlier ~/.cache/brainlab is not XDG's place
    monkeypatch.setenv("BRAINLAB_CACHE", str(home / "mine"))
    assert cache.cache_dir() == home / "mine"  # the setting says more than any default


def test_on_macos_the_cache_is_in_library_caches_unless_an_earlier_one_is_there(home):
    answer = platformdirs.macos.MacOS("brainlab", appauthor=False).user_cache_dir  # platformdirs' own macOS rule
    assert Path(answer) == home / "Library" / "Caches" / "brainlab"
    assert cache.default_cache_dir(answer) == home / "Library" / "Caches" / "brainlab"
    earlier = home / ".cache" / "brainlab" / "datasets" / "sartaj-brain-tumor-classification-mri"
    earlier.mkdir(parents=True)  # a download of an earlier version, which used ~/.cache everywhere
    assert cache.default_cache_dir(answer) == home / ".cache" / "brainlab"  # kept in use: nothing is fetched again


def test_on_windows_the_cache_is_in_local_app_data_unless_an_earlier_one_is_there(home):
    answer = str(home / "AppData" / "Local" / "brainlab" / "Cache")  # platformdirs.user_cache_dir there (appauthor=False)
    assert cache.default_cache_dir(answer) == Path(answer)
    (home / ".cache" / "brainlab").mkdir(parents=True)
    assert cache.default_cache_dir(answer) == home / ".cache" / "brainlab"
    (home / ".cache" / "brainlab").rmdir()
    (home / ".cache" / "brainlab").write_text("a file of that name is not a cache")
    assert cache.default_cache_dir(answer) == Path(answer)


def test_an_unusable_default_cache_folder_is_one_clear_message(home):
    from brainlab.errors import SettingError

    parent = cache.default_cache_dir().parent  # ~/.cache on Linux
    parent.parent.mkdir(parents=True, exist_ok=True)
    parent.write_text("a file where the cache folder's parent belongs")
    with pytest.raises(SettingError, match=rf"the brainlab cache .*brainlab cannot be created: .*{parent.name} is a file"):
        cache.cache_dir()
