"""The README stays a short front page, and every link of it and of docs/ leads somewhere.

The README says what brainlab is, the commands to type, the data, the course and the licence; the
reference (commands, settings, Colab, the widget evidence, times, maintenance) lives in docs/ pages
that it links. These tests keep it that way: the first command is on the first screen, the page
stays a five-minute read, and a link to a moved or renamed page or heading fails here instead of
in a reader's browser.
"""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FIRST_SCREEN = 40  # lines a terminal or a GitHub page shows before the reader scrolls
MAX_README_CHARS = 12_000  # about five minutes of reading, course table included
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_the_readme_shows_the_first_command_on_its_first_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("python3 tasks.py "))
    assert lines[first] == "python3 tasks.py lab" and first < FIRST_SCREEN, (
        f"README.md: the first command is on line {first + 1}; keep `python3 tasks.py lab` within the "
        f"first {FIRST_SCREEN} lines")
    assert "python3 tasks.py test" in lines[:FIRST_SCREEN]


def test_the_readme_stays_short_and_leaves_reference_to_docs():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= MAX_README_CHARS, (
        f"README.md has {len(text)} characters (at most {MAX_README_CHARS}): move reference text to a "
        "page in docs/ and link it")
    assert "| setting |" not in text and "| command |" not in text, "the settings and commands tables live in docs/"
    for page in ("docs/commands.md", "docs/settings.md", "docs/colab.md", "docs/widgets-on-colab.md",
                 "docs/course-times.md", "docs/maintaining.md"):
        assert f"]({page})" in text, f"README.md does not link {page}"


def test_every_link_of_the_readme_and_docs_leads_to_a_file_and_heading():
    broken = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            if not goal.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
                broken.append(f"{page.relative_to(REPO)}: {target} (no heading #{anchor} in {goal.name})")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)
