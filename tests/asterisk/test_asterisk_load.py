"""SIP load through chan_pjsip on a real Asterisk 22, with ``hotline-cti serve`` as a real process.

SIPp callers (simulators/sipp/uac_line.xml, uac_12345_menu.xml) dial every kind of Guangxi line into the
``anonymous`` endpoint (context hotline-inbound); one SIPp uas_agent.xml answers as every agent and trunk
(pstn, pstn-<city>). serve routes (``--clock-start`` at a moment where lines are in every phase) and
writes call records from AMI into SQLite. What a call reached is what Asterisk itself reported on AMI.

The load config extends merger_config/guangxi.yaml: four merged lines cut over earlier (so they are
retired while the others are in their transition window), one guidance line, and a 2 s overflow wait
(so overflows happen within the test's short holds).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action, Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan import names
from hotline_cti.dialplan.extensions import fallback_queues
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import AmiError, AsteriskInstance, Event, free_port, silent_prompts, start_asterisk
from simulators.asterisk_load import (
    ANONYMOUS_MODULE,
    SERVE_AMI_USER,
    SERVE_MANAGER_CONF,
    CallerLeg,
    Serve,
    SippRun,
    caller_legs,
    filter_events,
    percentile,
    pjsip_endpoints,
    queue_members,
    sipp_uac,
    sipp_uas,
    trunks_of,
    wait_idle,
)
from tests.paths import REPO

# 1,000 SIP calls at 50/s with dead-air and p99 bounds: run alone, not beside other test workers (scripts/test.sh).
pytestmark = pytest.mark.serial

CLOCK_START = "2021-12-15T10:00:00+08:00"
CALLS, RATE = 1000, 50  # calls per run, calls per second
MENU_SHARE = 8  # of every 50 calls, this many dial 12345 and press a menu key
HOLD_MS, MENU_HOLD_MS, KEY_MS, TALK_MS = 4000, 5000, 1200, 1500
AGENTS_PER_QUEUE = 2

LOAD_YAML = """\
extends: {base}
overflow: {{max_wait: 2, target: general}}
hotlines:
  - {{number: "12343", cutover: 2021-01-31}}
  - {{number: "12349", cutover: 2021-01-31}}
  - {{number: "12356", cutover: 2021-01-31}}
  - {{number: "96119", cutover: 2021-01-31}}
  - {{number: "12395", name: 话务引导演练线, unit: 演练, mode: guidance}}
"""


@dataclass(frozen=True)
class PlacedCall:
    number: str
    caller: str
    key: str | None  # menu key (12345 callers)

    def decision(self, table: RoutingTable, at: dt.datetime) -> Decision:
        first = decide(Call(self.number, caller=self.caller), table, at)
        if first.menu:
            return decide(Call(self.number, caller=self.caller, ivr_choice=self.key), table, at)
        return first


@dataclass
class LoadRun:
    """One load run: SIPp's reports and every caller leg Asterisk reported."""

    line: SippRun
    menu: SippRun
    legs: dict[str, CallerLeg]
    seconds: float
    killed_at: float | None = None  # monotonic time serve was killed
    events: list[Event] = field(default_factory=list)  # every event of the run (filtered: EVENT_FILTER)

    def counts(self) -> tuple[int, int]:
        ok_l, failed_l = self.line.counts()
        ok_m, failed_m = self.menu.counts()
        return ok_l + ok_m, failed_l + failed_m


