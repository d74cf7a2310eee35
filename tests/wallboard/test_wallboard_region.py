"""The region centre's wall: no Asterisk link, every node's queues, calls and agents read from the store.

Two nodes' queue rows and calls in a SQLite store (and a third node gone silent): the wall shows each node and the
sums, today's figures of every node's calls, and follows what the nodes write next; what needs AMI is refused
with a reason and not offered on the page; ``hotline-cti wallboard`` without ``--ami`` serves it from a database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline_cti.core.diversion import QueueState
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.agent_states import AgentState, AgentStateChange
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.auth import User, hash_password
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.service import WallboardRunner, start_wallboard
from simulators.host import free_port
from tests.conftest import SMALL_YAML
from tests.paths import REPO
from tests.wallboard.test_wallboard_live import NOW

GENERAL, L12315 = "gx-general", "gx-l12315"
HEADERS = {"X-Requested-With": "wallboard"}
UTC_NOW = NOW.astimezone(dt.UTC)


def _call(
    node: str, uid: str, ago: float, outcome: Outcome, *, agent: str = "", talk: float | None = None
) -> CallRecord:
    started = UTC_NOW - dt.timedelta(seconds=ago)
    return CallRecord(
        call_id=f"{node}:{uid}",
        region="gx",
        started=started,
        ended=started + dt.timedelta(seconds=90),
        queue=GENERAL,
        wait=40.0,
        agent=agent,
        talk=talk,
        outcome=outcome,
        node=node,
    )


async def region_store(store: Store, now: dt.datetime = UTC_NOW) -> None:
    """Two live nodes' queues (nn-1, nn-2) and a silent one (nn-3, 60 s old), with when each one's longest-waiting
    caller joined, five of today's calls over nn-1 and
    nn-2 (four answered, one abandoned after 40 s) plus yesterday's, and agent1001 on lunch since 09:30."""
    ago = lambda seconds: now - dt.timedelta(seconds=seconds)  # noqa: E731
    # each node's longest-waiting caller: nn-1's since 95 s, nn-2's since 40 s, silent nn-3's an hour ago
    await store.put_node_queues("nn-1", {GENERAL: QueueState(3, 2, 1, 2, 0)}, ago(2), {GENERAL: ago(95)})
    await store.put_node_queues(
        "nn-2", {GENERAL: QueueState(2, 2, 2, 1, 0), L12315: QueueState(1, 1, 0, 0, 0)}, ago(3), {GENERAL: ago(40)}
    )
    await store.put_node_queues("nn-3", {GENERAL: QueueState(4, 4, 4, 9, 0)}, ago(60), {GENERAL: ago(3600)})
    answered, abandoned = Outcome.ANSWERED, Outcome.ABANDONED
    await store.upsert_calls(
        [
            _call("nn-1", "1700000000.1", 3600, answered, agent="agent1001", talk=60.0),
            _call("nn-1", "1700000000.2", 3000, answered, agent="agent1001", talk=60.0),
            _call("nn-1", "1700000000.3", 2400, abandoned),
            _call("nn-2", "1700000000.1", 1800, answered, agent="agent2001", talk=30.0),  # same uniqueid, other node
            _call("nn-2", "1700000000.4", 1200, answered, agent="agent2001", talk=30.0),
            _call("nn-2", "1700000000.5", 86400, answered),  # yesterday: this week, not today
        ]
    )
    day = now.astimezone(NOW.tzinfo).replace(hour=0, minute=0, second=0, microsecond=0)
    await store.add_agent_states(
        [
            AgentStateChange(day + dt.timedelta(hours=8), "agent1001", GENERAL, AgentState.LOGIN, change_id="c1"),
            AgentStateChange(
                day + dt.timedelta(hours=9, minutes=30), "agent1001", GENERAL, AgentState.PAUSE, "lunch", change_id="c2"
            ),
        ]
    )


class Sink:
    def __init__(self) -> None:
        self.actions: list[ActionRecord] = []

    def submit_action(self, action: ActionRecord) -> None:
        self.actions.append(action)

    def submit_event(self, event: object) -> None:
        pass


USERS = {
    "boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000)),
    "eve": User("eve", "viewer", hash_password("eve-pw", iterations=1000)),
}


@pytest.fixture
async def wall(sqlite_store: Store, small_table: RoutingTable) -> AsyncIterator[tuple[WallboardRunner, Sink]]:
    await region_store(sqlite_store)
    sink = Sink()
    runner = await start_wallboard(
        small_table,
        port=0,
        store=sqlite_store,
        region=sqlite_store,
        users=USERS,
        secret=b"k",
        audit=sink,
        clock=lambda: UTC_NOW,
    )
    try:
        yield runner, sink
    finally:
        await runner.close()


