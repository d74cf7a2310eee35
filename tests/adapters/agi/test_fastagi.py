"""The FastAGI server over real TCP, driven by the simulated Asterisk peer."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi import fastagi
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits, reserve_descriptors
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import FixedScript
from simulators.agi_peer import PeerChannel, run_fastagi
from tests.conftest import SMALL_YAML

WINDOW = dt.datetime(2021, 12, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML, encoding="utf-8")
    return path


@pytest.fixture
async def server(config_file: Path) -> AsyncIterator[tuple[FastAgiServer, int]]:
    srv = FastAgiServer(
        ConfigHolder(config_file), limits=Limits(env=1.0, command=0.5, session=3.0), clock=lambda: WINDOW
    )
    port = await srv.start("127.0.0.1", 0)
    yield srv, port
    await srv.close()


async def route(port: int, dialled: str, **kw: object) -> tuple[str, PeerChannel]:
    channel = PeerChannel({"agi_callerid": "13812345678", "agi_uniqueid": "1700000000.1"}, **kw)  # type: ignore[arg-type]
    status = await run_fastagi("127.0.0.1", port, "route", channel, args=[dialled, ""])
    return status, channel


async def sessions_ended(srv: FastAgiServer) -> None:
    """Wait until the server holds no session (30 s bound a hang; the peer may see the close first)."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while srv.active and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert srv.active == 0


@pytest.mark.parametrize(
    ("dialled", "action", "target", "prompts"),
    [
        ("12300", "queue", "gx-general", "hotline/transition-12300"),
        ("077312315", "queue", "guilin-l12315", ""),
        ("12348", "department", "sft", ""),
        ("12366", "subcentre", "tax", ""),
        ("110", "emergency", "110", ""),
        ("12339", "guidance", "", "hotline/guidance-12339"),
        ("12345", "queue", "gx-general", "hotline/welcome"),
    ],
)
async def test_route_sets_the_variables_and_the_sentinel_last(
    server: tuple[FastAgiServer, int], dialled: str, action: str, target: str, prompts: str
) -> None:
    _, port = server
    status, channel = await route(port, dialled)
    assert status == "SUCCESS"
    v = channel.variables
    assert (v[cv.ACTION], v[cv.TARGET], v[cv.PROMPTS]) == (action, target, prompts)
    assert channel.assigned[-1] == (cv.DECIDED, "1") and cv.DECIDED in channel.commands[-1]
    # the controller plays nothing (the dialplan plays HOTLINE_PROMPTS): variables and sentinel in one MSet
    assert len(channel.commands) == 1 and channel.commands[0].startswith('EXEC MSet "HOTLINE_ACTION=')


async def test_a_missing_prompt_cannot_fail_a_session(server: tuple[FastAgiServer, int]) -> None:
    """No sound is needed on the PBX for a decision: the session never asks Asterisk to play one."""
    _, port = server
    status, channel = await route(port, "12300", sounds=set())
    assert status == "SUCCESS" and channel.variables[cv.DECIDED] == "1"
    assert channel.variables[cv.PROMPTS] == "hotline/transition-12300"


async def test_caller_gone_at_the_first_reply_ends_the_session_cleanly(server: tuple[FastAgiServer, int]) -> None:
    srv, port = server
    # res_agi runs the command it was sent, then reports the hang-up: the one MSet is the whole session
    status, channel = await route(port, "12300", hangup_after=0)
    assert status == "HANGUP" and channel.variables[cv.DECIDED] == "1" and len(channel.commands) == 1
    assert srv.active == 0


async def test_ivr_decides_from_the_key_and_topic_the_dialplan_read(server: tuple[FastAgiServer, int]) -> None:
    _, port = server
    channel = PeerChannel({})
    assert await run_fastagi("127.0.0.1", port, "ivr", channel, args=["12345", "", "3", "12315"]) == "SUCCESS"
    assert channel.variables[cv.TARGET] == "gx-expert-e12315" and channel.variables[cv.EXPERT] == "e12315"
    assert channel.variables[cv.IVR_CHOICE] == "3" and channel.variables[cv.DECIDED] == "1"
    assert len(channel.commands) == 1  # one round trip, nothing played or read
    complaint = PeerChannel({})
    assert await run_fastagi("127.0.0.1", port, "ivr", complaint, args=["12345", "", "2", ""]) == "SUCCESS"
    assert complaint.variables[cv.TARGET] == "gx-complaint"
    nokey = PeerChannel({})  # the menu ran out: a human agent, recorded as no choice
    assert await run_fastagi("127.0.0.1", port, "ivr", nokey, args=["12345", "", "", ""]) == "SUCCESS"
    assert (nokey.variables[cv.TARGET], nokey.variables[cv.IVR_CHOICE]) == ("gx-general", "")


