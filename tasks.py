#!/usr/bin/env python3
"""Set up brainlab's environment and run its main jobs. Needs only Python 3.10+.

    python3 tasks.py lab     # create .venv, install brainlab with JupyterLab, open the course in JupyterLab
    python3 tasks.py demo    # create .venv, install brainlab, run the main job (no browser needed)
    python3 tasks.py test    # create .venv, install brainlab with test extras, run every test (the notebooks
                             # too; CI runs this); it lists the 25 slowest tests at the end
    python3 tasks.py test --fast  # the quick loop while you work: no notebook, no browser, no test marked
                             # slow (a few minutes on 2 cores)
    python3 tasks.py wheel   # build dist/brainlab-<version>-py3-none-any.whl (to install on Colab by hand)
    python3 tasks.py floors  # the lowest TensorFlow and Keras pyproject.toml allows, in .venv-floors,
                             # with the fast tests (a TensorFlow download: about 600 MB, some minutes)
    python3 tasks.py course [--full] [--data DIR] [--timeout S] [--record] [NOTEBOOK ...]
                             # run the course's notebooks, each in a fresh kernel (quick mode unless --full),
                             # and record their times, peak memory and headline numbers in docs/course-runs.md

The virtual environment lives in ``.venv`` next to this file (``BRAINLAB_VENV`` moves it).
Installing is skipped when the environment already matches ``pyproject.toml``.
Extra arguments after the job name go to the command it runs (pytest, jupyter lab).
``lab --dry-run`` only prints the command it would run; ``wheel --out DIR`` builds into DIR.
``course`` runs the course recorder (``python -m tools.run_course``) in the environment (``course --help`` lists its options): NOTEBOOK is
``03``, a file name or a path; ``--record`` writes the outputs into the notebooks.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BRAINLAB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv() -> None:
    """Create the virtual environment (with pip, nothing else) unless it exists."""
    if sys.version_info < (3, 10):
        sys.exit(f"brainlab needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"[tasks] creating virtual environment in {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(f"Could not create a virtual environment ({exc}).\n"
                     "On Debian/Ubuntu install it first: sudo apt install python3-venv")


def ensure_env(extras: str) -> None:
    """The virtual environment with brainlab and its ``extras`` installed (editable), as pyproject.toml says."""
    ensure_venv()
    stamp = VENV / f".brainlab-installed-{extras}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    print(f"[tasks] installing brainlab[{extras}] into {VENV} (first time: a few minutes)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(want)


def run(cmd: list[str]) -> int:
    print("[tasks] $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def lab_command(args: list[str]) -> list[str]:
    """JupyterLab on the course: the repository is its root (exercises/ and solutions/ in reach), notebooks/ opens first."""
    return [str(PY), "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT}", "--ContentsManager.preferred_dir=notebooks",
            *args]


def lab(args: list[str]) -> int:
    dry_run = "--dry-run" in args
    cmd = lab_command([a for a in args if a != "--dry-run"])
    if dry_run:
        print(f"[tasks] would set up {VENV} with brainlab[lab], then run:\n{shlex.join(cmd)}", flush=True)
        return 0
    ensure_env("lab")
    print("[tasks] $ " + shlex.join(cmd) + "\n[tasks] stop JupyterLab with Ctrl-C", flush=True)
    server = subprocess.Popen(cmd, cwd=ROOT)
    try:
        return server.wait()
    except KeyboardInterrupt:  # shut the server (and its kernels) down cleanly
        server.terminate()
        return server.wait()


def project_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    if not match:
        sys.exit("pyproject.toml names no version = \"...\" line.")
    return match.group(1)


def wheel(args: list[str]) -> int:
    out = ROOT / "dist"
    if args[:1] == ["--out"] and len(args) == 2:
        out = Path(args[1]).resolve()
    elif args:
        sys.exit("usage: python3 tasks.py wheel [--out DIR]")
    ensure_venv()  # any Python with pip builds it; brainlab need not be installed
    version = project_version()
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would pack stale files left there
    with tempfile.TemporaryDirectory() as tmp:
        rc = run([str(PY), "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp, str(ROOT)])
        built = sorted(Path(tmp).glob("brainlab-*.whl"))
        if rc or not built:
            sys.exit("Building the wheel failed (see pip's message above). pip needs PyPI for setuptools "
                     "the first time.")
        out.mkdir(parents=True, exist_ok=True)
        target = out / built[0].name
        shutil.move(str(built[0]), target)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    if target.name != f"brainlab-{version}-py3-none-any.whl":
        sys.exit(f"{target.name}: expected brainlab-{version}-py3-none-any.whl (a pure-Python wheel of this version).")
    with zipfile.ZipFile(target) as whl:
        names = set(whl.namelist())
    package_data = [p.relative_to(ROOT).as_posix() for folder in ("sample", "checksums")
                    for p in sorted((ROOT / "brainlab" / folder).rglob("*")) if p.is_file()]
    missing = [name for name in package_data if name not in names]
    if missing or not package_data:
        sys.exit(f"{target} lacks {len(missing)} file(s) of the bundled sample and checksums, e.g. {missing[:3]}; "
                 "check [tool.setuptools.package-data] in pyproject.toml.")
    print(f"[tasks] built {target} ({target.stat().st_size / 1e6:.1f} MB; the bundled sample and checksums, "
          f"{len(package_data)} files, are inside)\n"
          f"[tasks] on Colab: upload it in the Files pane, then run  %pip install {target.name}", flush=True)
    return 0


def demo(args: list[str]) -> int:
    ensure_env("test")
    brainlab = str(BIN / "brainlab")
    for cmd in ([brainlab, "doctor"], [brainlab, "sample"]):
        rc = run(cmd)
        if rc:
            return rc
    return 0


# pytest's arguments for the full suite (tests/, and the notebooks, which nbval runs only when asked) and for
# the quick loop (tests/ without the slow marks; the browser test is one). pyproject.toml's
# [tool.pytest.ini_options] says what plain pytest collects.
FULL_TESTS = ["--nbval-lax", "--durations=25"]
FAST_TESTS = ["-m", "not slow"]


def tests_command(args: list[str]) -> list[str]:
    """The pytest command ``test`` runs: the full suite, or with ``--fast`` the quick loop; other arguments follow."""
    fast = "--fast" in args
    return [str(PY), "-m", "pytest", *(FAST_TESTS if fast else FULL_TESTS), *(a for a in args if a != "--fast")]


def test(args: list[str]) -> int:
    ensure_env("test")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background (nohup, some CI runners), this process ignores SIGINT, and pytest and the
        # trainings that tests interrupt with SIGINT (a Ctrl-C) would inherit that; with a handler here, they
        # start with the default instead.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return run(tests_command(args))


def course(args: list[str]) -> int:
    """The course's notebooks run one by one (nbclient lives in .venv, so ``-m tools.run_course`` runs there)."""
    ensure_env("test")
    return run([str(PY), "-m", "tools.run_course", *args])  # run() works in ROOT, where the tools package is


