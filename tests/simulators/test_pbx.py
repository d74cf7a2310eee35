"""The simulated PBX: queueing theory, conservation, AMI over TCP, real-time pacing, FastAGI routing."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.config.checked import Checked, load_checked
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.staffing.erlang import asa, erlang_a, erlang_c, service_level
from simulators.ami_server import AmiServer
from simulators.pbx import Arrival, Pbx, PbxSettings, QueueSetup
from simulators.pbx.amievents import Fields
from simulators.pbx.mirror import AmiMirror
from simulators.pbx.realtime import route_all, run_live
from simulators.pbx.routing import AgiRouter, CoreRouter, Route, agi_runner, prerouted
from simulators.scenario import Scenario, generate, load_scenario, queue_setups
from tests.paths import REPO

ROOT = REPO
GUANGXI = ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml"
T0 = 1_654_560_000.0  # 2022-06-07 08:00 Asia/Shanghai
QUEUE = Route(action="queue", target="q", dial="", overflow=None, overflow_after=0.0, menu=False)


def poisson_calls(n: int, rate: float, mean_service: float, seed: int, patience: float = math.inf) -> list[Arrival]:
    rng = random.Random(seed)
    t, out = T0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(
            Arrival(
                at=t,
                dialled="12345",
                caller="13800000000",
                patience=patience,
                service=rng.expovariate(1 / mean_service),
            )
        )
    return out


def mmc_pbx(servers: int, strategy: str = "leastrecent", **settings: Any) -> Pbx:
    setup = QueueSetup("q", strategy, ring_timeout=15, wrapup=0, agents=(servers,) * 24)
    timing = PbxSettings(ring=0.0, **settings)
    return Pbx(lambda a: QUEUE, lambda name: setup, timing)


@pytest.mark.parametrize("strategy", ["leastrecent", "ringall"])
def test_mmc_queue_matches_erlang_c(strategy: str) -> None:
    servers, mean_service, load = 10, 60.0, 8.0
    arrivals = poisson_calls(150_000, load / mean_service, mean_service, seed=7)
    summary = mmc_pbx(servers, strategy).run(arrivals)
    assert summary.answered == len(arrivals) and summary.abandoned == 0
    assert summary.p_wait == pytest.approx(erlang_c(servers, load), rel=0.05)
    assert summary.mean_wait == pytest.approx(asa(servers, load, mean_service), rel=0.1)
    assert summary.service_level == pytest.approx(service_level(servers, load, mean_service, 20.0), rel=0.03)


def test_impatient_callers_match_erlang_a() -> None:
    servers, mean_service, load, patience = 10, 60.0, 11.0, 90.0  # overloaded: only abandonment keeps it stable
    arrivals = poisson_calls(100_000, load / mean_service, mean_service, seed=8, patience=math.inf)
    rng = random.Random(9)
    arrivals = [dataclasses.replace(a, patience=rng.expovariate(1 / patience)) for a in arrivals]
    summary = mmc_pbx(servers).run(arrivals)
    theory = erlang_a(servers, load / mean_service * 3600, mean_service, patience)
    assert summary.abandoned / summary.arrivals == pytest.approx(theory.p_abandon, rel=0.05)
    assert summary.answered + summary.abandoned == summary.arrivals


def test_patience_abandons_and_conservation_of_calls() -> None:
    arrivals = poisson_calls(5_000, 1 / 5, 60.0, seed=3, patience=30.0)  # 12 Erlangs on 10 seats: overloaded
    summary = mmc_pbx(10).run(arrivals)
    assert summary.abandoned > 0 and summary.answered > 0
    assert summary.answered + summary.abandoned == len(arrivals)
    assert summary.unfinished == 0


def test_sparse_calls_over_hours_all_run_and_the_run_stops_with_the_last_call() -> None:
    setup = QueueSetup("q", agents=(1,) * 24)
    arrivals = [Arrival(at=T0 + k * 7200, dialled="12345", caller="13800000000", service=10) for k in range(5)]
    pbx = Pbx(lambda a: QUEUE, lambda name: setup, PbxSettings())
    summary = pbx.run(arrivals)
    assert summary.answered == 5 and summary.unfinished == 0
    assert pbx.now == arrivals[-1].at + PbxSettings().ring + 10  # no idle hour of staffing changes after it


@pytest.fixture(scope="module")
def guangxi() -> tuple[Scenario, Checked]:
    scenario, config = load_scenario(GUANGXI)
    checked = load_checked(str(config))
    # Shared by the module's tests: the table is frozen; each test's CoreRouter keeps its own decision cache.
    return scenario, checked


def busy_hour(guangxi: tuple[Scenario, Checked], sink: Any = None, seed: int = 5) -> tuple[Pbx, list[Arrival]]:
    scenario, checked = guangxi
    scenario = scenario.model_copy(update={"handovers": {}})  # hand-overs: test_emergency_hand_overs_...
    arrivals = generate(scenario, checked.table.timezone, seed=seed, hours=(10, 11))
    pbx = Pbx(
        CoreRouter(checked.table),
        queue_setups(scenario, checked.model),
        scenario.settings(),
        tz=checked.table.timezone,
        sink=sink,
        seed=seed,
    )
    return pbx, arrivals


def test_every_call_ends_exactly_once_with_asterisk_events(guangxi: tuple[Scenario, Checked]) -> None:
    events: list[Fields] = []
    pbx, arrivals = busy_hour(guangxi, events.append)
    s = pbx.run(arrivals)
    assert s.arrivals == len(arrivals) > 1000
    assert s.answered + s.abandoned + s.dialled + s.announced + s.unfinished == s.arrivals
    assert s.unfinished == 0 and s.transferred > 0 and s.overflowed >= 0 and s.no_answer > 0
    assert sum(s.ratings.values()) > 0 and set(s.actions) >= {"queue", "subcentre", "retired", "emergency"}
    by_name = collections.Counter(dict(e)["Event"] for e in events)
    hangups = collections.Counter(dict(e)["Uniqueid"] for e in events if dict(e)["Event"] == "Hangup")
    new = [dict(e)["Uniqueid"] for e in events if dict(e)["Event"] == "Newchannel"]
    assert len(new) == len(set(new)) == s.arrivals and set(hangups) == set(new) and set(hangups.values()) == {1}
    assert by_name["Cdr"] == s.arrivals and by_name["QueueCallerAbandon"] == s.abandoned
    assert by_name["AgentConnect"] == by_name["AgentComplete"] == s.answered
    assert by_name["BlindTransfer"] == s.transferred and by_name["AgentRingNoAnswer"] == s.no_answer
    users = collections.Counter(dict(e).get("UserEvent") for e in events if dict(e)["Event"] == "UserEvent")
    assert users["HotlineRoute"] == s.arrivals and users["HotlineRating"] == sum(s.ratings.values())
    assert users["HotlineOverflow"] == s.overflowed
    assert {"QueueCallerJoin", "QueueCallerLeave", "AgentCalled", "QueueMemberStatus", "DialBegin", "DialEnd"} <= set(
        by_name
    )
    stamps = [float(dict(e)["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)  # virtual time only moves forward


def test_the_projects_record_builder_reads_the_events(guangxi: tuple[Scenario, Checked]) -> None:
    events: list[Fields] = []
    pbx, arrivals = busy_hour(guangxi, events.append)
    s = pbx.run(arrivals)
    builder = RecordBuilder("gx")
    records: dict[str, CallRecord] = {}
    for fields in events:
        event = dict(fields)
        for out in builder.feed(event, dt.datetime.fromtimestamp(float(event["Timestamp"]), dt.UTC)):
            if isinstance(out, CallRecord):
                records[out.call_id] = out  # a later copy (rating, Cdr) replaces the first
    assert builder.skipped == 0 and builder.active == 0 and len(records) == s.arrivals
    outcomes = collections.Counter(r.outcome for r in records.values())
    assert outcomes[Outcome.TRANSFERRED] == s.transferred
    assert outcomes[Outcome.ANSWERED] == s.answered - s.transferred + s.dialled - s.actions.get("emergency", 0)
    assert outcomes[Outcome.ABANDONED] + outcomes[Outcome.OVERFLOWED] == s.abandoned
    assert outcomes[Outcome.RETIRED] + outcomes[Outcome.GUIDANCE] == s.announced
    assert outcomes[Outcome.EMERGENCY] == s.actions.get("emergency", 0)
    assert sum(r.overflowed for r in records.values()) == s.overflowed
    assert collections.Counter(r.rating for r in records.values() if r.rating) == {
        k: v for k, v in s.ratings.items() if v
    }
    queued = [r.wait for r in records.values() if r.action == "queue" and r.agent and r.wait is not None]
    assert len(queued) == s.answered
    assert sum(queued) / len(queued) == pytest.approx(s.mean_wait, rel=0.05)


def test_a_seed_makes_the_run_reproducible(guangxi: tuple[Scenario, Checked]) -> None:
    first, arrivals = busy_hour(guangxi)
    again, same = busy_hour(guangxi)
    other, different = busy_hour(guangxi, seed=6)
    assert arrivals == same and arrivals != different
    assert first.run(arrivals).to_dict() == again.run(same).to_dict() != other.run(different).to_dict()


def client_settings(server: AmiServer) -> AmiSettings:
    # The timeouts only bound a hang: a QueueStatus answer queues behind the ~19,000 events a mirrored
    # busy hour has just sent, which a loaded two-core machine takes seconds to read.
    return AmiSettings(
        host="127.0.0.1",
        port=server.port,
        username="sim",
        secret="sim-secret",
        action_timeout=30.0,
        connect_timeout=30.0,
        fully_booted_timeout=30.0,
        backoff_jitter=0.0,
    )


@pytest.fixture
async def ami() -> AsyncIterator[tuple[AmiServer, AmiClient]]:
    server = AmiServer(username="sim", secret="sim-secret")
    await server.start()
    client = AmiClient(client_settings(server))
    await client.connect()
    yield server, client
    await client.close()
    await server.stop()


async def test_ami_events_reach_a_client_over_tcp_in_real_time(
    guangxi: tuple[Scenario, Checked], ami: tuple[AmiServer, AmiClient]
) -> None:
    server, client = ami
    received: list[Any] = []
    client.on("*", received.append)
    pbx, arrivals = busy_hour(guangxi, server.emit)
    arrivals = arrivals[:40]
    reference, _ = busy_hour(guangxi)
    expected = reference.run(arrivals).to_dict()
    loop = asyncio.get_running_loop()
    started = loop.time()
    summary = await run_live(pbx, arrivals, speed=20_000.0)
    elapsed = loop.time() - started
    assert elapsed >= (pbx.now - arrivals[0].at) / 20_000.0  # paced: never ahead of the scaled clock
    assert summary.to_dict() == {**expected, "events": summary.events}  # same model, same figures
    deadline = loop.time() + 30.0  # a bound on a hang: the events are in flight on a local socket
    while len([m for m in received if m.get("Event") != "FullyBooted"]) < summary.events and loop.time() < deadline:
        await asyncio.sleep(0.02)
    names = collections.Counter(m["Event"] for m in received)
    assert names["Hangup"] == names["Newchannel"] == 40
    connect = next(m for m in received if m["Event"] == "AgentConnect")
    for key in (
        "Channel",
        "Uniqueid",
        "Linkedid",
        "CallerIDNum",
        "DestChannel",
        "DestUniqueid",
        "Queue",
        "Interface",
        "MemberName",
        "HoldTime",
        "RingTime",
    ):
        assert key in connect, key
    route = next(m for m in received if m["Event"] == "UserEvent" and m["UserEvent"] == "HotlineRoute")
    assert route["CallId"] == route["Uniqueid"] and route["Action"] in {"queue", "subcentre", "department", "retired"}


async def test_queue_status_and_channels_follow_the_pbx(
    guangxi: tuple[Scenario, Checked], ami: tuple[AmiServer, AmiClient]
) -> None:
    server, client = ami
    scenario, checked = guangxi
    pbx, arrivals = busy_hour(guangxi)
    pbx.sink = AmiMirror(server, queue_setups(scenario, checked.model))
    pbx.run(arrivals, until=arrivals[0].at + 1200)  # stop 20 minutes into the peak hour: calls in progress
    status = await client.action("QueueStatus", {"Queue": "nanning-general"})
    kinds = collections.Counter(e.name for e in status.events)
    assert kinds["QueueParams"] == 1 and kinds["QueueMember"] == 34  # the 8-12 shift of nanning-general
    members = [e for e in status.events if e.name == "QueueMember"]
    assert {m["Status"] for m in members} <= {"1", "2", "6"} and any(m["InCall"] == "1" for m in members)
    assert sum(int(m["CallsTaken"]) for m in members) > 0
    channels = await client.action("CoreShowChannels")
    assert len(channels.events) == pbx.active_calls > 0
    assert {e["Uniqueid"] for e in channels.events} == {e["Linkedid"] for e in channels.events}


@pytest.fixture
async def controller() -> AsyncIterator[int]:
    server = FastAgiServer(ConfigHolder(ROOT / "merger_config" / "guangxi.yaml"))
    port = await server.start("127.0.0.1", 0)
    yield port
    await server.close()


async def test_fastagi_routing_agrees_with_the_core(guangxi: tuple[Scenario, Checked], controller: int) -> None:
    scenario, checked = guangxi
    # Route at the time of the server's own clock: the controller asks no one else for the time.
    arrivals = [a for a in generate(scenario, checked.table.timezone, seed=9, hours=(10, 11))][:60]
    conf = render_all(checked.model, RenderOptions(controllers=(f"127.0.0.1:{controller}",)))["extensions.conf"]
    agi = AgiRouter(agi_runner(conf), fallback_queue="gx-general")
    routes = await route_all(agi, arrivals, first_id=1_654_567_200, concurrency=8)
    core = CoreRouter(checked.table)
    assert len(routes) == len(arrivals)
    for arrival, route in zip(arrivals, routes, strict=True):
        want = core(arrival)
        assert (route.action, route.target) == (want.action, want.target), arrival
    pbx = Pbx(prerouted(routes), queue_setups(scenario, checked.model), scenario.settings(), seed=1)
    summary = pbx.run(arrivals)
    assert summary.answered + summary.abandoned + summary.dialled + summary.announced == len(arrivals)


def test_emergency_hand_overs_join_the_citys_general_queue_and_read_as_transfers(
    guangxi: tuple[Scenario, Checked],
) -> None:
    """110 hands every call over (share 1.0): marked, routed as the fallback, queued, recorded as moved to 12345."""
    scenario, checked = guangxi
    scenario = scenario.model_copy(update={"lines": {"110": 1.0, "119": 1.0}, "handovers": {"110": 1.0}})
    arrivals = generate(scenario, checked.table.timezone, seed=3, hours=(10, 11))
    events: list[Fields] = []
    pbx = Pbx(
        CoreRouter(checked.table),
        queue_setups(scenario, checked.model),
        scenario.settings(),
        tz=checked.table.timezone,
        sink=events.append,
        seed=3,
        handover_queue=lambda a: f"{a.city}-general",
    )
    s = pbx.run(arrivals)
    police = [a for a in arrivals if a.dialled == "110"]
    assert all(a.handover for a in police) and not any(a.handover for a in arrivals if a.dialled == "119")
    assert s.handed_over == len(police) > 10 and s.actions["emergency"] == len(arrivals)
    assert s.answered + s.abandoned + s.dialled + s.announced + s.unfinished == s.arrivals
    users = collections.Counter(dict(e).get("UserEvent") for e in events if dict(e)["Event"] == "UserEvent")
    assert users["HotlineHandover"] == len(police) and users["HotlineRoute"] == s.arrivals + len(police)
    builder = RecordBuilder("gx")
    records: dict[str, CallRecord] = {}
    for fields in events:
        event = dict(fields)
        for out in builder.feed(event, dt.datetime.fromtimestamp(float(event["Timestamp"]), dt.UTC)):
            if isinstance(out, CallRecord):
                records[out.call_id] = out
    assert builder.skipped == 0 and len(records) == s.arrivals
    handed = [r for r in records.values() if r.transfers[:1] == ["12345"]]  # the 12345 agent may transfer on
    assert len(handed) == len(police)
    assert all(r.dialled == "110" and r.action == "emergency" and r.outcome is Outcome.TRANSFERRED for r in handed)
    assert all(r.queue == f"{r.city}-general" for r in handed)
    assert {r.outcome for r in records.values() if r.dialled == "119"} == {Outcome.EMERGENCY}


def test_a_scenario_without_hand_overs_draws_the_same_calls(guangxi: tuple[Scenario, Checked]) -> None:
    scenario, checked = guangxi
    plain = generate(scenario.model_copy(update={"handovers": {}}), checked.table.timezone, seed=2)
    with_them = generate(scenario, checked.table.timezone, seed=2)  # the whole day: ~90 calls to 110
    assert [dataclasses.replace(a, handover=False) for a in with_them] == plain
    assert scenario.handovers == {"110": 0.3} and any(a.handover for a in with_them if a.dialled == "110")
