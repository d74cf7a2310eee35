"""One-key transfers on a real Asterisk 22 running the generated Guangxi dialplan unchanged.

Every mode (blind, attended, three-way, hand-over), asked for in every way (``hotline-cti transfer``,
an MQTT command through :class:`CommandHandler`, the agent's own feature keys), with a SIP caller and
a SIP agent (SIPp) and with Local channels as caller and agent. What is checked comes from Asterisk
itself: who is still talking to whom (BridgeEnter / BridgeLeave, Local pairs, Hangup), the conference
(ConfbridgeJoin), AttendedTransfer / BlindTransfer; then the audit row, and the call record built by
:class:`RecordBuilder` from the same AMI events.

Parties: the caller (SIPp UAC on the ``citytrunk`` endpoint, or a Local channel whose ;1 leg waits in
``rig-caller``), the agent (SIPp UAS as ``PJSIP/agent1002`` behind ``Local/agent1002@hotline-agents/n``,
or a Local member ``Local/lagent@rig-agent/n``) and the 110 seat (SIPp UAS as the ``pstn`` trunk).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.adapters.ami.transfer import TransferExecutor, TransferTimeouts
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler, CommandListener
from hotline_cti.adapters.mqtt.settings import MqttSettings
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.dialplan.features import KEY_PAUSE_S
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, TransferRecord
from simulators.asterisk import (
    STOCK_SOUNDS,
    Ami,
    AsteriskInstance,
    ControllerThread,
    Event,
    asterisk_race,
    free_port,
    log_problems,
    silent_prompts,
    start_asterisk,
    wait_until,
)
from simulators.mosquitto import Broker, running_broker
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
SIPP = REPO / "simulators" / "sipp"
CLI = REPO / ".venv" / "bin" / "hotline-cti"
NUMBER = "12300"  # at the rig's time a transition line: a short prompt, then a queue (no menu)
CALLER_NUMBER = "07735551234"  # a Guilin landline
SIP_AGENT, LOCAL_AGENT = "agent1002", "lagent"
# -nd: no automatic answers of SIPp's own; -default_behaviors -abortunexp: a BYE between waits is taken
SIPP_COMMON = ("sipp", "-i", "127.0.0.1", "-nostdin", "-nd", "-default_behaviors", "-abortunexp")

HARNESS = """
[rig-caller]
exten => listen,1,Playtones(0)
 same => n,Wait(60)
 same => n,Hangup()

[rig-agent]
exten => lagent,1,Answer()
 same => n,Playtones(0)
 same => n,Wait(60)
 same => n,Hangup()
"""


def _pjsip(agent_port: int, seat_port: int, busy_port: int) -> str:
    return f"""
[citytrunk]
type = endpoint
context = hotline-inbound
disallow = all
allow = alaw,ulaw

[citytrunk]
type = identify
endpoint = citytrunk
match = 127.0.0.1

[{SIP_AGENT}]
type = endpoint
context = hotline-agents
disallow = all
allow = alaw,ulaw
aors = {SIP_AGENT}

[{SIP_AGENT}]
type = aor
contact = sip:{SIP_AGENT}@127.0.0.1:{agent_port}

[pstn]
type = endpoint
context = hotline-inbound
disallow = all
allow = alaw,ulaw
aors = pstn

[pstn]
type = aor
contact = sip:pstn@127.0.0.1:{seat_port}

[pstn-guilin]
type = endpoint
context = hotline-inbound
disallow = all
allow = alaw,ulaw
aors = pstn-guilin

