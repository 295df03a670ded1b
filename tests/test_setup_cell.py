"""The notebooks' setup cells, run for real: the QUICK switch, quiet start-up, a failed install, the Drive cell."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from brainlab import config, course
from test_startup import NOISE_LINES

REPO = Path(__file__).resolve().parents[1]
FIRST = nbformat.read(REPO / "notebooks" / "00_setup_and_data.ipynb", as_version=4)
SETUP, DRIVE = FIRST.cells[2].source, FIRST.cells[4].source  # the same in every notebook (test_notebooks.py)


def child_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "BRAINLAB_VERBOSE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return {**env, **extra}


@pytest.mark.slow
def test_quick_switch_takes_effect_and_start_up_is_quiet(tmp_path):
    """QUICK = None keeps BRAINLAB_QUICK (as nbval sets it); False and True override it."""
    (tmp_path / "setup.py").write_text(SETUP)
    driver = ("src = open('setup.py').read()\n"
              "for quick in ('None', 'False', 'True'):\n"
              "    ns = {}\n"
              "    exec(compile(src.replace('QUICK = None', 'QUICK = ' + quick, 1), 'setup cell', 'exec'), ns)\n"
              "    print('QUICK', quick, ns['config'].quick_mode(), flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path, env=child_env(BRAINLAB_QUICK="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("QUICK ")] == \
        ["QUICK None True", "QUICK False False", "QUICK True True"]
    assert "brainlab 0.1.0, TensorFlow " in proc.stdout and ", quick mode: True" in proc.stdout
    gpu = next(line for line in proc.stdout.splitlines() if line.startswith("GPU:"))
    if "none" in gpu:
        assert "on Colab, Runtime > Change runtime type > GPU gives you one" in gpu
    assert not [line for line in proc.stderr.splitlines() if any(noise in line for noise in NOISE_LINES)], proc.stderr


def run_in_kernel(sources: list[str], timeout: int = 240):
    """Execute code cells in a fresh Jupyter kernel of this Python, going on after errors; the executed cells."""
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    NotebookClient(nb, km=km, timeout=timeout, allow_errors=True).execute()
    return nb.cells


def test_a_failed_install_says_how_to_use_a_wheel_without_a_traceback(tmp_path, monkeypatch):
    """brainlab missing, and its repository unreachable (a private fork, say): advice, not a traceback."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the kernel inherits these: no network, no pip notices
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    unreachable = f"brainlab @ git+file://{tmp_path.as_posix()}/no-such-course@{course.REF}"
    assert SETUP.count(course.install_spec()) == 1
    hide_brainlab = "import sys\nsys.modules['brainlab'] = None  # `import brainlab` now fails, as where it is missing"
    cells = run_in_kernel([hide_brainlab, SETUP.replace(course.install_spec(), unreachable)])
    assert cells[0].outputs == []
    outputs = cells[1].outputs
    assert [out.output_type for out in outputs] == ["error"], outputs
    error = outputs[0]
    assert error.ename == "InstallFailed"
    shown = "\n".join(error.traceback)  # what Jupyter shows: this message, and nothing else
    assert f"Could not install {unreachable}" in shown
    assert "python3 tasks.py wheel" in shown and "dist/brainlab-*.whl" in shown
    assert "%pip install brainlab-*.whl" in shown and "and this cell again" in shown
    assert "no-such-course" in shown.split("Could not install")[0], "pip's own reason comes first"
    for sign_of_a_traceback in ("Traceback (most recent call last)", "File \"", "----> ", "Cell In["):
        assert sign_of_a_traceback not in shown


def test_drive_cell_is_off_by_default_and_only_acts_on_colab(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    before = dict(os.environ)
    exec(DRIVE, {"config": config, "sys": sys})
    assert capsys.readouterr().out == "" and dict(os.environ) == before
    exec(DRIVE.replace("KEEP_ON_DRIVE = False", "KEEP_ON_DRIVE = True", 1), {"config": config, "sys": sys})
    out = capsys.readouterr().out
    assert out.startswith("KEEP_ON_DRIVE is for Colab") and str(tmp_path / "runs") in out
    assert dict(os.environ) == before
