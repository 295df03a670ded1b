"""Shared fixtures: an isolated brainlab cache, the full dataset when present, tiny datasets on disk."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainlab.datasets import CLASS_NAMES  # tests import it from here too: the one definition

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASET = REPO.parent / "shared" / "datasets" / "sartaj-brain-tumor-classification-mri"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets a private cache and no user settings: results never depend on the machine."""
    monkeypatch.setenv("BRAINLAB_CACHE", str(tmp_path / "brainlab-cache"))
    monkeypatch.delenv("BRAINLAB_DATA", raising=False)
    monkeypatch.delenv("BRAINLAB_QUICK", raising=False)


@pytest.fixture
def shared_dataset() -> Path:
    """The full dataset, for tests that need it; they skip where it is absent (as on users' machines)."""
    if not (SHARED_DATASET / "Training").is_dir():
        pytest.skip(f"full dataset not present at {SHARED_DATASET}")
    return SHARED_DATASET


def brain_like(seed: int, size: int = 64) -> Image.Image:
    """A grayscale 'scan': a bright ellipse with texture on black, different for every seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    a, b = rng.uniform(0.25, 0.45, 2)
    head = ((xx / a) ** 2 + (yy / b) ** 2) < 1
    img = head * (120 + 60 * rng.random((size, size)))
    cx, cy = rng.uniform(-0.15, 0.15, 2)
    img[((xx - cx) ** 2 + (yy - cy) ** 2) < rng.uniform(0.002, 0.01)] = 250
    return Image.fromarray(img.astype(np.uint8), mode="L")


def make_dataset(root: Path, per_class: int = 3, splits=("Training", "Testing"), size: int = 64) -> Path:
    """Write a tiny dataset in the real layout: ``root/<split>/<class>/img<i>.jpg``."""
    seed = 0
    for split in splits:
        for c in CLASS_NAMES:
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                seed += 1
                brain_like(seed, size).convert("RGB").save(folder / f"img{i}.jpg", quality=90)
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data")
