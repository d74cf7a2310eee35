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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from hotline_cti.clock import utc_now
from hotline_cti.core.table import RoutingTable
from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.records.agent_states import AgentStateChange
from hotline_cti.records.builder import Output
from hotline_cti.records.model import CallRecord
from hotline_cti.wallboard.live import BuilderView, LiveState, Thresholds
from hotline_cti.wallboard.merger import week_start
from hotline_cti.wallboard.peers import Peers, PeerStore, RegionStore

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


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


class RecordSource(BuilderView, Protocol):
    """The AMI link's one record builder, as the wall needs it (:class:`hotline_cti.records.fanout.RecordFanout`,
    the events service's ``RecordPipeline.records``): its finished records as they come, its calls in progress."""

    def add_listener(self, listener: Callable[[Sequence[Output]], object]) -> None: ...

    def remove_listener(self, listener: Callable[[Sequence[Output]], object]) -> None: ...


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
        records: RecordSource | None = None,
        node: str = "",
        peers: PeerStore | None = None,
        region: RegionStore | None = None,
    ) -> None:
        # Without a record source the wall shows queues and agents only, and the stored calls it is seeded with.
        self.state = LiveState(table, thresholds, records)
        self.records = records
        if records is not None:
            records.add_listener(self.take)  # WallboardRunner.close() takes it off
        self.state.node = node
        # The other Asterisk nodes (their queues, the calls they finished), read from the store.
        self.peers = None if peers is None else Peers(node, peers, self._take_peer_calls, clock=clock)
        if region is not None:  # no Asterisk link (the region centre): every node, and the agents' log, from the store
            self.state.linked = False
            agents = (region, self._take_agent_changes)
            self.peers = Peers(None, region, self._take_peer_calls, clock=clock, agents=agents)
        self.health = health  # the controller's processes (serve's --status-file), shown on the wall
        self.callbacks: Callable[[], dict[str, Any]] | None = None  # open callbacks (serve/callback_keeper.py)
        self.clock = clock
        self.min_interval = 1.0 / max_rate
        self._dirty = True
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- inputs ------------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, str]) -> None:
        """AMI subscriber: fold one event into queues and agents; a malformed one is logged (masked) and skipped."""
        if self.state.apply(event, self.clock()):
            self._dirty = True

    def take(self, outputs: Sequence[Output]) -> None:
        """Record listener: calls the link's record builder finished."""
        if self.state.take(outputs):
            self._dirty = True

    def _take_peer_calls(self, records: list[CallRecord]) -> None:
        self.take(records)

    def _take_agent_changes(self, changes: list[AgentStateChange]) -> bool:
        return self.state.agent_times.add_stored(changes)

    @property
    def linked(self) -> bool:
        """Whether the wall has an Asterisk link (False: the region centre's wall, everything from the store)."""
        return self.state.linked

    @property
    def skipped(self) -> int:
        """Malformed events logged and skipped."""
        return self.state.skipped

    async def resync(self, client: QueueStatusSource) -> None:
        """AMI resync hook: after a (re)connect, re-read every queue's members and waiting callers.

        The QueueStatus items reach :meth:`feed` through the client's subscribers, after this reset. Calls
        that ended or began while the link was down are the record builder's to reconcile (its own hook
        re-reads the live channels); what it finishes then reaches :meth:`take`.
        """
        self.state.reset_queues()
        self._dirty = True
        await client.action("QueueStatus")

    async def seed(self, store: CallSource) -> int:
        """Load this week's stored calls (today's figures and the merger view start from them)."""
        since = week_start(self.clock(), self.state.table)
        records = await store.calls_between(since=since.astimezone(dt.UTC), region=self.state.table.region)
        added = self.state.seed(records)
        states = getattr(store, "agent_states_between", None)  # the Store has it; a call-only source not
        if states is not None:
            # From two days back: who was logged in at today's 00:00 counts from then.
            self.state.agent_times.seed(await states(since=(self.clock() - dt.timedelta(days=2)).astimezone(dt.UTC)))
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
        """Start the publishing task (and the reading of the other nodes)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="wallboard-publish")
        if self.peers is not None:
            self.peers.start(self._peers_read)

    def _peers_read(self) -> None:
        assert self.peers is not None
        self.state.peers = self.peers.queues
        self._dirty = True

    async def stop(self) -> None:
        """Stop the publishing task."""
        if self.peers is not None:
            await self.peers.stop()
        await cancel_and_wait(self._task)
        self._task = None
