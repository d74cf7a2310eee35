"""Routing latency while a 10,000-line merger config reloads every second, against the same load without reloads.

``python -m benchmarks.reload_bench`` (about two minutes). Issue 13 §1: a valid 10,000-line file used to pause routing
for 1.54 s during its reload, because serve loaded and compiled it on the routing event loop.

The controller is ``hotline-cti serve`` itself (FastAGI only, temp SQLite), pinned to core 0, serving a national
config of 175 cities (10,285 lines, benchmarks/national_config.py). This process, pinned to core 1, is the load:
FastAGI sessions at ``--rate``/s holding ``--hold`` s on their prompt (as in records_bench), in ``--rounds``
interleaved rounds (the machine is shared: a burst of other work then hits both kinds alike) of

1. routing alone;
2. routing while the config file is replaced (atomically) every second, so serve's once-a-second watch reloads it
   each time: load and compile in its worker process, then the swap. Each replacement has a new comment line and,
   with ``--change route`` (the default), one line's cut-over date a day later than in any earlier one, so every
   reload swaps in a new table; ``--change comment`` changes only the comment (the table in service is kept).

A warm-up reload first starts serve's reload worker (its start is paid once per serve, not per reload).
Printed: each round's p99, p50/p99 over all sessions of each kind, the reloads serve logged, and the ratios
(median of the rounds' p99, and p99 over all sessions). Then, measured in this process with a config holder as
serve's (``--probe-reloads``), the routing process's own share of each reload: its CPU time and the full garbage
collections (each a pause of the loop) that the reloads brought on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.fastagi_bench import CLIENT_CORE, SERVER_CORE, Tally
from benchmarks.national_config import national_yaml
from benchmarks.records_bench import Latency, fastagi_load
from benchmarks.sim_bench import stop_serve
from hotline_cti.adapters.agi.reload import ConfigHolder
from simulators.agi_peer import wait_listening
from simulators.host import free_port

CITIES = 175  # 10,285 lines


CUTOVER = "cutover: '2021-08-31'"  # the first merge line's: the one line a route change moves


def write_config(path: Path, text: str, generation: int, change: str = "comment") -> None:
    """Replace ``path`` atomically, so serve never reads half a file: a new comment line each time, and with
    ``change="route"`` one line's cut-over date too, a day later each generation, so every table differs from
    every earlier one (not only from the last: serve folds replacements made while a reload runs, and an
    alternating date would then often land back on the table in service)."""
    tmp = path.with_suffix(".tmp")
    if change == "route":
        if CUTOVER not in text:
            raise ValueError(f"the config has no {CUTOVER!r} to change")
        day = dt.date(2021, 8, 31) + dt.timedelta(days=generation)
        text = text.replace(CUTOVER, f"cutover: '{day.isoformat()}'", 1)
    tmp.write_text(f"# generation {generation}\n{text}", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def controller(tmp: Path, config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``hotline-cti serve`` on core 0, stopped with SIGTERM afterwards."""
    cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{port}", "--database", f"sqlite+aiosqlite:///{tmp / 'bench.db'}"]
    with (tmp / "serve.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE}))
    try:
        yield proc
    finally:
        stop_serve(proc, 15)


async def keep_replacing(
    path: Path, text: str, every: float, stop: asyncio.Event, change: str, generations: Iterator[int]
) -> int:
    """Replace the config every ``every`` s until ``stop``, each time the next of ``generations`` (unique over the
    whole run); the number of replacements."""
    n = 0
    while not stop.is_set():
        n += 1
        await asyncio.to_thread(write_config, path, text, next(generations), change)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return n


def logged(log: Path, needle: str) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count(needle)


async def reloading_run(
    port: int, args: argparse.Namespace, config: Path, text: str, log: Path, generations: Iterator[int]
) -> tuple[Latency, int]:
    """One run with the file replaced every ``args.every`` s; its latencies and the reloads serve logged."""
    never, stop = asyncio.Event(), asyncio.Event()
    before = logged(log, "config reloaded from")
    replacing = asyncio.create_task(keep_replacing(config, text, args.every, stop, args.change, generations))
    under = Latency("reloading", await fastagi_load(port, args.rate, args.hold, never, args.seconds))
    stop.set()
    await replacing
    await asyncio.sleep(2.0)  # the last reload lands in the log (and is not counted in the next alone run)
    return under, logged(log, "config reloaded from") - before


async def run(args: argparse.Namespace, tmp: Path) -> None:
    text = national_yaml(CITIES)
    config = tmp / "national.yaml"
    write_config(config, text, 0)
    lines = config.read_text(encoding="utf-8").count("\n")
    port = free_port()
    log = tmp / "serve.log"
    alone: list[Latency] = []
    under: list[Latency] = []
    reloads = 0
    generations = itertools.count(1)
    with controller(tmp, config, port) as proc:
        await wait_listening(port, proc)
        never = asyncio.Event()
        # a short warm-up: first sessions pay for imports and caches; one reload starts serve's reload worker
        write_config(config, text, -1)
        await fastagi_load(port, args.rate, args.hold, never, 3.0)
        for _ in range(600):  # the worker starts at idle priority: on a busy host its first reload takes a while
            if logged(log, "config reloaded from") >= 1:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"serve did not reload in the warm-up:\n{log.read_text(errors='replace')[-2000:]}")
        # Interleaved rounds, so a burst from other work on the machine hits both kinds alike.
        for _ in range(args.rounds):
            alone.append(Latency("alone", await fastagi_load(port, args.rate, args.hold, never, args.seconds)))
            result, n = await reloading_run(port, args, config, text, log, generations)
            under.append(result)
            reloads += n
        refused = logged(log, "config reload refused")
        # serve's supervisor kills a routing process whose loop stops beating for 1 s (a whole-VM pause does it
        # too): a round with one is seconds of failed or late sessions, whatever the reloads did
        logged_lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        stalls = [line for line in logged_lines if "stalled" in line and "restarting in" not in line]  # one a kill

    print(
        f"reload_bench: {lines:,}-line config ({CITIES} cities), FastAGI {args.rate:.0f}/s holding {args.hold:.1f} s;"
        f" each replacement changes {'a cut-over date (a new table)' if args.change == 'route' else 'a comment'}"
    )
    print(
        f"  serve pinned to core {SERVER_CORE}, load to core {CLIENT_CORE}; {args.rounds} interleaved rounds of"
        f" {args.seconds:.0f} s each; load average {os.getloadavg()[0]:.1f}"
    )
    for i, (a, u) in enumerate(zip(alone, under, strict=True), 1):
        print(f"  round {i}: p99 alone {a.p99 * 1000:7.2f} ms, reloading {u.p99 * 1000:7.2f} ms")
    every = [Latency("alone (all)", merged(alone)), Latency("reloading (all)", merged(under))]
    for run_ in every:
        print(run_.line())
    kept = logged(log, "routing unchanged")
    print(f"  config reloads during the reloading runs: {reloads} (refused in all: {refused}; table kept: {kept})")
    print(f"  routing process stalled and restarted by serve: {len(stalls)}")
    for line in stalls:
        print(f"    {line}")
    med_alone = statistics.median(a.p99 for a in alone)
    med_under = statistics.median(u.p99 for u in under)
    print(f"  median p99 of rounds: alone {med_alone * 1000:.2f} ms, reloading {med_under * 1000:.2f} ms")
    print(
        f"  reloading / alone: median p99 {med_under / med_alone:.2f}x, p99 of all {every[1].p99 / every[0].p99:.2f}x"
    )
    if args.probe_reloads:
        await loop_share(text, tmp, args.probe_reloads)


