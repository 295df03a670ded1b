"""What every course notebook promises, checked without running it (nbval runs them; see pyproject.toml).

Each notebook: a title and an "Open in Colab" badge for its own path at the course's ref, the same
setup cells everywhere (a QUICK switch, brainlab installed only when missing and never TensorFlow,
from the course's repository; an optional Google Drive cell), sizes as named settings that quick
mode shrinks, run folders under config.runs_dir(), prose between the code, no outputs committed.
The badges and install lines are written from brainlab/course.py (`brainlab course-links`). Course notebooks also say what you will learn and end
with a summary and exercises; solution notebooks pair every answer with a check.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

from brainlab import course, exercises

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"

COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))
EVERY = COURSE + SOLUTIONS + sorted((REPO / "exercises").glob("*.ipynb"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def read(path: Path):
    return nbformat.read(path, as_version=4)


def without_notice(nb) -> list:
    """The cells, less the notice about needs-imagenet cells that stands after the title (tests/test_recorded_outputs.py)."""
    return [cell for cell in nb.cells if not cell.metadata.get("brainlab", {}).get("notice")]


def code_of(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


def markdown_of(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def test_the_course_is_numbered_and_every_notebook_has_exercises():
    names = [p.name for p in COURSE]
    assert names[:2] == ["00_setup_and_data.ipynb", "01_cnn_basics.ipynb"]
    numbers = [name[:2] for name in names]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name) for name in names), names
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {names}"
    missing = [name for name in names if not (REPO / "solutions" / name).is_file()]
    assert not missing, f"no solutions/ notebook for {missing}"


@pytest.mark.parametrize("path", EVERY, ids=relative)
def test_title_badge_and_setup_cell(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and re.match(r"# \S", first.source), "start with a '# Title' cell"
    assert course.badge(relative(path)) in first.source, "the Colab badge must open this notebook at the course's ref"
    prose, setup, drive_prose, drive = without_notice(nb)[1:5]
    assert prose.cell_type == "markdown" and prose.source.startswith("## Setup") and "`QUICK`" in prose.source
    assert setup.cell_type == "code" and setup.source.startswith("QUICK = None  # True: "), \
        "the setup cell comes first and shows the QUICK switch, following BRAINLAB_QUICK by default"
    setup = setup.source
    assert setup.index('os.environ["BRAINLAB_QUICK"]') < setup.index("import brainlab") < setup.rindex("config.quick_mode()")
    assert f'    SPEC = "{course.install_spec()}"\n' in setup, "install from the course setting (brainlab course-links)"
    assert "python3 tasks.py wheel" in setup and "%pip install brainlab-*.whl" in setup, "advice when the install fails"
    assert "tf = startup.import_tensorflow()" in setup, "TensorFlow's start-up log lines stay out of the notebook"
    assert "tf.__version__" in setup and 'list_physical_devices("GPU")' in setup, "report versions and GPU"
    assert "Runtime > Change runtime type > GPU" in setup, "say how to get a GPU on Colab"
    assert drive_prose.cell_type == "markdown" and "Google Drive" in drive_prose.source
    assert drive.cell_type == "code" and drive.source.startswith("KEEP_ON_DRIVE = False  #"), "Drive is opt-in"
    assert 'drive.mount("/content/drive")' in drive.source and "config.keep_work_in(" in drive.source
    code = code_of(nb).splitlines()
    assert not [line for line in code if re.match(r"\s*[%!]\s*pip\b", line)], "no %pip/!pip: the setup cell installs"
    installs = [line for line in code if '"pip", "install"' in line]
    assert len(installs) == 1 and installs[0] in setup, f"install brainlab only, and only there: {installs}"
    assert nb.metadata.kernelspec.name == "python3"


def test_every_notebook_has_the_same_setup_cells():
    setups = {relative(p): tuple(cell.source for cell in without_notice(read(p))[1:5]) for p in EVERY}
    first = setups[relative(COURSE[0])]
    different = [name for name, cells in setups.items() if cells != first]
    assert not different, f"the setup cells differ from {relative(COURSE[0])}'s in {different}"


def test_every_badge_and_install_line_agrees_with_the_course_setting():
    disagree = course.apply(REPO, course.REPOSITORY, course.REF, check=True)
    assert not disagree, "run `brainlab course-links`:\n" + "\n".join(map(str, disagree))
    for path in EVERY:
        nb = read(path)
        urls = course.COLAB_URL.findall(markdown_of(nb))
        assert urls and all(url[:2] == (course.REPOSITORY, course.REF) for url in urls), (path, urls)
        specs = course.INSTALL_SPEC.findall(code_of(nb))
        assert specs == [(course.REPOSITORY, course.REF)], (path, specs)


@pytest.mark.parametrize("path", EVERY, ids=relative)
def test_runs_are_recorded_under_the_runs_setting(path):
    """Run folders come from config.runs_dir(), so BRAINLAB_RUNS (and the Drive cell) really moves them."""
    code = code_of(read(path))
    assert not re.search(r"""Path\(\s*(config\.quick\(\s*)?["']runs|["']runs/quick["']""", code), \
        "name run folders with config.runs_dir(), not a fixed 'runs' folder"
    if "train.fit(" in code or "experiment.run(" in code:
        assert "config.runs_dir()" in code


@pytest.mark.parametrize("path", EVERY, ids=relative)
def test_sizes_are_named_settings_that_quick_mode_shrinks(path):
    settings = re.findall(r"^([A-Z][A-Z0-9_]*) = config\.quick\(", code_of(read(path)), flags=re.M)
    assert settings, "name the sizes (EPOCHS = config.quick(30, 1), IMAGE_SIZE = ...) at the top"


@pytest.mark.parametrize("path", EVERY, ids=relative)
def test_committed_without_outputs(path):
    """Outputs only where nbval compares them (`# NBVAL_CHECK_OUTPUT`), and there plain printed text.

    notebooks/ may also show a recorded run's outputs (`python3 tasks.py course --record`);
    tests/test_recorded_outputs.py checks that they belong to their cells.
    """
    nb = read(path)
    recorded = path.parent.name == "notebooks" and "recorded" in nb.metadata.get("brainlab", {})
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        if CHECK_OUTPUT in cell.source:
            assert cell.outputs and cell.execution_count is not None, \
                f"cell {number}: nbval compares this cell's output, so keep the output of a quick-mode run"
            assert all(out.output_type == "stream" and out.name == "stdout" for out in cell.outputs), \
                f"cell {number}: a compared output must be printed text, free of warnings"
        elif not recorded:
            assert not cell.outputs and cell.execution_count is None, \
                f"cell {number} has outputs: clear them (Edit > Clear Outputs of All Cells) and save"
    assert "widgets" not in nb.metadata, "saved widget state: clear outputs and save again"
    for source in (code_of(nb), markdown_of(nb)):
        assert "/work/" not in source and "shared/datasets" not in source, "no paths of one machine"


@pytest.mark.parametrize("path", EVERY, ids=relative)
def test_prose_comes_between_the_code(path):
    run = longest = 0
    for cell in read(path).cells:
        run = run + 1 if cell.cell_type == "code" else 0
        longest = max(longest, run)
    assert longest <= 3, f"{longest} code cells in a row: explain before you compute"


def exercise_items(nb) -> list[str]:
    """The numbered items of the '## Exercises' cell."""
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", cell.source, flags=re.M)


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_course_notebook_teaches_then_sums_up(path):
    nb = read(path)
    headings = [line for line in markdown_of(nb).splitlines() if line.startswith("## ")]
    assert "## What you will learn" in headings[:2]
    assert headings[-2:] == ["## Summary", "## Exercises"], "end with a summary, then the exercises"
    items = exercise_items(nb)
    assert 2 <= len(items) <= 4, items
    answers = [c for c in read(REPO / "solutions" / path.name).cells if exercises.has_solution(c)]
    assert len(answers) == len(items), "the exercises listed here and those in solutions/ differ"
    assert course.badge(f"exercises/{path.name}") in markdown_of(nb), "link the exercise notebook"
    assert "%matplotlib inline" in code_of(nb), "brainlab.plots figures show only with the inline backend on"


@pytest.mark.parametrize("path", SOLUTIONS, ids=relative)
def test_every_answer_sits_between_its_question_and_its_check(path):
    cells = read(path).cells
    answers = [i for i, cell in enumerate(cells) if exercises.has_solution(cell)]
    assert 2 <= len(answers) <= 4, f"{len(answers)} exercises"
    for number, i in enumerate(answers, start=1):
        question, check = cells[i - 1], cells[i + 1]
        assert question.cell_type == "markdown" and question.source.startswith(f"### Exercise {number}:")
        assert exercises.is_check(check), f"exercise {number}: put a '# CHECK' cell right after the answer"
        assert "assert " in check.source
        answer = cells[i].source
        block = answer.split(exercises.BEGIN)[1].split(exercises.END)[0]
        inside_function = answer.lstrip().startswith("def ")
        assert inside_function or exercises.defined_names(block), \
            f"exercise {number}: the answer must define a named result that the check can test"


def test_pytest_runs_the_notebooks_with_nbval_in_quick_mode_when_asked():
    """Plain pytest runs tests/; `--nbval-lax` (the full suite, `python3 tasks.py test`) adds the notebooks."""
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert {"tests", "notebooks", "solutions"} <= set(options["testpaths"])
    assert "exercises" not in options["testpaths"] and "exercises" in options["norecursedirs"]
    addopts = options["addopts"].split()
    assert "--nbval-lax" not in addopts and "--nbval" not in addopts, "notebooks run only when asked"
    assert "--nbval-current-env" in addopts
    sanitize = REPO / addopts[addopts.index("--nbval-sanitize-with") + 1]
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(sanitize.read_text())
    noisy = ("I0000 00:00:1795751178.911987   23029 port.cc:153] oneDNN custom operations are on.\n"
             "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "total 27,782,660\n")
    for regex, replacement in patterns:
        noisy = re.sub(regex, replacement, noisy)
    assert "port.cc" not in noisy and "absl" not in noisy and "total 27,782,660" in noisy


def _kernel_environment(tmp_path, env: dict) -> dict:
    """Run a one-cell notebook through pytest/nbval, as the suite runs the course, and return what its kernel saw."""
    import json
    import os
    import shutil
    import subprocess
    import tempfile

    seen = tmp_path / "seen.json"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, os\nfrom brainlab import cache, config\n"
        f"json.dump({{'quick': os.environ.get('BRAINLAB_QUICK'), 'cache': str(cache.cache_dir()), "
        f"'runs': str(config.runs_dir())}}, open({str(seen)!r}, 'w'))")])
    folder = Path(tempfile.mkdtemp(prefix=".kernel-env-", dir=REPO / "tests"))  # under the repository's conftest.py
    try:
        nbformat.write(nb, folder / "probe.ipynb")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("BRAINLAB_")}, **env,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                               str(folder / "probe.ipynb")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(seen.read_text())


@pytest.mark.slow
def test_notebook_kernels_run_in_quick_mode_on_a_temporary_cache_and_runs_folder(tmp_path):
    seen = _kernel_environment(tmp_path, {})
    assert seen["quick"] == "1", "notebook kernels need quick mode"
    cache, runs = Path(seen["cache"]), Path(seen["runs"])
    assert cache.name.startswith("brainlab-test-cache-") and Path.home() / ".cache" not in cache.parents
    assert not cache.exists(), "the session's cache is removed after the run"
    assert runs.name == "quick" and runs.parent.name.startswith("brainlab-test-runs-"), "not the course's runs/"
    assert not runs.parent.exists(), "the session's runs are removed after the run"
    mine = {"BRAINLAB_CACHE": tmp_path / "my-cache", "BRAINLAB_RUNS": tmp_path / "my-runs"}  # chosen: used, kept
    mine["BRAINLAB_RUNS"].mkdir()
    seen = _kernel_environment(tmp_path, {name: str(path) for name, path in mine.items()})
    assert seen["cache"] == str(mine["BRAINLAB_CACHE"]) and seen["runs"] == str(mine["BRAINLAB_RUNS"] / "quick")
    assert mine["BRAINLAB_CACHE"].is_dir() and mine["BRAINLAB_RUNS"].is_dir()
