"""The managed caller lists as the routing service sees them: a snapshot of hashes, re-read every few seconds.

The routing service never waits for the database: the snapshot is swapped in when a read succeeds, and
while the database is down the last snapshot keeps screening (an empty one before the first read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

from hotline_cti.callers.screen import CallerScreen
from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.storage.store import Store

log = logging.getLogger(__name__)

ENV_LISTS_REFRESH = "HOTLINE_CALLER_LISTS_REFRESH"
DEFAULT_REFRESH = 5.0  # seconds: a number put on a list is screened within this
LIST_NAME_CHARS = 40


def refresh_seconds(environ: Mapping[str, str] | None = None) -> float:
    """``$HOTLINE_CALLER_LISTS_REFRESH`` (0.5-3600 s, default 5); raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_LISTS_REFRESH, "")
    if not text:
        return DEFAULT_REFRESH
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{ENV_LISTS_REFRESH}: {text!r} is not a number of seconds") from None
    if not 0.5 <= value <= 3600:
        raise ValueError(f"{ENV_LISTS_REFRESH}: {value} is outside 0.5-3600 seconds")
    return value


class ListRefresher:
    """Reads every list's hashes from the database into ``screen``, every ``every`` seconds."""

    def __init__(self, url: str, screen: CallerScreen, every: float = DEFAULT_REFRESH) -> None:
        self.url = url
        self.screen = screen
        self.every = every
        self.reads = 0  # successful reads (tests and status)
        self.ready = asyncio.Event()  # set after the first successful read
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def read_once(self, store: Store) -> bool:
        """One read; True when the snapshot was swapped in."""
        try:
            lists = await store.caller_lists()
        except Exception as exc:  # the database is away or not migrated yet: keep the last snapshot
            if not self._failing:
                log.warning("caller lists not readable (%s); screening with the last ones read", type(exc).__name__)
            self._failing = True
            return False
        if self._failing:
            log.info("caller lists readable again")
        self._failing = False
        self.screen.set_lists(lists)
        self.reads += 1
        self.ready.set()
        return True

    async def run(self) -> None:
        """Read now and then every ``every`` seconds, until cancelled."""
        store = Store.connect(self.url)
        try:
            while True:
                await self.read_once(store)
                await asyncio.sleep(self.every)
        finally:
            await store.close()

    async def start(self, first_read: float = 2.0) -> None:
        """Run in the background on the running loop; wait up to ``first_read`` seconds for the first read, so
        a routing service that just started screens with the lists (and starts without them if the database
        is away)."""
        self._task = asyncio.create_task(self.run(), name="caller-lists")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), first_read)

    async def stop(self) -> None:
        """Stop reading."""
        await cancel_and_wait(self._task)
        self._task = None
