"""brainlab.catalogue: the catalogue, specs whose class folders are named otherwise, layout checks."""
from __future__ import annotations

from pathlib import Path

import pytest

from brainlab import catalogue, data
from brainlab.audit import thumbnails
from brainlab.errors import DataLayoutError
from conftest import CLASS_NAMES, make_dataset

FOLDERS = {"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "no_tumor": "notumor",
           "pituitary_tumor": "pituitary"}


@pytest.fixture
def renamed(tmp_path):
    """A tiny dataset whose class folders carry other names, and the spec that says so."""
    root = make_dataset(tmp_path / "other", per_class=2, size=32)
    for split in catalogue.SPLIT_FOLDERS:
        for class_name, folder in FOLDERS.items():
            (root / split / class_name).rename(root / split / folder)
    sums = {p.relative_to(root).as_posix(): catalogue.sha256_of(p) for p in sorted(root.rglob("*.jpg"))}
    spec = catalogue.DatasetSpec("renamed", "tiny, other folder names", CLASS_NAMES,
                                {s: {c: 2 for c in CLASS_NAMES} for s in catalogue.SPLIT_FOLDERS},
                                checksums=sums, class_folders=FOLDERS)
    return root, spec


def test_class_folders_map_to_brainlab_class_names(renamed):
    root, spec = renamed
    found = catalogue.scan(root, spec=spec)
    assert len(found.files) == 16 and found.bad == []
    for f in found.files:
        assert f.relpath.split("/")[1] == FOLDERS[f.class_name]  # paths are the files' own
        assert f.label == CLASS_NAMES.index(f.class_name)  # labels are brainlab's order
    assert found.counts() == spec.counts
    check = catalogue.verify(root, spec)
    assert check.ok and check.missing == [] and check.extra == []
    inventoried = thumbnails.inventory(root, progress=False, spec=spec).files
    assert sorted(set(inventoried["class"])) == sorted(CLASS_NAMES)
    with pytest.raises(DataLayoutError, match="class folder\\(s\\) missing: glioma_tumor"):
        catalogue.scan(root)  # the default spec expects brainlab's names on disk


def test_a_misnamed_folder_is_explained_in_the_specs_own_names(renamed):
    root, spec = renamed
    (root / "Testing" / "notumor").rename(root / "Testing" / "no_tumor")
    with pytest.raises(DataLayoutError) as info:
        catalogue.scan(root, spec=spec)
    message = str(info.value)
    assert "class folder(s) missing: notumor" in message and "Found instead: no_tumor" in message
    assert "      notumor/   (image files)" in message  # the expected layout shows the folders to make
    with pytest.raises(DataLayoutError, match="missing: notumor"):
        catalogue.verify(root, spec)  # verify checks the layout through the same scan


def test_specs_refuse_classes_they_do_not_have():
    with pytest.raises(ValueError, match="'tumour' is not one of its class names"):
        catalogue.DatasetSpec("bad", "bad", CLASS_NAMES, {"Training": {c: 1 for c in CLASS_NAMES}},
                             class_folders={"tumour": "t"})
    with pytest.raises(ValueError, match="'notumor' is not one of its class names"):
        catalogue.DatasetSpec("bad", "bad", CLASS_NAMES, {"Testing": {"notumor": 3}})


def test_the_catalogue_lists_the_papers_dataset_by_name():
    assert catalogue.spec_named("brain-tumor-classification-mri") is catalogue.BRAIN_TUMOR
    assert catalogue.CATALOGUE == {"brain-tumor-classification-mri": catalogue.BRAIN_TUMOR,
                                  "brain-tumor-mri-dataset": catalogue.NICKPARVAR}
    assert catalogue.spec_named("sartaj") is catalogue.BRAIN_TUMOR
    with pytest.raises(ValueError, match="choose from sartaj, nickparvar, brain-tumor-classification-mri"):
        catalogue.spec_named("mnist")
    assert catalogue.BRAIN_TUMOR.folder("no_tumor") == "no_tumor"  # no mapping: folders are the class names
    assert data.CLASS_NAMES is catalogue.CLASS_NAMES and catalogue.SPLIT_FOLDERS == catalogue.BRAIN_TUMOR.splits
    advice = catalogue.how_to_get_data()
    assert "Training/ and Testing/" in advice and catalogue.BRAIN_TUMOR.homepage in advice


def test_the_second_dataset_maps_its_folders_and_says_what_its_checksums_cover():
    spec = catalogue.spec_named("nickparvar")
    assert spec is catalogue.NICKPARVAR and spec.kaggle_handle == "masoudnickparvar/brain-tumor-mri-dataset"
    assert spec.folder_names() == ("glioma", "meningioma", "notumor", "pituitary")
    assert spec.class_of_folder("notumor") == "no_tumor"
    assert spec.total("Training") == 5712 and spec.total("Testing") == 1311
    sums = spec.file_checksums()
    assert len(sums) == 1311 and spec.checksummed_splits() == ("Testing",)
    assert "Testing/notumor/Te-no_0010.jpg" in sums
    assert "Nickparvar" in spec.attribution and "figshare" in spec.attribution and "Br35H" in spec.attribution


def test_a_testing_only_copy_verifies_as_such(tmp_path):
    """Counts and checksums of the split that is there; the missing split and unchecked files are said."""
    root = tmp_path / "nick"
    spec = catalogue.DatasetSpec("t", "t", CLASS_NAMES, {"Training": {c: 1 for c in CLASS_NAMES},
                                                        "Testing": {c: 1 for c in CLASS_NAMES}},
                                class_folders={"no_tumor": "notumor"},
                                checksums={}, checksum_note="Training is not checksummed")
    for c in CLASS_NAMES:
        folder = root / "Testing" / spec.folder(c)
        folder.mkdir(parents=True)
        (folder / "a.jpg").write_bytes(c.encode())
    sums = {f"Testing/{spec.folder(c)}/a.jpg": catalogue.sha256_of(root / "Testing" / spec.folder(c) / "a.jpg")
            for c in CLASS_NAMES}
    spec = catalogue.DatasetSpec(**{**spec.__dict__, "checksums": sums})
    check = catalogue.verify(root, spec, splits="present")
    assert check.ok and check.splits == ("Testing",)
    assert check.not_checked == ["Training/: not in this folder, not checked"]
    (root / "Testing" / "notumor" / "a.jpg").write_bytes(b"changed")
    assert catalogue.verify(root, spec, splits="present").mismatched == ["Testing/notumor/a.jpg"]
    with pytest.raises(catalogue.DataLayoutError, match="no 'Training' folder"):
        catalogue.verify(root, spec)  # the whole dataset was asked for


@pytest.mark.shared_data
def test_the_shared_testing_copy_of_the_second_dataset_verifies():
    root = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nickparvar-brain-tumor-mri-testing"
    if not (root / "Testing").is_dir():
        pytest.skip(f"not present: {root}")
    assert catalogue.detect_spec(root) is catalogue.NICKPARVAR
    check = catalogue.verify(root, catalogue.NICKPARVAR, splits="present")
    assert check.ok and check.splits == ("Testing",) and not check.extra
    assert check.counts == {"Testing": catalogue.NICKPARVAR.counts["Testing"]}
    assert check.not_checked == ["Training/: not in this folder, not checked"]
