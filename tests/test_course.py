"""Where the course lives: one setting, every badge and install line written from it, branches refused."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import brainlab
from brainlab import course
from brainlab.cli import main
from brainlab.config import COURSE_FOLDERS

REPO = Path(__file__).resolve().parents[1]


def copy_course(tmp_path: Path) -> Path:
    """The repository's notebooks and its course setting, copied into ``tmp_path/course``."""
    root = tmp_path / "course"
    for folder in COURSE_FOLDERS:
        shutil.copytree(REPO / folder, root / folder)
    (root / "brainlab").mkdir()
    shutil.copy(REPO / "brainlab" / "course.json", root / "brainlab" / "course.json")
    return root


def notebook_texts(root: Path) -> dict[str, str]:
    return {f"{folder}/{p.name}": p.read_text(encoding="utf-8")
            for folder in COURSE_FOLDERS for p in sorted((root / folder).glob("*.ipynb"))}


def test_the_setting_is_a_tag_named_after_the_version_and_this_checkout_agrees():
    assert course.REF == f"v{brainlab.__version__}", "until the project is published, the tag is named after the version"
    assert course.read_setting(REPO / "brainlab" / "course.json") == (course.REPOSITORY, course.REF)
    assert course.SETTING == REPO / "brainlab" / "course.json", "the setting the package reads is the checkout's"
    course.check_setting(course.REPOSITORY, course.REF, REPO)  # a pinned ref, not a branch
    assert course.apply(REPO, course.REPOSITORY, course.REF, check=True) == []
    assert main(["course-links", "--root", str(REPO), "--check"]) == 0


def test_rendered_strings():
    assert course.colab_url("notebooks/00_x.ipynb", "me/fork", "v2") == \
        "https://colab.research.google.com/github/me/fork/blob/v2/notebooks/00_x.ipynb"
    assert course.badge("exercises/00_x.ipynb", "me/fork", "abc123") == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/me/fork/blob/abc123/exercises/00_x.ipynb)")
    assert course.install_spec("me/fork", "v2") == "brainlab @ git+https://github.com/me/fork@v2"


def test_course_links_rewrites_every_badge_and_install_line_and_nothing_else(tmp_path, capsys):
    root = copy_course(tmp_path)
    before = notebook_texts(root)
    assert main(["course-links", "--root", str(root), "--repo", "someone/fork", "--ref", "v9.9.9"]) == 0
    out = capsys.readouterr().out
    after = notebook_texts(root)

    old_url = f"https://colab.research.google.com/github/{course.REPOSITORY}/blob/{course.REF}/"
    new_url = "https://colab.research.google.com/github/someone/fork/blob/v9.9.9/"
    old_spec, new_spec = course.install_spec(), course.install_spec("someone/fork", "v9.9.9")
    course_notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert sorted(after) == sorted(before) and len(before) == 3 * len(course_notebooks)  # notebooks, solutions, exercises
    changed_lines = 0
    for name, text in before.items():
        assert text.count(old_url) >= 1 and text.count(old_spec) == 1, f"{name}: no badge or install line to change"
        changed_lines += text.count(old_url) + text.count(old_spec)
        # the file is byte for byte what replacing the address gives: nothing else changed
        assert after[name] == text.replace(old_url, new_url).replace(old_spec, new_spec), name
        assert old_url not in after[name] and course.REPOSITORY not in after[name], name
    assert f"{changed_lines + 2} line(s) changed" in out  # and the two lines of the setting
    assert course.read_setting(root / "brainlab" / "course.json") == ("someone/fork", "v9.9.9")
    assert "notebooks/00_setup_and_data.ipynb:\n  - " in out and f"  + SPEC = \"{new_spec}\"" in out
    assert '  + "repository": "someone/fork"' in out and '  + "ref": "v9.9.9"' in out
    setting = json.loads((root / "brainlab" / "course.json").read_text())
    assert setting["about"] == json.loads((REPO / "brainlab" / "course.json").read_text())["about"], "other keys kept"
    assert not list((root / "brainlab").glob(".partial-*")), "written atomically, nothing left beside it"

    # the checkout now agrees with its new setting, and no longer with the old one
    assert main(["course-links", "--root", str(root), "--check"]) == 0
    assert main(["course-links", "--root", str(root), "--repo", course.REPOSITORY, "--ref", course.REF,
                 "--check"]) == 1
    assert notebook_texts(root) == after  # --check wrote nothing


