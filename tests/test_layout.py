"""The package's folders are its architecture: its imports point one way, and the README says so.

Read from the source, never by importing it: every import statement counts, those inside a
function (lazy) or under ``TYPE_CHECKING`` too. A module imports another when it names it (``from
autograder.x import y`` imports ``autograder.x.y`` if that is a module, else ``autograder.x``);
``harness.py`` imports its neighbours in ``sandbox/inside/`` by bare name, as it runs there as a
script with that folder as its import path, and those count as imports of the neighbours.
"""

from __future__ import annotations

import ast
import importlib
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import LONGEST_FIRST

from autograder.paths import ROOT

PACKAGE = ROOT / "autograder"
# Lowest first. A module may import its own unit and the units of lower layers, nothing above
# or beside it (the entry points excepted, which may use each other). Every module must be in a
# unit here: a new folder or top-level module has to be placed, and the README row says where.
LAYERS = (
    # Import nothing of the package outside themselves: what students receive, what runs next
    # to student code, and what everything shares.
    ("kit", "sandbox.inside", "paths", "untrusted", "notebooks"),
    # The course calendar: read by grading's gradebook, the pages, the exports and nbgrader's side.
    ("deadlines",),
    ("sandbox",),
    ("grading", "intake"),
    ("outputs",),
    ("integration",),
    ("course_build",),
    ("__init__", "__main__", "batch", "regrade"),
)
MAX_TOP_LEVEL_MODULES = 12


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _named(module: str, names: list[str]) -> set[str]:
    """What ``from module import names`` imports: each name that is a submodule, else module."""
    return {
        f"{module}.{name}" if f"{module}.{name}" in modules() else module
        for name in names
    }


def imports(name: str) -> set[str]:
    """The package's modules that ``name`` imports, wherever the statement is."""
    path = modules()[name]
    package = name if _is_package(name) else name.rpartition(".")[0]
    neighbours = {p.stem for p in path.parent.glob("*.py")} - {"__init__"}
    bare_neighbours = unit(name) == "sandbox.inside"  # run as scripts from their folder
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "autograder":
                    found.add(alias.name)
                elif bare_neighbours and alias.name in neighbours:
                    found.add(f"{package}.{alias.name}")
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:  # relative: from the package, or that many levels up
                base = package.rsplit(".", node.level - 1)[0]
                found |= _named(f"{base}.{node.module}" if node.module else base, names)
            elif node.module.split(".")[0] == "autograder":
                found |= _named(node.module, names)
            elif bare_neighbours and node.module in neighbours:
                found.add(f"{package}.{node.module}")
    unknown = found - set(modules())
    assert not unknown, f"{name} imports what the package does not have: {unknown}"
    return found


def unit(name: str) -> str:
    """The layer unit a module belongs to: its subpackage (the deepest listed), or itself."""
    relative = name.removeprefix("autograder").removeprefix(".") or "__init__"
    units = sorted((u for layer in LAYERS for u in layer), key=len, reverse=True)
    return next(
        (u for u in units if relative == u or relative.startswith(u + ".")), relative
    )


def layer(name: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit(name) in units)


def graph() -> dict[str, set[str]]:
    return {name: imports(name) for name in modules()}


