"""Supervisor listen / whisper / barge on a real Asterisk 22 running the generated Guangxi dialplan unchanged.

Parties are Local channels playing their own tone: the caller 440 Hz, the agent (a Local queue member)
1000 Hz, the supervisor's phone (``Local/sup@rig-sup``, originated by ``hotline-cti spy``) 2200 Hz. Each
party's far half records only what it *hears* (MixMonitor ``r()``: the audio read from the call), so
"the agent hears the supervisor and the caller does not" is measured in files Asterisk wrote. The audit
row (start and end of the spy leg, from Asterisk's ChanSpyStart / ChanSpyStop) is read from the database
the command wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.adapters.ami.spy import SpyExecutor
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.spy import SpyMode, SpyRecord
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.app import build_app
from hotline_cti.wallboard.auth import SessionSigner, User, hash_password
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.supervision import Listening
from simulators.asterisk import (
    Ami,
    AsteriskInstance,
    ControllerThread,
    asterisk_race,
    free_port,
    log_problems,
    loop_transport,
    silent_prompts,
    start_asterisk,
    wait_until,
)
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
CLI = REPO / ".venv" / "bin" / "hotline-cti"
NUMBER = "12300"
CALLER_NUMBER = "07735551234"
CALLER_TONE, AGENT_TONE, SUPERVISOR_TONE = 440.0, 1000.0, 2200.0
AGENT_PHONE, SUPERVISOR_PHONE = "agentphone", "supphone"
PHONE = f"PJSIP/{SUPERVISOR_PHONE}"


def _harness(heard: str) -> str:
    """Each party plays its tone and records what it hears (r()) as ``<role>-<uniqueid>.wav`` under ``heard``."""

    def party(exten: str, role: str, tone: float, answer: bool) -> str:
        first = "Answer()\n same => n," if answer else ""
        return (
            f"exten => {exten},1,{first}MixMonitor({heard}/{role}-${{UNIQUEID}}-both.wav,"
            f"r({heard}/{role}-${{UNIQUEID}}.wav))\n"
            f" same => n,Playtones({int(tone)})\n same => n,Wait(120)\n same => n,Hangup()\n"
        )

    return (
        "[rig-caller]\n"
        + party("tone", "caller", CALLER_TONE, False)
        + "\n[rig-phone]\n"  # what the agent's and the supervisor's SIP phones run (inbound on the loop endpoint)
        + party(AGENT_PHONE, "agent", AGENT_TONE, True)
        + party(SUPERVISOR_PHONE, "sup", SUPERVISOR_TONE, True)
    )


def _pjsip(loop_port: int) -> str:
    """Two SIP phones whose contact is this Asterisk itself (a second transport): PJSIP legs with real RTP timing,
    answered on the ``loop`` endpoint in ``rig-phone``."""
    phones = "".join(
        f"""
[{name}]
type = endpoint
context = hotline-agents
disallow = all
allow = ulaw
direct_media = no
aors = {name}

[{name}]
type = aor
contact = sip:{name}@127.0.0.1:{loop_port}
"""
        for name in (AGENT_PHONE, SUPERVISOR_PHONE)
    )
    return loop_transport(loop_port, "rig-phone") + phones


@dataclass
class Rig:
    pbx: AsteriskInstance
    ami: Ami
    heard: Path  # host path of the dir the parties record what they hear to
    work: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOTLINE_AMI_HOST": "127.0.0.1",
            "HOTLINE_AMI_PORT": str(self.pbx.ami_port),
            "HOTLINE_AMI_USER": self.pbx.ami_user,
            "HOTLINE_AMI_SECRET": self.pbx.ami_secret,
        }

    @property
    def database(self) -> str:
        return f"sqlite+aiosqlite:///{self.work / 'audit.db'}"


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    cfg = load_config(CONFIG).model
    table = compile_config(cfg)
    now = dt.datetime(2021, 9, 15, 10, tzinfo=table.timezone)
    queue = decide(Call(NUMBER, caller=CALLER_NUMBER), table, now).target
    assert queue is not None
    controller = ControllerThread(CONFIG, now)
    port = controller.listen()
    work = tmp_path_factory.mktemp("spy")
    out = work / "dialplan"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    sounds = silent_prompts(cfg)
    heard_in_root = f"/tmp/hotline-spy-heard-{os.getpid()}"
    heard = asterisk_root / heard_in_root.lstrip("/")
    shutil.rmtree(heard, ignore_errors=True)
    pbx = start_asterisk(
        asterisk_root,
        name="spy",
        generated_dir=out,
        extra_extensions=_harness(heard_in_root),
        extra_queues=f"\n[{queue}](+)\nmember => Local/{AGENT_PHONE}@hotline-agents/n,0,{AGENT_PHONE},PJSIP/{AGENT_PHONE}\n",
        pjsip=_pjsip(free_port(socket.SOCK_DGRAM)),
        sounds=sounds,
    )
    ami = pbx.ami()
    try:
        yield Rig(pbx, ami, heard, work)
    finally:
        ami.close()
        pbx.stop(keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        controller.shutdown()
        if not os.environ.get("HOTLINE_RIG_KEEP"):
            shutil.rmtree(heard, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean(rig: Rig) -> Iterator[None]:
    """Each test starts with no recordings of what parties heard; Asterisk logs no WARNING or ERROR during it."""
    shutil.rmtree(rig.heard, ignore_errors=True)
    rig.heard.mkdir(parents=True)
    before = len(rig.pbx.log_text())
    yield
    rig.pbx.cli("channel request hangup all")
    wait_until(lambda: "0 active channels" in rig.pbx.cli("core show channels count"), 15, "all channels gone")
    bad = [line for line in log_problems(rig.pbx.log_text()[before:]) if not asterisk_race(line)]
    assert bad == [], bad


def power(path: Path, freq: float) -> float:
    """Mean Goertzel power of ``freq`` over a 16-bit mono WAV (per sample)."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    assert samples, f"{path} is empty"
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / len(samples) ** 2


