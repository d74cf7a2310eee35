"""Simulated PBX throughput: virtual-time calls per second, and calls per second over real FastAGI.

``python -m benchmarks.sim_bench`` (about 20 s). Three figures:

1. The model in virtual time on Guangxi's busy day (routing core included, no AMI events): calls/s and
   timed events/s, best of ``--repeat``; the baseline is a bare ``heapq`` push/pop loop of the same
   number of timed events, measured in the same run.
2. The same day with every AMI event built and handed to an in-process sink (a list's append).
3. The real path: ``hotline-cti serve`` in another process, the generated extensions.conf run by the
   dialplan runner with a FastAGI session per call (``--concurrency`` calls at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hotline_cti.config.checked import Checked, load_checked
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from simulators.agi_peer import wait_listening
from simulators.host import free_port
from simulators.pbx import Arrival, Pbx
from simulators.pbx.amievents import Fields
from simulators.pbx.realtime import route_all
from simulators.pbx.routing import AgiRouter, CoreRouter, agi_runner
from simulators.scenario import Scenario, generate, load_scenario, queue_setups

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml"


def model_run(scenario: Scenario, checked: Checked, arrivals: list[Arrival], sink: bool) -> tuple[float, int, int]:
    """Seconds for one run, calls, and timed events (heap pushes)."""
    events: list[Fields] = []
    pbx = Pbx(
        CoreRouter(checked.table),
        queue_setups(scenario, checked.model),
        scenario.settings(),
        tz=checked.table.timezone,
        sink=events.append if sink else None,
        seed=1,
    )
    gc.disable()
    try:
        start = time.perf_counter()
        summary = pbx.run(arrivals)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, summary.arrivals, pbx.timed_events


def heap_baseline(count: int) -> float:
    """Seconds for ``count`` pushes and pops of (time, seq, kind, obj) tuples, interleaved like the model's."""
    heap: list[tuple[float, int, int, object]] = []
    push, pop = heapq.heappush, heapq.heappop
    t = 0.0
    start = time.perf_counter()
    for i in range(count):
        push(heap, (t + (i * 7919 % 1000), i, 1, None))
        if len(heap) > 500:
            t = pop(heap)[0]
    while heap:
        pop(heap)
    return time.perf_counter() - start


async def fastagi_run(checked: Checked, arrivals: list[Arrival], concurrency: int, tmp: Path) -> float:
    """Calls/s routed through the generated dialplan and a ``hotline-cti serve`` process."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "hotline_cti.cli.main",
        "serve",
        "--config",
        str(checked.path),
        "--listen",
        f"127.0.0.1:{port}",
        "--database",
        f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_listening(port, proc)
        conf = render_all(checked.model, RenderOptions(controllers=(f"127.0.0.1:{port}",)))["extensions.conf"]
        agi = AgiRouter(agi_runner(conf), fallback_queue=f"{checked.table.default_centre}-general")
        start = time.perf_counter()
        routes = await route_all(agi, arrivals, first_id=int(arrivals[0].at), concurrency=concurrency)
        elapsed = time.perf_counter() - start
        fallback = sum(r.action == "fallback" for r in routes)
        if fallback:
            print(f"warning: {fallback} calls fell back (controller gave no decision)")
        return len(routes) / elapsed
    finally:
        stop_serve(proc, 10)


def stop_serve(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM as an operator would (serve flushes and exits), SIGKILL after ``timeout`` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--agi-calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    scenario, config = load_scenario(SCENARIO)
    checked = load_checked(str(config))
    arrivals = generate(scenario, checked.table.timezone, seed=1)
    print(f"scenario {scenario.name}: {len(arrivals)} calls, cpu count {os.cpu_count()}")
    best, calls, events = min(model_run(scenario, checked, arrivals, sink=False) for _ in range(args.repeat))
    base = min(heap_baseline(events) for _ in range(args.repeat))
    print(f"model, virtual time, core routing:  {calls / best:>10,.0f} calls/s  {events / best:>12,.0f} timed events/s")
    print(f"baseline heapq push+pop, same count:                    {events / base:>12,.0f} events/s")
    sink_best, _, _ = min(model_run(scenario, checked, arrivals, sink=True) for _ in range(args.repeat))
    print(f"model with AMI events built (sink):  {calls / sink_best:>10,.0f} calls/s")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"sim-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        rate = asyncio.run(fastagi_run(checked, arrivals[: args.agi_calls], args.concurrency, tmp))
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    print(f"real FastAGI path (serve process, {args.concurrency} at a time): {rate:>8,.0f} calls/s")


if __name__ == "__main__":
    main()
