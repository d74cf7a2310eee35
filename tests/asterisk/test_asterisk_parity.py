"""Parity on a real Asterisk 22: what Asterisk does with every number of every shipped region equals
what ``hotline-cti route --json`` decides (the same ``decide``), before, inside and after each line's
transition window, from a city trunk, a landline caller of another city and a mobile caller.

Per call, from Asterisk's own AMI events: the prompts played (and found on disk), the queue joined,
the number dialled, or the call released, and the HotlineRoute event the records are built from.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action, Call, Decision
from hotline_cti.core.numbers import dialled_forms
from hotline_cti.core.routing import decide
from hotline_cti.core.table import MAIN_NUMBER, RoutingTable
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import Ami, AsteriskInstance, ControllerThread, Event, free_port, silent_wav, start_asterisk
from tests.dialplan.test_dialplan_lines import moments
from tests.paths import REPO

REGIONS = ("guangxi", "yuncheng", "yongzhou")
MOBILE = "13812345678"
MENU_KEY = "1"
BATCH = 40  # calls in flight at once

CALLERS = """
[rig-caller]
exten => listen,1,Playtones(0)
 same => n,Wait(30)
 same => n,Hangup()
exten => menu,1,Playtones(0)
 same => n,Wait(0.3)
 same => n,SendDTMF(1)
 same => n,Wait(30)
 same => n,Hangup()
