"""What a brainlab module offers is what its ``__all__`` says, and what the course uses is offered.

A module's ``__all__`` is its public face: the entry points that notebooks, the command line,
the tools and the other modules call. Everything else a module defines is private (its name
starts with ``_``). These tests keep that true:

- every public top-level name a module defines (function, class, constant) is in its
  ``__all__`` or starts with ``_``; a package's ``__init__`` offers what it imports, so there
  the names it takes from its parts count too. A name a plain module imports from another is
  its own business (Python's convention: imported names are implementation details);
- every name in ``__all__`` exists, once;
- every ``from brainlab... import ...`` and every ``module.attr`` in the code cells of
  notebooks/ and solutions/, and in the package and tools/, resolves and names something the
  module offers in ``__all__`` (or one of its submodules): one way to reach each name, the owner's.
"""
from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import nbformat
import pytest

from test_imports import modules

REPO = Path(__file__).resolve().parents[1]
COURSE = sorted([*(REPO / "notebooks").glob("*.ipynb"), *(REPO / "solutions").glob("*.ipynb")])
MODULES = sorted(set(modules()) - {"brainlab.__main__"})  # `python -m brainlab` runs the CLI: nothing to import


def top_level_statements(body: list[ast.stmt]):
    """The statements a module runs at import, inside ``if``/``try``/``with`` blocks too, not inside functions."""
    for node in body:
        yield node
        for block in ("body", "orelse", "finalbody"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from top_level_statements(getattr(node, block, []))
        for handler in getattr(node, "handlers", []):
            yield from top_level_statements(handler.body)


def bound_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in bound_names(element)]
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    return []  # an attribute or subscript binds no name of the module


