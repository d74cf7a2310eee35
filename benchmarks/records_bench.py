"""AMI events into call records and MQTT, sustained for Guangxi's busy hour, with routing latency measured meanwhile.

``python -m benchmarks.records_bench`` (about a minute). Issue #4 §7.

The controller is ``hotline-cti serve`` itself (FastAGI server, AmiClient, RecordPipeline, BatchWriter on a temp
SQLite, OutboxPublisher to mosquitto), one process pinned to core 0. This process, pinned to core 1, is the load:

1. It runs the simulated PBX in virtual time over Guangxi's busiest hour of the busy-day scenario and keeps every AMI
   event it emits, encoded once as Asterisk writes them.
2. Routing alone: FastAGI sessions at ``--rate``/s (each holding ``--hold`` s on its prompt, as callers do) against the
   idle controller; decision latency = environment sent -> first command back.
3. Under load: the whole hour's events are written to the controller's AMI connection as fast as it reads them, while
   the same FastAGI load runs, until the last record is in SQLite and the last outbox row is acknowledged by the
   broker (a subscriber on ``hotline/#`` counts them).
4. Routing alone again, so the two "alone" runs show the noise.

Checked at the end: call rows in SQLite == calls replayed; messages the subscriber got == outbox rows, all sent.
mosquitto (Debian's package, started on a free port) runs on core 1 with the load; without the binary the MQTT side is
skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from benchmarks.fastagi_bench import CLIENT_CORE, NUMBERS, SERVER_CORE, Tally, one_session
from benchmarks.sim_bench import SCENARIO, stop_serve
from hotline_cti.adapters.ami.client import ENV_SECRET, ENV_USER
from hotline_cti.adapters.ami.protocol import AmiParser, Message
from hotline_cti.config.checked import load_checked
from hotline_cti.events import Event
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.caller import CallerPolicy
from simulators.agi_peer import wait_listening
from simulators.ami_server import AmiServer, _encode
from simulators.host import free_port
from simulators.mosquitto import MOSQUITTO, Broker, running_broker
from simulators.pbx import Pbx
from simulators.pbx.amievents import Fields
from simulators.pbx.routing import CoreRouter
from simulators.scenario import generate, load_scenario, queue_setups

CHUNK = 32 * 1024  # bytes handed to the AMI connection at a time


@dataclass
class Replay:
    """The busy hour's AMI traffic, ready to write."""

    hour: int
    region: str
    calls: int
    events: int
    chunks: list[bytes]


def busy_hour(seed: int = 1) -> Replay:
    """Run the simulated PBX over the scenario's busiest hour; keep its AMI events, encoded and chunked."""
    scenario, config = load_scenario(SCENARIO)
    checked = load_checked(str(config))
    hour = max(range(24), key=lambda h: scenario.hourly_profile[h])
    arrivals = generate(scenario, checked.table.timezone, seed=seed, hours=(hour, hour + 1))
    events: list[Fields] = []
    pbx = Pbx(
        CoreRouter(checked.table),
        queue_setups(scenario, checked.model),
        scenario.settings(),
        tz=checked.table.timezone,
        sink=events.append,
        seed=seed,
    )
    pbx.run(arrivals)  # runs until the hour's last call has ended
    calls = set()
    chunks: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for fields in events:
        d = dict(fields)
        if d.get("Event") == "Newchannel" and d.get("Uniqueid") == d.get("Linkedid"):
            calls.add(d["Uniqueid"])
        data = _encode(fields)
        pending.append(data)
        size += len(data)
        if size >= CHUNK:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        chunks.append(b"".join(pending))
    return Replay(hour, checked.table.region, len(calls), len(events), chunks)


def expected_events(replay: Replay, region: str) -> int:
    """MQTT events the project's RecordBuilder makes from the same bytes in-process (the reference count)."""
    parser = AmiParser(expect_banner=False)
    builder = RecordBuilder(region, CallerPolicy())
    at = dt.datetime.now(dt.UTC)
    count = 0
    for chunk in replay.chunks:
        for item in parser.feed(chunk):
            if isinstance(item, Message):
                count += sum(isinstance(out, Event) for out in builder.feed(item, at))
    return count


