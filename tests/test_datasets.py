"""brainlab.datasets: the catalogue, specs whose class folders are named otherwise, layout checks."""
from __future__ import annotations

import pytest

from brainlab import audit, data, datasets
from brainlab.errors import DataLayoutError
from conftest import CLASS_NAMES, make_dataset

FOLDERS = {"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "no_tumor": "notumor",
           "pituitary_tumor": "pituitary"}


@pytest.fixture
def renamed(tmp_path):
    """A tiny dataset whose class folders carry other names, and the spec that says so."""
    root = make_dataset(tmp_path / "other", per_class=2, size=32)
    for split in datasets.SPLITS:
        for class_name, folder in FOLDERS.items():
            (root / split / class_name).rename(root / split / folder)
    sums = {p.relative_to(root).as_posix(): datasets.sha256_of(p) for p in sorted(root.rglob("*.jpg"))}
    spec = datasets.DatasetSpec("renamed", "tiny, other folder names", CLASS_NAMES,
                                {s: {c: 2 for c in CLASS_NAMES} for s in datasets.SPLITS},
                                checksums=sums, class_folders=FOLDERS)
    return root, spec


def test_class_folders_map_to_brainlab_class_names(renamed):
    root, spec = renamed
    found = datasets.scan(root, spec=spec)
    assert len(found.files) == 16 and found.bad == []
    for f in found.files:
        assert f.relpath.split("/")[1] == FOLDERS[f.class_name]  # paths are the files' own
        assert f.label == CLASS_NAMES.index(f.class_name)  # labels are brainlab's order
    assert found.counts() == spec.counts
    check = datasets.verify(root, spec)
    assert check.ok and check.missing == [] and check.extra == []
    inventoried = audit.inventory(root, progress=False, spec=spec).files
    assert sorted(set(inventoried["class"])) == sorted(CLASS_NAMES)
    with pytest.raises(DataLayoutError, match="class folder\\(s\\) missing: glioma_tumor"):
        datasets.scan(root)  # the default spec expects brainlab's names on disk


def test_a_misnamed_folder_is_explained_in_the_specs_own_names(renamed):
    root, spec = renamed
    (root / "Testing" / "notumor").rename(root / "Testing" / "no_tumor")
    with pytest.raises(DataLayoutError) as info:
        datasets.scan(root, spec=spec)
    message = str(info.value)
    assert "class folder(s) missing: notumor" in message and "Found instead: no_tumor" in message
    assert "      notumor/   (image files)" in message  # the expected layout shows the folders to make
    with pytest.raises(DataLayoutError, match="missing: notumor"):
        datasets.verify(root, spec)  # verify checks the layout through the same scan


def test_specs_refuse_classes_they_do_not_have():
    with pytest.raises(ValueError, match="'tumour' is not one of its class names"):
        datasets.DatasetSpec("bad", "bad", CLASS_NAMES, {"Training": {c: 1 for c in CLASS_NAMES}},
                             class_folders={"tumour": "t"})
    with pytest.raises(ValueError, match="'notumor' is not one of its class names"):
        datasets.DatasetSpec("bad", "bad", CLASS_NAMES, {"Testing": {"notumor": 3}})


def test_the_catalogue_lists_the_papers_dataset_by_name():
    assert datasets.spec_named("brain-tumor-classification-mri") is datasets.BRAIN_TUMOR
    assert datasets.CATALOGUE == {"brain-tumor-classification-mri": datasets.BRAIN_TUMOR}
    with pytest.raises(ValueError, match="choose from brain-tumor-classification-mri"):
        datasets.spec_named("mnist")
    assert datasets.BRAIN_TUMOR.folder("no_tumor") == "no_tumor"  # no mapping: folders are the class names
    assert data.CLASS_NAMES is datasets.CLASS_NAMES and data.SPLITS == datasets.BRAIN_TUMOR.splits
    advice = datasets.how_to_get_data()
    assert "Training/ and Testing/" in advice and datasets.BRAIN_TUMOR.homepage in advice