FLOORED = ("tensorflow", "keras")  # the dependencies whose lowest allowed version is tried
# Fast tests that exercise TensorFlow and Keras: models, training (checkpoints, resume), evaluation, data.
FLOOR_TESTS = ["tests/test_models.py", "tests/test_train.py", "tests/test_evaluate.py", "tests/test_data.py",
               "tests/test_explain.py", "-m", "not slow", "-p", "no:nbval", "-o", "addopts="]


def floor_pins() -> list[str]:
    """``tensorflow==2.16.*``, ``keras==3.7.0``...: each floored dependency at its pyproject.toml floor.

    TensorFlow is pinned to the floor's minor version (its newest patch: the wheels a person gets);
    Keras to the floor itself.
    """
    import re

    text = (ROOT / "pyproject.toml").read_text()
    pins = []
    for name in FLOORED:
        match = re.search(rf'"{name}>=([0-9.]+)"', text)
        if not match:
            sys.exit(f"pyproject.toml names no floor for {name} (expected \"{name}>=X.Y\")")
        floor = match.group(1)
        pins.append(f"{name}=={'.'.join(floor.split('.')[:2])}.*" if name == "tensorflow" else f"{name}=={floor}")
    return pins


def floors(args: list[str]) -> int:
    venv_dir = ROOT / ".venv-floors"
    py = venv_dir / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")
    if not py.exists():
        print(f"[tasks] creating virtual environment in {venv_dir}", flush=True)
        venv.create(venv_dir, with_pip=True)
    pins = floor_pins()
    print(f"[tasks] installing brainlab[test] with {' '.join(pins)} into {venv_dir}", flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", *pins, "-e", f"{ROOT}[test]"], check=True)
    rc = run([str(py), "-c", "import tensorflow as tf, keras, numpy; "
              "print('[tasks] tensorflow', tf.__version__, 'keras', keras.__version__, 'numpy', numpy.__version__)"])
    return rc or run([str(py), "-m", "pytest", "-q", *(args or FLOOR_TESTS)])


JOBS = {"lab": lab, "demo": demo, "test": test, "wheel": wheel, "floors": floors, "course": course}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        sys.exit(__doc__)
    sys.exit(JOBS[sys.argv[1]](sys.argv[2:]))
