"""This machine's folders in recorded text, replaced by what a reader has (``$BRAINLAB_DATA``, ``..``, ``~``).

A recorded notebook is read on other machines: an output that shows ``/home/alice/data/Training``
tells the reader nothing and gives away a folder. :func:`portable` rewrites each setting's folder
as the setting's name, the course folder as ``..`` (the notebooks run in notebooks/) and the home
folder as ``~``; any other absolute path keeps only its last part. :data:`ABSOLUTE_PATH` is what
no recorded output may still show (tools.run_course.check).
"""
from __future__ import annotations

import re
from pathlib import Path

from brainlab import settings
from tools import ROOT

__all__ = ["ABSOLUTE_PATH", "PLACEHOLDERS", "portable"]

# An absolute path of two or more folders, which no recorded output may show.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~$])/(?:[A-Za-z0-9_.+-]+/){2,}")
# The folders a reader has under another name: each folder setting brainlab reads (brainlab.settings, in the
# order docs/settings.md lists them) has its value written as the setting's name.
PLACEHOLDERS = tuple(name for name, setting in settings.SETTINGS.items()
                     if isinstance(setting.kind, settings.Folder) and setting.read_by == settings.PACKAGE)


def portable(outputs, data: str | None = None, env: dict | None = None) -> None:
    """Replace this machine's folders in printed text by what a reader has.

    The dataset becomes ``$BRAINLAB_DATA`` (``data``, or the setting in ``env``), and so do the second
    dataset, the runs and the cache folders (``$BRAINLAB_EXTERNAL_DATA``, ``$BRAINLAB_RUNS``,
    ``$BRAINLAB_CACHE``, the default cache folder too); the course folder becomes ``..`` (the notebooks run
    in notebooks/), the home folder ``~``. Any other absolute path keeps only its last part (``…/file.py``).
    """
    env = dict(env or {})
    if data:
        env["BRAINLAB_DATA"] = data
    places = {}
    for name in PLACEHOLDERS:
        if env.get(name, "").strip():
            places[str(Path(env[name]).expanduser().resolve())] = f"${name}"
    from brainlab.cache import default_cache_dir  # the folder brainlab caches in when BRAINLAB_CACHE is unset

    places.setdefault(str(default_cache_dir()), "$BRAINLAB_CACHE")
    places.update({str(ROOT): "..", str(Path.home()): "~"})
    order = sorted((k for k in places if len(k) > 1), key=len, reverse=True)  # the innermost folder first

    def fix(text):
        joined = "".join(text) if isinstance(text, list) else text
        for folder in order:
            joined = joined.replace(folder, places[folder])
        return ABSOLUTE_PATH.sub("…/", joined)

    for out in outputs:
        if "text" in out:
            out["text"] = fix(out["text"])
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                out["data"][mime] = fix(out["data"][mime])