@dataclass
class Latency:
    """Decision latencies of one FastAGI run."""

    label: str
    tally: Tally

    @property
    def sorted(self) -> list[float]:
        return sorted(self.tally.latencies) or [float("nan")]

    @property
    def p50(self) -> float:
        return statistics.median(self.sorted)

    @property
    def p99(self) -> float:
        lat = self.sorted
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    def line(self) -> str:
        t = self.tally
        return (
            f"  routing {self.label:<12} {len(t.latencies):>6} sessions  p50 {self.p50 * 1000:6.2f} ms"
            f"  p99 {self.p99 * 1000:6.2f} ms  failed {t.failed}"
        )


async def fastagi_load(port: int, rate: float, hold: float, stop: asyncio.Event, seconds: float | None = None) -> Tally:
    """New FastAGI sessions at ``rate``/s until ``stop`` is set (or ``seconds`` passed); waits for them to end."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []
    i = 0
    while not stop.is_set() and (seconds is None or i < rate * seconds):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_session(port, NUMBERS[i % len(NUMBERS)], hold, tally)))
        i += 1
    await asyncio.gather(*tasks)
    return tally


@dataclass
class Subscriber:
    """Counts every message on ``hotline/#`` (QoS 1) and when the last one came."""

    port: int
    count: int = 0
    last: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier=f"records-bench-{os.getpid()}") as client:
            await client.subscribe("hotline/#", qos=1)
            self.ready.set()
            async for _ in client.messages:
                self.count += 1
                self.last = time.perf_counter()


class Database:
    """Read-only counts from the controller's SQLite file (WAL: reading never blocks its writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def one(self, sql: str) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)) as db:
            return int(db.execute(sql).fetchone()[0])

    def calls(self) -> int:
        return self.one("SELECT count(*) FROM calls")

    def outbox(self) -> tuple[int, int]:
        """(rows, unsent rows)."""
        return self.one("SELECT count(*) FROM outbox"), self.one("SELECT count(*) FROM outbox WHERE sent IS NULL")


@dataclass
class Figures:
    records_at: float = 0.0  # seconds from the first event written to the last record in SQLite
    mqtt_at: float = 0.0  # ... to the last outbox event received by the subscriber
    calls_in_db: int = 0
    outbox_rows: int = 0
    unsent: int = 0
    received: int = 0
    timed_out: bool = False


async def pace(server: AmiServer, replay: Replay, events_per_second: float) -> None:
    """Write the chunks at a steady event rate (0: all at once, as fast as TCP takes them)."""
    if events_per_second <= 0:
        for chunk in replay.chunks:
            server.emit_raw(chunk)
        return
    per_chunk = replay.events / max(1, len(replay.chunks))
    start = time.perf_counter()
    for i, chunk in enumerate(replay.chunks):
        delay = start + i * per_chunk / events_per_second - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        server.emit_raw(chunk)


async def replay_and_wait(
    server: AmiServer,
    replay: Replay,
    db: Database,
    sub: Subscriber | None,
    timeout: float,
    events_per_second: float,
    expected: int,
) -> Figures:
    """Write every event (paced, or as fast as the controller takes it); return when records and MQTT are through:
    every call stored and ``expected`` outbox events (what the builder makes of the replay in-process) received."""
    fig = Figures()
    t0 = time.perf_counter()
    pacing = asyncio.create_task(pace(server, replay, events_per_second))
    while True:
        await asyncio.sleep(0.05)
        now = time.perf_counter()
        if not fig.records_at:
            fig.calls_in_db = db.calls()
            if fig.calls_in_db >= replay.calls:
                fig.records_at = now - t0
        if fig.records_at:
            if sub is None:
                break
            fig.outbox_rows, fig.unsent = db.outbox()
            # The writer stores the calls ahead of the outbox rows, so all rows sent and received is not yet "all":
            # only the expected count is.
            if fig.outbox_rows >= expected and fig.unsent == 0 and sub.count >= fig.outbox_rows:
                fig.mqtt_at = sub.last - t0
                break
            if fig.unsent == 0 and now - max(sub.last, t0) > 10.0:  # nothing more for 10 s: the check tells
                break
        if now - t0 > timeout:
            fig.timed_out = True
            break
    pacing.cancel()
    fig.calls_in_db = db.calls()
    if sub is not None:
        await asyncio.sleep(0.5)  # a duplicate or straggler would show in the count
        fig.outbox_rows, fig.unsent = db.outbox()
        fig.received = sub.count
    return fig


@contextlib.contextmanager
def controller(
    tmp: Path, config: Path, agi_port: int, ami_port: int, secret: str, mqtt_port: int | None
) -> Iterator[subprocess.Popen[bytes]]:
    """``hotline-cti serve`` on core 0, stopped with SIGTERM (as an operator would) afterwards."""
    profile = (
        ["-m", "cProfile", "-o", os.environ["RECORDS_BENCH_PROFILE"]] if "RECORDS_BENCH_PROFILE" in os.environ else []
    )
    cmd = [sys.executable, *profile, "-m", "hotline_cti.cli.main", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{agi_port}", "--database", f"sqlite+aiosqlite:///{tmp / 'records.db'}"]
    cmd += ["--spool-dir", str(tmp / "spool"), "--ami", f"127.0.0.1:{ami_port}"]
    if mqtt_port is not None:
        cmd += ["--mqtt", f"127.0.0.1:{mqtt_port}"]
    env = dict(os.environ, **{ENV_USER: "bench", ENV_SECRET: secret})
    with (tmp / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=log, env=env, preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE})
        )
    try:
        yield proc
    finally:
        stop_serve(proc, 15)


async def wait_logged_in(server: AmiServer, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the controller has logged in and done its first resync (CoreShowChannels)."""
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"hotline-cti serve exited:\n{log.read_text(errors='replace')[-2000:]}")
        if server.actions_named("CoreShowChannels"):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the controller did not log in to AMI:\n{log.read_text(errors='replace')[-2000:]}")


