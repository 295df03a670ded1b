"""brainlab.data: layout checks, robust decoding, loaders, splits, the bundled sample."""
from __future__ import annotations

import csv
import io
import os

import numpy as np
import pytest
from PIL import Image

from brainlab import catalogue, data, images
from brainlab.errors import BrainlabError, DataLayoutError, DataNotFoundError
from conftest import CLASS_NAMES, brain_like, make_dataset

# ----------------------------------------------------------------------------- the sample


def test_sample_counts_shapes_and_labels():
    root = data.sample_dir()
    counts = data.scan(root).counts()
    assert counts == {"Training": {c: 40 for c in CLASS_NAMES}, "Testing": {c: 10 for c in CLASS_NAMES}}
    test = data.load_split("Testing", root, image_size=128, progress=False)
    assert test.images.shape == (40, 128, 128, 3) and test.images.dtype == np.uint8
    assert test.split == "sample-test"
    for path, label in zip(test.paths, test.labels):  # label order is the paper's: the folder decides
        assert path.split("/")[1] == CLASS_NAMES[label]
    assert test.class_counts() == {c: 10 for c in CLASS_NAMES}
    # the sample is small, real and shipped as package data with its licence
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 5e6 and (root / "LICENSE").is_file() and "Bhuvaji" in (root / "README.md").read_text()


def test_quick_mode_uses_the_sample(monkeypatch):
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert data.find_data() == data.sample_dir()
    splits = data.load_splits(image_size=32, progress=False)
    assert [len(s) for s in splits] == [136, 24, 40]


def test_class_names_are_the_papers_order():
    assert data.CLASS_NAMES == ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")
    assert catalogue.BRAIN_TUMOR.total("Training") == 2870 and catalogue.BRAIN_TUMOR.total("Testing") == 394
    assert [catalogue.BRAIN_TUMOR.counts["Testing"][c] for c in CLASS_NAMES] == [100, 115, 105, 74]
    assert len(catalogue.BRAIN_TUMOR.file_checksums()) == 3264


# ----------------------------------------------------------------------------- loaders


def test_splits_are_stratified_seeded_and_disjoint():
    root = data.sample_dir()
    a = data.load_splits(root, image_size=32, seed=1, progress=False)
    b = data.load_splits(root, image_size=32, seed=1, progress=False)
    c = data.load_splits(root, image_size=32, seed=2, progress=False)
    assert a.val.paths == b.val.paths and a.val.paths != c.val.paths
    assert not set(a.train.paths) & set(a.val.paths)
    assert all(p.startswith("Training/") for p in a.train.paths + a.val.paths)
    assert all(p.startswith("Testing/") for p in a.test.paths)
    assert a.val.class_counts() == {c: 6 for c in CLASS_NAMES}  # 15% of 40 per class, stratified
    assert (a.train.split, a.val.split, a.test.split) == ("sample-train", "sample-val", "sample-test")


def test_dataset_order_is_deterministic_and_shuffle_is_seeded():
    s = data.load_split("Testing", data.sample_dir(), image_size=32, progress=False)
    labels = np.concatenate([y.numpy() for _, y in s.dataset(batch_size=7)])
    assert labels.tolist() == s.labels.tolist()  # evaluation order == file order
    x, _ = next(iter(s.dataset(batch_size=40)))
    assert x.dtype.name == "float32" and x.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(x.numpy(), s.images.astype(np.float32))

    def first_epoch(seed):
        return np.concatenate([y.numpy() for _, y in s.dataset(batch_size=8, shuffle=True, seed=seed)]).tolist()

    assert first_epoch(3) == first_epoch(3) != s.labels.tolist()
    assert sorted(first_epoch(3)) == sorted(s.labels.tolist())


def test_channels_and_image_size(tiny_dataset):
    # a folder that is not a verified copy of the dataset is never called official
    assert data.load_split("Testing", tiny_dataset, image_size=16, progress=False).split == "unverified-test"
    gray = data.load_split("Training", tiny_dataset, image_size=48, channels=1, progress=False)
    assert gray.images.shape == (12, 48, 48, 1)
    rgb = data.load_split("Training", tiny_dataset, image_size=48, channels=3, progress=False)
    # the images are gray, so the three channels are equal and match the one-channel version closely
    assert np.abs(rgb.images[..., 0].astype(int) - gray.images[..., 0]).max() <= 2
    with pytest.raises(ValueError, match="channels"):
        images.read_image(tiny_dataset / "Training/no_tumor/img0.jpg", channels=2)


