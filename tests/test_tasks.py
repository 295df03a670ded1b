"""tasks.py: `lab` opens JupyterLab on the course, `wheel` builds an installable wheel with the sample inside,
`test` runs the full suite (the notebooks too) and `test --fast` the quick loop."""
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


# --------------------------------------------------------------------------- test: the full suite and the quick loop
def command_for(*args: str) -> list[str]:
    """The pytest command `python3 tasks.py test ARGS` runs (tasks.py's own function, without installing anything)."""
    import runpy

    return runpy.run_path(str(REPO / "tasks.py"))["tests_command"](list(args))


def test_test_runs_the_full_suite_and_test_fast_the_quick_loop():
    """`test`: the notebooks asked for (nbval's --nbval-lax) and the 25 slowest tests listed; `test --fast`: the tests
    not marked slow. Other arguments go to pytest. (pyproject.toml: plain pytest runs no notebook.)"""
    full, fast = command_for(), command_for("--fast", "-x", "tests/test_data.py")
    assert full[0] == fast[0] and Path(full[0]).name.startswith("python")  # the environment's Python
    assert full[1:] == ["-m", "pytest", "--nbval-lax", "--durations=25"]
    assert fast[1:] == ["-m", "pytest", "-m", "not slow", "-x", "tests/test_data.py"]
    assert command_for("-k", "fast")[-2:] == ["-k", "fast"]  # only tasks.py's own --fast is taken out


MARKS_PROBE = '''"""A pytest plugin: every collected test id, and whether it is marked slow, into the file $COLLECTED."""
import json
import os


def pytest_collection_finish(session):
    with open(os.environ["COLLECTED"], "w") as f:
        json.dump({item.nodeid: item.get_closest_marker("slow") is not None for item in session.items}, f)
'''


@pytest.mark.slow
def test_the_full_suite_holds_every_notebook_and_the_quick_loop_every_test_not_marked_slow(tmp_path):
    (tmp_path / "marks_probe.py").write_text(MARKS_PROBE)
    env = {**os.environ, "COLLECTED": str(tmp_path / "collected.json"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-p", "marks_probe", *command_for()[3:]], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    slow = json.loads((tmp_path / "collected.json").read_text())  # test id -> marked slow
    files = {test.split("::")[0] for test in slow}
    assert {f for f in files if f.endswith(".ipynb")} == {
        p.relative_to(REPO).as_posix() for folder in ("notebooks", "solutions") for p in (REPO / folder).glob("*.ipynb")
    }, "the full suite runs every notebook of notebooks/ and solutions/"
    assert all(f.startswith(("tests/", "notebooks/", "solutions/")) for f in files)
    # the quick loop (-m "not slow", nbval off): no browser, no notebook run, and most of the tests
    assert slow["tests/test_browser.py::test_notebook_08_runs_and_the_prediction_explorer_reacts"]
    assert slow["tests/test_mixed_precision.py::test_notebook_08_runs_under_mixed_float16"]
    quick = [test for test, marked in slow.items() if not marked and test.split("::")[0].endswith(".py")]
    assert len(quick) > 300 and "tests/test_tasks.py::test_test_runs_the_full_suite_and_test_fast_the_quick_loop" in quick
