"""The agent state book (pure), the state log on SQLite and PostgreSQL, and agent commands over MQTT (issue 18)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from hotline_cti.adapters.ami.agents import AgentControl, AgentOutcome
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler
from hotline_cti.cli.main import main
from hotline_cti.core.transfer import TransferRequest
from hotline_cti.kpi.agent_time import agent_figures
from hotline_cti.records.agent_book import AgentBook
from hotline_cti.records.agent_states import AgentState, AgentStateChange
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord
from hotline_cti.reports.render import render_report
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.paths import DATA

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
IFACE = "Local/agent1001@hotline-agents/n"


def member_event(name: str, queue: str, paused: str = "0", reason: str = "", **extra: str) -> dict[str, str]:
    return {
        "Event": name,
        "Queue": queue,
        "MemberName": "agent1001",
        "Interface": IFACE,
        "Penalty": "0",
        "Paused": paused,
        "PausedReason": reason,
        **extra,
    }


def listed(queue: str, paused: str = "0", reason: str = "", membership: str = "dynamic") -> dict[str, str]:
    """QueueStatus's item: Name and Location instead of MemberName and Interface."""
    return {"Event": "QueueMember", "Queue": queue, "Name": "agent1001", "Location": IFACE, "Penalty": "3"} | {
        "Paused": paused,
        "PausedReason": reason,
        "Membership": membership,
    }


def states(changes: list[AgentStateChange]) -> list[tuple[str, str, str, str]]:
    return [(c.queue, str(c.state), c.reason, c.source) for c in changes]


def test_member_events_become_changes_once() -> None:
    book = AgentBook()
    assert states(book.apply(member_event("QueueMemberAdded", "q1"), T0)) == [("q1", "login", "", "ami")]
    assert book.apply(member_event("QueueMemberAdded", "q1"), T0) == []  # nothing new
    assert states(book.apply(member_event("QueueMemberPause", "q1", "1", "lunch"), T0)) == [
        ("q1", "pause", "lunch", "ami")
    ]
    assert states(book.apply(member_event("QueueMemberPause", "q1", "1", "training"), T0)) == [
        ("q1", "pause", "training", "ami")
    ]
    assert states(book.apply(member_event("QueueMemberPause", "q1", "0"), T0)) == [("q1", "ready", "", "ami")]
    assert states(book.apply(member_event("QueueMemberRemoved", "q1"), T0)) == [("q1", "logout", "", "ami")]
    assert book.apply(member_event("QueueMemberRemoved", "q1"), T0) == []
    assert book.apply({"Event": "QueueMemberAdded", "Queue": "q1"}, T0) == []  # no member named
    assert book.apply({"Event": "Hangup"}, T0) == []


def test_resync_logs_only_what_changed_while_away_and_ignores_static_members() -> None:
    book = AgentBook()
    last = [
        AgentStateChange(T0, "agent1001", "q1", AgentState.LOGIN, penalty=0),
        AgentStateChange(T0, "agent1001", "q2", AgentState.LOGIN, penalty=0),
        AgentStateChange(T0, "agent1001", "q2", AgentState.PAUSE, "lunch"),
        AgentStateChange(T0, "agent1001", "q3", AgentState.LOGOUT),
    ]
    book.load(last)
    assert sorted(book.members) == [("agent1001", "q1"), ("agent1001", "q2")]
    now = T0 + dt.timedelta(hours=1)
    changes = book.resync(
        [listed("q2", "1", "lunch"), listed("q4", "1", "training"), listed("q5", membership="static")], now
    )
    assert states(changes) == [
        ("q1", "logout", "", "resync"),
        ("q4", "login", "", "resync"),
        ("q4", "pause", "training", "resync"),
    ]
    assert changes[1].penalty == 3 and {c.at for c in changes} == {now}


def test_a_list_asked_for_before_live_changes_does_not_undo_them() -> None:
    """QueueStatus asked for at connect, a log-in and a pause on the live connection before its list arrives:
    the list (without them) must not log the agent out and in again; a member no event touched is resynced."""
    book = AgentBook()
    book.load([AgentStateChange(T0, "agent1001", "q9", AgentState.LOGIN, penalty=0)])
    asked = book.mark()
    live = book.apply(member_event("QueueMemberAdded", "q1"), T0)
    live += book.apply(member_event("QueueMemberPause", "q1", "1", "lunch"), T0)
    assert states(live) == [("q1", "login", "", "ami"), ("q1", "pause", "lunch", "ami")]
    later = T0 + dt.timedelta(seconds=1)
    # the list was taken before the log-in (no q1), and shows q2 that joined while nobody listened
    changes = book.resync([listed("q2")], later, since=asked)
    assert states(changes) == [("q9", "logout", "", "resync"), ("q2", "login", "", "resync")]
    assert book.members[("agent1001", "q1")].paused and book.members[("agent1001", "q1")].reason == "lunch"
    # a list that does show q1, unpaused and stale, changes nothing of q1 either
    assert states(book.resync([listed("q1"), listed("q2")], later, since=asked)) == []
    # without a mark (a list read with no live events to trust) the list is the truth, as before
    assert states(book.resync([listed("q2")], later)) == [("q1", "logout", "", "resync")]


