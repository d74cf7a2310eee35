"""Agents on the wallboard (issue 18): supervisors' agent commands (session, CSRF header, audit) and today's
agent figures in the snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline_cti.adapters.ami.agents import AgentOutcome
from hotline_cti.core.table import RoutingTable
from hotline_cti.events import Event
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.agent_states import AgentState, AgentStateChange
from hotline_cti.wallboard.app import build_app
from hotline_cti.wallboard.auth import SessionSigner
from hotline_cti.wallboard.hub import Hub
from tests.wallboard.test_wallboard_app import ACTION_HEADERS, SECRET, _login, _users
from tests.wallboard.test_wallboard_live import NOW


class Sink:
    def __init__(self) -> None:
        self.actions: list[ActionRecord] = []

    def submit_action(self, action: ActionRecord) -> None:
        self.actions.append(action)

    def submit_event(self, event: Event) -> None:
        pass


class Agents:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str, str]] = []

    async def __call__(self, action: str, agent: str, reason: str) -> AgentOutcome:
        self.ran.append((action, agent, reason))
        if agent == "ghost":
            return AgentOutcome(agent, action, "refused", reason="ghost is not logged in")
        return AgentOutcome(agent, action, "ok", ("gx-general",), pause_reason=reason)


@pytest.fixture
async def hub(small_table: RoutingTable) -> Hub:
    return Hub(small_table, clock=lambda: NOW)


async def _client(hub: Hub, sink: Sink, agents: Agents | None) -> TestClient:  # type: ignore[type-arg]
    app = build_app(hub, _users(), SessionSigner(SECRET), audit=sink, agents=agents)
    client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
    await client.start_server()
    return client


@pytest.fixture
async def sink() -> Sink:
    return Sink()


@pytest.fixture
async def agents() -> Agents:
    return Agents()


@pytest.fixture
async def client(hub: Hub, sink: Sink, agents: Agents) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    c = await _client(hub, sink, agents)
    yield c
    await c.close()


async def test_supervisors_pause_and_log_agents_in_audited(client: TestClient, sink: Sink, agents: Agents) -> None:  # type: ignore[type-arg]
    await _login(client, "boss", "boss-pw")
    page = await (await client.get("/")).text()
    assert 'id="agent-form"' in page and 'id="agents"' in page
    body = {"agent": "agent1001", "action": "pause", "reason": "lunch"}
    assert (await client.post("/api/agent", json=body)).status == 403  # no X-Requested-With: a cross-site form
    resp = await client.post("/api/agent", json=body, headers=ACTION_HEADERS)
    assert resp.status == 200 and (await resp.json())["queues"] == ["gx-general"]
    resp = await client.post("/api/agent", json={"agent": "ghost", "action": "logout"}, headers=ACTION_HEADERS)
    assert resp.status == 409 and (await resp.json())["reason"] == "ghost is not logged in"
    for bad in (
        {"agent": "agent 1001", "action": "login"},
        {"agent": "agent1001", "action": "reboot"},
        {"agent": ["x"], "action": "login"},
        {"agent": "agent1001", "action": "pause", "reason": 5},
    ):
        assert (await client.post("/api/agent", json=bad, headers=ACTION_HEADERS)).status == 400
    assert agents.ran == [("pause", "agent1001", "lunch"), ("logout", "ghost", "")]
    rows = [(a.actor, a.action, a.result) for a in sink.actions if a.action.startswith("agent")]
    assert rows[:3] == [
        ("wallboard:boss", "agent", "refused"),
        ("wallboard:boss", "agent:pause", "ok"),
        ("wallboard:boss", "agent:logout", "refused"),
    ]
    assert len(rows) == 7


async def test_viewers_cannot_and_without_ami_nobody_can(
    hub: Hub, client: TestClient, sink: Sink, agents: Agents
) -> None:  # type: ignore[type-arg]
    await _login(client, "eve", "eve-pw")
    assert 'id="agent-form"' not in await (await client.get("/")).text()
    resp = await client.post("/api/agent", json={"agent": "agent1001", "action": "login"}, headers=ACTION_HEADERS)
    assert resp.status == 403 and agents.ran == []
    without = await _client(hub, sink, None)
    try:
        await _login(without, "boss", "boss-pw")
        resp = await without.post("/api/agent", json={"agent": "agent1001", "action": "login"}, headers=ACTION_HEADERS)
        assert resp.status == 503
    finally:
        await without.close()


def test_the_snapshot_has_todays_agent_figures(small_table: RoutingTable) -> None:
    hub = Hub(small_table, clock=lambda: NOW)
    day = NOW.astimezone(small_table.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
    # logged in since yesterday evening (counts from 00:00), lunch for 30 min until 30 min ago
    hub.state.agent_times.seed(
        [
            AgentStateChange(day - dt.timedelta(hours=2), "agent1001", "gx-general", AgentState.LOGIN),
            AgentStateChange(NOW - dt.timedelta(hours=1), "agent1001", "gx-general", AgentState.PAUSE, "lunch"),
            AgentStateChange(NOW - dt.timedelta(minutes=30), "agent1001", "gx-general", AgentState.READY),
        ]
    )
    stamp = f"{NOW.timestamp():.6f}"
    hub.feed(
        {
            "Event": "QueueMemberAdded",
            "Queue": "gx-general",
            "MemberName": "agent1002",
            "Interface": "Local/agent1002@hotline-agents/n",
            "Paused": "0",
            "Timestamp": stamp,
            "Status": "1",
        }
    )
    hub.feed(
        {
            "Event": "QueueMemberPause",
            "Queue": "gx-general",
            "MemberName": "agent1002",
            "Interface": "Local/agent1002@hotline-agents/n",
            "Paused": "1",
            "PausedReason": "training",
            "Timestamp": stamp,
            "Status": "1",
        }
    )
    snap = hub.state.snapshot(NOW)
    rows = {a["agent"]: a for a in snap["agents"] if not a["queue"]}
    per_queue = {(a["agent"], a["queue"]): a for a in snap["agents"] if a["queue"]}
    assert per_queue[("agent1001", "gx-general")]["paused"] == {"lunch": 1800.0}
    assert per_queue[("agent1001", "gx-general")]["state"] == "in"
    assert rows["agent1001"]["logged_in"] == pytest.approx((NOW - day).total_seconds(), abs=1)
    assert rows["agent1001"]["paused"] == {"lunch": 1800.0} and rows["agent1001"]["state"] == "in"
    assert (rows["agent1002"]["state"], rows["agent1002"]["reason"]) == ("paused", "training")
    # the queue tile counts the pause at once (QueueMemberPause), not only after a status event
    (queue,) = [q for q in snap["queues"] if q["queue"] == "gx-general"]
    assert queue["paused"] == 1
