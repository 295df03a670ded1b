"""The command line of the course runner: ``python3 tasks.py course`` runs ``python -m tools.run_course``.

:func:`main` checks the options, runs the notebooks chosen by :func:`select` one by one, records
their outputs with ``--record``, and writes the table after every notebook, so that a long run
keeps the rows it has. ``--stamp``, ``--notices`` and ``--tables`` run nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import tools.run_course
from brainlab import config
from brainlab.course import headline_text
from tools import ROOT
from tools.run_course.execute import run_notebook
from tools.run_course.machine import imagenet_weights_reachable, machine_info, machine_name
from tools.run_course.memory import GIB
from tools.run_course.notice import refresh_notice
from tools.run_course.record import record, stamp_existing
from tools.run_course.tables import TIMING_ONLY, merge, read_table, write_tables

__all__ = ["NOTEBOOKS", "select", "parse", "main"]

NOTEBOOKS = ROOT / "notebooks"


def select(names: list[str], folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks named: ``03``, a file name in ``folder``, or a path; all of ``folder``'s by default."""
    course = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return course
    chosen = []
    for name in names:
        path = Path(name)
        matches = ([path] if path.suffix == ".ipynb" and path.is_file() else
                   [p for p in course if p.name == name or p.stem == name or p.name.startswith(f"{name}_")])
        if len(matches) != 1:
            known = ", ".join(p.stem for p in course)
            raise SystemExit(f"[course] {name!r} names no notebook of {folder} (give 03, 03_first_cnn or a path); "
                             f"there are: {known}")
        chosen.append(matches[0].resolve())
    return chosen


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 tasks.py course",
                                     description=tools.run_course.__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="03, 03_first_cnn or a path (default: all)")
    parser.add_argument("--full", action="store_true", help="full mode (BRAINLAB_QUICK=0): needs the dataset")
    parser.add_argument("--data", metavar="DIR", help="the dataset folder, with Training/ and Testing/ "
                        "(default: BRAINLAB_DATA)")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop a notebook whose cell runs longer than "
                        "S seconds (default: no limit)")
    parser.add_argument("--record", action="store_true", help="write each successful run's outputs into its "
                        "notebook, stamped with each cell's source hash")
    parser.add_argument("--stamp", action="store_true", help="run nothing: stamp the outputs the notebooks already "
                        "carry with their cells' source hash")
    parser.add_argument("--notices", action="store_true", help="run nothing: rewrite each notebook's notice about "
                        "its needs-imagenet cells from its tags and docs/course-runs.json")
    parser.add_argument("--tables", action="store_true", help="run nothing: write course-runs.md again from "
                        "course-runs.json")
    parser.add_argument("--out-dir", metavar="DIR", default=str(ROOT / "docs"),
                        help="where course-runs.md and course-runs.json go (default: docs/)")
    parser.add_argument("--progress-every", type=float, default=60.0, metavar="S", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    out = Path(args.out_dir)
    if args.tables:
        table = read_table(out / "course-runs.json")
        write_tables(out, table)
        print(f"[course] {out / 'course-runs.md'} written from {out / 'course-runs.json'} "
              f"({len(table['rows'])} rows)", flush=True)
        return 0
    paths = select(args.notebooks)
    if args.stamp:
        return stamp_existing(paths)
    if args.notices:
        for path in paths:
            print(f"[course] {path.name}: notice {'rewritten' if refresh_notice(path) else 'up to date'}", flush=True)
        return 0
    if args.record and any(path.parent.name in ("solutions", "exercises") for path in paths):
        print("[course] --record writes outputs into notebooks/ only: solutions/ and exercises/ are committed "
              "without outputs.", file=sys.stderr)
        return 2
    if args.timeout is not None and args.timeout <= 0:
        print(f"[course] --timeout {args.timeout:g}: give a number of seconds above 0.", file=sys.stderr)
        return 2
    data = args.data or config.data_env()
    if args.full and not data:
        print("[course] --full runs the course on the full dataset: pass --data DIR (the folder with Training/ and "
              "Testing/), or set BRAINLAB_DATA.", file=sys.stderr)
        return 2
    if data and not (Path(data).expanduser() / "Training").is_dir():
        print(f"[course] {data} has no Training/ folder: pass --data the dataset folder that holds Training/ and "
              "Testing/.", file=sys.stderr)
        return 2
    mode = "full" if args.full else "quick"
    env = {**os.environ, "BRAINLAB_QUICK": "0" if args.full else "1"}
    if data:
        env["BRAINLAB_DATA"] = str(Path(data).expanduser().resolve())
    if args.full and "BRAINLAB_WEIGHTS" not in env and not imagenet_weights_reachable():
        env["BRAINLAB_WEIGHTS"] = "random"  # brainlab.models.default_weights: a random start, said in each headline
        print(f"[course] ImageNet weights are neither cached nor downloadable here: the ResNet50 notebooks start "
              f"from random weights, for timing only ({TIMING_ONLY}).", flush=True)
    machine = machine_info()
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for path in paths:
        print(f"[course] {path.stem} ({mode} mode) starts", flush=True)
        run = run_notebook(path, mode, env, args.timeout, args.progress_every)
        runs.append(run)
        print(f"[course] {run.notebook} ... {run.seconds:.0f} s, peak {run.peak_bytes / GIB:.1f} GiB, {run.status}"
              + "".join(f"\n[course]   Headline: {headline_text(numbers)}" for numbers in run.headlines), flush=True)
        if args.record:
            if run.ok:
                for note in record(path, run, machine_name(machine), env.get("BRAINLAB_DATA"), env):
                    print(f"[course]   {path.name}: {note}", flush=True)
                print(f"[course]   outputs recorded in {path}", flush=True)
            else:
                print(f"[course]   {path.name} failed: its outputs were not recorded", flush=True)
        write_tables(out, merge(out / "course-runs.json", runs, machine))  # after every notebook: a long run keeps its rows
        if args.record and run.ok and refresh_notice(path, out / "course-runs.json"):
            print(f"[course]   {path.name}: its needs-imagenet notice now says this run's time", flush=True)
    failed = [run.notebook for run in runs if not run.ok]
    print(f"[course] {len(runs) - len(failed)} of {len(runs)} notebooks ran; table in {out / 'course-runs.md'}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0
