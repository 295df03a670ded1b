"""Every ``BRAINLAB_*`` variable, declared once: its name, type, default, meaning and check.

brainlab takes its settings from environment variables, so that the same notebook runs on a
laptop, on Colab and in CI without edits. This module is the one place that knows them:
:data:`SETTINGS` holds one :class:`Setting` per variable, and every module reads its variable
through :func:`get`. A value brainlab cannot use raises a
:class:`~brainlab.errors.SettingError` that names the variable and says what it takes.

A setting's *kind* says what its value is and how it is read:

- :class:`Switch`: on or off (``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``);
- :class:`Choice`: one of a few words (``BRAINLAB_WEIGHTS=random``);
- :class:`Megabytes`: a size (``BRAINLAB_CACHE_MAX_MB=512``);
- :class:`Folder`: a folder. Reading it gives a path; :func:`check` also looks at the disk: a
  folder to read must be there, a folder to write in must be writable or creatable.

An unset (or empty) variable gives the setting's default. :func:`check` reads a variable and
looks at its folder; :func:`brainlab.config.check_environment` checks them all at once (the
command line does that before any work, so a bad value is one line and exit status 2).

docs/settings.md is this registry rendered by :func:`markdown` (a test fails while they differ);
after changing a setting, write it again with::

    python -c "from brainlab import settings; print(settings.markdown(), end='')" > docs/settings.md

This module imports nothing heavy (no NumPy, no TensorFlow): :mod:`brainlab.startup` reads
``BRAINLAB_VERBOSE`` through it while ``import brainlab`` runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from brainlab.errors import SettingError

__all__ = ["PACKAGE", "PRECISIONS", "Switch", "Choice", "Megabytes", "Folder", "Setting", "SETTINGS", "get",
           "check", "check_folder", "markdown"]

#: ``Setting.read_by`` of the settings the package itself reads (the others belong to a script).
PACKAGE = "brainlab"

#: The Keras dtype policies brainlab trains under, the values ``BRAINLAB_PRECISION`` takes
#: (:func:`brainlab.train.device_policy` chooses one of them).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


# --------------------------------------------------------------------------- the kinds of value
@dataclass(frozen=True)
class Switch:
    """On or off: ``1``, ``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off``, in any case."""

    def describe(self) -> str:
        return "on/off: `1` (or `true`, `yes`, `on`), `0` (or `false`, `no`, `off`)"

    def parse(self, setting: Setting, text: str) -> bool:
        word = text.lower()
        if word not in _ON + _OFF:
            raise SettingError(f"{setting.name}={text!r} is neither on nor off: set it to 1 or 0, or unset it.")
        return word in _ON

    def check(self, setting: Setting, value) -> None:
        """Nothing to look at beyond the text."""


@dataclass(frozen=True)
class Choice:
    """One of ``choices``, read in lower case; with ``exact``, only as written (a Keras dtype policy's name).

    The refusal lists the choices; ``noun`` (what a value is: "a precision") and ``unset_does``
    (what unsetting the variable does) make it say more.
    """

    choices: tuple[str, ...]
    exact: bool = False  # case matters: "FLOAT32" is refused
    noun: str = ""  # the refusal says the value "is not {noun} brainlab knows"
    unset_does: str = ""  # ... and ends "or unset it to {unset_does}."

    def describe(self) -> str:
        return "one of " + ", ".join(f"`{c}`" for c in self.choices) + (" (case matters)" if self.exact else "")

    def parse(self, setting: Setting, text: str) -> str:
        word = text if self.exact else text.lower()
        if word not in self.choices:
            listed = ", ".join(self.choices)
            what = (f"is not {self.noun} brainlab knows: set it to one of {listed}" if self.noun
                    else f"use {listed}")
            unset = f"unset it to {self.unset_does}" if self.unset_does else "leave it unset"
            raise SettingError(f"{setting.name}={text!r}{' ' if self.noun else ': '}{what}, or {unset}.")
        return word

    def check(self, setting: Setting, value) -> None:
        """Nothing to look at beyond the text."""


@dataclass(frozen=True)
class Megabytes:
    """A size in megabytes, from 0 (fractions allowed); read as a number of megabytes (a float)."""

    def describe(self) -> str:
        return "a size in megabytes (a number from 0)"

    def parse(self, setting: Setting, text: str) -> float:
        try:
            mb = float(text)
        except ValueError:
            mb = -1.0
        if not 0 <= mb < 2**40:  # also refuses nan and inf
            raise SettingError(f"{setting.name}={text!r} is not a number of megabytes; "
                               f"set it to e.g. {setting.default}, or unset it for the default")
        return mb

    def check(self, setting: Setting, value) -> None:
        """Nothing to look at beyond the text."""


@dataclass(frozen=True)
class Folder:
    """A folder. ``exists``: it must be there (data brainlab reads); ``write``: brainlab writes in it.

    Reading gives the path (``~`` expanded); whether the disk agrees is :meth:`check`'s business,
    because the modules that use a data folder say more about a missing one than "does not exist".
    """

    exists: bool = True
    write: bool = False

    def describe(self) -> str:
        if self.exists:
            return "a folder that exists"
        return "a folder that can be written in (created if missing)" if self.write else "a folder"

    def parse(self, setting: Setting, text: str) -> Path:
        return Path(text).expanduser()

    def check(self, setting: Setting, value: Path) -> None:
        check_folder(value, setting.name, write=self.write, exists=self.exists)


@dataclass(frozen=True)
class Setting:
    """One ``BRAINLAB_*`` variable: what it takes, what it is when unset, what it does, who reads it."""

    name: str
    kind: Switch | Choice | Megabytes | Folder
    default: object  # what get() gives when the variable is unset or empty
    unset: str  # what happens when it is unset, for people (markdown)
    meaning: str  # what it does, for people (markdown)
    read_by: str = PACKAGE  # PACKAGE, or the script that reads it itself (it runs without brainlab)


# --------------------------------------------------------------------------- the registry
_ALL = (
    Setting("BRAINLAB_DATA", Folder(exists=True), None,
            "the dataset in the brainlab cache, where `data.find_data()` downloads it when it is missing "
            "(`brainlab fetch-data` does that ahead of time)",
            "dataset folder (with `Training/` and `Testing/`)"),
    Setting("BRAINLAB_CACHE", Folder(exists=False, write=True), None,
            "the per-user cache folder of the platform, from platformdirs: `~/.cache/brainlab` on Linux "
            "(`$XDG_CACHE_HOME/brainlab` when that is set), `~/Library/Caches/brainlab` on macOS, "
            "`%LOCALAPPDATA%\\brainlab\\Cache` on Windows; an existing `~/.cache/brainlab` stays in use",
            "cache for downloads and decoded images; `brainlab cache` shows it, `brainlab cache --clear` empties "
            "it (only in a folder that carries brainlab's `CACHEDIR.TAG`)"),
    Setting("BRAINLAB_QUICK", Switch(), False, "off",
            "quick mode: the bundled sample, few epochs and small images, so that everything finishes in about "
            "a minute on a CPU (the notebooks' `QUICK` switch sets it)"),
    Setting("BRAINLAB_RUNS", Folder(exists=False, write=True), None,
            "`runs/` beside the course's `notebooks/`, `solutions/` and `exercises/` for a notebook opened from "
            "one of them, else `runs/` in the current folder",
            "where the notebooks record training runs; quick-mode runs go in its `quick/`, so that a full run "
            "never resumes from a quick one"),
    Setting("BRAINLAB_PRECISION", Choice(PRECISIONS, exact=True, noun="a precision",
                                         unset_does="let brainlab choose for this machine"), None,
            "mixed_float16 on a GPU; on a CPU float32, or mixed_bfloat16 for the `residual-cnn` recipe where the "
            "CPU computes in bfloat16 natively, which keeps its accuracy and trains it 1.28 times faster: "
            "[benchmarks/precision_and_xla.md](../benchmarks/precision_and_xla.md)",
            "the Keras dtype policy `train.device_policy()` chooses; lets you run a notebook under a GPU's "
            "policy on a CPU"),
    Setting("BRAINLAB_VERBOSE", Switch(), False, "off",
            "show TensorFlow's own start-up log lines, which brainlab otherwise keeps out of the way "
            "(`brainlab --verbose` sets it); `import brainlab` reads a value it cannot use as off, the command "
            "line refuses it"),
    Setting("BRAINLAB_EXTERNAL_DATA", Folder(exists=True), None,
            "downloaded through `kagglehub`",
            "notebook 09: a copy of the second dataset (its `Testing/` is enough)"),
    Setting("BRAINLAB_CACHE_MAX_MB", Megabytes(), 4096, "4096 (4 GB)",
            "how large the decoded-image cache may grow before the least recently used files go"),
    Setting("BRAINLAB_WEIGHTS", Choice(("imagenet", "random")), None,
            "as `imagenet`",
            "the start `models.default_weights()` gives the notebooks' ResNet50: `imagenet` for the ImageNet "
            "weights (full mode downloads them, about 94 MB, once; quick mode uses them only when they are "
            "cached), `random` for a random start in every mode, to time a notebook on a machine that cannot "
            "download the weights (its accuracies then mean nothing)"),
    Setting("BRAINLAB_VENV", Folder(exists=False, write=True), None,
            "`.venv` next to `tasks.py`",
            "where `python3 tasks.py` keeps the virtual environment it creates and runs everything in",
            read_by="tasks.py"),
)

#: Every setting, by name, in the order docs/settings.md lists them.
SETTINGS: dict[str, Setting] = {setting.name: setting for setting in _ALL}


def _setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not a brainlab setting; brainlab.settings.SETTINGS lists them") from None


# --------------------------------------------------------------------------- reading and checking
def get(name: str, *, strict: bool = True):
    """The value of the variable ``name``, of its setting's kind; the setting's default when it is unset.

    A value the setting cannot take raises a :class:`~brainlab.errors.SettingError`; with
    ``strict=False`` it gives the default instead (for reads that must not fail, such as
    ``BRAINLAB_VERBOSE`` while ``import brainlab`` runs). A folder is not looked at: see :func:`check`.
    """
    setting = _setting(name)
    text = os.environ.get(name, "").strip()
    if not text:
        return setting.default
    try:
        return setting.kind.parse(setting, text)
    except SettingError:
        if strict:
            raise
        return setting.default


def check(name: str):
    """:func:`get`, and for a folder setting that is set, the folder on disk (see :class:`Folder`)."""
    value = get(name)
    if os.environ.get(name, "").strip():
        _setting(name).kind.check(_setting(name), value)
    return value


def check_folder(path, setting: str, *, write: bool = False, exists: bool = True) -> Path:
    """``path`` if it can serve as the folder ``setting`` names, or a :class:`~brainlab.errors.SettingError`.

    ``setting`` is what named it, for the message: a variable, an option such as ``--data``, or
    ``""``. ``exists``: it must be there already (data to read); otherwise it may be created, in a
    folder that is there. ``write``: brainlab must be able to write in it (or create it).
    """
    path = Path(path).expanduser()
    what = f"{setting} {path}" if setting else str(path)
    if path.is_dir():
        if write and not os.access(path, os.W_OK | os.X_OK):
            raise SettingError(f"{what}: the folder is not writable; give a folder you can write in.")
        return path
    if path.exists() or path.is_symlink():
        kind = "a file" if path.exists() else "a link to nothing"
        raise SettingError(f"{what} is {kind}, not a folder: give a folder.")
    if exists:
        raise SettingError(f"{what} does not exist: give an existing folder.")
    parent = next(p for p in path.parents if p.exists() or p.is_symlink())
    if not parent.is_dir():
        raise SettingError(f"{what} cannot be created: {parent} is a file, not a folder.")
    if write and not os.access(parent, os.W_OK | os.X_OK):
        raise SettingError(f"{what} cannot be created: {parent} is not writable; "
                           "give a folder you can write in.")
    return path


# --------------------------------------------------------------------------- docs/settings.md
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(settings) -> list[str]:
    lines = ["| setting | takes | when unset | what it does |", "|---|---|---|---|"]
    lines += [f"| `{s.name}` | {_cell(s.kind.describe())} | {_cell(s.unset)} | {_cell(s.meaning)} |"
              for s in settings]
    return lines


def markdown() -> str:
    """docs/settings.md: the registry as a page, one table row per setting."""
    package = [s for s in SETTINGS.values() if s.read_by == PACKAGE]
    scripts = [s for s in SETTINGS.values() if s.read_by != PACKAGE]
    lines = [
        "# Settings",
        "",
        "<!-- Written from brainlab/settings.py, which declares every setting: change it there, then run",
        "     python -c \"from brainlab import settings; print(settings.markdown(), end='')\" > docs/settings.md",
        "     (tests/test_settings_table.py fails while this page and the registry differ). -->",
        "",
        "brainlab takes its settings from environment variables, so that the same notebook runs on a laptop,",
        "on Colab and in CI without edits. Set one for a shell (`export BRAINLAB_QUICK=1`) or for one command",
        "(`BRAINLAB_QUICK=1 brainlab doctor`); a notebook can set it in `os.environ` before it uses brainlab.",
        "An unset or empty variable means its default. The `brainlab` command checks every one before any",
        "work: a value it cannot use is one line that names the variable, and exit status 2",
        "(`brainlab.config.check_environment()` does the same in Python).",
        "",
        *_table(package),
    ]
    if scripts:
        lines += ["", "## For the course's maintainers", "",
                  "Read by the course's scripts themselves, which run before brainlab is installed:", "",
                  *_table(scripts)]
    return "\n".join(lines) + "\n"
