"""FastAGI servers compared on the same routing session: ours, pyst2's AGI class, panoramisk, and a floor.

``python -m benchmarks.fastagi_bench`` (about 3.5 minutes: five interleaved rounds, medians reported). Each server runs in its own process pinned
to core 0; this process, the load generator (Asterisk's side, on uvloop, its collector off), is pinned
to core 1. Every server runs the same handler (ours on the loop ``hotline-cti serve`` uses, uvloop,
and again on asyncio's stock loop as ``ours-asyncio``): the project's ``route`` script (``decide()``
on guangxi.yaml; every HOTLINE_* variable and HOTLINE_DECIDED last in one EXEC MSet): one command.
Ours writes it and closes without waiting for its reply (docs/fastagi.md); the baselines wait for it,
as their APIs do. The environment is the 24 lines Asterisk 20 sends, in one write by default;
``--env-writes line`` writes it a line at a time as res_agi does, which on loopback (a controller
beside its Asterisk) reaches the server as up to one read per line.

1. Closed loop, 50 sessions at a time: throughput, and the server's own CPU time per session
   (utime + stime of the server process from /proc, all threads).
2. Open loop, 1,000 new sessions/s for a few seconds: the decision latency, environment block sent ->
   first command back. (``--hold`` holds a session on a STREAM FILE, which the route script no longer
   sends: the dialplan plays the prompts.)
3. A peer that connects and closes before its environment (a health check), then a normal session:
   does the server still serve?

The ``floor`` server answers every session with the same bytes ours writes and does nothing else
(:class:`FloorSession`): the least any Python server on uvloop pays on this host, so the figures say how much
of ours is its own work and how low a ratio to the baselines can go here.

pyst2 0.5.1's own ``fastagi`` module is Python 2 only, so its ``AGI`` class runs under a threaded
``socketserver`` handler with the socket's file objects; its constructor's SIGHUP handler cannot be
installed outside the main thread, so the handler builds it without that call.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import socketserver
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from hotline_cti import event_loop
from hotline_cti.adapters.agi.fastagi import RESERVED_DESCRIPTORS, reserve_descriptors
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import FixedScript, ScriptCache, route_script
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.routing import decide
from simulators.host import free_port

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "merger_config" / "guangxi.yaml"
# ours-asyncio: our server on the stock loop; floor: the least a Python server on uvloop pays for the same bytes
SERVERS = ("ours", "ours-asyncio", "floor", "pyst2", "panoramisk")
BASELINES = ("pyst2", "panoramisk")
NUMBERS = ("12345", "12300")  # both play a prompt (welcome / retired): the session holds on it
SERVER_CORE, CLIENT_CORE = 0, 1
T = TypeVar("T")


# --- the servers (run in the child process) -----------------------------------------------------------------


def _route(holder: ConfigHolder) -> Callable[[dict[str, str]], tuple[str, ...]]:
    """The route script's command lines for an environment, sent in order whatever the replies (as ours
    sends them), with the table's memos kept as our server keeps them."""
    table = holder.table
    cache, scripts = DecisionCache(table), ScriptCache()

    def commands(env: dict[str, str]) -> tuple[str, ...]:
        script: FixedScript = route_script(env, table, dt.datetime.now(dt.UTC), decide, cache=cache, scripts=scripts)
        return script.lines

    return commands


def _serve_ours(port: int, holder: ConfigHolder) -> None:
    from hotline_cti.adapters.agi.fastagi import FastAgiServer

    async def main() -> None:
        server = FastAgiServer(holder)
        await server.start("127.0.0.1", port)
        print("ready", flush=True)
        await asyncio.Event().wait()

    event_loop.run(main())  # the loop `hotline-cti serve` runs on


class FloorSession(asyncio.Protocol):
    """The floor: every session answered with one fixed line, then closed; no parsing beyond the blank line
    that ends the environment, no allow-list, no deadlines, no decision. What ours costs above it is the
    routing and the protocol; what it costs itself is uvloop's, the interpreter's and the kernel's."""

    __slots__ = ("buf", "line", "transport")

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\n\n" in self.buf and self.transport is not None:
            self.transport.write(self.line)
            self.transport.close()
            self.transport = None


