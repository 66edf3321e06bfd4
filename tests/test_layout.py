"""The library's shape, as the code has it: sub-packages with a public API, floors that
import only downwards, no cycles, short functions, and the lists in the docs true."""

import ast
import importlib
import pathlib
import re
import sys
import sysconfig
from importlib.metadata import distributions

import pytest

import mnistdist

from helpers import REPO

PACKAGE = pathlib.Path(mnistdist.__file__).parent
#: The floors, from the lowest up: the order of the package's docstring.
FLOORS = re.findall(r"^- ``(\w+)``", mnistdist.__doc__, flags=re.M)
SUB_PACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
MAX_BODY_LINES = 60


def _modules(root: pathlib.Path, prefix: str) -> dict[str, pathlib.Path]:
    return {
        prefix + ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }


LIBRARY = _modules(PACKAGE, "mnistdist.")
JOBS = _modules(REPO / "jobs", "jobs.")


def _imports(name: str, path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` that a module imports from mnistdist, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            names = [a.name for a in node.names]
            if module == "mnistdist" or module.startswith("mnistdist."):
                found.append((module, names))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("mnistdist")]
    return found


def _package(module: str) -> str:
    """The floor a module is on: its sub-package, or ``errors`` and ``config``; else ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else ""


def test_at_most_five_modules_at_the_top_and_every_package_in_the_floors():
    top = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 5, top
    assert sorted(FLOORS) == sorted(
        SUB_PACKAGES + [p.removesuffix(".py") for p in top if not p.startswith("_")]
    )


@pytest.mark.parametrize("name", SUB_PACKAGES)
def test_every_sub_package_exports_its_api_with_all(name):
    package = importlib.import_module(f"mnistdist.{name}")
    assert package.__all__ == sorted(package.__all__, key=lambda s: (not s.isupper(), s))
    for symbol in package.__all__:
        assert hasattr(package, symbol), symbol
    modules = [p for p in (PACKAGE / name).glob("*.py") if p.name != "__init__.py"]
    assert all(p.name.startswith("_") for p in modules), "modules behind the package are private"


def test_imports_go_down_the_floors_and_never_into_another_packages_privates():
    for name, path in LIBRARY.items():
        own = _package(name)
        for module, names in _imports(name, path):
            other = _package(module)
            if other in ("", own) or own == "":
                continue
            where = f"{name} imports {module}"
            assert FLOORS.index(other) < FLOORS.index(own), f"{where}: up the floors"
            assert module == f"mnistdist.{other}", f"{where}: a private module"
            assert not any(n.startswith("_") for n in names), f"{where}: a private name"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` (module -> modules it imports), or None: depth-first, by colours."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_cycle_in_the_library_or_the_jobs():
    graph = {}
    for name, path in {**LIBRARY, **JOBS}.items():
        targets = set()
        for module, names in _imports(name, path):
            submodules = {f"{module}.{n}" for n in names} & LIBRARY.keys()
            targets |= submodules or {module}  # ``from . import _figures``: the module
        graph[name] = targets & LIBRARY.keys()
    assert _find_cycle(graph) is None, _find_cycle(graph)
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_function_body_over_60_lines():
    long = []
    for path in [*LIBRARY.values(), *JOBS.values()]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                if body and body[-1].end_lineno - body[0].lineno + 1 > MAX_BODY_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert not long, long


def test_the_jobs_folder_holds_entry_points_only():
    """Nothing in jobs/ is imported: each file names its job and calls the command."""
    assert not (REPO / "jobs" / "__init__.py").exists()
    for path in JOBS.values():
        assert "from mnistdist.cli import main" in path.read_text(), path


def test_the_installed_distribution_holds_no_top_level_package_but_mnistdist():
    # The one in site-packages: a source tree's mnistdist.egg-info lists the tests too.
    purelib = sysconfig.get_paths()["purelib"]
    (installed,) = [d for d in distributions(path=[purelib]) if d.metadata["Name"] == "mnistdist"]
    files = installed.files or []
    if any("__editable__" in str(f) for f in files):
        pytest.skip("an editable install lists no package files; .ci/run installs a wheel")
    tops = {f.parts[0] for f in files if f.suffix == ".py" and ".." not in f.parts}
    assert tops == {"mnistdist"}, tops
    # Every file the package reads (settings, presets, cluster specs) ships with it.
    shipped = {f.as_posix() for f in files}
    data = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "mnistdist").rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    }
    assert data <= shipped, sorted(data - shipped)


@pytest.mark.parametrize("doc", ["architecture.md", "library.md"])
def test_the_docs_name_every_sub_package(doc):
    text = (REPO / "docs" / doc).read_text()
    missing = [
        name for name in SUB_PACKAGES if f"`{name}`" not in text and f"`{name}/`" not in text
    ]
    assert not missing, missing


def test_old_module_paths_import_with_a_deprecation_warning():
    sys.modules.pop("mnistdist.knn", None)
    with pytest.warns(DeprecationWarning, match="mnistdist.knn is deprecated.*mnistdist.neighbors"):
        old = importlib.import_module("mnistdist.knn")
    from mnistdist.neighbors import KNNClassifier

    assert old.KNNClassifier is KNNClassifier
