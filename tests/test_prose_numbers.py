"""The course's prose quotes only numbers it can back: every number in a markdown cell of notebooks/ with three
or more significant digits (0.673, 2870, 15.6 s) appears in that notebook's recorded outputs, in
docs/results.md (where the cell cites results.md), in brainlab/paper.py (where the cell speaks of the paper),
or in :data:`ALLOWED` below with the reason it needs no evidence.

"Appears" allows rounding: 0.67 in prose is backed by 0.673 in an output, and 67.3% by 0.673. Years in
citations, numbers inside links and code (`Dense(128)`) are not claims. This is the mechanical half of docs/claims.md: it cannot
tell whether a backed number is used truthfully, only that it is not typed from memory.
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from tools.run_course.check import printed_text  # the recorder's reader of outputs

REPO = Path(__file__).resolve().parents[1]
COURSE = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# A number as prose writes it: 2870, 2,870, 27,782,660, 0.673, .5, 15.6; not the digits inside a word (ResNet50)
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)(?![\w])(\s*%)?")
# Not prose: dates, link targets, image alt texts, HTML tags, code blocks and inline code (`Dense(128)`, `--epochs 16`)
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\b\d{4}-\d\d-\d\d\b|\]\([^)]*\)|https?://\S+|<[^>]+>|!\[[^\]]*\]", flags=re.S)
CITATION_YEAR = re.compile(r"(?:et\s+al\.?,?|[A-Z][a-z]+,)\s*\(?((?:19|20)\d\d)\)?|\(((?:19|20)\d\d)\)")

#: Numbers a notebook's prose may quote without an output: (notebook prefix, number as written) -> reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("00", "255"): "the largest 8-bit pixel value (white), a definition",
    ("01", "255"): "the largest 8-bit pixel value (white), a definition",
    ("05", "2012"): "the year of ImageNet's challenge version, a name",
    ("05", "224"): "ImageNet's input size, 224 x 224 (He et al., 2016): a definition the exercise builds on",
    ("05", "1.28"): "ImageNet's 1.28 million training photographs (Russakovsky et al., 2015), a fact about "
                    "the dataset the weights come from, not a result of this course",
}


def significant_digits(text: str) -> int:
    """How many significant digits a number as written has (2870 -> 3, 0.673 -> 3, 100 -> 1, 0.510 -> 3)."""
    digits = text.replace(",", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.lstrip("0").rstrip("0"))


def numbers_in(text: str) -> list[float]:
    """Every number in a text (outputs, results.md, paper.py), as floats; 27_782_660 and 27,782,660 both read."""
    text = re.sub(r"(?<=\d)_(?=\d)", "", text)
    found = []
    for match in re.finditer(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+", text):
        try:
            found.append(float(match.group(0).replace(",", "")))
        except ValueError:
            pass
    return found


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def backed(written: str, percent: bool, evidence: set[float]) -> bool:
    """True when some evidence number, rounded as the prose rounds, is the prose's number (or its percentage)."""
    value = float(written.replace(",", ""))
    places = decimals(written)
    for e in evidence:
        for candidate in (e, e * 100) if percent else (e,):
            if round(candidate, places) == round(value, places):
                return True
    return False


@cache
def cited_evidence(name: str) -> frozenset[float]:
    """The numbers of docs/results.md or brainlab/paper.py, which back a cell that cites them."""
    return frozenset(numbers_in((REPO / name).read_text()))


def cell_evidence(text: str, outputs: set[float]) -> set[float]:
    """What may back the numbers of one markdown cell: the notebook's outputs, plus what the cell cites."""
    evidence = set(outputs)
    if "results.md" in text:
        evidence |= cited_evidence("docs/results.md")
    if re.search(r"\bpaper\b", text, flags=re.I):
        evidence |= cited_evidence("brainlab/paper.py")
    return evidence


def unbacked(path: Path) -> list[str]:
    """Each number of the notebook's prose that nothing backs: 'cell N: 0.486 in "... context ..."'."""
    nb = json.loads(path.read_text())
    prefix = path.name[:2]
    outputs = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            outputs.update(numbers_in(printed_text(cell.get("outputs", []))))
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown" or cell["metadata"].get("brainlab", {}).get("notice"):
            continue  # the needs-imagenet notice is made from docs/course-runs.json (tests/test_recorded_outputs.py)
        source = "".join(cell["source"])
        text = NOT_PROSE.sub(" ", source)
        years = {y for m in CITATION_YEAR.finditer(text) for y in m.groups() if y}
        evidence = cell_evidence(source, outputs)  # the citation may sit in code: `docs/results.md`
        for match in NUMBER.finditer(text):
            written, percent = match.group(1), bool(match.group(2))
            if significant_digits(written) < 3 or written in years or (prefix, written) in ALLOWED:
                continue
            if not backed(written, percent, evidence):
                context = text[max(0, match.start() - 50):match.end() + 30].replace("\n", " ")
                problems.append(f"cell {index}: {written}{'%' if percent else ''} in \"...{context}...\"")
    return problems


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_backed(path):
    problems = unbacked(path)
    assert not problems, (f"{path.name}: numbers in the prose that no output, docs/results.md row or paper.py "
                          "constant shows (print them from a cell, cite results.md, or allow-list them with a "
                          "reason in tests/test_prose_numbers.py):\n" + "\n".join(problems))


def test_the_rule_reads_numbers_as_prose_writes_them():
    assert significant_digits("2870") == 3 and significant_digits("0.673") == 3
    assert significant_digits("100") == 1 and significant_digits("0.510") == 3 and significant_digits("15.6") == 3
    assert backed("0.67", False, {0.673}) and backed("67.3", True, {0.673}) and not backed("0.486", False, {0.673})
    assert backed("2,870", False, {2870.0}) and numbers_in("27_782_660 params") == [27782660.0]


def test_allow_list_entries_are_still_needed():
    """An allow-list entry that no notebook's prose quotes any more is stale: remove it."""
    quoted = set()
    for path in COURSE:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                quoted.update((path.name[:2], m.group(1))
                              for m in NUMBER.finditer(NOT_PROSE.sub(" ", "".join(cell["source"]))))
    assert not set(ALLOWED) - quoted, f"stale allow-list entries: {sorted(set(ALLOWED) - quoted)}"