def floor_line(holder: ConfigHolder) -> bytes:
    """The route script's one line for 12345, as ours writes it (the floor sends the same bytes)."""
    env = {"agi_network_script": "route", "agi_extension": "12345", "agi_callerid": "13800000000"}
    return (_route(holder)(env)[-1] + "\n").encode()


def _serve_floor(port: int, holder: ConfigHolder) -> None:
    line = floor_line(holder)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: FloorSession(line), "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        await asyncio.Event().wait()

    event_loop.run(main())


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _serve_pyst2(port: int, holder: ConfigHolder) -> None:
    from asterisk.agi import AGI

    commands = _route(holder)

    class ThreadAGI(AGI):  # type: ignore[misc]  # pyst2 is untyped
        """AGI without its constructor's signal.signal(), which only the main thread may call."""

        def __init__(self, stdin: Any, stdout: Any) -> None:
            self.stdin, self.stdout, self.stderr = stdin, stdout, _Null()
            self._got_sighup = False
            self.env: dict[str, str] = {}
            self._get_agi_env()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            out = self.connection.makefile("w", encoding="utf-8", newline="\n")
            agi = ThreadAGI(self.rfile, out)
            if agi.env.get("agi_network_script") != "route":
                return
            for command in commands(agi.env):
                agi.execute(command)
            out.close()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 2048

    with Server(("127.0.0.1", port), Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


def _serve_panoramisk(port: int, holder: ConfigHolder) -> None:
    from panoramisk.fast_agi import Application

    commands = _route(holder)

    async def route(request: Any) -> None:
        for command in commands(dict(request.headers)):
            await request.send_command(command)

    async def main() -> None:
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("route", route)
        await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=2048)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve(kind: str, port: int) -> None:
    """Child process: pin to the server core and serve until killed."""
    os.sched_setaffinity(0, {SERVER_CORE})
    holder = ConfigHolder(CONFIG)
    if kind == "ours-asyncio":
        os.environ[event_loop.ENV] = "asyncio"
    serving = {
        "ours": _serve_ours,
        "ours-asyncio": _serve_ours,
        "floor": _serve_floor,
        "pyst2": _serve_pyst2,
        "panoramisk": _serve_panoramisk,
    }
    serving[kind](port, holder)


# --- Asterisk's side (this process) ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load generator saw."""

    done: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, environment sent -> first command


def asterisk_environment(number: str) -> list[bytes]:
    """The environment Asterisk 20 sends for ``AGI(agi://127.0.0.1/route,${EXTEN},)``, a line each:
    launch_netscript's two lines, setup_env's twenty, the arguments, the empty line (res_agi.c)."""
    pairs = [
        ("network", "yes"),
        ("network_script", "route"),
        ("request", "agi://127.0.0.1/route"),
        ("channel", "PJSIP/trunk-00000001"),
        ("language", "zh"),
        ("type", "PJSIP"),
        ("uniqueid", "1700000000.1"),
        ("version", "20.5.0"),
        ("callerid", "13812345678"),
        ("calleridname", "unknown"),
        ("callingpres", "0"),
        ("callingani2", "0"),
        ("callington", "0"),
        ("callingtns", "0"),
        ("dnid", number),
        ("rdnis", "unknown"),
        ("context", "from-trunk"),
        ("extension", number),
        ("priority", "2"),
        ("enhanced", "0.0"),
        ("accountcode", ""),
        ("threadid", "140234567890123"),
        ("arg_1", number),
        ("arg_2", ""),
    ]
    return [f"agi_{key}: {value}\n".encode() for key, value in pairs] + [b"\n"]


