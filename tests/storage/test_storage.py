"""Store on SQLite and on a real PostgreSQL: upserts, ratings, transfers, outbox order, migrations = tables.py."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hotline_cti.core.model import TransferMode
from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord
from hotline_cti.storage import migrate
from hotline_cti.storage.store import Store, resolve_url
from hotline_cti.storage.tables import metadata

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    opened = await Store.open(url)
    try:
        yield opened
    finally:
        await opened.close()


def record(call_id: str, minutes: int = 0, **kw: Any) -> CallRecord:
    return CallRecord(call_id=call_id, region="gx", started=T0 + dt.timedelta(minutes=minutes), **kw)


async def test_schema_after_migration_equals_tables_py(store: Store) -> None:
    def diff(conn: sa.Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))

    assert await store.run_sync(diff) == []
    assert await store.schema_revision() == migrate.head_revision() == "0009_node_queue_oldest"


async def test_open_twice_keeps_rows_and_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"  # plain sqlite:// gets the aiosqlite driver
    first = await Store.open(url)
    await first.upsert_calls([record("1.1")])
    await first.close()
    second = await Store.open(url)
    try:
        assert [r.call_id for r in await second.calls_between()] == ["1.1"]
        assert await second.schema_revision() == "0009_node_queue_oldest"
    finally:
        await second.close()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    try:
        mode = await store.run_sync(lambda conn: conn.exec_driver_sql("PRAGMA journal_mode").scalar())
        assert mode == "wal"
    finally:
        await store.close()


async def test_call_record_round_trips_every_field(store: Store) -> None:
    full = record(
        "1700000000.1",
        ended=T0 + dt.timedelta(minutes=3),
        caller="138****5678",
        dialled="12315",
        form="local",
        origin="12315",
        mode="parallel",
        phase="transition",
        action="queue",
        target="l12315",
        centre="gx",
        city="nanning",
        queue="general",
        expert="e12315",
        fallback=False,
        overflowed=True,
        wait=42.5,
        agent="PJSIP/8001",
        talk=120.0,
        transfers=["110", "tax"],
        rating=2,
        outcome=Outcome.TRANSFERRED,
        hangup_cause=16,
        recording_file="1700000000.1-1700000012.wav",
        recording_path="/var/spool/asterisk/monitor/hotline/20231114/1700000000.1-1700000012.wav",
    )
    await store.upsert_calls([full])
    assert await store.calls_between() == [full]


async def test_upsert_replaces_by_call_id_and_keeps_rating(store: Store) -> None:
    await store.upsert_calls([record("a", outcome=Outcome.ACTIVE, rating=1)])
    await store.upsert_calls([record("a", outcome=Outcome.ANSWERED, agent="8001"), record("b", 1)])
    # the same call twice in one batch: the last one wins (PostgreSQL refuses two updates of one row)
    await store.upsert_calls([record("b", 1, queue="x"), record("b", 1, queue="y")])
    rows = {r.call_id: r for r in await store.calls_between()}
    assert rows["a"].outcome is Outcome.ANSWERED and rows["a"].agent == "8001" and rows["a"].rating == 1
    assert rows["b"].queue == "y"


async def test_ratings_merge_into_calls_and_later_rating_wins(store: Store) -> None:
    await store.upsert_calls([record("a"), record("b", 1)])
    await store.add_ratings([("a", 3, T0), ("a", 1, T0 + dt.timedelta(seconds=5))])
    await store.add_ratings([("b", 2, T0)])
    assert {r.call_id: r.rating for r in await store.calls_between()} == {"a": 1, "b": 2}


async def test_calls_between_filters_by_time_and_region(store: Store) -> None:
    other = CallRecord(call_id="yc", region="yc", started=T0 + dt.timedelta(minutes=5))
    await store.upsert_calls([record("m0", 0), record("m10", 10), record("m20", 20), other])
    since, until = T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=20)
    assert [r.call_id for r in await store.calls_between(since, until)] == ["yc", "m10"]
    assert [r.call_id for r in await store.calls_between(since, until, region="gx")] == ["m10"]
    # a naive or non-UTC bound means the same instant
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert [
        r.call_id for r in await store.calls_between(since=(T0 + dt.timedelta(minutes=15)).astimezone(beijing))
    ] == ["m20"]


async def test_overlong_strings_are_clipped_not_refused(store: Store) -> None:
    await store.upsert_calls([record("long", agent="A" * 500, transfers=["x" * 300, "y" * 300])])
    (row,) = await store.calls_between()
    assert row.agent == "A" * 80


async def test_transfers_audited_and_updated_by_id(store: Store) -> None:
    asked = TransferRecord("c1", T0, "PJSIP/8001-0001", "110", TransferMode.BLIND, "8001", "unknown", transfer_id="t1")
    done = TransferRecord("c1", T0, "PJSIP/8001-0001", "110", TransferMode.BLIND, "8001", "ok", transfer_id="t1")
    later = TransferRecord(
        "c2",
        T0 + dt.timedelta(minutes=1),
        "PJSIP/8002-0002",
        "tax",
        TransferMode.ATTENDED,
        "cli:ops",
        "refused",
        "no such channel",
    )
    await store.add_transfers([asked])
    await store.add_transfers([done, later])
    got = await store.transfers_between()
    assert [(t.call_id, t.result) for t in got] == [("c1", "ok"), ("c2", "refused")]
    assert got[1].transfer_id  # generated when the caller gave none
    assert got[1].mode is TransferMode.ATTENDED and got[1].reason == "no such channel"
    assert [t.call_id for t in await store.transfers_between(since=T0 + dt.timedelta(seconds=30))] == ["c2"]


async def test_actions_audited_once_per_id_with_numbers_masked_in_events(store: Store) -> None:
    ack = ActionRecord(T0, "wallboard:boss", "ack", "ok", detail="queue:gx-general:rate", action_id="a1")
    busy = ActionRecord(
        T0 + dt.timedelta(minutes=1), "mqtt:sup-1", "command:transfer", "busy", "id=r7 channel=PJSIP/13812345678-01"
    )
    await store.add_actions([ack])
    await store.add_actions([ack, busy])  # the same row submitted again stays one row
    got = await store.actions_between()
    assert [(a.actor, a.action, a.result) for a in got] == [
        ("wallboard:boss", "ack", "ok"),
        ("mqtt:sup-1", "command:transfer", "busy"),
    ]
    assert got[0] == ack and got[1].action_id == busy.action_id
    assert [a.action_id for a in await store.actions_between(since=T0 + dt.timedelta(seconds=30))] == [busy.action_id]
    event = busy.event("gx").to_json()
    assert "13812345678" not in event and mask_numbers(busy.detail) in event and "****" in mask_numbers(busy.detail)


async def test_command_replies_are_found_within_their_age_and_purged(store: Store) -> None:
    reply = {"id": "r1", "ok": True, "result": "ok", "transfer": {"target": "110"}}
    await store.add_command_reply("sup-1", "r1", T0, reply)
    assert await store.command_reply("sup-1", "r1", since=T0) == reply
    assert await store.command_reply("sup-2", "r1", since=T0) is None  # another sender's id
    assert await store.command_reply("sup-1", "r1", since=T0 + dt.timedelta(seconds=1)) is None  # too old
    newer = {**reply, "result": "refused"}
    await store.add_command_reply("sup-1", "r1", T0 + dt.timedelta(days=2), newer)  # ran again after expiry
    assert await store.command_reply("sup-1", "r1", since=T0 + dt.timedelta(days=1)) == newer
    await store.add_command_reply("sup-1", "r0", T0, reply)
    assert await store.purge_command_replies(before=T0 + dt.timedelta(days=1)) == 1
    assert await store.command_reply("sup-1", "r0", since=T0) is None


async def test_outbox_keeps_order_until_marked_sent(store: Store) -> None:
    events = [Event(f"calls/e{i}", "gx", T0, {"i": i, "name": "广西"}) for i in range(1200)]
    await store.append_events(events[:700])
    await store.append_events(events[700:])
    first = await store.pending_events(limit=500)
    assert [Event.from_json(p).data["i"] for _, _, p in first] == list(range(500))
    assert first[0][1] == "hotline/gx/calls/e0"
    assert Event.from_json(first[0][2]).data["name"] == "广西"
    await store.mark_sent([seq for seq, _, _ in first])
    rest = await store.pending_events(limit=10_000)
    assert [Event.from_json(p).data["i"] for _, _, p in rest] == list(range(500, 1200))
    assert all(a < b for (a, _, _), (b, _, _) in itertools.pairwise(rest))


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert resolve_url().drivername == "sqlite+aiosqlite"
    assert resolve_url().database == "./hotline-cti.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db.example/hotline")
    assert resolve_url().drivername == "postgresql+asyncpg"
    assert resolve_url("postgres://u@h/x").drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        resolve_url("mysql://u:secret@h/x")
    with pytest.raises(ValueError, match="not a database URL") as info:
        resolve_url("not a url")
    assert "secret" not in str(info.value)


async def test_plain_postgresql_url_gets_the_asyncpg_driver(fresh_pg_url: str) -> None:
    store = await Store.open(fresh_pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert store.dialect == "postgresql" and store.engine.url.drivername == "postgresql+asyncpg"
        assert await store.schema_revision() == "0009_node_queue_oldest"
    finally:
        await store.close()
