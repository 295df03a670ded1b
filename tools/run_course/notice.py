"""The note atop a notebook whose ``needs-imagenet`` cells are empty: how many, why, and how to fill them.

:func:`imagenet_notice` makes it from the notebook's tags and, for the time a CPU took, from
docs/course-runs.json; :func:`refresh_notice` puts it right after the title (``--notices`` and every
``--record``). tests/test_recorded_outputs.py keeps each notebook's notice equal to what it makes.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from tools.run_course.check import IMAGENET_TAG
from tools.run_course.record import write_notebook
from tools.run_course.tables import COURSE_RUNS, read_table

__all__ = ["NOTICE", "imagenet_notice", "refresh_notice"]

NOTICE = "imagenet-notice"  # metadata.brainlab.notice of the markdown cell that explains the empty cells


def _sections_of(nb, numbers) -> list[str]:
    """The section (its number, or its heading) each of the cells ``numbers`` stands in, in order, once each."""
    sections, current = [], None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings = re.findall(r"^## (.+)$", cell.source, flags=re.M)
            if headings:
                current = headings[-1].strip()
        if index in numbers and current and current not in sections:
            sections.append(current)
    return [re.match(r"(\d+)\.", s).group(1) if re.match(r"\d+\.", s) else f"'{s}'" for s in sections]


def _measured_full_run(notebook: str, table_path: Path = COURSE_RUNS) -> str | None:
    """'5.5 minutes on a 2-core AMD EPYC': the newest full-mode time of ``notebook`` in docs/course-runs.json."""
    table = read_table(table_path)
    rows = [r for r in table["rows"] if r["notebook"] == notebook and r["mode"] == "full" and r["status"] == "ok"]
    if not rows:
        return None
    row = max(rows, key=lambda r: r["date"])
    machine = table["machines"].get(row["machine"], {})
    cpu = re.sub(r"\s*\((?:R|TM)\)", "", machine.get("cpu", ""))  # "Intel(R) Xeon(R) Processor" -> "Intel Xeon Processor"
    where = f"a {machine['cores']}-core {cpu}" if cpu else row["machine"]
    return f"{row['seconds'] / 60:.1f} minutes on {where} ({row['date']})"


def imagenet_notice(nb, notebook: str, table_path: Path = COURSE_RUNS) -> str | None:
    """The notice a notebook with ``needs-imagenet`` cells opens with, made from its tags; None without any.

    It says how many cells are empty and why, what the paper reported, and what to do (a GPU runtime, or
    the measured CPU time). tests/test_recorded_outputs.py keeps each notebook's notice equal to this.
    """
    from brainlab import paper

    tagged = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and IMAGENET_TAG in cell.metadata.get("tags", [])]
    if not tagged:
        return None
    sections = _sections_of(nb, set(tagged))
    where = (f" (section{'s' if len(sections) > 1 else ''} {', '.join(sections[:-1]) + ' and ' if len(sections) > 1 else ''}"
             f"{sections[-1]})") if sections else ""
    count = f"{len(tagged)} code cell{'s' if len(tagged) > 1 else ''}"
    if nb.metadata.get("brainlab", {}).get("recorded", {}).get("timing_only") is False:
        return (f"> **ImageNet weights.** {count} of this notebook{where} show results that depend on the ResNet50's "
                "ImageNet weights; the run recorded here had them.")
    measured = _measured_full_run(notebook, table_path)
    timing = (f" On a CPU the whole notebook took {measured} in full mode, timed from random weights: the "
              "ImageNet weights change the numbers, not the arithmetic." if measured else "")
    return (f"> **Why {count} below show no output.** Their results{where} depend on the ResNet50's ImageNet "
            "weights, which could not be downloaded where this copy was recorded. That run started from random "
            "weights instead, for timing only: its accuracies, curves and maps would mean nothing, so they were "
            "left out. Every other output on this page is real: it does not depend on those weights. For its "
            f"model on the official `Testing` split, the paper reports {paper.TEST_ACCURACY:.2f} accuracy (section "
            "IV.C, figure 10). **To see them**, run the notebook where Keras can download the weights (94 MB, once): "
            "on Colab, *Runtime > Change runtime type > GPU*, then *Run all*." + timing)


def refresh_notice(path: Path, table_path: Path = COURSE_RUNS) -> bool:
    """Put the notebook's needs-imagenet notice right after its title (or remove a stale one); True if it changed."""
    nb = nbformat.read(path, as_version=4)
    text = imagenet_notice(nb, path.stem, table_path)
    old = [i for i, cell in enumerate(nb.cells) if cell.metadata.get("brainlab", {}).get("notice") == NOTICE]
    if text is None and not old:
        return False
    if old and text is not None and nb.cells[old[0]].source == text and len(old) == 1:
        return False
    for i in reversed(old):
        del nb.cells[i]
    if text is not None:
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata["brainlab"] = {"notice": NOTICE}
        nb.cells.insert(1, cell)
    write_notebook(path, nb)
    return True
