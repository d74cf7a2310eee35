"""Calls run through the generated dialplan with real FastAGI sessions over TCP.

The controller is the project's :class:`FastAgiServer` (or ``hotline-cti serve`` in a subprocess,
for the kill test); Asterisk's side is :mod:`simulators.agi_peer`, driven by the dialplan runner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_dialplan import MINI

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import compile_config
from hotline_cti.dialplan.confparse import parse_extensions
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from simulators.agi_peer import wait_listening
from simulators.dialplan_runner import CallResult, DialplanRunner, UnsupportedDialplan, peer_agi

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return path


@pytest.fixture
async def controller(mini: Path) -> AsyncIterator[tuple[FastAgiServer, int, list[str]]]:
    ratings: list[str] = []
    server = FastAgiServer(
        ConfigHolder(mini), clock=lambda: NOW, record_rating=lambda call_id, rating, at: ratings.append(call_id)
    )
    port = await server.start("127.0.0.1", 0)
    yield server, port, ratings
    await server.close()
    assert server.active == 0


@pytest.fixture
async def silent() -> AsyncIterator[int]:
    """A broken controller that reads the environment and closes without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runner(
    mini: Path,
    ports: list[int],
    played: list[str] | None = None,
    *,
    sounds: frozenset[str] | None = None,
    dtmf: str = "",
    **kwargs: object,
) -> DialplanRunner:
    """The MINI config's generated dialplan, asking the controllers on ``ports`` in turn."""
    opts = RenderOptions(controllers=tuple(f"127.0.0.1:{p}" for p in ports))
    contexts = parse_extensions(render_all(load_config(mini).model, opts)["extensions.conf"])
    agi = functools.partial(peer_agi, sounds=sounds, commands=played, dtmf=dtmf)
    return DialplanRunner(contexts, agi=agi, **kwargs)  # type: ignore[arg-type]


def streamed(commands: list[str]) -> list[str]:
    return [c.split()[2] for c in commands if c.startswith("STREAM FILE")]


async def call(r: DialplanRunner, number: str, city: str | None = None, uid: str = "1700000000.1") -> CallResult:
    context = f"hotline-inbound-{city}" if city else "hotline-inbound"
    return await r.run(context, number, {"CALLERID(name)": "caller"}, uniqueid=uid)


async def test_each_mode_ends_where_the_core_decided(
    controller: tuple[FastAgiServer, int, list[str]], mini: Path
) -> None:
    _, port, _ = controller
    played: list[str] = []
    r = runner(mini, [port], played, dtmf="1", dial_outcome=lambda d: "END")
    parallel = await call(r, "12315")
    assert (parallel.kind, parallel.target, parallel.priority) == ("queue", "gx-l12315", 0)
    assert parallel.variables["CALLERID(name)"] == "[12315][E-e12315]caller"
    assert parallel.variables[cv.ORIGIN] == "12315" and parallel.variables[cv.EXPERT] == "e12315"
    assert (await call(r, "+8677312315")).target == "guilin-l12315"  # dialled area code picks Guilin
    assert (await call(r, "12315", city="guilin")).target == "guilin-l12315"  # the trunk names the city
    main = await call(r, "077112345")
    assert (main.kind, main.target) == ("queue", "gx-general")
    assert [s for s, _ in main.agi] == ["route", "ivr"] and "hotline/welcome" in streamed(played)
    assert main.variables[cv.IVR_CHOICE] == "1"
    sub = await call(r, "12366")
    assert (sub.kind, sub.target) == ("dial", "PJSIP/12366@tax")
    emergency = await call(r, "110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")
    retired = await call(r, "12300")
    assert (retired.kind, retired.visited) == ("hangup", [])
    assert "hotline/retired-12300" in streamed(played)
    landline = await call(r, "07732666110")
    assert landline.kind == "hangup" and landline.variables[cv.ACTION] == "retired"


async def test_unanswered_dial_takes_the_overflow_but_emergency_never_queues(
    controller: tuple[FastAgiServer, int, list[str]], mini: Path
) -> None:
    _, port, _ = controller
    r = runner(mini, [port], dial_outcome=lambda d: "BUSY")
    sub = await call(r, "12366")
    assert (sub.kind, sub.target, sub.visited) == ("queue", "gx-general", ["PJSIP/12366@tax", "gx-general"])
    emergency = await call(r, "110")
    assert emergency.kind == "hangup"
    assert emergency.visited == ["PJSIP/110@pstn", "PJSIP/110@pstn"]


