"""Several Asterisk nodes, one store, one view (issue 19 items 2 and 3): everything but the real PBXs.

The node key (``<node>:<Uniqueid>``) made by the record builder and kept everywhere after it, the ``calls.node``
column and its migration, the writer lease per node and link, events naming their node, reports per node and
combined, transfer commands left to the node holding the call, and the wall's per-node queues.
tests/asterisk/test_asterisk_nodes.py runs two real Asterisk nodes into one PostgreSQL.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.adapters.ami.transfer import TransferExecutor, TransferTimeouts
from hotline_cti.adapters.mqtt.commands import CommandHandler
from hotline_cti.config.loader import load_config
from hotline_cti.core.diversion import QueueState
from hotline_cti.core.model import TransferMode
from hotline_cti.core.table import RoutingTable
from hotline_cti.core.transfer import TransferRequest
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.events import Event
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord, call_key, check_node, split_key
from hotline_cti.records.node_queues import NodeQueue, queue_totals
from hotline_cti.reports.render import render_report
from hotline_cti.serve import options
from hotline_cti.serve.node_queues import NodeQueueSharer
from hotline_cti.serve.systemname import SystemNameCheck
from hotline_cti.storage import migrate
from hotline_cti.storage.lease import Lease
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.live import LiveState
from hotline_cti.wallboard.peers import Peers
from simulators.ami_server import AmiServer
from tests.records.test_records_builder import T0, answered_call, records, run, snapshot

UID = "1700000000.1"
SECRET = "s3cret"


# --------------------------------------------------------------------------------------------- the key


def test_the_key_is_node_colon_uniqueid_and_bare_without_a_node() -> None:
    assert call_key("nn-1", UID) == f"nn-1:{UID}"
    assert call_key("nn-1", f"nn-1:{UID}") == f"nn-1:{UID}"  # keyed once only
    assert call_key("", UID) == UID
    assert split_key(f"nn-2:{UID}") == ("nn-2", UID)
    assert split_key(UID) == ("", UID)
    # Asterisk's own systemname prefix (systemname-<epoch>.<n>) is part of the uniqueid, not a node
    assert split_key("gl-1-1700000000.1") == ("", "gl-1-1700000000.1")
    assert split_key(f"nn-1:gl-1-{UID}") == ("nn-1", f"gl-1-{UID}")


@pytest.mark.parametrize("bad", ["", "a:b", "a/b", "a@b", "-x", "x" * 33, "a b", "南宁"])
def test_a_bad_node_name_is_refused_naming_where_it_came_from(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^--node: .* is not a node name"):
        check_node(bad, "--node")


def _args(*argv: str) -> argparse.Namespace:
    return options.parser("serve").parse_args(["--config", "x.yaml", *argv])


def test_the_node_is_the_flag_else_the_environment_else_the_short_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "nn-host-7.region.gx.gov.cn")
    monkeypatch.delenv("HOTLINE_NODE", raising=False)
    assert options.node_name(_args()) == "nn-host-7"
    monkeypatch.setenv("HOTLINE_NODE", "gl-2")
    assert options.node_name(_args()) == "gl-2"
    assert options.node_name(_args("--node", "nn-1")) == "nn-1"
    assert options.to_argv(_args("--node", "nn-1"))[-2:] == ["--node", "nn-1"]  # children get the same
    monkeypatch.setenv("HOTLINE_NODE", "bad:name")
    with pytest.raises(ValueError, match=r"^HOTLINE_NODE: 'bad:name' is not a node name"):
        options.node_name(_args())
    with pytest.raises(SystemExit):
        _args("--node", "a/b")


def test_the_lease_link_is_node_at_the_ami_link() -> None:
    args = _args("--ami", "127.0.0.1:5038")
    assert options.lease_link(args, "nn-1") == "nn-1@127.0.0.1:5038"
    assert options.lease_link(args, "nn-2") == "nn-2@127.0.0.1:5038"  # each node's own Asterisk, same address
    assert options.lease_link(_args("--ami", "10.0.0.5", "--link-id", "pbx-a"), "nn-1") == "nn-1@pbx-a"


# ------------------------------------------------------------------------------------------ the builder


def _without_key(rec: CallRecord) -> CallRecord:
    return dataclasses.replace(rec, call_id=split_key(rec.call_id)[1], node="")


def test_two_nodes_builders_make_the_same_call_two_records_equal_but_for_their_key() -> None:
    """The same AMI events (the same uniqueids) on two nodes: every lookup of the builder follows the key."""
    plain = records(run(RecordBuilder("gx"), answered_call()))
    outs = {node: run(RecordBuilder("gx", node=node), answered_call()) for node in ("nn-1", "nn-2")}
    for node, out in outs.items():
        recs = records(out)
        assert [r.call_id for r in recs] == [f"{node}:{UID}"] and [r.node for r in recs] == [node]
        assert [_without_key(r) for r in recs] == plain  # agent, wait, talk, rating, outcome: all found
        assert recs[0].outcome is Outcome.ANSWERED and recs[0].rating == 1 and recs[0].talk == 60.0
        for event in (o for o in out if isinstance(o, Event)):
            assert event.data["call_id"] == f"{node}:{UID}" and event.data["node"] == node


def test_an_agents_key_transfer_is_audited_under_the_key() -> None:
    builder = RecordBuilder("gx", node="nn-1")
    script = answered_call()[:7]
    hotline_transfer = {
        "Event": "UserEvent",
        "UserEvent": "HotlineTransfer",
        "CallId": UID,
        "Channel": "PJSIP/8001-00000002",
        "Target": "110",
        "Mode": "blind",
        "Result": "SUCCESS",
    }
    out = run(builder, [*script, (30, hotline_transfer)])
    (transfer,) = [o for o in out if isinstance(o, TransferRecord)]
    assert transfer.call_id == f"nn-1:{UID}"


def test_a_checkpoint_from_before_nodes_is_taken_back_under_the_key_and_resynced() -> None:
    old = RecordBuilder("gx")
    run(old, answered_call()[:3])
    checkpoint = list(old.open_calls().values())
    assert checkpoint[0]["record"]["call_id"] == UID  # written before nodes were named
    new = RecordBuilder("gx", node="nn-1")
    assert new.restore(checkpoint) == 1
    assert [r.call_id for r in new.snapshot()] == [f"nn-1:{UID}"]
    # the caller channel is still up at the login's resync: kept, then finished by its own Hangup
    assert records(new.resync([snapshot()], T0 + dt.timedelta(seconds=5))) == []
    (rec,) = records(run(new, answered_call()[3:]))
    assert (rec.call_id, rec.node, rec.queue, rec.outcome) == (f"nn-1:{UID}", "nn-1", "l12315", Outcome.ANSWERED)


def test_a_cdr_end_finds_the_keyed_call() -> None:
    builder = RecordBuilder("gx", node="nn-1")
    run(builder, answered_call()[:3])
    cdr = CallRecord(call_id=UID, region="gx", started=T0, ended=T0 + dt.timedelta(seconds=30))
    kind, out = builder.ended_per_cdr(cdr)
    assert kind == "open" and [r.call_id for r in records(out)] == [f"nn-1:{UID}"]


# ------------------------------------------------------------------------------------- store, migration


async def test_the_same_uniqueid_of_two_nodes_is_two_rows_and_reports_pick_or_combine(sqlite_store: Store) -> None:
    base = CallRecord(call_id="", region="gx", started=T0, ended=T0 + dt.timedelta(minutes=1), queue="gx-general")
    a = dataclasses.replace(base, call_id=call_key("nn-1", UID), node="nn-1", outcome=Outcome.ANSWERED, agent="a1")
    b = dataclasses.replace(base, call_id=call_key("nn-2", UID), node="nn-2", outcome=Outcome.ABANDONED)
    await sqlite_store.upsert_calls([a, b])
    everything = await sqlite_store.calls_between()
    assert sorted((r.call_id, r.node, r.outcome) for r in everything) == [
        (f"nn-1:{UID}", "nn-1", Outcome.ANSWERED),
        (f"nn-2:{UID}", "nn-2", Outcome.ABANDONED),
    ]
    assert [r.call_id for r in await sqlite_store.calls_between(node="nn-2")] == [f"nn-2:{UID}"]
    combined = render_report(everything, "csv")
    assert "nodes" in combined and "nn-1" in combined and "nn-2" in combined  # a section per node
    one = render_report(await sqlite_store.calls_between(node="nn-1"), "table", node="nn-1")
    assert "node nn-1" in one and "Asterisk nodes" not in one  # one node: no per-node section


OLD_CALL = (
    "INSERT INTO calls (call_id, region, started, caller, dialled, form, origin, mode, phase, action, target, centre,"
    " city, queue, expert, fallback, overflowed, agent, transfers, outcome) VALUES ('1.1', 'gx',"
    " '2026-03-01 08:00:00+00', '', '', '', '', '', '', '', '', '', '', '', '', false, false, '', '', 'answered')"
)
OLD_CALLBACK = (
    "INSERT INTO callbacks (callback_id, region, queue, number, source, status, offered, priority, attempts, agent)"
    " VALUES ('1.1', 'gx', 'gx-general', '13812345678', 'key', 'waiting', '2026-03-01 08:00:00+00', 0, 0, '')"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


async def test_a_database_at_0007_gets_nodes_with_its_calls_and_callbacks_kept(empty_url: str) -> None:
    """0008 on a database in service (SQLite and PostgreSQL): calls and callbacks kept, node '' for both, the
    callbacks' key now (node, id); and back down to 0007."""
    store = Store.connect(empty_url)

    def at_0007(conn: sa.Connection) -> None:
        migrate.upgrade(conn, "0007_recordings_and_spies")
        conn.execute(sa.text(OLD_CALL))
        conn.execute(sa.text(OLD_CALLBACK))

    def upgraded(conn: sa.Connection) -> tuple[Any, ...]:
        migrate.upgrade(conn, "0008_call_nodes")
        inspector = sa.inspect(conn)
        return (
            migrate.current_revision(conn),
            conn.execute(sa.text("SELECT call_id, node FROM calls")).all(),
            conn.execute(sa.text("SELECT node, callback_id, status FROM callbacks")).all(),
            inspector.get_pk_constraint("callbacks")["constrained_columns"],
            {ix["name"] for ix in inspector.get_indexes("calls")},
        )

    def downgraded(conn: sa.Connection) -> tuple[Any, ...]:
        command.downgrade(migrate.alembic_config(conn), "0007_recordings_and_spies")
        inspector = sa.inspect(conn)
        return (
            {c["name"] for c in inspector.get_columns("calls")},
            inspector.get_pk_constraint("callbacks")["constrained_columns"],
            conn.execute(sa.text("SELECT callback_id FROM callbacks")).all(),
        )

    try:
        await store.run_sync(at_0007)
        revision, calls, callbacks, pk, indexes = await store.run_sync(upgraded)
        assert revision == "0008_call_nodes"
        assert [tuple(r) for r in calls] == [("1.1", "")]
        assert [tuple(r) for r in callbacks] == [("", "1.1", "waiting")]
        assert sorted(pk) == ["callback_id", "node"] and "ix_calls_node" in indexes
        assert [r.callback_id for r in await store.open_callbacks("gx", "")] == ["1.1"]  # an unnamed keeper's own
        columns, pk, kept = await store.run_sync(downgraded)
        assert "node" not in columns and pk == ["callback_id"] and [tuple(r) for r in kept] == [("1.1",)]
    finally:
        await store.close()