async def run(args: argparse.Namespace, replay: Replay, tmp: Path, broker: Broker | None) -> None:
    """Start the controller, measure routing alone, under the replay, and alone again; print the figures."""
    _, config = load_scenario(SCENARIO)
    secret = secrets.token_hex(8)
    ami = AmiServer(username="bench", secret=secret)
    await ami.start("127.0.0.1", 0)
    sub = Subscriber(broker.port) if broker is not None else None
    sub_task = asyncio.create_task(sub.run()) if sub is not None else None
    agi_port = free_port()
    try:
        if sub is not None:
            await asyncio.wait_for(sub.ready.wait(), 10)
        with controller(tmp, config, agi_port, ami.port, secret, broker.port if broker else None) as proc:
            await wait_listening(agi_port, proc)
            await wait_logged_in(ami, proc, tmp / "serve.log")
            never = asyncio.Event()
            await fastagi_load(agi_port, args.rate, 0.0, never, 1.0)  # warm-up: first sessions fill caches
            before = Latency("alone", await fastagi_load(agi_port, args.rate, args.hold, never, args.alone_seconds))
            print(before.line(), flush=True)
            done = asyncio.Event()
            expected = expected_events(replay, replay.region)
            load = asyncio.create_task(fastagi_load(agi_port, args.rate, args.hold, done))
            fig = await replay_and_wait(
                ami, replay, Database(tmp / "records.db"), sub, args.timeout, args.events_per_second, expected
            )
            done.set()
            under = Latency("under load", await load)
            print(under.line(), flush=True)
            after = Latency(
                "alone again", await fastagi_load(agi_port, args.rate, args.hold, never, args.alone_seconds)
            )
            print(after.line(), flush=True)
    finally:
        if sub_task is not None:
            sub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await sub_task
        await ami.stop()
    if fig.timed_out:
        print("controller log (tail):\n" + (tmp / "serve.log").read_text(errors="replace")[-3000:])
    report(replay, fig, before, under, after, expected)


