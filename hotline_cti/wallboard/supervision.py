"""Listening in from the wallboard: which phone is called for a supervisor, and who carries the request out.

The wall never takes a phone or a raw channel from the browser as given: the phone is the one the merger
file's ``supervision.phones`` names for the logged-in supervisor, and the target is checked by the
executor (:class:`hotline_cti.adapters.ami.spy.SpyExecutor`) against what Asterisk lists right now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from hotline_cti.records.spy import SpyRecord, SpyRequest


class SpyRunner(Protocol):
    """What the wall needs from ``SpyExecutor``."""

    async def execute(self, request: SpyRequest) -> SpyRecord: ...

    def watch(self, record: SpyRecord) -> asyncio.Task[SpyRecord] | None: ...


@dataclass(frozen=True, slots=True)
class Listening:
    """The executor and the supervisors' phones (a callable: the config may be reloaded)."""

    runner: SpyRunner
    phones: Callable[[], Mapping[str, str]]