"""


@dataclass(frozen=True)
class Case:
    """One call: what is dialled, from where, by whom, at what time."""

    dialled: str
    context: str  # hotline-inbound or a city trunk's hotline-inbound-<city>
    city: str | None  # the trunk's city
    caller: str | None  # None: no caller id
    at: dt.datetime

    def decisions(self, table: RoutingTable) -> tuple[Decision, Decision]:
        """The first decision and the one the call ends with (after menu key 1 for 12345)."""
        first = decide(Call(self.dialled, caller=self.caller, city=self.city), table, self.at)
        if not first.menu:
            return first, first
        call = Call(self.dialled, caller=self.caller, city=self.city, ivr_choice=MENU_KEY)
        return first, decide(call, table, self.at)


@dataclass
class Region:
    name: str
    cfg: MergerConfig
    table: RoutingTable
    pbx: AsteriskInstance
    ami: Ami
    controller: ControllerThread


def endpoints(cfg: MergerConfig, table: RoutingTable) -> set[str]:
    """Every PJSIP endpoint the calls of :func:`cases` dial (PJSIP/<number>@<endpoint>)."""
    dials = {d.dial for case in cases(cfg, table) for d in case.decisions(table) if d.dial}
    return {dial.rsplit("@", 1)[1] for dial in dials if dial.startswith("PJSIP/") and "@" in dial}


def pjsip_for(names: set[str]) -> str:
    """Endpoints whose contact is a loopback port nobody answers: Dial starts (DialBegin) and rings out."""
    dead = free_port()
    out = []
    for name in sorted(names):
        out.append(
            f"[{name}]\ntype = endpoint\ncontext = hotline-inbound\ndisallow = all\nallow = alaw,ulaw\naors = {name}\n"
            f"\n[{name}]\ntype = aor\ncontact = sip:{name}@127.0.0.1:{dead}\n"
        )
    return "\n".join(out)


@pytest.fixture(scope="module", params=REGIONS)
def region(
    request: pytest.FixtureRequest, asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Region]:
    name: str = request.param
    path = REPO / "merger_config" / f"{name}.yaml"
    cfg = load_config(path).model
    table = compile_config(cfg)
    controller = ControllerThread(path, dt.datetime(2030, 1, 1, 10, tzinfo=table.timezone))
    port = controller.listen()
    out = tmp_path_factory.mktemp(f"{name}-dialplan")
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    # every prompt the region can play, as a short silence: found on disk, and the calls stay quick
    sounds = {p: silent_wav(0.05) for p in known_prompt_ids(load_catalogue(), cfg)}
    pbx = start_asterisk(
        asterisk_root,
        name=f"parity-{name}",
        generated_dir=out,
        extra_extensions=CALLERS,
        pjsip=pjsip_for(endpoints(cfg, table)),
        sounds=sounds,
    )
    ami = pbx.ami()
    try:
        yield Region(name, cfg, table, pbx, ami, controller)
    finally:
        ami.close()
        pbx.stop()
        controller.shutdown()


def cases(cfg: MergerConfig, table: RoutingTable) -> list[Case]:
    """Every number (and alias) of the region, at each of its moments: from a city trunk, another city's
    landline, a mobile and no caller id, dialled as a local number, and nationally from a mobile."""
    cities = sorted(cfg.cities, key=lambda c: c.id)
    trunk, other = cities[0], cities[-1]
    landline = f"{other.area_code}5551234"  # a landline of another city than the trunk's
    numbers = [(MAIN_NUMBER, None)] + [
        (n, table.lines[line.number]) for line in cfg.hotlines for n in (line.number, *line.aliases)
    ]
    out: list[Case] = []
    for number, plan in numbers:
        whens = moments(plan, table) if plan is not None else [dt.datetime(2030, 6, 1, 10, tzinfo=table.timezone)]
        area = plan.landline_area if plan is not None and plan.landline_area else trunk.area_code
        local, national = dialled_forms(number, area)[:2]
        for at in whens:
            out.append(Case(local, f"hotline-inbound-{trunk.id}", trunk.id, MOBILE, at))
            out.append(Case(local, "hotline-inbound", None, landline, at))
            out.append(Case(local, "hotline-inbound", None, MOBILE, at))
            out.append(Case(local, "hotline-inbound", None, None, at))
            out.append(Case(national, "hotline-inbound", None, MOBILE, at))
    return out


def settled(events: list[Event]) -> bool:
    """The call reached what it does: a queue, a dial, or its release."""
    return any(e["Event"] in ("QueueCallerJoin", "DialBegin", "Hangup") for e in events)


def check(case: Case, events: list[Event], table: RoutingTable) -> list[str]:
    """What Asterisk did against what ``route`` decides; the differences, as text."""
    first, final = case.decisions(table)
    where = f"{case.dialled} via {case.context} from {case.caller} at {case.at:%Y-%m-%d}"
    problems: list[str] = []
    steps = [(e["Context"], e["Application"], e["AppData"]) for e in events if e["Event"] == "Newexten"]
    played = [data for ctx, app, data in steps if ctx == "hotline-dispatch" and app == "Playback"]
    reads = [data for ctx, app, data in steps if ctx == "hotline-dispatch" and app == "Read"]
    status = [e["Value"] for e in events if e["Event"] == "VarSet" and e.get("Variable") == "PLAYBACKSTATUS"]
    sounds = lambda d: "&".join(cv.sound(p) for p in d.prompts)  # noqa: E731
    if first.menu:
        want = f"{cv.IVR_CHOICE},{sounds(first)}&hotline/emergency-hint&hotline/menu-main,"
        if not reads or not reads[0].startswith(want):
            problems.append(f"{where}: menu read {reads[:1]}, expected {want}…")
        expected_played = [sounds(final)] if final.prompts else []
    else:
        expected_played = [sounds(first)] if first.prompts else []
    if played != expected_played:
        problems.append(f"{where}: played {played}, route says {expected_played}")
    if "FAILED" in status:
        problems.append(f"{where}: a prompt was not found on disk ({played})")
    joins = [e["Queue"] for e in events if e["Event"] == "QueueCallerJoin"]
    dials = [e["DialString"] for e in events if e["Event"] == "DialBegin"]
    if final.action is Action.QUEUE:
        ok = joins[:1] == [final.target]
    elif final.action in (Action.DEPARTMENT, Action.SUBCENTRE, Action.EMERGENCY) and final.dial:
        ok = dials[:1] == [final.dial.split("/", 1)[1]]
    elif final.action in (Action.RETIRED, Action.GUIDANCE):
        ok = not joins and not dials and bool(steps) and steps[-1][:2] == ("hotline-end", "Hangup")
    else:  # a dial target without a dial string goes to its overflow queue
        ok = joins[:1] == [final.overflow]
    if not ok:
        problems.append(f"{where}: joined {joins} dialled {dials}, route says {final.action.value} {final.target}")
    routes = [e for e in events if e["Event"] == "UserEvent" and e.get("UserEvent") == cv.EVENT_ROUTE]
    if not routes or (routes[-1]["Action"], routes[-1]["Target"]) != (final.action.value, final.target or ""):
        problems.append(f"{where}: HotlineRoute {[(e['Action'], e['Target']) for e in routes]}")
    return problems


def run_batch(r: Region, batch: list[Case]) -> dict[Case, list[Event]]:
    """Originate ``batch`` (one moment), wait until each call settled, hang them up; their events."""
    legs: dict[Case, str] = {}
    for case in batch:
        call_id = f"p{uuid.uuid4().hex[:12]}"
        r.ami.originate(
            f"Local/{case.dialled}@{case.context}",
            channel_id=call_id,
            other_channel_id=f"{call_id}-2",
            context="rig-caller",
            exten="menu" if case.dialled.endswith(MAIN_NUMBER) else "listen",
            caller_id=f'"parity" <{case.caller}>' if case.caller else None,
        )
        legs[case] = f"{call_id}-2"
    deadline = time.monotonic() + 60
    while True:
        by_leg: dict[str, list[Event]] = {leg: [] for leg in legs.values()}
        for event in list(r.ami.events):
            leg = event.get("Uniqueid", "")
            if leg in by_leg:
                by_leg[leg].append(event)
        if all(settled(events) for events in by_leg.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the HotlineRoute event before a queue join is already in; let late VarSets land too
    r.pbx.cli("channel request hangup all")
    return {case: by_leg[leg] for case, leg in legs.items()}


def test_every_number_routes_on_asterisk_as_route_says(region: Region) -> None:
    all_cases = cases(region.cfg, region.table)
    by_moment: dict[dt.datetime, list[Case]] = {}
    for case in all_cases:
        by_moment.setdefault(case.at, []).append(case)
    problems: list[str] = []
    actions: dict[str, int] = {}
    agree = 0
    for at, moment_cases in sorted(by_moment.items()):
        region.controller.now = at
        for i in range(0, len(moment_cases), BATCH):
            for case, events in run_batch(region, moment_cases[i : i + BATCH]).items():
                found = check(case, events, region.table)
                problems += found
                agree += not found
                final = case.decisions(region.table)[1]
                actions[final.action.value] = actions.get(final.action.value, 0) + 1
        region.ami.events.clear()
    print(f"{region.name}: {len(all_cases)} calls on Asterisk, {agree} as route decides; {actions}")
    assert problems == [], "\n".join(problems[:40])
    assert {"queue", "emergency"} <= set(actions)
