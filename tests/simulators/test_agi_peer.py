"""The simulated Asterisk AGI peer against scripted controllers over real TCP, parsed with our AGI parsers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from hotline_cti.adapters.agi.protocol import AgiReply, EnvironmentParser, Hangup, ReplyParser
from simulators.agi_peer import PeerChannel, run_fastagi

Script = Callable[[dict[str, str], Callable[[str], Awaitable[list[AgiReply | Hangup]]]], Awaitable[None]]


async def serve(script: Script) -> tuple[asyncio.Server, int]:
    """A one-script FastAGI controller built on the sans-IO parsers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env_parser, replies = EnvironmentParser(), ReplyParser()
        env = None
        while env is None:
            env = env_parser.feed(await reader.read(7))  # small reads: chunked parsing on our side too

        async def command(line: str) -> list[AgiReply | Hangup]:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            events: list[AgiReply | Hangup] = []
            while not events or not isinstance(events[-1], AgiReply):
                data = await reader.read(5)
                if not data:
                    break
                events += replies.feed(data)
            return events

        await script(env, command)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_session_sets_variables_and_reports_success() -> None:
    async def script(env: dict[str, str], command: Callable[[str], Awaitable[list[AgiReply | Hangup]]]) -> None:
        assert env["agi_arg_1"] == "12315" and env["agi_calleridname"] == "张三丰"
        (reply,) = await command('SET VARIABLE HOTLINE_TARGET "gx-l12315"')
        assert isinstance(reply, AgiReply) and reply.ok
        (got,) = await command("GET VARIABLE CALLERID_NAME")
        assert isinstance(got, AgiReply) and got.data == "桂林用户"
        await command('STREAM FILE hotline/welcome ""')
        await command("SET VARIABLE HOTLINE_DECIDED 1")

    server, port = await serve(script)
    channel = PeerChannel({"agi_calleridname": "张三丰"}, variables={"CALLERID_NAME": "桂林用户"})
    async with server:
        status = await run_fastagi("127.0.0.1", port, "route", channel, args=["12315"], chunk_size=1, send_trying=True)
    assert status == "SUCCESS"
    assert channel.variables["HOTLINE_TARGET"] == "gx-l12315" and channel.variables["HOTLINE_DECIDED"] == "1"


async def test_missing_prompt_fails_the_finished_session_but_keeps_variables() -> None:
    async def script(env: dict[str, str], command: Callable[[str], Awaitable[list[AgiReply | Hangup]]]) -> None:
        (reply,) = await command('STREAM FILE hotline/no-such-prompt ""')
        assert isinstance(reply, AgiReply) and reply.result == "-1" and not reply.ok
        await command("SET VARIABLE HOTLINE_DECIDED 1")

    server, port = await serve(script)
    channel = PeerChannel({}, sounds={"hotline/welcome"})
    async with server:
        assert await run_fastagi("127.0.0.1", port, "route", channel) == "FAILURE"
    assert channel.variables["HOTLINE_DECIDED"] == "1"  # why the dialplan branches on the sentinel


async def test_silent_close_is_success_with_nothing_set() -> None:
    async def script(env: dict[str, str], command: Callable[[str], Awaitable[list[AgiReply | Hangup]]]) -> None:
        return None

    server, port = await serve(script)
    channel = PeerChannel({})
    async with server:
        assert await run_fastagi("127.0.0.1", port, "route", channel) == "SUCCESS"
    assert channel.variables == {}


async def test_refused_connection_is_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await run_fastagi("127.0.0.1", port, "route", PeerChannel({})) == "FAILURE"


async def test_caller_hangup_sends_inline_hangup_then_511() -> None:
    seen: list[list[AgiReply | Hangup]] = []

    async def script(env: dict[str, str], command: Callable[[str], Awaitable[list[AgiReply | Hangup]]]) -> None:
        seen.append(await command('STREAM FILE hotline/welcome ""'))
        seen.append(await command('STREAM FILE hotline/menu-main ""'))
        seen.append(await command("SET VARIABLE HOTLINE_DECIDED 1"))

    server, port = await serve(script)
    channel = PeerChannel({}, hangup_after=1)
    async with server:
        assert await run_fastagi("127.0.0.1", port, "route", channel) == "HANGUP"
    assert isinstance(seen[1][0], Hangup) and isinstance(seen[1][1], AgiReply) and seen[1][1].dead_channel
    last = seen[2][-1]
    assert isinstance(last, AgiReply) and last.ok  # SET VARIABLE still works on a dead channel


async def test_get_data_timeout_and_unknown_application() -> None:
    replies: list[AgiReply | Hangup] = []

    async def script(env: dict[str, str], command: Callable[[str], Awaitable[list[AgiReply | Hangup]]]) -> None:
        replies.extend(await command("GET DATA hotline/menu-main 5000 1"))
        replies.extend(await command("GET DATA hotline/menu-main 5000 1"))
        replies.extend(await command("EXEC NoSuchApp x"))
        replies.extend(await command("FROBNICATE"))

    server, port = await serve(script)
    async with server:
        await run_fastagi("127.0.0.1", port, "ivr", PeerChannel({}, dtmf=["3"]))
    results = [(r.code, r.result, r.data) for r in replies if isinstance(r, AgiReply)]
    assert results == [
        (200, "3", None),
        (200, "", "timeout"),
        (200, "-2", None),
        (510, "Invalid or unknown command", None),
    ]
