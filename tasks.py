#!/usr/bin/env python3
"""Set up brainlab's environment and run its two main jobs. Needs only Python 3.10+.

    python3 tasks.py demo    # create .venv, install brainlab, run the main job
    python3 tasks.py test    # create .venv, install brainlab with test extras, run every test

The virtual environment lives in ``.venv`` next to this file (``BRAINLAB_VENV`` moves it).
Installing is skipped when the environment already matches ``pyproject.toml``.
Extra arguments after the job name go to the command it runs (pytest, say).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BRAINLAB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"brainlab needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"[tasks] creating virtual environment in {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(f"Could not create a virtual environment ({exc}).\n"
                     "On Debian/Ubuntu install it first: sudo apt install python3-venv")
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


def demo(args: list[str]) -> int:
    ensure_env("test")
    brainlab = str(BIN / "brainlab")
    for cmd in ([brainlab, "doctor"], [brainlab, "sample"]):
        rc = run(cmd)
        if rc:
            return rc
    return 0


def test(args: list[str]) -> int:
    ensure_env("test")
    env_args = args or []
    return run([str(PY), "-m", "pytest", *env_args])


JOBS = {"demo": demo, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        sys.exit(__doc__)
    sys.exit(JOBS[sys.argv[1]](sys.argv[2:]))
