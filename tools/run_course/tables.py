"""The course's table of runs: rows merged into docs/course-runs.json, docs/course-runs.md rendered from it.

A row per (notebook, mode, machine), the newest kept, so that runs made at different times and on
different machines add up. Each row keeps the numbers of every headline the notebook showed, as data
(the dicts ``brainlab.course.headline_numbers`` makes); the page shows each as the line the notebook
showed (``brainlab.course.headline_text``). A headline whose ResNet50 started from random weights
(``brainlab.course.is_random_start``) is left out: its row shows its time, not its numbers.
``python -m tools.run_course --tables`` renders the page again from the JSON, running nothing.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from brainlab import runs as run_files
from brainlab.course import headline_text, is_random_start
from tools import ROOT
from tools.markdown import markdown_table
from tools.run_course.execute import Run
from tools.run_course.machine import machine_name
from tools.run_course.memory import GIB

__all__ = ["COURSE_RUNS", "TIMING_ONLY", "read_table", "merge", "shown_numbers", "render", "write_tables"]

COURSE_RUNS = ROOT / "docs" / "course-runs.json"
TIMING_ONLY = "timing only: ImageNet weights not available"
COLUMNS = ("notebook", "mode", "wall time", "peak memory", "status", "headline numbers", "date")
ALIGN = ("left", "left", "right", "right", "left", "left", "left")


def read_table(table_path: Path = COURSE_RUNS) -> dict:
    """The table kept at ``table_path`` (``{"machines": {...}, "rows": [...]}``); an empty one if there is none.

    Each row's ``headlines`` are the numbers of its headlines (dicts); a row that keeps them otherwise is refused.
    """
    table_path = Path(table_path)
    if not table_path.is_file():
        return {"machines": {}, "rows": []}
    table = json.loads(table_path.read_text(encoding="utf-8"))
    unreadable = [f"{r.get('notebook')} ({r.get('mode')}, {r.get('machine')})" for r in table.get("rows", [])
                  if not all(isinstance(numbers, dict) for numbers in r.get("headlines", []))]
    if unreadable:
        raise ValueError(f"{table_path}: the headlines of {', '.join(unreadable)} are not numbers "
                         '({"accuracy": 0.743, ...}); run those notebooks again with python3 tasks.py course.')
    return table


def merge(table_path: Path, runs: list[Run], machine: dict) -> dict:
    """Add ``runs`` to the JSON table at ``table_path``: a row per (notebook, mode, machine), newest kept."""
    table = read_table(table_path)
    name = machine_name(machine)
    table["machines"][name] = machine
    for run in runs:
        row = {"notebook": run.notebook, "mode": run.mode, "machine": name, "seconds": round(run.seconds, 1),
               "peak_gib": round(run.peak_bytes / GIB, 3), "status": run.status,
               "headlines": [dict(numbers) for numbers in run.headlines],
               "timing_only": run.timing_only, "date": machine["date"]}
        table["rows"] = [r for r in table["rows"] if (r["notebook"], r["mode"], r["machine"]) != (run.notebook, run.mode, name)]
        table["rows"].append(row)
    table["rows"].sort(key=lambda r: (r["machine"], r["notebook"], r["mode"]))
    return table


def shown_numbers(row: dict) -> str:
    """A row's headline numbers as the table shows them: a random-start headline says only that it was timed."""
    measured = [headline_text(numbers) for numbers in row["headlines"] if not is_random_start(numbers)]
    if row["timing_only"]:
        return "; ".join([*measured, TIMING_ONLY])
    return "; ".join(measured) or "none"


def render(table: dict) -> str:
    """``docs/course-runs.md``: one section per machine, one row per notebook and mode."""
    intro = ("Each notebook run top to bottom in a fresh kernel by `python3 tasks.py course` (quick mode: the bundled "
             "sample) or `python3 tasks.py course --full --data DIR` (the full dataset). Wall time is the whole "
             "notebook, kernel start included; peak memory is the kernel's largest resident set. Headline numbers "
             "are what the notebook showed with `brainlab.course.headline`; a row whose ResNet50 started from "
             "random weights (no ImageNet weights on that machine) measures time only.")
    lines = ["# How long the course takes", "", textwrap.fill(intro, 110), "",
             "Written by `python -m tools.run_course` from course-runs.json beside this file; edit neither by hand.", ""]
    for name, info in table["machines"].items():
        rows = [r for r in table["rows"] if r["machine"] == name]
        if not rows:
            continue
        cells = [[r["notebook"], r["mode"], f"{r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min)", f"{r['peak_gib']:.1f} GiB",
                  r["status"], shown_numbers(r).replace("|", "/"), r["date"]] for r in rows]
        lines += [f"## {info['cpu']}",
                  "",
                  textwrap.fill(f"{info['cores']} logical cores, GPU: {info['gpu']}; Python {info['python']}, "
                                f"TensorFlow {info['tensorflow']}, Keras {info['keras']}; last run {info['date']}.", 110),
                  "",
                  markdown_table(COLUMNS, cells, ALIGN),
                  ""]
    if not table["rows"]:
        lines += ["No runs yet: `python3 tasks.py course` adds them.", ""]
    return "\n".join(lines)


def write_tables(out: Path, table: dict) -> None:
    """Write ``table`` as ``out``/course-runs.json and its page ``out``/course-runs.md, each atomically."""
    run_files.write_text(Path(out) / "course-runs.json", json.dumps(table, indent=1) + "\n")
    run_files.write_text(Path(out) / "course-runs.md", render(table))