async def test_a_database_at_0008_gets_the_queues_oldest_caller_column_and_keeps_its_rows(empty_url: str) -> None:
    """0009 (SQLite and PostgreSQL): node_queues rows kept, their ``oldest`` NULL (a wait nobody wrote is
    unknown, not 0); and back down to 0008."""
    store = Store.connect(empty_url)

    def at_0008(conn: sa.Connection) -> None:
        migrate.upgrade(conn, "0008_call_nodes")
        conn.execute(
            sa.text(
                "INSERT INTO node_queues (node, queue, members, available, free, waiting, holdtime, at)"
                " VALUES ('nn-2', 'gx-general', 2, 2, 0, 3, 40, '2026-03-01 08:00:00+00')"
            )
        )

    def columns(conn: sa.Connection) -> set[str]:
        return {c["name"] for c in sa.inspect(conn).get_columns("node_queues")}

    try:
        await store.run_sync(at_0008)
        await store.run_sync(migrate.upgrade)
        (row,) = await store.node_queue_rows()
        assert (row.node, row.state.waiting, row.oldest) == ("nn-2", 3, None)
        assert row.longest_wait(T0) is None  # callers wait, since when is not known
        await store.run_sync(lambda conn: command.downgrade(migrate.alembic_config(conn), "0008_call_nodes"))
        assert "oldest" not in await store.run_sync(columns)
    finally:
        await store.close()