@dataclass
class Live:
    linkedid: str
    call_id: str  # HOTLINE_CALL_ID
    agent: str  # the agent's phone leg (PJSIP/agentphone-...), what ChanSpy is put on
    caller: str  # the caller's channel in the queue (the Local ;2 half that ran the dialplan)
    since: int


def answered(rig: Rig) -> Live:
    since = len(rig.ami.events)
    linkedid = f"spy{uuid.uuid4().hex[:10]}"
    rig.ami.originate(
        f"Local/{NUMBER}@hotline-inbound",
        channel_id=linkedid,
        other_channel_id=f"{linkedid}-2",
        context="rig-caller",
        exten="tone",
        caller_id=f'"rig" <{CALLER_NUMBER}>',
    )
    connect = rig.ami.wait_for(
        lambda e: e.get("Event") == "AgentConnect" and e.get("Linkedid") == linkedid, 20.0, since=since
    )
    phone = rig.ami.wait_for(
        lambda e: (
            e.get("Event") == "BridgeEnter"
            and e.get("Linkedid") == linkedid
            and e["Channel"].startswith(f"PJSIP/{AGENT_PHONE}-")
        ),
        20.0,
        since=since,
    )
    return Live(linkedid, connect["Uniqueid"], phone["Channel"], connect["Channel"], since)


def spy(rig: Rig, target: str, mode: str, *extra: str) -> subprocess.Popen[str]:
    args = [str(CLI), "spy", target, "--mode", mode, "--phone", PHONE, "--config", str(CONFIG)]
    args += ["--database", rig.database, "--json"]
    args += ["--by", "cli:boss", *extra]
    return subprocess.Popen(args, env=rig.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, list[dict[str, object]]]:
    out, err = proc.communicate(timeout=timeout)
    assert out.strip(), err
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.strip()]


async def _stored(url: str) -> list[SpyRecord]:
    store = await Store.open(url)
    try:
        return await store.spies_between()
    finally:
        await store.close()


async def _outbox(url: str) -> list[tuple[str, str]]:
    store = await Store.open(url)
    try:
        return [(topic, payload) for _, topic, payload in await store.pending_events(10_000)]
    finally:
        await store.close()


def stored(rig: Rig, spy_id: object) -> SpyRecord:
    (row,) = [r for r in asyncio.run(_stored(rig.database)) if r.spy_id == spy_id]
    return row


def listen_in(rig: Rig, live: Live, mode: str, target: str) -> tuple[dict[str, object], SpyRecord]:
    """Run ``hotline-cti spy`` for 3 s of spying, end it from the supervisor's side, end the call; the last row."""
    mark = len(rig.ami.events)
    proc = spy(rig, target, mode)
    begun = rig.ami.wait_for(lambda e: e.get("Event") == "ChanSpyStart", 30, since=mark)
    assert begun["SpyeeChannel"] == live.agent  # what ChanSpy listens to: the checked agent leg
    time.sleep(3)
    rig.ami.action("Hangup", Channel=begun["SpyerChannel"])  # the supervisor puts the phone down
    code, printed = rows(proc)
    assert code == 0, printed
    first, last = printed
    assert first["result"] == last["result"] == "ok" and first["spy_id"] == last["spy_id"]
    assert first["ended"] is None and last["ended"] is not None
    rig.ami.action("Hangup", Channel=live.caller)
    rig.ami.wait_for(
        lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == f"{live.linkedid}", 20.0, since=live.since
    )
    return last, stored(rig, last["spy_id"])


