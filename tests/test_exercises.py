"""The exercise generator, and the exercises it made: up to date, and every check fails until solved."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from brainlab import course, exercises
from brainlab.exercises import CHECK, ExerciseFormatError, strip_solution

REPO = Path(__file__).resolve().parents[1]
COLAB = "https://colab.research.google.com/github/someone/old-place/blob/main/"  # where a solution's badge used to point

SOLVED = '''import numpy as np

def area(width, height):
    """Area of a rectangle."""
    ### BEGIN SOLUTION
    result = width * height
    return result
    ### END SOLUTION

### BEGIN SOLUTION
side, (low, high) = 3, (0, 1)
grid.shape = (2, 2)
def helper():
    return 1
### END SOLUTION
print("done")'''

STRIPPED = '''import numpy as np

def area(width, height):
    """Area of a rectangle."""
    # TODO: write your answer here, then run the check below
    raise NotImplementedError()

# TODO: define side, low, high, helper, then run the check below
raise NotImplementedError()
print("done")'''


def test_answers_become_todo_and_raise_at_the_same_indentation():
    assert strip_solution(SOLVED) == STRIPPED


def test_code_without_markers_is_left_alone():
    source = "x = 1\n# ### not a marker\nprint(x)"
    assert strip_solution(source) == source


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "line 2: '### BEGIN SOLUTION' again"),
])
def test_unbalanced_markers_are_reported_with_their_place(source, problem):
    with pytest.raises(ExerciseFormatError, match="07_demo.ipynb, cell 3") as info:
        strip_solution(source, "07_demo.ipynb, cell 3")
    assert problem in str(info.value)


def solution_notebook(answer="value = 6 * 7", with_ids=True):
    """A small solution notebook as a person leaves it: run, with outputs and editor metadata."""
    title = new_markdown_cell(f"# Demo\n\n[![Open In Colab](badge.svg)]({COLAB}solutions/07_demo.ipynb)\n\n"
                              f"The course notebook: [![Open In Colab](badge.svg)]({COLAB}notebooks/07_demo.ipynb)")
    setup = new_code_cell('SPEC = "brainlab @ git+https://github.com/someone/old-place@v0.0.1"')
    question = new_markdown_cell("### Exercise 1\nCompute `value`.")
    solution = new_code_cell(f"### BEGIN SOLUTION\n{answer}\n### END SOLUTION", execution_count=3,
                             outputs=[new_output("stream", name="stdout", text="42\n")],
                             metadata={"scrolled": True, "tags": ["exercise"]})
    check = new_code_cell(f"{CHECK}\nassert value == 42", execution_count=4)
    nb = new_notebook(cells=[title, setup, question, solution, check],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11.7"}, "widgets": {"state": {}}})
    for index, cell in enumerate(nb.cells):
        if with_ids:
            cell.id = f"cell-{index}"  # ids are saved with the notebook, so they persist between saves
        else:
            del cell["id"]
    if not with_ids:
        nb.nbformat_minor = 4  # notebooks from before cell ids
    return nb


def test_build_strips_answers_outputs_and_editor_state(tmp_path):
    solutions, out = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(solution_notebook(), solutions / "07_demo.ipynb")
    written = exercises.build(solutions, out)
    assert written == [out / "07_demo.ipynb"]
    nb = nbformat.read(written[0], as_version=4)
    title, setup, question, exercise, check = nb.cells
    # every badge and install line comes from the course setting; the title's badge opens the exercise itself
    assert course.colab_url("exercises/07_demo.ipynb") in title.source and "/solutions/" not in title.source
    assert course.colab_url("notebooks/07_demo.ipynb") in title.source and "old-place" not in title.source
    assert setup.source == f'SPEC = "{course.install_spec()}"'
    assert question.source == "### Exercise 1\nCompute `value`."
    assert exercise.source == "# TODO: define value, then run the check below\nraise NotImplementedError()"
    assert check.source == f"{CHECK}\nassert value == 42"
    for cell in (exercise, check):
        assert cell.outputs == [] and cell.execution_count is None
    assert exercise.metadata == {"tags": ["exercise"]}  # tags stay, editor state goes
    assert set(nb.metadata) == {"kernelspec", "language_info"} and nb.metadata.language_info == {"name": "python"}
    nbformat.validate(nb)


@pytest.mark.parametrize("with_ids", [True, False])
def test_rebuilding_gives_the_same_bytes(tmp_path, with_ids):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(solution_notebook(with_ids=with_ids), solutions / "07_demo.ipynb")
    first = exercises.build(solutions, tmp_path / "a")[0].read_bytes()
    second = exercises.build(solutions, tmp_path / "b")[0].read_bytes()
    assert first == second
    assert exercises.stale(solutions, tmp_path / "a") == []


def test_stale_and_check_notice_every_difference(tmp_path, capsys):
    solutions, out = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(solution_notebook(), solutions / "07_demo.ipynb")
    args = ["--solutions", str(solutions), "--out", str(out)]
    assert exercises.stale(solutions, out) == ["07_demo.ipynb"]  # never built
    assert exercises.main([*args, "--check"]) == 1
    assert "out of date (07_demo.ipynb)" in capsys.readouterr().err
    assert exercises.main(args) == 0
    assert exercises.main([*args, "--check"]) == 0

    nbformat.write(solution_notebook(answer="value = 42"), solutions / "07_demo.ipynb")  # answer changed
    assert exercises.stale(solutions, out) == []  # the answer is not in the exercise...
    nbformat.write(solution_notebook(answer="value = 42\nextra = 1"), solutions / "07_demo.ipynb")
    assert exercises.stale(solutions, out) == ["07_demo.ipynb"]  # ...but what it defines is

    (out / "08_gone.ipynb").write_text("{}")  # an exercise whose solution no longer exists
    assert exercises.stale(solutions, out) == ["07_demo.ipynb", "08_gone.ipynb"]
    exercises.build(solutions, out)
    assert sorted(p.name for p in out.iterdir()) == ["07_demo.ipynb"]


def test_bad_markers_and_missing_folders_are_one_clear_message(tmp_path, capsys):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(solution_notebook(answer="value = 42\n### BEGIN SOLUTION"), solutions / "07_demo.ipynb")
    assert exercises.main(["--solutions", str(solutions), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "07_demo.ipynb, cell 4, line 3: '### BEGIN SOLUTION' again" in err
    assert exercises.main(["--solutions", str(tmp_path / "nowhere")]) == 1
    assert "No solutions folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- the real exercises

EXERCISE_NOTEBOOKS = sorted((REPO / "exercises").glob("*.ipynb"))


def test_exercises_folder_is_up_to_date(tmp_path):
    fresh = {p.name: p.read_bytes() for p in exercises.build(REPO / "solutions", tmp_path)}
    committed = {p.name: p.read_bytes() for p in EXERCISE_NOTEBOOKS}
    assert fresh, "solutions/ holds no notebooks"
    assert sorted(committed) == sorted(fresh), "exercises/ does not mirror solutions/: run `brainlab build-exercises`"
    outdated = [name for name in fresh if committed[name] != fresh[name]]
    assert not outdated, f"exercises/ is out of date ({', '.join(outdated)}): run `brainlab build-exercises`"


def run_cell_by_cell(path: Path) -> list[tuple[str, str | None]]:
    """Execute a notebook in a fresh kernel of this Python, one cell at a time, going on after errors.

    Returns ``(kind, error name or None)`` per code cell, kind being "exercise", "check" or "code".
    """
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    client = NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(path.parent)}})
    results = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            kind = ("exercise" if "raise NotImplementedError()" in cell.source
                    else "check" if exercises.is_check(cell) else "code")
            try:
                client.execute_cell(cell, index)
                results.append((kind, None))
            except CellExecutionError as exc:
                results.append((kind, exc.ename))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_every_check_fails_until_the_exercise_is_solved(path, monkeypatch):
    monkeypatch.setenv("BRAINLAB_QUICK", "1")  # the kernel inherits it: the bundled sample, small sizes
    results = run_cell_by_cell(path)
    checks = [error for kind, error in results if kind == "check"]
    assert 2 <= len(checks) <= 4, f"{path.name}: {len(checks)} checks"
    assert all(checks), f"{path.name}: a check passes with the answer missing: {results}"
    assert all(error in (None, "NotImplementedError") for kind, error in results if kind == "exercise"), results
    assert all(error is None for kind, error in results if kind == "code"), f"{path.name}: {results}"
