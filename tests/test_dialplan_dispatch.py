"""Calls run through the generated dialplan with real FastAGI sessions over TCP.

The controller side is a small stub FastAGI server in this file that answers
with the real routing core's decisions (hotline_cti.adapters.agi.fastagi and
simulators.agi_peer were not in the tree when these tests were written; the
stub client below speaks the same FastAGI wire protocol as Asterisk 20).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_dialplan import MINI

from hotline_cti import channel_vars as cv
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable, compile_config
from hotline_cti.dialplan.confparse import parse_extensions
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from simulators.dialplan_runner import CallResult, DialplanRunner, UnsupportedDialplan

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SOUNDS = frozenset({"hotline/welcome", "hotline/menu-main", "hotline/retired-12300"})


def decision_vars(d: Decision) -> dict[str, str]:
    """The channel variables a controller sets for a decision (DECIDED is sent last, separately)."""
    values = {
        cv.ACTION: str(d.action),
        cv.TARGET: d.target or "",
        cv.DIAL: d.dial or "",
        cv.ORIGIN: d.origin or "",
        cv.EXPERT: d.expert or "",
        cv.EXPERT_QUEUE: d.expert_queue or "",
        cv.OVERFLOW: d.overflow or "",
        cv.OVERFLOW_AFTER: str(d.overflow_after),
        cv.PRIORITY: str(d.priority),
        cv.CENTRE: d.centre or "",
        cv.MENU: "1" if d.menu else "0",
        cv.HANGUP: "1" if d.hangup else "0",
    }
    return values


@dataclass
class StubController:
    """FastAGI server: route / ivr / survey scripts backed by the routing core."""

    table: RoutingTable
    mode: str = "normal"  # normal | silent | missing-prompt | slow
    surveys: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    sessions: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        self.sessions += 1
        try:
            env: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()) != "":
                key, _, value = line.partition(": ")
                env[key] = value
            if self.mode == "silent":
                return
            script = env["agi_network_script"]
            args = [env.get(f"agi_arg_{i}", "") for i in (1, 2)]

            async def command(text: str) -> str:
                if self.mode == "slow":
                    await asyncio.sleep(0.01)
                writer.write(text.encode() + b"\n")
                await writer.drain()
                return (await reader.readline()).decode().strip()

            if script == "survey":
                self.surveys.append(args[0])
                await command(f"SET VARIABLE {cv.RATING} 1")
            else:
                call = Call(dialled=args[0], city=args[1] or None, ivr_choice="1" if script == "ivr" else None)
                decision = decide(call, self.table, NOW)
                if self.mode == "missing-prompt":
                    await command('STREAM FILE hotline/no-such-sound ""')
                for prompt in decision.prompts:
                    await command(f'STREAM FILE {cv.SOUND_DIR}/{prompt} ""')
                for name, value in decision_vars(decision).items():
                    await command(f'SET VARIABLE {name} "{value}"')
            await command(f"SET VARIABLE {cv.DECIDED} {cv.DECIDED_VALUE}")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def kill(self) -> None:
        """Drop every open session at once, as a crashed controller would."""
        for writer in list(self.writers):
            writer.transport.abort()


async def fastagi_client(
    host: str, port: int, script: str, args: tuple[str, ...], variables: dict[str, str], played: list[str]
) -> str:
    """Asterisk 20's side of FastAGI: AGISTATUS as Asterisk sets it."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
    except OSError:
        return "FAILURE"
    env = ["agi_network: yes", f"agi_network_script: {script}", f"agi_request: agi://{host}:{port}/{script}"]
    env += [f"agi_uniqueid: {variables.get('UNIQUEID', '')}"]
    env += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    writer.write(("\n".join(env) + "\n\n").encode())
    failed = False
    try:
        await writer.drain()
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 2)
            if verb[:2] == ["SET", "VARIABLE"]:
                name, _, value = verb[2].partition(" ")
                variables[name] = value.strip('"')
                reply = "200 result=1"
            elif verb[:2] == ["STREAM", "FILE"]:
                sound = verb[2].split(" ")[0]
                played.append(sound)
                reply = "200 result=0 endpos=0" if sound in SOUNDS else "200 result=-1 endpos=0"
                failed = failed or sound not in SOUNDS
            else:
                reply = "510 Invalid or unknown command"
            writer.write(reply.encode() + b"\n")
            await writer.drain()
    except ConnectionError:
        return "FAILURE"
    finally:
        writer.close()
    return "FAILURE" if failed else "SUCCESS"


@pytest.fixture
def table(tmp_path: Path) -> RoutingTable:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return compile_config(load_config(path).model)


@pytest.fixture
async def controller(table: RoutingTable) -> AsyncIterator[tuple[StubController, int]]:
    stub = StubController(table)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield stub, port
        stub.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runner(tmp_path: Path, ports: list[int], played: list[str], **kwargs: object) -> DialplanRunner:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    opts = RenderOptions(controllers=tuple(f"127.0.0.1:{p}" for p in ports))
    contexts = parse_extensions(render_all(load_config(path).model, opts)["extensions.conf"])

    async def agi(host: str, port: int, script: str, args: tuple[str, ...], variables: dict[str, str]) -> str:
        return await fastagi_client(host, port, script, args, variables, played)

    return DialplanRunner(contexts, agi=agi, **kwargs)  # type: ignore[arg-type]


async def call(r: DialplanRunner, number: str, city: str | None = None, uid: str = "1700000000.1") -> CallResult:
    context = f"hotline-inbound-{city}" if city else "hotline-inbound"
    return await r.run(context, number, {"CALLERID(name)": "caller"}, uniqueid=uid)


