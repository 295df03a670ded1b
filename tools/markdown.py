"""Markdown tables: the one function that writes them, for every page rendered from data.

docs/results.md (``tools.results_page``), docs/course-runs.md (``tools.run_course.tables``) and the
rows ``tools.results_table`` prints are all made by :func:`markdown_table`, so that every table
of the project has the same layout::

    >>> print(markdown_table(["run", "accuracy"], [["seed 1", "0.744"]], align=["left", "right"]))
    | run | accuracy |
    |---|---:|
    | seed 1 | 0.744 |
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["ALIGNMENTS", "markdown_table"]

ALIGNMENTS = {"left": "---", "right": "---:"}  # how each column's separator cell is written


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None) -> str:
    """The table with a header of ``columns`` and one line per row, without a final newline.

    Cells are written as text (``str``), a ``|`` inside one escaped as ``\\|``. ``align`` gives each
    column ``"left"`` (the default) or ``"right"``; a row of another width than the header is an error.
    """
    align = list(align) if align is not None else ["left"] * len(columns)
    if len(align) != len(columns) or not set(align) <= set(ALIGNMENTS):
        raise ValueError(f"align={align!r}: give one of {sorted(ALIGNMENTS)} for each of the {len(columns)} columns")

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [line(columns), "|" + "|".join(ALIGNMENTS[a] for a in align) + "|"]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise ValueError(f"row {number} has {len(row)} cells for {len(columns)} columns: {list(row)!r}")
        lines.append(line(row))
    return "\n".join(lines)
