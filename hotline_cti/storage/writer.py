"""Batched writes off the call path: submit now, written within 0.2 s, kept on disk while the database is down.

``submit_*`` only appends to the spool (storage/spool.py: a local SQLite file,
or memory when none is given): it never awaits, never raises and never waits
for the database, so a slow or absent database cannot delay a routing decision
or the AMI event flow. One background task writes the spool's lanes in batches
(≤ ``max_batch`` rows or every ``max_delay`` seconds) and deletes a batch from
the spool only after the database committed it. When a write fails because
the database is unreachable or locked, or while ``may_write`` says no (schema
not migrated yet, lease not held), the rows stay in the spool and the task
retries with backoff; they are written in submission order once it can. A
crash between the commit and the delete replays the batch, which the store
writes idempotently (upserts by key, outbox events once by event id). The
spool is bounded (``max_pending`` rows, and the spool's bytes): past the bound
new rows are dropped with an error in the log, counted in ``dropped``.

A row the database refuses for what it holds (integrity or data error) is
isolated by halving its batch and then dropped with an error, so one bad row
never blocks the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.agent_states import AgentStateChange
from hotline_cti.records.model import CallRecord, TransferRecord
from hotline_cti.records.spy import SpyRecord
from hotline_cti.storage import spooled
from hotline_cti.storage.spool import Spool
from hotline_cti.storage.store import Store

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Lane(Generic[T]):
    """One kind of row: its spool lane, how a row is spooled and read back, and the store method that writes a
    batch of them."""

    name: str
    encode: Callable[[Any], str]
    decode: Callable[[str], T]
    write: Callable[[Sequence[T]], Awaitable[None]]
    written: int = 0
    rejected: int = 0


def _is_bad_row(exc: BaseException) -> bool:
    """True when the database refused the data itself (retrying cannot help); False for outages and locks."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError | TypeError | ValueError | AttributeError | KeyError):
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
        spool: Spool | None = None,
        may_write: Callable[[], bool] | None = None,
        node: str = "",
    ) -> None:
        self.store = store
        self.node = node  # the Asterisk node of this events service: named in every event it queues
        self.spool = spool if spool is not None else Spool()
        self.may_write = may_write
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._calls = _Lane("calls", spooled.encode_call, spooled.decode_call, store.upsert_calls)
        self._ratings = _Lane("ratings", spooled.encode_rating, spooled.decode_rating, store.add_ratings)
        self._transfers = _Lane("transfers", spooled.encode_transfer, spooled.decode_transfer, store.add_transfers)
        self._actions = _Lane("actions", spooled.encode_action, spooled.decode_action, store.add_actions)
        self._spies = _Lane("spies", spooled.encode_spy, spooled.decode_spy, store.add_spies)
        self._events = _Lane("events", spooled.encode_event, spooled.decode_event, store.append_outbox)
        self._agent_states = _Lane(
            "agent_states", spooled.encode_agent_state, spooled.decode_agent_state, store.add_agent_states
        )
        self._recovered = _Lane(
            "recovered", spooled.encode_recovered, spooled.decode_recovered, store.add_recovered_calls
        )
        # Written in this order each round: a call's row before the events that announce it.
        self._lanes: tuple[_Lane[Any], ...] = (
            self._calls,
            self._ratings,
            self._transfers,
            self._actions,
            self._agent_states,
            self._spies,
            self._events,
            self._recovered,
        )
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._outbox_listeners: list[Callable[[], object]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._down_since: float | None = None  # loop time of the first failed write of an outage
        self._overflowing = False
        self.dropped = 0  # rows refused because the bound was hit
        self.failures = 0  # failed write attempts (outages, locks)

    # ------------------------------------------------------------------ API

    @property
    def pending(self) -> int:
        """Rows waiting to be written (in the spool)."""
        return self.spool.count()

    @property
    def written(self) -> int:
        """Rows written so far."""
        return sum(lane.written for lane in self._lanes)

    @property
    def database_down(self) -> bool:
        """True between a failed write and the next successful one."""
        return self._down_since is not None

    def on_outbox_commit(self, listener: Callable[[], object]) -> None:
        """Call ``listener`` each time outbox rows were committed (the MQTT publisher's ``notify``): the
        publisher is told about new rows instead of polling for them."""
        self._outbox_listeners.append(listener)

    def submit_call(self, record: CallRecord) -> bool:
        """Queue a call record (upserted by call_id). Returns False only when the bound dropped it."""
        return self._submit(self._calls, record)

    def submit_rating(self, call_id: str, rating: int, at: dt.datetime) -> bool:
        """Queue a survey rating."""
        return self._submit(self._ratings, (call_id, rating, at))

    def submit_transfer(self, transfer: TransferRecord) -> bool:
        """Queue a transfer audit row."""
        return self._submit(self._transfers, transfer)

    def submit_spy(self, spy: SpyRecord) -> bool:
        """Queue a listen / whisper / barge audit row (again under the same spy_id once it ended)."""
        return self._submit(self._spies, spy)

    def submit_action(self, action: ActionRecord) -> bool:
        """Queue a supervisor-action or MQTT-command audit row."""
        return self._submit(self._actions, action)

    def submit_agent_state(self, change: AgentStateChange) -> bool:
        """Queue an agent state change (log-in, log-out, pause, ready)."""
        return self._submit(self._agent_states, change)

    def submit_recovered(self, record: CallRecord) -> bool:
        """Queue a call known only from Asterisk's CDR: stored with its ``calls/ended`` event unless the call is
        stored already (never replacing a record built from AMI)."""
        ended = Event("calls/ended", record.region, record.ended or record.started, record.to_dict(), self.node)
        return self._submit(self._recovered, (record, ended))

    def submit_event(self, event: Event) -> bool:
        """Queue an event for the MQTT outbox (written in submission order), naming this writer's node."""
        if self.node and not event.node:
            event = dataclasses.replace(event, node=self.node)
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
                "storage writer stopped with %d rows unwritten (%s): the database did not accept them within %gs; "
                "they stay in the spool (%s)",
                self.pending,
                self._lane_counts(),
                timeout,
                self.spool.path or "memory: lost",
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

    def _submit(self, lane: _Lane[Any], row: object) -> bool:
        try:
            if self.pending >= self.max_pending:
                bound = f"the bound (max_pending={self.max_pending}) is hit"
            elif not self.spool.append(lane.name, lane.encode(row)):
                bound = f"the spool {self.spool.path or 'in memory'} is FULL ({self.spool.bytes} of max {self.spool.max_bytes} bytes)"
            else:
                bound = ""
            if bound:
                self.dropped += 1
                if not self._overflowing:
                    self._overflowing = True
                    log.error(
                        "storage writer: %d rows pending, %s; new rows are DROPPED until the database catches up "
                        "(first dropped: %s)",
                        self.pending,
                        bound,
                        lane.name,
                    )
                return False
            self._wake.set()
            if self.pending >= self.max_batch:
                self._full.set()
            return True
        except Exception:  # never let bookkeeping trouble reach the call path
            log.exception("storage writer: could not queue a %s row", lane.name)
            return False

    def _lane_counts(self) -> str:
        return ", ".join(
            f"{lane.name}={self.spool.count(lane.name)}" for lane in self._lanes if self.spool.count(lane.name)
        )

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
            if self.may_write is not None and not self.may_write():
                if self._stopping:
                    return  # the rows stay spooled for the next writer that may write
                await asyncio.sleep(min(self.backoff_max, 0.2))
                continue
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
        # Only rows on disk go out: a row of an open commit group that reached the database and was then lost with
        # the group (kill -9) would be made again, differently, by the next run from its checkpoint.
        self.spool.commit()
        for lane in self._lanes:
            if not self.spool.count(lane.name):
                continue
            batch = self.spool.head(lane.name, self.max_batch)
            if not batch:  # the counts drifted (a rolled-back append): trust the file
                self.spool.recount()
                continue
            if lane is self._recovered:
                batch = self._after_older_rows(batch)
                if not batch:
                    continue
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
        if self._overflowing and self.pending < self.max_pending // 2 and self.spool.bytes < self.spool.max_bytes // 2:
            self._overflowing = False
            log.warning("storage writer: below the bound again; %d rows were dropped in all", self.dropped)
        return True

    def _after_older_rows(self, batch: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """The part of a recovered-calls batch spooled after every row still waiting in the other lanes: a record of
        the same call replayed from an earlier run's spool must land before the CDR's correction, not over it."""
        older = []
        for lane in self._lanes:
            if lane is not self._recovered and self.spool.count(lane.name):
                older += [row_id for row_id, _ in self.spool.head(lane.name, 1)]
        return [row for row in batch if row[0] < min(older)] if older else batch

    async def _write_isolating(self, lane: _Lane[T], batch: list[tuple[int, str]]) -> None:
        """Write ``batch`` (the head of the lane) and delete from the spool what is done; halve a refused batch to
        drop only bad rows.

        Rows leave the spool as soon as their sub-batch is committed, so a later
        outage does not write them again (and a crash in between replays them into
        idempotent writes).
        """
        try:
            await lane.write([lane.decode(body) for _, body in batch])
        except Exception as exc:
            if not _is_bad_row(exc):
                raise
            if len(batch) == 1:
                self.spool.delete(lane.name, batch)
                lane.rejected += 1
                log.error(
                    "storage writer: dropped a %s row the database refused: %s", lane.name, mask_numbers(_short(exc))
                )
                return
            middle = len(batch) // 2
            await self._write_isolating(lane, batch[:middle])
            await self._write_isolating(lane, batch[middle:])
            return
        self.spool.delete(lane.name, batch)
        lane.written += len(batch)
        if lane is self._events:
            for listener in self._outbox_listeners:
                try:
                    listener()
                except Exception:  # a listener must not make committed rows look unwritten
                    log.exception("storage writer: an outbox listener failed")


def _short(exc: BaseException) -> str:
    """First line of an exception, bounded (SQLAlchemy messages quote whole statements)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
