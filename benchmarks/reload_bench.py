"""Routing latency while a 10,000-line merger config reloads every second, against the same load without reloads.

``python -m benchmarks.reload_bench`` (about a minute). Issue 13 §1: a valid 10,000-line file used to pause routing
for 1.54 s during its reload, because serve loaded and compiled it on the routing event loop.

The controller is ``hotline-cti serve`` itself (FastAGI only, temp SQLite), pinned to core 0, serving a national
config of 175 cities (10,285 lines, benchmarks/national_config.py). This process, pinned to core 1, is the load:
FastAGI sessions at ``--rate``/s holding ``--hold`` s on their prompt (as in records_bench), in three runs:

1. routing alone;
2. routing while the config file is replaced (atomically, a new comment line each time) every second, so serve's
   once-a-second watch reloads it each time: load and compile in its worker process, then the swap;
3. routing alone again, so the two "alone" runs show the noise.

Printed: p50/p99 of each run, the reloads serve logged during run 2, and p99 under reloads / p99 alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.fastagi_bench import CLIENT_CORE, SERVER_CORE, free_port
from benchmarks.national_config import national_yaml
from benchmarks.records_bench import Latency, fastagi_load
from benchmarks.sim_bench import stop_serve
from simulators.agi_peer import wait_listening

CITIES = 175  # 10,285 lines


def write_config(path: Path, text: str, generation: int) -> None:
    """Replace ``path`` atomically, so serve never reads half a file."""
    tmp = path.with_suffix(".tmp")
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


async def keep_replacing(path: Path, text: str, every: float, stop: asyncio.Event) -> int:
    """Replace the config every ``every`` s until ``stop``; the number of replacements."""
    n = 0
    while not stop.is_set():
        n += 1
        await asyncio.to_thread(write_config, path, text, n)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return n


def logged(log: Path, needle: str) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count(needle)


async def run(args: argparse.Namespace, tmp: Path) -> None:
    text = national_yaml(CITIES)
    config = tmp / "national.yaml"
    write_config(config, text, 0)
    lines = config.read_text(encoding="utf-8").count("\n")
    port = free_port()
    log = tmp / "serve.log"
    with controller(tmp, config, port) as proc:
        await wait_listening(port, proc)
        never = asyncio.Event()
        # a short warm-up: first sessions pay for imports and caches
        await fastagi_load(port, args.rate, args.hold, never, 1.0)
        alone = Latency("alone", await fastagi_load(port, args.rate, args.hold, never, args.seconds))

        stop = asyncio.Event()
        before = (logged(log, "config reloaded from"), logged(log, "config reload refused"))
        replacing = asyncio.create_task(keep_replacing(config, text, args.every, stop))
        started = time.perf_counter()
        under = Latency("reloading", await fastagi_load(port, args.rate, args.hold, never, args.seconds))
        stop.set()
        replaced = await replacing
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2.5)  # the last reload lands in the log
        reloads = logged(log, "config reloaded from") - before[0]
        refused = logged(log, "config reload refused") - before[1]

        again = Latency("alone again", await fastagi_load(port, args.rate, args.hold, never, args.seconds))

    print(f"reload_bench: {lines:,}-line config ({CITIES} cities), FastAGI {args.rate:.0f}/s holding {args.hold:.1f} s")
    print(f"  serve pinned to core {SERVER_CORE}, load to core {CLIENT_CORE}; {os.cpu_count()} cores")
    for run_ in (alone, under, again):
        print(run_.line())
    print(
        f"  during 'reloading': file replaced {replaced} times in {elapsed:.1f} s; serve reloaded {reloads} times,"
        f" refused {refused}"
    )
    base = max(alone.p99, again.p99)
    print(f"  p99 reloading / p99 alone (the worse alone run): {under.p99 / base:.2f}x")
    print(f"  p99 alone again / p99 alone (noise): {again.p99 / alone.p99:.2f}x")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--rate", type=float, default=200.0, help="FastAGI sessions per second (default 200)")
    p.add_argument("--hold", type=float, default=1.0, help="seconds each session holds on its prompt (default 1)")
    p.add_argument("--seconds", type=float, default=15.0, help="length of each run (default 15 s)")
    p.add_argument("--every", type=float, default=1.0, help="seconds between config replacements (default 1)")
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CORE})
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