[pstn-guilin]
type = aor
contact = sip:pstn-guilin@127.0.0.1:{busy_port}
"""


def _uas(port: int, work: Path, scenario: str = "uas_agent.xml") -> subprocess.Popen[bytes]:
    """A SIPp UAS answering every call offered to it and talking for two minutes (agent or 110 seat);
    with ``uas_busy.xml`` it refuses every call (486 Busy Here)."""
    inf = work / f"talk-{port}.csv"
    inf.write_text("SEQUENTIAL\n120000\n")
    return subprocess.Popen(
        [*SIPP_COMMON, "-sf", str(SIPP / scenario), "-inf", str(inf), "-p", str(port)],
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _udp_bound(port: int) -> bool:
    """Some socket is bound to UDP ``port`` (/proc/net/udp, whose local address ends in the port in hex)."""
    rows = Path("/proc/net/udp").read_text(encoding="ascii").splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") for row in rows)


class Loop:
    """An asyncio loop on its own thread: the AMI client, executor and MQTT command handler live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="transfers", daemon=True)
        self.thread.start()

    def submit(self, coro: object) -> Future[object]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Rig:
    pbx: AsteriskInstance
    ami: Ami
    controller: ControllerThread
    work: Path
    loop: Loop
    client: AmiClient
    handler: CommandHandler
    sip_caller_port: int
    queue: str
    seat: list[subprocess.Popen[bytes]]  # the 110 seat's SIPp (one item; replaced when restarted)
    seat_port: int
    audits: list[TransferRecord] = field(default_factory=list)
    mark: int = 0  # index of the first event of the running test (no channel is older)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOTLINE_AMI_HOST": "127.0.0.1",
            "HOTLINE_AMI_PORT": str(self.pbx.ami_port),
            "HOTLINE_AMI_USER": self.pbx.ami_user,
            "HOTLINE_AMI_SECRET": self.pbx.ami_secret,
        }


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    cfg = load_config(CONFIG).model
    table = compile_config(cfg)
    now = dt.datetime(2021, 9, 15, 10, tzinfo=table.timezone)
    queue = decide(Call(NUMBER, caller=CALLER_NUMBER), table, now).target
    assert queue is not None
    controller = ControllerThread(CONFIG, now)
    port = controller.listen()
    work = tmp_path_factory.mktemp("xfer")
    out = work / "dialplan"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    sounds = silent_prompts(cfg)

    agent_port, seat_port, busy_port = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    members = "".join(
        f"\n[{q}](+)\nmember => Local/{SIP_AGENT}@hotline-agents/n,0,{SIP_AGENT},PJSIP/{SIP_AGENT}\n"
        for q in (queue, "gx-general")
    )
    pbx = start_asterisk(
        asterisk_root,
        name="transfers",
        generated_dir=out,
        extra_extensions=HARNESS,
        extra_queues=members,
        pjsip=_pjsip(agent_port, seat_port, busy_port),
        sounds=sounds,
    )
    # agent1002's phone, the 110 seat, and Guilin's tobacco sub-centre (always busy)
    uas = [_uas(agent_port, work), _uas(seat_port, work), _uas(busy_port, work, "uas_busy.xml")]
    ami = pbx.ami()
    loop = Loop()
    rig_obj: Rig | None = None
    try:
        settings = AmiSettings(host="127.0.0.1", port=pbx.ami_port, username=pbx.ami_user, secret=pbx.ami_secret)
        client = AmiClient(settings)
        loop.submit(client.connect()).result(15)
        audits: list[TransferRecord] = []

        class Sink:
            def submit_transfer(self, transfer: TransferRecord) -> None:
                audits.append(transfer)

            def submit_event(self, event: object) -> None:
                pass

        policy = build_policy(cfg)
        executor = TransferExecutor(client, lambda: policy, Sink(), timeouts=TransferTimeouts(attended=20.0))
        handler = CommandHandler(cfg.region.id, CommandSettings(auth="broker"), executor.execute)
        rig_obj = Rig(
            pbx, ami, controller, work, loop, client, handler, pbx.sip_port, queue, uas[1:2], seat_port, audits
        )
        yield rig_obj
    finally:
        loop.submit(client.close()).result(10)
        loop.close()
        ami.close()
        for p in [uas[0], uas[2], *(rig_obj.seat if rig_obj else uas[1:2])]:
            p.kill()
            p.wait(5)
        pbx.stop(keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        controller.shutdown()


# ---------------------------------------------------------------- what Asterisk says


def live_channels(events: list[Event]) -> dict[str, str]:
    """Uniqueid -> channel name of every channel created and not hung up (renames followed)."""
    live: dict[str, str] = {}
    for e in events:
        kind = e.get("Event")
        if kind == "Newchannel":
            live[e["Uniqueid"]] = e["Channel"]
        elif kind == "Rename" and e.get("Uniqueid") in live:
            live[e["Uniqueid"]] = e["Newname"]
        elif kind == "Hangup":
            live.pop(e.get("Uniqueid", ""), None)
    return live


def who_talks(events: list[Event]) -> list[set[str]]:
    """Groups of live channels joined by media: the same bridge now (BridgeEnter / BridgeLeave), or the
    two halves of one Local channel."""
    live = live_channels(events)
    bridge_of: dict[str, str] = {}
    for e in events:
        if e.get("Event") == "BridgeEnter":
            bridge_of[e["Uniqueid"]] = e["BridgeUniqueid"]
        elif e.get("Event") == "BridgeLeave" and bridge_of.get(e["Uniqueid"]) == e["BridgeUniqueid"]:
            del bridge_of[e["Uniqueid"]]
    parent = {u: u for u in live}

    def find(u: str) -> str:
        while parent[u] != u:
            u = parent[u]
        return u

    def join(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    by_bridge: dict[str, str] = {}
    by_local: dict[str, str] = {}
    for uid, name in live.items():
        bridge = bridge_of.get(uid)
        if bridge:
            join(uid, by_bridge.setdefault(bridge, uid))
        if name.startswith("Local/"):
            base = name.rsplit(";", 1)[0]
            join(uid, by_local.setdefault(base, uid))
    groups: dict[str, set[str]] = {}
    for uid, name in live.items():
        groups.setdefault(find(uid), set()).add(name)
    return list(groups.values())


def party(name: str) -> str | None:
    """Who a channel is: caller, agent or 110 (None for the Local channels in between)."""
    if name.startswith("PJSIP/citytrunk-") or (
        name.startswith(f"Local/{NUMBER}@hotline-inbound-") and name.endswith(";1")
    ):
        return "caller"
    if name.startswith("Local/110@hotline-inbound-") and name.endswith(";1"):
        return "caller"
    if name.startswith(f"PJSIP/{SIP_AGENT}-") or (
        name.startswith(f"Local/{LOCAL_AGENT}@rig-agent-") and name.endswith(";2")
    ):
        return "agent"
    if name.startswith("PJSIP/pstn-"):
        return "110"
    return None


def talking(rig: Rig) -> list[set[str]]:
    """The parties talking together now, e.g. [{'caller', '110'}] (a party alone is not listed)."""
    out = []
    for group in who_talks(list(rig.ami.events)[rig.mark :]):
        parties = {p for p in (party(n) for n in group) if p}
        if len(parties) > 1:
            out.append(parties)
    return sorted(out, key=sorted)


def call_record(rig: Rig, live: Live) -> tuple[CallRecord, list[TransferRecord]]:
    """The record of ``live``'s call (and the agent-key audit rows) as RecordBuilder builds it from Asterisk's events."""
    calls, audits = records(rig, live.since)
    mine = [c for c in calls if c.call_id == live.call_id]
    assert len(mine) == 1, calls
    assert [c.call_id for c in calls if c.transfers and c.call_id != live.call_id] == []  # no second record
    return mine[0], audits


def records(rig: Rig, since: int) -> tuple[list[CallRecord], list[TransferRecord]]:
    """Call records and agent-key audit rows built by RecordBuilder from Asterisk's events since ``since``."""
    builder = RecordBuilder("gx")
    calls: dict[str, CallRecord] = {}
    audits: list[TransferRecord] = []
    for e in list(rig.ami.events)[since:]:
        for out in builder.feed(e):
            if isinstance(out, CallRecord):
                calls[out.call_id] = out
            elif isinstance(out, TransferRecord):
                audits.append(out)
    for snap in builder.snapshot():
        calls[snap.call_id] = snap
    return list(calls.values()), audits


# ---------------------------------------------------------------- calls


@dataclass
class Live:
    """One answered call: the caller's and the agent's channel (the one bridged with the caller side)."""

    kind: str
    caller: str
    call_id: str  # the caller channel's Uniqueid: the call record's id
    agent: str
    since: int
    sipp: subprocess.Popen[bytes] | None = None


def _event(rig: Rig, since: int, pred: Callable[[Event], bool], timeout: float = 15.0) -> Event:
    deadline = time.monotonic() + timeout
    while True:
        for e in list(rig.ami.events)[since:]:
            if pred(e):
                return e
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching event in {timeout} s")
        time.sleep(0.05)


def place_call(rig: Rig, kind: str, number: str = NUMBER) -> tuple[Event, int, subprocess.Popen[bytes] | None]:
    """Start a call to ``number``; (the caller channel's Newchannel, event index before it, the SIPp caller)."""
    since = len(rig.ami.events)
    if kind == "sip":
        inf = rig.work / f"call-{uuid.uuid4().hex[:6]}.csv"
        inf.write_text(f"SEQUENTIAL\n{number};90000;{CALLER_NUMBER}\n")
        sipp = subprocess.Popen(
            [
                *SIPP_COMMON,
                f"127.0.0.1:{rig.sip_caller_port}",
                "-sf",
                str(SIPP / "uac_line.xml"),
                "-inf",
                str(inf),
                "-p",
                "0",
                "-m",
                "1",
            ],
            cwd=rig.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        new = _event(
            rig, since, lambda e: e.get("Event") == "Newchannel" and e["Channel"].startswith("PJSIP/citytrunk-")
        )
        return new, since, sipp
    call_id = f"rig{uuid.uuid4().hex[:10]}"
    rig.ami.originate(
        f"Local/{number}@hotline-inbound",
        channel_id=call_id,
        other_channel_id=f"{call_id}-2",
        context="rig-caller",
        exten="listen",
        caller_id=f'"rig" <{CALLER_NUMBER}>',
    )
    new = _event(rig, since, lambda e: e.get("Event") == "Newchannel" and e.get("Uniqueid") == call_id)
    return new, since, None


def answered_call(rig: Rig, kind: str) -> Live:
    """A caller of ``kind`` answered by an agent of the same kind from the line's queue."""
    member = f"Local/{LOCAL_AGENT}@rig-agent/n"
    if kind == "local":
        rig.ami.action("QueueAdd", Queue=rig.queue, Interface=member, MemberName=LOCAL_AGENT, Penalty="0")
        rig.ami.action("QueuePause", Interface=f"Local/{SIP_AGENT}@hotline-agents/n", Paused="true")
    try:
        caller, since, sipp = place_call(rig, kind)
        connect = _event(rig, since, lambda e: e.get("Event") == "AgentConnect", 20.0)
    finally:
        if kind == "local":
            rig.ami.action("QueueRemove", Queue=rig.queue, Interface=member)
            rig.ami.action("QueuePause", Interface=f"Local/{SIP_AGENT}@hotline-agents/n", Paused="false")
    if kind == "sip":
        agent = _event(
            rig, since, lambda e: e.get("Event") == "BridgeEnter" and e["Channel"].startswith(f"PJSIP/{SIP_AGENT}-")
        )["Channel"]
    else:
        agent = connect["DestChannel"]  # the Local member's ;1 leg, bridged with the caller
    wait_until(lambda: talking(rig) == [{"caller", "agent"}], 10, "caller and agent talking")
    return Live(kind, caller["Channel"], caller["Uniqueid"], agent, since, sipp)


def emergency_call(rig: Rig, kind: str) -> Live:
    """A caller of ``kind`` on 110, answered by the 110 seat (the line's leg: PJSIP/pstn-...)."""
    caller, since, sipp = place_call(rig, kind, "110")
    seat = _event(rig, since, lambda e: e.get("Event") == "BridgeEnter" and e["Channel"].startswith("PJSIP/pstn-"))
    wait_until(lambda: talking(rig) == [{"caller", "110"}], 10, "caller and 110 talking")
    return Live(kind, caller["Channel"], caller["Uniqueid"], seat["Channel"], since, sipp)


def test_stock_sounds_exist(rig: Rig) -> None:
    """The stock transfer sounds `asterisk_race` passes over are in the rig's sounds, so a warning naming them is
    the race it describes, not a missing file."""
    sounds = rig.pbx.root / "usr/share/asterisk/sounds"
    for name in STOCK_SOUNDS:
        assert sorted(sounds.glob(f"*/{name}.*")) != [], f"{name} is not in {sounds}"


@pytest.fixture(autouse=True)
def _clean(rig: Rig) -> Iterator[None]:
    """After each test: every channel hung up, and Asterisk logged no WARNING or ERROR during it (e.g.
    'Override extension ... does not exist', 'async goto', 'Invalid timeout')."""
    before = len(rig.pbx.log_text())
    rig.mark = len(rig.ami.events)
    yield
    rig.pbx.cli("channel request hangup all")
    wait_until(lambda: "0 active channels" in rig.pbx.cli("core show channels count"), 15, "all channels gone")
    text = rig.pbx.log_text()
    bad = [line for line in log_problems(text[before:]) if not asterisk_race(line)]
    assert bad == [], bad


# ---------------------------------------------------------------- ways of asking


def ask_cli(rig: Rig, live: Live, to: str, mode: str, *extra: str) -> subprocess.Popen[str]:
    db = rig.work / "audit.db"
    args = [str(CLI), "transfer", live.agent, "--to", to, "--mode", mode, "--config", str(CONFIG)]
    args += ["--database", f"sqlite+aiosqlite:///{db}", "--json", *extra]
    return subprocess.Popen(args, env=rig.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_result(proc: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert out.strip(), err
    row: dict[str, str] = json.loads(out)
    return row


def ask_mqtt(rig: Rig, live: Live, to: str, mode: str, **extra: str) -> Future[object]:
    body = {"v": 1, "id": uuid.uuid4().hex[:12], "type": "transfer", "channel": live.agent, "to": to, "mode": mode}
    body.update(extra)
    return rig.loop.submit(rig.handler.handle("hotline/gx/commands/supervisor1/transfer", json.dumps(body).encode()))


def mqtt_result(fut: Future[object], timeout: float = 40.0) -> dict[str, str]:
    events = fut.result(timeout)
    replies = [e for e in events if e.type.startswith("replies/")]  # type: ignore[attr-defined]
    assert len(replies) == 1, events
    data: dict[str, object] = replies[0].data  # type: ignore[attr-defined]
    transfer = data.get("transfer")
    assert isinstance(transfer, dict), data
    return {**transfer, "ok": str(data["ok"])}


def press(rig: Rig, live: Live, keys: str, gap: float = 0.15) -> None:
    """The agent presses ``keys`` on its phone (DTMF received on the agent's channel), ``gap`` s apart."""
    for key in keys:
        rig.ami.action("PlayDTMF", Channel=live.agent, Digit=key, Duration="100", Receive="true")
        time.sleep(gap)


# ---------------------------------------------------------------- blind


def test_a_code_keyed_with_pauses_still_transfers(rig: Rig) -> None:
    """An agent pausing 1.5 s between the keys of *1110, longer than Asterisk's default 1 s between a feature's
    digits: features.conf allows KEY_PAUSE_S, so the caller still ends up talking to 110."""
    assert KEY_PAUSE_S > 1.5
    live = answered_call(rig, "sip")
    press(rig, live, "*1110", gap=1.5)
    wait_until(lambda: talking(rig) == [{"caller", "110"}], 15, "caller talking to 110 only")
    wait_until(lambda: not party_alive(rig, "agent"), 10, "the agent's phone free")


@pytest.mark.parametrize("kind", ["sip", "local"])
@pytest.mark.parametrize("how", ["cli", "mqtt", "key"])
def test_blind(rig: Rig, how: str, kind: str) -> None:
    """Blind: the caller ends up talking to 110, the agent is free; BlindTransfer (CLI, MQTT) or the
    HotlineTransfer event of the key says so; audited ok; the call record lists 110."""
    live = answered_call(rig, kind)
    if how == "cli":
        row = cli_result(ask_cli(rig, live, "110", "blind"))
    elif how == "mqtt":
        row = mqtt_result(ask_mqtt(rig, live, "110", "blind"))
    else:
        press(rig, live, "*1110")
    wait_until(lambda: talking(rig) == [{"caller", "110"}], 15, "caller talking to 110 only")
    wait_until(lambda: not party_alive(rig, "agent"), 10, "the agent's phone free")
    call, key_audits = call_record(rig, live)
    if how == "key":
        (row_rec,) = key_audits
        assert (row_rec.result, row_rec.mode, row_rec.target, row_rec.call_id) == ("ok", "blind", "110", live.call_id)
        assert row_rec.requested_by == f"agent:{SIP_AGENT if kind == 'sip' else LOCAL_AGENT}"
    else:
        assert row["result"] == "ok", row
        blind = _event(rig, live.since, lambda e: e.get("Event") == "BlindTransfer")
        assert blind["Result"] == "Success" and blind["Extension"] == "110"
    assert call.transfers == ["110"]


def party_alive(rig: Rig, who: str) -> bool:
    """Whether a live channel of ``who`` exists."""
    return any(party(n) == who for n in live_channels(list(rig.ami.events)[rig.mark :]).values())


def hang_up(rig: Rig, channel: str) -> None:
    """The party on ``channel`` hangs up (for the SIP agent: as its phone's BYE would)."""
    rig.ami.action("Hangup", Channel=channel)


def dtmf_sent_to(rig: Rig, since: int, prefix: str) -> list[str]:
    """Digits Asterisk sent out on channels named ``prefix...`` since ``since``."""
    return [
        e["Digit"]
        for e in list(rig.ami.events)[since:]
        if e.get("Event") == "DTMFEnd" and e.get("Direction") == "Sent" and e.get("Channel", "").startswith(prefix)
    ]


# ---------------------------------------------------------------- attended


@pytest.mark.parametrize("kind", ["sip", "local"])
@pytest.mark.parametrize("how", ["cli", "mqtt", "key"])
def test_attended(rig: Rig, how: str, kind: str) -> None:
    """Attended: the agent talks to 110 while the caller waits; when the agent hangs up, caller and 110
    talk. Asterisk's AttendedTransfer says Success; audited ok (CLI, MQTT); the record lists 110."""
    live = answered_call(rig, kind)
    asked: subprocess.Popen[str] | Future[object] | None = None
    if how == "cli":
        asked = ask_cli(rig, live, "110", "attended")
    elif how == "mqtt":
        asked = ask_mqtt(rig, live, "110", "attended")
    else:
        press(rig, live, "*2")
        time.sleep(0.3)
        press(rig, live, "110")
    wait_until(lambda: talking(rig) == [{"agent", "110"}], 15, "agent consulting 110, caller waiting")
    hang_up(rig, live.agent)  # the agent completes the transfer
    wait_until(lambda: talking(rig) == [{"caller", "110"}], 15, "caller talking to 110")
    xfer = _event(rig, live.since, lambda e: e.get("Event") == "AttendedTransfer")
    assert xfer["Result"] == "Success"
    assert xfer["OrigTransfererChannel"] == live.agent
    if isinstance(asked, subprocess.Popen):
        row = cli_result(asked)
    elif asked is not None:
        row = mqtt_result(asked)
    if asked is not None:
        assert (row["result"], row["reason"]) == ("ok", ""), row
        # TRANSFER_EXTEN named the target: the digits Atxfer also queues never reached 110
        assert dtmf_sent_to(rig, live.since, "PJSIP/pstn-") == []
        assert dtmf_sent_to(rig, live.since, "Local/110@") == []
    call, key_audits = call_record(rig, live)
    assert call.transfers == ["110"]
    if how == "key":  # the agent's own *2 is audited from AttendedTransfer
        (row_rec,) = key_audits
        assert (row_rec.result, row_rec.mode, row_rec.target, row_rec.call_id) == (
            "ok",
            "attended",
            "110",
            live.call_id,
        )
        assert row_rec.requested_by == f"agent:{SIP_AGENT if kind == 'sip' else LOCAL_AGENT}"
    else:  # a command's consultation (hotline-onekey-cmd) is audited by the command only
        assert key_audits == []


def test_attended_command_clears_transfer_exten_once_dialled(rig: Rig) -> None:
    """TRANSFER_EXTEN and TRANSFER_CONTEXT, set for an attended command, are restored once the
    consultation is dialled: the agent's own next *2 asks which target and is audited as the agent's."""
    live = answered_call(rig, "sip")
    row_proc = ask_cli(rig, live, "110", "attended")
    wait_until(lambda: talking(rig) == [{"agent", "110"}], 15, "agent consulting 110")
    answer = rig.ami.action("Getvar", Channel=live.agent, Variable="TRANSFER_EXTEN")
    wait_until(
        lambda: rig.ami.action("Getvar", Channel=live.agent, Variable="TRANSFER_EXTEN").get("Value", "") == "",
        10,
        "TRANSFER_EXTEN cleared",
    )
    wait_until(
        lambda: (
            rig.ami.action("Getvar", Channel=live.agent, Variable="TRANSFER_CONTEXT").get("Value") == "hotline-onekey"
        ),
        10,
        "TRANSFER_CONTEXT the agents' own again",
    )
    assert answer["Response"] == "Success"
    hang_up(rig, live.agent)
    assert cli_result(row_proc)["result"] == "ok"


# ---------------------------------------------------------------- three-way


def conference_joins(rig: Rig, since: int) -> list[Event]:
    return [e for e in list(rig.ami.events)[since:] if e.get("Event") == "ConfbridgeJoin"]


@pytest.mark.parametrize("kind", ["sip", "local"])
@pytest.mark.parametrize("how", ["cli", "mqtt", "key"])
def test_threeway(rig: Rig, how: str, kind: str) -> None:
    """Three-way: caller, agent and 110 in the call's own conference (hotline-<HOTLINE_CALL_ID>); when
    the agent leaves, caller and 110 go on talking. Audited ok; the record lists 110."""
    live = answered_call(rig, kind)
    if how == "cli":
        row = cli_result(ask_cli(rig, live, "110", "threeway"))
    elif how == "mqtt":
        row = mqtt_result(ask_mqtt(rig, live, "110", "threeway"))
    else:
        press(rig, live, "*3110")
    wait_until(lambda: talking(rig) == [{"caller", "agent", "110"}], 20, "caller, agent and 110 together")
    # ConfBridge publishes ConfbridgeJoin after the channel's BridgeEnter, so the third join can trail the
    # moment talking() sees all three in the bridge.
    wait_until(lambda: len(conference_joins(rig, live.since)) >= 3, 5, "three ConfbridgeJoin events")
    joins = conference_joins(rig, live.since)
    assert len(joins) == 3, [j["Channel"] for j in joins]
    assert {j["Conference"] for j in joins} == {f"hotline-{live.call_id if kind == 'sip' else live.call_id + '-2'}"}
    hang_up(rig, live.agent)
    wait_until(lambda: talking(rig) == [{"caller", "110"}], 10, "caller and 110 go on without the agent")
    call, key_audits = call_record(rig, live)
    if how == "key":
        (row_rec,) = key_audits
        assert (row_rec.result, row_rec.mode, row_rec.target, row_rec.reason) == ("ok", "threeway", "110", "")
    else:
        assert (row["result"], row["reason"]) == ("ok", ""), row
    assert call.transfers == ["110"]
    assert "async goto" not in rig.pbx.log_text() and "Invalid timeout" not in rig.pbx.log_text()


# ---------------------------------------------------------------- hand-over


@pytest.mark.parametrize("kind", ["sip", "local"])
@pytest.mark.parametrize("how", ["cli", "mqtt"])
def test_handover(rig: Rig, how: str, kind: str) -> None:
    """Hand-over: a caller talking to the 110 seat is moved to the 12345 general queue and answered by a
    12345 agent; the 110 seat is free. Audited ok; the record lists 12345 and keeps its 110 route."""
    live = emergency_call(rig, kind)
    if how == "cli":
        row = cli_result(ask_cli(rig, live, "12345", "handover", "--from", "110"))
    else:
        row = mqtt_result(ask_mqtt(rig, live, "12345", "handover", **{"from": "110"}))
    assert (row["result"], row["reason"]) == ("ok", ""), row
    wait_until(lambda: talking(rig) == [{"caller", "agent"}], 15, "caller talking to a 12345 agent")
    wait_until(lambda: not party_alive(rig, "110"), 10, "the 110 seat free")
    join = _event(rig, live.since, lambda e: e.get("Event") == "QueueCallerJoin")
    assert join["Queue"] == "gx-general"
    call, _ = call_record(rig, live)
    assert call.transfers == ["12345"]
    assert (call.action, call.target, call.fallback) == ("emergency", "110", False)


def test_handover_of_a_12345_call_is_refused_and_nothing_moves(rig: Rig) -> None:
    """A hand-over 'from 110' of a call that is not on 110 is refused; caller and agent still talk."""
    live = answered_call(rig, "sip")
    row = cli_result(ask_cli(rig, live, "12345", "handover", "--from", "110"))
    assert row["result"] == "refused" and "not on 110" in row["reason"], row
    time.sleep(0.5)
    assert talking(rig) == [{"caller", "agent"}]


# ---------------------------------------------------------------- failures are audited as failures


@pytest.fixture
def seat_down(rig: Rig) -> Iterator[None]:
    """The 110 seat is busy (486) instead of answering."""

    def swap(scenario: str) -> None:
        seat = rig.seat.pop()
        seat.kill()
        seat.wait(5)
        rig.seat.append(_uas(rig.seat_port, rig.work, scenario))
        wait_until(lambda: _udp_bound(rig.seat_port), 30, "SIPp bound its port")

    swap("uas_busy.xml")
    try:
        yield
    finally:
        swap("uas_agent.xml")


@pytest.mark.parametrize("how", ["cli", "key"])
def test_threeway_to_a_target_that_does_not_answer_is_failed_not_ok(rig: Rig, seat_down: None, how: str) -> None:
    """The target never comes: audited failed (the caller had been moved), caller and agent left
    talking in their conference, and the call record lists no transfer."""
    live = answered_call(rig, "sip")
    if how == "cli":
        row = cli_result(ask_cli(rig, live, "110", "threeway"), timeout=60)
        assert row["result"] == "failed", row
        assert "did not answer" in row["reason"] and "after Redirect succeeded" in row["reason"], row
    else:
        press(rig, live, "*3110")
    wait_until(lambda: talking(rig) == [{"caller", "agent"}], 60, "caller and agent back together, in the conference")
    wait_until(lambda: len(conference_joins(rig, live.since)) >= 2, 5, "two ConfbridgeJoin events")
    joins = conference_joins(rig, live.since)
    assert len(joins) == 2 and not [j for j in joins if "@hotline-onekey-" in j["Channel"]], joins
    if how == "key":
        _event(rig, live.since, lambda e: e.get("UserEvent") == "HotlineTransfer", 60)
    call, key_audits = call_record(rig, live)
    if how == "key":
        (audit,) = key_audits
        assert audit.result == "failed" and audit.reason.startswith("Originate: "), audit
        assert audit.reason != "Originate: SUCCESS"
    assert call.transfers == []


@pytest.mark.parametrize("how", ["cli", "mqtt"])
def test_attended_to_a_target_that_does_not_answer_is_failed_at_once(rig: Rig, seat_down: None, how: str) -> None:
    """The consultation call ends (110 busy) with no AttendedTransfer: failed, not unknown after 60 s;
    Asterisk gives the agent back to the caller; the record lists no transfer."""
    live = answered_call(rig, "sip")
    started = time.monotonic()
    if how == "cli":
        row = cli_result(ask_cli(rig, live, "110", "attended"), timeout=30)
    else:
        row = mqtt_result(ask_mqtt(rig, live, "110", "attended"), timeout=30)
    assert row["result"] == "failed", row
    assert "the consultation call to 110 ended" in row["reason"] and "no AttendedTransfer" in row["reason"], row
    assert time.monotonic() - started < 15
    wait_until(lambda: talking(rig) == [{"caller", "agent"}], 15, "the agent back with the caller")
    assert [e for e in list(rig.ami.events)[live.since :] if e.get("Event") == "AttendedTransfer"] == []
    call, _ = call_record(rig, live)
    assert call.transfers == []


# ---------------------------------------------------------------- the agent sees the line once


def test_subcentre_overflow_prefixes_the_caller_name_once(rig: Rig) -> None:
    """12313 from Guilin: the sub-centre is busy (SIPp answers 486), the call overflows to
    the 12345 queue; the agent's phone shows the line's tag once, not [12313][12313] (HOTLINE_TAGGED)."""
    expected = decide(
        Call("12313", caller=CALLER_NUMBER), compile_config(load_config(CONFIG).model), rig.controller.now
    )
    assert expected.overflow is not None and expected.dial is not None
    member = f"Local/{SIP_AGENT}@hotline-agents/n"
    added = rig.ami.action("QueueAdd", Queue=expected.overflow, Interface=member, MemberName=SIP_AGENT, check=False)
    try:
        _, since, _ = place_call(rig, "sip", "12313")
        ring = _event(rig, since, lambda e: e.get("Event") == "DialBegin" and e.get("DialString") == SIP_AGENT, 20)
    finally:
        if added["Response"] == "Success":  # not when the harness made it a member already
            rig.ami.action("QueueRemove", Queue=expected.overflow, Interface=member)
    dialled = [
        e["AppData"]
        for e in list(rig.ami.events)[since:]
        if e.get("Event") == "Newexten" and e.get("Context") == "hotline-dial" and e.get("Application") == "Dial"
    ]
    assert [d.split(",")[0] for d in dialled] == [expected.dial]  # the sub-centre first; it failed
    join = _event(rig, since, lambda e: e.get("Event") == "QueueCallerJoin")
    assert join["Queue"] == expected.overflow
    assert ring["DestConnectedLineName"] == f"[12313]{CALLER_NUMBER}"
    names = {e.get("CallerIDName", "") for e in list(rig.ami.events)[since:]}
    assert not any("[12313][12313]" in n for n in names), names


# ---------------------------------------------------------------- through a real broker


def test_mqtt_command_through_a_real_broker_moves_the_call(rig: Rig) -> None:
    """The whole MQTT path once: a supervisor publishes a three-way command on mosquitto, the controller's
    CommandListener runs it against Asterisk, the reply comes back on the supervisor's reply topic."""
    live = answered_call(rig, "sip")
    ident = uuid.uuid4().hex[:12]
    body = {"v": 1, "id": ident, "type": "transfer", "channel": live.agent, "to": "110", "mode": "threeway"}

    async def over_broker(broker: Broker) -> dict[str, object]:
        listener = CommandListener(MqttSettings(broker.host, broker.port, timeout=5.0), rig.handler)
        await listener.start()
        try:
            await asyncio.wait_for(listener.subscribed.wait(), 10)
            async with aiomqtt.Client(broker.host, broker.port, identifier="sup1-test") as sup:
                await sup.subscribe("hotline/gx/replies/sup1/#", qos=1)
                await sup.publish("hotline/gx/commands/sup1/transfer", json.dumps(body).encode(), qos=1)
                async with asyncio.timeout(30):
                    async for message in sup.messages:
                        assert str(message.topic) == f"hotline/gx/replies/sup1/{ident}"
                        assert isinstance(message.payload, bytes)
                        reply: dict[str, object] = json.loads(message.payload)["data"]
                        return reply
        finally:
            await listener.stop()
        raise AssertionError("no reply")

    with running_broker() as broker:
        reply = rig.loop.submit(over_broker(broker)).result(60)
    assert reply["ok"] is True and reply["result"] == "ok", reply
    transfer = reply["transfer"]
    assert isinstance(transfer, dict) and transfer["requested_by"] == "mqtt:sup1" and transfer["mode"] == "threeway"
    wait_until(lambda: talking(rig) == [{"caller", "agent", "110"}], 20, "caller, agent and 110 together")
    call, _ = call_record(rig, live)
    assert call.transfers == ["110"]