@dataclass
class LoadRig:
    cfg: MergerConfig
    table: RoutingTable
    at: dt.datetime
    config: Path
    work: Path
    pbx: AsteriskInstance
    uas: SippRun
    serve: Serve
    serve_port: int
    line_calls: list[PlacedCall]
    menu_calls: list[PlacedCall]
    runs: dict[str, LoadRun] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.pbx.sip_port}"

    def new_serve(self) -> Serve:
        self.serve.stop()
        self.serve = Serve(
            self.config,
            self.serve_port,
            self.pbx.ami_port,
            self.work / f"records-{time.time_ns()}.db",
            self.work,
            clock_start=CLOCK_START,
        )
        self.serve.start()
        wait_ami_logins(self.pbx, 1)
        return self.serve

    def run(self, name: str, kill_after: float | None = None) -> LoadRun:
        """Place every call (line and menu callers side by side, RATE calls/s in all) and wait for them all."""
        ami = self.pbx.ami()
        filter_events(ami)
        try:
            # every 4th line caller gives up after 1.5 s (abandons in its first queue, before the overflow wait)
            rows_l = [f"{c.number};{HOLD_MS if i % 4 else 1500};{c.caller}" for i, c in enumerate(self.line_calls)]
            rows_m = [f"{c.number};{MENU_HOLD_MS};{c.caller};{c.key};{KEY_MS}" for c in self.menu_calls]
            seconds = CALLS / RATE
            began = time.monotonic()
            line = sipp_uac(self.work, "uac_line.xml", rows_l, len(rows_l), self.target, period_ms=int(seconds * 1000))
            menu = sipp_uac(
                self.work, "uac_12345_menu.xml", rows_m, len(rows_m), self.target, period_ms=int(seconds * 1000)
            )
            killed_at = None
            if kill_after is not None:
                time.sleep(max(0.0, began + kill_after - time.monotonic()))
                killed_at = time.monotonic()
                self.serve.kill_group()
            line.wait(seconds + 120)
            menu.wait(seconds + 120)
            took = time.monotonic() - began
            assert wait_idle(self.pbx, 30) == 0, self.pbx.cli("core show channels")
            time.sleep(0.5)
            events = list(ami.events)
            run = LoadRun(line, menu, caller_legs(events), took, killed_at, events)
        finally:
            ami.close()
        self.runs[name] = run
        return run


