"""One writer per Asterisk link, across hosts: a lease row in the database.

The events service writing a link's records and events holds the link's row in
``leases`` (holder, expiry) and renews it; another events service for the same link
(a second host, a restarted orphan) finds it held and stands by until it expires.
Expiry is computed and compared on the database's own clock, so hosts whose clocks
disagree still agree on who holds the lease.

Holding the lease is checked again inside every write transaction (:meth:`Lease.fence`,
installed as ``Store.fence``): a writer that was paused past its expiry (SIGSTOP, a
long GC, a partition) and lost the lease to another cannot commit a single row after
it wakes. On PostgreSQL the check locks the lease row (``FOR UPDATE``) for the length
of the transaction, so a takeover waits for a batch in flight; SQLite serialises
writers on the whole file anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline_cti.storage.store import Store
from hotline_cti.storage.tables import leases

__all__ = ["Lease", "LeaseLost", "LeaseState"]

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """A fenced write found the lease held by another (or expired): nothing of it was committed."""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What one acquire/renew found: whether we hold it, who does, and for how many more seconds."""

    held: bool
    holder: str
    remaining: float
    previous: str = ""  # who held it before this acquire ('' when nobody ever did)


def _db_now(dialect: str) -> Any:
    """Seconds since the epoch on the database server's clock."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", sa.func.clock_timestamp())
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


class Lease:
    """The lease of ``link`` for ``holder``, ``ttl`` seconds long."""

    def __init__(self, store: Store, link: str, holder: str, ttl: float = 15.0) -> None:
        self.store = store
        self.link = link[:200]
        self.holder = holder[:300]
        self.ttl = ttl

    async def acquire(self) -> LeaseState:
        """Take the lease if it is free, expired or ours already (a renewal); report who holds it."""
        now = _db_now(self.store.dialect)
        insert = (postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert)(leases)
        stmt = insert.values(link=self.link, holder=self.holder, expires=now + self.ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=[leases.c.link],
            set_={"holder": stmt.excluded.holder, "expires": stmt.excluded.expires},
            where=sa.or_(leases.c.holder == stmt.excluded.holder, leases.c.expires < now),
        )
        query = sa.select(leases.c.holder, leases.c.expires - now).where(leases.c.link == self.link)
        async with self.store.engine.begin() as conn:
            before = (await conn.execute(query.with_for_update())).first()
            await conn.execute(stmt)
            row = (await conn.execute(query)).one()
        holder, remaining = str(row[0]), float(row[1])
        return LeaseState(holder == self.holder, holder, remaining, str(before[0]) if before else "")

    async def release(self) -> None:
        """Give the lease up at a clean stop, so a standby takes over at once rather than at expiry. The row stays
        (expired) so the next holder still learns who wrote before it (``LeaseState.previous``)."""
        async with self.store.engine.begin() as conn:
            await conn.execute(
                sa.update(leases)
                .where(leases.c.link == self.link, leases.c.holder == self.holder)
                .values(expires=_db_now(self.store.dialect) - 1.0)
            )

    async def fence(self, conn: AsyncConnection) -> None:
        """Raise :class:`LeaseLost` unless this holder's lease is current (runs inside a write transaction)."""
        query = (
            sa.select(leases.c.holder)
            .where(
                leases.c.link == self.link,
                leases.c.holder == self.holder,
                leases.c.expires > _db_now(self.store.dialect),
            )
            .with_for_update()
        )
        if (await conn.execute(query)).first() is None:
            raise LeaseLost(f"the lease of {self.link} is not held by {self.holder}")
