"""docs/results.md, rendered from docs/results.json: the measured results are data, the page is made from them.

    .venv/bin/python -m tools.results_page           # write docs/results.md from docs/results.json
    .venv/bin/python -m tools.results_page --check   # exit 1, saying so, where the page and the data differ

docs/results.json holds the whole page in reading order (see :func:`brainlab.course.read_results`):
a title, the opening prose, then sections, each a heading with blocks that are prose (a list of
lines, markdown as written) or a table (columns, rows of text cells, and optionally each column's
alignment). Notebooks read the tables from it (``brainlab.course.measured_table``); a new measurement
goes into it, e.g. as the rows ``python -m tools.results_table --json RUN_FOLDERS...`` prints, and
this command writes the page again. tests/test_results_table.py fails while the page and the data differ.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brainlab import runs
from brainlab.course import read_results
from tools import ROOT
from tools.markdown import markdown_table

__all__ = ["RESULTS_JSON", "RESULTS_MD", "NOTE", "render", "dumps", "main"]

RESULTS_JSON = ROOT / "docs" / "results.json"
RESULTS_MD = ROOT / "docs" / "results.md"
NOTE = "<!-- Rendered from results.json by `python -m tools.results_page`: edit that file, then run it. -->"
PROSE = frozenset({"intro", "text"})  # the keys whose lists are lines of prose, written one per line in the JSON


def _block(block: dict) -> list[str]:
    if "table" in block:
        table = block["table"]
        return markdown_table(table["columns"], table["rows"], table.get("align")).split("\n")
    return list(block["text"])


def render(data: dict) -> str:
    """The markdown page of ``data`` (the content of docs/results.json): blocks apart by one empty line."""
    lines = [NOTE, f"# {data['title']}", "", *data.get("intro", [])]
    for section in data["sections"]:
        lines += ["", f"## {section['heading']}"]
        for block in section["blocks"]:
            lines += ["", *_block(block)]
    return "\n".join(lines) + "\n"


def dumps(value, key: str | None = None, level: int = 0) -> str:
    """``value`` as JSON the way docs/results.json is kept: a table row, or its columns, on one line each."""
    inline = isinstance(value, list) and key not in PROSE and not any(isinstance(v, (list, dict)) for v in value)
    if not isinstance(value, (list, dict)) or inline or not value:
        return json.dumps(value, ensure_ascii=False)
    pad, end = " " * (level + 1), " " * level
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {dumps(v, k, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    items = [pad + dumps(v, None if key == "rows" else key, level + 1) for v in value]
    return "[\n" + ",\n".join(items) + f"\n{end}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.results_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if docs/results.md is not "
                        "what docs/results.json renders to")
    parser.add_argument("--data", type=Path, default=RESULTS_JSON, help=argparse.SUPPRESS)
    parser.add_argument("--page", type=Path, default=RESULTS_MD, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = render(read_results(args.data))
    current = args.page.read_text(encoding="utf-8") if args.page.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.page} differs from what {args.data} renders to: edit {args.data.name}, not the page, "
                  "then run python -m tools.results_page", file=sys.stderr)
            return 1
        print(f"{args.page} is rendered from {args.data}.")
        return 0
    if current != text:
        runs.write_text(args.page, text)
    print(f"{args.page} {'written' if current != text else 'already up to date'} from {args.data}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
