"""Agent state and skills on a real Asterisk 22 (issue 18), with the generated files of tests/data/agents.yaml.

What is checked is what Asterisk itself does and reports: which member app_queue rings (AgentCalled),
QueueStatus after a CLI log-in, log-out or pause, QueueMember* events of a feature code dialled from
the agent's phone (a SIPp UAC as the PJSIP endpoint), and the agent state log the events-service feed
writes, re-read after a restart of the feed.

Agents' phones (PJSIP/agent100x) point at a port where nothing listens: they never answer, so a call
rings its members again and again, which is what the ring assertions watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline_cti.adapters.ami.agents import AgentControl, AgentStateFeed
from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler
from hotline_cti.cli.main import main
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.members import agent_plans
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.records.agent_states import AgentState
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.app import build_app
from hotline_cti.wallboard.auth import SessionSigner, User, hash_password
from hotline_cti.wallboard.hub import Hub
from simulators.asterisk import (
    Ami,
    AsteriskInstance,
    Event,
    free_port,
    log_problems,
    silent_prompts,
    start_asterisk,
)
from tests.paths import DATA, REPO

CONFIG = DATA / "agents.yaml"
SIPP_UAC = REPO / "simulators" / "sipp" / "uac_line.xml"
WIDEN_AFTER = 6  # agent_settings.widen of agents.yaml
QUIET = 3.0  # seconds without a ring that show a member is not rung (a free member rings within ~0.1 s)

HARNESS = """
[rig-caller]
exten => listen,1,Playtones(0)
 same => n,Wait(40)
 same => n,Hangup()

; a caller straight into the generated [hotline-queue] with the queue as the decision's target
[rig-queue]
exten => _[a-z].,1,Set(HOTLINE_TARGET=${EXTEN})
 same => n,Goto(hotline-queue,s,1)

; the agents' phones: the generated feature codes
[rig-phones]
include => hotline-agent-codes
"""


def _endpoint(name: str, contact: str) -> str:
    return (
        f"\n[{name}]\ntype = endpoint\ncontext = rig-phones\ndisallow = all\nallow = ulaw,alaw\n"
        f"aors = {name}\n\n[{name}]\ntype = aor\ncontact = {contact}\n"
    )


@dataclass
class Rig:
    pbx: AsteriskInstance
    ami: Ami
    cfg: MergerConfig
    work: Path
    boot_log: str

    def env(self) -> dict[str, str]:
        return {
            "HOTLINE_AMI_HOST": "127.0.0.1",
            "HOTLINE_AMI_PORT": str(self.pbx.ami_port),
            "HOTLINE_AMI_USER": self.pbx.ami_user,
            "HOTLINE_AMI_SECRET": self.pbx.ami_secret,
        }

    def settings(self) -> AmiSettings:
        return AmiSettings.from_env(self.env(), action_timeout=10.0)

    def call(self, queue: str) -> str:
        """A caller into ``queue`` (through the generated [hotline-queue]); the id of its ;2 leg."""
        call_id = f"rig{uuid.uuid4().hex[:12]}"
        self.ami.originate(
            f"Local/{queue}@rig-queue",
            channel_id=call_id,
            other_channel_id=f"{call_id}-2",
            context="rig-caller",
            exten="listen",
        )
        return f"{call_id}-2"

    def rings(self, leg: str, agent: str) -> list[Event]:
        """AgentCalled events of the caller ``leg`` for ``agent`` so far."""
        return [
            e
            for e in self.ami.events
            if e.get("Event") == "AgentCalled" and e.get("Uniqueid") == leg and e.get("MemberName") == agent
        ]

    def wait_ring(self, leg: str, agent: str, timeout: float = 20.0) -> Event:
        return self.ami.wait_for(
            lambda e: e.get("Event") == "AgentCalled" and e.get("Uniqueid") == leg and e.get("MemberName") == agent,
            timeout,
        )

    def wait_new(self, since: int, predicate: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        """The first event after index ``since`` (of ``ami.events``) for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            for event in list(self.ami.events[since:]):
                if predicate(event):
                    return event
            assert time.monotonic() < deadline, f"no matching event in {timeout} s"
            time.sleep(0.05)

    def members(self, agent: str) -> dict[str, Event]:
        """QueueStatus's QueueMember items of ``agent``, by queue (read with the harness's own AMI)."""
        since = len(self.ami.events)
        reply = self.ami.action("QueueStatus", Member=agent)
        action_id = reply["ActionID"]
        self.ami.wait_for(lambda e: e.get("Event") == "QueueStatusComplete" and e.get("ActionID") == action_id, 10.0)
        items = [
            e for e in self.ami.events[since:] if e.get("Event") == "QueueMember" and e.get("ActionID") == action_id
        ]
        return {e["Queue"]: e for e in items if e.get("Name") == agent}


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("agents")
    cfg = load_config(CONFIG).model
    out = work / "generated"
    write_all(render_all(cfg), out)
    sounds = silent_prompts(cfg)
    nobody = free_port()
    pjsip = "".join(_endpoint(a.id, f"sip:{a.id}@127.0.0.1:{nobody}") for a in cfg.agents)
    pbx = start_asterisk(
        asterisk_root,
        name="agents",
        generated_dir=out,
        extra_extensions=HARNESS,
        pjsip=pjsip,
        sounds=sounds,
    )
    with contextlib.ExitStack() as stack:
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        ami = pbx.ami()
        stack.callback(ami.close)
        yield Rig(pbx, ami, cfg, work, pbx.log_text())


