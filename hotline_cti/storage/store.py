"""The durable store: call records, ratings, transfer and action audit, and the MQTT outbox.

SQLAlchemy 2 async Core with bulk statements: SQLite through aiosqlite (WAL)
by default, PostgreSQL through asyncpg when the URL says so. The schema is
brought up to date with alembic when the store opens. Nothing here is on the
call path: adapters hand rows to :class:`hotline_cti.storage.writer.BatchWriter`,
which calls these methods in batches.

Times are UTC. SQLite keeps no zone, so values are normalised to UTC before
writing and read back as aware UTC datetimes on both databases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from hotline_cti.clock import utc_now
from hotline_cti.core.diversion import QueueState
from hotline_cti.core.model import TransferMode
from hotline_cti.events import Event
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.agent_states import AgentState, AgentStateChange
from hotline_cti.records.callback import CallbackRecord, CallbackStatus
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord
from hotline_cti.records.node_queues import NodeQueue
from hotline_cti.records.spy import SpyMode, SpyRecord
from hotline_cti.storage import migrate
from hotline_cti.storage.tables import (
    actions,
    agent_states,
    callbacks,
    caller_lists,
    calls,
    command_replies,
    node_queues,
    outbox,
    ratings,
    spies,
    transfers,
)

__all__ = ["DEFAULT_URL", "ENV_DATABASE_URL", "Store", "resolve_url"]

ENV_DATABASE_URL = "DATABASE_URL"
DEFAULT_URL = "sqlite+aiosqlite:///./hotline-cti.db"

_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def resolve_url(url: str | None = None) -> sa.URL:
    """The database URL: ``url``, else ``$DATABASE_URL``, else ``./hotline-cti.db``; async driver added.

    ``postgresql://`` (and ``postgres://``) become ``postgresql+asyncpg://``,
    ``sqlite://`` becomes ``sqlite+aiosqlite://``. Raises ``ValueError`` for
    anything that is not SQLite or PostgreSQL.
    """
    text = url or os.environ.get(ENV_DATABASE_URL) or DEFAULT_URL
    try:
        parsed = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise ValueError(f"{ENV_DATABASE_URL}: not a database URL: {_hide_password(text)!r}") from None
    name = parsed.drivername
    if name in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[name])
    elif name not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        raise ValueError(
            f"{ENV_DATABASE_URL}: unsupported database {name!r} (use sqlite+aiosqlite:///file.db or postgresql+asyncpg://...)"
        )
    return parsed


def _hide_password(text: str) -> str:
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable>"


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive value is taken as UTC already (that is how SQLite hands them back)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _within(
    query: sa.Select[Any], column: sa.ColumnElement[dt.datetime], since: dt.datetime | None, until: dt.datetime | None
) -> sa.Select[Any]:
    """``query`` limited to rows whose ``column`` is in ``[since, until)`` (an end that is None is open)."""
    if since is not None:
        query = query.where(column >= _utc(since))
    if until is not None:
        query = query.where(column < _utc(until))
    return query


def _clip(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their column's length: PostgreSQL refuses longer ones and one bad row must not block a batch."""
    for column in table.columns:
        value = row.get(column.name)
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            row[column.name] = value[:length]
    return row


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord))


def _call_row(record: CallRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _RECORD_FIELDS}
    row["started"] = _utc(record.started)
    row["ended"] = _utc_or_none(record.ended)
    row["transfers"] = ",".join(record.transfers)
    row["outcome"] = str(record.outcome)
    return _clip(calls, row)


def _record_from_row(row: sa.Row[Any]) -> CallRecord:
    m = row._mapping
    values = {name: m[name] for name in _RECORD_FIELDS}
    values["started"] = _utc(m["started"])
    values["ended"] = _utc_or_none(m["ended"])
    values["fallback"] = bool(m["fallback"])
    values["overflowed"] = bool(m["overflowed"])
    values["transfers"] = [t for t in m["transfers"].split(",") if t]
    values["rating"] = m["merged_rating"]  # the ratings table wins over the rating stored with the call
    values["outcome"] = Outcome(m["outcome"])
    return CallRecord(**values)


