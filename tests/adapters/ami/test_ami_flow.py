"""AmiClient under a burst of events: all delivered in order, the loop stays free, the backlog stays bounded.

Found with benchmarks/records_bench.py: a burst parsed and dispatched in one loop step held up FastAGI decisions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hotline_cti.adapters.ami import AmiClient, Message
from hotline_cti.adapters.ami.client import DISPATCH_BACKLOG, READ_SIZE
from simulators.ami_server import AmiServer, _encode
from tests.adapters.ami.test_ami import SECRET, client_settings, eventually

BURST = 6000


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    srv = AmiServer(username="hotline", secret=SECRET)
    await srv.start()
    yield srv
    await srv.stop()


def burst(count: int) -> bytes:
    return b"".join(
        _encode([("Event", "UserEvent"), ("UserEvent", "Burst"), ("Seq", str(i)), ("Pad", "x" * 40)])
        for i in range(count)
    )


async def test_a_burst_is_delivered_in_order_while_other_tasks_keep_running(server: AmiServer) -> None:
    client = AmiClient(client_settings(server))
    ticks = 0
    seen: list[tuple[int, int]] = []  # (Seq, ticker value when delivered)
    backlog: list[int] = []

    def on_burst(message: Message) -> None:
        seen.append((int(message["Seq"]), ticks))
        backlog.append(client._dispatch_queue.qsize())  # what the reader has parsed ahead of the subscribers

    async def ticker() -> None:  # stands for a FastAGI session waiting for its turn
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    client.on("UserEvent", on_burst)
    await client.connect()
    task = asyncio.create_task(ticker())
    try:
        server.emit_raw(burst(BURST))
        await eventually(lambda: len(seen) == BURST, limit=30)
    finally:
        task.cancel()
        await client.close()
    assert [seq for seq, _ in seen] == list(range(BURST))
    # Other tasks ran between the events: the burst was not handed over in one loop step.
    assert len({tick for _, tick in seen}) > BURST // 100
    # The reader stops at the bound (plus at most one read's worth of events).
    assert max(backlog) <= DISPATCH_BACKLOG + READ_SIZE // 60
