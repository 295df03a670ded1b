"""The exercise generator, and the exercises it made: up to date, and every check fails until solved."""
from __future__ import annotations

import ast
import os
import re
import runpy
import shutil
from concurrent.futures import ThreadPoolExecutor
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


def execute_cell_by_cell(nb, folder: Path, env: dict | None = None) -> list[tuple[object, str | None]]:
    """Execute ``nb`` in a fresh kernel of this Python, in ``folder``, one cell at a time, going on after errors.

    The kernel gets ``env`` as its environment (default: this process's). Returns ``(cell, error name or None)``
    for every code cell.
    """
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    client = NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(folder)}})
    results = []
    with client.setup_kernel(**({} if env is None else {"env": env})):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
                results.append((cell, None))
            except CellExecutionError as exc:
                results.append((cell, exc.ename))
    return results


def run_cell_by_cell(path: Path) -> list[tuple[str, str | None]]:
    """Execute a notebook cell by cell (see :func:`execute_cell_by_cell`) in its own folder.

    Returns ``(kind, error name or None)`` per code cell, kind being "exercise", "check" or "code".
    """
    results = execute_cell_by_cell(nbformat.read(path, as_version=4), path.parent)
    return [("exercise" if "raise NotImplementedError()" in cell.source
             else "check" if exercises.is_check(cell) else "code", error) for cell, error in results]


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_every_check_fails_until_the_exercise_is_solved(path, monkeypatch, session_runs):
    monkeypatch.setenv("BRAINLAB_QUICK", "1")  # the kernel inherits it: the bundled sample, small sizes
    monkeypatch.setenv("BRAINLAB_RUNS", str(session_runs))  # finds its course notebook's run, as a student does
    results = run_cell_by_cell(path)
    checks = [error for kind, error in results if kind == "check"]
    assert 2 <= len(checks) <= 4, f"{path.name}: {len(checks)} checks"
    assert all(checks), f"{path.name}: a check passes with the answer missing: {results}"
    assert all(error in (None, "NotImplementedError") for kind, error in results if kind == "exercise"), results
    assert all(error is None for kind, error in results if kind == "code"), f"{path.name}: {results}"


# --------------------------------------------------------------------------- other notebooks' settings

FIRST_CNN_SETTINGS = {"IMAGE_SIZE": "FIRST_CNN_IMAGE_SIZE", "EPOCHS": "FIRST_CNN_EPOCHS", "BATCH_SIZE": "FIRST_CNN_BATCH_SIZE"}


