"""The two ways to install brainlab name the same dependencies, and Colab's TensorFlow is left alone."""
from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def conda_requirements() -> list[str]:
    text = (REPO / "environment.yml").read_text()
    lines = text[text.index("\ndependencies:"):].splitlines()
    reqs = [m.group(1) for line in lines if (m := re.match(r"^\s+- (?!pip:)([^#\s].*?)\s*$", line))]
    return [r for r in reqs if not r.startswith("-e") and _name(r) not in {"python", "pip"}]


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    project = pyproject()
    from_pyproject = {_name(r) for r in project["dependencies"]}
    for extra in ("test", "lab"):
        from_pyproject |= {_name(r) for r in project["optional-dependencies"][extra]}
    assert {_name(r) for r in conda_requirements()} == from_pyproject
    assert "-e .[test,lab]" in (REPO / "environment.yml").read_text()


def test_tensorflow_is_never_pinned_or_capped():
    """On Colab TensorFlow is preinstalled: a pin or an upper bound would make pip replace it."""
    for req in pyproject()["dependencies"] + conda_requirements():
        if _name(req) in {"tensorflow", "keras"}:
            assert "<" not in req and "==" not in req, req


def test_colab_keeps_its_ipywidgets_and_jupyterlab_gets_ipywidgets_8():
    """Colab preinstalls ipywidgets 7.7.1 and draws it with its own widget manager: installing brainlab keeps it.
    JupyterLab 4 draws only ipywidgets 8 widgets, so the extras that bring JupyterLab ask for 8."""
    from packaging.requirements import Requirement

    project = pyproject()
    base = [Requirement(r) for r in project["dependencies"] if _name(r) == "ipywidgets"]
    assert len(base) == 1 and base[0].specifier.contains("7.7.1") and base[0].specifier.contains("8.1.5")
    for extra in ("lab", "test"):
        with_lab = [Requirement(r) for r in project["optional-dependencies"][extra]]
        assert "jupyterlab" in {r.name for r in with_lab}
        widgets = [r for r in with_lab if r.name == "ipywidgets"]
        assert len(widgets) == 1 and not widgets[0].specifier.contains("7.7.1"), extra
        assert widgets[0].specifier.contains("8.1.5"), extra


def _task_commands(text: str) -> list[str]:
    return [c.split("#")[0].strip() for c in re.findall(r"^\s*(python3 tasks\.py \w+.*)$", text, flags=re.M)]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = _task_commands(readme)
    assert "python3 tasks.py test" in commands
    assert commands[0] == "python3 tasks.py lab", "the README starts with opening the course"
    # The other jobs are shown in the docs pages the README links (docs/commands.md, colab.md, maintaining.md).
    linked = sorted(set(re.findall(r"\]\((docs/[\w.-]+\.md)", readme)))
    documented = commands + [c for page in linked if (REPO / page).is_file()
                             for c in _task_commands((REPO / page).read_text())]
    assert sorted({c.split()[2] for c in documented}) == ["course", "demo", "lab", "test", "wheel"]
    assert "python3 tasks.py wheel" in documented
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set", "cd"))]
    assert ci[-1] == "python3 tasks.py test"
    # The one step before it installs Chromium for tests/test_browser.py, and only when it is missing.
    assert ci[:-1] == ["if [ ! -x /usr/bin/chromium ]; then apt-get update -qq && apt-get install -y -qq chromium; fi"]


def test_sample_and_checksums_ship_as_package_data():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["brainlab"]
    assert any(p.startswith("sample") for p in data) and any(p.startswith("checksums") for p in data)
