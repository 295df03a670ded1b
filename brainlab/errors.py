"""Errors that mean "something about your files or setup needs fixing", not "brainlab has a bug".

Each carries a message that says what is wrong and what to do. The command line prints just
that message; Jupyter shows it without a long traceback (through IPython's
``_render_traceback_`` hook), because the traceback would only hide the advice.
"""
from __future__ import annotations

__all__ = ["BrainlabError", "DataLayoutError", "DataNotFoundError", "DownloadError", "SettingError",
           "UnsafeArchiveError", "WeightsNotFoundError"]


class BrainlabError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


class SettingError(BrainlabError, ValueError):
    """A setting (a command-line option or a ``BRAINLAB_*`` variable) has a value brainlab cannot use.

    The command line exits with status 2 for it, as argparse does for a malformed option.
    """


class DataNotFoundError(BrainlabError):
    """The dataset is not where brainlab looked, and could not be downloaded."""


class DataLayoutError(BrainlabError):
    """A dataset folder is not laid out as ``<split>/<class>/<images>``."""


class DownloadError(BrainlabError):
    """A download failed, was cut short, or did not verify. Nothing half-written was kept."""


class UnsafeArchiveError(DownloadError):
    """An archive entry would be written outside the folder it is extracted into."""


class WeightsNotFoundError(BrainlabError):
    """Pretrained weights are neither in the Keras cache nor downloadable right now."""