@pytest.fixture(autouse=True)
def _clean(rig: Rig) -> Iterator[None]:
    yield
    rig.pbx.cli("channel request hangup all")
    for agent in ("agent1001", "agent1002", "agent1003"):
        for queue in rig.members(agent):
            rig.ami.action("QueueRemove", Queue=queue, Interface=f"Local/{agent}@hotline-agents/n", check=False)


def cli(rig: Rig, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    for key, value in rig.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{rig.work / 'audit.db'}")
    # What these tests check is who rings; a machine loaded by the parallel run can take app_queue past the
    # CLI's 5 s default for one QueueAdd, which the CLI rightly reports as "unknown" (exit 5).
    return main(["agent", *argv, "--config", str(CONFIG), "--timeout", "20"])


def test_generated_rules_and_codes_load(rig: Rig) -> None:
    """queuerules.conf's rule is Asterisk's; the widened queue uses it; the feature codes are dialplan."""
    rules = rig.pbx.cli("queue show rules")
    assert "hotline-widen-6" in rules and f"After {WIDEN_AFTER} seconds, adjust QUEUE_MAX_PENALTY to 19" in rules
    assert "*45" in rig.pbx.cli("dialplan show hotline-agent-codes")
    # Asterisk's log once booted with the generated files (later tests may add warnings of their own)
    assert log_problems(rig.boot_log) == []  # but Asterisk's own high-water notice, a loaded machine's


def test_a_logged_out_agent_is_not_rung_and_a_logged_in_one_is(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    leg = rig.call("ag-general")
    rig.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Uniqueid") == leg, 10.0)
    time.sleep(QUIET)
    assert rig.rings(leg, "agent1002") == []
    assert cli(rig, monkeypatch, "login", "agent1002") == 0
    ring = rig.wait_ring(leg, "agent1002")
    assert ring["Queue"] == "ag-general" and ring["Interface"] == "Local/agent1002@hotline-agents/n"
    # QueueAdd with the YAML's penalties: general at its level, widened queues at 10 + level
    members = rig.members("agent1002")
    assert {q: int(m["Penalty"]) for q, m in members.items()} == {
        m.queue: m.penalty for m in agent_plans(rig.cfg)["agent1002"].memberships
    }
    assert {m["StateInterface"] for m in members.values()} == {"PJSIP/agent1002"}
    assert cli(rig, monkeypatch, "logout", "agent1002") == 0
    assert rig.members("agent1002") == {}
    rig.pbx.cli("channel request hangup all")
    leg = rig.call("ag-general")
    rig.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Uniqueid") == leg, 10.0)
    time.sleep(QUIET)
    assert rig.rings(leg, "agent1002") == []
    assert cli(rig, monkeypatch, "logout", "agent1002") == 3  # not logged in: refused


def test_a_paused_agent_is_not_rung(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(rig, monkeypatch, "login", "agent1003") == 0
    assert cli(rig, monkeypatch, "pause", "agent1003", "--reason", "coffee") == 3  # not a reason of the YAML
    assert cli(rig, monkeypatch, "pause", "agent1003", "--reason", "training") == 0
    members = rig.members("agent1003")
    assert set(members) == {"ag-expert-e12315", "ag-general", "ag-l12315"}
    assert {(m["Paused"], m["PausedReason"]) for m in members.values()} == {("1", "training")}
    capsys.readouterr()
    assert cli(rig, monkeypatch, "status", "agent1003") == 0
    assert "paused (training)" in capsys.readouterr().out
    leg = rig.call("ag-general")
    rig.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Uniqueid") == leg, 10.0)
    time.sleep(QUIET)
    assert rig.rings(leg, "agent1003") == []
    assert cli(rig, monkeypatch, "unpause", "agent1003") == 0
    rig.wait_ring(leg, "agent1003")
    assert {m["Paused"] for m in rig.members("agent1003").values()} == {"0"}


def test_a_widened_queue_rings_the_general_agent_only_after_the_wait(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """ag-l12315 widens after 6 s. Its skilled agent (penalty 0) is logged in but on lunch; the general agent
    (penalty 11 there) rings only once the rule raised the caller's QUEUE_MAX_PENALTY from 9 to 19."""
    assert cli(rig, monkeypatch, "login", "agent1001") == 0
    assert cli(rig, monkeypatch, "pause", "agent1001", "--reason", "lunch") == 0
    assert cli(rig, monkeypatch, "login", "agent1002") == 0
    leg = rig.call("ag-l12315")
    join = rig.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Uniqueid") == leg, 10.0)
    general = rig.wait_ring(leg, "agent1002", timeout=WIDEN_AFTER + 20.0)
    # Asterisk's own clock: never before the wait (app_queue compares whole seconds since the caller joined)
    assert float(general["Timestamp"]) - float(join["Timestamp"]) >= WIDEN_AFTER - 1.0
    assert general["Queue"] == "ag-l12315"
    assert rig.rings(leg, "agent1001") == []
    steps = [e for e in rig.ami.events if e.get("Event") == "VarSet" and e.get("Uniqueid") == leg]
    assert [e["Value"] for e in steps if e.get("Variable") == "QUEUE_MAX_PENALTY"][:2] == ["9", "19"]


def test_a_free_skilled_agent_keeps_the_call_before_the_general_one(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the wait only the skilled agent rings; penalties are tiers, so the general agent waits."""
    assert cli(rig, monkeypatch, "login", "agent1001") == 0
    assert cli(rig, monkeypatch, "login", "agent1002") == 0
    leg = rig.call("ag-l12315")
    rig.wait_ring(leg, "agent1001")
    join = rig.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Uniqueid") == leg, 10.0)
    time.sleep(max(0.0, float(join["Timestamp"]) + WIDEN_AFTER - 1.5 - time.time()))
    assert rig.rings(leg, "agent1002") == []


def _dial_code(rig: Rig, agent: str, code: str) -> None:
    """The agent's phone dials ``code`` (a SIPp UAC identified as the PJSIP endpoint by its user name)."""
    inf = rig.work / f"code-{uuid.uuid4().hex[:6]}.csv"
    inf.write_text(f"SEQUENTIAL\n{code};3000;{agent}\n", encoding="utf-8")
    port = free_port(socket.SOCK_DGRAM)
    command = ["sipp", "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-nd", "-sf", str(SIPP_UAC), "-inf", str(inf)]
    subprocess.run(
        [*command, "-m", "1", "-timeout", "15", f"127.0.0.1:{rig.pbx.sip_port}"],
        cwd=rig.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def test_feature_codes_from_the_agents_phone(rig: Rig) -> None:
    """*45 logs in (penalties of the YAML), *461 pauses for lunch, *47 ends it, *45 again logs out."""
    since = len(rig.ami.events)
    _dial_code(rig, "agent1003", "*45")
    rig.ami.wait_for(
        lambda e: (
            e.get("Event") == "QueueMemberAdded" and e.get("MemberName") == "agent1003" and e["Queue"] == "ag-l12315"
        ),
        15.0,
    )
    added = {e["Queue"]: e["Penalty"] for e in rig.ami.events[since:] if e.get("Event") == "QueueMemberAdded"}
    assert added == {"ag-expert-e12315": "0", "ag-general": "0", "ag-l12315": "10"}
    _dial_code(rig, "agent1003", "*461")
    assert {(m["Paused"], m["PausedReason"]) for m in rig.members("agent1003").values()} == {("1", "lunch")}
    _dial_code(rig, "agent1003", "*47")
    assert {m["Paused"] for m in rig.members("agent1003").values()} == {"0"}
    _dial_code(rig, "agent1003", "*45")
    assert rig.members("agent1003") == {}


async def test_every_change_is_logged_and_re_read_after_a_restart(rig: Rig, tmp_path: Path) -> None:
    """The feed logs what Asterisk reports; restarted, it logs only what changed while it was away."""
    store = await Store.open(f"sqlite:///{tmp_path / 'states.db'}")
    writer = BatchWriter(store)
    await writer.start()
    try:
        client = AmiClient(rig.settings())
        control = AgentControl(client, lambda: rig.cfg)
        feed = AgentStateFeed(client, writer, rig.cfg.region.id, control)
        feed.load(await store.last_agent_states())
        await client.connect()
        # the login's resync first: a QueueStatus still being read would list agent1003's new memberships
        # before their QueueMemberAdded events arrive, and log them as learnt by the resync
        await _until(lambda: feed.resyncs == 1)
        assert (await control.login("agent1003")).result == "ok"
        assert (await control.pause("agent1003", "lunch")).result == "ok"
        await _until(lambda: len(feed.book.members) == 3 and all(m.paused for m in feed.book.members.values()))
        await client.close()  # the controller stops; meanwhile:
        rig.ami.action("QueueRemove", Queue="ag-general", Interface="Local/agent1003@hotline-agents/n")
        rig.ami.action(
            "QueueAdd",
            Queue="ag-l12315",
            Interface="Local/agent1001@hotline-agents/n",
            MemberName="agent1001",
            Penalty="0",
        )
        assert await writer.flush()
        before = await store.agent_states_between()
        assert sorted((c.queue, c.state, c.reason, c.source) for c in before) == sorted(
            [(q, AgentState.LOGIN, "", "ami") for q in ("ag-expert-e12315", "ag-general", "ag-l12315")]
            + [(q, AgentState.PAUSE, "lunch", "ami") for q in ("ag-expert-e12315", "ag-general", "ag-l12315")]
        )
        assert {c.penalty for c in before if c.state is AgentState.LOGIN} == {0, 10}
        # each change also went to the MQTT outbox as an "agents" event
        outbox = [json.loads(p) for _, t, p in await store.pending_events() if t == "hotline/ag/agents"]
        assert sorted((e["data"]["queue"], e["data"]["state"]) for e in outbox) == sorted(
            (c.queue, str(c.state)) for c in before
        )

        client = AmiClient(rig.settings())  # the restarted controller
        feed = AgentStateFeed(client, writer, rig.cfg.region.id, AgentControl(client, lambda: rig.cfg))
        feed.load(await store.last_agent_states())
        await client.connect()  # its login's resync reads QueueStatus
        await _until(lambda: feed.resyncs == 1)
        await client.close()
        assert await writer.flush()
        after = [c for c in await store.agent_states_between() if c.change_id not in {b.change_id for b in before}]
        assert sorted((c.agent, c.queue, c.state, c.source) for c in after) == [
            ("agent1001", "ag-l12315", AgentState.LOGIN, "resync"),
            ("agent1003", "ag-general", AgentState.LOGOUT, "resync"),
        ]
        # still paused for lunch where still logged in: nothing new there
        assert {(m.agent, m.queue, m.paused, m.reason) for m in feed.book.members.values()} == {
            ("agent1001", "ag-l12315", False, ""),
            ("agent1003", "ag-expert-e12315", True, "lunch"),
            ("agent1003", "ag-l12315", True, "lunch"),
        }
    finally:
        await writer.stop()
        await store.close()


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_audit_rows_name_who_asked(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(rig, monkeypatch, "login", "agent1001", "--by", "supervisor:wang") == 0

    async def rows() -> list[tuple[str, str, str]]:
        store = await Store.open(f"sqlite:///{rig.work / 'audit.db'}")
        try:
            return [(a.actor, a.action, a.result) for a in await store.actions_between()]
        finally:
            await store.close()

    assert ("supervisor:wang", "agent:login", "ok") in asyncio.run(rows())


async def test_unanswered_rings_pause_the_agent_and_the_general_agent_takes_over(rig: Rig, tmp_path: Path) -> None:
    """autopause_after: 2. The skilled agent's phone never answers (3 s rings): after its second unanswered
    ring the feed pauses it (reason autopause, logged), and the widened queue's general agent rings."""
    store = await Store.open(f"sqlite:///{tmp_path / 'states.db'}")
    writer = BatchWriter(store)
    await writer.start()
    client = AmiClient(rig.settings())
    try:
        control = AgentControl(client, lambda: rig.cfg)
        after = rig.cfg.agent_settings.autopause_after
        feed = AgentStateFeed(client, writer, rig.cfg.region.id, control, autopause_after=lambda: after)
        await client.connect()
        assert (await control.login("agent1001")).result == "ok"
        assert (await control.login("agent1002")).result == "ok"
        since = len(rig.ami.events)
        leg = rig.call("ag-l12315")
        pause = await asyncio.to_thread(
            rig.wait_new,
            since,
            lambda e: e.get("Event") == "QueueMemberPause" and e.get("MemberName") == "agent1001",
            40.0,
        )
        assert pause["Paused"] == "1" and pause["PausedReason"] == "autopause"
        no_answer = [e for e in rig.ami.events if e.get("Event") == "AgentRingNoAnswer" and e.get("Uniqueid") == leg]
        assert [e["MemberName"] for e in no_answer] == ["agent1001"] * after
        await asyncio.to_thread(rig.wait_ring, leg, "agent1002", 30.0)
        await _until(lambda: any(m.paused for m in feed.book.members.values()))
        await feed.close()
        assert await writer.flush()
        paused = [c for c in await store.agent_states_between() if c.state is AgentState.PAUSE]
        assert [(c.agent, c.queue, c.reason, c.source) for c in paused] == [
            ("agent1001", "ag-l12315", "autopause", "autopause")
        ]
    finally:
        await client.close()
        await writer.stop()
        await store.close()


async def test_mqtt_commands_and_the_wallboard_change_agents_on_asterisk(rig: Rig, small_table: RoutingTable) -> None:
    """An MQTT agent command logs agent1003 in, a supervisor on the wallboard pauses it: Asterisk says so."""
    client = AmiClient(rig.settings())
    await client.connect()
    try:
        control = AgentControl(client, lambda: rig.cfg)
        handler = CommandHandler("ag", CommandSettings(), None, agents=control.run)
        payload = json.dumps({"v": 1, "id": "m1", "type": "agent", "agent": "agent1003", "action": "login"}).encode()
        (reply,) = await handler.handle("hotline/ag/commands/sup1/agent", payload)
        assert reply.data["ok"] is True and len(reply.data["agent"]["queues"]) == 3
        users = {"boss": User("boss", "supervisor", hash_password("pw", iterations=1000))}
        app = build_app(Hub(small_table), users, SessionSigner(b"s"), agents=control.run)
        async with TestClient(TestServer(app)) as web:
            await web.post("/login", data={"user": "boss", "password": "pw", "next": "/"}, allow_redirects=False)
            body = {"agent": "agent1003", "action": "pause", "reason": "training"}
            resp = await web.post("/api/agent", json=body, headers={"X-Requested-With": "wallboard"})
            assert resp.status == 200, await resp.text()
        members = await asyncio.to_thread(rig.members, "agent1003")
        assert {(m["Paused"], m["PausedReason"]) for m in members.values()} == {("1", "training")}
    finally:
        await client.close()