async def _until(check: Callable[[], Any], what: str, limit: float = 20.0) -> None:
    """Poll ``check`` (may be async) until it is true (a bound, not a measurement)."""
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not seen within {limit:.0f} s: {what}")
        await asyncio.sleep(0.1)


async def _session(url: str, user: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await http.post(f"{url}/login", data={"user": user, "password": f"{user}-pw"}, allow_redirects=False)
    assert resp.status == 302
    return http


async def test_the_region_wall_shows_every_node_and_the_sums_and_follows_them(
    wall: tuple[WallboardRunner, Sink], sqlite_store: Store
) -> None:
    runner, _ = wall
    http = await _session(runner.url, "eve")
    try:
        state: dict[str, Any] = {}

        async def nodes_read() -> bool:
            nonlocal state
            state = await (await http.get(f"{runner.url}/api/state")).json()
            return bool(state["nodes"])

        await _until(nodes_read, "the nodes' queue rows")
        assert state["asterisk"] is False
        assert [(n["node"], n["waiting"], n["free"], n["busy"], n["paused"], n["stale"]) for n in state["nodes"]] == [
            ("nn-1", 2, 1, 1, 1, False),
            ("nn-2", 1, 2, 1, 0, False),
            ("nn-3", 0, 0, 0, 0, True),  # silent for 60 s: listed, not summed
        ]
        rows = {q["queue"]: q for q in state["queues"]}
        general = rows[GENERAL]
        assert (general["waiting"], general["free"], general["busy"], general["paused"]) == (3, 3, 1, 1)
        assert [(n["node"], n["waiting"], n["stale"]) for n in general["nodes"]] == [
            ("nn-1", 2, False),
            ("nn-2", 1, False),
            ("nn-3", 9, True),
        ]
        assert (rows[L12315]["busy"], rows[L12315]["waiting"]) == (1, 0)
        # the longest over the live nodes (nn-3's hour-old caller is a silent node's: left out); no caller's number
        assert general["longest_wait"] == 95 and general["longest_caller"] == ""
        assert [(n["node"], n["longest_wait"]) for n in general["nodes"]] == [
            ("nn-1", 95),
            ("nn-2", 40),
            ("nn-3", 3600),
        ]
        totals = state["totals"]
        assert (totals["waiting"], totals["free"], totals["busy"], totals["paused"]) == (3, 3, 2, 1)
        assert totals["longest_wait"] == 95
        assert any(a.get("value") == 95 for a in state["alerts"])  # over the 60 s wait alert, from the store
        # today's figures of every node's calls (the two nodes' equal uniqueids are two calls)
        assert (totals["calls_today"], totals["answered"], totals["unanswered"]) == (5, 4, 1)
        assert totals["answer_rate"] == pytest.approx(0.8)
        assert (general["answered"], general["unanswered"]) == (4, 1)
        agents = {a["agent"]: a for a in state["agents"] if not a["queue"]}
        assert (agents["agent1001"]["state"], agents["agent1001"]["reason"]) == ("paused", "lunch")
        assert (agents["agent1001"]["calls"], agents["agent1001"]["talk"]) == (2, 120.0)
        assert agents["agent1001"]["logged_in"] == pytest.approx(2 * 3600.0)

        # What the nodes write next reaches the wall: a call nn-2 finished, agent1001 back from lunch, and nn-2's
        # queue rows again (nn-1's rows unchanged).
        await sqlite_store.upsert_calls([_call("nn-2", "1700000000.6", 95, Outcome.ABANDONED)])
        ready = AgentStateChange(UTC_NOW - dt.timedelta(seconds=10), "agent1001", GENERAL, AgentState.READY)
        await sqlite_store.add_agent_states([ready])
        await sqlite_store.put_node_queues("nn-2", {GENERAL: QueueState(2, 2, 1, 4, 0)}, UTC_NOW)

        async def followed() -> bool:
            nonlocal state
            state = await (await http.get(f"{runner.url}/api/state")).json()
            agent = next(a for a in state["agents"] if a["agent"] == "agent1001" and not a["queue"])
            return state["totals"]["calls_today"] == 6 and state["totals"]["waiting"] == 6 and agent["state"] == "in"

        await _until(followed, "the nodes' next call, queue rows and agent change")
        assert (state["totals"]["unanswered"], state["totals"]["busy"]) == (2, 2)  # nn-1's 1 + nn-2's 1 now
        assert L12315 not in {q["queue"] for q in state["queues"]}  # no node lists it any more, no call was in it
        agent = next(a for a in state["agents"] if a["agent"] == "agent1001" and not a["queue"])
        assert agent["paused"] == {"lunch": pytest.approx(30 * 60 - 10.0)}
    finally:
        await http.close()


async def test_what_needs_asterisk_is_refused_with_the_reason_and_not_offered(
    wall: tuple[WallboardRunner, Sink],
) -> None:
    runner, sink = wall
    boss = await _session(runner.url, "boss")
    eve = await _session(runner.url, "eve")
    try:
        page = await (await boss.get(f"{runner.url}/")).text()
        assert 'id="no-asterisk-note"' in page and 'id="agents-note"' in page
        for offered in ('id="spy-form"', 'id="agent-form"', 'id="play-recording"'):
            assert offered not in page
        asks = [
            ("post", "/api/agent", {"agent": "agent1001", "action": "pause", "reason": "lunch"}, "agent"),
            ("post", "/api/spy", {"target": "nn-1:1700000000.1", "mode": "listen"}, "spy"),
            ("get", "/api/recordings/nn-1:1700000000.1", None, "recording:play"),
        ]
        for method, path, body, _ in asks:
            resp = await boss.request(method, f"{runner.url}{path}", json=body, headers=HEADERS)
            answer = await resp.json()
            assert resp.status == 409 and (answer["ok"], answer["result"]) == (False, "refused")
            assert answer["reason"].startswith("this wall has no Asterisk link")
            # a viewer is still refused for being a viewer
            assert (await eve.request(method, f"{runner.url}{path}", json=body, headers=HEADERS)).status == 403
        refused = [(a.actor, a.action, a.result) for a in sink.actions if "no Asterisk link" in a.reason]
        assert refused == [("wallboard:boss", action, "refused") for *_, action in asks]
        # what needs no Asterisk works as beside a node
        resp = await boss.post(f"{runner.url}/api/thresholds", json={"wait_alert": 90}, headers=HEADERS)
        assert resp.status == 200 and runner.hub.state.thresholds.wait_alert == 90
    finally:
        await boss.close()
        await eve.close()


def test_a_wall_beside_a_node_says_it_has_its_link(small_table: RoutingTable) -> None:
    hub = Hub(small_table, clock=lambda: UTC_NOW)
    snap = hub.state.snapshot(UTC_NOW)
    assert hub.linked and snap["asterisk"] is True and snap["totals"]["longest_wait"] == 0


async def test_a_region_wall_takes_no_ami_link(small_table: RoutingTable, sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="no Asterisk link"):
        await start_wallboard(small_table, port=0, region=sqlite_store, peers=sqlite_store, users={})


async def test_hotline_cti_wallboard_without_ami_serves_every_node_from_the_database(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    users = tmp_path / "users"
    users.write_text(f"eve:viewer:{hash_password('eve-pw', iterations=1000)}\n", encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'region.db'}"
    store = await Store.open(url)
    now = dt.datetime.now(dt.UTC)
    started = now - dt.timedelta(seconds=5)
    call = CallRecord(
        "nn-2:1700000000.9", "gx", started, now, queue=GENERAL, wait=2.0, outcome=Outcome.ANSWERED, node="nn-2"
    )
    await store.upsert_calls([call])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "HOTLINE_AMI"))}
    proc = await asyncio.create_subprocess_exec(
        str(REPO / ".venv" / "bin" / "hotline-cti"), "wallboard",
        "--config", str(config), "--database", url, "--listen", f"127.0.0.1:{port}",
        env={**environ, "HOTLINE_WALLBOARD_USERS": str(users)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        http: aiohttp.ClientSession | None = None

        async def logged_in() -> bool:
            nonlocal http
            try:
                http = await _session(base, "eve")
            except aiohttp.ClientConnectorError:
                return False
            return True

        await _until(logged_in, "hotline-cti wallboard serving", 60)
        assert http is not None
        state: dict[str, Any] = {}

        async def shown() -> bool:
            nonlocal state
            # nn-2's events service writes its rows every few seconds; so does the test while it waits
            await store.put_node_queues("nn-2", {GENERAL: QueueState(2, 2, 1, 3, 0)}, dt.datetime.now(dt.UTC))
            assert http is not None
            state = await (await http.get(f"{base}/api/state")).json()
            return bool(state["nodes"]) and state["totals"]["calls_today"] == 1

        await _until(shown, "nn-2's queue and call on the wall")
        assert state["asterisk"] is False and state["totals"]["waiting"] == 3
        assert [(n["node"], n["waiting"]) for n in state["nodes"]] == [("nn-2", 3)]
        # the merger file is followed as beside a node
        config.write_text(SMALL_YAML.replace("name: 电信申诉", "name: 电信申诉热线"), encoding="utf-8")

        async def reloaded() -> bool:
            assert http is not None
            snap = await (await http.get(f"{base}/api/state")).json()
            return any(m["name"] == "电信申诉热线" for m in snap["merger"])

        await _until(reloaded, "the reloaded merger file")
        await http.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    log = out.decode()
    assert proc.returncode == 0, log
    assert "with no Asterisk link: every node from the database" in log
    logins = [(a.actor, a.action, a.result) for a in await store.actions_between()]
    await store.close()
    assert ("wallboard:eve", "login", "ok") in logins  # audited as beside a node
