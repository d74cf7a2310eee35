"""The events service's hold on the database: schema migrated and the link's writer lease held, kept so in the
background while the database comes and goes.

The events service starts without the database (records and events wait in the spool,
storage/spool.py); this task migrates the schema as soon as the database answers,
retrying with backoff and logging once per outage, then takes the link's lease
(storage/lease.py) and renews it every third of its length. The writer writes only
while :meth:`DatabaseGuard.may_write` says so.
"""

from __future__ import annotations

import asyncio
import logging

from hotline_cti.adapters.ami.client import backoff_delays
from hotline_cti.privacy import mask_numbers
from hotline_cti.storage.lease import Lease
from hotline_cti.storage.store import Store

log = logging.getLogger("hotline_cti.serve.events")

RETRY = (0.5, 2.0, 5.0)  # first delay, factor, longest delay between attempts while the database is down


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return mask_numbers(f"{type(exc).__name__}: {text[:200]}")


class DatabaseGuard:
    """Run :meth:`run` as a task; read ``may_write``, ``decided``, ``acquired`` and ``lost``."""

    def __init__(self, store: Store, lease: Lease, *, spool_path: object = None) -> None:
        self.store = store
        self.lease = lease
        self.spool_path = spool_path
        self.migrated = False
        self.tried = asyncio.Event()  # the first attempt is over, answered or failed
        self.decided = asyncio.Event()  # the database answered once: we hold the lease, or someone else does
        self.acquired = asyncio.Event()  # we hold (or held) the lease
        self.lost = asyncio.Event()  # we were serving and found another holder: stop, stand by after restart
        self.took_over_from = ""  # another holder wrote the link since our last run: our checkpoint is stale
        self.serving = False  # set by the service once it takes AMI events (standby waits do not count)
        self._held_until = 0.0  # loop time our lease is known good until
        self._down_since: float | None = None
        self._standby_for = ""

    def may_write(self) -> bool:
        """Schema current and lease held (by this process's clock; the fence re-checks in each transaction)."""
        return self.migrated and asyncio.get_running_loop().time() < self._held_until

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delays = backoff_delays(*RETRY, jitter=0.1)
        while True:
            try:
                if not self.migrated:
                    await self.store.migrate()
                    self.migrated = True
                asked = loop.time()
                state = await self.lease.acquire()
            except Exception as exc:
                self.tried.set()
                if self._down_since is None:
                    self._down_since = loop.time()
                    log.warning(
                        "database not usable (%s): records and events wait in the spool %s; retrying with backoff",
                        _short(exc),
                        self.spool_path,
                    )
                await asyncio.sleep(next(delays))
                continue
            if self._down_since is not None:
                log.warning("database usable again after %.1f s", loop.time() - self._down_since)
                self._down_since = None
            delays = backoff_delays(*RETRY, jitter=0.1)
            self.decided.set()
            self.tried.set()
            if state.held:
                # Measured from before the request: the lease may have been granted a moment later, never earlier.
                self._held_until = asyncio.get_running_loop().time() + min(state.remaining, self.lease.ttl) - 0.1
                if not self.acquired.is_set():
                    log.info("writer lease of link %s taken (holder %s)", self.lease.link, self.lease.holder)
                    if state.previous and state.previous != self.lease.holder:
                        self.took_over_from = state.previous
                    self.acquired.set()
                self._standby_for = ""
                await asyncio.sleep(max(0.05, min(self.lease.ttl / 3, asked + state.remaining / 3 - loop.time())))
                continue
            self._held_until = 0.0
            if self.acquired.is_set() or self.serving:
                log.error(
                    "writer lease of link %s is held by %s: this events service stops writing",
                    self.lease.link,
                    state.holder,
                )
                self.lost.set()
                return
            if self._standby_for != state.holder:
                self._standby_for = state.holder
                log.warning(
                    "standby: link %s is written by %s (lease for %.1f s more); taking over when it expires",
                    self.lease.link,
                    state.holder,
                    state.remaining,
                )
            await asyncio.sleep(max(0.05, min(self.lease.ttl / 3, state.remaining + 0.05)))
