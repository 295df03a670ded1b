"""Outputs on view in notebooks/ are current: each code cell's recorded output carries the hash of the source
that made it (``python -m tools.run_course --record`` writes it, ``--stamp`` adds it), cells tagged needs-imagenet
show nothing, headline numbers are structured outputs, and every notebook stays under 3 MB. solutions/ and
exercises/ carry no outputs at all."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from brainlab import course
from tools.run_course.check import output_problems
from tools.run_course.execute import headlines_of
from tools.run_course.notice import NOTICE, imagenet_notice

REPO = Path(__file__).resolve().parents[1]

COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
WITHOUT_OUTPUTS = sorted((REPO / "solutions").glob("*.ipynb")) + sorted((REPO / "exercises").glob("*.ipynb"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_recorded_outputs_belong_to_their_cells(path):
    problems = output_problems(path)
    assert not problems, f"{relative(path)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", WITHOUT_OUTPUTS, ids=relative)
def test_solutions_and_exercises_carry_no_outputs(path):
    problems = output_problems(path, outputs_allowed=False)
    assert not problems, f"{relative(path)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_a_notebook_with_imagenet_cells_opens_with_the_notice_its_tags_make(path):
    """Where cells are tagged needs-imagenet, the cell after the title says how many are empty, why, and what to do."""
    nb = nbformat.read(path, as_version=4)
    expected = imagenet_notice(nb, path.stem)
    notices = [i for i, cell in enumerate(nb.cells) if cell.metadata.get("brainlab", {}).get("notice") == NOTICE]
    if expected is None:
        assert not notices, f"{relative(path)} has no needs-imagenet cells, yet a notice about them"
        return
    assert notices == [1], f"{relative(path)}: the notice belongs right after the title (cell 1), found at {notices}"
    assert nb.cells[1].source == expected, (f"{relative(path)}: the notice is out of step with the tags or "
                                            "docs/course-runs.json: run .venv/bin/python -m tools.run_course --notices")


def test_the_notice_counts_the_tagged_cells_and_names_their_sections():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · A notebook"),
                                         nbformat.v4.new_markdown_cell("## 1. Data"), nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_markdown_cell("## 2. Training"),
                                         nbformat.v4.new_code_cell("fit()"), nbformat.v4.new_code_cell("score()")])
    assert imagenet_notice(nb, "99_a") is None
    for cell in nb.cells[4:]:
        cell.metadata["tags"] = ["needs-imagenet"]
    text = imagenet_notice(nb, "99_a")
    assert text.startswith("> **Why 2 code cells below show no output.** Their results (section 2) depend on")
    assert "the paper reports 0.51 accuracy (section IV.C, figure 10)" in text and "On a CPU" not in text
    nb.metadata["brainlab"] = {"recorded": {"timing_only": False}}
    assert imagenet_notice(nb, "99_a").endswith("the run recorded here had them.")


@pytest.mark.parametrize("path", COURSE, ids=relative)
def test_headline_numbers_are_structured_outputs_that_show_the_same_line(path):
    """course.headline shows its numbers as data beside the text: no recorded headline is a printed line only."""
    nb = nbformat.read(path, as_version=4)
    pair = re.compile(r"(\w+)=(.*?)(?= \w+=|$)")
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            assert "Headline: " not in "".join(out.get("text", "")), (
                f"{relative(path)} cell {number}: a headline printed as text, not shown by course.headline")
            if course.HEADLINE_MIME in out.get("data", {}):
                numbers, line = out["data"][course.HEADLINE_MIME], "".join(out["data"]["text/plain"])
                assert line.startswith("Headline: ") and "\n" not in line, (relative(path), number, line)
                shown = dict(pair.findall(line[len("Headline: "):]))
                assert sorted(shown) == sorted(numbers), (relative(path), number, line, numbers)
                for key, value in numbers.items():  # the same numbers (a notebook file sorts the data's keys)
                    assert course.headline_text({key: value}) == f"{key}={shown[key]}", (relative(path), number, key)
    assert all(isinstance(numbers, dict) for numbers in headlines_of(nb))


def test_the_recorded_headlines_are_read_as_data():
    found = {path.stem: headlines_of(nbformat.read(path, as_version=4)) for path in COURSE}
    assert found["03_first_cnn"] == [{"accuracy": 0.683, "augmented": False, "glioma_recall": 0.21,
                                      "split": "official-test"}]
    assert found["05_transfer_learning"] == [{"split": "official-val", "weights": "random-start (timing only)"}]
    assert sum(map(len, found.values())) >= 4


def test_the_course_has_notebooks_to_check():
    assert len(COURSE) >= 10 and len(WITHOUT_OUTPUTS) >= 20
