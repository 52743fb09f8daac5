"""The import graph of src/smokegate, read from the source with ``ast`` (nothing is imported).

    python scripts/import_graph.py            # modules, longest modules, circles, imports into cli/
    python scripts/import_graph.py --quiet    # only problems; exit 1 if any (make lint)

Every ``import``/``from … import`` counts, wherever it stands (module top, inside a function,
under ``TYPE_CHECKING``): a lazy import is still a dependency, and a circle through one is still a
circle a reader has to untangle. ``from package import name`` is an edge to
``package.name`` when that is a module, else to ``package``. tests/test_architecture.py asserts
what this prints: no circles, no import into ``smokegate.cli`` from outside it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "smokegate"
FRONT_END = f"{PACKAGE}.cli"
# ``python -m smokegate`` must import the CLI: the one module outside it that may.
FRONT_END_IMPORTERS = {f"{PACKAGE}.__main__"}


@dataclass
class Graph:
    modules: dict[str, Path]
    lines: dict[str, int]
    edges: dict[str, set[str]] = field(default_factory=dict)

    def cycles(self) -> list[list[str]]:
        """Strongly connected components with more than one module (or a self-import): each is
        one circle, however many paths run through it."""
        return [sorted(c) for c in _sccs(self.edges) if len(c) > 1 or c[0] in self.edges[c[0]]]

    def imports_into(self, target: str) -> list[tuple[str, str]]:
        """``(importer, imported)`` for imports of ``target`` (or below) from outside it."""
        inside = (target, f"{target}.")
        return sorted(
            (src, dst)
            for src, dsts in self.edges.items()
            if not src.startswith(inside) and src != target
            for dst in dsts
            if dst == target or dst.startswith(inside)
        )


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(root: Path = ROOT, package: str = PACKAGE) -> Graph:
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(f, root): f for f in files}
    lines = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules.items()}
    graph = Graph(modules, lines, {m: set() for m in modules})
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target in _imported(tree, name, is_package, modules):
            if target in modules and target != name:
                graph.edges[name].add(target)
    return graph


def _imported(
    tree: ast.AST, name: str, is_package: bool, modules: dict[str, Path]
) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _nearest(alias.name, modules)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in modules else _nearest(base, modules)


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = name.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _nearest(dotted: str, modules: dict[str, Path]) -> str:
    """``a.b.c`` -> the longest prefix that is a module of ours (``a.b`` if ``c`` is a name)."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def _sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep graphs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
    return out


def main(argv: list[str]) -> int:
    """``--quiet``: print only what is wrong (for ``make lint``)."""
    graph = build()
    cycles = graph.cycles()
    into_cli = [(s, d) for s, d in graph.imports_into(FRONT_END) if s not in FRONT_END_IMPORTERS]
    if "--quiet" in argv:
        for c in cycles:
            print("import circle: " + " <-> ".join(c))
        for src, dst in into_cli:
            print(f"{src} imports {dst}: nothing outside {FRONT_END} may")
        return 1 if cycles or into_cli else 0
    print(f"modules: {len(graph.modules)}, lines: {sum(graph.lines.values())}")
    print(f"imports between them: {sum(len(d) for d in graph.edges.values())}")
    print("longest modules:")
    for name, n in sorted(graph.lines.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n:5d}  {name}")
    over = [m for m, n in graph.lines.items() if n > 500]
    print(f"modules over 500 lines: {len(over)}")
    print(f"circles: {len(cycles)}")
    for c in cycles:
        print("  " + " <-> ".join(c))
    print(f"imports into {FRONT_END} from outside it: {len(into_cli)}")
    for src, dst in into_cli:
        print(f"  {src} -> {dst}")
    return 1 if cycles or into_cli else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
