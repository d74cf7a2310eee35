"""BatchWriter: rows kept while the database is down (PostgreSQL stopped, SQLite locked), written in order after."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from pathlib import Path

import pytest

from hotline_cti.events import Event
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.pg_server import PgServer

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def call(i: int) -> CallRecord:
    return CallRecord(f"c{i}", "gx", T0 + dt.timedelta(seconds=i), outcome=Outcome.ANSWERED)


def event(i: int) -> Event:
    return Event("calls/ended", "gx", T0, {"i": i})


async def outbox_order(store: Store) -> list[int]:
    return [Event.from_json(p).data["i"] for _, _, p in await store.pending_events(limit=100_000)]


async def wait_until(predicate_coro, limit: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll until true (a bound, not a timing assertion: fails only if recovery never happens)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not await predicate_coro():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_batches_every_kind_in_order(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    writer = BatchWriter(store, max_batch=50)
    try:
        for i in range(120):  # submitted before start: kept and written once it runs
            writer.submit_event(event(i))
        await writer.start()
        for i in range(120, 1000):
            assert writer.submit_event(event(i))
        for i in range(30):
            writer.submit_call(call(i))
        writer.submit_rating("c3", 2, T0)
        await writer.stop()
        assert writer.pending == 0
        assert await outbox_order(store) == list(range(1000))
        rows = {r.call_id: r for r in await store.calls_between()}
        assert len(rows) == 30 and rows["c3"].rating == 2
    finally:
        await store.close()


async def test_sqlite_locked_then_released(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "locked.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", busy_timeout=0.05)
    writer = BatchWriter(store, max_delay=0.01, backoff_initial=0.02, backoff_max=0.1)
    await writer.start()
    # Another process holds the write lock (a backup, a stuck tool): every write fails "database is locked".
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="hotline_cti.storage.writer"):
            for i in range(300):
                assert writer.submit_event(event(i))  # returns at once; nothing waits for the lock
                writer.submit_call(call(i))

            async def failed_twice() -> bool:
                return writer.failures >= 2

            await wait_until(failed_twice)
            assert writer.database_down and writer.pending == 600
            assert "database unavailable" in caplog.text
            locker.execute("COMMIT")

            async def drained() -> bool:
                return writer.pending == 0

            await wait_until(drained)
            assert "database back" in caplog.text
        assert await outbox_order(store) == list(range(300))
        assert len(await store.calls_between()) == 300
    finally:
        locker.close()
        await writer.stop()
        await store.close()


async def test_postgresql_stopped_then_restarted(pg_server: PgServer, fresh_pg_url: str) -> None:
    store = await Store.open(fresh_pg_url)
    writer = BatchWriter(store, max_delay=0.01, backoff_initial=0.05, backoff_max=0.2)
    await writer.start()
    try:
        for i in range(100):
            writer.submit_event(event(i))
        assert await writer.flush()
        pg_server.stop()
        try:
            for i in range(100, 400):
                assert writer.submit_event(event(i))
                writer.submit_call(call(i))

            async def failing() -> bool:
                return writer.failures >= 2

            await wait_until(failing)
            assert writer.pending > 0
        finally:
            pg_server.start()

        async def drained() -> bool:
            return writer.pending == 0

        await wait_until(drained)
        assert await outbox_order(store) == list(range(400))
        assert [r.call_id for r in await store.calls_between()] == [f"c{i}" for i in range(100, 400)]
    finally:
        await writer.stop()
        await store.close()


async def test_bound_drops_new_rows_with_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    writer = BatchWriter(store, max_pending=5)  # not started: nothing drains
    try:
        with caplog.at_level(logging.ERROR, logger="hotline_cti.storage.writer"):
            accepted = [writer.submit_event(event(i)) for i in range(8)]
        assert accepted == [True] * 5 + [False] * 3
        assert writer.dropped == 3
        assert caplog.text.count("bound (max_pending=5) is hit") == 1  # once per episode, not per row
        await writer.start()
        await writer.stop()
        assert await outbox_order(store) == [0, 1, 2, 3, 4]
    finally:
        await store.close()


async def test_a_refused_row_is_dropped_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    writer = BatchWriter(store)
    try:
        writer.submit_rating("c1", 1, T0)
        writer.submit_rating("c2", "not a rating", T0)  # type: ignore[arg-type]
        writer.submit_rating("c3", 3, T0)
        for i in range(1, 4):
            writer.submit_call(call(i))
        with caplog.at_level(logging.ERROR, logger="hotline_cti.storage.writer"):
            await writer.start()
            await writer.stop()
        assert "dropped a ratings row the database refused" in caplog.text
        assert {r.call_id: r.rating for r in await store.calls_between()} == {"c1": 1, "c2": None, "c3": 3}
    finally:
        await store.close()


async def test_outbox_listeners_are_told_after_the_rows_are_committed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The MQTT publisher is told about new outbox rows by the writer (instead of polling): each listener runs
    once event rows were committed, not for other rows, and a failing one stops nobody."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    writer = BatchWriter(store, max_batch=10, max_delay=0.01)
    seen: list[int] = []

    def count_rows() -> None:
        seen.append(1)

    def broken() -> None:
        raise RuntimeError("listener bug")

    writer.on_outbox_commit(broken)
    writer.on_outbox_commit(count_rows)
    try:
        await writer.start()
        for i in range(5):
            writer.submit_call(call(i))
        await writer.flush()
        assert seen == []  # call rows only: the outbox did not change
        for i in range(25):
            writer.submit_event(event(i))
        await writer.flush()
        assert seen
        assert "an outbox listener failed" in caplog.text and writer.pending == 0
        assert await outbox_order(store) == list(range(25))  # the broken listener lost nothing
    finally:
        await writer.stop()
        await store.close()
