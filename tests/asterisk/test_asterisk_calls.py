"""Calls through a real Asterisk 22 running the generated Guangxi dialplan unchanged.

The controller is the in-process FastAGI server at a fixed time; what is checked is what
Asterisk itself reports on AMI (Newexten, VarSet, QueueCallerJoin, DialBegin, Hangup), and
the expectations come from ``hotline_cti.core.routing.decide``, as ``hotline-cti route`` does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.config.checked import dialled_numbers
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action, Call, Decision, Mode, Phase
from hotline_cti.core.numbers import is_short_code
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan import names
from hotline_cti.dialplan.extensions import fallback_queues
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import (
    Ami,
    AsteriskInstance,
    ControllerThread,
    Event,
    free_port,
    log_problems,
    silent_prompts,
    silent_wav,
    start_asterisk,
)
from tests.paths import REPO

# Real-time windows (a menu's 3 x 5 s reads, a welcome of 3 s) measured to the second: run alone (scripts/test.sh).
pytestmark = pytest.mark.serial

CONFIG = REPO / "merger_config" / "guangxi.yaml"
WELCOME_SECONDS = 3.0  # long enough to press a key in, short enough for the suite
KEY_AT = 0.5  # the caller presses the menu key this long after the call is answered
GUILIN_COMPLAINT_AGENT = "Local/agent2002@hotline-agents/n"  # added by a harness [queue](+) section

# The caller's side of a Local call (the originated ;1 leg runs one of these once ;2 answers). It sends
# audio (silent tones) as a real caller does: Answer() waits up to 500 ms for the caller's first media
# frame (main/channel.c __ast_answer), which a silent Local leg never sends.
HARNESS = f"""
[rig-caller]
exten => listen,1,Playtones(0)
 same => n,Wait(20)
 same => n,Hangup()
exten => key2,1,Playtones(0)
 same => n,Wait({KEY_AT})
 same => n,SendDTMF(2)
 same => n,Wait(20)
 same => n,Hangup()
"""


@dataclass
class Rig:
    pbx: AsteriskInstance
    ami: Ami
    controller: ControllerThread
    cfg: MergerConfig
    table: RoutingTable
    uas_port: int
    boot_log: str  # Asterisk's log once booted with the generated files (later tests add warnings on purpose)

    def at(self, when: str) -> dt.datetime:
        """``when`` (ISO, no offset) in the region's time zone; the controller routes at it from now on."""
        now = dt.datetime.fromisoformat(when).replace(tzinfo=self.table.timezone)
        self.controller.now = now
        return now

    def expect(self, call: Call) -> Decision:
        return decide(call, self.table, self.controller.now)

    def call(
        self, number: str, *, context: str = "hotline-inbound", caller: str | None = None, then: str = "listen"
    ) -> str:
        """Originate Local/<number>@<context>; return the id of its ;2 leg (the one that runs our dialplan)."""
        call_id = f"rig{uuid.uuid4().hex[:12]}"
        self.ami.originate(
            f"Local/{number}@{context}",
            channel_id=call_id,
            other_channel_id=f"{call_id}-2",
            context="rig-caller",
            exten=then,
            caller_id=f'"rig" <{caller}>' if caller else None,
        )
        return f"{call_id}-2"

    def events(self, leg: str) -> list[Event]:
        return self.ami.channel_events(leg)

    def wait(self, leg: str, event: str, timeout: float = 10.0, **fields: str) -> Event:
        return self.ami.wait_for(
            lambda e: (
                e.get("Uniqueid") == leg and e.get("Event") == event and all(e.get(k) == v for k, v in fields.items())
            ),
            timeout,
        )

    def apps(self, leg: str) -> list[tuple[str, str, str]]:
        """(context, application, data) of every dialplan step the leg ran, in order."""
        return [(e["Context"], e["Application"], e["AppData"]) for e in self.events(leg) if e["Event"] == "Newexten"]

    def var(self, leg: str, name: str) -> str | None:
        """The last value the leg's variable ``name`` was set to (VarSet events)."""
        values = [e["Value"] for e in self.events(leg) if e["Event"] == "VarSet" and e.get("Variable") == name]
        return values[-1] if values else None

    def cdr(self, leg: str, timeout: float = 5.0) -> dict[str, str]:
        """Asterisk's CDR of the leg (written when the leg hangs up)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in self.pbx.cdr_rows() if r["uniqueid"] == leg]
            if rows or time.monotonic() > deadline:
                assert rows, f"no CDR for {leg}"
                return rows[-1]
            time.sleep(0.05)

    def hang_up_all(self) -> None:
        self.pbx.cli("channel request hangup all")


def _stamp(event: Event) -> float:
    return float(event["Timestamp"])


# The far end of every trunk (pstn, pstn-<city>, yc-remote): a SIPp UAS that answers every INVITE "busy".
BUSY_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy trunk">
  <recv request="INVITE" />
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" />
</scenario>
"""


