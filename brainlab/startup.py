"""TensorFlow's start-up, without its start-up log lines (unless you ask for them).

Importing TensorFlow prints lines such as ``oneDNN custom operations are on`` and ``Could not
find cuda drivers on your machine``, and finding no GPU prints ``failed call to cuInit``. Most
come from TensorFlow's C++ libraries as they load, before Python can tell them anything:
``TF_CPP_MIN_LOG_LEVEL`` does not reach them (measured with TensorFlow 2.21). So
:func:`import_tensorflow` imports TensorFlow and lists its devices with the process's standard
error (the file descriptor itself) caught, then passes on every line that is not such
start-up chatter: real errors and warnings still show. ``import brainlab`` also sets
``TF_CPP_MIN_LOG_LEVEL=2`` (when you have not set it), which hides TensorFlow's later
informational lines. Numerics are untouched (oneDNN stays on).

``BRAINLAB_VERBOSE=1`` (or ``brainlab --verbose ...``) leaves TensorFlow's logging alone.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

from brainlab import settings

__all__ = ["NOISE", "verbose", "set_verbose", "quiet_by_default", "is_noise", "filtered_stderr", "import_tensorflow"]

_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_set_by_brainlab = False  # whether quiet_by_default() set TF_CPP_MIN_LOG_LEVEL (so set_verbose may undo it)

NOISE = tuple(re.compile(pattern) for pattern in (
    # absl's notice that it logs to stderr before it is set up, then its INFO and WARNING lines
    # (the levels that TF_CPP_MIN_LOG_LEVEL=2 hides once TensorFlow's logging is set up):
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] ",
    # error lines that only mean "no GPU here" or "a plugin registered twice":
    r"^E\d{4} .*\] failed call to cuInit",
    r"^E\d{4} .*\] Unable to register cu(DNN|FFT|BLAS) factory",
    r"^E\d{4} .*\] (computation placer|cuda_dnn|cuDNN factory) .*already .*registered",
))
# the lines that continue a log record (only those known: an unknown line is never dropped with a record)
_CONTINUED = re.compile(r"^To enable the following instructions: .* in other operations, rebuild TensorFlow")


def verbose() -> bool:
    """True when ``BRAINLAB_VERBOSE`` asks to see TensorFlow's own log lines.

    Read leniently (a value that is neither on nor off counts as off), because ``import brainlab``
    asks: a typo in a variable must not stop the import. The command line refuses such a value
    before any work (:func:`brainlab.config.check_environment`).
    """
    return settings.get("BRAINLAB_VERBOSE", strict=False)


def quiet_by_default() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` unless it is set already or verbose mode is on (``import brainlab`` calls this)."""
    global _set_by_brainlab
    if _LEVEL not in os.environ and not verbose():
        os.environ[_LEVEL] = "2"
        _set_by_brainlab = True


def set_verbose(on: bool = True) -> None:
    """Show (``on``) or filter TensorFlow's log lines from now on; call it before TensorFlow is imported.

    Verbose mode leaves ``TF_CPP_MIN_LOG_LEVEL`` as you set it (brainlab's own default is taken back).
    """
    global _set_by_brainlab
    os.environ["BRAINLAB_VERBOSE"] = "1" if on else "0"
    if on and _set_by_brainlab:
        os.environ.pop(_LEVEL, None)
        _set_by_brainlab = False
    elif not on:
        quiet_by_default()


def is_noise(record: str) -> bool:
    """True for a start-up log record (its first line) that :func:`filtered_stderr` drops."""
    return any(pattern.match(record) for pattern in NOISE)


def _records(text: str) -> list[str]:
    """Split captured text into records: a log line with the lines that continue it."""
    records: list[str] = []
    for line in text.splitlines(keepends=True):
        if records and _CONTINUED.match(line):
            records[-1] += line  # e.g. the second line of the CPU-instructions notice
        else:
            records.append(line)
    return records


@contextmanager
def filtered_stderr():
    """Catch everything written to standard error (Python and C++ alike) and pass on all but start-up chatter.

    What passes on is written to ``sys.stderr`` when the block ends (or fails), so in
    Jupyter it appears in the notebook.
    """
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # no real stderr (some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as caught:
        for stream in (sys.stderr, sys.__stderr__):
            _flush(stream)
        os.dup2(caught.fileno(), fd)
        try:
            yield
        finally:
            for stream in (sys.stderr, sys.__stderr__):
                _flush(stream)
            os.dup2(saved, fd)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode("utf-8", errors="replace")
            kept = "".join(record for record in _records(text) if not is_noise(record))
            if kept:
                sys.stderr.write(kept)
                _flush(sys.stderr)


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass


def import_tensorflow():
    """``import tensorflow``, with its devices listed, quietly (see the module's notes); returns the module.

    In verbose mode, or when TensorFlow is already imported, this is a plain import.
    """
    if verbose() or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    quiet_by_default()
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # finding (no) GPU logs too: do it here, once
    return tf
