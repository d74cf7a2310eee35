"""The import graph of a source tree, read with ast, and the layer contract checked against it.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:`` (an import
hidden in a function is still a dependency, and a type-only one still ties the packages together).
A *unit* is a first-level package or module of a top-level package (``hotline_cti.core``,
``hotline_cti.privacy``); a whole extra top-level package (``simulators``) may be one unit too.
The checks return readable problems naming the offending import as ``file:line``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module, as written at ``file:line``."""

    source: str  # the importing module, dotted
    target: str  # the imported module, dotted and resolved (a submodule when ``from p import sub``)
    file: Path
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the package directory ``root`` (``.../hotline_cti``)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _shown(path: Path, root: Path) -> Path:
    """``path`` as the problems show it: from the directory holding the package (``hotline_cti/core/x.py``)."""
    return path.relative_to(root.parent)


def imports_of(roots: Iterable[Path]) -> list[Import]:
    """Every import statement in the packages under ``roots``, one :class:`Import` per imported module."""
    modules: dict[str, Path] = {}
    shown: dict[str, Path] = {}
    for root in roots:
        found = _modules(root)
        modules.update(found)
        shown.update({name: _shown(path, root) for name, path in found.items()})
    out: list[Import] = []
    for name, full in modules.items():
        path = shown[name]
        is_package = full.name == "__init__.py"
        tree = ast.parse(full.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out.extend(Import(name, alias.name, path, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    out.append(Import(name, sub if sub in modules else base, path, node.lineno))
    return out


def unit_of(module: str, whole: frozenset[str] = frozenset()) -> str:
    """The unit a dotted module belongs to: ``hotline_cti.core.routing`` -> ``core``.

    A top-level package named in ``whole`` is one unit under its own name; the top-level
    package itself (its ``__init__``) is the unit ``""``.
    """
    parts = module.split(".")
    if parts[0] in whole:
        return parts[0]
    return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True, slots=True)
class Contract:
    """The layer order (top first; units in one layer may import each other if no cycle forms),
    the project's own top-level packages, and the third-party import names every unit may use."""

    package: str  # the main top-level package: hotline_cti
    layers: Sequence[Sequence[str]]
    whole: frozenset[str]  # other top-level packages of the project, each one unit (simulators)
    third_party: frozenset[str]  # import names of the declared dependencies
    isolated: frozenset[str]  # units that may import nothing of the project (core)


def unit_edges(imports: Iterable[Import], contract: Contract) -> dict[tuple[str, str], list[Import]]:
    """(importing unit, imported unit) -> the imports behind that edge, for imports between project units."""
    own = {contract.package, *contract.whole}
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        if imp.target.split(".")[0] not in own:
            continue
        a, b = unit_of(imp.source, contract.whole), unit_of(imp.target, contract.whole)
        if a != b and b != "":
            edges.setdefault((a, b), []).append(imp)
    return edges


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _first(imps: list[Import]) -> str:
    imp = min(imps, key=lambda i: (str(i.file), i.line))
    more = f" (and {len(imps) - 1} more)" if len(imps) > 1 else ""
    return f"{imp.where()}: {imp.source} imports {imp.target}{more}"


def cycle_problems(imports: Iterable[Import], contract: Contract) -> list[str]:
    """One problem per package cycle, naming each import that closes it."""
    edges = unit_edges(imports, contract)
    out: list[str] = []
    for component in cycles(edges):
        members = set(component)
        inside = sorted((a, b) for a, b in edges if a in members and b in members)
        lines = [f"  {a} -> {b}: {_first(edges[(a, b)])}" for a, b in inside]
        out.append(f"package cycle {' <-> '.join(component)}:\n" + "\n".join(lines))
    return out


def nested_cycle_problems(imports: Sequence[Import], packages: Iterable[str]) -> list[str]:
    """Cycles among the children of any package below the units (``adapters.agi`` <-> ``adapters.ami``,
    or two modules of one package importing each other)."""
    own = set(packages)
    by_parent: dict[str, dict[tuple[str, str], list[Import]]] = {}
    for imp in imports:
        a, b = imp.source.split("."), imp.target.split(".")
        if b[0] not in own:
            continue
        for depth in range(3, min(len(a), len(b)) + 1):
            if a[: depth - 1] != b[: depth - 1]:
                break
            if a[depth - 1] != b[depth - 1]:
                parent = ".".join(a[: depth - 1])
                by_parent.setdefault(parent, {}).setdefault((a[depth - 1], b[depth - 1]), []).append(imp)
                break
    out: list[str] = []
    for parent, edges in sorted(by_parent.items()):
        for component in cycles(edges):
            members = set(component)
            inside = sorted((a, b) for a, b in edges if a in members and b in members)
            lines = [f"  {a} -> {b}: {_first(edges[(a, b)])}" for a, b in inside]
            out.append(f"cycle inside {parent}: {' <-> '.join(component)}:\n" + "\n".join(lines))
    return out


def layer_problems(imports: Iterable[Import], contract: Contract) -> list[str]:
    """Imports that go up the layer order, and units the order does not place."""
    rank = {unit: i for i, layer in enumerate(contract.layers) for unit in layer}
    order = " -> ".join("{" + ", ".join(layer) + "}" if len(layer) > 1 else layer[0] for layer in contract.layers)
    edges = unit_edges(imports, contract)
    out: list[str] = []
    for unit in sorted({u for edge in edges for u in edge} - rank.keys()):
        out.append(f"unit {unit!r} is not in the layer order ({order}): place it in tests/test_layers.py LAYERS")
    for (a, b), imps in sorted(edges.items()):
        if a in contract.isolated:
            out.append(f"{_first(imps)}: {a} may import nothing of the project")
        elif a in rank and b in rank and rank[b] < rank[a]:
            out.append(f"{_first(imps)}: {a} may not import {b}, which is above it in the layer order {order}")
    return out


def external_problems(imports: Iterable[Import], contract: Contract) -> list[str]:
    """Imports of anything that is neither the standard library, the project, nor a declared dependency."""
    own = {contract.package, *contract.whole}
    out: list[str] = []
    for imp in imports:
        top = imp.target.split(".")[0]
        if top in own or top in sys.stdlib_module_names or top in contract.third_party or top == "__future__":
            continue
        unit = unit_of(imp.source, contract.whole)
        out.append(f"{imp.where()}: {unit} imports {imp.target}, which is not a declared dependency")
    return out


def declared_import_names(requirements: Iterable[str], distributions: Mapping[str, list[str]]) -> frozenset[str]:
    """Import names provided by the distributions ``requirements`` name (``PyYAML>=6`` -> ``yaml``).

    ``distributions`` is :func:`importlib.metadata.packages_distributions` (import name -> distributions).
    """

    def norm(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    wanted = set()
    for req in requirements:
        name = req.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        wanted.add(norm(name.strip()))
    return frozenset(mod for mod, dists in distributions.items() if any(norm(d) in wanted for d in dists))


def all_problems(imports: Sequence[Import], contract: Contract) -> Iterator[str]:
    yield from cycle_problems(imports, contract)
    yield from nested_cycle_problems(imports, [contract.package, *contract.whole])
    yield from layer_problems(imports, contract)
    yield from external_problems(imports, contract)