def test_notebook_03_trains_as_brainlab_course_says():
    """Exercises repeat and count notebook 03's training from brainlab.course: the notebook must set the same."""
    nb = nbformat.read(REPO / "notebooks" / "03_first_cnn.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for name, constant in FIRST_CNN_SETTINGS.items():
        match = re.search(rf"^{name} = (?:config\.quick\()?([\w.]+)", code, flags=re.M)
        assert match, f"notebook 03 sets no {name}"
        value, wanted = match.group(1), getattr(course, constant)
        assert value in (f"course.{constant}", str(wanted)), \
            f"notebook 03 sets {name} = {value}, brainlab.course.{constant} is {wanted}: make them agree"


# --------------------------------------------------------------------------- wrong answers are caught

WRONG_ANSWERS = runpy.run_path(str(Path(__file__).with_name("wrong_answers.py")))["WRONG_ANSWERS"]
SOLUTION_NOTEBOOKS = sorted((REPO / "solutions").glob("*.ipynb"))


def solution_blocks(source: str) -> list[str]:
    """The answers between the solution markers of one cell, in order."""
    return re.findall(rf"^[ \t]*{re.escape(exercises.BEGIN)}\n(.*?)^[ \t]*{re.escape(exercises.END)}$",
                      source, flags=re.M | re.S)


def with_answers(source: str, answers: list[str]) -> str:
    """``source`` with its solution blocks replaced, in order, by ``answers`` (indented like each block)."""
    out, answers, inside = [], iter(answers), False
    for line in source.splitlines():
        marker = line.strip()
        if marker == exercises.BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + text if text else text for text in next(answers).splitlines()]
            inside = True
        elif marker == exercises.END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def wrong_notebook(path: Path):
    """The solution notebook with every answer replaced by its recorded wrong answer."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if exercises.has_solution(cell):
            wrong = WRONG_ANSWERS[path.name][cell.id]
            cell.source = with_answers(cell.source, [wrong] if isinstance(wrong, str) else wrong)
    return nb


def test_with_answers_keeps_the_code_around_each_block():
    assert with_answers(SOLVED, ["return 0", "side = 4"]) == (
        'import numpy as np\n\ndef area(width, height):\n    """Area of a rectangle."""\n    return 0\n\nside = 4\nprint("done")')
    assert solution_blocks(SOLVED)[1].splitlines()[0] == "side, (low, high) = 3, (0, 1)"


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_recorded_wrong_answer(path):
    """tests/wrong_answers.py holds one wrong answer per answer cell, block for block, each differing from the answer."""
    nb = nbformat.read(path, as_version=4)
    answers = {cell.id: cell.source for cell in nb.cells if exercises.has_solution(cell)}
    recorded = WRONG_ANSWERS.get(path.name, {})
    assert sorted(recorded) == sorted(answers), f"{path.name}: wrong answers for {sorted(recorded)}, answer cells {sorted(answers)}"
    for cell_id, source in answers.items():
        wrong = recorded[cell_id]
        wrong = [wrong] if isinstance(wrong, str) else wrong
        blocks = solution_blocks(source)
        assert len(wrong) == len(blocks), f"{path.name} {cell_id}: {len(blocks)} solution blocks, {len(wrong)} wrong answers"
        assert any(w.strip() != b.strip() for w, b in zip(wrong, blocks)), f"{path.name} {cell_id}: the 'wrong' answer is the answer"
        ast.parse(with_answers(source, wrong).replace("%matplotlib inline", ""))  # it must at least be Python


def copy_of_runs(runs: Path, target: Path) -> Path:
    """``runs`` at ``target``, to be read and added to without changing ``runs``: what a notebook trains there
    stays there. Model files are hard links where the file system allows (brainlab replaces a model file, it
    never writes into one), everything else is copied."""
    def link_models(source: str, destination: str) -> str:
        if source.endswith((".keras", ".h5")):
            try:
                os.link(source, destination)
                return destination
            except OSError:  # another file system, or one without hard links
                pass
        return shutil.copy2(source, destination)

    if runs.is_dir():
        shutil.copytree(runs, target, symlinks=True, copy_function=link_models)
    return target


def test_a_copy_of_runs_leaves_the_runs_as_they_were(tmp_path):
    runs = tmp_path / "runs"
    (runs / "quick" / "03_demo").mkdir(parents=True)
    (runs / "quick" / "03_demo" / "best.keras").write_bytes(b"model")
    (runs / "quick" / "03_demo" / "metrics.json").write_text("{}")
    copy = copy_of_runs(runs, tmp_path / "copy")
    (copy / "quick" / "03_demo" / "metrics.json").write_text('{"changed": true}')  # written in place
    (copy / "quick" / "03_demo" / "best.keras").unlink()  # replaced, as brainlab saves a model
    (copy / "quick" / "03_demo" / "best.keras").write_bytes(b"another model")
    (copy / "quick" / "05_new").mkdir()
    assert (runs / "quick" / "03_demo" / "metrics.json").read_text() == "{}"
    assert (runs / "quick" / "03_demo" / "best.keras").read_bytes() == b"model"
    assert sorted(p.name for p in (runs / "quick").iterdir()) == ["03_demo"]
    assert not copy_of_runs(tmp_path / "none", tmp_path / "empty").exists()  # no runs yet: nothing to copy


WRONG_ANSWER_TEST = "test_every_check_rejects_its_recorded_wrong_answer"


@pytest.fixture(scope="module")
def wrong_answer_results(request, tmp_path_factory, session_runs) -> dict[str, list[tuple[str, str, str | None]]]:
    """The selected solution notebooks with all their wrong answers, run two at a time:
    {notebook name: [(cell id, kind ("answer", "check" or "code"), error name or None)]}.

    Each runs in a fresh kernel in quick mode, with its own cache, no other brainlab setting (as
    tests/conftest.py's isolated_env gives a test), and its own copy of the session's runs, made once the
    notebooks of the tests before have trained: the wrong answers change no training setting, so a run
    the session already trained is reused, not trained again, and whatever a notebook records stays in
    its copy. Two at a time: notebooks are mostly one-threaded Python (the ten took 34 s so, against 58 s
    one after the other, on a 2-core AMD EPYC).
    """
    selected = [item.callspec.params["path"] for item in request.session.items
                if getattr(item, "module", None) is request.module
                and getattr(item, "originalname", "") == WRONG_ANSWER_TEST]
    settings_free = {name: value for name, value in os.environ.items() if not name.startswith("BRAINLAB_")}

    def run(path: Path) -> list[tuple[str, str, str | None]]:
        folder = tmp_path_factory.mktemp(path.stem)
        env = {**settings_free, "BRAINLAB_QUICK": "1", "BRAINLAB_CACHE": str(folder / "brainlab-cache"),
               "BRAINLAB_RUNS": str(copy_of_runs(session_runs, folder / "runs"))}
        wrong_ids = set(WRONG_ANSWERS[path.name])
        return [(cell.id, "answer" if cell.id in wrong_ids else "check" if exercises.is_check(cell) else "code", error)
                for cell, error in execute_cell_by_cell(wrong_notebook(path), folder, env)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((path.name for path in selected), pool.map(run, selected)))


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_every_check_rejects_its_recorded_wrong_answer(path, wrong_answer_results):
    """Each notebook runs once, every answer replaced by its wrong answer: the answers run, every check fails.

    (That the worked answers pass their checks, nbval shows by running solutions/.) The notebooks run in
    ``wrong_answer_results``, two at a time.
    """
    results = wrong_answer_results[path.name]
    assert all(error is None for _, kind, error in results if kind != "check"), f"{path.name}: {results}"
    passed = [cell_id for cell_id, kind, error in results if kind == "check" and error is None]
    assert not passed, f"{path.name}: these checks let a wrong answer through: {passed}\n{results}"
    broken = [cell_id for cell_id, kind, error in results if error in ("SyntaxError", "IndentationError")]
    assert not broken, f"{path.name}: these cells are not Python, so they fail whatever the answer: {broken}"