def test_check_names_each_disagreeing_line_and_a_plain_run_fixes_it(tmp_path, capsys):
    root = copy_course(tmp_path)
    path = root / "solutions" / "04_residual_blocks.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(f"/blob/{course.REF}/", "/blob/main/")  # edited by hand
    path.write_bytes(course.notebook_bytes(nb))
    assert main(["course-links", "--root", str(root), "--check"]) == 1
    captured = capsys.readouterr()
    assert "solutions/04_residual_blocks.ipynb:\n  - [![Open In Colab]" in captured.out
    assert "/blob/main/solutions/04_residual_blocks.ipynb" in captured.out
    assert "1 line(s) disagree" in captured.err and "Run: brainlab course-links" in captured.err
    assert main(["course-links", "--root", str(root)]) == 0
    assert "1 line(s) changed" in capsys.readouterr().out
    assert notebook_texts(root) == notebook_texts(REPO)


@pytest.mark.parametrize("args, problem", [
    (["--ref", "main"], "'main' is a branch name"),
    (["--ref", "master"], "'master' is a branch name"),
    (["--ref", "HEAD"], "'HEAD' is a branch name"),
    (["--ref", "release/1.0"], "no '/'"),
    (["--repo", "just-a-name"], "give the GitHub repository as OWNER/NAME"),
    (["--repo", "https://github.com/me/fork"], "give the GitHub repository as OWNER/NAME"),
])
def test_moving_refs_and_bad_addresses_are_refused_and_nothing_is_written(tmp_path, capsys, args, problem):
    root = copy_course(tmp_path)
    before = notebook_texts(root), (root / "brainlab" / "course.json").read_text()
    assert main(["course-links", "--root", str(root), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("brainlab course-links: ") and problem in err and "Traceback" not in err
    assert (notebook_texts(root), (root / "brainlab" / "course.json").read_text()) == before


def test_a_branch_of_the_checkout_is_refused_but_its_tags_and_commits_are_taken(tmp_path, capsys):
    root = copy_course(tmp_path)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "brainlab"], ["commit", "-qm", "setting"], ["branch", "spring-term"],
                    ["tag", "v0.2.0"]):
        subprocess.run(git + command, check=True, capture_output=True)
    assert main(["course-links", "--root", str(root), "--ref", "spring-term"]) == 1
    assert "'spring-term' is a branch in this repository" in capsys.readouterr().err
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    for ref in ("v0.2.0", commit):
        assert main(["course-links", "--root", str(root), "--ref", ref]) == 0
        assert course.read_setting(root / "brainlab" / "course.json") == (course.REPOSITORY, ref)