def test_decoded_images_are_cached_and_refreshed_when_files_change(tiny_dataset):
    from brainlab import cache

    first = data.load_split("Testing", tiny_dataset, image_size=32, progress=False)
    cached = list((cache.cache_dir() / "decoded").glob("*.npz"))
    again = data.load_split("Testing", tiny_dataset, image_size=32, progress=False)
    assert list((cache.cache_dir() / "decoded").glob("*.npz")) == cached
    np.testing.assert_array_equal(first.images, again.images)
    assert again.paths == first.paths
    # replacing a file changes its size/mtime, so the cache is rebuilt rather than served stale
    target = tiny_dataset / "Testing/glioma_tumor/img0.jpg"
    Image.new("RGB", (64, 64), (255, 255, 255)).save(target)
    fresh = data.load_split("Testing", tiny_dataset, image_size=32, progress=False)
    assert fresh.images[fresh.paths.index("Testing/glioma_tumor/img0.jpg")].min() == 255


def test_manifest_split(tiny_dataset, tmp_path):
    files = data.scan(tiny_dataset).files
    manifest = tmp_path / "clean_split.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "class", "split"])
        for i, img in enumerate(files):
            w.writerow([img.relpath, img.class_name, ("train", "val", "test")[i % 3]])
    s = data.load_splits(tiny_dataset, image_size=32, manifest=manifest, progress=False)
    assert (s.train.split, s.val.split, s.test.split) == ("clean-train", "clean-val", "clean-test")
    assert len(s.train) + len(s.val) + len(s.test) == len(files) == 24
    assert s.test.paths == [img.relpath for i, img in enumerate(files) if i % 3 == 2]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx,y\n")
    with pytest.raises(BrainlabError, match="path,class,split"):
        data.load_splits(tiny_dataset, manifest=bad)


# ----------------------------------------------------------------------------- what users really have


