"""Shared fixtures: an isolated brainlab cache, the full dataset when present, tiny datasets on disk,
and each Keras dtype policy in turn."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainlab.catalogue import CLASS_NAMES  # tests import it from here too: the one definition

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASET = REPO.parent / "shared" / "datasets" / "sartaj-brain-tumor-classification-mri"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets a private cache and no user settings: results never depend on the machine."""
    monkeypatch.setenv("BRAINLAB_CACHE", str(tmp_path / "brainlab-cache"))
    monkeypatch.delenv("BRAINLAB_DATA", raising=False)
    monkeypatch.delenv("BRAINLAB_WEIGHTS", raising=False)
    monkeypatch.delenv("BRAINLAB_QUICK", raising=False)
    monkeypatch.delenv("BRAINLAB_PRECISION", raising=False)
    monkeypatch.delenv("BRAINLAB_RUNS", raising=False)


@pytest.fixture(scope="session")
def session_runs(tmp_path_factory) -> Path:
    """The runs folder the notebooks of this session share (the one conftest.py beside tests/ made).

    For tests that start notebook kernels: an exercise or solution notebook finds the run its course
    notebook made, as on a student's machine, and nothing is left in the repository's runs/.
    """
    chosen = os.environ.get("BRAINLAB_RUNS")  # read before any test's isolated_env removes it
    return Path(chosen) if chosen else tmp_path_factory.mktemp("runs")


# --------------------------------------------------------------------------- dtype policies
# The Keras dtype policies brainlab must work under: float32 on CPUs, mixed precision on GPUs
# (brainlab.train.device_policy picks mixed_float16 there; bfloat16 suits TPUs and recent CPUs).
from brainlab.settings import PRECISIONS  # noqa: E402  (the one list of precisions)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Set Keras's global dtype policy to ``name`` for a while; the one before always comes back."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(before)


@pytest.fixture(params=PRECISIONS)
def precision(request):
    """Runs the test once under each dtype policy (models built inside the test get it)."""
    with dtype_policy(request.param):
        yield request.param


@pytest.fixture(params=PRECISIONS[1:])
def mixed_precision(request):
    """Runs the test once under each mixed-precision policy."""
    with dtype_policy(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def no_dtype_policy_leak():
    """A test that sets a dtype policy (device_policy() does) leaves float32 behind it."""
    yield
    keras = sys.modules.get("keras")
    if keras is not None and keras.config.dtype_policy().name != "float32":
        keras.config.set_dtype_policy("float32")


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