# ------------------------------------------------------------------------------------------- the lease


async def test_one_nodes_lease_never_blocks_the_others_and_one_link_still_has_one_writer(sqlite_store: Store) -> None:
    link = "127.0.0.1:5038"  # every node's events service talks to its own Asterisk at the same address
    nn1 = Lease(sqlite_store, f"nn-1@{link}", "host-a:/spool", ttl=30)
    nn2 = Lease(sqlite_store, f"nn-2@{link}", "host-b:/spool", ttl=30)
    standby = Lease(sqlite_store, f"nn-1@{link}", "host-c:/spool", ttl=30)  # a second writer for nn-1's link
    assert (await nn1.acquire()).held
    assert (await nn2.acquire()).held  # not blocked by nn-1's
    state = await standby.acquire()
    assert not state.held and state.holder == "host-a:/spool"
    await nn1.release()
    assert (await standby.acquire()).held


# ---------------------------------------------------------------------------------------- events, writer


async def test_the_writer_names_its_node_in_every_event_and_the_envelope_round_trips(sqlite_store: Store) -> None:
    writer = BatchWriter(sqlite_store, node="nn-1")
    await writer.start()
    writer.submit_event(Event("transfers", "gx", T0, {"call_id": f"nn-1:{UID}"}))
    writer.submit_event(Event("calls/ended", "gx", T0, {"call_id": f"nn-2:{UID}"}, node="nn-2"))  # said already
    await writer.stop()
    payloads = [json.loads(p) for _, _, p in await sqlite_store.pending_events()]
    assert [p["node"] for p in payloads] == ["nn-1", "nn-2"]
    assert Event.from_json(json.dumps(payloads[0])).node == "nn-1"
    assert "node" not in json.loads(Event("transfers", "gx", T0).to_json())  # an unnamed single node: as before


