"""Command ids already seen, so a replayed command returns the first answer and runs nothing again.

Keyed by (sender, id): the broker-verified sender in broker mode, so one client cannot use up another's
ids. Each entry holds a future of the first reply: a replay that arrives while the first run is still
going waits for it. Entries live ``ttl`` seconds and at most ``max_entries`` are kept (the oldest go
first). This memory is the fast path and covers a replay while the first run is still going; the first
replies are also kept in the database (:class:`CommandLog`, the ``command_replies`` table), so a replay
after a restart of ``serve`` is answered from there and runs nothing either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

Key = tuple[str, str]
Reply = dict[str, Any]


class CommandLog(Protocol):
    """Durable first replies (``hotline_cti.storage.store.Store``)."""

    async def add_command_reply(self, sender: str, command_id: str, at: dt.datetime, reply: dict[str, Any]) -> None: ...

    async def command_reply(self, sender: str, command_id: str, since: dt.datetime) -> dict[str, Any] | None: ...

    async def purge_command_replies(self, before: dt.datetime) -> int: ...


class ReplayCache:
    """First replies by command key, bounded in number and age."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, asyncio.Future[Reply]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            key, (born, _) = next(iter(self._entries.items()))
            if born > now - self.ttl:
                return
            del self._entries[key]

    def get(self, key: Key) -> asyncio.Future[Reply] | None:
        """The first reply (maybe still pending) of ``key``, or None when it is new or forgotten."""
        self._expire()
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def start(self, key: Key) -> asyncio.Future[Reply]:
        """Remember ``key`` from now; the caller sets the future's result when the first run answers."""
        self._expire()
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._entries[key] = (self._clock(), future)
        return future

    def forget(self, key: Key) -> None:
        """Drop ``key`` (a command refused before running may be sent again with the same id)."""
        self._entries.pop(key, None)
