"""A successful run's outputs written back into its notebook, every code cell stamped with its source's hash.

What a reader could not use is left out: a progress bar's widget (its text shows 0%), a widget's
view (a file cannot draw it), the machine's folders (:mod:`tools.run_course.scrub`), the results of
``needs-imagenet`` cells from a run without the ImageNet weights. A cell that nbval compares
(``# NBVAL_CHECK_OUTPUT``) keeps the output it is compared with. The images are shrunk until the
notebook fits 3 MB (:mod:`tools.run_course.shrink`). :func:`stamp_existing` stamps outputs already
there (re-run by hand), running nothing.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import nbformat

from brainlab import runs
from brainlab.course import notebook_bytes
from tools.run_course.check import IMAGENET_TAG, MAX_NOTEBOOK_BYTES, source_sha, stamp
from tools.run_course.execute import Run
from tools.run_course.scrub import portable
from tools.run_course.shrink import shrink_images

__all__ = ["CHECK_OUTPUT", "WIDGET_VIEW", "is_progress_bar", "record", "stamp_existing", "write_notebook"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"  # cells nbval compares in quick mode
TQDM_ENDING = re.compile(r"\[\d+:\d+(?:<[^\],]*)?, [^\]]*\]$")  # "[00:12<00:03, 5.3batch/s]", "[00:00, ?img/s]"


def write_notebook(path: Path, nb) -> None:
    """Write ``nb`` to ``path`` as Jupyter does (``brainlab.course.notebook_bytes``), atomically."""
    with runs.writing(path) as partial:
        partial.write_bytes(notebook_bytes(nb))


def _text(outputs) -> str:
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


def is_progress_bar(output) -> bool:
    """Whether ``output`` is a progress bar's widget: its plain-text stand-in shows the bar as it started (0%).

    Recorded, it would tell a reader that nothing happened, so ``record`` leaves it out.
    """
    data = output.get("data", {})
    return (output.get("output_type") == "display_data" and set(data) <= {"text/plain", WIDGET_VIEW}
            and bool(TQDM_ENDING.search(str(data.get("text/plain", "")).strip())))


def record(path: Path, run: Run, machine: str, data: str | None = None, env: dict | None = None) -> list[str]:
    """Write ``run``'s outputs into the notebook at ``path``, every code cell stamped; notes for the person."""
    nb = nbformat.read(path, as_version=4)
    executed = {cell.get("id") or number: cell for number, cell in enumerate(run.executed.cells, start=1)}
    notes = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        new = executed.get(cell.get("id") or number)  # cells are matched by id (by place in an old notebook)
        if new is None or new.source != cell.source:
            notes.append(f"cell {number} changed while the notebook ran: its output was not recorded")
            cell.outputs, cell.execution_count = [], None
            cell.metadata.get("brainlab", {}).pop("source_sha", None)
            continue
        outputs = [out for out in new.outputs if not is_progress_bar(out)]
        for out in outputs:  # a widget cannot be drawn from a file: keep its plain-text stand-in
            out.get("data", {}).pop(WIDGET_VIEW, None)
        portable(outputs, data, env)
        kept_check = (CHECK_OUTPUT in cell.source and cell.outputs and _text(cell.outputs) != _text(outputs)
                      and cell.metadata.get("brainlab", {}).get("source_sha") in (None, source_sha(cell.source)))
        if IMAGENET_TAG in cell.metadata.get("tags", []) and run.timing_only:  # random-start numbers: not shown
            cell.outputs, cell.execution_count = [], None
        elif kept_check:  # nbval compares this cell in quick mode: keep the output it compares with
            notes.append(f"cell {number} ({CHECK_OUTPUT}) printed something else in {run.mode} mode than the output "
                         "nbval compares with; the committed output is kept")
        else:
            cell.outputs, cell.execution_count = outputs, new.execution_count
        stamp(cell)
    nb.metadata.pop("widgets", None)
    nb.metadata["brainlab"] = {**nb.metadata.get("brainlab", {}),
                               "recorded": {"mode": run.mode, "date": dt.date.today().isoformat(), "machine": machine,
                                            "timing_only": run.timing_only}}
    size = shrink_images(nb)
    if size > MAX_NOTEBOOK_BYTES:
        notes.append(f"{size / 2**20:.1f} MB even with smaller images: over the 3 MB limit (tests will say so)")
    write_notebook(path, nb)
    return notes


def stamp_existing(paths) -> int:
    """Stamp every code cell that already has outputs with its source's hash, running nothing."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        changed = [number for number, cell in enumerate(nb.cells, start=1)
                   if cell.cell_type == "code" and cell.get("outputs") and stamp(cell)]
        if changed:
            write_notebook(path, nb)
        print(f"[course] {path.name}: stamped {len(changed)} cell(s) with outputs"
              + (f" (cells {', '.join(map(str, changed))})" if changed else ""), flush=True)
    return 0
