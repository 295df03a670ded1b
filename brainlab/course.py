"""Where the course lives: the one setting that every "Open in Colab" badge and install line comes from.

The course is a GitHub repository, :data:`REPOSITORY`, at a fixed :data:`REF` (a tag or a
commit, never a branch that moves), both read from the data file ``brainlab/course.json``
(:data:`SETTING`) each time they are asked for, not when this module is imported: a damaged file
breaks only what needs the address, and ``brainlab course-links --repo --ref`` can write it
again. Every notebook in the course folders (:data:`brainlab.config.COURSE_FOLDERS`: ``notebooks/``,
``solutions/``, ``exercises/``) opens with a badge that opens it on Colab at that ref, and its
setup cell installs brainlab from that same ref::

    [![Open In Colab](...colab-badge.svg)](https://colab.research.google.com/github/OWNER/NAME/blob/REF/notebooks/00_setup_and_data.ipynb)
    SPEC = "brainlab @ git+https://github.com/OWNER/NAME@REF"

``brainlab course-links --repo OWNER/NAME --ref REF`` rewrites that file and every notebook to
match (``--check`` only reports where they disagree); a fork of the course runs it once. Until
the project is published under a real address, the address is a setting, not a promise that the
repository exists.

Two helpers for the notebooks live here too. :func:`headline` shows a notebook's key numbers as
one line for the reader and, beside it, as data (the output type :data:`HEADLINE_MIME`) that
``python3 tasks.py course`` collects: nothing scrapes the printed text. :func:`measured_table`
shows a table of the measured results, where a run is too long for a lab session: it reads
``docs/results.json``, the data that ``docs/results.md`` is rendered from.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from brainlab import runs
from brainlab.config import COURSE_FOLDERS
from brainlab.errors import BrainlabError

SETTING = Path(__file__).with_name("course.json")  # {"repository": "OWNER/NAME", "ref": "TAG"}, package data
_SETTING_IN_CHECKOUT = Path("brainlab") / "course.json"  # the same file, from the root of a course checkout
_ABOUT = ("The course's address: every Colab badge and install line of the notebooks points at this repository "
          "and ref (a tag or a commit, never a branch). Change both with `brainlab course-links --repo OWNER/NAME "
          "--ref TAG`, which rewrites this file and the notebooks.")  # the "about" of a setting file written afresh
_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_MOVING_REFS = frozenset({"main", "master", "head", "develop", "dev", "trunk", "latest", "stable", "gh-pages"})

# Notebook 03's training in full mode (its IMAGE_SIZE, EPOCHS and BATCH_SIZE). The exercises that repeat or
# count that training read them here, so that they follow the notebook; tests/test_exercises.py checks
# that notebook 03 sets the same values.
FIRST_CNN_IMAGE_SIZE = 64
FIRST_CNN_EPOCHS = 15
FIRST_CNN_BATCH_SIZE = 32

_NAME = r"[A-Za-z0-9_.-]+"
_REF = r"[A-Za-z0-9_.+-]+"
COLAB_URL = re.compile(rf"https://colab\.research\.google\.com/github/(?P<repo>{_NAME}/{_NAME})"
                       rf"/blob/(?P<ref>{_REF})/(?P<path>[^\s)\"'<>]+)")
INSTALL_SPEC = re.compile(rf"brainlab @ git\+https://github\.com/(?P<repo>{_NAME}/[A-Za-z0-9_.-]+?)(?:\.git)?"
                          rf"(?:@(?P<ref>{_REF}))?(?=[\"'\s]|$)")
_SETTING_KEYS = ("repository", "ref")

__all__ = ["REPOSITORY", "REF", "SETTING", "COLAB_URL", "INSTALL_SPEC", "CourseSettingError", "Change",
           "check_setting", "colab_url", "badge", "install_spec", "rewrite_notebook", "notebook_bytes", "read_setting",
           "apply", "DESCRIPTION", "add_arguments", "run", "main",
           "HEADLINE_MIME", "RANDOM_START", "is_random_start", "headline", "headline_numbers", "headline_text",
           "MeasuredResultsError", "read_results", "measured_table",
           "FIRST_CNN_IMAGE_SIZE", "FIRST_CNN_EPOCHS", "FIRST_CNN_BATCH_SIZE"]


class CourseSettingError(BrainlabError):
    """The course's address cannot be used: not OWNER/NAME, a ref that moves, or a damaged setting file."""