async def test_the_survey_is_no_controller_script(server: tuple[FastAgiServer, int]) -> None:
    """The survey runs in the dialplan; an old dialplan asking for it gets no sentinel and hangs up."""
    _, port = server
    channel = PeerChannel({"agi_uniqueid": "1700000000.7"}, dtmf=["2"])
    assert await run_fastagi("127.0.0.1", port, "survey", channel) == "SUCCESS"
    assert channel.variables == {} and channel.commands == []


async def test_early_close_and_garbage_cost_nothing(server: tuple[FastAgiServer, int]) -> None:
    srv, port = server
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert await reader.read() == b""  # dropped
    writer.close()
    status, _ = await route(port, "12315")
    assert status == "SUCCESS"
    await sessions_ended(srv)


async def test_the_last_command_is_written_and_the_session_ends_without_its_reply(config_file: Path) -> None:
    """The route session's one MSet sets the sentinel; res_agi runs it after our close, so we do not wait."""
    srv = FastAgiServer(
        ConfigHolder(config_file), limits=Limits(env=5.0, command=60.0, session=60.0), clock=lambda: WINDOW
    )
    port = await srv.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network_script: route\nagi_arg_1: 12315\n\n")
        await writer.drain()
        first = await reader.readline()
        assert first.startswith(b'EXEC MSet "HOTLINE_ACTION=') and b"HOTLINE_DECIDED=1" in first
        # no reply sent: the close comes anyway, long before the 60 s reply timeout (10 s bound a hang)
        assert await asyncio.wait_for(reader.read(), 10.0) == b""
        assert (srv.active, srv.served, srv.failed) == (0, 1, 0)
        writer.write(b"200 result=0\n")  # the reply Asterisk then sends meets a closed socket: nothing breaks
        writer.close()
        status, channel = await route(port, "12315")  # and the next session is served
        assert status == "SUCCESS" and channel.variables[cv.DECIDED] == "1"
    finally:
        await srv.close()


def two_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every session runs a script of two commands (as a decision whose value MSet cannot carry does):
    the first one's reply is awaited, under the command timeout and the session deadline."""
    script = FixedScript.of(("SET VARIABLE HOTLINE_NOTE a,b", f"SET VARIABLE {cv.DECIDED} {cv.DECIDED_VALUE}"))
    monkeypatch.setattr(fastagi, "select_script", lambda *args: script)


async def test_stalled_peer_is_dropped_by_the_command_timeout(
    server: tuple[FastAgiServer, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_commands(monkeypatch)
    srv, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network_script: route\nagi_arg_1: 12315\n\n")
    await writer.drain()
    first = await reader.readline()
    assert first == b"SET VARIABLE HOTLINE_NOTE a,b\n"
    assert await asyncio.wait_for(reader.read(), 30.0) == b""  # we never answer; the server hangs up (30 s: a hang)
    writer.close()
    assert srv.active == 0 and srv.failed == 1 and srv.served == 0


async def test_deadlines_are_kept_by_one_sweep_that_stops_when_idle(
    server: tuple[FastAgiServer, int],
) -> None:
    srv, port = server
    loop = asyncio.get_running_loop()
    _, silent = await asyncio.open_connection("127.0.0.1", port)  # connects, never sends its environment
    await asyncio.sleep(0.05)
    assert srv.active == 1
    started = loop.time()
    while srv.active and loop.time() - started < 4.0:
        await asyncio.sleep(0.02)
    waited = loop.time() - started
    # the env limit is 1.0 s and the sweep runs every quarter of the shortest limit (0.125 s here);
    # the upper bound leaves a busy CI machine a second of slack
    assert srv.active == 0 and 0.9 <= waited <= 1.0 + 0.125 + 1.0, waited
    silent.close()
    while srv._ticker is not None and loop.time() - started < 6.0:  # the next tick finds nothing: no re-arm
        await asyncio.sleep(0.02)
    assert srv._ticker is None


async def test_a_server_swept_by_its_owner_arms_no_timer_and_expires_on_the_owners_sweep(config_file: Path) -> None:
    # serve's routing service sweeps from its one housekeeping timer (own_sweep=False): the server arms none
    srv = FastAgiServer(ConfigHolder(config_file), limits=Limits(env=0.2, command=0.5, session=3.0), own_sweep=False)
    port = await srv.start("127.0.0.1", 0)
    try:
        reader, silent = await asyncio.open_connection("127.0.0.1", port)  # never sends its environment
        while srv.active == 0:
            await asyncio.sleep(0.01)
        assert srv._ticker is None and srv.tick == 0.05
        srv.sweep()  # before the limit: nothing to end
        assert srv.active == 1
        await asyncio.sleep(0.3)  # past the 0.2 s environment limit, and no timer of its own has ended it
        assert srv.active == 1
        srv.sweep()
        assert srv.active == 0 and srv.failed == 1
        assert await asyncio.wait_for(reader.read(), 5.0) == b""  # the server hung up
        silent.close()
    finally:
        await srv.close()


def test_descriptor_table_is_grown_before_calls_come() -> None:
    def table_size() -> int:
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("FDSize:")))

    open_before = len(os.listdir("/proc/self/fd"))
    assert reserve_descriptors(2048) == 2048
    assert table_size() >= 2048
    assert len(os.listdir("/proc/self/fd")) == open_before  # the probe and its high copy are closed