def test_a_folder_that_is_not_the_course_is_one_clear_message(tmp_path, capsys):
    assert main(["course-links", "--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "is not a course checkout" in err and "brainlab/course.json" in err and "--root DIR" in err


@pytest.mark.parametrize("text, problem", [
    ("{not json", "is not JSON"),
    ('{"repository": "me/fork"}', 'must hold {"repository": "OWNER/NAME", "ref": "TAG"}'),
    ('["me/fork", "v1"]', 'must hold {"repository": "OWNER/NAME", "ref": "TAG"}'),
])
def test_a_damaged_setting_file_is_one_clear_message(tmp_path, capsys, text, problem):
    root = copy_course(tmp_path)
    (root / "brainlab" / "course.json").write_text(text)
    with pytest.raises(course.CourseSettingError, match=re.escape(problem)):
        course.read_setting(root / "brainlab" / "course.json")
    assert main(["course-links", "--root", str(root), "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("brainlab course-links: ") and problem in err and "Traceback" not in err
    with pytest.raises(course.CourseSettingError, match="is missing"):
        course.read_setting(tmp_path / "absent.json")


@pytest.mark.parametrize("damage", ["{not json", '{"repository": "me/fork"}', '["me/fork", "v1"]', None])
def test_course_links_writes_a_damaged_or_missing_setting_again(tmp_path, capsys, damage):
    root = copy_course(tmp_path)
    setting = root / "brainlab" / "course.json"
    if damage is None:
        setting.unlink()
    else:
        setting.write_text(damage)
    before = notebook_texts(root)
    # without both --repo and --ref there is nothing to write it from: the file is named, and how to set it
    assert main(["course-links", "--root", str(root), "--ref", course.REF]) == 1
    err = capsys.readouterr().err
    assert str(setting) in err and "brainlab course-links --repo OWNER/NAME --ref TAG" in err and "Traceback" not in err
    assert main(["course-links", "--root", str(root), "--repo", course.REPOSITORY, "--ref", course.REF]) == 0
    out = capsys.readouterr().out
    assert f"{setting}:\n  - {'(missing)' if damage is None else '(damaged)'}\n  + \"repository\": " in out
    assert "2 line(s) changed" in out, "the two lines of the setting; the notebooks already agreed"
    assert setting.read_bytes() == (REPO / "brainlab" / "course.json").read_bytes(), "written as it was, about included"
    assert notebook_texts(root) == before
    assert main(["course-links", "--root", str(root), "--check"]) == 0


def test_a_damaged_setting_stops_only_what_needs_the_address(tmp_path):
    """brainlab reads its course.json when the address is asked for: every other command still runs."""
    package = tmp_path / "package"
    shutil.copytree(REPO / "brainlab", package / "brainlab", ignore=shutil.ignore_patterns("__pycache__"))
    (package / "brainlab" / "course.json").write_text("{not json")
    script = ("import sys\n"
              "from brainlab import cli, course\n"
              "print('setting', course.SETTING)\n"
              "try:\n"
              "    course.install_spec()\n"
              "except course.CourseSettingError as exc:\n"
              "    print('refused:', exc)\n"
              "sys.exit(cli.main(['cache']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=package, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BRAINLAB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(package)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"setting {package / 'brainlab' / 'course.json'}\n" in done.stdout, "the copy's setting, not the checkout's"
    assert f"refused: {package / 'brainlab' / 'course.json'} is not JSON" in done.stdout
    assert f"brainlab cache: {tmp_path / 'cache'}" in done.stdout and "Traceback" not in done.stderr


RESULTS_DATA = {
    "title": "Measured results",
    "intro": ["Some prose."],
    "sections": [
        {"heading": "Trained from scratch", "blocks": [
            {"text": ["Some prose."]},
            {"table": {"columns": ["recipe", "split", "accuracy"],
                       "rows": [["small-cnn", "official-test", "0.486 ± 0.079"],
                                ["residual-cnn", "clean-test", "0.861 ± 0.008"]]}},
            {"text": ["More prose."]},
            {"table": {"columns": ["not", "this"], "rows": [["second", "table"]]}}]},
        {"heading": "Nothing measured", "blocks": [{"text": ["No table here."]}]},
        {"heading": "Next", "blocks": []},
    ],
}


def write_results(path: Path, data: dict = RESULTS_DATA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_measured_table_reads_the_first_table_under_its_heading(tmp_path):
    results = write_results(tmp_path / "results.json")
    table = course.measured_table("## Trained from scratch", results)
    assert list(table.columns) == ["recipe", "split", "accuracy"]
    assert table.values.tolist() == [["small-cnn", "official-test", "0.486 ± 0.079"],
                                     ["residual-cnn", "clean-test", "0.861 ± 0.008"]]
    assert course.measured_table("Trained from scratch", results).equals(table), "the heading with or without ##"
    with pytest.raises(course.MeasuredResultsError, match="no table under '## Nothing measured'"):
        course.measured_table("## Nothing measured", results)
    with pytest.raises(ValueError, match="has no section '## Missing'.*'## Next'"):  # a ValueError, as it always was
        course.measured_table("## Missing", results)
    assert course.measured_table("## Trained from scratch", tmp_path / "absent.json") is None


@pytest.mark.parametrize("text, problem", [
    ("{not json", "is not JSON"),
    ('{"sections": [{"heading": "A"}]}', 'expected {"sections": [{"heading": ..., "blocks": [...]}, ...]}'),
    ('{"sections": [{"heading": "A", "blocks": [{"table": {"columns": ["a", "b"], "rows": [["1"]]}}]}]}',
     "a table under 'A' needs \"columns\" and \"rows\" of as many cells each"),
])
def test_damaged_results_data_is_one_clear_message(tmp_path, text, problem):
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(course.MeasuredResultsError, match=re.escape(problem)):
        course.measured_table("## A", tmp_path / "results.json")


def test_measured_table_finds_docs_results_from_a_notebook_folder(tmp_path, monkeypatch):
    write_results(tmp_path / "docs" / "results.json")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert len(course.measured_table("## Trained from scratch")) == 2
    monkeypatch.chdir(tmp_path)
    assert len(course.measured_table("## Trained from scratch")) == 2
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # like Colab's /content: no clone around
    assert course.measured_table("## Trained from scratch") is None


def test_every_heading_the_notebooks_read_is_in_docs_results():
    repo = Path(__file__).resolve().parents[1]
    headings = set()
    for notebook in sorted((repo / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                headings |= set(re.findall(r'"(## [^"]+)"', cell.source))
    assert len(headings) >= 3, headings
    for heading in headings:
        assert len(course.measured_table(heading, repo / "docs" / "results.json")) >= 1, heading
