"""The audit on small datasets of every make-up: no copies, only exact copies, only near copies,
one image per class, within one dataset and across two, and a second dataset without images.

Exact copies are the same bytes; near copies are the same image resized and re-encoded.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import brain_like, make_dataset
from PIL import Image

from brainlab import audit, data
from brainlab.audit.matching import NEAR_THRESHOLD, exact_duplicate_pairs, match_sets, pair_frame
from brainlab.audit.thumbnails import THUMB_SIZE
from brainlab.cli import main

ORIGINAL = "Training/glioma_tumor/img0.jpg"  # the image every planted copy copies


def exact_copy(source: Path, target: Path, i: int = 0) -> str:
    shutil.copyfile(source, target)
    return "exact"


def near_copy(source: Path, target: Path, i: int = 0) -> str:
    """The i-th near copy: resized to another side and re-encoded at another quality than the others."""
    side = 96 + 16 * i
    Image.open(source).resize((side, side), Image.Resampling.BICUBIC).save(target, quality=70 - 10 * i)
    return "near"


MAKE_UPS = {"no copies": [], "only exact": [exact_copy, exact_copy], "only near": [near_copy, near_copy]}


def plant(root_a: Path, root_b: Path, copiers, folder: str = "Testing/meningioma_tumor") -> dict[str, str]:
    """Copy ORIGINAL of ``root_a`` into ``root_b/folder`` once per copier; returns {path in B: kind}."""
    planted = {}
    for i, copier in enumerate(copiers):
        rel = f"{folder}/copy{i}.jpg"
        planted[rel] = copier(root_a / ORIGINAL, root_b / rel, i)
    return planted


def external(root: Path, per_class: int) -> Path:
    """A Testing-only dataset of new images (no copy of any make_dataset image)."""
    for i, c in enumerate(data.CLASS_NAMES):
        (root / "Testing" / c).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            brain_like(500 + 10 * i + j).convert("RGB").save(root / "Testing" / c / f"b{j}.jpg", quality=90)
    return root


def test_pair_tables_keep_their_column_types_when_empty():
    none = exact_duplicate_pairs(pd.DataFrame({"path": ["a", "b"], "sha256": ["1", "2"],
                                                     "pixels_sha256": [None, None]}))
    assert none.empty and none["score"].dtype == "float64" and none["a"].dtype == "int64"
    both = pd.concat([none, pair_frame([(0, 1, "near", 0.93371)])], ignore_index=True)
    assert both["score"].dtype == "float64" and both["score"].round(4).tolist() == [0.9337]
    thumbs = np.zeros((0, THUMB_SIZE, THUMB_SIZE), np.uint8)
    checked = match_sets(thumbs, np.zeros((0, 4)), thumbs, np.zeros((0, 4)), progress=False)
    assert checked.empty and checked.dtypes.astype(str).to_dict() == {
        "a": "int64", "b": "int64", "coarse": "float64", "aligned": "float64", "score": "float64", "near": "bool"}


@pytest.mark.parametrize("make_up", MAKE_UPS)
def test_within_one_dataset_finds_exactly_the_planted_copies(tmp_path, make_up):
    root = make_dataset(tmp_path / "data")
    planted = plant(root, root, MAKE_UPS[make_up])
    out = tmp_path / "audit"
    summary = audit.run_audit(root, out, seed=0, progress=False)
    pairs = pd.read_csv(out / "near_duplicates.csv")
    found = {(a, b): kind for a, b, kind in zip(pairs["path_a"], pairs["path_b"], pairs["kind"])}
    copies = sorted(planted)
    expected = {(ORIGINAL, p): kind for p, kind in planted.items()}
    if len(copies) == 2:  # the two copies of one image are copies of each other too
        expected[tuple(copies)] = "exact" if make_up == "only exact" else "near"
    assert found == expected
    assert (pairs.loc[pairs["kind"] == "near", "score"] >= NEAR_THRESHOLD).all()
    assert summary["totals"]["exact"] == (3 if make_up == "only exact" else 0)
    assert summary["totals"]["near"] == (3 if make_up == "only near" else 0)
    assert summary["groups"]["with_copies"] == (0 if make_up == "no copies" else 1)
    # the clean split keeps the group in one part and loads for training (as `train --split clean` does)
    clean = pd.read_csv(out / "clean_split.csv")
    assert len(clean) == 24 + len(planted)
    assert clean.loc[clean["path"].isin([ORIGINAL, *planted]), "split"].nunique() == 1
    splits = data.load_splits(root, image_size=32, manifest=out / "clean_split.csv", progress=False, cache=False)
    assert sorted(p for s in splits for p in s.paths) == sorted(clean["path"])


@pytest.mark.parametrize("splits", [("Training", "Testing"), ("Training",)])
def test_within_one_image_per_class(tmp_path, splits):
    root = make_dataset(tmp_path / "data", per_class=1, splits=splits)
    out = tmp_path / "audit"
    summary = audit.run_audit(root, out, seed=0, progress=False)
    assert summary["images"] == 4 * len(splits) and summary["groups"]["with_copies"] == 0
    clean = pd.read_csv(out / "clean_split.csv")
    assert sorted(clean["path"]) == sorted(f"{s}/{c}/img0.jpg" for s in splits for c in data.CLASS_NAMES)
    assert set(clean["split"]) == {"train", "val", "test"}  # every part gets at least one image
    splits = data.load_splits(root, image_size=32, manifest=out / "clean_split.csv", progress=False, cache=False)
    assert [len(s) for s in splits] == [(clean["split"] == p).sum() for p in ("train", "val", "test")]


def test_within_through_the_cli_with_only_a_near_copy(tmp_path, capsys):
    root = make_dataset(tmp_path / "data")
    plant(root, root, [near_copy])
    assert main(["audit", "--data", str(root), "--out", str(tmp_path / "audit")]) == 0
    printed = capsys.readouterr().out
    assert "images with a near-duplicate:   2" in printed and "images with an exact copy:      0" in printed


@pytest.mark.parametrize("make_up", MAKE_UPS)
def test_across_two_datasets_finds_exactly_the_planted_copies(tmp_path, make_up, capsys):
    a = make_dataset(tmp_path / "a")
    b = external(tmp_path / "b", per_class=2)
    planted = plant(a, b, MAKE_UPS[make_up])
    out = tmp_path / "cross"
    assert main(["audit", "--data", str(a), "--against", str(b), "--out", str(out)]) == 0
    assert f"images of B with a copy in A:   {len(planted)}" in capsys.readouterr().out
    copies = pd.read_csv(out / "external_copies.csv")
    assert {(pb, pa, kind) for pb, pa, kind in zip(copies["path_b"], copies["path_a"], copies["kind"])} == \
        {(pb, ORIGINAL, kind) for pb, kind in planted.items()}
    manifest = pd.read_csv(out / "external_manifest.csv")
    assert sorted(manifest["path"]) == sorted(f"Testing/{c}/b{j}.jpg" for c in data.CLASS_NAMES for j in range(2))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_b_external"] == 8 and summary["images_b_with_copy_in_a"] == len(planted)
    assert summary["label_disagreements"]["images_b"] == len(planted)  # glioma in A, meningioma in B
    assert (out / "checked_pairs.csv").is_file() and (out / "external_pairs.png").stat().st_size > 0


def test_across_when_every_image_of_b_is_a_copy(tmp_path):
    a = make_dataset(tmp_path / "a")
    b = make_dataset(tmp_path / "b", splits=("Testing",))
    for c in data.CLASS_NAMES:  # B: A's own Testing images, byte for byte
        for j in range(3):
            shutil.copyfile(a / f"Testing/{c}/img{j}.jpg", b / f"Testing/{c}/img{j}.jpg")
    summary = audit.run_audit_across(a, b, tmp_path / "cross", progress=False)
    assert summary["images_b_with_copy_in_a"] == 12 and summary["images_b_external"] == 0
    assert pd.read_csv(tmp_path / "cross" / "external_manifest.csv").empty


def test_across_one_image_per_class(tmp_path):
    a = make_dataset(tmp_path / "a", per_class=1)
    b = external(tmp_path / "b", per_class=1)
    planted = plant(a, b, [near_copy], folder="Testing/glioma_tumor")
    result = audit.audit_across(a, b)
    assert result.copies[["path_b", "path_a", "kind"]].values.tolist() == [[*planted, ORIGINAL, "near"]]
    assert len(result.manifest) == 4 and result.summary["label_disagreements"]["images_b"] == 0


def test_across_a_second_set_without_images_is_a_clear_message(tmp_path, capsys):
    a = make_dataset(tmp_path / "a")
    b = external(tmp_path / "b", per_class=0)  # the class folders, empty
    assert main(["audit", "--data", str(a), "--against", str(b), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"{b / 'Testing' / 'glioma_tumor'} holds no image files" in err and "Traceback" not in err
    for c in data.CLASS_NAMES:  # files that are no images
        (b / "Testing" / c / "empty.jpg").write_bytes(b"")
    assert main(["audit", "--data", str(a), "--against", str(b), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"no readable images in {b} (4 files, none can be read)" in err and f"doctor --data {b}" in err
    assert not (tmp_path / "o" / "summary.json").exists()
