"""No two modules of lmdesk import each other, directly or through others.

The graph is read from the source with `ast`, not from what happens to be imported at run time:
every `import a.b` and `from a import b` counts (b may be a submodule), relative imports are
resolved, and imports inside functions count too — they are still dependencies, only deferred.
Imports under `if TYPE_CHECKING:` are left out: they never run. An edge goes to the module an
import names, not to the packages above it (their `__init__` runs first anyway).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lmdesk"


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name → file, for every module of the package folder `root`."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST):
    """Every Import / ImportFrom below `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_in(other)
            continue
        yield from _import_nodes_in(child)


def _import_nodes_in(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _import_nodes(node)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports."""
    modules = _module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                           for alias in node.names]
            for target in targets:
                # `import a.b.c` where c is a name, not a module, still depends on the module a.b.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:  # a package naming itself (`from . import x`) is no edge
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that comes back to its start) for every strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the graph is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A concrete cycle through the group's first module, found by breadth-first search."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in {group}")


def test_lmdesk_has_no_import_cycles():
    graph = import_graph(PKG, "lmdesk")
    assert len(graph) >= 40, "the import graph found too few modules: wrong path?"
    assert sum(len(v) for v in graph.values()) >= 100, "the import graph found too few imports"
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_detector_finds_a_cycle_in_a_small_package(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import c\n",  # `c` is a submodule: an edge to pkg.sub.c
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "def late():\n    from ..a import thing  # inside a function: still an edge\n",
        # Type-only imports never run, so d ↔ e is not a cycle.
        "pkg/d.py": "import pkg.e\n",
        "pkg/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n",
        # `import x.y` and `from x import y` where y is a function both point at module x.
        "pkg/f.py": "import pkg.g\n",
        "pkg/g.py": "from pkg.h import helper\n",
        "pkg/h.py": "import pkg.f as f\n",
    })
    graph = import_graph(tmp_path / "pkg", "pkg")
    assert graph["pkg.a"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.e"] == set()
    cycles = find_cycles(graph)
    assert sorted(map(tuple, cycles)) == [("pkg.a", "pkg.sub.c", "pkg.a"), ("pkg.f", "pkg.g", "pkg.h", "pkg.f")]


def test_the_detector_passes_a_package_without_cycles(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",  # a package importing its own child is fine
        "pkg/a.py": "from . import b\nimport os\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n",
    })
    graph = import_graph(tmp_path / "pkg", "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert find_cycles(graph) == []
