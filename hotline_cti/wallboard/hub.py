"""The wallboard's moving parts around :class:`LiveState`: AMI feed, store seeding, throttled snapshots.

Everything here runs on one asyncio loop, so the state needs no lock. Snapshots go out at most
``max_rate`` times a second and at least once a second (waits grow with the clock even without events);
a slow browser only ever gets the newest snapshot, never a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from hotline_cti.core.table import RoutingTable
from hotline_cti.records.model import CallRecord
from hotline_cti.wallboard.live import LiveState, Thresholds
from hotline_cti.wallboard.merger import week_start

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The real clock (UTC)."""
    return dt.datetime.now(dt.UTC)


class CallSource(Protocol):
    """What seeding needs from :class:`hotline_cti.storage.store.Store`."""

    async def calls_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, region: str | None = None
    ) -> list[CallRecord]: ...


class QueueStatusSource(Protocol):
    """What the resync hook needs from :class:`hotline_cti.adapters.ami.AmiClient`."""

    async def action(self, name: str, fields: Mapping[str, str] | None = None) -> Any: ...


class AmiFeed(QueueStatusSource, Protocol):
    """What the wallboard needs of an AMI link (:class:`hotline_cti.adapters.ami.AmiClient` is one): its
    events, and a hook after every (re)login to re-read the queues."""

    @property
    def connected(self) -> bool: ...

    def on(self, event: str, callback: Callable[[Any], Any]) -> None: ...

    def off(self, event: str, callback: Callable[[Any], Any]) -> None: ...

    def add_resync_hook(self, hook: Callable[[Any], Awaitable[None]]) -> None: ...


class Hub:
    """Feeds the live state and hands JSON snapshots to subscribers (the SSE streams)."""

    def __init__(
        self,
        table: RoutingTable,
        *,
        clock: Clock = utc_now,
        max_rate: float = 2.0,
        thresholds: Thresholds | None = None,
        health: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.state = LiveState(table, thresholds)
        self.health = health  # the controller's processes (serve's --status-file), shown on the wall
        self.callbacks: Callable[[], dict[str, Any]] | None = None  # open callbacks (serve/callback_keeper.py)
        self.clock = clock
        self.min_interval = 1.0 / max_rate
        self._dirty = True
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- inputs ------------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, str]) -> None:
        """AMI subscriber: fold one event in; a malformed one is logged (masked) and skipped."""
        if self.state.apply(event, self.clock()):
            self._dirty = True

    @property
    def skipped(self) -> int:
        """Malformed events logged and skipped."""
        return self.state.skipped

    async def resync(self, client: QueueStatusSource) -> None:
        """AMI resync hook: after a (re)connect, re-read every queue's members and waiting callers, and the
        live channels (calls that ended while we were away are finished, new ones adopted).

        The QueueStatus items reach :meth:`feed` through the client's subscribers, after this reset.
        """
        self.state.reset_queues()
        self._dirty = True
        await client.action("QueueStatus")
        asked = self.clock()
        channels = await client.action("CoreShowChannels")
        items = [m for m in channels.events if m.get("Event", "").lower() == "coreshowchannel"]
        self.state.resync_calls(items, self.clock(), seen_before=asked)

    async def seed(self, store: CallSource) -> int:
        """Load this week's stored calls (today's figures and the merger view start from them)."""
        since = week_start(self.clock(), self.state.table)
        records = await store.calls_between(since=since.astimezone(dt.UTC), region=self.state.table.region)
        added = self.state.seed(records)
        self._dirty = True
        log.info("wallboard: seeded %d stored call(s) since %s", added, since.isoformat())
        return added

    def set_table(self, table: RoutingTable) -> None:
        """Use a reloaded merger config (line names, windows, emergency numbers)."""
        self.state.table = table
        self._dirty = True

    def touch(self) -> None:
        """Something changed outside :meth:`feed` (thresholds, acknowledgements): publish soon."""
        self._dirty = True

    # -- outputs -----------------------------------------------------------------------------------

    def snapshot_json(self) -> str:
        """The current snapshot as compact JSON (with the controller's health when it is known)."""
        snapshot = self.state.snapshot(self.clock())
        if self.health is not None:
            snapshot["controller"] = self.health()
        if self.callbacks is not None:
            snapshot["callbacks"] = self.callbacks()
        return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"))

    def subscribe(self) -> asyncio.Queue[str]:
        """A queue that receives every published snapshot (only the newest is kept)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait(self.snapshot_json())  # fresh: nothing is published while nobody watches
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        """Stop sending to ``queue``."""
        self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        """Open SSE streams."""
        return len(self._subscribers)

    def publish(self) -> str:
        """Build a snapshot and offer it to every subscriber, replacing one they have not read yet."""
        text = self.snapshot_json()
        self._dirty = False
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(text)
        return text

    async def run(self) -> None:
        """Publish while there are subscribers: within ``min_interval`` of a change, else once a second."""
        idle = 0.0
        while True:
            await asyncio.sleep(self.min_interval)
            idle += self.min_interval
            if self._subscribers and (self._dirty or idle >= 1.0):
                self.publish()
                idle = 0.0

    def start(self) -> None:
        """Start the publishing task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="wallboard-publish")

    async def stop(self) -> None:
        """Stop the publishing task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
