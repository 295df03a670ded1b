"""Settings for every pytest run of this repository, notebooks included.

The notebooks that nbval runs (notebooks/, solutions/; only when asked, with `--nbval-lax`) start
their kernels with this process's environment: quick mode makes them use the bundled sample and few
steps, so the whole course runs in minutes. `BRAINLAB_QUICK=0 python -m pytest --nbval-lax notebooks`
runs them in full.
Their brainlab cache (decoded images, verdicts) and their runs folder (trained models) are temporary
folders made for the session and removed after it, so tests never fill or read your own cache
(~/.cache/brainlab) or the runs you made with the course (runs/): every run trains as on a fresh
clone, and the notebooks of one session share their runs as a student's do (an exercise finds the run
of its course notebook). Set BRAINLAB_CACHE or BRAINLAB_RUNS yourself to choose another (it is then kept).
(tests/conftest.py gives each Python test function its own cache and removes these variables;
``session_runs`` there hands this runs folder to the tests that start notebook kernels.)
"""
import os
import shutil
import tempfile

os.environ.setdefault("BRAINLAB_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SESSION_FOLDERS = {"BRAINLAB_CACHE": "brainlab-test-cache-", "BRAINLAB_RUNS": "brainlab-test-runs-"}
_made: dict[str, str] = {}  # variable -> the temporary folder this session made for it


def pytest_configure(config):
    for variable, prefix in SESSION_FOLDERS.items():
        if not os.environ.get(variable):
            _made[variable] = os.environ[variable] = tempfile.mkdtemp(prefix=prefix)


def pytest_unconfigure(config):
    for variable, folder in list(_made.items()):
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get(variable) == folder:
            del os.environ[variable]
        del _made[variable]
