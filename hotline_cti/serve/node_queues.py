"""This node's live queues into the store, for wallboards that show every node (docs/scale.md).

The events service's :class:`~hotline_cti.serve.queue_feed.QueueFeed` already follows every queue from AMI;
this task writes its state as the node's ``node_queues`` rows when it changed (at most every ``every`` seconds)
and at least every ``heartbeat`` seconds, so a node that went away shows as stale on the other walls. Only
while AMI is up and this service may write (its link's lease held): a standby, or a node cut from its
Asterisk, writes nothing and ages out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from hotline_cti.clock import utc_now
from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.records.queue_live import QueueTracker
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.hub import AmiFeed

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between writes while the queues change
HEARTBEAT = 5.0  # seconds: written at least this often (node_queues.STALE_AFTER is three of these)


class NodeQueueSharer:
    """Writes ``tracker``'s queues as ``node``'s rows of the store's ``node_queues``."""

    def __init__(
        self,
        node: str,
        tracker: QueueTracker,
        ami: AmiFeed,
        store: Store,
        may_write: Callable[[], bool],
        *,
        every: float = EVERY,
        heartbeat: float = HEARTBEAT,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.node, self.tracker, self.ami, self.store = node, tracker, ami, store
        self.may_write = may_write
        self.every, self.heartbeat, self.clock = every, heartbeat, clock
        self.writes = 0
        self._written: tuple[int, dt.datetime | None] = (-1, None)
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    async def write_if_due(self) -> bool:
        """Write when the queues changed or the heartbeat is due (and AMI is up, the lease held)."""
        if not self.ami.connected or not self.may_write():
            return False
        now = self.clock()
        version, when = self._written
        if version == self.tracker.version and when is not None and (now - when).total_seconds() < self.heartbeat:
            return False
        version = self.tracker.version
        try:
            oldest = {q: dt.datetime.fromtimestamp(t, dt.UTC) for q, t in self.tracker.oldest().items()}
            await self.store.put_node_queues(self.node, self.tracker.states(), now, oldest)
        except Exception as exc:  # the database is away: the rows age, the walls show this node stale
            if not self._failing:
                log.warning("node %s: queue state not shared (%s); retrying", self.node, type(exc).__name__)
            self._failing = True
            return False
        if self._failing:
            log.info("node %s: queue state shared again", self.node)
        self._failing = False
        self._written = (version, now)
        self.writes += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.write_if_due()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="node-queues")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
