"""No test leaves state behind for the next one in a shared fixture (issue 15 §5).

``decide()`` memoises into its routing table; a table shared by a session or a module is sealed (read-only
memos) and every test decides on a fresh copy (tests/tables.py). The scan below keeps it that way.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable

TESTS = Path(__file__).resolve().parent
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
COMPILERS = frozenset({"compile_config", "compile_table"})


@pytest.mark.usefixtures("caches_on")
def test_a_shared_table_refuses_to_remember_a_decision(small_table_shared: RoutingTable) -> None:
    with pytest.raises(TypeError):
        decide(Call("12345"), small_table_shared, NOW)
    assert len(small_table_shared.cache) == 0 and len(small_table_shared.parsed) == 0


@pytest.mark.usefixtures("caches_on")
def test_each_test_decides_on_its_own_copy(small_table: RoutingTable, small_table_shared: RoutingTable) -> None:
    decide(Call("12300"), small_table, NOW)
    assert small_table.cache and small_table.parsed
    assert len(small_table_shared.cache) == 0 and len(small_table_shared.parsed) == 0
    assert small_table.lines is small_table_shared.lines  # the compiled plans are shared: routing never writes them


def _calls(node: ast.AST) -> set[str]:
    return {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }


def _outermost_call(node: ast.AST | None) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
        return node.func.id if isinstance(node.func, ast.Name) else node.func.attr
    return ""


def _shared_scope(fn: ast.FunctionDef) -> bool:
    for deco in fn.decorator_list:
        if isinstance(deco, ast.Call) and _outermost_call(deco) == "fixture":
            for kw in deco.keywords:
                if kw.arg == "scope" and isinstance(kw.value, ast.Constant) and kw.value.value in ("module", "session"):
                    return True
    return False


def unsealed_shared_tables(source: str, name: str) -> list[str]:
    """Places in one test file where a routing table is compiled for more than one test and not sealed:
    a module- or session-scoped fixture whose returns compile a table, or a module-level assignment that does."""
    tree = ast.parse(source)
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and _shared_scope(node):
            for ret in (n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None):
                if _calls(ret) & COMPILERS and _outermost_call(ret.value) != "sealed":
                    out.append(f"{name}:{ret.lineno}: fixture {node.name} shares a compiled table: return sealed(...)")
        elif (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and node.value is not None
            and _calls(node.value) & COMPILERS
            and "sealed" not in _calls(node.value)
        ):
            out.append(f"{name}:{node.lineno}: a module-level compiled table is shared: wrap it in sealed(...)")
    return out


def test_no_test_file_shares_an_unsealed_routing_table() -> None:
    problems = [
        p for path in sorted(TESTS.glob("*.py")) for p in unsealed_shared_tables(path.read_text("utf-8"), path.name)
    ]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_an_unsealed_shared_table() -> None:
    source = """
import pytest

TABLES = {n: compile_config(m) for n, m in MODELS}
KEPT = {n: sealed(compile_config(m)) for n, m in MODELS}


@pytest.fixture(scope="module")
def table():
    return compile_table(load_config(PATH).model)


@pytest.fixture(scope="session")
def good():
    return sealed(compile_table(load_config(PATH).model))


@pytest.fixture
def per_test():
    return compile_table(load_config(PATH).model)
"""
    assert unsealed_shared_tables(source, "t.py") == [
        "t.py:4: a module-level compiled table is shared: wrap it in sealed(...)",
        "t.py:10: fixture table shares a compiled table: return sealed(...)",
    ]