def public_names(name: str) -> set[str]:
    """The names without a leading underscore that module ``name`` offers by defining them at its top level.

    Defined: ``def``, ``class`` and assignments, inside top-level ``if``/``try`` blocks too. In a
    package's ``__init__``, whose job is to offer its parts' names, what it takes with
    ``from brainlab... import x`` (or a relative import) counts as well. Imported modules never
    count, nor names that the module does not hold once imported (``if TYPE_CHECKING:``).
    """
    module = importlib.import_module(name)
    path = Path(module.__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in top_level_statements(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found.update(n for target in node.targets for n in bound_names(target))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            found.update(bound_names(node.target))
        elif isinstance(node, ast.ImportFrom) and path.name == "__init__.py" and \
                (node.level or (node.module or "").split(".")[0] == "brainlab"):
            found.update(alias.asname or alias.name for alias in node.names if alias.name != "*")
    return {n for n in found if not n.startswith("_") and hasattr(module, n)
            and not isinstance(getattr(module, n), types.ModuleType)}


def test_the_parser_sees_definitions_and_a_package_s_imports_and_skips_modules_and_imports():
    names = public_names("brainlab.audit.within")
    assert {"AuditResult", "audit_dataset"} <= names  # a class and a function defined there
    assert not {"datasets", "images", "Path", "pd", "np", "dataclass", "BrainlabError"} & names  # imported
    assert "BOX_QUANTILE" in public_names("brainlab.images")  # a constant
    assert {"audit_dataset", "run_audit"} <= public_names("brainlab.audit")  # a package offers its parts' names


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_is_in_all_or_private(name):
    module = importlib.import_module(name)
    offered = set(getattr(module, "__all__", ()))
    stray = sorted(public_names(name) - offered)
    assert not stray, (f"{name} holds public names that are not in its __all__: {stray}. Add what other modules, "
                       f"the notebooks or the tools use to __all__; start the rest with an underscore")


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists_once(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ lists a name twice"


# ----------------------------------------------------------------------------- what the course and the code use

SOURCES = sorted([*(REPO / "brainlab").rglob("*.py"), *(REPO / "tools").rglob("*.py"), REPO / "tasks.py"])


def cell_code(source: str) -> str:
    """A code cell as Python: IPython's ``%magic``, ``!shell`` and ``?help`` lines become blank lines."""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in source.splitlines())


def resolve(module_name: str, attr: str):
    """``module_name.attr`` as Python finds it: an attribute, or else a submodule; AttributeError if neither."""
    module = importlib.import_module(module_name)
    if hasattr(module, attr):
        return getattr(module, attr)
    try:
        return importlib.import_module(f"{module_name}.{attr}")
    except ModuleNotFoundError:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}") from None


def offered(module: types.ModuleType, attr: str) -> bool:
    return attr in getattr(module, "__all__", ()) or f"{module.__name__}.{attr}" in modules()


class BrainlabUses(ast.NodeVisitor):
    """Walks code in order and records each use of a brainlab name that is wrong.

    ``names`` maps a variable to the brainlab module it holds (``from brainlab import data``,
    ``import brainlab``); assigning the variable something else ends that, and a function's
    parameters hide it inside the function. A use is wrong when it does not resolve, or
    resolves to something that the module's ``__all__`` does not offer.
    """

    def __init__(self, where: str):
        self.where, self.names, self.problems, self.cell = where, {}, [], ""

    def report(self, node: ast.AST, what: str):
        self.problems.append(f"{self.where}{self.cell} line {node.lineno}: {what}")

    def use(self, node: ast.AST, module: types.ModuleType, attr: str):
        try:
            value = resolve(module.__name__, attr)
        except AttributeError:
            self.report(node, f"{module.__name__}.{attr} does not exist")
            return None
        if not offered(module, attr):
            self.report(node, f"{module.__name__}.{attr} is not in {module.__name__}.__all__")
        return value

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "brainlab":
                bound = alias.asname or "brainlab"
                self.names[bound] = importlib.import_module(alias.name if alias.asname else "brainlab")

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if (node.module or "").split(".")[0] != "brainlab" or node.level:
            return
        module = importlib.import_module(node.module)
        for alias in node.names:
            value = self.use(node, module, alias.name)
            bound = alias.asname or alias.name
            if isinstance(value, types.ModuleType):
                self.names[bound] = value
            else:
                self.names.pop(bound, None)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        outside = dict(self.names)
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
            if arg is not None:
                self.names.pop(arg.arg, None)
        self.generic_visit(node)
        self.names = outside  # what a function binds stays inside it

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def module_of(self, node: ast.expr) -> types.ModuleType | None:
        """The brainlab module an expression such as ``data`` or ``brainlab.audit`` stands for, if any."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self.module_of(node.value)
            if parent is not None:
                value = getattr(parent, node.attr, None)
                return value if isinstance(value, types.ModuleType) else None
        return None

    def visit_Attribute(self, node: ast.Attribute):
        module = self.module_of(node.value)
        if module is not None and isinstance(node.ctx, ast.Load):
            self.use(node, module, node.attr)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Store):
            self.names.pop(node.id, None)  # e.g. `images = np.stack(...)`: no longer the module

    def visit_code(self, code: str, filename: str):
        for statement in ast.parse(code, filename=filename).body:  # in order: an import binds the lines after it
            self.visit(statement)

    def visit_notebook(self, path: Path):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                self.cell = f" cell {cell.get('id', '?')}"
                self.visit_code(cell_code(cell.source), f"{path.name}:{self.cell}")


def test_the_checker_finds_a_missing_name_an_internal_and_knows_a_shadowed_module(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%matplotlib inline\nfrom brainlab import data, images\nimport brainlab",
        "x = data.no_such_function()\ny = brainlab.images.read_image\nz = images.np\nw = brainlab.audit.within",
        "def f(images):\n    return images.shape\nv = images.read_image",
        "from brainlab.images import nothing_here\nimages = [1, 2]\nimages.append(3)",
    )]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    checker = BrainlabUses("probe")
    checker.visit_notebook(tmp_path / "probe.ipynb")
    found = [p.split(": ", 1)[1] for p in checker.problems]
    assert found == ["brainlab.data.no_such_function does not exist",
                     "brainlab.images.np is not in brainlab.images.__all__",
                     "brainlab.images.nothing_here does not exist"]


@pytest.mark.parametrize("path", COURSE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_what_the_course_imports_and_uses_exists_and_is_offered(path):
    checker = BrainlabUses(f"{path.parent.name}/{path.name}")
    checker.visit_notebook(path)
    assert not checker.problems, "\n".join(checker.problems)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_what_the_package_and_the_tools_take_from_brainlab_is_offered(path):
    """A module that needs another's name finds it in that module's ``__all__``: internals stay internal."""
    checker = BrainlabUses(path.relative_to(REPO).as_posix())
    checker.visit_code(path.read_text(encoding="utf-8"), str(path))
    assert not checker.problems, "\n".join(checker.problems)
