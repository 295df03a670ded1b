"""Settings for every pytest run of this repository, notebooks included.

The notebooks that nbval runs (notebooks/, solutions/) start their kernels with this process's
environment: quick mode makes them use the bundled sample and few steps, so the whole course runs
in minutes. `BRAINLAB_QUICK=0 python -m pytest notebooks` runs them in full.
(tests/conftest.py removes the variable around each Python test function.)
"""
import os

os.environ.setdefault("BRAINLAB_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