@contextlib.contextmanager
def busy_trunk(workdir: Path) -> Iterator[int]:
    """A SIPp UAS answering 486 to every call; yields its UDP port."""
    scenario = workdir / "busy.xml"
    scenario.write_text(BUSY_UAS, encoding="utf-8")
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        proc.kill()
        proc.wait(5)


def _endpoint(name: str, contact: str) -> str:
    return (
        f"\n[{name}]\ntype = endpoint\ncontext = hotline-inbound\ndisallow = all\nallow = ulaw,alaw\n"
        f"aors = {name}\n\n[{name}]\ntype = aor\ncontact = {contact}\n"
    )


def _trunks(config: Path, generated: Path) -> list[str]:
    """The PJSIP endpoints the config and its dialplan dial (pstn, pstn-<city>, yc-remote ...)."""
    text = config.read_text(encoding="utf-8") + (generated / "extensions.conf").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"PJSIP/[^@\s,)$<]+@([A-Za-z][\w-]*)", text)))


@contextlib.contextmanager
def started_rig(root: Path, out: Path, config: Path, name: str, extra_queues: str = "") -> Iterator[Rig]:
    """The controller at a fixed time and Asterisk with ``config``'s dialplan rendered for it."""
    cfg = load_config(config).model
    table = compile_config(cfg)
    controller = ControllerThread(config, dt.datetime(2021, 9, 15, 10, tzinfo=table.timezone))
    with contextlib.ExitStack() as stack:
        stack.callback(controller.shutdown)
        trunk_port = stack.enter_context(busy_trunk(out))
        port = controller.listen()
        write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
        sounds = silent_prompts(cfg)
        sounds["welcome"] = silent_wav(WELCOME_SECONDS)
        unreachable = free_port()  # nothing listens there: agent1001's phone never answers
        uas_port = free_port(socket.SOCK_DGRAM)  # SIPp answers there as agent1002's phone
        pjsip = _endpoint("agent1001", f"sip:agent1001@127.0.0.1:{unreachable}").replace(
            "context = hotline-inbound", "context = hotline-agents"
        )
        pjsip += _endpoint("agent1002", f"sip:agent1002@127.0.0.1:{uas_port}").replace(
            "context = hotline-inbound", "context = hotline-agents"
        )
        # The site's trunks (the endpoints a site defines), here to a SIPp that answers busy.
        for trunk in _trunks(config, out):
            pjsip += _endpoint(trunk, f"sip:127.0.0.1:{trunk_port}")
        pbx = start_asterisk(
            root,
            name=name,
            generated_dir=out,
            extra_extensions=HARNESS,
            extra_queues=extra_queues,
            pjsip=pjsip,
            sounds=sounds,
        )
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))  # keep its logs to read
        ami = pbx.ami()
        stack.callback(ami.close)
        yield Rig(pbx, ami, controller, cfg, table, uas_port, pbx.log_text())


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    extra_queues = f"\n[guilin-complaint](+)\nmember => {GUILIN_COMPLAINT_AGENT},0,agent2002,PJSIP/agent2002\n"
    with started_rig(asterisk_root, tmp_path_factory.mktemp("gx-dialplan"), CONFIG, "calls", extra_queues) as r:
        yield r


@pytest.fixture(autouse=True)
def _clean_calls(rig: Rig) -> Iterator[None]:
    yield
    rig.hang_up_all()


