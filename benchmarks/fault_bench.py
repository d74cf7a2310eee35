"""Routing p99 under each fault of the fault drills, against the same load without faults, in the same run.

``python -m benchmarks.fault_bench`` (about 3 minutes). Issue 13: "routing p99 unchanged" under each fault.

The controller is ``hotline-cti serve`` with both services (routing; events on the simulated PBX's AMI with its
CDR file, a temp SQLite database and a real mosquitto), ``--stall-limit 0.5`` as in tests/serve/test_faults.py, pinned
to core 0. This process, pinned to core 1, is the load and the PBX: ``--rate`` calls a second, each an AMI
channel (Newchannel, Hangup 1 s later, a CDR line) and a FastAGI ``route`` session (the latency measured is
fastagi_bench's: environment sent -> first command). For each fault, two windows of ``--seconds``, one after
the other: the same load alone, then with the fault injected 1 s in (interleaved, so a burst of other work on
the machine hits both kinds alike). Serve is healthy again before each window.

Faults: routing ``kill -9``; routing SIGSTOP (the supervisor kills it after 0.5 s); events ``kill -9``; events
SIGSTOP for 3 s; the database locked for 3 s (``BEGIN EXCLUSIVE``); the broker stopped for 3 s; AMI connections
reset. Sessions that met a dead routing service fail (Asterisk's dialplan then falls back): they are counted,
not timed. Printed: per fault, p99 of the window without and with it and their ratio; then p99 over all
windows of each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks.fastagi_bench import CLIENT_CORE, NUMBERS, SERVER_CORE, Tally, one_session
from benchmarks.records_bench import Latency
from benchmarks.reload_bench import merged
from benchmarks.sim_bench import stop_serve
from simulators.ami_server import AmiServer
from simulators.host import free_port
from simulators.mosquitto import Broker

SECRET = "bench-secret"
CONFIG = Path(__file__).resolve().parent.parent / "merger_config" / "guangxi.yaml"
HOLD = 1.0  # seconds from a channel's Newchannel to its Hangup


class Controller:
    """``hotline-cti serve`` with both services, and its children by name."""

    def __init__(self, tmp: Path, ami: AmiServer, broker: Broker) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.db = tmp / "bench.db"
        self.status = tmp / "status.json"
        self.log = tmp / "serve.log"
        cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(CONFIG)]
        cmd += ["--listen", f"127.0.0.1:{self.port}", "--database", f"sqlite+aiosqlite:///{self.db}"]
        cmd += ["--spool-dir", str(tmp / "spool"), "--status-file", str(self.status), "--stall-limit", "0.5"]
        cmd += ["--ami", f"127.0.0.1:{ami.port}", "--mqtt", f"127.0.0.1:{broker.port}"]
        cmd += ["--cdr-csv", str(ami.cdr_path), "--lease-seconds", "2"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "DATABASE_URL"))}
        env.update(HOTLINE_AMI_USER="hotline", HOTLINE_AMI_SECRET=SECRET)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=out, env=env, preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE})
            )

    def child(self, name: str) -> int:
        for kid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                if f"hotline_cti.serve.{name}".encode() in Path(f"/proc/{kid}/cmdline").read_bytes():
                    return int(kid)
        raise LookupError(f"no {name} service running")

    async def healthy(self, ami: AmiServer, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while True:
            with contextlib.suppress(OSError, ValueError, KeyError):
                on_ami = any(s.authenticated and s.events_on for s in ami._sessions.values())
                if on_ami and json.loads(self.status.read_text())["healthy"]:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"serve not healthy:\n{self.log.read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.1)


Fault = Callable[[Controller, AmiServer, Broker], Awaitable[None]]


def kill(name: str, signum: int, resume_after: float = 0.0) -> Fault:
    async def fault(serve: Controller, ami: AmiServer, broker: Broker) -> None:
        pid = serve.child(name)
        os.kill(pid, signum)
        if resume_after:
            await asyncio.sleep(resume_after)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    return fault


async def database_locked(serve: Controller, ami: AmiServer, broker: Broker) -> None:
    locker = sqlite3.connect(serve.db, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        await asyncio.sleep(3.0)
        locker.execute("COMMIT")
    finally:
        locker.close()


async def broker_down(serve: Controller, ami: AmiServer, broker: Broker) -> None:
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(3.0)
    await asyncio.to_thread(broker.start)


async def ami_reset(serve: Controller, ami: AmiServer, broker: Broker) -> None:
    ami.drop_connections()


FAULTS: list[tuple[str, Fault]] = [
    ("routing kill -9", kill("routing", signal.SIGKILL)),
    ("routing SIGSTOP", kill("routing", signal.SIGSTOP)),
    ("events kill -9", kill("events", signal.SIGKILL)),
    ("events SIGSTOP 3 s", kill("events", signal.SIGSTOP, resume_after=3.0)),
    ("database locked 3 s", database_locked),
    ("broker down 3 s", broker_down),
    ("AMI reset", ami_reset),
]


CALL_IDS = itertools.count()  # channel names stay unique across windows


async def window(
    serve: Controller, ami: AmiServer, broker: Broker, rate: float, seconds: float, fault: Fault | None
) -> Tally:
    """``rate`` calls a second for ``seconds``, ``fault`` injected 1 s in; waits for every call to end."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def call(i: int) -> None:
        ch = ami.add_channel(f"PJSIP/trunk-{i:06d}", caller_num=f"1381234{i % 10000:04d}", exten="12345")
        ami.emit([("Event", "Newchannel"), *ch.snapshot()])
        routed = asyncio.create_task(one_session(serve.port, NUMBERS[i % len(NUMBERS)], 0.0, tally))
        await asyncio.sleep(HOLD)
        ami._hangup(ch)
        await routed

    async def inject() -> None:
        if fault is not None:
            await asyncio.sleep(1.0)
            await fault(serve, ami, broker)

    injecting = asyncio.create_task(inject())
    i = 0
    while i < rate * seconds:
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(call(next(CALL_IDS))))
        i += 1
    await asyncio.gather(*tasks, injecting)
    return tally


