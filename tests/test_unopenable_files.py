"""Image files that cannot be opened: `brainlab doctor --data` and training agree on them.

A dangling symbolic link (what an un-fetched git-annex or DVC file looks like), a link loop, a
pipe and a file without read permission carry an image's name but cannot be read. Every reader
(doctor, load_splits, load_labelled, the audit) lists them, named with what to do, and skips them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import make_dataset

from brainlab import audit, catalogue, data
from brainlab.cli import main
from brainlab.errors import DataLayoutError


def dangling_link(path: Path) -> None:
    path.symlink_to("../../.git/annex/objects/Xk/SHA256E-s4096--ab12.jpg")


def link_loop(path: Path) -> None:
    path.symlink_to(path.name)


def pipe(path: Path) -> None:
    os.mkfifo(path)


def no_read_permission(path: Path, monkeypatch) -> None:
    path.write_bytes((path.parent / "img0.jpg").read_bytes())
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: let the permission check see what another user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != path and real_access(p, mode, **kw))


DAMAGE = {  # name -> (how to make it, what the message says)
    "dangling link": (dangling_link, "a symbolic link to ../../.git/annex/objects/Xk/SHA256E-s4096--ab12.jpg, "
                                     "which does not exist (an un-fetched git-annex or DVC file looks like this): "
                                     "fetch it (`git annex get`, `dvc pull`), or delete the link"),
    "link loop": (link_loop, "a symbolic link that leads back to itself (a loop): replace it with the image file, "
                             "or delete it"),
    "pipe": (pipe, "not a regular file (a pipe, socket or device): move it out of the folder"),
    "no read permission": (no_read_permission, "no permission to read it: allow reading (chmod a+r), "
                                               "or move it out of the folder"),
}
DAMAGED = "Training/glioma_tumor/damaged.jpg"


@pytest.fixture(params=DAMAGE)
def damaged(request, tmp_path, monkeypatch):
    """A dataset with one damaged image file in Training/glioma_tumor: (root, message)."""
    root = make_dataset(tmp_path / "data", per_class=8, size=32)
    make, message = DAMAGE[request.param]
    if make is no_read_permission:
        make(root / DAMAGED, monkeypatch)
    else:
        make(root / DAMAGED)
    return root, message


def test_the_scan_sets_it_aside_with_what_to_do(damaged):
    root, message = damaged
    found = catalogue.scan(root)
    assert found.broken == [(root / DAMAGED, message)] and found.bad == []
    assert DAMAGED not in {f.relpath for f in found.files} and len(found.files) == 64
    assert catalogue.unopenable(root / "Training/glioma_tumor/img0.jpg") is None


def test_doctor_names_it_and_calls_the_folder_usable(damaged, capsys):
    root, message = damaged
    assert main(["doctor", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"1 file(s) or folder(s) cannot be used and will be skipped:\n  {DAMAGED}: {message}\n" in out
    assert "The folder is usable." in out


def test_training_data_loads_without_it_and_says_so(damaged, capsys):
    root, message = damaged
    for _ in range(2):  # the second time from the cache, with the same report
        splits = data.load_splits(root, image_size=16, progress=False)
        assert len(splits.train) + len(splits.val) == 32 and len(splits.test) == 32
        assert DAMAGED not in splits.train.paths + splits.val.paths
        assert f"skipped 1 unreadable file(s) in unverified-train:\n  {DAMAGED}: {message}" in capsys.readouterr().err
    assert data.load_split("Training", root, image_size=16, progress=False).skipped == [(DAMAGED, message)]


def test_an_evaluation_folder_and_the_audit_skip_it_too(damaged, capsys):
    root, message = damaged
    external = data.load_labelled(root / "Training", image_size=16, progress=False)
    assert len(external) == 32 and external.skipped == [("glioma_tumor/damaged.jpg", message)]
    assert "glioma_tumor/damaged.jpg: " + message in capsys.readouterr().err
    result = audit.audit_dataset(root, seed=0)
    assert result.unreadable == [(DAMAGED, message)] and len(result.files) == 64


def test_a_fixed_link_is_read_again(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=8, size=32)
    dangling_link(root / DAMAGED)
    assert data.load_split("Training", root, image_size=16, progress=False).skipped
    (root / DAMAGED).unlink()
    (root / DAMAGED).symlink_to("img0.jpg")  # now it leads to an image
    training = data.load_split("Training", root, image_size=16, progress=False)
    assert training.skipped == [] and DAMAGED in training.paths


def test_a_class_folder_of_dangling_links_only_is_a_clear_message(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", per_class=2, size=32)
    folder = root / "Testing" / "no_tumor"
    for name in ("img0.jpg", "img1.jpg"):
        (folder / name).unlink()
        dangling_link(folder / name)
    with pytest.raises(DataLayoutError, match=r"no_tumor holds no image files that can be opened \(2 set aside; "
                                              r"img0\.jpg: a symbolic link to \.\./\.\./\.git/annex"):
        catalogue.scan(root)
    assert main(["doctor", "--data", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"{folder} holds no image files that can be opened" in err and "git annex get" in err
    assert "Traceback" not in err
    with pytest.raises(DataLayoutError, match="no_tumor holds no image files that can be opened"):
        data.load_labelled(root / "Testing", image_size=16, progress=False)


@pytest.mark.slow
def test_train_runs_past_a_dangling_link(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", per_class=8, size=32)
    dangling_link(root / DAMAGED)
    out = tmp_path / "run"
    assert main(["train", "--recipe", "small-cnn", "--data", str(root), "--epochs", "1", "--image-size", "32",
                 "--out", str(out)]) == 0
    assert f"{DAMAGED}: a symbolic link to" in capsys.readouterr().err
    assert json.loads((out / "evaluation.json").read_text())["n_images"] == 32
