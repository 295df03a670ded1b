"""Whether the outputs a notebook carries are current: source stamps, needs-imagenet cells, size, folders.

A recorded output is stamped with the hash of the cell source that made it (:func:`stamp`);
:func:`output_problems` lists, one sentence each, what would mislead a reader: an output older than
its cell, a result of the ImageNet weights from a run without them, a notebook over 3 MB, a folder
of the recording machine. tests/test_recorded_outputs.py runs it on every notebook; the prose test
reads the outputs through :func:`printed_text`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from tools.run_course.scrub import ABSOLUTE_PATH

__all__ = ["IMAGENET_TAG", "MAX_NOTEBOOK_BYTES", "source_sha", "stamp", "output_problems", "printed_text"]

MAX_NOTEBOOK_BYTES = 3 * 2**20  # a notebook with recorded outputs stays under 3 MB
IMAGENET_TAG = "needs-imagenet"  # a cell whose output depends on the ResNet50's ImageNet weights


def source_sha(source: str) -> str:
    """The first 12 hex digits of the SHA-256 of a cell's source: what its recorded output was made from."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def stamp(cell) -> bool:
    """Stamp a code cell with its source's hash; True when the stamp changed."""
    info = cell.metadata.setdefault("brainlab", {})
    new = source_sha(cell.source)
    changed = info.get("source_sha") != new
    info["source_sha"] = new
    return changed


def output_problems(path: Path, outputs_allowed: bool = True) -> list[str]:
    """What is wrong with the outputs a notebook carries, one sentence each (an empty list: nothing).

    With ``outputs_allowed`` (notebooks/): every code cell with outputs carries the hash of the
    source that made them, cells tagged ``needs-imagenet`` have none unless the notebook was recorded
    from a run with the ImageNet weights, and the file is under
    3 MB. Without (solutions/, exercises/): no cell has outputs at all.
    """
    nb = nbformat.read(path, as_version=4)
    problems = []
    size = Path(path).stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        problems.append(f"{size / 2**20:.1f} MB, over the 3 MB a notebook with outputs may take: record it again "
                        "(--record shrinks its images) or show fewer figures")
    imagenet_run = nb.metadata.get("brainlab", {}).get("recorded", {}).get("timing_only") is False
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        recorded = cell.metadata.get("brainlab", {}).get("source_sha")
        if not outputs_allowed:
            problems.append(f"cell {number} has outputs: this folder is committed without any (clear them and save)")
        elif IMAGENET_TAG in cell.metadata.get("tags", []) and not imagenet_run:
            problems.append(f"cell {number} is tagged {IMAGENET_TAG} (its output depends on the ImageNet weights) "
                            "but the notebook was not recorded from a run that had them: clear its outputs")
        elif recorded is None:
            problems.append(f"cell {number} has outputs but no source stamp: record the notebook again "
                            "(python3 tasks.py course --record) or, for outputs you re-ran by hand, stamp them "
                            "(.venv/bin/python -m tools.run_course --stamp)")
        elif recorded != source_sha(cell.source):
            problems.append(f"cell {number} was changed after its outputs were recorded (stamp {recorded}, source "
                            f"now {source_sha(cell.source)}): record the notebook again or clear the cell's outputs")
        if outputs_allowed:
            shown = sorted({m.group(0) for m in ABSOLUTE_PATH.finditer(printed_text(cell.outputs))})
            if shown:
                problems.append(f"cell {number} shows this machine's folders ({', '.join(shown[:3])}): record it "
                                "again (the recorder writes $BRAINLAB_DATA, $BRAINLAB_RUNS, ~ ... instead)")
    return problems


def printed_text(outputs) -> str:
    """All the text a reader sees in a cell's outputs (streams, plain text, HTML, Markdown; not images)."""
    parts = []
    for out in outputs:
        parts.append("".join(out.get("text", "")))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime, "")
            parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)