_SET_IT = "brainlab course-links --repo OWNER/NAME --ref TAG"  # the command that writes the setting afresh


def read_setting(setting_file: Path | str | None = None) -> tuple[str, str]:
    """``(repository, ref)`` as ``setting_file`` holds them (by default :data:`SETTING`, ``brainlab/course.json``)."""
    setting_file = Path(SETTING if setting_file is None else setting_file)
    try:
        data = json.loads(setting_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CourseSettingError(f"{setting_file} is missing: it holds the course's address. Restore it (git checkout "
                                 f"brainlab/course.json), write it again with {_SET_IT} in the course checkout, "
                                 "or reinstall brainlab.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CourseSettingError(f"{setting_file} is not JSON ({exc}): restore it (git checkout "
                                 f"brainlab/course.json), or write it again with {_SET_IT}.") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in _SETTING_KEYS):
        raise CourseSettingError(f'{setting_file} must hold {{"repository": "OWNER/NAME", "ref": "TAG"}}, as strings; '
                                 f"write it again with {_SET_IT}.")
    return data["repository"], data["ref"]


def __getattr__(name: str) -> str:
    """:data:`REPOSITORY` and :data:`REF`, read from :data:`SETTING` each time they are asked for.

    Read then, not at import: every ``brainlab`` command imports this module, and a damaged
    setting must not stop the ones that have no use for the address (``brainlab cache``), nor the
    one that writes it again (``brainlab course-links --repo --ref``).
    """
    if name in ("REPOSITORY", "REF"):
        return read_setting()[("REPOSITORY", "REF").index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _address(repository: str | None, ref: str | None) -> tuple[str, str]:
    """``repository`` and ``ref``, each as set in :data:`SETTING` where it is None."""
    if repository is None or ref is None:
        setting = read_setting()
        repository, ref = repository or setting[0], ref or setting[1]
    return repository, ref


@dataclass(frozen=True)
class Change:
    """One line that differs from the setting: in which file, what it says and what it should say."""

    file: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.file}:\n  - {self.old}\n  + {self.new}"


def check_setting(repository: str, ref: str, root: Path | None = None) -> None:
    """Refuse an address that is not ``OWNER/NAME`` or a ref that is a branch (it moves, so links would drift).

    Well-known branch names (main, master, ...) are always refused; inside a git checkout
    (``root``) so is any name that is a local or remote branch there.
    """
    if not re.fullmatch(rf"{_NAME}/{_NAME}", repository or "") or repository.endswith(".git"):
        raise CourseSettingError(f"--repo {repository!r}: give the GitHub repository as OWNER/NAME, "
                                 "for example brainlab-course/brainlab.")
    if not re.fullmatch(_REF, ref or ""):
        raise CourseSettingError(f"--ref {ref!r}: give a tag (v0.1.0) or a commit hash; letters, digits and "
                                 "'.', '_', '+', '-' only (no '/').")
    why = ""
    if ref.lower() in _MOVING_REFS:
        why = "a branch name"
    elif root is not None and _is_branch(Path(root), ref):
        why = "a branch in this repository"
    if why:
        raise CourseSettingError(
            f"--ref {ref!r} is {why}: a branch moves, so the notebooks would install code other than the one "
            "they were written for. Give a tag (for example v0.1.0: `git tag v0.1.0 && git push --tags`) "
            "or a commit hash.")


def _is_branch(root: Path, ref: str) -> bool:
    try:
        out = subprocess.run(["git", "-C", str(root), "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False  # no git: the name check above is all we can do
    names = {re.sub(r"^refs/(heads/|remotes/[^/]+/)", "", line) for line in out.stdout.split()}
    return out.returncode == 0 and ref in names


def colab_url(path: str, repository: str | None = None, ref: str | None = None) -> str:
    """The address that opens ``path`` (relative to the repository root) on Colab; the course's own by default."""
    repository, ref = _address(repository, ref)
    return f"https://colab.research.google.com/github/{repository}/blob/{ref}/{path}"


def badge(path: str, repository: str | None = None, ref: str | None = None) -> str:
    """The markdown "Open in Colab" badge for ``path``."""
    return f"[![Open In Colab]({_BADGE_IMAGE})]({colab_url(path, repository, ref)})"


def install_spec(repository: str | None = None, ref: str | None = None) -> str:
    """The pip requirement that installs brainlab from the course repository at ``ref``."""
    repository, ref = _address(repository, ref)
    return f"brainlab @ git+https://github.com/{repository}@{ref}"


def rewrite_notebook(nb, own_path: str, repository: str | None = None, ref: str | None = None) -> list[tuple[str, str]]:
    """Point every badge and install line of ``nb`` at ``repository``/``ref``; changes ``nb`` in place.

    Badges keep the path they link to, except the title's (the first badge of the first cell),
    which opens the notebook itself: its path becomes ``own_path``, so an exercise notebook made
    from a solution notebook opens itself. Returns ``(old line, new line)`` for each changed line.
    The course's own address (:data:`SETTING`) is the default.
    """
    repository, ref = _address(repository, ref)
    changes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            title = [index == 0]

            def url(match):
                path = own_path if title[0] else match["path"]
                title[0] = False
                return colab_url(path, repository, ref)

            new = COLAB_URL.sub(url, cell.source)
        elif cell.cell_type == "code":
            new = INSTALL_SPEC.sub(install_spec(repository, ref), cell.source)
        else:
            continue
        if new != cell.source:
            changes += [(a, b) for a, b in zip(cell.source.splitlines(), new.splitlines()) if a != b]
            cell.source = new
    return changes


def notebook_bytes(nb) -> bytes:
    """A notebook as Jupyter writes it (sorted keys, one-space indent), ending in a newline."""
    import nbformat  # here, not at the top: a notebook that imports this module for headline() may lack it

    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _write_setting(setting_file: Path | str, repository: str, ref: str) -> list[Change]:
    """Set ``repository`` and ``ref`` in ``setting_file`` (written atomically, other keys kept); the changes made.

    A missing or damaged file is written afresh, with what a readable one of its keys still holds.
    """
    setting_file = Path(setting_file)
    try:
        old = read_setting(setting_file)
    except CourseSettingError:
        was = "(missing)" if not setting_file.is_file() else "(damaged)"
        try:
            found = json.loads(setting_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            found = None
        data = {"about": _ABOUT, **(found if isinstance(found, dict) else {})}
        data.update(repository=repository, ref=ref)
        runs.write_json(setting_file, data)
        return [Change(str(setting_file), was, f'"{key}": "{now}"') for key, now in zip(_SETTING_KEYS, (repository, ref))]
    changes = [Change(str(setting_file), f'"{key}": "{was}"', f'"{key}": "{now}"')
               for key, was, now in zip(_SETTING_KEYS, old, (repository, ref)) if was != now]
    if changes:
        data = json.loads(setting_file.read_text(encoding="utf-8"))
        data.update(repository=repository, ref=ref)
        runs.write_json(setting_file, data)
    return changes


def apply(root: Path, repository: str, ref: str, check: bool = False) -> list[Change]:
    """Make every notebook under ``root`` (notebooks/, solutions/, exercises/) agree with ``repository``/``ref``.

    With ``check`` nothing is written; either way the list of lines that differ(ed) is returned.
    """
    import nbformat

    root = Path(root)
    changes = []
    for folder in COURSE_FOLDERS:
        for path in sorted((root / folder).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            before = notebook_bytes(nb)
            lines = rewrite_notebook(nb, f"{folder}/{path.name}", repository, ref)
            changes += [Change(f"{folder}/{path.name}", old.strip(), new.strip()) for old, new in lines]
            if lines and not check and notebook_bytes(nb) != before:
                path.write_bytes(notebook_bytes(nb))
    return changes


DESCRIPTION = ("Point every Colab badge and install line of the notebooks at one repository and ref "
               "(the setting in brainlab/course.json), or with --check list where they disagree with it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``brainlab course-links`` (also used by :func:`main`)."""
    parser.add_argument("--repo", metavar="OWNER/NAME", help="the GitHub repository of the course (default: as set)")
    parser.add_argument("--ref", help="a tag or commit of it, never a branch (default: as set)")
    parser.add_argument("--root", default=".", metavar="DIR",
                        help="the course checkout, with brainlab/course.json and the notebook folders (default: .)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list what disagrees with the setting and exit with status 1 if anything does")


def run(args) -> int:
    """Rewrite the setting and the notebooks (or with ``--check`` only compare); the exit status."""
    import nbformat

    root = Path(args.root)
    setting_file = root / _SETTING_IN_CHECKOUT
    try:
        if not setting_file.parent.is_dir() or not any((root / folder).is_dir() for folder in COURSE_FOLDERS):
            raise CourseSettingError(f"{root.resolve()} is not a course checkout (no {setting_file.parent.name}/ folder "
                                     f"for {_SETTING_IN_CHECKOUT.as_posix()}, or none of {', '.join(COURSE_FOLDERS)}). "
                                     "Run this from the repository root, or pass --root DIR.")
        try:
            current = read_setting(setting_file)
        except CourseSettingError:
            if args.check or not (args.repo and args.ref):
                raise  # nothing to compare with, or to fill in what is not given
            current = None  # written afresh below, from --repo and --ref
        repository, ref = args.repo or current[0], args.ref or current[1]
        check_setting(repository, ref, root)
        if args.check:
            changes = ([Change(str(setting_file), f"{current[0]}@{current[1]}", f"{repository}@{ref}")]
                       if (repository, ref) != current else [])
        else:
            changes = _write_setting(setting_file, repository, ref)
        changes += apply(root, repository, ref, check=args.check)
    except (BrainlabError, nbformat.ValidationError, OSError) as exc:
        print(f"brainlab course-links: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(change)
    where = f"{repository}@{ref}"
    if args.check:
        if changes:
            fix = "brainlab course-links" + (f" --repo {repository} --ref {ref}" if (repository, ref) != current else "")
            print(f"{len(changes)} line(s) disagree with {where}. Run: {fix}", file=sys.stderr)
            return 1
        print(f"Every badge and install line points at {where}.")
    else:
        print(f"{len(changes)} line(s) changed; every badge and install line now points at {where}.")
    return 0


HEADLINE_MIME = "application/vnd.brainlab.headline+json"  # the output type of a headline's numbers
RANDOM_START = "random-start"  # in a headline's ``weights``: the ResNet50 started from random weights


def is_random_start(numbers: dict) -> bool:
    """Whether a headline's numbers say its ResNet50 started from random weights (``weights`` names :data:`RANDOM_START`)."""
    return RANDOM_START in str(numbers.get("weights", ""))


def headline_numbers(**numbers) -> dict:
    """The numbers a :func:`headline` carries, as JSON values: floats rounded to the 3 decimals it shows.

    A run from random ResNet50 weights (``weights`` says :data:`RANDOM_START`) keeps only ``split``
    and ``weights``: its results, numbers or a choice made from them, would mean nothing.
    """
    if not numbers:
        raise ValueError("headline() needs at least one number, e.g. headline(accuracy=0.74, split='official-test')")
    if is_random_start(numbers):
        numbers = {key: value for key, value in numbers.items() if key in ("split", "weights")}
    values = {}
    for key, value in numbers.items():
        if not key.isidentifier():
            raise ValueError(f"headline(): {key!r} is not a name; use letters, digits and _ (glioma_recall=0.62)")
        if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b":  # numpy's too
            value = bool(value)
        elif isinstance(value, Integral):
            value = int(value)
        elif isinstance(value, Real):
            value = round(float(value), 3) if math.isfinite(value) else str(float(value))
        else:
            value = str(value)
            if "\n" in value:
                raise ValueError(f"headline({key}=...): the value must fit on one line, not {value!r}")
        values[key] = value
    return values


def headline_text(numbers: dict) -> str:
    """``accuracy=0.743 split=official-test``: the line a headline shows (after ``Headline: ``)."""
    return " ".join(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in numbers.items())


def headline(**numbers) -> None:
    """Show a notebook's key numbers on one line, ``Headline: accuracy=0.743 split=official-test``.

    ``python3 tasks.py course`` collects them into its table of course runs (docs/course-runs.md).
    Each keyword is a name; floats are shown with 3 decimals, other values as they are. A run from
    random ResNet50 weights says so with ``weights="random-start (timing only)"``: its results are
    then left out (see :func:`headline_numbers`) and the table shows that line's time alone.

    In a notebook the line is one output with two forms: the text a reader sees, and the numbers as
    data (:data:`HEADLINE_MIME`), which the course runner reads. Outside IPython it is printed.
    """
    values = headline_numbers(**numbers)
    text = "Headline: " + headline_text(values)
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    from IPython.display import display

    display({HEADLINE_MIME: values, "text/plain": text}, raw=True)


_RESULTS = Path("docs") / "results.json"  # the measured results, in a clone of the course repository


class MeasuredResultsError(BrainlabError, ValueError):
    """docs/results.json lacks what was asked of it, or is not laid out as its renderer writes it."""


def read_results(path: Path | str) -> dict:
    """The measured results of ``path`` (docs/results.json): a title, opening prose and sections.

    Each section has a ``heading`` and ``blocks``, each either prose (``{"text": [lines]}``) or a
    table (``{"table": {"columns": [...], "rows": [[...], ...], "align": [...]}}``, every cell text).
    ``python -m tools.results_page`` renders docs/results.md from it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MeasuredResultsError(f"{path} is not JSON ({exc}): restore it (git checkout {path.as_posix()}).") from None
    sections = data.get("sections") if isinstance(data, dict) else None
    if not isinstance(sections, list) or not all(isinstance(s, dict) and isinstance(s.get("heading"), str)
                                                 and isinstance(s.get("blocks"), list) for s in sections):
        raise MeasuredResultsError(f"{path}: expected {{\"sections\": [{{\"heading\": ..., \"blocks\": [...]}}, ...]}}; "
                                   f"restore it (git checkout {path.as_posix()}).")
    for section in sections:
        for block in section["blocks"]:
            table = block.get("table") if isinstance(block, dict) else None
            if table is not None and not (isinstance(table.get("columns"), list) and isinstance(table.get("rows"), list)
                                          and all(len(row) == len(table["columns"]) for row in table["rows"])):
                raise MeasuredResultsError(f"{path}: a table under {section['heading']!r} needs \"columns\" and "
                                           "\"rows\" of as many cells each.")
    return data


def measured_table(heading: str, results: Path | str | None = None):
    """The first table under ``heading`` (``"## Trained from scratch on this CPU"``) as a DataFrame of its text cells.

    Notebooks show these measured results where a run is too long for a lab session. ``results``
    is the data file; by default docs/results.json of the clone the notebook runs in (from the
    current folder or its parent). Returns None when there is no such file (brainlab installed
    without the repository, as on Colab); a heading the file lacks is a :class:`MeasuredResultsError`.
    """
    import pandas as pd

    if results is None:
        found = [folder / _RESULTS for folder in (Path.cwd(), Path.cwd().parent) if (folder / _RESULTS).is_file()]
        if not found:
            return None
        results = found[0]
    results = Path(results)
    if not results.is_file():
        return None
    sections = {section["heading"]: section for section in read_results(results)["sections"]}
    name = heading.lstrip("#").strip()
    if name not in sections:
        raise MeasuredResultsError(f"{results} has no section {heading!r}: its sections are "
                                   + ", ".join(repr(f"## {known}") for known in sections))
    tables = [block["table"] for block in sections[name]["blocks"] if "table" in block]
    if not tables:
        raise MeasuredResultsError(f"{results}: no table under {heading!r}")
    return pd.DataFrame([list(row) for row in tables[0]["rows"]], columns=list(tables[0]["columns"]))


def main(argv=None) -> int:
    """``brainlab course-links [--repo OWNER/NAME] [--ref REF] [--root DIR] [--check]``."""
    parser = argparse.ArgumentParser(prog="brainlab course-links", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
