"""The events service's side of the live queue state: AMI events in, the snapshot file out.

The routing service reads the file (:class:`hotline_cti.records.queue_live.QueueBoard`); see
docs/queues.md for why a file: the call path reads a dictionary it already holds, the events service
may be restarted or slow without touching it, and a stale file is noticed (``at``) and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.records.queue_live import EVENTS, QueueTracker, write_snapshot
from hotline_cti.wallboard.hub import AmiFeed

log = logging.getLogger(__name__)

WRITE_EVERY = 0.05  # seconds: a change reaches the routing service within this (plus its poll)
HEARTBEAT = 1.0  # seconds: written at least this often while AMI is up, so a silent link shows as stale


class QueueFeed:
    """Keeps a :class:`QueueTracker` from ``ami`` and writes its snapshot to ``path``."""

    def __init__(
        self,
        ami: AmiFeed,
        path: Path,
        clock: Callable[[], float] = time.time,
        wanted: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.ami = ami
        self.path = path
        self.clock = clock
        # The queues the routing service reads (those with diversion rules); None: every queue. Only they go in
        # the file, so a national config's thousands of queues do not cost the routing loop a large decode.
        self.wanted = wanted
        self.tracker = QueueTracker()
        self.writes = 0
        self._written: tuple[int, float] = (-1, 0.0)  # (tracker version, when)
        self._task: asyncio.Task[None] | None = None
        for name in EVENTS:
            ami.on(name, self._feed)
        ami.add_resync_hook(self.resync)

    def _feed(self, event: Mapping[str, str]) -> None:
        self.tracker.apply(event)

    async def resync(self, client: Any) -> None:
        """After every AMI login: forget the queues and re-read them (QueueStatus items come as events)."""
        self.tracker.reset()
        await client.action("QueueStatus")
        self.write_if_due(force=True)

    def write_if_due(self, force: bool = False) -> bool:
        """Write the snapshot if the state changed or the heartbeat is due (only while AMI is up)."""
        if not self.ami.connected:
            return False  # the file ages: after STALE_AFTER the routing service stops believing it
        now = self.clock()
        version, when = self._written
        if not force and version == self.tracker.version and now - when < HEARTBEAT:
            return False
        states = self.tracker.states(self.wanted() if self.wanted is not None else None)
        try:
            write_snapshot(self.path, states, now)
        except OSError as exc:
            log.warning("queue state not written to %s: %s", self.path, exc)
            return False
        self._written = (self.tracker.version, now)
        self.writes += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WRITE_EVERY)
            self.write_if_due()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="queue-feed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
