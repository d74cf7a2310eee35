"""Live queue state under a busy hour of the simulated PBX: AMI over TCP, the events side's QueueFeed, the
routing side's QueueBoard, and the FastAGI controller diverting from it while hundreds of calls are routed."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.client import AmiClient
from hotline_cti.config.checked import Checked, load_checked
from hotline_cti.core.diversion import QueueState
from hotline_cti.records.queue_live import QueueBoard, QueueTracker
from hotline_cti.serve.queue_feed import QueueFeed
from simulators.agi_peer import SUCCESS, PeerChannel, run_fastagi
from simulators.ami_server import AmiServer
from simulators.pbx.mirror import AmiMirror
from simulators.scenario import Scenario, load_scenario, queue_setups
from tests.paths import REPO
from tests.simulators.test_pbx import busy_hour, client_settings

ROOT = REPO
GUANGXI = ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml"


@pytest.fixture(scope="module")
def guangxi() -> tuple[Scenario, Checked]:
    scenario, config = load_scenario(GUANGXI)
    return scenario, load_checked(str(config))


@pytest.fixture
async def ami() -> AsyncIterator[tuple[AmiServer, AmiClient]]:
    server = AmiServer(username="sim", secret="sim-secret")
    await server.start()
    client = AmiClient(client_settings(server))
    yield server, client
    await client.close()
    await server.stop()


def _counts(states: dict[str, QueueState]) -> dict[str, tuple[int, int, int, int]]:
    return {q: (s.members, s.available, s.free, s.waiting) for q, s in states.items()}


async def test_the_feed_follows_twenty_minutes_of_a_busy_hour(
    guangxi: tuple[Scenario, Checked], ami: tuple[AmiServer, AmiClient], tmp_path: Path
) -> None:
    """Thousands of app_queue events over TCP: the state folded from them equals a fresh QueueStatus re-read,
    queue by queue, and the snapshot the routing side reads says the same."""
    server, client = ami
    scenario, checked = guangxi
    feed = QueueFeed(client, tmp_path / "queue-state.json")
    received = collections.Counter[str]()
    client.on("*", lambda m: received.update([m.get("Event", "")]))
    await client.connect()  # the resync hook: an empty PBX re-read
    pbx, arrivals = busy_hour(guangxi)
    sent = collections.Counter[str]()
    mirror = AmiMirror(server, queue_setups(scenario, checked.model))

    def sink(fields: Any) -> None:
        sent.update([dict(fields)["Event"]])
        mirror(fields)

    pbx.sink = sink
    pbx.run(arrivals, until=arrivals[0].at + 1200)  # calls waiting, agents busy, at 20 minutes into the peak
    for _ in range(500):
        if all(received[name] >= count for name, count in sent.items()):
            break
        await asyncio.sleep(0.02)
    assert sum(sent.values()) > 5000 and all(received[n] >= c for n, c in sent.items())
    live = _counts(feed.tracker.states())
    assert sum(w for _, _, _, w in live.values()) > 0 and sum(m - f for m, _, f, _ in live.values()) > 0

    fresh = QueueTracker()
    status = await client.action("QueueStatus")
    for event in status.events:
        fresh.apply(event)
    truth = _counts(fresh.states())
    assert {q: c for q, c in live.items() if q in truth} == truth
    assert feed.write_if_due(force=True)
    board = QueueBoard(feed.path)
    board.refresh(time.time())
    assert {q: c for q, c in _counts(dict(board.states)).items() if q in truth} == truth
    feed.wanted = lambda: {"nanning-general", "guilin-general"}  # serve: the queues with diversion rules
    assert feed.write_if_due(force=True)
    board.refresh(time.time())
    assert _counts(dict(board.states)) == {q: truth[q] for q in ("nanning-general", "guilin-general")}


async def test_the_controller_diverts_hundreds_of_concurrent_calls_from_the_board(tmp_path: Path) -> None:
    """FastAGI under load with a board that says 'no agent': every 12300 call is released with the prompt,
    and the moment the board says an agent is back, every call joins the queue again."""
    config = tmp_path / "gx.yaml"
    text = (ROOT / "merger_config" / "guangxi.yaml").read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "  - {id: general, name: 综合咨询}\n",
            "  - id: general\n    name: 综合咨询\n    diversion:\n"
            "      - {when: no_agents, to: release, prompt: divert-no-agents}\n",
        ),
        encoding="utf-8",
    )
    board = QueueBoard(tmp_path / "queue-state.json")
    at = dt.datetime(2021, 9, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))  # 12300 in its transition window
    server = FastAgiServer(ConfigHolder(config), queues=board, clock=lambda: at)
    port = await server.start("127.0.0.1", 0)
    try:

        async def burst(n: int) -> collections.Counter[str]:
            channels = [PeerChannel(env={"agi_callerid": "unknown"}) for _ in range(n)]
            results = await asyncio.gather(
                *(run_fastagi("127.0.0.1", port, "route", c, args=("12300", "")) for c in channels)
            )
            assert set(results) == {SUCCESS}
            actions = collections.Counter[str]()
            for c in channels:
                assert c.variables["HOTLINE_DECIDED"] == "1"
                actions[c.variables["HOTLINE_ACTION"]] += 1
            return actions

        board.states = {"gx-general": QueueState(0, 0, 0, 5, 40)}
        assert await burst(300) == {"release": 300}
        board.states = {"gx-general": QueueState(1, 1, 0, 5, 40)}
        assert await burst(300) == {"queue": 300}
        assert server.failed == 0
    finally:
        await server.close()