# -------------------------------------------------------------------------------- transfers by call key


AGENT_CHANNEL, CALLER_CHANNEL = "PJSIP/agent1001-00000002", "PJSIP/trunk-00000001"


@pytest.fixture
async def pbx() -> Any:
    async with AmiServer(secret=SECRET) as srv:
        srv.add_channel(CALLER_CHANNEL, caller_num="13812345678", context="hotline-queue")
        srv.add_channel(AGENT_CHANNEL, caller_num="1001")
        srv.bridge(CALLER_CHANNEL, AGENT_CHANNEL)
        yield srv


async def test_a_transfer_naming_a_call_acts_on_its_agents_side_here_and_refuses_another_nodes(
    pbx: AmiServer, small_config_path: Path, sqlite_store: Store
) -> None:
    policy = build_policy(load_config(small_config_path).model)
    settings = AmiSettings(host="127.0.0.1", port=pbx.port, username="hotline", secret=SECRET, action_timeout=2.0)
    uid = pbx.channels[CALLER_CHANNEL].uniqueid
    writer = BatchWriter(sqlite_store, node="nn-1")
    await writer.start()
    async with AmiClient(settings) as client:
        executor = TransferExecutor(client, lambda: policy, writer, timeouts=TransferTimeouts(2, 2, 2), node="nn-1")
        other = await executor.execute(TransferRequest(f"nn-2:{uid}", "119", TransferMode.BLIND, "cli:t"))
        assert other.result == "refused" and "on node nn-2" in other.reason
        assert pbx.actions_named("BlindTransfer") == []
        done = await executor.execute(TransferRequest(f"nn-1:{uid}", "119", TransferMode.BLIND, "cli:t"))
    await writer.stop()
    assert (done.result, done.channel, done.call_id) == ("ok", AGENT_CHANNEL, f"nn-1:{uid}")
    (action,) = pbx.actions_named("BlindTransfer")
    assert action.get("Channel") == AGENT_CHANNEL


def _command(**body: Any) -> bytes:
    return json.dumps({"v": 1, "id": "c1", "type": "transfer", "to": "119", **body}).encode()


