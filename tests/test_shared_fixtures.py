"""No test leaves state behind for the next one in a shared fixture (issue 15 §5).

A routing table is frozen and keeps no memo: what ``decide()`` remembers lives in a
:class:`~hotline_cti.core.memo.DecisionCache` passed to it, so sharing a table between tests is safe. A
cache (and what holds one: a ScriptCache, the simulator's CoreRouter) is made per test; the scan below keeps
it that way.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import pickle

import pytest

from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from tests.paths import TESTS

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CACHE_MAKERS = frozenset({"DecisionCache", "ScriptCache", "CoreRouter"})


def test_a_shared_table_cannot_remember_anything(small_table: RoutingTable) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        small_table.region = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        small_table.lines["12399"] = small_table.lines["12300"]  # type: ignore[index]
    before = pickle.dumps(small_table)
    decide(Call("12300"), small_table, NOW)
    decide(Call("12345"), small_table, NOW, DecisionCache(small_table))
    assert pickle.dumps(small_table) == before


@pytest.mark.usefixtures("caches_on")
def test_each_test_decides_with_its_own_cache(small_table: RoutingTable) -> None:
    mine, other = DecisionCache(small_table), DecisionCache(small_table)
    first = decide(Call("12300"), small_table, NOW, mine)
    assert decide(Call("12300"), small_table, NOW, mine) is first  # served from the cache
    assert mine.decisions and mine.parsed
    assert not other.decisions and not other.parsed


def test_a_cache_serves_only_its_own_table(small_table: RoutingTable) -> None:
    """A decision remembered for one table must never answer for another (a reload swaps tables)."""
    other = dataclasses.replace(small_table)
    with pytest.raises(ValueError, match="another routing table"):
        decide(Call("12300"), other, NOW, DecisionCache(small_table))


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


def shared_caches(source: str, name: str) -> list[str]:
    """Places in one test file where a routing memo is made for more than one test: a module- or
    session-scoped fixture that makes a DecisionCache (or a ScriptCache, or a CoreRouter, which holds one),
    or a module-level assignment that does."""
    tree = ast.parse(source)
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and _shared_scope(node):
            if _calls(node) & CACHE_MAKERS:
                out.append(f"{name}:{node.lineno}: fixture {node.name} shares a routing cache: make it per test")
        elif (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and node.value is not None
            and _calls(node.value) & CACHE_MAKERS
        ):
            out.append(f"{name}:{node.lineno}: a module-level routing cache is shared: make it per test")
    return out


def test_no_test_file_shares_a_routing_cache() -> None:
    problems = [p for path in sorted(TESTS.rglob("*.py")) for p in shared_caches(path.read_text("utf-8"), path.name)]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_a_shared_cache() -> None:
    source = """
import pytest

TABLES = {n: compile_config(m) for n, m in MODELS}
CACHES = {n: DecisionCache(t) for n, t in TABLES.items()}


@pytest.fixture(scope="module")
def router(table):
    return CoreRouter(table)


@pytest.fixture(scope="session")
def table():
    return compile_table(load_config(PATH).model)


@pytest.fixture
def per_test(table):
    return DecisionCache(table), ScriptCache()
"""
    assert shared_caches(source, "t.py") == [
        "t.py:5: a module-level routing cache is shared: make it per test",
        "t.py:9: fixture router shares a routing cache: make it per test",
    ]