async def run(args: argparse.Namespace, tmp: Path) -> None:
    broker_dir = tmp / "broker"
    broker_dir.mkdir()
    broker = Broker(broker_dir)
    broker.start()
    rows: list[tuple[str, Latency, Latency]] = []
    supervisor: list[str] = []
    try:
        async with AmiServer(secret=SECRET) as ami:
            ami.cdr_path = tmp / "Master.csv"
            serve = Controller(tmp, ami, broker)
            try:
                await serve.healthy(ami)
                await window(serve, ami, broker, args.rate, 3.0, None)  # warm-up: imports, caches, first writes
                for _ in range(args.rounds):
                    for name, fault in FAULTS:
                        await serve.healthy(ami)
                        alone = Latency("no fault", await window(serve, ami, broker, args.rate, args.seconds, None))
                        await serve.healthy(ami)
                        under = Latency(name, await window(serve, ami, broker, args.rate, args.seconds, fault))
                        rows.append((name, alone, under))
                        print(
                            f"  {name:<22} p99 no fault {alone.p99 * 1000:7.2f} ms, with it "
                            f"{under.p99 * 1000:7.2f} ms ({under.p99 / alone.p99:.2f}x); sessions failed "
                            f"{alone.tally.failed} / {under.tally.failed}",
                            flush=True,
                        )
            finally:
                stop_serve(serve.proc, 20)
                supervisor = [
                    line
                    for line in serve.log.read_text(encoding="utf-8", errors="replace").splitlines()
                    if "hotline_cti.serve:" in line and ("ERROR" in line or "stalled" in line)
                ]
    finally:
        broker.stop()
    print(
        f"fault_bench: serve (routing + events: simulated AMI and CDR, SQLite, mosquitto) on core {SERVER_CORE}, "
        f"load on core {CLIENT_CORE}; {args.rate:.0f} calls/s, windows of {args.seconds:.0f} s, "
        f"{args.rounds} round(s); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'fault':<22} {'p99 no fault':>13} {'p99 with it':>12} {'ratio':>6}  failed (no fault / with it)")
    for name, alone, under in rows:
        print(
            f"  {name:<22} {alone.p99 * 1000:10.2f} ms {under.p99 * 1000:9.2f} ms {under.p99 / alone.p99:5.2f}x"
            f"  {alone.tally.failed} / {under.tally.failed}"
        )
    every = [
        Latency("no fault (all)", merged([a for _, a, _ in rows])),
        Latency("faults (all)", merged([u for *_, u in rows])),
    ]
    for latency in every:
        print(latency.line())
    print(f"  supervisor: {len(supervisor)} error line(s) (the injected kills, and any stall it found):")
    for line in supervisor:
        print(f"    {line}")
    ratios = [u.p99 / a.p99 for _, a, u in rows]
    print(
        f"  with fault / no fault: median of the p99 ratios {statistics.median(ratios):.2f}x, "
        f"p99 of all {every[1].p99 / every[0].p99:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--rate", type=float, default=50.0, help="calls per second (default 50)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each window (default 8 s)")
    p.add_argument("--rounds", type=int, default=1, help="rounds over every fault (default 1)")
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CORE})
    with tempfile.TemporaryDirectory(prefix="fault-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