async def loop_share(text: str, tmp: Path, reloads: int) -> None:
    """The routing process's own share of a reload, measured in this process with a holder as serve's: CPU time
    (all threads; the load and compile run in the worker process) and the full garbage collections."""
    config = tmp / "in-process.yaml"
    write_config(config, text, 0)
    collections: list[float] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            collections.append(time.perf_counter() - started[0])

    holder = ConfigHolder(config)
    cpu: list[float] = []
    gc.callbacks.append(timed)
    try:
        for generation in range(1, reloads + 2):
            await asyncio.to_thread(write_config, config, text, generation, "route")
            before = time.process_time()
            if not await holder.reload_async():
                raise RuntimeError("a reload was refused")
            if generation > 1:  # the first starts the worker and sends every plan
                cpu.append(time.process_time() - before)
    finally:
        gc.callbacks.remove(timed)
        holder.close()
    pauses = ", ".join(f"{c * 1000:.0f}" for c in collections) or "none"
    print(
        f"  routing process's share of a reload (in-process, {len(cpu)} reloads, each a new table): CPU median"
        f" {statistics.median(cpu) * 1000:.1f} ms, max {max(cpu) * 1000:.1f} ms; full collections: {len(collections)}"
        f" (pauses, ms: {pauses})"
    )


def merged(runs: list[Latency]) -> Tally:
    out = Tally()
    for r in runs:
        out.latencies += r.tally.latencies
        out.failed += r.tally.failed
        out.done += r.tally.done
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--rate", type=float, default=200.0, help="FastAGI sessions per second (default 200)")
    p.add_argument("--hold", type=float, default=1.0, help="seconds each session holds on its prompt (default 1)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each run (default 8 s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of alone / reloading (default 5)")
    p.add_argument("--every", type=float, default=1.0, help="seconds between config replacements (default 1)")
    p.add_argument(
        "--change",
        choices=("route", "comment"),
        default="route",
        help="what each replacement changes: a line's cut-over date, a day later each time, so each reload swaps a new "
        "table (default); or only a comment (the table is kept: the worker reports it unchanged)",
    )
    p.add_argument(
        "--probe-reloads",
        type=int,
        default=20,
        help="reloads measured in this process afterwards for the routing process's CPU and full collections"
        " per reload (default 20; 0: none)",
    )
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CORE})
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
