"""Batched writes off the call path: submit now, written within 0.2 s, kept while the database is down.

``submit_*`` only appends to an in-memory queue: it never awaits, never
raises and never waits for the database, so a slow or absent database cannot
delay a routing decision or the AMI event flow. One background task writes
the queues in batches (≤ ``max_batch`` rows or every ``max_delay`` seconds).
When a write fails because the database is unreachable or locked, the rows
stay at the head of their queue and the task retries with backoff; they are
written in submission order once it returns. The queues are bounded
(``max_pending`` rows in all): past the bound new rows are dropped with an
error in the log, counted in ``dropped``.

A row the database refuses for what it holds (integrity or data error) is
isolated by halving its batch and then dropped with an error, so one bad row
never blocks the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.model import CallRecord, TransferRecord
from hotline_cti.storage.store import Store

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Lane(Generic[T]):
    """One kind of row: its queue and the store method that writes a batch of them."""

    name: str
    write: Callable[[Sequence[T]], Awaitable[None]]
    rows: deque[T] = field(default_factory=deque)
    written: int = 0
    rejected: int = 0


def _is_bad_row(exc: BaseException) -> bool:
    """True when the database refused the data itself (retrying cannot help); False for outages and locks."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError | TypeError | ValueError | AttributeError):
        return True
    # A value SQLAlchemy could not even bind (wrong type) is a StatementError that is not a DBAPIError.
    return isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError)


