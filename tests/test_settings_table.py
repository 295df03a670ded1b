"""docs/settings.md is the settings registry rendered, and every BRAINLAB_* variable the course uses is in it."""
from __future__ import annotations

import re

from brainlab import settings
from conftest import REPO

PAGE = REPO / "docs" / "settings.md"
REGENERATE = "python -c \"from brainlab import settings; print(settings.markdown(), end='')\" > docs/settings.md"


def test_docs_settings_md_is_the_registry_rendered():
    assert PAGE.read_text(encoding="utf-8") == settings.markdown(), (
        f"docs/settings.md and brainlab/settings.py differ: change the registry, then run {REGENERATE}")
    assert REGENERATE in PAGE.read_text(encoding="utf-8")  # the page says how it is written


def test_every_setting_has_one_row_with_its_meaning_and_default():
    rows = [line for line in settings.markdown().splitlines() if line.startswith("| `BRAINLAB_")]
    assert [re.match(r"\| `(\w+)`", row).group(1) for row in rows] == list(settings.SETTINGS)
    for row, setting in zip(rows, settings.SETTINGS.values()):
        cells = row.strip("|").split(" | ")
        assert len(cells) == 4 and all(cell.strip() for cell in cells), row
        assert setting.meaning.replace("|", "\\|") in row and setting.unset in row


def test_every_brainlab_variable_of_the_package_the_tools_and_the_docs_is_declared():
    """As `grep -rn BRAINLAB_ brainlab tools tasks.py README.md docs` finds them (the tests' own knobs aside)."""
    files = [*(REPO / "brainlab").rglob("*.py"), *(REPO / "tools").rglob("*.py"), REPO / "tasks.py",
             REPO / "README.md", *(REPO / "docs").glob("*.md")]
    used = {name for path in files for name in re.findall(r"BRAINLAB_[A-Z][A-Z_]*[A-Z]", path.read_text("utf-8"))}
    assert used - set(settings.SETTINGS) == set(), "declare each of these in brainlab/settings.py"


def test_every_declared_setting_is_read_somewhere():
    """No declaration outlives its variable: each is named by code other than the registry (or by a notebook)."""
    code = [p for p in (REPO / "brainlab").rglob("*.py") if p.name != "settings.py"]
    code += [*(REPO / "tools").rglob("*.py"), REPO / "tasks.py", *(REPO / "notebooks").glob("*.ipynb")]
    named = {name for path in code for name in re.findall(r"BRAINLAB_[A-Z][A-Z_]*[A-Z]", path.read_text("utf-8"))}
    assert set(settings.SETTINGS) - named == set()
