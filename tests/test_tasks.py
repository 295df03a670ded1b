"""tasks.py: `lab` opens JupyterLab on the course, `wheel` builds an installable wheel with the sample inside."""
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

import brainlab

REPO = Path(__file__).resolve().parents[1]
THIS_ENV = str(Path(sys.executable).parent.parent)  # tasks.py finds its Python as BRAINLAB_VENV/bin/python


def tasks(*args: str, timeout: int = 300, venv: str = THIS_ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tasks.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "BRAINLAB_VENV": venv})


def test_lab_dry_run_names_the_command_and_passes_extra_arguments(tmp_path):
    proc = tasks("lab", "--dry-run", "--port", "8765", "--no-browser", venv=str(tmp_path / "venv"))
    assert proc.returncode == 0, proc.stderr
    assert f"would set up {tmp_path / 'venv'} with brainlab[lab]" in proc.stdout
    command = shlex.split(proc.stdout.strip().splitlines()[-1])
    assert command[:3] == [str(tmp_path / "venv" / "bin" / "python"), "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={REPO}" in command and "--ContentsManager.preferred_dir=notebooks" in command
    assert command[-3:] == ["--port", "8765", "--no-browser"]
    assert not (tmp_path / "venv").exists(), "a dry run sets nothing up"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lab_command_serves_the_course_with_notebooks_first(tmp_path):
    """Runs the command `tasks.py lab` would run (with this Python), and asks the server what it serves."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is the `lab` extra: python3 tasks.py lab installs it")
    port, token = free_port(), "brainlab-test"
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers, CI
    proc = tasks("lab", "--dry-run", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
                 "--ServerApp.ip=127.0.0.1", *as_root)
    command = shlex.split(proc.stdout.strip().splitlines()[-1])
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?token={token}", timeout=5) as response:
                return response.read().decode()

        for _ in range(120):
            try:
                status = json.loads(get("/api/status"))
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within a minute")
        assert "started" in status
        listing = json.loads(get("/api/contents/notebooks"))
        assert "00_setup_and_data.ipynb" in {item["name"] for item in listing["content"]}
        assert {"notebooks", "exercises", "solutions"} <= {item["name"] for item in json.loads(get("/api/contents"))["content"]}
        page = get("/lab")
        assert re.search(r'"preferredPath": ?"/?notebooks"', page), "the file browser opens in notebooks/"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_wheel_holds_the_package_with_its_sample_and_checksums(tmp_path):
    out = tmp_path / "dist"
    proc = tasks("wheel", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = out / f"brainlab-{brainlab.__version__}-py3-none-any.whl"
    assert [p.name for p in out.iterdir()] == [wheel.name]
    assert f"built {wheel}" in proc.stdout and f"%pip install {wheel.name}" in proc.stdout
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    package = {p.relative_to(REPO).as_posix() for p in (REPO / "brainlab").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert package <= names, sorted(package - names)[:5]
    assert sum(name.startswith("brainlab/sample/Training/") for name in names) >= 160
    assert "brainlab/checksums/brain-tumor-classification-mri.sha256" in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "solutions/", "exercises/"))]

    # installed from the wheel alone (no dependencies fetched), brainlab finds its sample and checksums
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    check = ("import brainlab; from brainlab import data; root = data.sample_dir(); "
             "print(brainlab.__file__); print(len(list(root.rglob('*.jpg'))))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    where, count = proc.stdout.split()
    assert Path(where).is_relative_to(target) and int(count) == 200, proc.stderr
