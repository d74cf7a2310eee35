"""The other Asterisk nodes, as a wallboard beside one node sees them (issue 19: one view of the platform).

Every ``every`` seconds the wall reads from the store every node's live queue rows (``node_queues``, written
by each node's events service) and the calls other nodes finished since the last read, so its queues show
each node and the sum, and today's figures count every node's calls. Its own node's queues and calls come
live from its own AMI link, as before.

A call another node stored more than ``overlap`` seconds after it ended (the store was down meanwhile) is
not seen by a running wall; it counts from the wall's next start (seeded from the store).

A wall with no Asterisk link (the region centre's: ``node`` None) reads every node's calls, and with
``agents`` also the agents' state log (``agent_states``, written by each node's events service), since it
has no AMI events of its own to follow them by.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from hotline_cti.clock import utc_now
from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.records.agent_states import AgentStateChange
from hotline_cti.records.model import CallRecord
from hotline_cti.records.node_queues import NodeQueue

log = logging.getLogger(__name__)

EVERY = 2.0  # seconds between reads
OVERLAP = 60.0  # seconds: calls that ended this long before the last read are read again (commit lag)


class PeerStore(Protocol):
    """What the wall reads of the other nodes (:class:`hotline_cti.storage.store.Store`)."""

    async def node_queue_rows(self) -> list[NodeQueue]: ...

    async def calls_ended_since(self, since: dt.datetime, other_than: str | None) -> list[CallRecord]: ...


class AgentLog(Protocol):
    """The agents' state log as a wall with no Asterisk link reads it (:class:`~hotline_cti.storage.store.Store`)."""

    async def agent_states_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AgentStateChange]: ...


def _signature(rec: CallRecord) -> tuple[object, ...]:
    return (rec.ended, rec.outcome, rec.rating, rec.talk, tuple(rec.transfers))


class RegionStore(PeerStore, AgentLog, Protocol):
    """What a wall with no Asterisk link reads everything from: every node's queues, calls and agent changes."""


class Peers:
    """Reads the other nodes for one wall: ``queues`` (every node's rows) and their new finished calls.

    ``node`` None: the wall has no node of its own, every node is read. ``agents``: the agents' state log and
    where its new changes go (``AgentTimes.add_stored``).
    """

    def __init__(
        self,
        node: str | None,
        store: PeerStore,
        take: Callable[[list[CallRecord]], object],
        *,
        every: float = EVERY,
        overlap: float = OVERLAP,
        clock: Callable[[], dt.datetime] = utc_now,
        agents: tuple[AgentLog, Callable[[list[AgentStateChange]], bool]] | None = None,
    ) -> None:
        self.node = node
        self.store = store
        self.take = take  # the hub's: counts finished records
        self.agents = agents
        self.every, self.overlap, self.clock = every, overlap, clock
        self.queues: list[NodeQueue] = []
        self._since: dt.datetime | None = None
        self._seen: dict[str, tuple[tuple[object, ...], dt.datetime]] = {}  # call id -> (signature, when read)
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> bool:
        """One read; True when anything changed for the wall."""
        now = self.clock()
        since = (self._since or now) - dt.timedelta(seconds=self.overlap)
        try:
            queues = await self.store.node_queue_rows()
            ended = await self.store.calls_ended_since(since, other_than=self.node)
            changes = None if self.agents is None else await self.agents[0].agent_states_between(since=since)
        except Exception as exc:
            if not self._failing:
                log.warning("wallboard: other nodes not read (%s); retrying", type(exc).__name__)
            self._failing = True
            return False
        self._failing = False
        self._since = now
        fresh = []
        for rec in ended:
            sig = _signature(rec)
            if self._seen.get(rec.call_id, (None,))[0] != sig:
                fresh.append(rec)
            self._seen[rec.call_id] = (sig, now)
        horizon = now - dt.timedelta(seconds=2 * self.overlap)
        self._seen = {k: v for k, v in self._seen.items() if v[1] >= horizon}
        changed = bool(fresh) or queues != self.queues
        self.queues = queues
        if fresh:
            self.take(fresh)
        if changes and self.agents is not None and self.agents[1](changes):
            changed = True
        return changed

    async def run(self, touch: Callable[[], object]) -> None:
        while True:
            if await self.read():
                touch()
            await asyncio.sleep(self.every)

    def start(self, touch: Callable[[], object]) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(touch), name="wallboard-peers")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