def test_generated_files_load_cleanly(rig: Rig) -> None:
    """(a) Our contexts and queues load; the boot log has no WARNING/ERROR (but Asterisk's high-water notice)."""
    route = rig.pbx.cli("dialplan show hotline-route")
    assert "Context 'hotline-route' created by 'pbx_config'" in route
    assert "AGI(agi://127.0.0.1:" in route
    assert "gx-general has 0 calls" in rig.pbx.cli("queue show gx-general")
    # the harness's [queue](+) section appends to a queue of the included file
    assert "agent2002" in rig.pbx.cli("queue show guilin-complaint")
    for ctx in ("hotline-dispatch", "hotline-fallback", "hotline-agents", "hotline-survey", "hotline-inbound-guilin"):
        assert f"Context '{ctx}' created" in rig.pbx.cli(f"dialplan show {ctx}")
    # Only Asterisk's own high-water notice may be there (its device-state topic, now and then while
    # app_queue loads the 331 generated queues): it names none of our files. Anything else fails the test.
    assert log_problems(rig.boot_log) == []


def test_transition_call_plays_its_prompt_and_joins_routes_queue(rig: Rig) -> None:
    """(b) 12300 inside its window: transition prompt, then the queue ``route`` names."""
    rig.at("2021-09-15T10:00")
    expected = rig.expect(Call("12300"))
    assert expected.phase is Phase.TRANSITION and expected.action is Action.QUEUE
    leg = rig.call("12300")
    join = rig.wait(leg, "QueueCallerJoin")
    assert join["Queue"] == expected.target
    assert rig.var(leg, "HOTLINE_DECIDED") == "1"
    assert ("hotline-dispatch", "Playback", "&".join(f"hotline/{p}" for p in expected.prompts)) in rig.apps(leg)
    assert list(expected.prompts) == ["transition-12300"]
    route = [e for e in rig.events(leg) if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"]
    assert [(e["Action"], e["Target"]) for e in route] == [("queue", expected.target)]


def test_retired_number_plays_its_prompt_and_is_released(rig: Rig) -> None:
    """(c) 12300 after its window: the retired prompt, then Hangup; no queue."""
    rig.at("2022-09-15T10:00")
    expected = rig.expect(Call("12300"))
    assert expected.action is Action.RETIRED and expected.hangup
    leg = rig.call("12300")
    rig.wait(leg, "Hangup")
    apps = rig.apps(leg)
    assert ("hotline-dispatch", "Playback", "&".join(f"hotline/{p}" for p in expected.prompts)) in apps
    assert apps[-1][:2] == ("hotline-end", "Hangup")
    assert not [e for e in rig.events(leg) if e["Event"].startswith("QueueCaller")]
    assert not [a for a in apps if a[1] in ("Queue", "Dial")]
    cdr = rig.cdr(leg)  # Asterisk's own record of the leg: released in hotline-end
    assert (cdr["dcontext"], cdr["lastapp"], cdr["dst"]) == ("hotline-end", "Hangup", "s")


def test_menu_key_during_welcome_counts(rig: Rig) -> None:
    """(d) 12345, key 2 pressed 0.5 s into a 3 s welcome: the Read takes it, the complaint queue follows."""
    rig.at("2021-09-15T10:00")
    first = rig.expect(Call("12345"))
    expected = rig.expect(Call("12345", ivr_choice="2"))
    assert first.menu and expected.action is Action.QUEUE
    leg = rig.call("12345", then="key2")
    join = rig.wait(leg, "QueueCallerJoin")
    assert join["Queue"] == expected.target
    steps = [e for e in rig.events(leg) if e["Event"] == "Newexten"]
    reads = [i for i, e in enumerate(steps) if e["Application"] == "Read"]
    assert len(reads) == 1  # the first read took the key: no retry
    read = steps[reads[0]]
    welcome = "&".join(f"hotline/{p}" for p in first.prompts)
    assert read["AppData"].startswith(f"HOTLINE_IVR_CHOICE,{welcome}&hotline/emergency-hint&hotline/menu-main,1,")
    # The Read ended (next dialplan step) before the welcome alone could have finished.
    after_read = _stamp(steps[reads[0] + 1]) - _stamp(read)
    assert after_read < WELCOME_SECONDS - 1.0, after_read
    assert rig.var(leg, "HOTLINE_IVR_CHOICE") == "2"
    dtmf = [e for e in rig.events(leg) if e["Event"] == "DTMFBegin" and e.get("Direction") == "Received"]
    assert [e["Digit"] for e in dtmf] == ["2"]
    assert 0 < _stamp(dtmf[0]) - _stamp(read) < WELCOME_SECONDS - 1.0  # pressed while the welcome played
    assert not [s for s in steps if s["AppData"] == "hotline/invalid-choice"]


def test_controller_down_falls_back_to_the_trunks_city(rig: Rig) -> None:
    """(e) No controller listening: a call on the Guilin trunk reaches Guilin's general queue within 1 s."""
    port = rig.controller.port
    rig.controller.close()
    try:
        leg = rig.call("12345", context="hotline-inbound-guilin")
        join = rig.wait(leg, "QueueCallerJoin")
    finally:
        rig.controller.listen(port)
    assert join["Queue"] == fallback_queues(rig.cfg)["guilin"]
    first = rig.events(leg)[0]
    assert _stamp(join) - _stamp(first) < 1.0
    assert rig.var(leg, "HOTLINE_DECIDED") in (None, "")
    route = [e for e in rig.events(leg) if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"]
    # the record names the centre whose queue took the call, as route would for a Guilin caller
    guilin = rig.expect(Call("12345", city="guilin")).centre
    assert [(e["Action"], e["Target"], e["Centre"]) for e in route] == [("fallback", join["Queue"], guilin)]


def test_agent_with_a_letter_id_rings(rig: Rig) -> None:
    """(f) A queue member Local/agent1001@hotline-agents/n rings PJSIP/agent1001."""
    rig.at("2021-09-15T10:00")
    expected = rig.expect(Call("12300"))
    assert expected.target is not None
    rig.ami.action(
        "QueueAdd",
        Queue=expected.target,
        Interface="Local/agent1001@hotline-agents/n",
        MemberName="agent1001",
        StateInterface="PJSIP/agent1001",
    )
    try:
        leg = rig.call("12300")
        rig.wait(leg, "QueueCallerJoin", Queue=expected.target)
        linked = leg.removesuffix("-2")
        ring = rig.ami.wait_for(
            lambda e: (
                e.get("Event") == "DialBegin" and e.get("DialString") == "agent1001" and e.get("Linkedid") == linked
            ),
            10.0,
        )
        assert ring["DestChannel"].startswith("PJSIP/agent1001-")
        assert ring["Context"] == "hotline-agents"
        # The caller gives up while it rings; the agent leg hangs up and Asterisk runs its "h" extension,
        # which the any-id agent pattern must not catch (it once ran Dial(PJSIP/h) on every agent hangup).
        agent_leg = ring["Uniqueid"]
        rig.hang_up_all()
        rig.ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == agent_leg, 10.0)
        time.sleep(0.2)
        dials_in_h = [
            e
            for e in rig.ami.events
            if e.get("Event") == "Newexten"
            and e.get("Uniqueid") == agent_leg
            and e.get("Exten") == "h"
            and e.get("Application") == "Dial"
        ]
        assert dials_in_h == []
    finally:
        rig.ami.action("QueueRemove", Queue=expected.target, Interface="Local/agent1001@hotline-agents/n")


def _route_events(rig: Rig, leg: str) -> list[Event]:
    return [e for e in rig.events(leg) if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"]


def test_menu_without_a_key_tries_three_times_then_reaches_an_agent(rig: Rig) -> None:
    """(g) 12345 and no key: three reads (5 s each after the menu), then ``ivr`` decides as no choice."""
    rig.at("2021-09-15T10:00")
    expected = rig.expect(Call("12345", ivr_choice="0"))  # the ivr script decides "no key" as 0
    leg = rig.call("12345")
    join = rig.wait(leg, "QueueCallerJoin", timeout=30.0)
    assert join["Queue"] == expected.target
    steps = [e for e in rig.events(leg) if e["Event"] == "Newexten"]
    assert [s["Application"] for s in steps].count("Read") == 3
    assert [s["AppData"] for s in steps if s["Application"] == "Playback"].count("hotline/invalid-choice") == 2
    agi = [s["AppData"] for s in steps if s["Application"] == "AGI" and "/ivr," in s["AppData"]]
    assert len(agi) == 1 and agi[0].endswith(",12345,,,")  # DIALLED,CITY,IVR_CHOICE,TOPIC: no key, no topic
    assert [e["Target"] for e in _route_events(rig, leg)] == ["gx-general", expected.target]
    # welcome 3 s + hint + menu (0.1 s each) + 5 s wait, then twice invalid + menu + 5 s
    took = _stamp(join) - _stamp(steps[0])
    assert 3 * 5 + WELCOME_SECONDS < took < 3 * 5 + WELCOME_SECONDS + 3, took


def test_a_missing_last_menu_prompt_leaves_no_time_for_a_key(rig: Rig) -> None:
    """(h) Asterisk's Read skips a prompt it cannot open, and when that is the LAST of its &-list it
    skips the wait for a key too (main/app.c ast_app_getdata_terminator): with hotline/menu-main
    missing on disk the menu does not wait at all. Documented here as Asterisk's behaviour."""
    rig.at("2021-09-15T10:00")
    menu = rig.pbx.dir / "data/sounds/hotline/menu-main.wav"
    saved = menu.read_bytes()
    menu.unlink()
    try:
        leg = rig.call("12345")
        join = rig.wait(leg, "QueueCallerJoin", timeout=20.0)
    finally:
        menu.write_bytes(saved)
    steps = [e for e in rig.events(leg) if e["Event"] == "Newexten"]
    assert [s["Application"] for s in steps].count("Read") == 3
    took = _stamp(join) - _stamp(steps[0])
    assert took < WELCOME_SECONDS + 1.5, took  # only the welcome (and hint) played; no 3 x 5 s waits
    assert rig.var(leg, "HOTLINE_IVR_CHOICE") in (None, "")
    assert "hotline/menu-main" in rig.pbx.log_text()  # Asterisk's warning names the missing file


def test_answered_call_gets_the_survey_and_its_rating(rig: Rig) -> None:
    """(i) An agent (a SIPp UAS as PJSIP/agent1002) answers from the queue and hangs up: the caller
    goes on to the survey (Queue option c), presses 1, and the HotlineRating event follows."""
    rig.at("2021-09-15T10:00")
    caller = "07735551234"  # a Guilin landline: the controller routes by the caller's area
    expected = rig.expect(Call("12300", caller=caller))
    assert expected.target is not None and expected.city == "guilin"
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(rig.uas_port), "-m", "1", "-nostdin", "-timeout", "30"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    member = "Local/agent1002@hotline-agents/n"
    rig.ami.action(
        "QueueAdd", Queue=expected.target, Interface=member, MemberName="agent1002", StateInterface="PJSIP/agent1002"
    )
    try:
        leg = rig.call("12300", caller=caller)
        linked = leg.removesuffix("-2")
        assert rig.wait(leg, "QueueCallerJoin")["Queue"] == expected.target
        connect = rig.wait(leg, "AgentConnect", timeout=10.0)
        assert connect["Queue"] == expected.target and connect["MemberName"] == "agent1002"
        ring = rig.ami.wait_for(
            lambda e: (
                e.get("Event") == "DialBegin" and e.get("DialString") == "agent1002" and e.get("Linkedid") == linked
            )
        )
        rig.ami.action("Hangup", Channel=ring["DestChannel"])  # the agent hangs up first
        survey = rig.wait(leg, "Newexten", timeout=10.0, Context="hotline-survey", Application="Read")
        assert survey["AppData"].startswith("HOTLINE_RATING,hotline/survey-ask,1,")
        caller_leg = next(e["Channel"] for e in rig.ami.events if e.get("Uniqueid") == linked and "Channel" in e)
        rig.ami.send_dtmf(caller_leg, "1")
        rating = rig.ami.wait_for(
            lambda e: (
                e.get("Event") == "UserEvent" and e.get("UserEvent") == "HotlineRating" and e.get("Uniqueid") == leg
            )
        )
        assert rating["Rating"] == "1" and rating["CallId"] == leg
        rig.wait(leg, "Newexten", Application="Playback", AppData="hotline/survey-thanks")
        rig.wait(leg, "Hangup")
        agent_cdr = [r for r in rig.pbx.cdr_rows() if r["dstchannel"].startswith("PJSIP/agent1002-")]
        assert [r["disposition"] for r in agent_cdr] == ["ANSWERED"]
    finally:
        rig.ami.action("QueueRemove", Queue=expected.target, Interface=member)
        uas.kill()
        uas.wait(5)


# ---------------------------------------------------------------- the controller down (parity: test_asterisk_parity.py)


_TERMINAL_CONTEXTS = ("hotline-dial", "hotline-emergency")


def _terminal(event: Event) -> bool:
    if event.get("Event") in ("QueueCallerJoin", "DialBegin", "Hangup"):
        return True
    return event.get("Event") == "Newexten" and event["Context"] == "hotline-end" and event["Application"] == "Hangup"


def seen_outcome(events: list[Event]) -> tuple[str, str, str]:
    """(what, where, prompts) as Asterisk did it: queue joined, number dialled, or call released."""
    prompts = "&".join(
        e["AppData"]
        for e in events
        if e["Event"] == "Newexten" and e["Context"] == "hotline-dispatch" and e["Application"] == "Playback"
    )
    for e in events:
        if e["Event"] == "QueueCallerJoin":
            return "queue", e["Queue"], prompts
        if e["Event"] == "DialBegin" and e.get("Context") in _TERMINAL_CONTEXTS:  # Asterisk placed the call
            return "dial", f"{e['DestChannel'].split('/')[0]}/{e['DialString']}", prompts
        if e["Event"] == "Newexten" and e["Context"] == "hotline-end" and e["Application"] == "Hangup":
            return "released", "", prompts
    return "hangup", "", prompts


def test_every_number_with_the_controller_down_falls_back_by_city(rig: Rig) -> None:
    """(e') No controller: every number, dialled short, with Guilin's area code, and on the Guilin trunk,
    reaches the fallback queue of the city known from the trunk or the dialled area code (else the
    region's), and emergency lines still reach their own seats."""
    cfg = rig.cfg
    guilin_area = next(c.area_code for c in cfg.cities if c.id == "guilin")
    queues = fallback_queues(cfg)
    region = names.queue_name(names.default_centre(cfg), "general")
    rig.at("2021-09-15T10:00")
    port = rig.controller.port
    rig.controller.close()
    legs: list[tuple[str, str, str, tuple[str, str, str]]] = []
    try:
        for number, line in dialled_numbers(cfg).items():
            if not is_short_code(number):
                continue  # a landline number exists in its own area only
            emergency = line.mode is Mode.TRANSFER
            for dialled, context, city in (
                (number, "hotline-inbound", None),
                (guilin_area + number, "hotline-inbound", "guilin"),
                (number, "hotline-inbound-guilin", "guilin"),
            ):
                if emergency:
                    want = ("dial", rig.expect(Call(dialled, city=city)).dial or "", "")
                else:
                    want = ("queue", queues[city] if city else region, "")
                legs.append((rig.call(dialled, context=context), dialled, context, want))
        mismatches = []
        for leg, dialled, context, want in legs:
            rig.ami.wait_for(_terminal, 15.0, uniqueid=leg)
            seen = seen_outcome(rig.events(leg))
            if seen != want:
                mismatches.append(f"{dialled} via {context}: asterisk {seen}, expected {want}")
    finally:
        rig.controller.listen(port)
    assert len(legs) > 90
    assert mismatches == [], f"{len(mismatches)} of {len(legs)} differ:\n" + "\n".join(mismatches)


@pytest.mark.parametrize(("number", "when"), [("12366", "2021-09-15T10:00"), ("12348", "2021-09-15T10:00")])
def test_busy_seats_overflow_to_the_decided_queue(rig: Rig, number: str, when: str) -> None:
    """(j) A sub-centre's or department's seats answer busy (the trunk's SIPp sends 486): the call
    takes the decision's overflow queue (hotline-dial's nodial path)."""
    rig.at(when)
    expected = rig.expect(Call(number))
    assert expected.action in (Action.SUBCENTRE, Action.DEPARTMENT) and expected.dial and expected.overflow
    leg = rig.call(number)
    begin = rig.wait(leg, "DialBegin")
    assert f"{begin['DestChannel'].split('/')[0]}/{begin['DialString']}" == expected.dial
    end = rig.wait(leg, "DialEnd")
    assert end["DialStatus"] == "BUSY"
    assert rig.wait(leg, "QueueCallerJoin")["Queue"] == expected.overflow


def test_busy_emergency_seats_never_reach_a_12345_queue(rig: Rig) -> None:
    """(k) 110's seats busy: Dial, the emergency hint, Dial again, hang up; never a queue."""
    rig.at("2021-09-15T10:00")
    expected = rig.expect(Call("110"))
    assert expected.action is Action.EMERGENCY and expected.dial
    leg = rig.call("110")
    rig.wait(leg, "Hangup", timeout=10.0)
    events = rig.events(leg)
    dials = [e for e in events if e["Event"] == "DialEnd"]
    assert [e["DialStatus"] for e in dials] == ["BUSY", "BUSY"]
    assert ("hotline-emergency", "Playback", "hotline/emergency-hint") in rig.apps(leg)
    assert not [e for e in events if e["Event"].startswith("QueueCaller")]