async def test_thousand_sessions_at_once(server: tuple[FastAgiServer, int]) -> None:
    srv, port = server
    results = await asyncio.gather(*(route(port, "12315") for _ in range(1000)))
    assert [status for status, _ in results].count("SUCCESS") == 1000
    await sessions_ended(srv)


async def test_allow_list_refuses_other_peers(config_file: Path) -> None:
    srv = FastAgiServer(ConfigHolder(config_file), allow=["10.0.0.0/8"])
    port = await srv.start("127.0.0.1", 0)
    try:
        status, channel = await route(port, "12315")
    finally:
        await srv.close()
    assert status == "SUCCESS" and channel.variables == {}  # closed without a word: the dialplan falls back


async def test_hot_reload_swaps_valid_and_keeps_old_on_error(
    server: tuple[FastAgiServer, int], config_file: Path
) -> None:
    srv, port = server
    config_file.write_text(SMALL_YAML.replace("queue: l12315,", "queue: general,"), encoding="utf-8")
    assert await srv.holder.reload_async() is True
    _, channel = await route(port, "12315")
    assert channel.variables[cv.TARGET] == "gx-general"
    config_file.write_text(SMALL_YAML.replace("queue: l12315,", "queue: nosuch,"), encoding="utf-8")
    assert await srv.holder.reload_async() is False
    _, channel = await route(port, "12315")
    assert channel.variables[cv.TARGET] == "gx-general"  # the last good config keeps serving


def test_reload_watches_the_files_a_config_extends(tmp_path: Path) -> None:
    (tmp_path / "province.yaml").write_text(SMALL_YAML, encoding="utf-8")
    city = tmp_path / "city.yaml"
    city.write_text("extends: province.yaml\nhotlines: []\n", encoding="utf-8")
    holder = ConfigHolder(city)
    assert holder.reload_if_changed() is None
    province = tmp_path / "province.yaml"
    province.write_text(SMALL_YAML.replace("queue: l12315,", "queue: general,"), encoding="utf-8")
    stamp = province.stat().st_mtime + 5
    os.utime(province, (stamp, stamp))
    assert holder.reload_if_changed() is True
    assert holder.table.lines["12315"].queue == "general"


async def test_session_deadline_ends_a_peer_that_answers_slowly_but_forever(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every reply comes within the command timeout, but the whole session would outlast its deadline
    two_commands(monkeypatch)
    srv = FastAgiServer(
        ConfigHolder(config_file), limits=Limits(env=1.0, command=0.25, session=0.15), clock=lambda: WINDOW
    )
    port = await srv.start("127.0.0.1", 0)
    try:
        channel = PeerChannel({"agi_callerid": "13812345678"})
        # the first reply comes at 0.2 s: within the command timeout, past the session deadline
        status = await run_fastagi("127.0.0.1", port, "route", channel, args=["12300", ""], reply_delay=0.2)
    finally:
        await srv.close()
    assert len(channel.commands) == 1  # its reply came too late: the server had closed
    assert cv.DECIDED not in channel.variables  # so no sentinel, and the dialplan falls back
    assert status == "SUCCESS"  # Asterisk: the peer closed
    assert srv.active == 0 and srv.failed == 1 and srv.served == 0


def test_sessions_run_on_uvloop_as_serve_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hotline-cti serve`` runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop

    from hotline_cti import event_loop

    monkeypatch.delenv(event_loop.ENV, raising=False)
    assert event_loop.loop_name() == "uvloop"

    async def main() -> tuple[str, dict[str, str], int]:
        server = FastAgiServer(ConfigHolder(Path("merger_config/guangxi.yaml")))
        port = await server.start("127.0.0.1", 0)
        channel = PeerChannel({})
        status = await run_fastagi("127.0.0.1", port, "route", channel, args=["12315", ""])
        await server.close()
        return status, channel.variables, server.failed

    status, variables, failed = uvloop.run(main())
    assert (status, variables.get(cv.DECIDED), failed) == ("SUCCESS", cv.DECIDED_VALUE, 0)
    assert variables[cv.MODE] == "parallel"