async def test_a_command_for_another_nodes_call_is_left_to_it_silently() -> None:
    asked: list[TransferRequest] = []

    async def transfer(request: TransferRequest) -> TransferRecord:
        asked.append(request)
        return TransferRecord(request.channel, T0, AGENT_CHANNEL, "119", request.mode, request.requested_by, "ok")

    handler = CommandHandler("gx", "tok", transfer, node="nn-1")
    topic = "hotline/gx/commands/transfer"
    assert await handler.handle(topic, _command(call=f"nn-2:{UID}", token="tok")) == []  # no reply, no error
    assert await handler.handle(topic, _command(channel=AGENT_CHANNEL, node="nn-2", token="tok")) == []
    assert asked == []
    (reply,) = await handler.handle(topic, _command(call=f"nn-1:{UID}", token="tok"))
    assert reply.data["ok"] and asked[-1].channel == f"nn-1:{UID}"
    (bare,) = await handler.handle(topic, _command(id="c2", call=UID, token="tok"))  # one node: acted on
    assert bare.data["ok"] and asked[-1].channel == UID
    errors = await handler.handle(topic, _command(id="c3", token="tok"))  # neither channel nor call
    assert "'channel' (the agent's) or 'call'" in errors[0].data["error"]
    single = CommandHandler("gx", "tok", transfer)  # a serve that knows no node acts on whatever it hears
    (acted,) = await single.handle(topic, _command(id="c4", call=f"nn-2:{UID}", token="tok"))
    assert acted.data["ok"]


# ------------------------------------------------------------------------------------------- the wall


def _state(members: int, available: int, free: int, waiting: int) -> QueueState:
    return QueueState(members, available, free, waiting, 0)


def test_a_callers_join_time_comes_from_the_tracker_clock_and_a_bad_wait_counts_as_none() -> None:
    from hotline_cti.records.queue_live import QueueTracker

    tracker = QueueTracker(clock=lambda: 1000.0)
    for uid, wait in (("u1", "30"), ("u2", "abc"), ("u3", "-5"), ("u4", "12345678901"), ("u5", "")):
        tracker.apply({"Event": "QueueEntry", "Queue": "q", "Uniqueid": uid, "Wait": wait})
    assert tracker.queues["q"].waiting == {"u1": 970.0, "u2": 1000.0, "u3": 1000.0, "u4": 1000.0, "u5": 1000.0}
    assert tracker.oldest() == {"q": 970.0}
    tracker.apply({"Event": "QueueCallerLeave", "Queue": "q", "Uniqueid": "u1"})
    assert tracker.oldest() == {"q": 1000.0}
    for uid in ("u2", "u3", "u4", "u5"):
        tracker.apply({"Event": "QueueCallerLeave", "Queue": "q", "Uniqueid": uid})
    assert tracker.oldest() == {}  # nobody waits: no row says a join time


def test_queue_totals_sum_live_nodes_and_list_a_stale_one() -> None:
    now = T0
    own = {"gx-general": {"waiting": 2, "free": 1, "busy": 1, "paused": 0}}
    peers = [
        NodeQueue("nn-2", "gx-general", _state(4, 3, 1, 5), now - dt.timedelta(seconds=2)),
        NodeQueue("nn-2", "l12315", _state(1, 1, 1, 0), now - dt.timedelta(seconds=2)),
        NodeQueue("nn-3", "gx-general", _state(2, 2, 0, 7), now - dt.timedelta(seconds=60)),  # gone quiet
        NodeQueue("nn-1", "gx-general", _state(9, 9, 9, 9), now),  # our own row: the live figures win
    ]
    by_queue, by_node = queue_totals("nn-1", own, peers, now)
    general = by_queue["gx-general"]
    assert (general["waiting"], general["free"], general["busy"], general["paused"]) == (7, 2, 3, 1)
    assert [(n["node"], n["waiting"], n["stale"]) for n in general["nodes"]] == [
        ("nn-1", 2, False),
        ("nn-2", 5, False),
        ("nn-3", 7, True),
    ]
    assert [(n["node"], n["waiting"], n["queues"], n["stale"]) for n in by_node] == [
        ("nn-1", 2, 1, False),
        ("nn-2", 5, 2, False),
        ("nn-3", 0, 1, True),
    ]