def closure(name: str, edges: dict[str, set[str]]) -> set[str]:
    """Everything ``name`` imports, directly or through others."""
    seen, todo = set(), [name]
    while todo:
        for target in edges[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (Tarjan's strongly connected components of more than one module, or
    one that imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_place_in_the_layers():
    units = {u for layer in LAYERS for u in layer}
    assert {name: unit(name) for name in modules() if unit(name) not in units} == {}


def test_no_import_cycles_lazy_imports_included():
    assert cycles(graph()) == []


def test_each_part_imports_only_the_parts_below_it():
    top = len(LAYERS) - 1
    upward = sorted(
        f"{name} ({unit(name)}) imports {target} ({unit(target)})"
        for name, targets in graph().items()
        for target in targets
        if unit(target) != unit(name)
        and layer(target) >= layer(name)
        and not layer(target) == layer(name) == top
    )
    assert upward == []


def test_the_kit_imports_nothing_of_the_package_and_itself_relatively():
    """Students get kit/ alone, renamed ``channels_kit``: an absolute import would break there."""
    kit = {name for name in modules() if unit(name) == "kit"}
    outside = {name: sorted(closure(name, graph()) - kit) for name in sorted(kit)}
    assert kit and all(found == [] for found in outside.values()), outside
    for name in kit:
        for node in ast.walk(ast.parse(modules()[name].read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] != "autograder", (name, node.module)


def test_the_sandbox_bound_folder_imports_nothing_else_and_is_what_is_bound():
    from autograder.sandbox.runner import BOUND_FILES, HARNESS

    inside = {name for name in modules() if unit(name) == "sandbox.inside"}
    for name in inside:
        assert imports(name) <= inside - {"autograder.sandbox.inside"}, name
    folder = HARNESS.parent
    assert sorted(BOUND_FILES) == sorted(
        set(folder.glob("*.py")) - {folder / "__init__.py"}
    )


def test_instructor_outputs_never_import_the_sandbox_not_even_through_others():
    edges = graph()
    reach = {
        name: sorted(t for t in closure(name, edges) if unit(t).startswith("sandbox"))
        for name in modules()
        if unit(name) == "outputs"
    }
    assert reach and all(targets == [] for targets in reach.values()), reach


def test_at_most_a_dozen_modules_directly_under_the_package():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


# The README: its layout table has a row per folder of the package, naming every file there.
README = ROOT / "README.md"
ASSET = re.compile(r"^[\w.-]+\.(?:py|css|mjs)$")


def layout_rows() -> dict[str, str]:
    """The README's Layout table: first cell's path -> the rest of the row."""
    section = README.read_text().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([^`]+)` \|(.*)\|$", line)
        if match:
            rows[match[1]] = match[2]
    return rows


def package_folders() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.rglob("__init__.py"))


def files_to_name(folder: Path) -> set[str]:
    """The files of a package folder that its README row must name (a subpackage's
    ``__init__.py``, only a docstring, is the row itself)."""
    files = {
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.suffix in {".py", ".css", ".mjs"}
    }
    return files - {"__init__.py"} if folder != PACKAGE else files


@pytest.mark.parametrize(
    "folder", package_folders(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_readme_layout_has_a_row_per_folder_naming_every_file(folder):
    rows = layout_rows()
    key = f"{folder.relative_to(ROOT)}/"
    assert key in rows, f"the README's Layout table has no row for {key}"
    named = {
        token
        for token in re.findall(r"`([^`]+)`", rows[key])
        if ASSET.match(token) or (token.endswith("/") and "/" not in token[:-1])
    }
    missing = files_to_name(folder) - named
    assert not missing, f"{key} row does not name {sorted(missing)}"
    # A name is a file of the folder, or one at the root the row refers to (nbgrader_config.py).
    stale = {t for t in named if not (folder / t).exists() and not (ROOT / t).exists()}
    assert not stale, f"{key} row names what is not in {key}: {sorted(stale)}"


def test_the_readme_layout_has_no_row_for_a_folder_that_is_not_a_package():
    rows = [path for path in layout_rows() if path.startswith("autograder")]
    folders = {f"{p.relative_to(ROOT)}/" for p in package_folders()}
    assert set(rows) <= folders


@pytest.mark.parametrize(
    "source",
    ["README.md", "Makefile", "nbgrader_config.py", ".github/workflows/gpu.yml"],
)
def test_every_package_or_test_path_mentioned_exists(source):
    text = (ROOT / source).read_text()
    paths = set(re.findall(r"\b((?:autograder|tests)/[\w./*-]*[\w*/])", text))
    assert paths, source
    missing = sorted(p for p in paths if not list(ROOT.glob(p.rstrip("/"))))
    assert missing == []


@pytest.mark.parametrize("source", ["README.md", "nbgrader_config.py"])
def test_every_dotted_name_of_the_package_mentioned_resolves(source):
    names = set(re.findall(r"\bautograder(?:\.\w+)+", (ROOT / source).read_text()))
    assert names, source
    unresolved = []
    for name in sorted(names):
        parts = name.split(".")
        known = max(
            i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules()
        )
        target = importlib.import_module(".".join(parts[:known]))
        for attribute in parts[known:]:
            target = getattr(target, attribute, None)
        if target is None:
            unresolved.append(name)
    assert unresolved == []


def test_the_files_make_test_starts_first_exist():
    """A renamed long file would silently start last again (see LONGEST_FIRST)."""
    assert [path for path in LONGEST_FIRST if not (ROOT / path).is_file()] == []
