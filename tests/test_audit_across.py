"""`brainlab audit --against`: copies of one dataset's images in another, found, excluded, and their labels compared."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import brain_like, make_dataset
from PIL import Image

from brainlab import catalogue
from brainlab.audit import audit_across
from brainlab.audit.across import COPY_COLUMNS
from brainlab.cli import main

NICK_FOLDERS = {"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "no_tumor": "notumor",
                "pituitary_tumor": "pituitary"}
NICK_TESTING = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nickparvar-brain-tumor-mri-testing"


def make_external(root: Path, a: Path, per_class: int = 3) -> dict[str, tuple[str, str]]:
    """A Testing-only dataset with the second dataset's folder names: new scans, plus four planted copies of A.

    Returns {path in B: (path in A, kind)} for the planted copies.
    """
    for i, folder in enumerate(NICK_FOLDERS.values()):
        (root / "Testing" / folder).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            brain_like(1000 + 10 * i + j, 96).convert("RGB").save(root / "Testing" / folder / f"Te-{j}.jpg", quality=92)
    planted = {}
    # the same bytes, same class
    shutil.copy(a / "Training/glioma_tumor/img0.jpg", root / "Testing/glioma/Te-copy.jpg")
    planted["Testing/glioma/Te-copy.jpg"] = ("Training/glioma_tumor/img0.jpg", "exact")
    # resized to 96 px and re-encoded, same class
    Image.open(a / "Testing/pituitary_tumor/img1.jpg").resize((96, 96)).save(root / "Testing/pituitary/Te-big.jpg",
                                                                             quality=75)
    planted["Testing/pituitary/Te-big.jpg"] = ("Testing/pituitary_tumor/img1.jpg", "near")
    # darker and re-encoded, filed under another class than in A
    im = Image.open(a / "Training/meningioma_tumor/img2.jpg").point(lambda v: int(v * 0.8))
    im.save(root / "Testing/glioma/Te-relabelled.jpg", quality=85)
    planted["Testing/glioma/Te-relabelled.jpg"] = ("Training/meningioma_tumor/img2.jpg", "near")
    # the same bytes under another class
    shutil.copy(a / "Training/no_tumor/img1.jpg", root / "Testing/meningioma/Te-nt.jpg")
    planted["Testing/meningioma/Te-nt.jpg"] = ("Training/no_tumor/img1.jpg", "exact")
    return planted


@pytest.fixture
def two_datasets(tmp_path):
    a = make_dataset(tmp_path / "a", per_class=3, size=64)
    b = tmp_path / "b"
    return a, b, make_external(b, a)


def test_detects_which_dataset_a_folder_holds(two_datasets):
    a, b, _ = two_datasets
    assert catalogue.detect_spec(a) is catalogue.BRAIN_TUMOR
    assert catalogue.detect_spec(b) is catalogue.NICKPARVAR
    assert catalogue.detect_spec(b / "Testing") is catalogue.NICKPARVAR  # a folder of class folders
    (b / "Testing" / "tumour").mkdir()
    with pytest.raises(catalogue.DataLayoutError, match="(?s)match no dataset.*glioma, meningioma, notumor, pituitary"):
        catalogue.detect_spec(b)


def test_planted_copies_are_found_and_left_out_of_the_manifest(two_datasets):
    a, b, planted = two_datasets
    result = audit_across(a, b)
    assert result.spec_b is catalogue.NICKPARVAR and result.summary["dataset_b"]["splits"] == ["Testing"]
    found = {(r.path_b, r.path_a): r.kind for r in result.copies.itertuples()}
    assert found == {(pb, pa): kind for pb, (pa, kind) in planted.items()}
    assert result.copies.loc[result.copies["kind"] == "near", "score"].min() >= 0.91
    manifest = result.manifest
    assert set(manifest["split"]) == {"external"} and len(manifest) == 12
    assert not set(manifest["path"]) & set(planted)
    assert manifest.loc[manifest["path"] == "Testing/notumor/Te-0.jpg", "class"].item() == "no_tumor"
    s = result.summary
    assert s["images_b_with_copy_in_a"] == 4 and s["images_b_external"] == 12
    assert s["by_kind"] == {"exact": 2, "same-pixels": 0, "near": 2}
    assert s["per_class_b"]["glioma_tumor"] == {"images": 5, "with_copy": 2, "exact": 1, "same_pixels": 0,
                                                "near": 1, "external": 3}
    assert s["images_b_with_copy_in_split_of_a"] == {"Training": 3, "Testing": 1}
    dis = s["label_disagreements"]
    assert dis["images_b"] == 2
    assert dis["by_class"] == {"glioma_tumor -> meningioma_tumor": 1, "meningioma_tumor -> no_tumor": 1}


def test_cli_writes_the_copies_the_manifest_and_a_summary(two_datasets, tmp_path, capsys):
    a, b, planted = two_datasets
    out = tmp_path / "cross"
    assert main(["audit", "--data", str(a), "--against", str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "images of B with a copy in A:   4 (exact 2, same pixels 0, near 2)" in printed
    assert "label disagreements:            2 images of B" in printed
    copies = pd.read_csv(out / "external_copies.csv")
    assert list(copies.columns[:4]) == COPY_COLUMNS
    assert set(copies["path_b"]) == set(planted) and copies["label_disagrees"].sum() == 2
    manifest = pd.read_csv(out / "external_manifest.csv")
    assert list(manifest.columns) == ["path", "class", "split"] and len(manifest) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_b_external"] == 12
    assert "4 of 16 images of B" in (out / "summary.md").read_text()
    for name in ("external_pairs.png", "borderline_pairs.png", "label_disagreements.png"):
        assert (out / name).stat().st_size > 5000


def test_against_a_missing_folder_is_a_clear_message(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:  # a path option that names nothing: argparse's exit status 2
        main(["audit", "--data", str(tiny_dataset), "--against", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert refused.value.code == 2
    assert "argument --against: " in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_nickparvar_testing_against_the_papers_dataset(shared_dataset, tmp_path):
    """Measured once with `brainlab audit --against` (see docs/results.md); the counts must not drift."""
    if not (NICK_TESTING / "Testing").is_dir():
        pytest.skip(f"the second dataset's Testing split is not at {NICK_TESTING}")
    result = audit_across(shared_dataset, NICK_TESTING)
    s = result.summary
    assert s["dataset_b"]["images"] == 1311 and s["dataset_a"]["images"] == 3264
    assert s["images_b_with_copy_in_a"] == EXPECTED["with_copy"]
    assert {c: n["with_copy"] for c, n in s["per_class_b"].items()} == EXPECTED["per_class"]
    assert s["label_disagreements"]["images_b"] == EXPECTED["disagreements"]
    assert len(result.manifest) == 1311 - EXPECTED["with_copy"]
    assert s["by_kind"] == {"exact": 392, "same-pixels": 0, "near": 53}
    assert s["label_disagreements"]["by_class"] == {"meningioma_tumor -> glioma_tumor": 5}
    near = result.checked.dropna(subset=["score"])  # a clear gap between copies and different scans
    assert near.loc[near["kind"] == "near", "score"].min() > 0.91 > 0.87 > near.loc[near["kind"] == "different",
                                                                                     "score"].max()
    # It stays quick because each image of B is compared with a few candidates of A, not with all 3264: a count
    # that is the same on every machine (8,557 pairs of the 4.3 million; a wall-clock limit would depend on the
    # CPU and on what else it runs: 23 s here on a 2-core AMD EPYC).
    assert len(result.checked) <= 0.01 * 3264 * 1311


# Measured by `brainlab audit --data <paper's dataset> --against <Nickparvar Testing> --out DIR` (docs/results.md).
EXPECTED = {"with_copy": 445, "disagreements": 5,
            "per_class": {"glioma_tumor": 74, "meningioma_tumor": 146, "no_tumor": 158, "pituitary_tumor": 67}}
