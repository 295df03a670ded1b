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


def test_the_course_has_notebooks_to_check():
    assert len(COURSE) >= 10 and len(WITHOUT_OUTPUTS) >= 20
