"""The notebooks' setup cells, run for real: the QUICK switch, quiet start-up, a failed install, the Drive cell."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import brainlab
from brainlab import config, course

REPO = Path(__file__).resolve().parents[1]
FIRST = nbformat.read(REPO / "notebooks" / "00_setup_and_data.ipynb", as_version=4)
SETUP, DRIVE = FIRST.cells[2].source, FIRST.cells[4].source  # the same in every notebook (test_notebooks.py)


@pytest.mark.slow
def test_quick_switch_takes_effect_and_start_up_is_quiet(monkeypatch):
    """In a Jupyter kernel, as nbval runs it: QUICK = None keeps BRAINLAB_QUICK=1; False and True override it."""
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # brainlab alone keeps TensorFlow quiet
    cells = run_in_kernel([SETUP.replace("QUICK = None", f"QUICK = {quick}", 1) for quick in ("None", "False", "True")])
    printed = ["".join(out.text for out in cell.outputs if out.output_type == "stream" and out.name == "stdout")
               for cell in cells]
    assert [re.search(r"quick mode: (\w+)", text)[1] for text in printed] == ["True", "False", "True"], printed
    assert printed[0].startswith(f"brainlab {brainlab.__version__}, TensorFlow ")
    gpu = next(line for line in printed[0].splitlines() if line.startswith("GPU:"))
    if "none" in gpu:
        assert "on Colab, Runtime > Change runtime type > GPU gives you one" in gpu
    shown = [out for cell in cells for out in cell.outputs if not (out.output_type == "stream" and out.name == "stdout")]
    assert not shown, f"the setup cell shows more than its report (TensorFlow's start-up lines?): {shown}"


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
