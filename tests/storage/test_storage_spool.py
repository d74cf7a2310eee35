"""The on-disk spool and the writer lease: rows survive a dead database and a killed writer, are written once,
and only the lease holder writes (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from pathlib import Path

import pytest

from hotline_cti.core.model import TransferMode
from hotline_cti.records.model import TransferRecord
from hotline_cti.storage.lease import Lease, LeaseLost
from hotline_cti.storage.spool import Spool, SpoolBusy, spool_path
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.pg_server import PgServer
from tests.storage.test_storage_writer import call, event, outbox_order, wait_until

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def transfer(i: int) -> TransferRecord:
    return TransferRecord(f"c{i}", T0, "PJSIP/a-1", "110", TransferMode.BLIND, "agent", "ok")  # no transfer_id


async def test_rows_wait_on_disk_while_the_database_is_down_and_are_written_once(tmp_path: Path) -> None:
    db = tmp_path / "down.db"
    path = spool_path(tmp_path / "spool", "127.0.0.1:5038")
    # The database is unusable (a directory where the file should be) when the writer starts.
    db.mkdir()
    store = Store.connect(f"sqlite+aiosqlite:///{db}")
    writer = BatchWriter(store, spool=Spool(path), max_delay=0.01, backoff_initial=0.02, backoff_max=0.1)
    await writer.start()
    for i in range(50):
        assert writer.submit_call(call(i))
        assert writer.submit_event(event(i))
        assert writer.submit_transfer(transfer(i))

    async def failing() -> bool:
        return writer.failures >= 2

    await wait_until(failing)
    # The events service is killed here: no stop(), no flush; the spool file is all that is left.
    task = writer._task
    assert task is not None
    task.cancel()
    writer.spool.close()
    await store.close()

    db.rmdir()  # the database is back
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    spool = Spool(path)
    assert spool.count() == 150
    writer = BatchWriter(store, spool=spool)
    try:
        await writer.start()
        await writer.stop()
        assert spool.count() == 0 and spool.bytes == 0
        assert await outbox_order(store) == list(range(50))
        assert len(await store.calls_between()) == 50
        assert len(await store.transfers_between()) == 50
    finally:
        spool.close()
        await store.close()


async def test_a_batch_replayed_after_its_commit_is_not_written_twice(tmp_path: Path) -> None:
    """kill -9 between the database commit and the spool delete: the next writer replays the same rows."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    spool = Spool(tmp_path / "spool.db")
    writer = BatchWriter(store, spool=spool)
    try:
        for i in range(30):
            writer.submit_call(call(i))
            writer.submit_event(event(i))
            writer.submit_transfer(transfer(i))
        spooled = {lane: spool.head(lane, 1000) for lane in ("calls", "events", "transfers")}
        await writer.start()
        await writer.stop()
        for lane, rows in spooled.items():  # the deletes never happened
            for _, body in rows:
                assert spool.append(lane, body)
        assert spool.count() == 90
        await writer.start()
        await writer.stop()
        assert spool.count() == 0
        assert await outbox_order(store) == list(range(30))
        assert len(await store.calls_between()) == 30
        assert len(await store.transfers_between()) == 30
    finally:
        spool.close()
        await store.close()


async def test_a_full_spool_refuses_rows_with_one_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    spool = Spool(tmp_path / "spool.db", max_bytes=2000)
    writer = BatchWriter(store, spool=spool)  # not started: nothing drains
    try:
        with caplog.at_level(logging.ERROR, logger="hotline_cti.storage.writer"):
            accepted = [writer.submit_event(event(i)) for i in range(40)]
        kept = accepted.count(True)
        assert 0 < kept < 40 and accepted == [True] * kept + [False] * (40 - kept)
        assert spool.bytes <= 2000 and writer.dropped == 40 - kept
        assert caplog.text.count("is FULL") == 1
    finally:
        spool.close()
        await store.close()


def test_one_process_per_spool(tmp_path: Path) -> None:
    first = Spool(tmp_path / "s.db")
    try:
        with pytest.raises(SpoolBusy):
            Spool(tmp_path / "s.db")
    finally:
        first.close()
    Spool(tmp_path / "s.db").close()  # free again once the holder is gone