def report(replay: Replay, fig: Figures, before: Latency, under: Latency, after: Latency, expected: int) -> None:
    """The figures, then the checks."""
    if fig.timed_out:
        print(f"TIMED OUT: {fig.calls_in_db}/{replay.calls} records, {fig.unsent} outbox rows unsent")
    if fig.records_at:
        print(
            f"AMI events -> records in SQLite: {replay.events / fig.records_at:>8,.0f} events/s"
            f"  ({replay.events:,} events in {fig.records_at:.2f} s), {replay.calls / fig.records_at:,.0f} records/s"
        )
    if fig.mqtt_at:
        print(
            f"AMI events -> MQTT acknowledged: {replay.events / fig.mqtt_at:>8,.0f} events/s"
            f"  ({fig.outbox_rows:,} MQTT events in {fig.mqtt_at:.2f} s = {fig.outbox_rows / fig.mqtt_at:,.0f}/s)"
        )
    alone = max(before.p99, after.p99)
    print(
        f"routing p99 under load / alone: {under.p99 / alone:.2f}x (alone runs: {before.p99 * 1000:.2f} and"
        f" {after.p99 * 1000:.2f} ms); p50 {under.p50 / max(before.p50, after.p50):.2f}x"
    )
    ok = fig.calls_in_db == replay.calls
    print(
        f"check: call rows in SQLite {fig.calls_in_db:,} == calls replayed {replay.calls:,}: {'ok' if ok else 'FAIL'}"
    )
    if fig.mqtt_at or fig.outbox_rows:
        same = fig.received == fig.outbox_rows == expected and fig.unsent == 0
        print(
            f"check: MQTT messages received {fig.received:,} == outbox rows {fig.outbox_rows:,} == events the"
            f" builder makes in-process {expected:,} ({fig.unsent} unsent): {'ok' if same else 'FAIL'}"
        )
    failed = before.tally.failed + under.tally.failed + after.tally.failed
    if failed:
        print(f"check: {failed} FastAGI sessions failed: FAIL")


def main(argv: list[str] | None = None) -> int:
    """Build the replay, start mosquitto and the controller, measure, print."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.records_bench", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=200.0, help="FastAGI sessions per second (default 200)")
    p.add_argument("--hold", type=float, default=1.0, help="seconds each session holds on its prompt (default 1)")
    p.add_argument("--alone-seconds", type=float, default=8.0, help="length of each routing-alone run (default 8 s)")
    p.add_argument("--timeout", type=float, default=90.0, help="give up on the replay after this long (default 90 s)")
    p.add_argument(
        "--events-per-second",
        type=float,
        default=0.0,
        help="pace the AMI replay at this rate (default 0: as fast as the controller takes it)",
    )
    p.add_argument("--no-mqtt", action="store_true", help="leave MQTT out (as when mosquitto is missing)")
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CORE})
    started = time.perf_counter()
    replay = busy_hour()
    print(
        f"replay: Guangxi busy day, hour {replay.hour}:00-{replay.hour + 1}:00, {replay.calls:,} calls,"
        f" {replay.events:,} AMI events ({sum(map(len, replay.chunks)) / 1e6:.1f} MB), built in"
        f" {time.perf_counter() - started:.1f} s; controller on core {SERVER_CORE}, load on core {CLIENT_CORE};"
        f" FastAGI {args.rate:g}/s holding {args.hold:g} s",
        flush=True,
    )
    mqtt = not args.no_mqtt and Path(MOSQUITTO).exists()
    if not mqtt:
        print(f"MQTT skipped: {'--no-mqtt' if args.no_mqtt else MOSQUITTO + ' not found (apt-get install mosquitto)'}")
    with tempfile.TemporaryDirectory(prefix="records-bench-") as name, contextlib.ExitStack() as stack:
        # mosquitto drops QoS 1 messages beyond 1,000 queued for a slow subscriber (max_queued_messages): the
        # counting subscriber shares core 1 with the load, so its queue is unbounded here.
        extra = "max_queued_messages 0\n"
        broker = stack.enter_context(running_broker(install=False, extra=extra)) if mqtt else None
        if broker is not None and broker.proc is not None:
            os.sched_setaffinity(broker.proc.pid, {CLIENT_CORE})  # the broker is the load's side, not the controller's
        asyncio.run(run(args, replay, Path(name), broker))
    print(f"whole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
