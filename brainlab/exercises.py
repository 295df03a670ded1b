"""Make the exercise notebooks from the solution notebooks: ``brainlab build-exercises``.

The notebooks in ``solutions/`` hold each exercise three times over: a prose cell that
asks the question, a code cell with the worked answer, and a check cell (first line
``# CHECK``) that asserts on the answer. Inside the answer cell the answer itself sits
between two marker lines, as in nbgrader::

    def output_size(n, kernel_size, stride=1, padding=0):
        ### BEGIN SOLUTION
        return (n + 2 * padding - kernel_size) // stride + 1
        ### END SOLUTION

:func:`build` writes the same notebook to ``exercises/`` with every such block replaced by
a ``# TODO`` line and ``raise NotImplementedError()`` at the block's indentation, all
outputs removed, and every "Open in Colab" badge and install line written from the course
setting (:mod:`brainlab.course`), the title's badge opening the exercise itself. The result
depends only on the solution notebooks and that setting, byte for byte, so a test can tell
when ``exercises/`` is out of date.
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import sys
import textwrap
from pathlib import Path

import nbformat

from brainlab import course
from brainlab.course import notebook_bytes
from brainlab.errors import BrainlabError

__all__ = ["BEGIN", "CHECK", "END", "ExerciseFormatError", "add_arguments", "build", "defined_names", "has_solution",
           "is_check", "main", "run", "stale", "strip_solution"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK = "# CHECK"
_EXERCISES_FOLDER = "exercises"  # where the exercises lie in the repository (their badges open them there)
_NOTEBOOK_METADATA = {  # the only notebook metadata kept: no versions, no editor state
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


class ExerciseFormatError(BrainlabError):
    """A solution notebook's markers are not in pairs (or not where they can be replaced)."""


def has_solution(cell) -> bool:
    return cell.cell_type == "code" and any(line.strip() == BEGIN for line in cell.source.splitlines())


def is_check(cell) -> bool:
    """A check cell: a code cell whose first line is ``# CHECK``."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK)


def _names(target) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _names(element)]
    return []  # an attribute or a subscript defines no new name


def defined_names(answer: str) -> list[str]:
    """The names an answer defines at its top level (assignments, functions, classes)."""
    try:
        tree = ast.parse(textwrap.dedent(answer))
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [name for target in node.targets for name in _names(target)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names += _names(node.target)
    return list(dict.fromkeys(names))


def _todo_line(answer: str, indent: str = "") -> str:
    """The TODO comment that replaces ``answer``. At the top level of a cell it names what
    the answer must define; inside a block (a function body, say) the names would be local."""
    names = [] if indent else defined_names(answer)
    if names:
        return f"# TODO: define {', '.join(names)}, then run the check below"
    return "# TODO: write your answer here, then run the check below"


def strip_solution(source: str, where: str = "a cell") -> str:
    """``source`` with every solution block replaced by a TODO line and ``raise NotImplementedError()``.

    The replacement keeps the indentation of the ``### BEGIN SOLUTION`` line, so a block
    inside a function body stays inside it. ``where`` names the cell in error messages.
    """
    out, answer, indent = [], None, ""
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if answer is not None:
                raise ExerciseFormatError(f"{where}, line {number}: '{BEGIN}' again before '{END}'.")
            answer, indent = [], line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if answer is None:
                raise ExerciseFormatError(f"{where}, line {number}: '{END}' without a '{BEGIN}' before it.")
            out += [indent + _todo_line("\n".join(answer), indent), indent + "raise NotImplementedError()"]
            answer = None
        elif answer is not None:
            answer.append(line)
        else:
            out.append(line)
    if answer is not None:
        raise ExerciseFormatError(f"{where}: '{BEGIN}' is never closed by '{END}'.")
    return "\n".join(out)


def _stable_id(name: str, index: int) -> str:
    return hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]


def _exercise_notebook(nb, name: str = "notebook"):
    """The exercise version of one solution notebook (a new notebook; ``nb`` is not changed).

    ``name`` is the solution notebook's file name (or path): messages name it, and the title's
    badge opens ``exercises/<its file name>``.
    """
    nb = copy.deepcopy(nb)
    nb.metadata = copy.deepcopy(_NOTEBOOK_METADATA)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for index, cell in enumerate(nb.cells):
        cell.id = cell.get("id") or _stable_id(name, index)
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source, f"{name}, cell {index + 1}")
            cell.outputs, cell.execution_count = [], None
    course.rewrite_notebook(nb, f"{_EXERCISES_FOLDER}/{Path(name).name}")
    return nb


def _expected_exercises(solutions_dir) -> dict[str, bytes]:
    """``{file name: bytes}`` of every exercise notebook that ``solutions_dir`` gives."""
    solutions_dir = Path(solutions_dir)
    if not solutions_dir.is_dir():
        raise BrainlabError(f"No solutions folder at {solutions_dir}. Run this from the repository root "
                            "(where solutions/ is), or pass --solutions DIR.")
    out = {}
    for path in sorted(solutions_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        out[path.name] = notebook_bytes(_exercise_notebook(nb, str(path)))
    return out


def build(solutions_dir, exercises_dir) -> list[Path]:
    """Write ``exercises_dir/<name>.ipynb`` for every ``solutions_dir/<name>.ipynb``.

    Exercise notebooks whose solution notebook is gone are removed, so the folder always
    mirrors ``solutions_dir``. Returns the paths written.
    """
    wanted = _expected_exercises(solutions_dir)
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for old in exercises_dir.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    written = []
    for name, content in wanted.items():
        target = exercises_dir / name
        target.write_bytes(content)
        written.append(target)
    return written


def stale(solutions_dir, exercises_dir) -> list[str]:
    """Names of exercise notebooks that are missing, extra or different from what :func:`build` writes."""
    wanted = _expected_exercises(solutions_dir)
    exercises_dir = Path(exercises_dir)
    present = {p.name: p.read_bytes() for p in exercises_dir.glob("*.ipynb")} if exercises_dir.is_dir() else {}
    return sorted(name for name in wanted.keys() | present.keys() if wanted.get(name) != present.get(name))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``brainlab build-exercises`` (also used by :func:`main`)."""
    parser.add_argument("--solutions", default="solutions", help="solution notebooks (default: ./solutions)")
    parser.add_argument("--out", default="exercises", help="where the exercises go (default: ./exercises)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit with status 1 when the exercises are out of date")


def run(args) -> int:
    """Build (or with ``--check`` only compare) the exercises; the exit status."""
    try:
        if args.check:
            outdated = stale(args.solutions, args.out)
            if outdated:
                print(f"{args.out} is out of date ({', '.join(outdated)}). Run: brainlab build-exercises",
                      file=sys.stderr)
                return 1
            print(f"{args.out} is up to date.")
            return 0
        for path in build(args.solutions, args.out):
            print(f"wrote {path}")
    except (BrainlabError, nbformat.ValidationError) as exc:
        print(f"brainlab build-exercises: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """``brainlab build-exercises [--solutions DIR] [--out DIR] [--check]``."""
    parser = argparse.ArgumentParser(prog="brainlab build-exercises",
                                     description="Regenerate exercises/ from solutions/ (answers removed).")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
