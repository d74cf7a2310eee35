"""Drive the simulated PBX on an asyncio loop: scaled wall-clock time, AMI over TCP, routing over FastAGI.

``speed=1`` is the wall clock, ``speed=100`` a hundred times faster, ``speed=None``
virtual time (as fast as possible, yielding to the loop now and then so the
AMI server can write). Arrivals are routed either in-process by the model's own
router or through the generated dialplan and a FastAGI controller.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

from simulators.pbx.engine import Pbx
from simulators.pbx.model import Arrival, Summary
from simulators.pbx.routing import AgiRouter, Route

YIELD_EVERY = 256  # events between two loop yields in virtual time

Progress = Callable[[Pbx], None]


async def run_live(
    pbx: Pbx,
    arrivals: Sequence[Arrival],
    *,
    speed: float | None,
    agi: AgiRouter | None = None,
    progress: Progress | None = None,
    progress_every: float = 1.0,
) -> Summary:
    """Run ``arrivals`` through ``pbx``; ``progress(pbx)`` is called about every ``progress_every`` wall seconds."""
    if speed is not None and speed <= 0:
        raise ValueError("speed must be > 0")
    loop = asyncio.get_running_loop()
    if not arrivals:
        pbx.pending_arrivals = False
        return pbx.finish()
    index = 0
    start_virtual = arrivals[0].at
    start_wall = last_report = loop.time()
    handled = 0
    while True:
        t_heap = pbx.next_time()
        t_arr = arrivals[index].at if index < len(arrivals) else math.inf
        t = min(t_heap, t_arr)
        if t == math.inf or (t_arr == math.inf and not pbx.active_calls):  # the rest is staffing changes
            break
        if speed is not None:
            delay = start_wall + (t - start_virtual) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        handled += 1
        if handled % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if t_arr <= t_heap:
            arrival = arrivals[index]
            index += 1
            if index == len(arrivals):
                pbx.pending_arrivals = False
            route = await agi.route(arrival, pbx.next_call_id(arrival.at)) if agi else _route(pbx, arrival)
            pbx.arrive(arrival, route)
        else:
            pbx.step()
        if progress is not None and loop.time() - last_report >= progress_every:
            last_report = loop.time()
            progress(pbx)
    return pbx.finish()


def _route(pbx: Pbx, arrival: Arrival) -> Route:
    assert pbx.router is not None, "no router: pass agi= or give the Pbx a router"
    return pbx.router(arrival)


async def route_all(agi: AgiRouter, arrivals: Sequence[Arrival], first_id: int, concurrency: int = 32) -> list[Route]:
    """Route every arrival through FastAGI, ``concurrency`` calls at a time (ids ``first_id.1``, ``.2``, ...)."""
    routes: list[Route | None] = [None] * len(arrivals)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            routes[i] = await agi.route(arrivals[i], f"{first_id}.{i + 1}")

    async with asyncio.TaskGroup() as group:
        for i in range(len(arrivals)):
            group.create_task(one(i))
    return [r for r in routes if r is not None]