def _save(img: Image.Image, path, fmt, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def test_read_image_handles_real_world_files(tmp_path):
    base = brain_like(7, 40)
    cases = {
        "gray.jpg": _save(base, tmp_path / "gray.jpg", "JPEG"),
        "rgb.png": _save(base.convert("RGB"), tmp_path / "rgb.png", "PNG"),
        "palette.png": _save(base.convert("P"), tmp_path / "palette.png", "PNG"),
        "png_named.jpg": _save(base, tmp_path / "png_named.jpg", "PNG"),
        "cmyk.jpg": _save(base.convert("RGB").convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG"),
        "huge.jpg": _save(base.resize((1400, 1100)), tmp_path / "huge.jpg", "JPEG"),
    }
    for name, path in cases.items():
        arr = images.read_image(path, image_size=32)
        assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8, name
        assert arr.max() > 150 and arr[0, 0].max() < 40, name  # bright head, dark corner survive every format

    # RGBA: transparent pixels become black background, opaque ones keep their value
    rgba = Image.new("RGBA", (20, 20), (200, 200, 200, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, 10, 20))
    arr = images.read_image(_save(rgba, tmp_path / "rgba.png", "PNG"), channels=1)
    assert arr[:, :10].max() == 0 and arr[:, 10:].min() == 200

    # 16-bit: a 12-bit range (0..4095) is stretched to the full 0..255
    deep = (np.linspace(0, 4095, 30 * 30).reshape(30, 30)).astype(np.uint16)
    arr = images.read_image(_save(Image.fromarray(deep), tmp_path / "deep.png", "PNG"), channels=1)
    assert arr.min() == 0 and arr.max() == 255 and arr.shape == (30, 30, 1)

    # EXIF orientation 6 ("rotate 90 clockwise to view"): a wide file is shown tall, white half on top
    wide = Image.new("L", (40, 20), 0)
    wide.paste(255, (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6
    arr = images.read_image(_save(wide, tmp_path / "exif.jpg", "JPEG", exif=exif, quality=95), channels=1)
    assert arr.shape == (40, 20, 1)
    assert arr[:15].mean() > 200 and arr[25:].mean() < 50


def test_unreadable_files_are_skipped_with_a_summary(tiny_dataset, capsys):
    folder = tiny_dataset / "Training" / "glioma_tumor"
    good = (folder / "img0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / "readme.txt").write_text("a stray text file")
    s = data.load_split("Training", tiny_dataset, image_size=32, progress=False)
    assert len(s) == 12  # the 12 good images, nothing crashed
    reasons = dict(s.skipped)
    assert set(reasons) == {f"Training/glioma_tumor/{n}" for n in ("truncated.jpg", "empty.jpg", "notes.jpg")}
    assert "0 bytes" in reasons["Training/glioma_tumor/empty.jpg"]
    err = capsys.readouterr().err
    assert "skipped 3 unreadable" in err and "truncated.jpg" in err
    # the batches of a whole epoch decode without error
    assert sum(int(y.shape[0]) for _, y in s.dataset(batch_size=5)) == 12
    assert any("suffix .txt" in reason for _, reason in data.scan(tiny_dataset).bad)


def test_hidden_files_and_folders_are_ignored(tiny_dataset):
    folder = tiny_dataset / "Training" / "no_tumor"
    (folder / ".DS_Store").write_bytes(b"\x00\x01junk")
    (folder / "Thumbs.db").write_bytes(b"junk")
    (folder / "._img0.jpg").write_bytes(b"resource fork")
    (folder / ".ipynb_checkpoints").mkdir()
    brain_like(99).save(folder / ".ipynb_checkpoints" / "copy.jpg")
    (tiny_dataset / "__MACOSX" / "Training").mkdir(parents=True)
    (tiny_dataset / "Training" / ".hidden_dir").mkdir()
    found = data.scan(tiny_dataset)
    assert found.counts()["Training"]["no_tumor"] == 3
    assert found.bad == []


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "Testing").rename(r / "testing"), "rename it to 'Testing'"),
    (lambda r: (r / "Training" / "glioma_tumor").rename(r / "Training" / "glioma"), "Found instead: glioma"),
    (lambda r: [p.unlink() for p in (r / "Testing" / "no_tumor").iterdir()], "holds no image files"),
    (lambda r: __import__("shutil").rmtree(r / "Training"), "no 'Training' folder"),
])
def test_wrong_layouts_are_explained(tiny_dataset, breakage, message):
    breakage(tiny_dataset)
    with pytest.raises(DataLayoutError) as info:
        data.scan(tiny_dataset)
    assert message in str(info.value) and "Expected layout" in str(info.value)


def test_nested_dataset_folder_is_pointed_out(tmp_path):
    make_dataset(tmp_path / "outer" / "inner", per_class=1)
    with pytest.raises(DataLayoutError, match="one level down"):
        data.scan(tmp_path / "outer")


# ----------------------------------------------------------------------------- finding the data


def test_find_data_order(tiny_dataset, tmp_path, monkeypatch):
    other = make_dataset(tmp_path / "other", per_class=1)
    monkeypatch.setenv("BRAINLAB_DATA", str(other))
    assert data.find_data(tiny_dataset) == tiny_dataset  # an explicit path wins
    assert data.find_data() == other  # then BRAINLAB_DATA
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert data.find_data() == data.sample_dir()  # quick mode means the sample
    monkeypatch.delenv("BRAINLAB_QUICK")
    monkeypatch.delenv("BRAINLAB_DATA")
    with pytest.raises(DataNotFoundError, match="BRAINLAB_DATA") as info:
        data.find_data(download=False)  # nothing cached, no download allowed: advice, not a traceback
    assert "fetch-data" in str(info.value) and "BRAINLAB_QUICK" in str(info.value)
    cached = catalogue.default_location()
    make_dataset(cached, per_class=1)
    assert data.find_data(download=False) == cached  # the per-user cache
    monkeypatch.setenv("BRAINLAB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        data.find_data()


def test_brainlab_errors_render_without_traceback_in_jupyter():
    err = DataNotFoundError("line one\nline two")
    lines = err._render_traceback_()
    assert "DataNotFoundError" in lines[0] and lines[1] == "line two" and len(lines) == 2


# ----------------------------------------------------------------------------- the full dataset


@pytest.mark.shared_data
def test_full_dataset_verifies_and_loads(shared_dataset, monkeypatch):
    check = catalogue.verify(shared_dataset)
    assert check.ok, check.problems()
    assert check.counts == catalogue.BRAIN_TUMOR.counts and check.extra == []
    test = data.load_split("Testing", shared_dataset, image_size=64, progress=False)
    assert len(test) == 394 and test.class_counts() == catalogue.BRAIN_TUMOR.counts["Testing"]
    assert test.skipped == [] and test.split == "official-test"  # a verified copy: the paper's protocol
    # the verdict is cached: the next load does not checksum the 3264 files again
    monkeypatch.setattr(catalogue, "verify", lambda *a, **k: pytest.fail("verified twice"))
    assert data.protocol(shared_dataset) == "official"


def test_verify_reports_changed_and_missing_files(tiny_dataset):
    files = data.scan(tiny_dataset).files
    sums = {f.relpath: catalogue.sha256_of(f.path) for f in files}
    counts = {s: {c: 3 for c in CLASS_NAMES} for s in catalogue.SPLIT_FOLDERS}
    spec = catalogue.DatasetSpec("tiny", "tiny", CLASS_NAMES, counts, checksums=sums)
    assert catalogue.verify(tiny_dataset, spec).ok
    buf = io.BytesIO()
    brain_like(1234).save(buf, "JPEG")
    (tiny_dataset / files[0].relpath).write_bytes(buf.getvalue())
    (tiny_dataset / files[1].relpath).unlink()
    check = catalogue.verify(tiny_dataset, spec)
    assert not check.ok
    assert check.mismatched == [files[0].relpath] and check.missing == [files[1].relpath]
    assert any("expected 3 images, found 2" in e for e in check.count_errors)


def test_only_a_folder_that_verifies_is_official_and_the_verdict_is_cached(tiny_dataset, tmp_path, monkeypatch):
    files = data.scan(tiny_dataset).files
    sums = {f.relpath: catalogue.sha256_of(f.path) for f in files}
    counts = {s: {c: 3 for c in CLASS_NAMES} for s in catalogue.SPLIT_FOLDERS}
    spec = catalogue.DatasetSpec("tiny", "tiny", CLASS_NAMES, counts, checksums=sums)
    calls = []
    real_verify = catalogue.verify
    monkeypatch.setattr(catalogue, "verify", lambda *a, **k: calls.append(a) or real_verify(*a, **k))
    assert data.protocol(tiny_dataset, spec) == "official" and len(calls) == 1
    assert data.protocol(tiny_dataset, spec) == "official" and len(calls) == 1  # the cached verdict
    buf = io.BytesIO()
    brain_like(1234).save(buf, "JPEG")
    (tiny_dataset / files[0].relpath).write_bytes(buf.getvalue())  # one file changed: checked again
    assert data.protocol(tiny_dataset, spec) == "unverified" and len(calls) == 2
    assert data.protocol(tiny_dataset, spec) == "unverified" and len(calls) == 2
    # against the real dataset's spec the counts differ already: no file is read
    assert data.protocol(tiny_dataset) == "unverified" and len(calls) == 2
    assert data.protocol(data.sample_dir()) == "sample"
    only_training = make_dataset(tmp_path / "only", splits=("Training",))
    assert data.load_split("Training", only_training, image_size=16, progress=False).split == "unverified-train"
    own = data.load_splits(make_dataset(tmp_path / "mine", per_class=8), image_size=16, progress=False)
    assert (own.train.split, own.val.split, own.test.split) == ("unverified-train", "unverified-val", "unverified-test")


def test_decoded_cache_is_bounded_least_recently_used_first(tiny_dataset, monkeypatch):
    from brainlab import cache

    folder = cache.cache_dir() / "decoded"
    data.load_split("Testing", tiny_dataset, image_size=32, progress=False)
    data.load_split("Testing", tiny_dataset, image_size=24, progress=False)
    first, second = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    os.utime(first, ns=(1, 1))
    os.utime(second, ns=(2, 2))
    data.load_split("Testing", tiny_dataset, image_size=32, progress=False)  # a cache hit marks it used
    assert first.stat().st_mtime_ns > second.stat().st_mtime_ns
    # room for these two: a third (smaller) file evicts the least recently used one, never the new one
    monkeypatch.setenv("BRAINLAB_CACHE_MAX_MB", str((first.stat().st_size + second.stat().st_size) / 2**20))
    data.load_split("Testing", tiny_dataset, image_size=20, progress=False)
    assert first.is_file() and not second.exists() and len(list(folder.glob("*.npz"))) == 2
    monkeypatch.setenv("BRAINLAB_CACHE_MAX_MB", "0")  # nothing kept but the file just written
    data.load_split("Testing", tiny_dataset, image_size=16, progress=False)
    assert len(list(folder.glob("*.npz"))) == 1 and not first.exists()
    monkeypatch.setenv("BRAINLAB_CACHE_MAX_MB", "lots")
    with pytest.raises(BrainlabError, match="BRAINLAB_CACHE_MAX_MB='lots' is not a number of megabytes"):
        data.load_split("Testing", tiny_dataset, image_size=12, progress=False)


def test_the_same_files_under_another_root_are_not_taken_from_the_cache_with_wrong_paths(tmp_path):
    """A split loaded from the dataset folder, then its folder alone: each set's paths are relative to its own root."""
    root = make_dataset(tmp_path / "data", per_class=6)
    splits = data.load_splits(root, 32, 1, progress=False)
    testing = data.load_labelled(root / "Testing", 32, 1, progress=False)
    assert all(p.startswith("Testing/") for p in splits.test.paths)
    assert testing.paths == [p.removeprefix("Testing/") for p in splits.test.paths]
    assert all((testing.root / p).is_file() for p in testing.paths)
    assert np.array_equal(testing.images, splits.test.images)


def test_a_training_split_too_small_to_validate_on_is_refused_with_its_counts(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=2)
    with pytest.raises(BrainlabError, match=r"Training is too small to set 15% of it aside .*glioma_tumor: 2"):
        data.load_splits(root, 32, 1, progress=False)
