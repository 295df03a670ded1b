"""The repository's own scripts: recording the course, tabulating results, cutting the bundled sample.

They are a package, run from the repository root with ``-m`` so that they import each other and
brainlab normally (no search-path edits)::

    .venv/bin/python -m tools.run_course 03            # what python3 tasks.py course runs
    .venv/bin/python -m tools.results_page --check     # docs/results.md against docs/results.json
    .venv/bin/python -m tools.results_table runs/small-cnn-64-official-seed*

None of them is installed with brainlab: they need a checkout (the notebooks, docs/) and, for the
course runner, the test extras (nbclient).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT"]

ROOT = Path(__file__).resolve().parents[1]  # the repository's root folder
