"""No two brainlab modules import each other, directly or through others, not even inside a function;
every module is reachable as ``brainlab.<module>``. What each offers (``__all__``): tests/test_public_api.py."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import brainlab

PACKAGE = Path(brainlab.__file__).parent

# The import cycles that still exist, each as the sorted names of the modules in it: none. A cycle
# not listed here fails the test, and so does one listed here that no longer exists (so the list
# never claims more than is true).
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The brainlab modules that ``path`` imports anywhere in its code, at the top or inside functions.

    ``from brainlab import data`` counts as importing ``brainlab.data``; a name that is not a
    module (``from brainlab.data import scan``) counts as importing the module it comes from. Importing a
    submodule does not count as importing its parent package (Python runs the parent's
    ``__init__`` first, but that is not a dependency the code chose).
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(path, set(known)) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components with more than one module: every module in one imports every other."""
    names = sorted(graph)
    index = {n: i for i, n in enumerate(names)}
    edges = [(index[a], index[b]) for a, targets in graph.items() for b in targets]
    rows, cols = zip(*edges) if edges else ((), ())
    matrix = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups = [tuple(n for n, label in zip(names, labels) if label == k) for k in set(labels)]
    return {g for g in groups if len(g) > 1}


def test_the_parser_sees_imports_inside_functions_and_from_package_imports():
    graph = import_graph()
    assert "brainlab.download" in graph["brainlab.data"]  # `from brainlab.download import fetch_data` in find_data
    assert "brainlab.catalogue" in graph["brainlab.download"]
    assert {"brainlab.audit.within", "brainlab.audit.across"} <= graph["brainlab.audit"]
    assert "brainlab.audit" in graph["brainlab.cli"]  # `from brainlab.audit import run_audit` in cmd_audit
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}


def test_the_catalogue_and_the_decoder_sit_below_the_loader_and_the_downloader():
    graph = import_graph()
    assert graph["brainlab.images"] <= {"brainlab.errors"}
    assert graph["brainlab.catalogue"] <= {"brainlab.cache", "brainlab.errors", "brainlab.images"}
    assert "brainlab.data" not in graph["brainlab.download"]
    for part in ("thumbnails", "matching", "groups", "shortcuts", "within", "report"):
        assert "brainlab.audit" not in graph[f"brainlab.audit.{part}"], part  # parts import each other, not the package


def imports_outside(path: Path) -> set[str]:
    """The top-level names of every package ``path`` imports, anywhere in its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add((node.module or "").split(".")[0])
    return found


def test_explain_computes_and_plots_draws():
    graph = import_graph()
    assert "brainlab.plots" not in graph["brainlab.explain"]
    assert not {"matplotlib", "seaborn"} & imports_outside(modules()["brainlab.explain"])
    assert "brainlab.explain" not in graph["brainlab.plots"]  # plots draws maps it is given


def test_no_import_cycles_beyond_the_known_ones():
    graph = import_graph()
    found = cycles(graph)
    new = found - KNOWN_CYCLES
    assert not new, "import cycle(s): " + "; ".join(
        " ".join(f"{a}->{b}" for a in cycle for b in sorted(graph[a]) if b in cycle) for cycle in sorted(new))
    gone = KNOWN_CYCLES - found
    assert not gone, f"{sorted(gone)} no longer form a cycle: remove them from KNOWN_CYCLES"


def test_every_module_is_an_attribute_of_the_package_in_a_fresh_interpreter():
    """``brainlab.<module>`` works without importing it first, for every module pkgutil finds."""
    code = """if True:
        import importlib, pkgutil, sys
        import brainlab
        names = [m.name for m in pkgutil.iter_modules(brainlab.__path__) if m.name != "__main__"]
        print(len(names))
        for name in names:
            try:
                lazy = brainlab.__getattr__(name)  # the lazy path, even where an import set the attribute
            except AttributeError as exc:
                sys.exit(f"brainlab.{name}: {exc}")
            assert lazy is getattr(brainlab, name) is sys.modules[f"brainlab.{name}"], name
        """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) == len({n.split(".")[1] for n in modules() if n.count(".") >= 1} - {"__main__"})


def test_the_class_names_are_defined_once():
    """brainlab.catalogue.CLASS_NAMES is the one list: the package, the tools and the tests import it."""
    from brainlab.catalogue import CLASS_NAMES

    root = PACKAGE.parent
    defined_in = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(root / "tools").glob("*.py"), *(root / "tests").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, (ast.Tuple, ast.List)) and \
                    [getattr(e, "value", None) for e in value.elts] == list(CLASS_NAMES):
                defined_in.append(path.relative_to(root).as_posix())
    assert defined_in == ["brainlab/catalogue.py"]
