"""The route script's memos: scripts built once per decision, owned by whoever holds the table (the FastAGI server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import ScriptCache, decision_commands, route_script
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from simulators.agi_peer import PeerChannel, run_fastagi
from tests.conftest import SMALL_YAML

AT = dt.datetime(2021, 12, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.usefixtures("caches_on")
def test_a_decision_gets_its_script_once(small_table: RoutingTable) -> None:
    scripts, cache = ScriptCache(), DecisionCache(small_table)
    decision = decide(Call("12300"), small_table, AT, cache)
    script = scripts.plain(decision)
    assert script.lines == decision_commands(decision)
    assert script.wire == tuple(line.encode() + b"\n" for line in script.lines)
    assert scripts.plain(decision) is script
    other = decide(Call("12315"), small_table, AT, cache)
    assert scripts.plain(other) is not script and scripts.plain(other).lines == decision_commands(other)
    tagged = scripts.tagged(decision, "[12300]")
    assert tagged.lines == decision_commands(decision, ((cv.CALLER_TAG, "[12300]"),))
    assert scripts.tagged(decision, "[12300]") is tagged and scripts.tagged(decision, "") is not tagged


@pytest.mark.usefixtures("caches_on")
def test_an_equal_decision_of_another_object_gets_a_script_of_its_own(small_table: RoutingTable) -> None:
    """Keyed by identity: a decision from another cache (another table) never borrows a kept script."""
    scripts = ScriptCache()
    first = decide(Call("12300"), small_table, AT, DecisionCache(small_table))
    second = decide(Call("12300"), small_table, AT, DecisionCache(small_table))
    assert first == second and first is not second
    assert scripts.plain(first) is not scripts.plain(second)
    assert scripts.plain(second).lines == scripts.plain(first).lines


def test_a_cache_without_room_keeps_nothing(small_table: RoutingTable) -> None:
    decision = decide(Call("12300"), small_table, AT)
    none, one = ScriptCache(0), ScriptCache(1)
    assert none.plain(decision) is not none.plain(decision)
    assert none.plain(decision).lines == decision_commands(decision)
    kept = one.plain(decision)
    assert one.plain(decision) is kept
    other = decide(Call("12315"), small_table, AT)
    one.plain(other)  # full: cleared, then the new one kept
    assert one.plain(decision) is not kept


@pytest.mark.usefixtures("caches_on")
def test_route_script_uses_the_memos_it_is_given(small_table: RoutingTable) -> None:
    env = {"agi_arg_1": "12300", "agi_callerid": "unknown"}
    cache, scripts = DecisionCache(small_table), ScriptCache()
    script = route_script(env, small_table, AT, decide, cache=cache, scripts=scripts)
    assert route_script(env, small_table, AT, decide, cache=cache, scripts=scripts) is script
    assert cache.decisions and cache.parsed
    fresh = route_script(env, small_table, AT, decide)  # no memos: built afresh, the same commands
    assert fresh is not script and fresh.lines == script.lines


@pytest.mark.usefixtures("caches_on")
async def test_the_server_drops_a_swapped_tables_memos(tmp_path: Path) -> None:
    """The server keeps its memos beside the table it serves: a reload's new table is never answered from the
    old one's decisions."""
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    srv = FastAgiServer(ConfigHolder(config), clock=lambda: AT)
    port = await srv.start("127.0.0.1", 0)
    try:
        targets = []
        for _ in range(2):
            channel = PeerChannel({"agi_callerid": "13812345678"})
            assert await run_fastagi("127.0.0.1", port, "route", channel, args=["12315", ""]) == "SUCCESS"
            targets.append(channel.variables[cv.TARGET])
        config.write_text(SMALL_YAML.replace("queue: l12315,", "queue: general,"), encoding="utf-8")
        assert await srv.holder.reload_async() is True
        channel = PeerChannel({"agi_callerid": "13812345678"})
        assert await run_fastagi("127.0.0.1", port, "route", channel, args=["12315", ""]) == "SUCCESS"
        targets.append(channel.variables[cv.TARGET])
    finally:
        await srv.close()
    assert targets == ["gx-l12315", "gx-l12315", "gx-general"]
    assert srv.failed == 0 and srv.served == 3