def wait_ami_logins(pbx: AsteriskInstance, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` AMI sessions of serve's user are connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pbx.cli("manager show connected")
        if sum(1 for line in out.splitlines() if line.split()[:1] == [SERVE_AMI_USER]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"serve did not log in to AMI: {pbx.cli('manager show connected')}")


def call_mix(cfg: MergerConfig, table: RoutingTable, at: dt.datetime) -> tuple[list[PlacedCall], list[PlacedCall]]:
    """CALLS calls to every kind of line, from landlines of every city and mobiles; 12345 callers press 1 or 2."""
    numbers = sorted({h.number for h in cfg.hotlines})
    kinds: dict[str, list[str]] = {}
    for n in numbers:
        d = decide(Call(n), table, at)
        kinds.setdefault(f"{d.action.value}/{d.phase.value}", []).append(n)
    areas = sorted({c.area_code for c in cfg.cities})
    callers = [f"{a}555{i:04d}" for i, a in enumerate(areas)] + ["13800138000", "13912345678"]
    per_kind = sorted(kinds.items())
    n_menu = CALLS * MENU_SHARE // 50
    line: list[PlacedCall] = []
    i = 0
    while len(line) < CALLS - n_menu:
        kind_numbers = per_kind[i % len(per_kind)][1]
        line.append(PlacedCall(kind_numbers[(i // len(per_kind)) % len(kind_numbers)], callers[i % len(callers)], None))
        i += 1
    menu = [PlacedCall("12345", callers[j % len(callers)], "12"[j % 2]) for j in range(n_menu)]
    return line, menu


@pytest.fixture(scope="module")
def load(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadRig]:
    work = tmp_path_factory.mktemp("asterisk-load")
    config = work / "load.yaml"
    # extends reads only files in the config's own tree: the base goes beside it
    shutil.copyfile(REPO / "merger_config" / "guangxi.yaml", work / "guangxi.yaml")
    config.write_text(LOAD_YAML.format(base="guangxi.yaml"), encoding="utf-8")
    cfg = load_config(config).model
    table = compile_config(cfg)
    at = dt.datetime.fromisoformat(CLOCK_START)
    line_calls, menu_calls = call_mix(cfg, table, at)
    decisions = [c.decision(table, at) for c in (*line_calls, *menu_calls)]
    queues = {d.target for d in decisions if d.action is Action.QUEUE and d.target}
    queues |= {d.overflow for d in decisions if d.overflow}
    queues |= set(fallback_queues(cfg).values()) | {names.queue_name(names.default_centre(cfg), "general")}
    members: dict[str, list[str]] = {}
    agents: list[str] = []
    for q in sorted(queues):
        for k in range(AGENTS_PER_QUEUE):
            # letter and numeric agent ids both ring (hotline-agents matches any id)
            agent = f"agent{1000 + len(agents)}" if k % 2 == 0 else f"{8000 + len(agents)}"
            agents.append(agent)
            members.setdefault(q, []).append(agent)
    trunks = trunks_of(d.dial for d in decisions if d.dial) | {"pstn"} | {f"pstn-{c.id}" for c in cfg.cities}

    serve_port = free_port()
    gen = work / "generated"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{serve_port}",))), gen)
    sounds = silent_prompts(cfg)
    uas_port = free_port(socket.SOCK_DGRAM)
    pbx = start_asterisk(
        asterisk_root,
        name="load",
        generated_dir=gen,
        extra_queues=queue_members(members),
        pjsip=pjsip_endpoints(uas_port, agents, sorted(trunks)),
        sounds=sounds,
        modules=(ANONYMOUS_MODULE,),
        manager_extra=SERVE_MANAGER_CONF,
        boot_timeout=60.0,
    )
    uas = sipp_uas(work, uas_port, TALK_MS)
    serve = Serve(config, serve_port, pbx.ami_port, work / "records.db", work, clock_start=CLOCK_START)
    rig = LoadRig(cfg, table, at, config, work, pbx, uas, serve, serve_port, line_calls, menu_calls)
    try:
        serve.start()
        wait_ami_logins(pbx, 1)
        yield rig
    finally:
        rig.serve.stop()
        uas.stop()
        pbx.stop(keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))


@pytest.fixture(scope="module")
def first_load(load: LoadRig) -> LoadRun:
    """1,000 calls at 50/s with serve running throughout (run once, shared by the tests that read it)."""
    return load.run("full")


def _expected_reach(d: Decision) -> str:
    if d.action is Action.QUEUE:
        return "queue"
    if d.action in (Action.DEPARTMENT, Action.SUBCENTRE, Action.EMERGENCY):
        return "dial"
    return "release"


def test_1000_calls_at_50_per_second_all_reach_their_decision(load: LoadRig, first_load: LoadRun) -> None:
    """Every SIP call reached the queue, the dial or the release ``route`` decides; none lost."""
    run = first_load
    ok, failed = run.counts()
    legs = run.legs
    placed = [*load.line_calls, *load.menu_calls]
    assert (ok, failed) == (CALLS, 0), (run.line.output[-2000:], run.menu.output[-2000:])
    assert len(legs) == CALLS
    reached = Counter(leg.reached for leg in legs.values())
    assert reached[""] == 0, [leg for leg in legs.values() if not leg.reached][:3]
    # Each call reached what its own decision names (the first queue joined is the decided one).
    want: Counter[tuple[str, str, str]] = Counter()
    for c in placed:
        d = c.decision(load.table, load.at)
        want[(c.number, c.caller, _expected_reach(d) + (f":{d.target}" if d.action is Action.QUEUE else ""))] += 1
    got = Counter(
        (leg.number, leg.caller, leg.reached + (f":{leg.joins[0][0]}" if leg.reached == "queue" else ""))
        for leg in legs.values()
    )
    assert got == want, (got - want, want - got)
    # The controller decided every call (a later "fallback" route is the dialplan's own, after a queue's
    # overflow wait with no overflow queue: the call rejoins the general queue).
    undecided = [leg for leg in legs.values() if leg.route_actions[:1] == ["fallback"]]
    assert undecided == [], f"{len(undecided)} calls fell back with serve running"
    kinds = Counter(
        f"{leg.routes[0].get('Action')}/{leg.routes[0].get('Phase')}" for leg in legs.values() if leg.routes
    )
    print(
        f"\nload: {CALLS} calls at {RATE}/s in {run.seconds:.1f} s: SIPp {ok} ok / {failed} failed; reached {dict(reached)}"
    )
    print(f"load: first decisions {dict(sorted(kinds.items()))}")
    for kind in (
        "queue/transition",
        "retired/after",
        "guidance/none",
        "queue/after",
        "subcentre/after",
        "department/after",
        "emergency/none",
        "queue/none",
    ):
        assert kinds[kind] > 0, kind


def cdr_view(rows: list[dict[str, str]], qlog: list[list[str]]) -> tuple[str, bool, float | None, float | None, str]:
    """What Asterisk's own CDR rows and queue_log lines of one caller say: (outcome, overflowed, wait counting
    every queue, talk in the queue, agent)."""
    queue_events = [q[4] for q in qlog]
    overflowed = queue_events.count("ENTERQUEUE") > 1
    waits = [float(q[7]) for q in qlog if q[4] in ("EXITWITHTIMEOUT", "ABANDON", "EXITEMPTY")]
    waits += [float(q[5]) for q in qlog if q[4] == "CONNECT"]
    talk = next((float(q[6]) for q in qlog if q[4] in ("COMPLETECALLER", "COMPLETEAGENT")), None)
    agent = next((q[3] for q in qlog if q[4] == "CONNECT"), "")
    if any(r["dcontext"] == "hotline-end" and r["lastapp"] == "Hangup" for r in rows):
        return "released", overflowed, None, None, agent
    answered = [r for r in rows if r["disposition"] == "ANSWERED" and r["dstchannel"]]
    if len({r["dstchannel"] for r in answered}) > 1:
        return "transferred", overflowed, sum(waits) if waits else None, talk, agent
    if answered:
        row = answered[-1]
        if row["lastapp"] == "Dial":
            agent = row["dstchannel"].rpartition("-")[0]
            return ("emergency" if row["dcontext"] == "hotline-emergency" else "answered"), False, None, None, agent
        return "answered", overflowed, sum(waits), talk, agent
    if overflowed:
        return "overflowed", True, sum(waits) if waits else None, None, ""
    if "ABANDON" in queue_events:
        return "abandoned", False, sum(waits), None, ""
    return "failed", overflowed, None, None, ""


RECORD_OUTCOME = {"retired": "released", "guidance": "released"}


def test_records_equal_asterisks_cdr(load: LoadRig, first_load: LoadRun) -> None:
    """serve's call records equal Asterisk's own CDR (and queue_log), call for call: the outcome (answered,
    abandoned, overflowed, transferred, emergency, released), the overflow, the agent, the wait counting
    every queue the call was in, the talk."""
    deadline = time.monotonic() + 60
    records = load.serve.records()
    while len([r for r in records.values() if r["outcome"] != "active"]) < CALLS and time.monotonic() < deadline:
        time.sleep(0.5)
        records = load.serve.records()
    cdr: dict[str, list[dict[str, str]]] = {}
    for row in load.pbx.cdr_rows():
        cdr.setdefault(row["uniqueid"], []).append(row)
    qlog: dict[str, list[list[str]]] = {}
    for line in load.pbx.queue_log_rows():
        qlog.setdefault(line[1], []).append(line)
    legs = first_load.legs
    assert set(records) == set(legs)  # one record per SIP call, none for other legs
    mismatches: list[str] = []
    asterisk_counts: Counter[str] = Counter()
    record_counts: Counter[str] = Counter()
    agreed = 0
    for call_id, rec in records.items():
        outcome, overflowed, wait, talk, agent = cdr_view(cdr.get(call_id, []), qlog.get(call_id, []))
        mine = RECORD_OUTCOME.get(str(rec["outcome"]), str(rec["outcome"]))
        asterisk_counts[outcome] += 1
        record_counts[mine] += 1
        problems = []
        if mine != outcome:
            problems.append(f"outcome {mine} != {outcome}")
        if outcome != "released" and bool(rec["overflowed"]) != overflowed:
            problems.append(f"overflowed {rec['overflowed']} != {overflowed}")
        undecided = legs[call_id].route_actions[:1] == ["fallback"]  # the controller gave no decision
        if bool(rec["fallback"]) != undecided:
            problems.append(f"fallback {rec['fallback']} != {undecided} (routes {legs[call_id].route_actions})")
        if agent and rec["agent"] != agent:
            problems.append(f"agent {rec['agent']} != {agent}")
        if wait is not None:
            segments = sum(1 for q in qlog.get(call_id, []) if q[4] == "ENTERQUEUE")
            if rec["wait"] is None or abs(float(str(rec["wait"])) - wait) > segments * 1.0 + 0.5:
                problems.append(f"wait {rec['wait']} != queue_log {wait} ({segments} queues)")
        if talk is not None and (rec["talk"] is None or abs(float(str(rec["talk"])) - talk) > 1.5):
            problems.append(f"talk {rec['talk']} != queue_log {talk}")
        if problems:
            mismatches.append(f"{call_id}: {'; '.join(problems)}")
        else:
            agreed += 1
    print(f"\nrecords vs CDR: {agreed} of {len(records)} calls agree; Asterisk {dict(sorted(asterisk_counts.items()))}")
    print(f"records vs CDR: records {dict(sorted(record_counts.items()))}")
    if mismatches:  # keep what Asterisk said, to read and to turn into builder tests
        (load.work / "events.json").write_text(json.dumps(first_load.events), encoding="utf-8")
    assert mismatches == [], mismatches[:10]
    # serve's AMI user has only the rights docs/asterisk.md lists: enough for records and the resync
    log = load.serve.log_text()
    assert "FullyBooted" not in log and "resync hook" not in log and "Permission denied" not in log, log[-3000:]
    for kind in ("answered", "abandoned", "overflowed", "emergency", "released"):
        assert asterisk_counts[kind] > 0, kind


def twelve345_queues(cfg: MergerConfig) -> set[str]:
    """The general queues of the 12345 centres (where fallback calls go)."""
    return {names.queue_name(c.id, "general") for c in cfg.centres}


def place(load: LoadRig, calls: list[PlacedCall], hold_ms: int = 6000, rate: int = 5) -> LoadRun:
    """A few line calls (no menu), ``rate`` a second; returns their run."""
    ami = load.pbx.ami()
    filter_events(ami)
    try:
        began = time.monotonic()
        rows = [f"{c.number};{hold_ms};{c.caller}" for c in calls]
        line = sipp_uac(load.work, "uac_line.xml", rows, rate, load.target)
        line.wait(60)
        assert wait_idle(load.pbx, 30) == 0
        time.sleep(0.3)
        events = list(ami.events)
    finally:
        ami.close()
    return LoadRun(line, line, caller_legs(events), time.monotonic() - began, None, events)


def test_stalled_routing_process_bounded_dead_air_then_normal_routing(load: LoadRig) -> None:
    """serve's routing child SIGSTOPped: the supervisor kills it after --stall-limit (1 s) and starts it again.
    A call placed during the stall reaches a 12345 queue within 3 s of the call starting, measured
    on the real Asterisk (Newchannel to QueueCallerJoin); calls after the restart are routed normally."""
    serve = load.serve
    routing = serve.child_pid("routing")
    caller = "07735550123"  # a Guilin landline
    stalled_calls = [PlacedCall("12300", caller, None), PlacedCall("12315", caller, None)]
    stopped_at = time.time()
    os.kill(routing, signal.SIGSTOP)
    try:
        stalled = place(load, stalled_calls)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(routing, signal.SIGCONT)
    assert stalled.line.counts() == (len(stalled_calls), 0), stalled.line.output[-2000:]
    legs = sorted(stalled.legs.values(), key=lambda leg: leg.created)
    assert len(legs) == len(stalled_calls)
    generals = twelve345_queues(load.cfg)
    dead_air = []
    for leg in legs:
        assert leg.route_actions[:1] == ["fallback"], leg.routes
        assert leg.joins and leg.joins[0][0] in generals
        took = leg.first_join_after()
        assert took is not None
        dead_air.append(took)
    killed = [line for line in serve.log_text().splitlines() if f"pid {routing} stalled" in line]
    assert killed, serve.log_text()[-2000:]
    killed_at = time.mktime(time.strptime(killed[0][:19], "%Y-%m-%d %H:%M:%S")) + int(killed[0][20:23]) / 1000
    assert legs[0].created < killed_at  # the first call met the stalled process, not a restarted one
    print(
        f"\nstall: routing pid {routing} SIGSTOPped, killed by the supervisor {killed_at - stopped_at:.2f} s later;"
        f" the first call started {legs[0].created - stopped_at:.2f} s after the SIGSTOP; calls joined a 12345"
        " queue " + ", ".join(f"{s:.2f} s" for s in dead_air) + " after they started"
    )
    assert max(dead_air) < 3.0, dead_air

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = serve.status()
        services = status.get("services")
        if status.get("healthy") and isinstance(services, dict) and services["routing"]["pid"] != routing:
            break
        time.sleep(0.2)
    assert serve.child_pid("routing") != routing, serve.status()
    assert serve.status()["services"]["routing"]["stalls"] >= 1  # type: ignore[index]
    after = place(load, [PlacedCall("12300", caller, None), PlacedCall("12315", caller, None)])
    for leg in after.legs.values():
        d = decide(Call(leg.number, caller=leg.caller), load.table, load.at)
        assert leg.route_actions[:1] == [d.action.value], leg.routes
        assert leg.joins[0][0] == d.target


def test_transferred_calls_records_equal_cdr(load: LoadRig) -> None:
    """Answered calls blind-transferred to 110 by the agent side (AMI BlindTransfer, as serve's transfer
    executor sends it): serve records them ``transferred`` to 110, and Asterisk's CDR shows the caller's
    second answered party (the 110 seats on pstn)."""
    calls = [PlacedCall("12315", "13800138000", None) for _ in range(3)]
    ami = load.pbx.ami()
    filter_events(ami)
    transferred: list[str] = []
    try:
        rows = [f"{c.number};9000;{c.caller}" for c in calls]
        sipp = sipp_uac(load.work, "uac_line.xml", rows, 2, load.target)
        for _ in calls:
            connect = ami.wait_for(
                lambda e: (
                    e.get("Event") == "AgentConnect"
                    and e.get("Uniqueid") not in transferred
                    and e.get("Channel", "").startswith("PJSIP/anonymous-")
                ),
                20.0,
            )
            # AgentConnect can come a moment before the agent's leg is in the bridge: Asterisk then answers
            # "Transfer invalid"; ask again for up to 2 s, as an agent pressing the key again would.
            for attempt in range(20):
                try:
                    ami.action("BlindTransfer", Channel=connect["DestChannel"], Exten="110", Context="hotline-onekey")
                    break
                except AmiError as exc:
                    if "Transfer invalid" not in str(exc) or attempt == 19:
                        raise
                    time.sleep(0.1)
            transferred.append(connect["Uniqueid"])
        sipp.wait(60)
        assert wait_idle(load.pbx, 30) == 0
    finally:
        ami.close()
    assert sipp.counts() == (len(calls), 0), sipp.output[-2000:]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = load.serve.records()
        if all(records.get(c, {}).get("outcome") not in (None, "active") for c in transferred):
            break
        time.sleep(0.3)
    cdr: dict[str, list[dict[str, str]]] = {}
    for row in load.pbx.cdr_rows():
        cdr.setdefault(row["uniqueid"], []).append(row)
    qlog: dict[str, list[list[str]]] = {}
    for line in load.pbx.queue_log_rows():
        qlog.setdefault(line[1], []).append(line)
    for call_id in transferred:
        rec = records[call_id]
        outcome, _, _, _, agent = cdr_view(cdr[call_id], qlog.get(call_id, []))
        assert (rec["outcome"], outcome) == ("transferred", "transferred"), (rec, cdr[call_id])
        assert rec["transfers"] == "110" and rec["agent"] == agent
        assert any(r["dstchannel"].startswith("PJSIP/pstn-") for r in cdr[call_id])
        assert rec["talk"] is not None and 0 < float(str(rec["talk"])) < 1.5  # the agent talked until the transfer
    print(f"\ntransfers: {len(transferred)} calls blind-transferred to 110: records and CDR both 'transferred'")


def test_1000_calls_with_serve_killed_halfway_none_lost(load: LoadRig) -> None:
    """The same load with serve's whole process group SIGKILLed 10 s in: every call still reaches a queue, a
    dial or its release (SIPp: 0 failed), each call the controller did not decide joins a 12345 queue, and
    their dead air (call start to queue join) is measured on Asterisk."""
    if not load.serve.healthy():
        load.new_serve()
    run = load.run("killed", kill_after=CALLS / RATE / 2)
    ok, failed = run.counts()
    assert (ok, failed) == (CALLS, 0), (run.line.output[-2000:], run.menu.output[-2000:])
    legs = run.legs
    assert len(legs) == CALLS
    reached = Counter(leg.reached for leg in legs.values())
    assert reached[""] == 0, [leg for leg in legs.values() if not leg.reached][:3]
    generals = twelve345_queues(load.cfg)
    fell_back = [leg for leg in legs.values() if leg.route_actions[:1] == ["fallback"]]
    assert fell_back, "no call fell back: was serve killed?"
    wrong = [(leg.number, leg.joins) for leg in fell_back if not leg.joins or leg.joins[0][0] not in generals]
    assert wrong == []
    dead_air = [t for leg in fell_back if (t := leg.first_join_after()) is not None]
    p50, p99, worst = percentile(dead_air, 0.5), percentile(dead_air, 0.99), max(dead_air)
    decided = sum(1 for leg in legs.values() if leg.route_actions[:1] not in (["fallback"], []))
    print(
        f"\nkill -9: {CALLS} calls at {RATE}/s, serve killed {CALLS / RATE / 2:.0f} s in: SIPp {ok} ok / {failed} failed;"
        f" reached {dict(reached)}; {decided} decided by the controller, {len(fell_back)} fell back"
    )
    print(
        f"kill -9: fallback dead air (INVITE's channel to queue join): p50 {p50:.3f} s, p99 {p99:.3f} s, max {worst:.3f} s"
    )
    assert p99 < 3.0


def test_a_call_that_starts_and_ends_while_the_events_service_is_down_is_recorded_from_the_cdr(load: LoadRig) -> None:
    """serve with --cdr-csv on Asterisk's own cdr_custom file. Its events service is killed (-9) and, the
    supervisor being stopped meanwhile, stays down while a SIP call starts, is routed and ends: no AMI event of
    that call reaches serve. When the supervisor resumes, the restarted events service reads the CDR written
    meanwhile: the call is stored once, with Asterisk's start and end, and announced once (calls/ended)."""
    load.serve.stop()
    cdr_file = load.pbx.dir / "log" / "cdr-custom" / "Master.csv"
    # The same database: a test run after this one (in any order) still finds the first load's records there.
    load.serve = Serve(
        load.config,
        load.serve_port,
        load.pbx.ami_port,
        load.serve.database,
        load.work,
        clock_start=CLOCK_START,
        extra=("--cdr-csv", str(cdr_file), "--spool-dir", str(load.work / f"spool-{time.time_ns()}")),
    )
    serve = load.serve
    serve.start()
    wait_ami_logins(load.pbx, 1)
    seen = place(load, load.line_calls[:1], hold_ms=2000)  # with the events service up: stored from AMI
    deadline = time.monotonic() + 30
    while set(seen.legs) - set(serve.records()):
        assert time.monotonic() < deadline, "the call seen on AMI not stored"
        time.sleep(0.2)
    events = serve.child_pid("events")
    assert serve.proc is not None
    os.kill(serve.proc.pid, signal.SIGSTOP)  # the supervisor: it would restart the events service at once
    try:
        os.kill(events, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while "\n" + SERVE_AMI_USER + " " in "\n" + load.pbx.cli("manager show connected"):
            assert time.monotonic() < deadline, "the killed events service still on AMI"
            time.sleep(0.1)
        began = time.time()
        unseen = place(load, load.line_calls[1:2], hold_ms=2000)  # routed by the routing service, never on AMI
        ended = time.time()
        assert "\n" + SERVE_AMI_USER + " " not in "\n" + load.pbx.cli("manager show connected")
    finally:
        os.kill(serve.proc.pid, signal.SIGCONT)
    assert len(unseen.legs) == 1 and unseen.legs[next(iter(unseen.legs))].route_actions[:1] not in ([], ["fallback"])
    (call_id,) = unseen.legs
    cdr = [row for row in load.pbx.cdr_rows() if row["uniqueid"] == call_id]
    assert cdr, "Asterisk wrote no CDR for the call"
    deadline = time.monotonic() + 60
    while call_id not in serve.records():
        assert time.monotonic() < deadline, f"the call not recovered from the CDR:\n{serve.log_text()[-3000:]}"
        time.sleep(0.2)
    record = serve.records()[call_id]
    started = dt.datetime.fromisoformat(str(record["started"])).replace(tzinfo=dt.UTC).timestamp()
    stopped = dt.datetime.fromisoformat(str(record["ended"])).replace(tzinfo=dt.UTC).timestamp()
    assert abs(started - min(float(r["start"]) for r in cdr)) < 0.01  # Asterisk's own times
    assert abs(stopped - max(float(r["end"]) for r in cdr)) < 0.01
    assert began - 1 <= started <= stopped <= ended + 1  # and they are the call's
    assert record["caller"] != load.line_calls[1].caller  # masked, as every stored number
    with contextlib.closing(sqlite3.connect(serve.database)) as db:
        ended_events = [
            json.loads(p)["data"]["call_id"]
            for (p,) in db.execute(
                "SELECT payload FROM outbox WHERE topic = ?", (f"hotline/gx/calls/ended/{serve.node}",)
            )
        ]
    # announced under the call's key, '<node>:<uniqueid>', as stored
    assert ended_events.count(f"{serve.node}:{call_id}") == 1
    assert all(ended_events.count(f"{serve.node}:{c}") == 1 for c in seen.legs)
    print(
        f"\nCDR recovery: call {call_id} stored from the CDR, {stopped - started:.2f} s ({serve.log_text().count('never seen on AMI')} CDR log line(s))"
    )
