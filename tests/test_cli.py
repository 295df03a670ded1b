"""The command line: doctor, doctor --data and the sample, as a student would run them; a quiet start-up."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from brainlab.cli import build_parser, main
from conftest import make_dataset
from test_startup import NOISE_LINES


def test_doctor_reports_everything_a_helper_needs(capsys, monkeypatch):
    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for key in ("Python", "TensorFlow", "Keras", "GPUs", "Quick mode", "on (BRAINLAB_QUICK=1)", "Data",
                "bundled sample", "ImageNet weights"):
        assert key in out, key


def test_doctor_says_where_data_is_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLAB_DATA", str(tmp_path / "missing"))
    assert main(["doctor"]) == 0
    assert "not found (BRAINLAB_DATA=" in capsys.readouterr().out


def test_doctor_data_lists_counts_and_unusable_files(capsys, tmp_path):
    root = make_dataset(tmp_path / "data", per_class=2, size=32)
    (root / "Testing" / "no_tumor" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Training" / "pituitary_tumor" / "empty.png").write_bytes(b"")
    assert main(["doctor", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 file(s) or folder(s) cannot be used" in out
    assert "Testing/no_tumor/broken.jpg: " in out and "Training/pituitary_tumor/empty.png: empty file" in out
    assert re.search(r"no_tumor\s+2\s+2\n", out) and re.search(r"total\s+8\s+8\n", out)  # broken files not counted
    assert "The folder is usable." in out


def test_doctor_data_fails_clearly_on_a_bad_folder(capsys, tmp_path):
    assert main(["doctor", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no 'Training' folder" in err and "Expected layout" in err
    root = make_dataset(tmp_path / "data", per_class=1, size=32)
    (root / "Testing" / "glioma_tumor" / "img0.jpg").write_text("not an image")
    assert main(["doctor", "--data", str(root)]) == 1
    assert "no readable image in Testing/glioma_tumor" in capsys.readouterr().err


def test_module_entry_point_and_sample_command():
    proc = subprocess.run([sys.executable, "-m", "brainlab", "sample"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"sample-test\s+10\s+10\s+10\s+10\s+40", proc.stdout)
    assert "One training batch: images (8, 128, 128, 3) float32" in proc.stdout


def run_cli(*args: str, code: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m brainlab ARGS`` (or ``python -c CODE``) with TensorFlow's log level not set by anyone."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "BRAINLAB_VERBOSE")}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "brainlab", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**environ, **env})


@pytest.mark.slow
def test_tensorflows_start_up_lines_stay_off_stderr():
    proc = run_cli("doctor", BRAINLAB_QUICK="1")
    assert proc.returncode == 0 and "TensorFlow" in proc.stdout, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if any(noise in line for noise in NOISE_LINES)], proc.stderr
    assert not re.search(r"^[IWE]\d{4} ", proc.stderr, flags=re.M), proc.stderr


@pytest.mark.slow
def test_evaluate_keeps_them_off_stderr_too(tmp_path):
    """`brainlab evaluate` loads a Keras model: its refusal of a folder without one comes without start-up noise."""
    (tmp_path / "data").mkdir()
    (tmp_path / "no-run").mkdir()  # a folder, so that the refusal comes after TensorFlow was imported
    proc = run_cli("evaluate", "--run", str(tmp_path / "no-run"), "--data", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and "holds no trained model" in proc.stderr, proc.stderr
    assert not re.search(r"^[IWE]\d{4} ", proc.stderr, flags=re.M), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_verbose_shows_them_and_leaves_tensorflows_level_alone():
    assert build_parser().parse_args(["--verbose", "sample"]).verbose is True
    assert build_parser().parse_args(["sample"]).verbose is False
    code = ("import os; from brainlab.cli import main; rc = main(['doctor', '--verbose']); "
            "print('TF_CPP_MIN_LOG_LEVEL', os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'rc', rc)")
    proc = run_cli(code=code, BRAINLAB_QUICK="1")
    assert "TF_CPP_MIN_LOG_LEVEL None rc 0" in proc.stdout, proc.stderr
    assert "absl::InitializeLog" in proc.stderr  # TensorFlow's own start-up lines, untouched
def test_cache_command_reports_each_part_and_clears_only_what_is_rebuilt(capsys, tmp_path):
    from brainlab import cache, data

    data.load_split("Testing", make_dataset(tmp_path / "data", per_class=2, size=32), image_size=16, progress=False)
    decoded = list((cache.cache_dir() / "decoded").glob("*.npz"))
    assert len(decoded) == 1
    dataset_file = cache.cache_dir() / "datasets" / "x" / "Testing" / "a.jpg"
    dataset_file.parent.mkdir(parents=True)
    dataset_file.write_bytes(b"x" * 3000)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    size = cache.human_size(decoded[0].stat().st_size)
    assert re.search(rf"decoded\s+{re.escape(size)}\s+1 files .* {re.escape(str(decoded[0].parent))}\n", out)
    assert re.search(r"datasets\s+2.9 KB\s+1 files", out) and re.search(r"total\s+\S+ \S+\s+2 files", out)

    assert main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert f"removed {decoded[0].parent}: decoded images" in out and "datasets" not in out.split("Freed")[0]
    assert not decoded[0].exists() and dataset_file.is_file()  # a download is never removed without --all
    assert main(["cache", "--all"]) == 2 and dataset_file.is_file()
    assert main(["cache", "--clear", "--all"]) == 0
    assert "removed " + str(cache.cache_dir() / "datasets") in capsys.readouterr().out
    assert not dataset_file.exists()


def test_doctor_shows_the_cache_size(capsys, monkeypatch):
    from brainlab import cache

    monkeypatch.setenv("BRAINLAB_QUICK", "1")
    (cache.cache_dir() / "downloads").mkdir()
    (cache.cache_dir() / "downloads" / "a.zip").write_bytes(b"x" * 2048)
    assert main(["doctor"]) == 0
    assert f"Cache             {cache.cache_dir()} (2.0 KB; `brainlab cache` for details)" in capsys.readouterr().out
