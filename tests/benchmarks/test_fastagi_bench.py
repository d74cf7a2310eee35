"""fastagi_bench's floor server and its report: the floor answers with the bytes ours writes and is never taken for
a baseline."""

from __future__ import annotations

import asyncio

from benchmarks.fastagi_bench import (
    CONFIG,
    FloorSession,
    Result,
    asterisk_environment,
    floor_line,
    report,
)
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.channel_vars import DECIDED


def test_the_floor_line_is_the_route_scripts_last_with_the_sentinel() -> None:
    line = floor_line(ConfigHolder(CONFIG))
    assert line.startswith(b"EXEC MSet ") and line.endswith(b"\n") and line.count(b"\n") == 1
    assert DECIDED.encode() in line


async def test_the_floor_answers_once_the_environment_is_whole_and_closes() -> None:
    line = b'EXEC MSet "X=1"\n'
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorSession(line), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        env = asterisk_environment("12345")
        writer.write(b"".join(env[:-1]))  # all but the blank line: nothing yet
        await writer.drain()
        early = asyncio.ensure_future(reader.read(100))
        await asyncio.sleep(0.05)
        assert not early.done()
        writer.write(env[-1])
        assert await asyncio.wait_for(early, 5) == line
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed after its one line
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def result(kind: str, cpu_ms: float) -> Result:
    return Result(kind, 1000.0, cpu_ms / 1000, 0.0001, 0.0005, 0, True)


def test_the_report_sets_ours_and_the_floor_against_the_best_baseline_not_the_floor() -> None:
    lines: list[str] = []
    rows = [result("ours", 0.08), result("floor", 0.05), result("pyst2", 0.4), result("panoramisk", 0.2)]
    report(rows, lines.append)
    text = "\n".join(lines)
    assert "ours / panoramisk = 0.40x" in text
    assert "floor / panoramisk = 0.25x" in text
    assert "ours above the floor: 0.030 ms" in text


def test_the_report_without_a_floor_says_nothing_of_it() -> None:
    lines: list[str] = []
    report([result("ours", 0.08), result("panoramisk", 0.2)], lines.append)
    assert "ours / panoramisk = 0.40x" in "\n".join(lines)
    assert not any("floor" in line for line in lines)
