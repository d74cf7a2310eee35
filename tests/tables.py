"""Routing tables shared between tests, kept from carrying state from one test to the next.

``decide()`` memoises into ``table.cache`` and ``table.parsed``. A table compiled once for a session or a
module is :func:`sealed`: its memos are read-only, so a test deciding on it directly fails at once
(TypeError) instead of leaving decisions behind for the next test. Each test decides on a :func:`fresh`
copy: the same compiled plans (never mutated by routing), its own empty memos.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from hotline_cti.core.table import RoutingTable


def sealed(table: RoutingTable) -> RoutingTable:
    """``table`` with read-only, empty memos: safe to share, never decided on."""
    return dataclasses.replace(table, cache=MappingProxyType({}), parsed=MappingProxyType({}))  # type: ignore[arg-type]


def fresh(table: RoutingTable) -> RoutingTable:
    """A copy of ``table`` with memos of its own, for one test."""
    return dataclasses.replace(table, cache={}, parsed={})
