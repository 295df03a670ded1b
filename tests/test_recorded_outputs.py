"""Outputs on view in notebooks/ are current: each code cell's recorded output carries the hash of the source
that made it (tools/run_course.py --record writes it, --stamp adds it), cells tagged needs-imagenet show
nothing, and every notebook stays under 3 MB. solutions/ and exercises/ carry no outputs at all."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_course", REPO / "tools" / "run_course.py")
run_course = sys.modules["run_course"] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
spec.loader.exec_module(run_course)

COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
WITHOUT_OUTPUTS = sorted((REPO / "solutions").glob("*.ipynb")) + sorted((REPO / "exercises").glob("*.ipynb"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_recorded_outputs_belong_to_their_cells(path):
    problems = run_course.output_problems(path)
    assert not problems, f"{relative(path)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", WITHOUT_OUTPUTS, ids=relative)
def test_solutions_and_exercises_carry_no_outputs(path):
    problems = run_course.output_problems(path, outputs_allowed=False)
    assert not problems, f"{relative(path)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_a_notebook_with_imagenet_cells_opens_with_the_notice_its_tags_make(path):
    """Where cells are tagged needs-imagenet, the cell after the title says how many are empty, why, and what to do."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    expected = run_course.imagenet_notice(nb, path.stem)
    notices = [i for i, cell in enumerate(nb.cells)
               if cell.metadata.get("brainlab", {}).get("notice") == run_course.NOTICE]
    if expected is None:
        assert not notices, f"{relative(path)} has no needs-imagenet cells, yet a notice about them"
        return
    assert notices == [1], f"{relative(path)}: the notice belongs right after the title (cell 1), found at {notices}"
    assert nb.cells[1].source == expected, (f"{relative(path)}: the notice is out of step with the tags or "
                                            "docs/course-runs.json: run .venv/bin/python tools/run_course.py --notices")


def test_the_notice_counts_the_tagged_cells_and_names_their_sections():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · A notebook"),
                                         nbformat.v4.new_markdown_cell("## 1. Data"), nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_markdown_cell("## 2. Training"),
                                         nbformat.v4.new_code_cell("fit()"), nbformat.v4.new_code_cell("score()")])
    assert run_course.imagenet_notice(nb, "99_a") is None
    for cell in nb.cells[4:]:
        cell.metadata["tags"] = ["needs-imagenet"]
    text = run_course.imagenet_notice(nb, "99_a")
    assert text.startswith("> **Why 2 code cells below show no output.** Their results (section 2) depend on")
    assert "the paper reports 0.51 accuracy (section IV.C, figure 10)" in text and "On a CPU" not in text
    nb.metadata["brainlab"] = {"recorded": {"timing_only": False}}
    assert run_course.imagenet_notice(nb, "99_a").endswith("the run recorded here had them.")


def test_the_course_has_notebooks_to_check():
    assert len(COURSE) >= 10 and len(WITHOUT_OUTPUTS) >= 20