def heard(rig: Rig, role: str) -> Path:
    """What ``role`` heard in this test (its far end's r() file; the dir is emptied before each test)."""
    found: list[Path] = []

    def closed() -> bool:
        found[:] = [p for p in rig.heard.glob(f"{role}-*.wav") if not p.name.endswith("-both.wav")]
        if len(found) != 1:
            return False
        try:
            with wave.open(str(found[0]), "rb") as w:
                return w.getnframes() > 8000
        except (OSError, EOFError, wave.Error):
            return False

    wait_until(closed, 20, f"what the {role} heard written")
    return found[0]


def test_whisper_is_heard_by_the_agent_only(rig: Rig) -> None:
    live = answered(rig)
    _row, audit = listen_in(rig, live, "whisper", live.agent)
    agent, caller = heard(rig, "agent"), heard(rig, "caller")
    assert power(agent, CALLER_TONE) > 0 and power(caller, AGENT_TONE) > 0  # the call itself was heard
    assert power(agent, SUPERVISOR_TONE) > power(agent, CALLER_TONE) / 100, "the agent did not hear the whisper"
    assert power(caller, SUPERVISOR_TONE) < power(caller, AGENT_TONE) / 1000, "the caller heard the whisper"
    # The supervisor hears the agent's side of the call.
    sup = heard(rig, "sup")
    assert power(sup, AGENT_TONE) > 0
    # Audited: who, which call, which leg, start and end of the spy leg (from Asterisk's events).
    assert (audit.requested_by, audit.mode, audit.result, audit.call_id) == (
        "cli:boss",
        SpyMode.WHISPER,
        "ok",
        live.call_id,
    )
    assert audit.channel == live.agent and audit.supervisor_phone == PHONE
    assert audit.started is not None and audit.ended is not None and 2.5 < (audit.seconds or 0) < 60
    # and published (outbox) on the region's spies topic, once started and once ended
    topics = [t for t, p in asyncio.run(_outbox(rig.database)) if json.loads(p)["data"]["spy_id"] == audit.spy_id]
    assert topics == ["hotline/gx/spies", "hotline/gx/spies"]


def test_barge_is_heard_by_agent_and_caller(rig: Rig) -> None:
    live = answered(rig)
    _row, audit = listen_in(rig, live, "barge", live.agent)
    agent, caller = heard(rig, "agent"), heard(rig, "caller")
    assert power(agent, SUPERVISOR_TONE) > power(agent, CALLER_TONE) / 100
    assert power(caller, SUPERVISOR_TONE) > power(caller, AGENT_TONE) / 100
    assert audit.mode is SpyMode.BARGE and audit.ended is not None


def test_listen_by_call_id_hears_both_and_is_heard_by_nobody(rig: Rig) -> None:
    live = answered(rig)
    _row, audit = listen_in(rig, live, "listen", live.call_id)  # named by the call, not the channel
    sup = heard(rig, "sup")
    assert power(sup, CALLER_TONE) > power(sup, AGENT_TONE) / 100 and power(sup, AGENT_TONE) > 0
    agent, caller = heard(rig, "agent"), heard(rig, "caller")
    assert power(agent, SUPERVISOR_TONE) < power(agent, CALLER_TONE) / 1000
    assert power(caller, SUPERVISOR_TONE) < power(caller, AGENT_TONE) / 1000
    assert audit.channel == live.agent and audit.call_id == live.call_id and audit.ended is not None


def test_only_an_agent_leg_of_a_live_call_is_spied_on(rig: Rig) -> None:
    live = answered(rig)
    mark = len(rig.ami.events)
    refused = {
        live.caller: "not an agent's leg in a call",  # the caller's own channel
        "PJSIP/agentphone-0000ffff": "no such channel now",
        f"{live.agent},qB": "not a channel name",  # ChanSpy options smuggled in
        "${HOTLINE_CALL_ID}": "not a channel name or a call id",
        "1700000000.99": "no call with this id now",
    }
    for target, reason in refused.items():
        code, (row,) = rows(spy(rig, target, "barge"))
        assert (code, row["result"], row["reason"]) == (3, "refused", reason), target
        assert stored(rig, row["spy_id"]).result == "refused"
    code, (row,) = rows(spy(rig, live.agent, "listen", "--phone", "PJSIP/supphone,1)"))
    assert code == 3 and "is not a phone to call" in str(row["reason"])
    # Nothing was originated: no spy leg ever started.
    assert [e for e in list(rig.ami.events)[mark:] if e.get("Event") in ("ChanSpyStart", "OriginateResponse")] == []


