"""The dataset audit: exact and near copies, leaks, label conflicts, shortcuts, the clean split.

The fixture is a small dataset of real MRI slices from the bundled sample, laid out like the
real one, with planted problems whose answers are known:

- one pituitary slice in Training and five edited copies of it in Testing (re-encoded, resized
  up and down, brightness shifted, slightly cropped): each must be found, and the group is a
  cross-split leak;
- a glioma slice copied byte for byte into meningioma_tumor: a label conflict;
- two neighbouring slices of one patient (same head outline, different anatomy inside) and a
  dozen other distinct slices: none may be flagged.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from brainlab import audit, catalogue, data
from brainlab.audit.groups import clean_split, duplicate_groups
from brainlab.protocols import PARTS
from brainlab.audit.matching import NEAR_THRESHOLD, align, exact_duplicate_pairs, match_sets, split_cuts
from brainlab.audit.shortcuts import shortcut_accuracy
from brainlab.audit.thumbnails import inventory, read_thumbnail
from brainlab.cli import main

ORIGINAL = "Training/pituitary_tumor/p (123).jpg"
def scaled(im: Image.Image, factor: float) -> Image.Image:
    return im.resize((round(im.width * factor), round(im.height * factor)), Image.Resampling.BICUBIC)


COPIES = {  # name in Testing/pituitary_tumor -> (image, JPEG quality) made from ORIGINAL
    "reencoded.jpg": lambda im: (im, 55),
    "resized.jpg": lambda im: (scaled(im, 1.7), 90),
    "smaller.jpg": lambda im: (scaled(im, 0.8), 90),
    "brighter.jpg": lambda im: (im.point(lambda v: min(v + 30, 255)), 90),
    "cropped.jpg": lambda im: (im.crop((6, 3, im.width - 8, im.height - 2)), 90),
}
NEIGHBOURS = ("Training/glioma_tumor/gg (546).jpg", "Training/glioma_tumor/gg (547).jpg")  # adjacent slices
RELABELLED_FROM, RELABELLED_TO = "Training/glioma_tumor/gg (20).jpg", "Training/meningioma_tumor/relabelled.jpg"
DISTINCT = [  # sample images that are no copy of one another (the sample's own copies are left out)
    "Training/glioma_tumor/gg (138).jpg", "Training/meningioma_tumor/m (123).jpg",
    "Training/meningioma_tumor/m1(144).jpg", "Training/meningioma_tumor/m2 (107).jpg",
    "Training/no_tumor/image (10).jpg", "Training/no_tumor/image (18).jpg", "Training/no_tumor/image(100).jpg",
    "Training/pituitary_tumor/p (161).jpg", "Training/pituitary_tumor/p (183).jpg",
    "Testing/glioma_tumor/image(100).jpg", "Testing/glioma_tumor/image(13).jpg",
    "Testing/meningioma_tumor/image(1).jpg", "Testing/meningioma_tumor/image(16).jpg",
    "Testing/no_tumor/image(12).jpg", "Testing/no_tumor/image(14).jpg", "Testing/pituitary_tumor/image(11).jpg",
]


def build_fixture(root: Path) -> Path:
    sample = data.sample_dir()
    for rel in [ORIGINAL, *NEIGHBOURS, RELABELLED_FROM, *DISTINCT]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample / rel, root / rel)
    shutil.copyfile(sample / RELABELLED_FROM, root / RELABELLED_TO)
    original = Image.open(sample / ORIGINAL).convert("L")
    for name, make in COPIES.items():
        image, quality = make(original)
        image.save(root / "Testing" / "pituitary_tumor" / name, quality=quality)
    return root


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return build_fixture(tmp_path_factory.mktemp("audit") / "data")


@pytest.fixture(scope="module")
def result(fixture_root) -> audit.AuditResult:
    return audit.audit_dataset(fixture_root, seed=0)


def copy_paths() -> list[str]:
    return [f"Testing/pituitary_tumor/{name}" for name in COPIES]


def test_every_edited_copy_is_found_and_is_a_cross_split_leak(result):
    pairs = result.pairs
    found = {(a, b): (kind, score) for a, b, kind, score in zip(pairs.path_a, pairs.path_b, pairs.kind, pairs.score)}
    for copy in copy_paths():
        assert (ORIGINAL, copy) in found, f"{copy} not found as a copy of {ORIGINAL}"
        kind, score = found[(ORIGINAL, copy)]
        assert kind == "near" and NEAR_THRESHOLD <= score <= 1.0001, (copy, kind, score)
    files = result.files.set_index("path")
    group = files.loc[[ORIGINAL, *copy_paths()], "group"]
    assert group.nunique() == 1 and files.loc[ORIGINAL, "group_size"] == 1 + len(COPIES)
    assert files.loc[[ORIGINAL, *copy_paths()], "cross_split"].all()
    counts = result.counts.set_index(["split", "class"])
    assert counts.loc[("Testing", "pituitary_tumor")].tolist() == [len(COPIES) + 1, 0, len(COPIES), len(COPIES), 0]
    assert counts.loc[("Training", "pituitary_tumor"), "cross_split"] == 1
    assert result.summary["testing_with_copy_in_training"] == len(COPIES)


def test_one_set_matched_against_another_finds_the_same_copies_with_the_same_scores(fixture_root, result):
    """match_sets: which Testing images copy a Training image, as if they were two datasets."""
    inv = inventory(fixture_root, progress=False)
    training = (inv.files["split"] == "Training").to_numpy()
    a, b = np.flatnonzero(training), np.flatnonzero(~training)
    matched = match_sets(inv.thumbs[a], inv.boxes[a], inv.thumbs[b], inv.boxes[b], progress=False)
    assert matched["a"].between(0, len(a) - 1).all() and matched["b"].between(0, len(b) - 1).all()
    near = matched[matched["near"]]
    paths_a, paths_b = inv.files["path"].to_numpy()[a], inv.files["path"].to_numpy()[b]
    found = {(paths_a[i], paths_b[j]): score for i, j, score in zip(near["a"], near["b"], near["score"])}
    assert sorted(found) == sorted((ORIGINAL, copy) for copy in copy_paths())
    # the same pairs, scored the same as by the audit of the whole dataset at once
    within = {(pa, pb): score for pa, pb, score in zip(result.pairs.path_a, result.pairs.path_b, result.pairs.score)}
    assert {pair: round(score, 4) for pair, score in found.items()} == {pair: within[pair] for pair in found}
    empty = match_sets(inv.thumbs[a], inv.boxes[a], inv.thumbs[:0], inv.boxes[:0], progress=False)
    assert empty.empty and list(empty.columns) == list(matched.columns)


def test_a_copy_under_another_label_is_a_label_conflict(result):
    conflicts = result.pairs[result.pairs["label_conflict"]]
    assert conflicts[["path_a", "path_b", "kind"]].values.tolist() == [[RELABELLED_FROM, RELABELLED_TO, "exact"]]
    flagged = result.files.loc[result.files["label_conflict"], "path"]
    assert sorted(flagged) == sorted([RELABELLED_FROM, RELABELLED_TO])
    listed = [sorted(f["path"] for f in c["files"]) for c in result.summary["label_conflicts"]]
    assert listed == [sorted([RELABELLED_FROM, RELABELLED_TO])]
    assert result.summary["totals"]["exact"] == 2 and result.summary["totals"]["label_conflicts"] == 2


def test_distinct_images_and_neighbouring_slices_are_not_flagged(result):
    files = result.files.set_index("path")
    planted = {ORIGINAL, *copy_paths(), RELABELLED_FROM, RELABELLED_TO}
    others = files.drop(index=list(planted))
    assert (others["group_size"] == 1).all(), others[others["group_size"] > 1]
    assert set(result.pairs["path_a"]) | set(result.pairs["path_b"]) == planted
    # the neighbouring slices were compared (their outlines match) and told apart by their detail
    checked = result.checked.set_index(["path_a", "path_b"])
    neighbours = checked.loc[NEIGHBOURS]
    assert neighbours["aligned"] > 0.9  # a plain correlation would call them copies
    assert neighbours["score"] < NEAR_THRESHOLD - 0.05 and neighbours["kind"] == "different"


def test_clean_split_keeps_groups_together_and_covers_every_file(result, fixture_root):
    clean = result.clean
    assert sorted(clean["path"]) == sorted(result.files["path"])
    assert set(clean["split"]) == set(PARTS)
    parts = result.files.assign(part=clean["split"].to_numpy()).groupby("group")["part"].nunique()
    assert (parts == 1).all()
    assert result.summary["clean_split"]["groups_in_more_than_one_part"] == 0
    again = clean_split(result.files, seed=0)
    assert again.equals(clean)  # seeded: the same split every time


def test_clean_split_is_stratified_and_seeded():
    rng = np.random.default_rng(0)
    classes = np.repeat(data.CLASS_NAMES, [200, 200, 100, 200])
    groups = np.arange(len(classes))
    groups[1:300:3] = groups[0:300:3]  # some pairs of copies ...
    groups[500:510] = 500  # ... and a group of ten
    files = pd.DataFrame({"path": [f"f{i}" for i in range(len(classes))], "class": rng.permutation(classes),
                          "group": groups})
    split = clean_split(files, seed=1)
    share = split["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.03) and share["test"] == pytest.approx(0.15, abs=0.03)
    mix = pd.crosstab(split["split"], split["class"], normalize="index")
    overall = files["class"].value_counts(normalize=True)
    assert (mix - overall).abs().max().max() < 0.03
    assert (files.assign(part=split["split"]).groupby("group")["part"].nunique() == 1).all()
    assert not clean_split(files, seed=2)["split"].equals(split["split"])


def test_size_alone_predicts_the_label_when_sizes_differ_by_class():
    rng = np.random.default_rng(0)

    def frame(n):
        label = rng.integers(0, 4, n)
        width = np.where(label == 2, 256, 512) + rng.integers(-2, 3, n) * (label == 3)
        return pd.DataFrame({"class": np.array(data.CLASS_NAMES)[label], "width": width, "height": width,
                             "aspect": 1.0, "file_kb": rng.uniform(10, 40, n)})

    informative = shortcut_accuracy(frame(400), frame(200))
    assert informative["accuracy"] > informative["majority"] + 0.3
    train, test = frame(400), frame(200)
    train["width"] = train["height"] = test["width"] = test["height"] = 512  # one size for all
    flat = shortcut_accuracy(train, test)
    assert flat["accuracy"] < 0.4


def test_align_recovers_a_known_crop():
    sample = data.sample_dir()
    image = Image.open(sample / ORIGINAL).convert("L")
    w, h = image.size
    cut = (0.06, 0.03, 0.02, 0.05)  # left, top, right, bottom
    cropped = image.crop((round(cut[0] * w), round(cut[1] * h), round(w - cut[2] * w), round(h - cut[3] * h)))
    buffers = []
    for im in (image, cropped):
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=90)
        buffers.append(read_thumbnail(buffer.getvalue())[0])
    score, cuts = align(buffers[0], buffers[1], (0.04, 0.04, 0.04, 0.04))
    assert score > 0.97
    assert np.allclose(cuts, cut, atol=0.012), cuts
    crop_a, crop_b = split_cuts((0.05, -0.02, 0.0, -0.01))
    assert crop_a == (0.05, 0.0, 0.0, 0.0) and crop_b == (0.0, 0.02, 0.0, 0.01)


def test_same_pixels_different_bytes(tmp_path):
    root = data.sample_dir()
    files = pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "sha256": ["1", "2", "3"],
                          "pixels_sha256": ["x", "x", "y"]})
    pairs = exact_duplicate_pairs(files)
    assert pairs[["a", "b", "kind"]].values.tolist() == [[0, 1, "same-pixels"]]
    # read_thumbnail's pixel hash ignores metadata: a PNG with a text chunk decodes to the same pixels
    from PIL import PngImagePlugin

    image = Image.open(root / ORIGINAL).convert("L")
    plain, tagged = io.BytesIO(), io.BytesIO()
    image.save(plain, "PNG")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved")
    image.save(tagged, "PNG", pnginfo=info)
    assert hashlib.sha256(plain.getvalue()).digest() != hashlib.sha256(tagged.getvalue()).digest()
    hashes = [read_thumbnail(b.getvalue(), pixel_hash=True)[2] for b in (plain, tagged)]
    assert hashes[0] == hashes[1] is not None


def test_groups_are_connected_components():
    pairs = pd.DataFrame({"a": [0, 1, 4], "b": [1, 2, 5]})
    assert duplicate_groups(7, pairs).tolist() == [0, 0, 0, 1, 2, 2, 3]


def test_cli_audit_writes_tables_figures_and_a_loadable_split(fixture_root, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["audit", "--data", str(fixture_root), "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "near-duplicate" in printed and str(out) in printed and "label conflicts" in printed
    for name in ("near_duplicates.csv", "summary.json", "summary.md", "clean_split.csv", "groups.csv", "files.csv",
                 "counts.csv", "shortcuts.csv", "checked_pairs.csv", "duplicate_pairs.png", "borderline_pairs.png",
                 "label_conflicts.png", "size_shortcut.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    pairs = pd.read_csv(out / "near_duplicates.csv")
    assert list(pairs.columns[:4]) == ["path_a", "path_b", "kind", "score"]
    assert (ORIGINAL, "Testing/pituitary_tumor/cropped.jpg") in set(zip(pairs.path_a, pairs.path_b))
    assert all((fixture_root / p).is_file() for p in pd.concat([pairs.path_a, pairs.path_b]))  # relative to the root
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_split_class"]["Testing"]["pituitary_tumor"]["near"] == len(COPIES)
    assert summary["totals"]["label_conflicts"] == 2
    # the size-only tree learns on the 14 Training files and is scored on the 12 Testing ones (6 pituitary, 2 of
    # each other class): the commonest Training class (glioma or meningioma, 4 each) is right on 2 of 12
    size = summary["shortcut"]["size_only"]["official"]
    assert (size["train_images"], size["test_images"], size["majority"]) == (14, 12, round(2 / 12, 4))
    assert size["accuracy"] * 12 == pytest.approx(round(size["accuracy"] * 12), abs=0.01)  # a count of 12
    assert f"size-only classifier on Testing: {size['accuracy']:.1%} (commonest class: 16.7%)" in printed
    assert "Label conflicts" in (out / "summary.md").read_text()
    splits = data.load_splits(fixture_root, image_size=32, manifest=out / "clean_split.csv", progress=False)
    manifest = pd.read_csv(out / "clean_split.csv")
    assert list(manifest.columns) == ["path", "class", "split"]
    assert sorted(p for s in splits for p in s.paths) == sorted(manifest["path"])
    assert splits.test.split == "clean-test"
    part_of = {p: s.split for s in splits for p in s.paths}
    assert part_of[ORIGINAL] == part_of["Testing/pituitary_tumor/cropped.jpg"]


def test_figures_have_titles_and_labels(result, fixture_root):
    fig = audit.pair_figure(fixture_root, result.pairs, "Copies", n=2)
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "Copies"
    axes = fig.axes
    assert len(axes) == 4 and all(ax.get_xlabel() for ax in axes)
    assert axes[0].get_ylabel().startswith(result.pairs["kind"].iloc[0])
    fig = audit.size_figure(result.files, result.summary["shortcut"])
    assert "size" in fig._suptitle.get_text() and "decision tree" in fig._suptitle.get_text()
    assert [ax.get_xlabel() for ax in fig.axes] == ["width (pixels, log scale)"] * 2 + ["share of the class's images"]
    assert fig.axes[2].get_title().startswith("Share of images at ")
    empty = audit.pair_figure(fixture_root, result.pairs.iloc[:0], "None")
    assert empty.axes[0].get_xlabel() == "no pairs to show"


@pytest.mark.shared_data
@pytest.mark.slow
def test_full_dataset_clean_split_and_exact_copies(shared_dataset):
    result = audit.audit_dataset(shared_dataset, seed=42)
    scanned = data.scan(shared_dataset).files
    assert sorted(result.clean["path"]) == sorted(f.relpath for f in scanned)  # every file, once
    parts = result.files.assign(part=result.clean["split"].to_numpy()).groupby("group")["part"].nunique()
    assert (parts == 1).all()
    mix = pd.crosstab(result.clean["split"], result.clean["class"], normalize="index")
    overall = result.clean["class"].value_counts(normalize=True)
    assert (mix - overall).abs().max().max() < 0.03
    # the exact pairs agree with an independent hash of every file
    by_hash: dict[str, list[str]] = {}
    for f in scanned:
        by_hash.setdefault(catalogue.sha256_of(f.path), []).append(f.relpath)
    expected = sum(len(v) * (len(v) - 1) // 2 for v in by_hash.values())
    assert (result.pairs["kind"] == "exact").sum() == expected > 0
    assert result.summary["totals"]["cross_split"] > 0  # the official split leaks