async def _lease_cycle(url: str) -> None:
    a_store, b_store = await Store.open(url), await Store.open(url)
    a = Lease(a_store, "10.0.0.5:5038", "host-a", ttl=1.0)
    b = Lease(b_store, "10.0.0.5:5038", "host-b", ttl=1.0)
    try:
        first = await a.acquire()
        assert first.held and first.previous == ""
        state = await b.acquire()
        assert not state.held and state.holder == "host-a" and 0 < state.remaining <= 1.0
        a_store.fence = a.fence
        b_store.fence = b.fence
        await a_store.upsert_calls([call(1)])
        with pytest.raises(LeaseLost):
            await b_store.upsert_calls([call(2)])
        assert (await a.acquire()).held  # a renewal
        await asyncio.sleep(1.3)  # a is paused past its expiry; b takes over
        assert (await b.acquire()).held
        with pytest.raises(LeaseLost):
            await a_store.upsert_calls([call(3)])  # a woke up: not one row more
        assert not (await a.acquire()).held
        await b_store.upsert_calls([call(4)])
        assert [r.call_id for r in await a_store.calls_between()] == ["c1", "c4"]
        await b.release()
        state = await a.acquire()
        assert state.held and state.previous == "host-b"  # at once, without waiting for expiry; b wrote before
        assert (await a.acquire()).previous == "host-a"
        other = Lease(b_store, "10.0.0.6:5038", "host-b", ttl=1.0)
        assert (await other.acquire()).held  # leases are per link
    finally:
        await a_store.close()
        await b_store.close()


async def test_lease_sqlite(tmp_path: Path) -> None:
    await _lease_cycle(f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}")


async def test_lease_postgresql(pg_server: PgServer, fresh_pg_url: str) -> None:
    await _lease_cycle(fresh_pg_url)


async def test_group_commit_shares_one_commit_and_keeps_atomic_blocks_whole(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    spool = Spool(path, group_commit=0.05)
    try:
        spool.append("events", "a")
        with spool.atomic():
            spool.append("calls", "b")
            spool.forget_open(["c1"])
        with pytest.raises(RuntimeError), spool.atomic():
            spool.append("calls", "rolled back")
            raise RuntimeError
        assert spool.count() == 2  # the failed block alone was undone, the group stays open

        def on_disk() -> int:
            reader = sqlite3.connect(path)
            try:
                return int(reader.execute("SELECT count(*) FROM spool").fetchone()[0])
            finally:
                reader.close()

        assert on_disk() == 0  # not committed yet
        await asyncio.sleep(0.15)
        assert on_disk() == 2  # one commit, at the end of the window
    finally:
        spool.close()


async def test_writer_ships_only_rows_the_spool_has_committed(tmp_path: Path) -> None:
    """A row in an open commit group is not on disk yet: written to the database and then lost with the group
    (kill -9 inside the window), the next run would make the same call's record and event again, differently (the
    checkpoint still holds the call). The writer commits the group before it reads the spool."""
    path = tmp_path / "s.db"
    spool = Spool(path, group_commit=60.0)  # a window no test outlives: only the writer can commit it
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.db'}")
    seen_on_disk: list[int] = []
    original = store.append_outbox

    async def append_outbox(rows: list[tuple[str, str, str]]) -> None:
        reader = sqlite3.connect(path)
        try:
            seen_on_disk.append(int(reader.execute("SELECT count(*) FROM spool WHERE lane = 'events'").fetchone()[0]))
        finally:
            reader.close()
        await original(rows)

    store.append_outbox = append_outbox  # type: ignore[method-assign]
    writer = BatchWriter(store, spool=spool, max_delay=0.01)
    try:
        await writer.start()
        with spool.atomic():
            assert writer.submit_event(event(1))
            spool.forget_open(["c1"])

        async def written() -> bool:
            return writer.pending == 0

        await wait_until(written)
        assert seen_on_disk == [1]  # on disk before it went to the database
    finally:
        await writer.stop()
        spool.close()
        await store.close()
