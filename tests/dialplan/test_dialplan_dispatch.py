"""Calls run through the generated dialplan with real FastAGI sessions over TCP.

The controller is the project's :class:`FastAgiServer` (or ``hotline-cti serve`` in a subprocess,
for the kill test); Asterisk's side is :mod:`simulators.agi_peer`, driven by the dialplan runner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.dialplan.confparse import parse_extensions
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from simulators.agi_peer import wait_listening
from simulators.dialplan_runner import CallResult, DialplanRunner, UnsupportedDialplan, peer_agi
from simulators.host import free_port
from tests.dialplan.test_dialplan import MINI

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return path


@pytest.fixture
async def controller(mini: Path) -> AsyncIterator[tuple[FastAgiServer, int]]:
    server = FastAgiServer(ConfigHolder(mini), clock=lambda: NOW)
    port = await server.start("127.0.0.1", 0)
    yield server, port
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


def last_route(result: CallResult) -> dict[str, str]:
    """The last HotlineRoute event of a run (the one that counts; HotlineRecording may follow it)."""
    return [e for e in result.events if e["UserEvent"] == "HotlineRoute"][-1]


def runner(
    mini: Path,
    ports: list[int],
    played: list[str] | None = None,
    *,
    keys: tuple[str, ...] = (),
    **kwargs: object,
) -> DialplanRunner:
    """The MINI config's generated dialplan, asking the controllers on ``ports`` in turn.

    ``played`` collects every AGI command the controllers send; ``keys`` are the caller's keys at each Read().
    """
    opts = RenderOptions(controllers=tuple(f"127.0.0.1:{p}" for p in ports))
    contexts = parse_extensions(render_all(load_config(mini).model, opts)["extensions.conf"])
    agi = functools.partial(peer_agi, commands=played)
    return DialplanRunner(contexts, agi=agi, keys=keys, **kwargs)  # type: ignore[arg-type]


async def call(r: DialplanRunner, number: str, city: str | None = None, uid: str = "1700000000.1") -> CallResult:
    context = f"hotline-inbound-{city}" if city else "hotline-inbound"
    return await r.run(context, number, {"CALLERID(name)": "caller"}, uniqueid=uid)


async def test_each_mode_ends_where_the_core_decided(controller: tuple[FastAgiServer, int], mini: Path) -> None:
    _, port = controller
    commands: list[str] = []
    r = runner(mini, [port], commands, keys=("1",), dial_outcome=lambda d: "END")
    parallel = await call(r, "12315")
    assert (parallel.kind, parallel.target, parallel.priority) == ("queue", "gx-l12315", 0)
    assert parallel.variables["CALLERID(name)"] == "[12315][E-e12315]caller"
    assert parallel.variables[cv.ORIGIN] == "12315" and parallel.variables[cv.EXPERT] == "e12315"
    assert (await call(r, "+8677312315")).target == "guilin-l12315"  # dialled area code picks Guilin
    assert (await call(r, "12315", city="guilin")).target == "guilin-l12315"  # the trunk names the city
    main = await call(r, "077112345")
    assert (main.kind, main.target) == ("queue", "gx-general")
    assert [s for s, _ in main.agi] == ["route", "ivr"]
    # one Read over welcome, emergency hint and menu: a key pressed during the welcome is the choice
    assert main.played == ["hotline/welcome", "hotline/emergency-hint", "hotline/menu-main"]
    assert main.variables[cv.IVR_CHOICE] == "1"
    sub = await call(r, "12366")
    assert (sub.kind, sub.target) == ("dial", "PJSIP/12366@tax")
    emergency = await call(r, "110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")
    retired = await call(r, "12300")
    assert (retired.kind, retired.visited, retired.played) == ("hangup", [], ["hotline/retired-12300"])
    landline = await call(r, "07732666110")
    assert landline.kind == "hangup" and landline.variables[cv.ACTION] == "retired"
    # the controller only decides: no session played a prompt or read a key
    assert commands and not [c for c in commands if c.startswith(("STREAM FILE", "GET DATA"))]


async def test_unanswered_dial_takes_the_overflow_but_emergency_never_queues(
    controller: tuple[FastAgiServer, int], mini: Path
) -> None:
    _, port = controller
    r = runner(mini, [port], dial_outcome=lambda d: "BUSY")
    sub = await call(r, "12366")
    assert (sub.kind, sub.target, sub.visited) == ("queue", "gx-general", ["PJSIP/12366@tax", "gx-general"])
    emergency = await call(r, "110")
    assert emergency.kind == "hangup"
    assert emergency.visited == ["PJSIP/110@pstn", "PJSIP/110@pstn"]


async def test_queue_timeout_overflows_and_answered_calls_get_the_survey(
    controller: tuple[FastAgiServer, int], mini: Path
) -> None:
    _, port = controller
    outcomes = {"gx-l12315": "TIMEOUT", "gx-general": "ANSWERED"}
    r = runner(mini, [port], keys=("2",), outcome=lambda q: outcomes[q])
    result = await call(r, "12315", uid="1700000000.42")
    assert (result.kind, result.target, result.visited) == ("queue", "gx-general", ["gx-l12315", "gx-general"])
    assert [s for s, _ in result.agi] == ["route"]  # the survey runs in the dialplan, not the controller
    assert result.variables[cv.RATING] == "2"
    assert result.events[-1] == {"UserEvent": "HotlineRating", "CallId": "1700000000.42", "Rating": "2"}
    assert result.played[-2:] == ["hotline/survey-ask", "hotline/survey-thanks"]


async def test_refused_controller_sends_the_call_to_the_general_queue(mini: Path) -> None:
    r = runner(mini, [free_port()])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE")]
    assert (result.kind, result.target) == ("queue", "gx-general")
    emergency = await call(r, "0773110")
    assert (emergency.kind, emergency.target) == ("dial", "PJSIP/110@pstn")  # never a 12345 queue


async def test_undecided_calls_fall_back_to_their_citys_queue(mini: Path) -> None:
    """The trunk's city wins, then the dialled area code; a call of unknown city takes the region's queue."""
    r = runner(mini, [free_port()])
    assert (await call(r, "12315", city="guilin")).target == "guilin-general"
    assert (await call(r, "077312345")).target == "guilin-general"
    fallback = await call(r, "12366")
    assert (fallback.target, last_route(fallback)["Action"], last_route(fallback)["Target"]) == (
        "gx-general",
        "fallback",
        "gx-general",
    )


async def test_failover_to_the_second_controller(controller: tuple[FastAgiServer, int], mini: Path) -> None:
    _, port = controller
    r = runner(mini, [free_port(), port])
    result = await call(r, "12315")
    assert result.agi == [("route", "FAILURE"), ("route", "SUCCESS")]
    assert result.target == "gx-l12315"


async def test_silent_controller_success_without_decision_still_queues(silent: int, mini: Path) -> None:
    result = await call(runner(mini, [silent]), "12366")
    assert result.agi == [("route", "SUCCESS")]
    assert (result.kind, result.target) == ("queue", "gx-general")


async def test_a_prompt_missing_on_disk_no_longer_touches_the_decision(
    controller: tuple[FastAgiServer, int], mini: Path
) -> None:
    """The session only sets variables (AGISTATUS SUCCESS); the dialplan plays the prompt, then releases."""
    _, port = controller
    commands: list[str] = []
    result = await call(runner(mini, [port], commands), "12300")
    assert result.agi == [("route", "SUCCESS")] and result.variables[cv.DECIDED] == "1"
    assert result.variables[cv.PROMPTS] == "hotline/retired-12300" and result.played == ["hotline/retired-12300"]
    assert (result.kind, result.variables[cv.ACTION]) == ("hangup", "retired")
    assert last_route(result)["Action"] == "retired"
    assert len(commands) == 1 and commands[0].startswith("EXEC MSet ")  # one round trip, sentinel included


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
        # Each session is one round trip (each reply takes 50 ms), so the kill lands mid-session for some.
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
        if last_route(result)["Action"] == "fallback":  # no sentinel: the city's general queue, whatever was set
            city_queue = "guilin-general" if number.startswith("0773") else "gx-general"
            assert (result.kind, result.target) == ("queue", city_queue), (number, result.target)
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
