"""TensorFlow's start-up log lines are filtered out; everything else written to stderr still shows."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from brainlab import settings, startup
from brainlab.errors import SettingError

# what TensorFlow prints while it loads and looks for a GPU (on a CPU-only Linux machine, TensorFlow 2.21)
NOISE_LINES = ("oneDNN custom operations are on", "Could not find cuda drivers", "failed call to cuInit",
               "absl::InitializeLog", "cpu_feature_guard", "Unable to register cu")

START_UP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795937451.728453    6736 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795937451.728784    6736 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1795937464.928018    6778 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1795937459.762693    6736 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
E0000 00:00:1732000000.000000    1234 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered
"""
REAL = ("E0000 00:00:1795937459.800000    6736 direct_session.cc:12] OOM when allocating tensor with shape[4096,4096]\n"
        "F0000 00:00:1795937459.900000    6736 check.cc:5] Check failed: a real failure\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: from a library\n")


def test_start_up_chatter_is_dropped_and_real_errors_pass(capfd):
    with startup.filtered_stderr():
        os.write(2, START_UP.encode())  # at the file descriptor, as TensorFlow's C++ code writes
        os.write(2, REAL.encode())
        os.write(2, START_UP.splitlines(keepends=True)[2].encode() + b"a line of its own after a log line\n")
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines() if any(noise in line for noise in NOISE_LINES)], err
    assert err == REAL + "a line of its own after a log line\n"


def test_what_is_written_passes_even_when_the_block_fails(capfd):
    with pytest.raises(ImportError), startup.filtered_stderr():
        os.write(2, START_UP.encode() + b"ImportError: libcudart.so.12: cannot open shared object file\n")
        raise ImportError("no tensorflow")
    assert capfd.readouterr().err == "ImportError: libcudart.so.12: cannot open shared object file\n"
    os.write(2, b"stderr is back\n")
    assert capfd.readouterr().err == "stderr is back\n"


@pytest.mark.parametrize("user_level", [None, "0", "1"])
def test_verbose_leaves_tensorflows_level_as_the_user_set_it(monkeypatch, user_level):
    monkeypatch.setattr(startup, "_set_by_brainlab", False)
    monkeypatch.delenv("BRAINLAB_VERBOSE", raising=False)
    if user_level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level)
    startup.quiet_by_default()  # what `import brainlab` does
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == (user_level or "2")
    startup.set_verbose(True)  # what `brainlab --verbose` does, before TensorFlow is imported
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == user_level and startup.verbose()
    startup.set_verbose(False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == (user_level or "2") and not startup.verbose()


def test_noise_patterns_match_only_start_up_records():
    records = startup._records(START_UP)
    assert len(records) == 6 and all(startup.is_noise(record) for record in records)
    assert not any(startup.is_noise(line) for line in REAL.splitlines())


@pytest.mark.parametrize("text, on", [("1", True), ("Yes", True), ("on", True), ("0", False), ("", False),
                                      ("loud", False)])
def test_verbose_reads_the_registry_and_a_value_it_cannot_use_is_off(monkeypatch, text, on):
    monkeypatch.setenv("BRAINLAB_VERBOSE", text)
    assert startup.verbose() is on
    if text == "loud":  # the registry refuses it; the command line says so before any work
        with pytest.raises(SettingError, match="BRAINLAB_VERBOSE='loud' is neither on nor off"):
            settings.get("BRAINLAB_VERBOSE")


def test_import_brainlab_loads_no_numpy_and_survives_a_bad_verbose_value():
    """startup (imported by ``import brainlab``) reads BRAINLAB_VERBOSE through brainlab.settings, which stays light."""
    code = ("import sys, brainlab, brainlab.settings, brainlab.startup\n"
            "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules), brainlab.startup.verbose(),"
            " __import__('os').environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "BRAINLAB_VERBOSE": "loud"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["[]", "False", "2"], done.stdout + done.stderr