def test_autopause_after_n_unanswered_rings_in_a_row() -> None:
    book = AgentBook(autopause_after=2)
    book.apply(member_event("QueueMemberAdded", "q1"), T0)
    ring = {"Event": "AgentRingNoAnswer", "MemberName": "agent1001", "Interface": IFACE}
    assert book.ring_no_answer(ring) is None
    book.apply({"Event": "AgentConnect", "MemberName": "agent1001"}, T0)  # an answered call: count again
    assert book.ring_no_answer(ring) is None
    assert book.ring_no_answer(ring) == "agent1001"
    assert book.ring_no_answer(ring) is None  # counting again from 0
    book.apply(member_event("QueueMemberPause", "q1", "1", "autopause"), T0)
    assert book.ring_no_answer(ring) is None
    assert book.ring_no_answer(ring) is None  # already paused: no second pause
    assert AgentBook(autopause_after=0).ring_no_answer(ring) is None  # 0: never
    static = AgentBook(autopause_after=1)  # a member the book never saw log in (a site's static member)
    assert static.ring_no_answer(ring) is None


def test_a_pause_by_app_queue_itself_is_logged_as_autopause() -> None:
    book = AgentBook()
    book.apply(member_event("QueueMemberAdded", "q1"), T0)
    assert states(book.apply(member_event("QueueMemberPause", "q1", "1", "autopause"), T0)) == [
        ("q1", "pause", "autopause", "autopause")
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_log_keeps_every_change_and_its_last_state(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    store = await Store.open(url)
    writer = BatchWriter(store)
    await writer.start()
    try:
        rows = [
            AgentStateChange(T0, "agent1001", "q1", AgentState.LOGIN, penalty=2),
            AgentStateChange(T0 + dt.timedelta(minutes=1), "agent1001", "q1", AgentState.PAUSE, "lunch"),
            AgentStateChange(T0 + dt.timedelta(minutes=2), "agent1002", "q1", AgentState.LOGIN),
            AgentStateChange(T0 + dt.timedelta(minutes=3), "agent1002", "q1", AgentState.LOGOUT),
        ]
        for row in rows:
            writer.submit_agent_state(row)
        writer.submit_agent_state(rows[0])  # a replayed spool row is stored once
        assert await writer.flush()
        assert await store.agent_states_between() == rows
        last = {(c.agent, c.queue): (c.state, c.reason) for c in await store.last_agent_states()}
        assert last == {("agent1001", "q1"): (AgentState.PAUSE, "lunch"), ("agent1002", "q1"): (AgentState.LOGOUT, "")}
        since = T0 + dt.timedelta(minutes=2)
        assert [c.agent for c in await store.agent_states_between(since)] == ["agent1002", "agent1002"]
    finally:
        await writer.stop()
        await store.close()


def _agent_command(ident: str, **fields: str) -> bytes:
    return json.dumps({"v": 1, "id": ident, "type": "agent", **fields}).encode()


async def test_agent_commands_over_mqtt_run_once_are_checked_and_audited(
    batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    ran: list[tuple[str, str, str]] = []

    async def agents(action: str, agent: str, reason: str) -> AgentOutcome:
        ran.append((action, agent, reason))
        return AgentOutcome(agent, action, "ok", ("gx-general",), pause_reason=reason)

    async def transfer(request: TransferRequest) -> TransferRecord:
        raise AssertionError("must not run")

    handler = CommandHandler("gx", CommandSettings(), transfer, audit=batch_writer, agents=agents)
    topic = "hotline/gx/commands/sup1/agent"
    (reply,) = await handler.handle(topic, _agent_command("a1", agent="agent1001", action="pause", reason="lunch"))
    assert reply.type == "replies/sup1/a1" and reply.data["ok"] is True
    assert reply.data["agent"]["queues"] == ["gx-general"]
    (again,) = await handler.handle(topic, _agent_command("a1", agent="agent1001", action="pause", reason="lunch"))
    assert again.data["replayed"] is True
    assert ran == [("pause", "agent1001", "lunch")]
    for ident, fields, message in [
        ("a2", {"agent": "agent 1001", "action": "login"}, "an agent id of letters and digits"),
        ("a3", {"agent": "agent1001", "action": "reboot"}, "unknown agent action 'reboot'"),
        ("a4", {"agent": "agent1001", "action": "pause"}, "pause needs 'reason'"),
    ]:
        error, refusal = await handler.handle(topic, _agent_command(ident, **fields))
        assert message in error.data["error"] and refusal.data["ok"] is False
    assert len(ran) == 1
    without = CommandHandler("gx", CommandSettings(), transfer)
    error, _ = await without.handle(topic, _agent_command("a5", agent="agent1001", action="login"))
    assert "serve runs without --ami" in error.data["error"]
    await batch_writer.stop()
    audited = [(a.actor, a.action, a.result, a.detail) for a in await sqlite_store.actions_between()]
    assert ("mqtt:sup1", "command:agent", "ok", "id=a1 agent=agent1001 action=pause reason=lunch") in audited
    assert ("mqtt:sup1", "command:agent", "replayed", "id=a1 agent=agent1001 action=pause reason=lunch") in audited
    await batch_writer.start()


def test_agent_figures_logged_in_paused_by_reason_talk_and_occupancy() -> None:
    m = dt.timedelta(minutes=1)
    since, until = T0, T0 + 60 * m
    log = [
        # in q1 from before the window until 40 min in; in q2 from 10 to 50 min
        AgentStateChange(T0 - 30 * m, "agent1001", "q1", AgentState.LOGIN),
        AgentStateChange(T0 + 10 * m, "agent1001", "q2", AgentState.LOGIN),
        # lunch 20-30 in both queues, then training from 30 until the log-out of q1 at 40 (q2: until 35)
        AgentStateChange(T0 + 20 * m, "agent1001", "q1", AgentState.PAUSE, "lunch"),
        AgentStateChange(T0 + 20 * m, "agent1001", "q2", AgentState.PAUSE, "lunch"),
        AgentStateChange(T0 + 30 * m, "agent1001", "q1", AgentState.PAUSE, "training"),
        AgentStateChange(T0 + 30 * m, "agent1001", "q2", AgentState.PAUSE, "training"),
        AgentStateChange(T0 + 35 * m, "agent1001", "q2", AgentState.READY),
        AgentStateChange(T0 + 40 * m, "agent1001", "q1", AgentState.LOGOUT),
        AgentStateChange(T0 + 50 * m, "agent1001", "q2", AgentState.LOGOUT),
        # still in at the end of the window, and a change after it (ignored)
        AgentStateChange(T0 + 45 * m, "agent1002", "q1", AgentState.LOGIN),
        AgentStateChange(T0 + 70 * m, "agent1002", "q1", AgentState.LOGOUT),
    ]
    calls = [
        CallRecord("c1", "gx", T0 + 5 * m, queue="q1", agent="agent1001", talk=300.0, outcome=Outcome.ANSWERED),
        CallRecord("c2", "gx", T0 + 12 * m, queue="q2", agent="agent1001", talk=120.0, outcome=Outcome.ANSWERED),
        CallRecord("c3", "gx", T0 - 5 * m, queue="q1", agent="agent1001", talk=999.0, outcome=Outcome.ANSWERED),
    ]
    figures = {(f.agent, f.queue): f for f in agent_figures(log, calls, since, until)}
    q1, q2, total = figures[("agent1001", "q1")], figures[("agent1001", "q2")], figures[("agent1001", "")]
    assert (q1.logged_in, q1.paused, q1.talk, q1.calls) == (2400.0, {"lunch": 600.0, "training": 600.0}, 300.0, 1)
    assert (q2.logged_in, q2.paused) == (2400.0, {"lunch": 600.0, "training": 300.0})
    assert q1.occupancy == pytest.approx(300 / 1200)
    # the agent overall: logged in 0-50 min (the union of its queues), lunch 10 min, training 10 min
    assert (total.logged_in, total.paused, total.talk, total.calls) == (
        3000.0,
        {"lunch": 600.0, "training": 600.0},
        420.0,
        2,
    )
    assert total.occupancy == pytest.approx(420 / 1800)
    assert figures[("agent1002", "q1")].logged_in == 900.0
    assert figures[("agent1002", "q1")].occupancy == 0.0
    text = render_report(calls[:2], "csv", agents=list(figures.values()))
    rows = [line.split(",", 3) for line in text.splitlines() if line.startswith("agents,agent1001,")]
    assert [r[2:] for r in rows] == [
        ["logged in", "3000.0"],
        ["paused", "1200.0"],
        ["pause by reason", "lunch=600s training=600s"],
        ["calls", "2"],
        ["talk", "420.0"],
        ["occupancy", "0.2333"],
    ]
    assert "agents,agent1001@q2,pause by reason,lunch=600s training=300s" in text
    assert "座席状态" in render_report(calls[:2], "table", agents=list(figures.values()))


def test_a_bad_agent_id_never_reaches_ami(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(DATA / "agents.yaml")
    with pytest.raises(SystemExit) as info:
        main(["agent", "logout", "agent1001\r\nAction: Originate", "--config", config])
    assert info.value.code == 2
    assert "is not an agent id: letters and digits only" in capsys.readouterr().err

    class NoAmi:
        async def action(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("must not be sent")

    control = AgentControl(NoAmi(), lambda: None)  # type: ignore[arg-type, return-value]
    outcome = asyncio.run(control.run("pause", "agent1001\r\nAction: Logoff", "lunch"))
    assert (outcome.result, outcome.reason) == ("refused", "not an agent id: letters and digits only")