class BatchWriter:
    """Writes call records, ratings, transfer and action audit rows and outbox events in batches, in order, off the call path."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 100,
        max_delay: float = 0.2,
        max_pending: int = 200_000,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._calls: _Lane[CallRecord] = _Lane("calls", store.upsert_calls)
        self._ratings: _Lane[tuple[str, int, dt.datetime]] = _Lane("ratings", store.add_ratings)
        self._transfers: _Lane[TransferRecord] = _Lane("transfers", store.add_transfers)
        self._actions: _Lane[ActionRecord] = _Lane("actions", store.add_actions)
        self._events: _Lane[Event] = _Lane("events", store.append_events)
        # Written in this order each round: a call's row before the events that announce it.
        self._lanes: tuple[_Lane[Any], ...] = (self._calls, self._ratings, self._transfers, self._actions, self._events)
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._down_since: float | None = None  # loop time of the first failed write of an outage
        self._overflowing = False
        self.dropped = 0  # rows refused because the bound was hit
        self.failures = 0  # failed write attempts (outages, locks)

    # ------------------------------------------------------------------ API

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return sum(len(lane.rows) for lane in self._lanes)

    @property
    def written(self) -> int:
        """Rows written so far."""
        return sum(lane.written for lane in self._lanes)

    @property
    def database_down(self) -> bool:
        """True between a failed write and the next successful one."""
        return self._down_since is not None

    def submit_call(self, record: CallRecord) -> bool:
        """Queue a call record (upserted by call_id). Returns False only when the bound dropped it."""
        return self._submit(self._calls, record)

    def submit_rating(self, call_id: str, rating: int, at: dt.datetime) -> bool:
        """Queue a survey rating."""
        return self._submit(self._ratings, (call_id, rating, at))

    def submit_transfer(self, transfer: TransferRecord) -> bool:
        """Queue a transfer audit row."""
        return self._submit(self._transfers, transfer)

    def submit_action(self, action: ActionRecord) -> bool:
        """Queue a supervisor-action or MQTT-command audit row."""
        return self._submit(self._actions, action)

    def submit_event(self, event: Event) -> bool:
        """Queue an event for the MQTT outbox (written in submission order)."""
        return self._submit(self._events, event)

    async def start(self) -> None:
        """Start the background writer task (rows submitted before are kept and written)."""
        if self._task is not None:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="storage-writer")
        if self.pending:
            self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Write everything pending, then stop; after ``timeout`` seconds give up and log what is lost."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        self._full.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.error(
                "storage writer stopped with %d rows unwritten (%s): the database did not accept them within %gs",
                self.pending,
                self._lane_counts(),
                timeout,
            )
        finally:
            self._task = None

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (tests, shutdown); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._full.set()
        while self.pending:
            if loop.time() >= deadline:
                return False
            self._full.set()
            await asyncio.sleep(0.01)
        return True

    # ------------------------------------------------------------ internals

    def _submit(self, lane: _Lane[T], row: T) -> bool:
        try:
            if self.pending >= self.max_pending:
                self.dropped += 1
                if not self._overflowing:
                    self._overflowing = True
                    log.error(
                        "storage writer: %d rows pending, the bound (max_pending=%d) is hit; new rows are DROPPED "
                        "until the database catches up (first dropped: %s)",
                        self.pending,
                        self.max_pending,
                        lane.name,
                    )
                return False
            lane.rows.append(row)
            self._wake.set()
            if self.pending >= self.max_batch:
                self._full.set()
            return True
        except Exception:  # never let bookkeeping trouble reach the call path
            log.exception("storage writer: could not queue a %s row", lane.name)
            return False

    def _lane_counts(self) -> str:
        return ", ".join(f"{lane.name}={len(lane.rows)}" for lane in self._lanes if lane.rows)

    async def _run(self) -> None:
        delays = self._backoff()
        while True:
            if not self.pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.pending < self.max_batch and not self._stopping:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=self.max_delay)
            if await self._write_round():
                delays = self._backoff()
            else:
                await asyncio.sleep(next(delays))

    def _backoff(self) -> itertools.chain[float]:
        steps: list[float] = []
        delay = self.backoff_initial
        while delay < self.backoff_max:
            steps.append(delay)
            delay *= 2
        return itertools.chain(steps, itertools.repeat(self.backoff_max))

    async def _write_round(self) -> bool:
        """Write one batch from each lane; False when the database is unavailable (rows kept for the retry)."""
        for lane in self._lanes:
            if not lane.rows:
                continue
            batch = list(itertools.islice(lane.rows, self.max_batch))
            try:
                await self._write_isolating(lane, batch)
            except Exception as exc:
                self.failures += 1
                if self._down_since is None:
                    self._down_since = asyncio.get_running_loop().time()
                    log.warning(
                        "storage writer: database unavailable (%s); keeping %d rows (%s) and retrying",
                        mask_numbers(_short(exc)),
                        self.pending,
                        self._lane_counts(),
                    )
                return False
        if self._down_since is not None:
            down_for = asyncio.get_running_loop().time() - self._down_since
            self._down_since = None
            log.warning("storage writer: database back after %.1fs; writing the %d kept rows", down_for, self.pending)
        if self._overflowing and self.pending < self.max_pending // 2:
            self._overflowing = False
            log.warning("storage writer: below the bound again; %d rows were dropped in all", self.dropped)
        return True

    async def _write_isolating(self, lane: _Lane[T], batch: list[T]) -> None:
        """Write ``batch`` (the head of the lane) and pop what is done; halve a refused batch to drop only bad rows.

        Rows leave the queue as soon as their sub-batch is committed, so a
        later outage never makes them written twice.
        """
        try:
            await lane.write(batch)
        except Exception as exc:
            if not _is_bad_row(exc):
                raise
            if len(batch) == 1:
                lane.rows.popleft()
                lane.rejected += 1
                log.error(
                    "storage writer: dropped a %s row the database refused: %s", lane.name, mask_numbers(_short(exc))
                )
                return
            middle = len(batch) // 2
            await self._write_isolating(lane, batch[:middle])
            await self._write_isolating(lane, batch[middle:])
            return
        for _ in batch:
            lane.rows.popleft()
        lane.written += len(batch)


def _short(exc: BaseException) -> str:
    """First line of an exception, bounded (SQLAlchemy messages quote whole statements)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
