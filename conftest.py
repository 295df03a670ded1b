"""Settings for every pytest run of this repository, notebooks included.

The notebooks that nbval runs (notebooks/, solutions/) start their kernels with this process's
environment: quick mode makes them use the bundled sample and few steps, so the whole course runs
in minutes. `BRAINLAB_QUICK=0 python -m pytest notebooks` runs them in full.
Their brainlab cache (decoded images, verdicts) is a temporary folder made for the session and
removed after it, so tests never fill or read your own cache (~/.cache/brainlab); set
BRAINLAB_CACHE yourself to choose another (it is then kept).
(tests/conftest.py gives each Python test function its own cache and removes these variables.)
"""
import os
import shutil
import tempfile

os.environ.setdefault("BRAINLAB_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_SESSION_CACHE = None


def pytest_configure(config):
    global _SESSION_CACHE
    if not os.environ.get("BRAINLAB_CACHE"):
        _SESSION_CACHE = tempfile.mkdtemp(prefix="brainlab-test-cache-")
        os.environ["BRAINLAB_CACHE"] = _SESSION_CACHE


def pytest_unconfigure(config):
    global _SESSION_CACHE
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
        if os.environ.get("BRAINLAB_CACHE") == _SESSION_CACHE:
            del os.environ["BRAINLAB_CACHE"]
        _SESSION_CACHE = None
