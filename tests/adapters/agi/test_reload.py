"""Reloads load and compile off the routing loop: sessions go on while a new file compiles, and a bad
file (a YAML bomb, a reference error) is refused with file:line while the last good one serves."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import IN_THREAD_BYTES, ConfigHolder
from hotline_cti.config.compile import compile_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable
from simulators.agi_peer import PeerChannel, run_fastagi
from tests.config.test_config_limits import BOMB
from tests.conftest import SMALL_YAML

WINDOW = dt.datetime(2021, 12, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
NEW_QUEUE = SMALL_YAML.replace("queue: l12315,", "queue: general,")


def big_config(lines: int = 10_000) -> str:
    """NEW_QUEUE with enough departments to make a file of ``lines`` lines."""
    extra = lines - SMALL_YAML.count("\n")
    rows = "".join(f"  - {{id: d{i}, name: 部门{i}, dial: PJSIP/{i}@d{i}}}\n" for i in range(extra))
    return NEW_QUEUE.replace("departments:\n", "departments:\n" + rows, 1)


def gated_compile(gate: Path, model: MergerConfig) -> RoutingTable:
    """compile_config, held while ``gate/armed`` exists until ``gate/release`` does (runs in the worker process)."""
    if (gate / "armed").exists():
        deadline = time.monotonic() + 60
        while not (gate / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return compile_config(model)


async def route_target(port: int) -> str:
    channel = PeerChannel({"agi_callerid": "13812345678", "agi_uniqueid": "1700000000.1"})
    status = await run_fastagi("127.0.0.1", port, "route", channel, args=["12315", ""])
    assert status == "SUCCESS" and channel.variables[cv.DECIDED] == cv.DECIDED_VALUE
    return channel.variables[cv.TARGET]


async def until(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)
    assert condition(), "timed out"  # type: ignore[operator]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML, encoding="utf-8")
    return path


async def test_sessions_complete_while_a_10000_line_config_compiles(config_file: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    holder = ConfigHolder(config_file, compile_table=functools.partial(gated_compile, gate))
    server = FastAgiServer(holder, limits=Limits(env=1.0, command=2.0, session=5.0), clock=lambda: WINDOW)
    port = await server.start("127.0.0.1", 0)
    try:
        old = await route_target(port)
        config_file.write_text(big_config(), encoding="utf-8")
        assert config_file.read_text(encoding="utf-8").count("\n") >= 10_000
        (gate / "armed").touch()
        assert holder.reload() is None  # on the loop: started in the worker process, not waited for
        assert holder.reloading
        # The worker is held inside compile: every session started now finishes on the old table.
        targets = await asyncio.gather(*(route_target(port) for _ in range(20)))
        assert holder.reloading
        assert set(targets) == {old}
        (gate / "release").touch()
        await until(lambda: not holder.reloading)
        assert await route_target(port) == "gx-general" != old
    finally:
        await server.close()
        holder.close()


async def test_a_bomb_on_reload_is_refused_and_the_old_config_serves(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(config_file)
    server = FastAgiServer(holder, limits=Limits(env=1.0, command=2.0, session=5.0), clock=lambda: WINDOW)
    port = await server.start("127.0.0.1", 0)
    try:
        old = await route_target(port)
        config_file.write_text(BOMB, encoding="utf-8")
        with caplog.at_level(logging.ERROR):
            assert await holder.reload_async() is False
        assert f"config reload refused, still serving the previous one: {config_file}:1:" in caplog.text
        assert "alias bomb" in caplog.text
        assert await route_target(port) == old
        # the good file put back is taken again (the bomb used to leave the controller stuck)
        config_file.write_text(NEW_QUEUE, encoding="utf-8")
        assert await holder.reload_async() is True
        assert await route_target(port) == "gx-general"
    finally:
        await server.close()
        holder.close()


async def test_a_large_bad_file_is_refused_by_the_worker_process_with_its_place(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(config_file)
    table = holder.table
    try:
        text = big_config().replace("queue: general,", "queue: nosuch,", 1)
        config_file.write_text(text, encoding="utf-8")
        assert config_file.stat().st_size >= IN_THREAD_BYTES  # the worker process's path, not a thread
        with caplog.at_level(logging.ERROR):
            assert await holder.reload_async() is False
        line = next(n for n, row in enumerate(text.splitlines(), 1) if "queue: nosuch," in row)
        assert f"{config_file}:{line}:" in caplog.text and "unknown queue 'nosuch'" in caplog.text
        assert holder.table is table
    finally:
        holder.close()


async def test_a_bad_file_seen_by_the_watch_keeps_the_old_table(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(config_file)
    table = holder.table
    try:
        config_file.write_text(SMALL_YAML.replace("queue: l12315,", "queue: nosuch,"), encoding="utf-8")
        with caplog.at_level(logging.ERROR):
            holder.reload_if_changed()  # as serve's once-a-second watch calls it, on the loop
            await until(lambda: not holder.reloading)
        assert holder.table is table
        assert f"{config_file}:" in caplog.text and "unknown queue 'nosuch'" in caplog.text
    finally:
        holder.close()


def test_without_a_loop_reload_blocks_and_answers(config_file: Path) -> None:
    holder = ConfigHolder(config_file)
    config_file.write_text(BOMB, encoding="utf-8")
    assert holder.reload() is False
    config_file.write_text(NEW_QUEUE, encoding="utf-8")
    assert holder.reload() is True
    assert holder.table.lines["12315"].queue == "general"


async def test_a_large_file_whose_table_did_not_change_is_not_swapped(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A config-management run saving the same file again, or a comment edited: the worker loads and compiles it
    and sends back that nothing changed, so the routing loop neither rebuilds nor swaps the table."""
    config_file.write_text(big_config(), encoding="utf-8")
    holder = ConfigHolder(config_file)
    try:
        config_file.write_text("# saved again\n" + big_config(), encoding="utf-8")
        assert await holder.reload_async() is True  # the first table built by the worker: swapped
        table = holder.table
        for comment in ("# a comment edited\n", "# and again\n"):
            config_file.write_text(comment + big_config(), encoding="utf-8")
            with caplog.at_level(logging.INFO):
                assert await holder.reload_async() is True
            assert holder.table is table
        assert caplog.text.count("routing unchanged, the table in service kept") == 2
        config_file.write_text(big_config().replace("queue: general,", "queue: l12315,", 1), encoding="utf-8")
        assert await holder.reload_async() is True
        assert holder.table is not table  # a real change is swapped in
    finally:
        holder.close()