def test_the_longest_wait_is_the_longest_of_the_live_nodes_and_unknown_stays_unknown() -> None:
    now = T0
    own = {"gx-general": {"waiting": 1, "free": 0, "busy": 1, "paused": 0, "longest_wait": 30}}
    ago = now - dt.timedelta(seconds=2)
    peers = [
        NodeQueue("nn-2", "gx-general", _state(1, 1, 0, 2), ago, now - dt.timedelta(seconds=95)),
        NodeQueue("nn-2", "l12315", _state(1, 1, 1, 0), ago),  # nobody waits: 0, known
        NodeQueue(
            "nn-3", "gx-general", _state(1, 1, 0, 4), now - dt.timedelta(seconds=60), now - dt.timedelta(hours=1)
        ),
        NodeQueue("nn-4", "l12366", _state(1, 1, 0, 1), ago),  # callers, no join time (an older writer)
    ]
    by_queue, by_node = queue_totals("nn-1", own, peers, now)
    assert by_queue["gx-general"]["longest_wait"] == 95  # nn-2's caller; nn-3 is stale, left out
    assert [(n["node"], n["longest_wait"]) for n in by_queue["gx-general"]["nodes"]] == [
        ("nn-1", 30),
        ("nn-2", 95),
        ("nn-3", 3600),
    ]
    assert by_queue["l12315"]["longest_wait"] == 0 and by_queue["l12366"]["longest_wait"] is None
    assert [(n["node"], n["longest_wait"]) for n in by_node] == [
        ("nn-1", 30),
        ("nn-2", 95),
        ("nn-3", 0),  # stale: listed, not summed (its waiting is 0 here too)
        ("nn-4", None),
    ]


def test_the_walls_snapshot_shows_each_queue_per_node_and_in_total(small_table: RoutingTable) -> None:
    state = LiveState(small_table)
    state.node = "nn-1"
    now = T0
    state.apply({"Event": "QueueCallerJoin", "Queue": "gx-general", "Uniqueid": "c1", "CallerIDNum": "1"}, now)
    state.peers = [
        NodeQueue("nn-2", "gx-general", _state(2, 2, 1, 3), now),
        NodeQueue("nn-2", "l12315", _state(1, 1, 1, 0), now),
    ]
    snap = state.snapshot(now)
    rows = {q["queue"]: q for q in snap["queues"]}
    assert rows["gx-general"]["waiting"] == 4 and rows["l12315"]["free"] == 1
    assert [(n["node"], n["waiting"]) for n in rows["gx-general"]["nodes"]] == [("nn-1", 1), ("nn-2", 3)]
    assert snap["totals"]["waiting"] == 4
    assert [(n["node"], n["waiting"]) for n in snap["nodes"]] == [("nn-1", 1), ("nn-2", 3)]
    # nn-2's callers wait since a time it did not write (an older events service): unknown, it may be the longest
    assert rows["gx-general"]["longest_wait"] is None and snap["totals"]["longest_wait"] is None
    assert rows["l12315"]["longest_wait"] == 0  # nobody waits there
    state.peers = [NodeQueue("nn-2", "gx-general", _state(2, 2, 1, 3), now, now - dt.timedelta(seconds=200))]
    later = state.snapshot(now + dt.timedelta(seconds=10))
    general = next(q for q in later["queues"] if q["queue"] == "gx-general")
    assert general["longest_wait"] == 210 and later["totals"]["longest_wait"] == 210  # nn-2's, not our 10 s
    assert [(n["node"], n["longest_wait"]) for n in general["nodes"]] == [("nn-1", 10), ("nn-2", 210)]
    assert any(a.get("value") == 210 for a in later["alerts"])  # over the wait alert: raised from another node
    state.peers = []
    single = state.snapshot(now)
    assert single["nodes"] == [] and "nodes" not in single["queues"][0]  # one node: the wall as before


class _Feed:
    connected = True