_CALLBACK_FIELDS = tuple(f.name for f in dataclasses.fields(CallbackRecord))
_CALLBACK_TIMES = ("offered", "accepted", "joined", "next_try", "answered", "reached", "closed")


def _callback_row(record: CallbackRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _CALLBACK_FIELDS}
    for name in _CALLBACK_TIMES:
        row[name] = _utc_or_none(row[name])
    row["status"] = str(record.status)
    return _clip(callbacks, row)


def _callback_from_row(row: sa.Row[Any]) -> CallbackRecord:
    m = row._mapping
    values = {name: m[name] for name in _CALLBACK_FIELDS}
    for name in _CALLBACK_TIMES:
        values[name] = _utc_or_none(values[name])
    values["status"] = CallbackStatus(m["status"])
    return CallbackRecord(**values)


class Store:
    """Async access to the hotline-cti database. Open with ``await Store.open(url)``; close when done."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Run first in every write transaction; raises to abort it. The events service sets it to its lease
        # check (storage/lease.py), so a writer that lost its lease cannot commit a single row.
        self.fence: Callable[[AsyncConnection], Awaitable[None]] | None = None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @classmethod
    async def open(cls, url: str | None = None, *, busy_timeout: float = 5.0, echo: bool = False) -> Store:
        """Connect (url, else $DATABASE_URL, else ./hotline-cti.db) and migrate the schema to the newest revision.

        SQLite runs in WAL mode (readers never block the writer) and waits up
        to ``busy_timeout`` seconds for a lock before failing the statement.
        """
        store = cls.connect(url, busy_timeout=busy_timeout, echo=echo)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    @classmethod
    def connect(cls, url: str | None = None, *, busy_timeout: float = 5.0, echo: bool = False) -> Store:
        """The store without touching the database yet (no connection, no migration): for a service that
        must start while the database is down and call :meth:`migrate` once it answers."""
        parsed = resolve_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": busy_timeout}
            if parsed.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own empty database
        else:
            kwargs["pool_pre_ping"] = True  # a restarted PostgreSQL leaves dead pooled connections behind
            # A down PostgreSQL must fail a connect within seconds, not hang the writer on the OS timeout.
            kwargs["connect_args"] = {"timeout": 5}
        engine = create_async_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    async def migrate(self, lock_timeout: float = 60.0) -> None:
        """Bring the schema to the newest revision, one migrator at a time (storage/migrate.py); raises while the
        database is unreachable, and TimeoutError when another migrator holds a SQLite file over ``lock_timeout``."""
        database = self.engine.url.database
        if self.dialect == "sqlite" and database not in (None, "", ":memory:"):
            async with migrate.sqlite_migration_lock(str(database), lock_timeout):
                await self._upgrade()
        else:
            await self._upgrade()

    async def _upgrade(self) -> None:
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":  # held to this transaction's end: alembic's DDL is in it
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": migrate.ADVISORY_LOCK_KEY})
            await conn.run_sync(migrate.upgrade)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- writes

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, fenced (see ``fence``)."""
        async with self.engine.begin() as conn:
            if self.fence is not None:
                await self.fence(conn)
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_update``/``do_nothing``."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def upsert_calls(self, records: Sequence[CallRecord]) -> None:
        """Insert or replace call records by call_id (last one wins; a stored rating is kept if the new one has none)."""
        if not records:
            return
        latest = {r.call_id: r for r in records}  # one row per key: PostgreSQL refuses to update a row twice
        stmt = self._insert(calls)
        update = {c.name: stmt.excluded[c.name] for c in calls.columns if c.name != "call_id"}
        update["rating"] = sa.func.coalesce(stmt.excluded.rating, calls.c.rating)
        stmt = stmt.on_conflict_do_update(index_elements=[calls.c.call_id], set_=update)
        async with self._writing() as conn:
            await conn.execute(stmt, [_call_row(r) for r in latest.values()])

    async def add_recovered_calls(self, items: Sequence[tuple[CallRecord, tuple[str, str, str]]]) -> None:
        """Store calls known only from Asterisk's CDR, each with its ``calls/ended`` outbox row, only where the
        call is not stored yet: a record built from AMI events (richer: the route) is never replaced, and a call
        stored already gets no second event. A stored call that was finished without its Hangup (no hang-up
        cause: a resync finished it when it found it gone) takes the CDR's end time. Idempotent."""
        if not items:
            return
        by_id = {record.call_id: (record, row) for record, row in items}
        async with self._writing() as conn:
            stored = set(
                (await conn.execute(sa.select(calls.c.call_id).where(calls.c.call_id.in_(list(by_id))))).scalars()
            )
            known = [by_id[call_id][0] for call_id in stored]
            if known:
                correct = (
                    sa.update(calls)
                    .where(calls.c.call_id == sa.bindparam("b_call_id"), calls.c.hangup_cause.is_(None))
                    .values(
                        ended=sa.bindparam("b_ended"),
                        talk=sa.func.coalesce(sa.bindparam("b_talk", type_=calls.c.talk.type), calls.c.talk),
                    )
                )
                rows = [{"b_call_id": r.call_id, "b_ended": _utc_or_none(r.ended), "b_talk": r.talk} for r in known]
                await conn.execute(correct, rows)
            new = [item for call_id, item in by_id.items() if call_id not in stored]
            if not new:
                return
            await conn.execute(
                self._insert(calls).on_conflict_do_nothing(index_elements=[calls.c.call_id]),
                [_call_row(record) for record, _ in new],
            )
            now = utc_now()
            await conn.execute(
                self._insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.event_id]),
                [{"event_id": i, "topic": t, "payload": p, "created": now} for _, (i, t, p) in new],
            )

    async def add_ratings(self, items: Sequence[tuple[str, int, dt.datetime]]) -> None:
        """Record survey ratings ``(call_id, rating, at)``; a later rating of the same call replaces the earlier."""
        if not items:
            return
        latest = {call_id: (call_id, rating, at) for call_id, rating, at in items}
        stmt = self._insert(ratings)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ratings.c.call_id], set_={"rating": stmt.excluded.rating, "at": stmt.excluded.at}
        )
        rows = [_clip(ratings, {"call_id": c, "rating": int(r), "at": _utc(a)}) for c, r, a in latest.values()]
        async with self._writing() as conn:
            await conn.execute(stmt, rows)

    async def add_transfers(self, items: Sequence[TransferRecord]) -> None:
        """Audit transfers; a row with a known transfer_id is updated (e.g. its result learnt later)."""
        if not items:
            return
        latest: dict[str, dict[str, Any]] = {}
        for t in items:
            row = t.to_dict()
            row["transfer_id"] = t.transfer_id or uuid.uuid4().hex
            row["at"] = _utc(t.at)
            latest[row["transfer_id"]] = _clip(transfers, row)
        stmt = self._insert(transfers)
        update = {c.name: stmt.excluded[c.name] for c in transfers.columns if c.name != "transfer_id"}
        stmt = stmt.on_conflict_do_update(index_elements=[transfers.c.transfer_id], set_=update)
        async with self._writing() as conn:
            await conn.execute(stmt, list(latest.values()))

    async def add_spies(self, items: Sequence[SpyRecord]) -> None:
        """Audit listen / whisper / barge requests; a known spy_id is updated (its end learnt later)."""
        if not items:
            return
        latest: dict[str, dict[str, Any]] = {}
        for spy in items:
            row = spy.to_dict()
            row["at"], row["started"], row["ended"] = _utc(spy.at), _utc_or_none(spy.started), _utc_or_none(spy.ended)
            latest[spy.spy_id] = _clip(spies, row)
        stmt = self._insert(spies)
        update = {c.name: stmt.excluded[c.name] for c in spies.columns if c.name != "spy_id"}
        stmt = stmt.on_conflict_do_update(index_elements=[spies.c.spy_id], set_=update)
        async with self._writing() as conn:
            await conn.execute(stmt, list(latest.values()))

    async def spies_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[SpyRecord]:
        """Listen / whisper / barge rows asked in ``[since, until)``, oldest first."""
        query = sa.select(spies)
        query = _within(query, spies.c.at, since, until)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(spies.c.at, spies.c.spy_id))).mappings().all()
        out = []
        for m in rows:
            values = dict(m)
            values["at"], values["started"], values["ended"] = (
                _utc(m["at"]),
                _utc_or_none(m["started"]),
                _utc_or_none(m["ended"]),
            )
            values["mode"] = SpyMode(m["mode"])
            out.append(SpyRecord(**values))
        return out

    async def add_actions(self, items: Sequence[ActionRecord]) -> None:
        """Audit supervisor actions and MQTT commands; a row with a known action_id is left as it is."""
        if not items:
            return
        rows: dict[str, dict[str, Any]] = {}
        for a in items:
            row = {
                "action_id": a.action_id,
                "at": _utc(a.at),
                "actor": a.actor,
                "action": a.action,
                "detail": a.detail,
                "result": a.result,
                "reason": a.reason,
            }
            rows[a.action_id] = _clip(actions, row)
        stmt = self._insert(actions).on_conflict_do_nothing(index_elements=[actions.c.action_id])
        async with self.engine.begin() as conn:
            await conn.execute(stmt, list(rows.values()))

    async def add_agent_states(self, items: Sequence[AgentStateChange]) -> None:
        """Append agent state changes; a change_id already there is skipped (a replayed spool batch)."""
        if not items:
            return
        rows: dict[str, dict[str, Any]] = {}
        for c in items:
            row = c.to_dict()
            row["at"] = _utc(c.at)
            rows[c.change_id] = _clip(agent_states, row)
        stmt = self._insert(agent_states).on_conflict_do_nothing(index_elements=[agent_states.c.change_id])
        async with self._writing() as conn:
            await conn.execute(stmt, list(rows.values()))

    async def agent_states_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AgentStateChange]:
        """Agent state changes in ``[since, until)``, oldest first."""
        query = sa.select(agent_states)
        query = _within(query, agent_states.c.at, since, until)
        query = query.order_by(agent_states.c.at, agent_states.c.change_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_agent_state_from_row(m) for m in rows]

    async def last_agent_states(self) -> list[AgentStateChange]:
        """The latest change of every (agent, queue): what the log says each agent is doing now."""
        latest = (
            sa.select(agent_states.c.agent, agent_states.c.queue, sa.func.max(agent_states.c.at).label("at"))
            .group_by(agent_states.c.agent, agent_states.c.queue)
            .subquery()
        )
        query = (
            sa.select(agent_states)
            .join(
                latest,
                sa.and_(
                    agent_states.c.agent == latest.c.agent,
                    agent_states.c.queue == latest.c.queue,
                    agent_states.c.at == latest.c.at,
                ),
            )
            .order_by(agent_states.c.at, agent_states.c.change_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        last: dict[tuple[str, str], AgentStateChange] = {}
        for m in rows:  # two changes in the same instant: the later id in order wins, as the log reads
            change = _agent_state_from_row(m)
            last[(change.agent, change.queue)] = change
        return list(last.values())

    async def add_command_reply(self, sender: str, command_id: str, at: dt.datetime, reply: dict[str, Any]) -> None:
        """Keep the reply of an MQTT command that ran. The handler runs an id again only once its stored reply
        is older than the replay TTL, so a row already there is an expired one: replaced."""
        row = {"sender": sender, "command_id": command_id, "at": _utc(at), "reply": json.dumps(reply)}
        stmt = self._insert(command_replies)
        stmt = stmt.on_conflict_do_update(
            index_elements=[command_replies.c.sender, command_replies.c.command_id],
            set_={"at": stmt.excluded.at, "reply": stmt.excluded.reply},
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt, [row])

    async def command_reply(self, sender: str, command_id: str, since: dt.datetime) -> dict[str, Any] | None:
        """The first reply of (sender, id) if it was given at or after ``since``, else None."""
        query = sa.select(command_replies.c.reply).where(
            command_replies.c.sender == sender,
            command_replies.c.command_id == command_id,
            command_replies.c.at >= _utc(since),
        )
        async with self.engine.connect() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        reply: dict[str, Any] | None = json.loads(text) if text is not None else None
        return reply

    async def purge_command_replies(self, before: dt.datetime) -> int:
        """Delete command replies older than ``before``; how many went."""
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(command_replies).where(command_replies.c.at < _utc(before)))
        return int(result.rowcount or 0)

    async def append_events(self, events: Sequence[Event]) -> None:
        """Append events to the MQTT outbox, in the given order (each with a new event id)."""
        await self.append_outbox([(uuid.uuid4().hex, e.topic, e.to_json()) for e in events])

    async def append_outbox(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Append ``(event_id, topic, payload)`` rows to the outbox in order; an event id already there is
        skipped, so a batch replayed after a crash (storage/spool.py) never makes an event twice."""
        if not rows:
            return
        now = utc_now()
        values = [{"event_id": i, "topic": t, "payload": p, "created": now} for i, t, p in rows]
        stmt = self._insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.event_id])
        async with self._writing() as conn:
            # A plain executemany (no RETURNING) inserts the rows one after another, so seq follows submission order.
            await conn.execute(stmt, values)

    async def pending_events(self, limit: int = 500) -> list[tuple[int, str, str]]:
        """Unsent outbox rows ``(seq, topic, payload)``, oldest first."""
        query = (
            sa.select(outbox.c.seq, outbox.c.topic, outbox.c.payload)
            .where(outbox.c.sent.is_(None))
            .order_by(outbox.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [(int(seq), topic_, payload) for seq, topic_, payload in result]

    async def mark_sent(self, seqs: Sequence[int]) -> None:
        """Mark outbox rows as delivered (the broker acknowledged them)."""
        if not seqs:
            return
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(outbox).where(outbox.c.seq.in_(list(seqs))).values(sent=utc_now()))

    async def put_node_queues(
        self,
        node: str,
        states: Mapping[str, QueueState],
        at: dt.datetime,
        oldest: Mapping[str, dt.datetime] | None = None,
    ) -> None:
        """Replace ``node``'s live queue rows with ``states`` (one transaction; live state, not fenced: the caller
        writes only while it holds its link's lease). ``oldest``: per queue with callers, when the longest-waiting
        one joined."""
        oldest = oldest or {}
        rows = [
            {
                "node": node,
                "queue": queue[:80],
                "members": s.members,
                "available": s.available,
                "free": s.free,
                "waiting": s.waiting,
                "holdtime": s.holdtime,
                "at": _utc(at),
                "oldest": _utc(oldest[queue]) if queue in oldest else None,
            }
            for queue, s in states.items()
        ]
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(node_queues).where(node_queues.c.node == node))
            if rows:
                await conn.execute(sa.insert(node_queues), rows)

    async def node_queue_rows(self) -> list[NodeQueue]:
        """Every node's live queue rows, by node and queue."""
        query = sa.select(node_queues).order_by(node_queues.c.node, node_queues.c.queue)
        async with self.engine.connect() as conn:
            return [
                NodeQueue(
                    m["node"],
                    m["queue"],
                    QueueState(m["members"], m["available"], m["free"], m["waiting"], m["holdtime"]),
                    _utc(m["at"]),
                    _utc_or_none(m["oldest"]),
                )
                for m in (row._mapping for row in await conn.execute(query))
            ]

    async def upsert_callbacks(self, records: Sequence[CallbackRecord]) -> None:
        """Insert or replace callbacks by id (the last state of each wins)."""
        if not records:
            return
        latest = {(r.node, r.callback_id): _callback_row(r) for r in records}
        stmt = self._insert(callbacks)
        keys = ("node", "callback_id")
        update = {c.name: stmt.excluded[c.name] for c in callbacks.columns if c.name not in keys}
        stmt = stmt.on_conflict_do_update(index_elements=[callbacks.c.node, callbacks.c.callback_id], set_=update)
        async with self._writing() as conn:
            await conn.execute(stmt, list(latest.values()))

    # ------------------------------------------------------------------ reads

    async def recording_path(self, call_id: str) -> str | None:
        """The recording path stored with a call ('' when not recorded), None for an unknown call."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(calls.c.recording_path).where(calls.c.call_id == call_id))).first()
        return None if row is None else str(row[0])

    async def open_callbacks(self, region: str, node: str | None = None) -> list[CallbackRecord]:
        """The region's callbacks not yet reached, given up or declined (start-up of the events service); with
        ``node``, that node's only (each node's keeper places its own)."""
        query = sa.select(callbacks).where(
            callbacks.c.region == region, callbacks.c.status.in_(["offered", "waiting", "calling", "retry", "listed"])
        )
        if node is not None:
            query = query.where(callbacks.c.node == node)
        async with self.engine.connect() as conn:
            ordered = query.order_by(callbacks.c.offered, callbacks.c.callback_id)
            return [_callback_from_row(row) for row in await conn.execute(ordered)]

    async def callbacks_between(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        region: str | None = None,
        node: str | None = None,
    ) -> list[CallbackRecord]:
        """Callbacks offered in ``[since, until)`` (optionally one node's), oldest first (KPIs)."""
        query = sa.select(callbacks)
        if node is not None:
            query = query.where(callbacks.c.node == node)
        query = _within(query, callbacks.c.offered, since, until)
        if region is not None:
            query = query.where(callbacks.c.region == region)
        async with self.engine.connect() as conn:
            return [
                _callback_from_row(row)
                for row in await conn.execute(query.order_by(callbacks.c.offered, callbacks.c.callback_id))
            ]

    async def calls_between(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        region: str | None = None,
        node: str | None = None,
    ) -> list[CallRecord]:
        """Calls that started in ``[since, until)`` (optionally one region, one Asterisk node; default every node),
        oldest first, ratings merged in."""
        merged = sa.func.coalesce(ratings.c.rating, calls.c.rating).label("merged_rating")
        query = sa.select(calls, merged).select_from(calls.outerjoin(ratings, ratings.c.call_id == calls.c.call_id))
        query = _within(query, calls.c.started, since, until)
        if region is not None:
            query = query.where(calls.c.region == region)
        if node is not None:
            query = query.where(calls.c.node == node)
        query = query.order_by(calls.c.started, calls.c.call_id)
        async with self.engine.connect() as conn:
            return [_record_from_row(row) for row in await conn.execute(query)]

    async def calls_ended_since(self, since: dt.datetime, other_than: str | None) -> list[CallRecord]:
        """Calls of every node but ``other_than`` that ended at or after ``since`` (a wall's other nodes; None:
        every node's, for a wall with no node of its own), ratings merged in."""
        merged = sa.func.coalesce(ratings.c.rating, calls.c.rating).label("merged_rating")
        query = (
            sa.select(calls, merged)
            .select_from(calls.outerjoin(ratings, ratings.c.call_id == calls.c.call_id))
            # started bounds the scan by its index: a call longer than the builder's 4 h max_age does not exist
            .where(calls.c.started >= _utc(since) - dt.timedelta(hours=4), calls.c.ended >= _utc(since))
            .order_by(calls.c.ended, calls.c.call_id)
        )
        if other_than is not None:
            query = query.where(calls.c.node != other_than)
        async with self.engine.connect() as conn:
            return [_record_from_row(row) for row in await conn.execute(query)]

    async def transfers_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[TransferRecord]:
        """Audited transfers made in ``[since, until)``, oldest first."""
        query = sa.select(transfers)
        query = _within(query, transfers.c.at, since, until)
        query = query.order_by(transfers.c.at, transfers.c.transfer_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            TransferRecord(
                call_id=m["call_id"],
                at=_utc(m["at"]),
                channel=m["channel"],
                target=m["target"],
                mode=TransferMode(m["mode"]),
                requested_by=m["requested_by"],
                result=m["result"],
                reason=m["reason"],
                transfer_id=m["transfer_id"],
            )
            for m in rows
        ]

    async def actions_between(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[ActionRecord]:
        """Audited actions made in ``[since, until)``, oldest first."""
        query = sa.select(actions)
        query = _within(query, actions.c.at, since, until)
        query = query.order_by(actions.c.at, actions.c.action_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            ActionRecord(
                at=_utc(m["at"]),
                actor=m["actor"],
                action=m["action"],
                result=m["result"],
                detail=m["detail"],
                reason=m["reason"],
                action_id=m["action_id"],
            )
            for m in rows
        ]

    # ----------------------------------------------------------------- caller lists (hashes only)

    async def add_listed(self, name: str, number_hash: str, at: dt.datetime, by: str, note: str = "") -> bool:
        """Put a hashed number on list ``name``; False when it was there already (the row is left as it is)."""
        row = _clip(
            caller_lists, {"list": name, "number_hash": number_hash, "added_at": _utc(at), "added_by": by, "note": note}
        )
        stmt = self._insert(caller_lists).on_conflict_do_nothing(
            index_elements=[caller_lists.c.list, caller_lists.c.number_hash]
        )
        async with self.engine.begin() as conn:  # not fenced: an operator's change, not a record
            result = await conn.execute(stmt, [row])
        return bool(result.rowcount)

    async def remove_listed(self, name: str, number_hash: str) -> bool:
        """Take a hashed number off list ``name``; False when it was not on it."""
        stmt = sa.delete(caller_lists).where(caller_lists.c.list == name, caller_lists.c.number_hash == number_hash)
        async with self.engine.begin() as conn:  # not fenced: an operator's change, not a record
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def caller_lists(self) -> dict[str, frozenset[str]]:
        """Every list and its hashes (what the routing service screens callers with)."""
        query = sa.select(caller_lists.c.list, caller_lists.c.number_hash)
        out: dict[str, set[str]] = {}
        async with self.engine.connect() as conn:
            for name, number_hash in (await conn.execute(query)).all():
                out.setdefault(name, set()).add(number_hash)
        return {name: frozenset(hashes) for name, hashes in out.items()}

    async def listed_rows(self, name: str | None = None) -> list[dict[str, Any]]:
        """The rows of list ``name`` (all lists when None), oldest first: list, number_hash, added_at, added_by, note."""
        query = sa.select(caller_lists).order_by(caller_lists.c.list, caller_lists.c.added_at)
        if name is not None:
            query = query.where(caller_lists.c.list == name)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [{**row, "added_at": _utc(row["added_at"])} for row in rows]

    async def schema_revision(self) -> str | None:
        """The alembic revision the database is at."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(migrate.current_revision)

    async def run_sync(self, fn: Any) -> Any:
        """Run ``fn(sync_connection)`` in a transaction (tests and tools: schema comparison, ad-hoc reads)."""
        conn: AsyncConnection
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)


def _agent_state_from_row(m: Any) -> AgentStateChange:
    return AgentStateChange(
        at=_utc(m["at"]),
        agent=m["agent"],
        queue=m["queue"],
        state=AgentState(m["state"]),
        reason=m["reason"],
        penalty=m["penalty"],
        source=m["source"],
        change_id=m["change_id"],
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL so readers (reports) never block the writer; NORMAL sync is durable enough with WAL."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