class _Sink:
    """The audit sink of the wall and the executor (a BatchWriter in serve): rows kept for the assertions."""

    def __init__(self) -> None:
        self.spies: list[SpyRecord] = []
        self.actions: list[ActionRecord] = []

    def submit_spy(self, spy: SpyRecord) -> None:
        self.spies.append(spy)

    def submit_action(self, action: ActionRecord) -> None:
        self.actions.append(action)

    def submit_event(self, event: object) -> None:
        pass


def test_a_supervisor_whispers_from_the_wallboard_and_a_viewer_cannot(rig: Rig) -> None:
    live = answered(rig)
    sink = _Sink()
    users = {
        "boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000)),
        "eve": User("eve", "viewer", hash_password("eve-pw", iterations=1000)),
    }
    headers = {"X-Requested-With": "wallboard"}

    async def scenario() -> tuple[int, dict[str, object]]:
        settings = AmiSettings(
            host="127.0.0.1", port=rig.pbx.ami_port, username=rig.pbx.ami_user, secret=rig.pbx.ami_secret
        )
        client = AmiClient(settings)
        await client.connect()
        try:
            executor = SpyExecutor(client, sink, "gx")
            table = compile_config(load_config(CONFIG).model)
            app = build_app(
                Hub(table),
                users,
                SessionSigner(b"s"),
                audit=sink,
                listening=Listening(executor, lambda: {"boss": PHONE}),
            )
            async with TestClient(TestServer(app)) as http:
                await http.post("/login", data={"user": "eve", "password": "eve-pw"}, allow_redirects=False)
                body = {"target": live.call_id, "mode": "whisper"}
                assert (await http.post("/api/spy", json=body, headers=headers)).status == 403
                await http.post("/logout", allow_redirects=False)
                await http.post("/login", data={"user": "boss", "password": "boss-pw"}, allow_redirects=False)
                assert (await http.post("/api/spy", json=body)).status == 403  # no X-Requested-With
                bad = await http.post("/api/spy", json={"target": live.caller, "mode": "whisper"}, headers=headers)
                assert bad.status == 409 and (await bad.json())["reason"] == "not an agent's leg in a call"
                resp = await http.post("/api/spy", json=body, headers=headers)
                answer = await resp.json()
                await asyncio.sleep(3)
                spyer = next(e for e in reversed(list(rig.ami.events)) if e.get("Event") == "ChanSpyStart")
                await client.action("Hangup", {"Channel": spyer["SpyerChannel"]})
                for _ in range(200):  # the executor audits the end when Asterisk reports it
                    if len(sink.spies) == 3:
                        break
                    await asyncio.sleep(0.05)
                return resp.status, answer
        finally:
            await client.close()

    status, answer = asyncio.run(scenario())
    # the answer masks digit runs, as every event and reply does (the sink keeps the channel as it is)
    assert status == 200 and answer["result"] == "ok" and answer["channel"] == mask_numbers(live.agent)
    refused, started, ended = sink.spies
    assert refused.result == "refused" and started.spy_id == ended.spy_id == answer["spy_id"]
    assert (ended.requested_by, ended.mode, ended.call_id) == ("wallboard:boss", SpyMode.WHISPER, live.call_id)
    assert ended.channel == live.agent and ended.supervisor_phone == PHONE
    assert ended.started is not None and ended.ended is not None and (ended.seconds or 0) > 2.5
    plays = [(a.actor, a.action, a.result) for a in sink.actions if a.action == "spy"]
    assert plays == [
        ("wallboard:eve", "spy", "refused"),
        ("wallboard:boss", "spy", "refused"),
        ("wallboard:boss", "spy", "refused"),
        ("wallboard:boss", "spy", "ok"),
    ]
    rig.ami.action("Hangup", Channel=live.caller)
    agent, caller = heard(rig, "agent"), heard(rig, "caller")
    assert power(agent, SUPERVISOR_TONE) > power(agent, CALLER_TONE) / 100
    assert power(caller, SUPERVISOR_TONE) < power(caller, AGENT_TONE) / 1000