async def test_a_node_shares_its_queues_and_a_wall_reads_the_others_and_their_calls(sqlite_store: Store) -> None:
    from hotline_cti.records.queue_live import QueueTracker

    tracker = QueueTracker(clock=lambda: T0.timestamp() - 5)
    tracker.apply({"Event": "QueueMember", "Queue": "gx-general", "Interface": "PJSIP/a1", "Status": "1"})
    tracker.apply({"Event": "QueueCallerJoin", "Queue": "gx-general", "Uniqueid": "u1"})
    tracker.apply({"Event": "QueueEntry", "Queue": "gx-general", "Uniqueid": "u0", "Wait": "40"})  # a re-read
    clock = [T0]
    sharer = NodeQueueSharer("nn-2", tracker, _Feed(), sqlite_store, lambda: True, clock=lambda: clock[0])  # type: ignore[arg-type]
    assert await sharer.write_if_due()
    assert not await sharer.write_if_due()  # nothing changed, heartbeat not due
    standby = NodeQueueSharer("nn-9", tracker, _Feed(), sqlite_store, lambda: False)  # type: ignore[arg-type]
    assert not await standby.write_if_due()  # no lease: shares nothing
    ended = CallRecord(call_id=f"nn-2:{UID}", region="gx", started=T0, ended=T0 + dt.timedelta(seconds=20), node="nn-2")
    own = dataclasses.replace(ended, call_id=f"nn-1:{UID}", node="nn-1")
    await sqlite_store.upsert_calls([ended, own])
    taken: list[list[CallRecord]] = []
    peers = Peers("nn-1", sqlite_store, taken.append, clock=lambda: T0 + dt.timedelta(seconds=21))
    assert await peers.read()
    assert [(q.node, q.queue, q.state.waiting, q.state.free) for q in peers.queues] == [("nn-2", "gx-general", 2, 1)]
    assert peers.queues[0].oldest == T0 - dt.timedelta(seconds=45)  # u0 joined 40 s before it was read
    assert peers.queues[0].longest_wait(T0 + dt.timedelta(seconds=21)) == 66
    assert [[r.call_id for r in batch] for batch in taken] == [[f"nn-2:{UID}"]]  # not our own node's
    assert not await peers.read()  # the same call again within the overlap: not taken twice
    assert len(taken) == 1


# ----------------------------------------------------------------------------------- Asterisk's systemname


class _Answer:
    def __init__(self, name: str) -> None:
        self.name, self.success = name, True

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.name if key == "SystemName" else default


class _Client:
    settings = AmiSettings(host="10.0.0.5", port=5038, username="u", secret="s")

    def __init__(self, name: str) -> None:
        self.name = name

    async def action(self, name: str, **kw: Any) -> _Answer:
        assert name == "CoreSettings"
        return _Answer(self.name)


@pytest.mark.parametrize(("systemname", "warned"), [("nn-1", False), ("gl-2", True), ("", False)])
async def test_asterisks_systemname_is_checked_against_the_node(
    systemname: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    check = SystemNameCheck("nn-1")
    with caplog.at_level(logging.INFO, logger="hotline_cti.serve.systemname"):
        await check(_Client(systemname))  # type: ignore[arg-type]
    assert check.reported == systemname
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    if warned:
        assert "calls itself 'gl-2'" in warnings[0] and "--node gl-2" in warnings[0]


# ------------------------------------------------------------------------------------------- callbacks


async def test_each_nodes_keeper_keeps_its_own_callbacks_and_equal_uniqueids_are_two(sqlite_store: Store) -> None:
    from hotline_cti.kpi.callbacks import with_callbacks
    from hotline_cti.serve.callback_keeper import CallbackKeeper
    from tests.records.test_callbacks import POLICY, Clock, Link, accepted

    keepers = {}
    for node in ("nn-1", "nn-2"):
        link = Link()
        keeper = CallbackKeeper(link, sqlite_store, POLICY, "gx", Clock(), node=node)  # type: ignore[arg-type]
        link.emit(accepted("1700.1"))  # the same Asterisk uniqueid on both nodes
        await keeper.tick()
        keepers[node] = keeper
    rows = await sqlite_store.open_callbacks("gx")
    assert sorted((r.node, r.callback_id) for r in rows) == [("nn-1", "1700.1"), ("nn-2", "1700.1")]
    for node in ("nn-1", "nn-2"):  # a restarted keeper takes back its own node's callbacks only
        fresh = CallbackKeeper(Link(), sqlite_store, POLICY, "gx", Clock(), node=node)  # type: ignore[arg-type]
        assert await fresh.load() == 1 and fresh.book.records["1700.1"].node == node
    (reached,) = [dataclasses.replace(r, reached=T0) for r in rows if r.node == "nn-2"]
    calls = [
        CallRecord(call_id=f"{n}:1700.1", region="gx", started=T0, node=n, outcome=Outcome.ABANDONED)
        for n in ("nn-1", "nn-2")
    ]
    counted = with_callbacks(calls, [reached], counts_as_answered=True)
    assert [(r.node, r.outcome) for r in counted] == [("nn-1", Outcome.ABANDONED), ("nn-2", Outcome.ANSWERED)]
