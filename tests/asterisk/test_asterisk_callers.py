"""Repeat and nuisance callers on a real Asterisk 22, routed by ``hotline-cti serve`` (a real process).

A number put on the ``nuisance`` list with ``hotline-cti callers add`` hears the rule's prompt and lands in
the rule's queue; a caller who called the same line before is tagged, and the tag reaches the agent's ringing
channel (its CONNECTEDLINE(name), which the phone shows, and HOTLINE_CALLER_TAG, read over AMI). The lists live in SQLite as keyed hashes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Action, Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import Ami, AsteriskInstance, Event, free_port, silent_prompts, start_asterisk
from simulators.asterisk_load import Serve
from tests.asterisk.test_asterisk_calls import HARNESS, _endpoint, _trunks, busy_trunk
from tests.paths import REPO

GUANGXI = REPO / "merger_config" / "guangxi.yaml"
CALLERS_YAML = """\
extends: guangxi.yaml
prompts:
  nuisance-warning: 请勿无故占用热线资源。
queues:
  - {id: nuisance, name: 重点来电}
callers:
  repeat: {within_hours: 24, tag: 重复}
  rules:
    - id: listed
      list: nuisance
      action: {prompt: nuisance-warning, queue: nuisance, priority: -1, tag: 骚扰}
"""
CLOCK_START = "2021-09-15T10:00:00+08:00"  # 12300 is in its transition window: prompt, then a 12345 queue
KEY = "rig-number-key-0123456789"
LISTED = "13900000001"
REPEATER = "13900000002"
AGENT = "Local/agent1001@hotline-agents/n"


@dataclass
class CallersRig:
    pbx: AsteriskInstance
    ami: Ami
    table: RoutingTable
    database: Path

    def call(self, number: str, caller: str) -> str:
        call_id = f"clr{uuid.uuid4().hex[:12]}"
        self.ami.originate(
            f"Local/{number}@hotline-inbound",
            channel_id=call_id,
            other_channel_id=f"{call_id}-2",
            context="rig-caller",
            exten="listen",
            caller_id=f'"rig" <{caller}>',
        )
        return f"{call_id}-2"

    def wait(self, leg: str, event: str, timeout: float = 15.0) -> Event:
        return self.ami.wait_for(lambda e: e.get("Uniqueid") == leg and e.get("Event") == event, timeout)

    def apps(self, leg: str) -> list[tuple[str, str, str]]:
        return [
            (e["Context"], e["Application"], e["AppData"])
            for e in self.ami.channel_events(leg)
            if e["Event"] == "Newexten"
        ]

    def route_events(self, leg: str) -> list[Event]:
        return [
            e
            for e in self.ami.channel_events(leg)
            if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"
        ]

    def expect(self, number: str, caller: str) -> Decision:
        return decide(Call(number, caller=caller), self.table, dt.datetime.fromisoformat(CLOCK_START))


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CallersRig]:
    work = tmp_path_factory.mktemp("callers")
    shutil.copy(GUANGXI, work / "guangxi.yaml")
    config = work / "callers.yaml"
    config.write_text(CALLERS_YAML, encoding="utf-8")
    cfg = load_config(config).model
    out = work / "generated"
    out.mkdir()
    port = free_port()
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    sounds = silent_prompts(cfg)
    database = work / "records.db"
    saved = os.environ.get("HOTLINE_NUMBER_KEY")
    os.environ["HOTLINE_NUMBER_KEY"] = KEY  # serve's children and the CLI below read it
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: os.environ.pop("HOTLINE_NUMBER_KEY", None) if saved is None else None)
        if saved is not None:
            stack.callback(os.environ.__setitem__, "HOTLINE_NUMBER_KEY", saved)
        url = f"sqlite:///{database}"
        assert main(["callers", "add", "nuisance", LISTED, "--database", url, "--note", "rig"]) == 0
        trunk_port = stack.enter_context(busy_trunk(work))
        pjsip = "".join(_endpoint(trunk, f"sip:127.0.0.1:{trunk_port}") for trunk in _trunks(config, out))
        # agent1001's phone never answers: its channel rings long enough to be read over AMI
        pjsip += _endpoint("agent1001", f"sip:agent1001@127.0.0.1:{free_port()}").replace(
            "context = hotline-inbound", "context = hotline-agents"
        )
        pbx = start_asterisk(
            asterisk_root, name="callers", generated_dir=out, extra_extensions=HARNESS, pjsip=pjsip, sounds=sounds
        )
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        ami = pbx.ami()
        stack.callback(ami.close)
        serve = Serve(config, port, pbx.ami_port, database, work, clock_start=CLOCK_START, with_ami=False)
        serve.start()
        stack.callback(serve.stop)
        yield CallersRig(pbx, ami, compile_config(cfg), database)


@pytest.fixture(autouse=True)
def _clean_calls(rig: CallersRig) -> Iterator[None]:
    yield
    rig.pbx.cli("channel request hangup all")


def test_the_list_holds_only_a_keyed_hash(rig: CallersRig) -> None:
    raw = rig.database.read_bytes() + b"".join(
        p.read_bytes() for p in rig.database.parent.glob("records.db-*") if p.is_file()
    )
    assert LISTED.encode() not in raw
    with contextlib.closing(sqlite3.connect(rig.database)) as db:
        ((name, digest),) = db.execute("SELECT list, number_hash FROM caller_lists").fetchall()
        audit = db.execute("SELECT actor, action, result, detail FROM actions").fetchall()
    assert name == "nuisance" and len(digest) == 64 and LISTED not in digest
    assert [(a[1], a[2]) for a in audit] == [("callers:add", "ok")] and LISTED not in audit[0][3]


def test_a_listed_number_hears_the_prompt_and_lands_in_the_named_queue(rig: CallersRig) -> None:
    plain = rig.expect("12300", LISTED)
    assert plain.action is Action.QUEUE and plain.prompts == ("transition-12300",)
    leg = rig.call("12300", LISTED)
    join = rig.wait(leg, "QueueCallerJoin")
    assert join["Queue"] == f"{plain.centre}-nuisance" != plain.target
    apps = rig.apps(leg)
    assert ("hotline-dispatch", "Playback", "hotline/nuisance-warning&hotline/transition-12300") in apps
    prio = [e["Value"] for e in rig.ami.channel_events(leg) if e["Event"] == "VarSet" and e["Variable"] == "QUEUE_PRIO"]
    assert prio[-1] == "-1"  # the rule's lower priority, as app_queue reads it at Queue()
    assert [e["CallerTag"] for e in rig.route_events(leg)] == ["骚扰"]


def test_a_repeat_callers_tag_reaches_the_agents_channel(rig: CallersRig) -> None:
    plain = rig.expect("12300", REPEATER)
    assert plain.target is not None
    rig.ami.action(
        "QueueAdd", Queue=plain.target, Interface=AGENT, MemberName="agent1001", StateInterface="PJSIP/agent1001"
    )
    try:
        first = rig.call("12300", REPEATER)
        rig.wait(first, "QueueCallerJoin")
        assert [e["CallerTag"] for e in rig.route_events(first)] == [""]
        rig.pbx.cli("channel request hangup all")
        rig.wait(first, "Hangup")
        second = rig.call("12300", REPEATER)
        assert rig.wait(second, "QueueCallerJoin")["Queue"] == plain.target
        assert [e["CallerTag"] for e in rig.route_events(second)] == ["重复"]
        linked = second.removesuffix("-2")
        ring = rig.ami.wait_for(
            lambda e: (
                e.get("Event") == "DialBegin" and e.get("DialString") == "agent1001" and e.get("Linkedid") == linked
            ),
            15.0,
        )
        agent_channel = ring["DestChannel"]
        assert agent_channel.startswith("PJSIP/agent1001-")
        # What the agent's phone shows is its channel's connected line: the caller's id, tags first.
        name = rig.ami.action("Getvar", Channel=agent_channel, Variable="CONNECTEDLINE(name)")["Value"]
        tag = rig.ami.action("Getvar", Channel=agent_channel, Variable="HOTLINE_CALLER_TAG")["Value"]
        assert name.startswith("[重复][12300]") and tag == "重复"
    finally:
        rig.ami.action("QueueRemove", Queue=plain.target, Interface=AGENT)