async def test_queue_timeout_overflows_and_answered_calls_get_the_survey(
    controller: tuple[FastAgiServer, int, list[str]], mini: Path
) -> None:
    _, port, ratings = controller
    outcomes = {"gx-l12315": "TIMEOUT", "gx-general": "ANSWERED"}
    r = runner(mini, [port], dtmf="2", outcome=lambda q: outcomes[q])
    result = await call(r, "12315", uid="1700000000.42")
    assert (result.kind, result.target, result.visited) == ("queue", "gx-general", ["gx-l12315", "gx-general"])
    assert [s for s, _ in result.agi] == ["route", "survey"]
    assert ratings == ["1700000000.42"] and result.variables[cv.RATING] == "2"


async def test_refused_controller_sends_the_call_to_the_general_queue(mini: Path) -> None:
    r = runner(mini, [free_port()])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE")]
    assert (result.kind, result.target) == ("queue", "gx-general")
    emergency = await call(r, "0773110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")  # never a 12345 queue


async def test_failover_to_the_second_controller(controller: tuple[FastAgiServer, int, list[str]], mini: Path) -> None:
    _, port, _ = controller
    r = runner(mini, [free_port(), port])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE"), ("route", "SUCCESS")]
    assert result.target == "gx-l12315"


async def test_silent_controller_success_without_decision_still_queues(silent: int, mini: Path) -> None:
    result = await call(runner(mini, [silent]), "12366")
    assert result.agi == [("route", "SUCCESS")]
    assert (result.kind, result.target) == ("queue", "gx-general")


async def test_missing_prompt_failure_with_sentinel_routes_normally(
    controller: tuple[FastAgiServer, int, list[str]], mini: Path
) -> None:
    _, port, _ = controller
    played: list[str] = []
    r = runner(mini, [port], played, sounds=frozenset())  # this PBX has no prompt on disk
    result = await call(r, "12300")
    assert streamed(played) == ["hotline/retired-12300"]
    # result=-1 made AGISTATUS FAILURE, but the session finished: the sentinel routes the call
    assert result.agi == [("route", "FAILURE")] and result.variables[cv.DECIDED] == "1"
    assert (result.kind, result.variables[cv.ACTION]) == ("hangup", "retired")
    assert result.events[-1]["Action"] == "retired"


async def _serve(config: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``hotline-cti serve`` in its own process, once it accepts connections."""
    port = free_port()
    cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(config)]
    process = subprocess.Popen([*cmd, "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        await wait_listening(port, process)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return process, port


async def test_controller_killed_under_load_loses_no_call(mini: Path) -> None:
    process, port = await _serve(mini)
    try:
        opts = RenderOptions(controllers=(f"127.0.0.1:{port}",))
        contexts = parse_extensions(render_all(load_config(mini).model, opts)["extensions.conf"])
        started: list[str] = []

        async def counting(host: str, p: int, script: str, args: tuple[str, ...], variables: dict[str, str]) -> str:
            started.append(script)
            return await peer_agi(host, p, script, args, variables, reply_delay=0.05)

        r = DialplanRunner(contexts, agi=counting, dial_outcome=lambda d: "END")
        # 12345 plays its welcome prompt (variables, prompt, sentinel: three round trips), so the
        # kill lands between its variables and its sentinel; the others need one round trip.
        numbers = ["12315", "12366", "110", "077312315", "12345"] * 20
        tasks = [asyncio.create_task(call(r, n, uid=f"1700000000.{i}")) for i, n in enumerate(numbers)]
        while len(started) < 100:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # a prompt session is one or two replies in (each reply takes 50 ms)
        process.send_signal(signal.SIGKILL)
        results = await asyncio.gather(*tasks)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    table = compile_config(load_config(mini).model)
    now = dt.datetime.now(dt.UTC)
    fallbacks = 0
    for number, result in zip(numbers, results, strict=True):
        d = decide(Call(number, caller=None), table, now)
        decided = d.dial if d.action.value in ("subcentre", "emergency") else d.target
        assert result.kind in ("queue", "dial"), result.trace
        if number == "110":
            assert (result.kind, result.target) == ("dial", decided)
        if result.events[-1]["Action"] == "fallback":  # no sentinel: the general queue, whatever was set
            assert (result.kind, result.target) == ("queue", "gx-general"), (number, result.target)
            fallbacks += 1
        else:
            assert result.target == decided, (number, result.target)
    assert fallbacks > 0  # the kill really cut sessions short


async def test_runner_rejects_what_it_does_not_interpret() -> None:
    contexts = parse_extensions("[a]\nexten => s,1,Set(X=${X:1})\n[b]\nexten => s,1,Wait(1)\n")
    r = DialplanRunner(contexts)
    with pytest.raises(UnsupportedDialplan, match="X:1"):
        await r.run("a", "s")
    with pytest.raises(UnsupportedDialplan, match=r"Wait\(\) is not supported"):
        await r.run("b", "s")