class AsteriskSide(asyncio.Protocol):
    """One FastAGI session as Asterisk runs it: environment, then a reply per command line."""

    def __init__(
        self, number: str, hold: float, tally: Tally, finished: asyncio.Future[None], by_line: bool = False
    ) -> None:
        self.number, self.hold, self.tally, self.finished, self.by_line = number, hold, tally, finished, by_line
        self.buf = b""
        self.sent_at = 0.0
        self.first = True
        self.decided = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        lines = asterisk_environment(self.number)
        self.sent_at = time.perf_counter()
        if self.by_line:  # as res_agi writes it: each line on its own, each a segment on loopback
            for line in lines:
                self.transport.write(line)
        else:
            self.transport.write(b"".join(lines))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            if self.first:
                self.tally.latencies.append(time.perf_counter() - self.sent_at)
                self.first = False
            if b"HOTLINE_DECIDED" in line:  # its own SET VARIABLE, or the last pair of an MSet
                self.decided = True
            if line.startswith(b"STREAM FILE") and self.hold:
                asyncio.get_running_loop().call_later(self.hold, self._reply, b"200 result=0 endpos=8000\n")
            else:
                self._reply(b"200 result=1\n")

    def _reply(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.decided:
            self.tally.done += 1
        else:
            self.tally.failed += 1
        if not self.finished.done():
            self.finished.set_result(None)


async def one_session(port: int, number: str, hold: float, tally: Tally, by_line: bool = False) -> None:
    """Run one session to its end; a refused or reset connection counts as failed."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    try:
        await loop.create_connection(lambda: AsteriskSide(number, hold, tally, finished, by_line), "127.0.0.1", port)
        await asyncio.wait_for(finished, 30)
    except (OSError, TimeoutError):
        tally.failed += 1


def server_cpu(pid: int) -> float:
    """utime + stime (and reaped children's) of the server process, in seconds, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime (fields 14-17)
    return ticks / os.sysconf("SC_CLK_TCK")


async def closed_loop(
    port: int, pid: int, concurrency: int, seconds: float, by_line: bool = False
) -> tuple[float, float, Tally]:
    """(sessions/s, server CPU seconds per session, tally) with ``concurrency`` sessions always in flight."""
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        n = i
        while time.perf_counter() < stop_at:
            await one_session(port, NUMBERS[n % len(NUMBERS)], 0.0, tally, by_line)
            n += 1

    cpu0, t0 = server_cpu(pid), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, server_cpu(pid) - cpu0
    sessions = tally.done + tally.failed
    return sessions / wall, cpu / max(sessions, 1), tally


async def open_loop(port: int, rate: float, seconds: float, hold: float, by_line: bool = False) -> Tally:
    """``rate`` new sessions per second for ``seconds``, each holding ``hold`` s on its prompt."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_session(port, NUMBERS[i % len(NUMBERS)], hold, tally, by_line)))
    await asyncio.gather(*tasks)
    return tally


async def survives_early_close(port: int) -> bool:
    """A peer closes before its environment; is the next session still served within 2 s?"""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    tally = Tally()
    try:
        await asyncio.wait_for(one_session(port, "12345", 0.0, tally), 2.0)
    except TimeoutError:
        return False
    return tally.done == 1


def run_load(main: Coroutine[Any, Any, T]) -> T:
    """Run Asterisk's side on uvloop when installed: Asterisk is C, and a slow generator leaves the
    servers half idle, so their CPU per session would count wake-ups more than work."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


@dataclass
class Result:
    kind: str
    throughput: float
    cpu_per_session: float
    p50: float
    p99: float
    failed: int
    early_close_ok: bool


def run_one(kind: str, args: argparse.Namespace) -> Result:
    """Start the server, load it, stop it."""
    port = free_port()
    cmd = [sys.executable, "-m", "benchmarks.fastagi_bench", "--serve", kind, "--port", str(port)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"{kind} server did not start")
        by_line = args.env_writes == "line"
        throughput, cpu, closed = run_load(closed_loop(port, child.pid, args.concurrency, args.seconds, by_line))
        opened = run_load(open_loop(port, args.rate, args.open_seconds, args.hold, by_line))
        lat = sorted(opened.latencies) or [float("nan")]
        early = run_load(survives_early_close(port))
        return Result(
            kind,
            throughput,
            cpu,
            statistics.median(lat),
            lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            closed.failed + opened.failed,
            early,
        )
    finally:
        child.kill()
        child.wait()
        gc.collect()  # the collector is off during the load (see main); clear this run's cycles now


def report(results: list[Result], out: Callable[[str], None] = print) -> None:
    """The table, then ours (and the floor) against the best baseline."""
    out(
        f"{'server':<11} {'sessions/s':>10} {'CPU ms/session':>15} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} early-close"
    )
    for r in results:
        out(
            f"{r.kind:<11} {r.throughput:>10.0f} {r.cpu_per_session * 1000:>15.3f} {r.p50 * 1000:>8.2f}"
            f" {r.p99 * 1000:>8.2f} {r.failed:>7} {'serves' if r.early_close_ok else 'STOPS SERVING'}"
        )
    ours = next((r for r in results if r.kind == "ours"), None)
    floor = next((r for r in results if r.kind == "floor"), None)
    baselines = [r for r in results if r.kind in BASELINES]
    if ours is None or not baselines:
        return
    best_cpu = min(baselines, key=lambda r: r.cpu_per_session)
    best_p99 = min(baselines, key=lambda r: r.p99)
    best_tp = max(baselines, key=lambda r: r.throughput)
    out(f"CPU per session: ours / {best_cpu.kind} = {ours.cpu_per_session / best_cpu.cpu_per_session:.2f}x")
    if floor is not None:
        out(f"                 floor / {best_cpu.kind} = {floor.cpu_per_session / best_cpu.cpu_per_session:.2f}x")
        out(f"                 ours above the floor: {(ours.cpu_per_session - floor.cpu_per_session) * 1000:.3f} ms")
    out(f"decision p99:    ours / {best_p99.kind} = {ours.p99 / best_p99.p99:.2f}x")
    out(f"throughput:      ours / {best_tp.kind} = {ours.throughput / best_tp.throughput:.2f}x")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison (or, with --serve, be one of the servers)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.fastagi_bench", description=__doc__.split("\n")[0])
    p.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    p.add_argument("--concurrency", type=int, default=50, help="closed-loop sessions in flight (default 50)")
    p.add_argument("--seconds", type=float, default=4.0, help="closed-loop run per server (default 4 s)")
    p.add_argument("--rate", type=float, default=1000.0, help="open-loop new sessions per second (default 1000)")
    p.add_argument("--open-seconds", type=float, default=3.0, help="open-loop arrivals per server (default 3 s)")
    p.add_argument("--hold", type=float, default=1.0, help="seconds each open-loop session holds on its prompt")
    p.add_argument(
        "--env-writes",
        choices=("block", "line"),
        default="block",
        help="the environment in one write (default), or a write per line as res_agi sends it",
    )
    p.add_argument(
        "--rounds", type=int, default=5, help="servers run in turn this many times; medians reported (default 5)"
    )
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    os.sched_setaffinity(0, {CLIENT_CORE})
    # The load generator is the measuring instrument: its own pauses must not read as server latency.
    # Its descriptor table is grown up front (as the server's is) and its collector stays off.
    reserve_descriptors(RESERVED_DESCRIPTORS)
    gc.collect()
    gc.freeze()
    gc.disable()
    print(
        f"config {CONFIG.name}; server on core {SERVER_CORE}, load generator on core {CLIENT_CORE};"
        f" closed loop c={args.concurrency} for {args.seconds:g} s; open loop {args.rate:g}/s for"
        f" {args.open_seconds:g} s holding {args.hold:g} s; environment: {args.env_writes} writes",
        flush=True,
    )
    # Interleaved rounds and medians: on a shared machine one server's run can land on a busy moment.
    runs: dict[str, list[Result]] = {kind: [] for kind in args.servers}
    for round_no in range(1, args.rounds + 1):
        for kind in args.servers:
            runs[kind].append(run_one(kind, args))
        print(
            f"  round {round_no}: " + ", ".join(f"{k} {r[-1].cpu_per_session * 1000:.3f} ms" for k, r in runs.items())
        )
    report([median_result(kind, rs) for kind, rs in runs.items()])
    return 0


def median_result(kind: str, runs: list[Result]) -> Result:
    """Each figure's median over the rounds; failures summed; early-close must hold in every round."""
    return Result(
        kind,
        statistics.median(r.throughput for r in runs),
        statistics.median(r.cpu_per_session for r in runs),
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p99 for r in runs),
        sum(r.failed for r in runs),
        all(r.early_close_ok for r in runs),
    )


if __name__ == "__main__":
    sys.exit(main())