async def test_each_mode_ends_where_the_core_decided(controller: tuple[StubController, int], tmp_path: Path) -> None:
    _, port = controller
    played: list[str] = []
    r = runner(tmp_path, [port], played, dial_outcome=lambda d: "END")
    parallel = await call(r, "12315")
    assert (parallel.kind, parallel.target, parallel.priority) == ("queue", "gx-l12315", 0)
    assert parallel.variables["CALLERID(name)"] == "[12315][E-e12315]caller"
    assert parallel.variables[cv.ORIGIN] == "12315" and parallel.variables[cv.EXPERT] == "e12315"
    assert (await call(r, "+8677312315")).target == "guilin-l12315"  # dialled area code picks Guilin
    assert (await call(r, "12315", city="guilin")).target == "guilin-l12315"  # the trunk names the city
    main = await call(r, "077112345")
    assert (main.kind, main.target) == ("queue", "gx-general")
    assert [s for s, _ in main.agi] == ["route", "ivr"] and "hotline/welcome" in played
    sub = await call(r, "12366")
    assert (sub.kind, sub.target) == ("dial", "PJSIP/12366@tax")
    emergency = await call(r, "110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")
    retired = await call(r, "12300")
    assert (retired.kind, retired.visited) == ("hangup", [])
    assert "hotline/retired-12300" in played
    landline = await call(r, "07732666110")
    assert landline.kind == "hangup" and landline.variables[cv.ACTION] == "retired"


async def test_unanswered_dial_takes_the_overflow_but_emergency_never_queues(
    controller: tuple[StubController, int], tmp_path: Path
) -> None:
    _, port = controller
    r = runner(tmp_path, [port], [], dial_outcome=lambda d: "BUSY")
    sub = await call(r, "12366")
    assert (sub.kind, sub.target, sub.visited) == ("queue", "gx-general", ["PJSIP/12366@tax", "gx-general"])
    emergency = await call(r, "110")
    assert emergency.kind == "hangup"
    assert emergency.visited == ["PJSIP/110@pstn", "PJSIP/110@pstn"]


async def test_queue_timeout_overflows_and_answered_calls_get_the_survey(
    controller: tuple[StubController, int], tmp_path: Path
) -> None:
    stub, port = controller
    outcomes = {"gx-l12315": "TIMEOUT", "gx-general": "ANSWERED"}
    r = runner(tmp_path, [port], [], outcome=lambda q: outcomes[q])
    result = await call(r, "12315", uid="1700000000.42")
    assert (result.kind, result.target, result.visited) == ("queue", "gx-general", ["gx-l12315", "gx-general"])
    assert [s for s, _ in result.agi] == ["route", "survey"]
    assert stub.surveys == ["1700000000.42"]


async def test_refused_controller_sends_the_call_to_the_general_queue(tmp_path: Path) -> None:
    r = runner(tmp_path, [free_port()], [])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE")]
    assert (result.kind, result.target) == ("queue", "gx-general")
    emergency = await call(r, "0773110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")  # never a 12345 queue


async def test_failover_to_the_second_controller(controller: tuple[StubController, int], tmp_path: Path) -> None:
    _, port = controller
    r = runner(tmp_path, [free_port(), port], [])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE"), ("route", "SUCCESS")]
    assert result.target == "gx-l12315"


async def test_silent_controller_success_without_decision_still_queues(
    controller: tuple[StubController, int], tmp_path: Path
) -> None:
    stub, port = controller
    stub.mode = "silent"
    result = await call(runner(tmp_path, [port], []), "12366")
    assert result.agi == [("route", "SUCCESS")]
    assert (result.kind, result.target) == ("queue", "gx-general")


async def test_missing_prompt_failure_with_sentinel_routes_normally(
    controller: tuple[StubController, int], tmp_path: Path
) -> None:
    stub, port = controller
    stub.mode = "missing-prompt"
    result = await call(runner(tmp_path, [port], []), "12315")
    assert result.agi == [("route", "FAILURE")]
    assert (result.kind, result.target) == ("queue", "gx-l12315")


async def test_controller_killed_under_load_loses_no_call(
    controller: tuple[StubController, int], tmp_path: Path
) -> None:
    stub, port = controller
    stub.mode = "slow"
    r = runner(tmp_path, [port], [], dial_outcome=lambda d: "END")
    numbers = ["12315", "12366", "110", "077312315"] * 25
    tasks = [asyncio.create_task(call(r, n, uid=f"1700000000.{i}")) for i, n in enumerate(numbers)]
    while stub.sessions < 40:
        await asyncio.sleep(0.001)
    stub.kill()
    results = await asyncio.gather(*tasks)
    decided = {"12315": "gx-l12315", "12366": "PJSIP/12366@tax", "110": "PJSIP/110@pstn", "077312315": "guilin-l12315"}
    fallbacks = 0
    for number, result in zip(numbers, results, strict=True):
        assert result.kind in ("queue", "dial"), result.trace
        if number == "110":
            assert (result.kind, result.target) == ("dial", decided[number])
        if result.target != decided[number]:
            assert result.target == "gx-general", (number, result.target)
            fallbacks += 1
    assert fallbacks > 0  # the kill really cut sessions short


async def test_runner_rejects_what_it_does_not_interpret() -> None:
    contexts = parse_extensions("[a]\nexten => s,1,Set(X=${X:1})\n[b]\nexten => s,1,Wait(1)\n")
    r = DialplanRunner(contexts)
    with pytest.raises(UnsupportedDialplan, match="X:1"):
        await r.run("a", "s")
    with pytest.raises(UnsupportedDialplan, match=r"Wait\(\) is not supported"):
        await r.run("b", "s")
