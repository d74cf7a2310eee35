"""``hotline-cti serve``: the FastAGI controller beside an Asterisk node, with its AMI, database and MQTT sides.

Always: FastAGI (route / ivr / survey) and the database (ratings, transfer
audit, MQTT outbox) written off the call path by a ``BatchWriter``. With
``--ami``: the AMI client, call records built from its events
(``RecordPipeline``) and one-key transfers. With ``--mqtt``: the outbox
publisher and the command topic. With ``--wallboard``: the supervisor wall on
the same AMI link and store. AMI, MQTT and the wall run in a second process at
idle CPU priority, so their bursts never delay a routing decision.
SIGTERM/SIGINT stop everything and flush the writers; SIGHUP reloads the
config. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hotline_cti import event_loop
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.client import AmiClient, AmiError, AmiSettings, backoff_delays
from hotline_cti.adapters.ami.transfer import TransferExecutor
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler, CommandListener
from hotline_cti.adapters.mqtt.publisher import OutboxPublisher
from hotline_cti.adapters.mqtt.settings import MqttSettings, parse_address
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable
from hotline_cti.core.transfer import TransferPolicy, build_policy
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.records.pipeline import RecordPipeline
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.auth import UsersFileError
from hotline_cti.wallboard.service import WallboardRunner, start_wallboard

log = logging.getLogger("hotline_cti.serve")

DRAIN_SECONDS = 3.0  # at shutdown, how long the last events may take to reach the broker


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:4573")
    return host.strip("[]") or "127.0.0.1", int(port)


def _address(default_port: int) -> Callable[[str], tuple[str, int]]:
    def parse(text: str) -> tuple[str, int]:
        try:
            return parse_address(text, default_port)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="run the FastAGI controller (agi://host/route, /ivr, /survey), AMI and MQTT")
    p.add_argument("--config", required=True, type=Path, help="merger YAML to serve; reloaded on SIGHUP and on change")
    p.add_argument(
        "--listen", type=_listen, default=("127.0.0.1", 4573), metavar="HOST:PORT", help="default 127.0.0.1:4573"
    )
    p.add_argument(
        "--allow",
        action="append",
        metavar="ADDR",
        help="Asterisk peer address or network allowed to connect (repeat); default loopback",
    )
    p.add_argument("--survey-log", type=Path, help="also append post-call ratings here as JSON lines")
    p.add_argument("--session-deadline", type=float, default=60.0, metavar="S", help="longest session, default 60 s")
    p.add_argument(
        "--command-timeout", type=float, default=10.0, metavar="S", help="longest wait for one reply, default 10 s"
    )
    p.add_argument(
        "--database", metavar="URL", help="SQLAlchemy URL; default $DATABASE_URL, else sqlite ./hotline-cti.db"
    )
    p.add_argument(
        "--ami",
        type=_address(5038),
        metavar="HOST:PORT",
        help="Asterisk manager to connect to (user/secret from HOTLINE_AMI_USER/SECRET); off when not given",
    )
    p.add_argument(
        "--mqtt",
        type=_address(1883),
        metavar="HOST:PORT",
        help="MQTT broker for events and commands (HOTLINE_MQTT_USER/PASSWORD); off when not given",
    )
    p.add_argument(
        "--wallboard",
        type=_address(8080),
        metavar="HOST:PORT",
        help="serve the supervisor wallboard here (users from HOTLINE_WALLBOARD_USERS); off when not given",
    )
    p.add_argument("--events-process", action="store_true", help=argparse.SUPPRESS)  # serve's own child
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        holder = ConfigHolder(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    ami: AmiSettings | None = None
    callers = CallerPolicy()
    if args.ami is not None:
        try:
            ami = AmiSettings.from_env(host=args.ami[0], port=args.ami[1])
            callers = CallerPolicy.from_env()
        except ValueError as exc:
            print(f"error: --ami: {exc}")
            return 2
    if args.mqtt is not None:
        try:
            CommandSettings.from_env()
        except ValueError as exc:
            print(f"error: --mqtt: {exc}")
            return 2
    if args.events_process:
        _yield_cpu_to_routing()
        return event_loop.run(_events(args, holder, ami, callers))
    return event_loop.run(_serve(args, holder, ami, callers))


class PolicySource:
    """The transfer policy of the config being served; rebuilt when the holder took a new table."""

    def __init__(self, holder: ConfigHolder) -> None:
        self.holder = holder
        self._table: RoutingTable | None = None
        self._policy: TransferPolicy | None = None

    def __call__(self) -> TransferPolicy:
        table = self.holder.table
        if table is not self._table or self._policy is None:
            try:
                self._policy = build_policy(load_config(self.holder.path).model)
            except ConfigError:
                if self._policy is None:
                    raise
                log.error(
                    "transfer targets not reloaded: %s is invalid now; keeping the previous ones", self.holder.path
                )
            self._table = table
        return self._policy


async def _keep_connecting(client: AmiClient) -> None:
    """Connect, retrying with backoff: Asterisk may start after us. Afterwards the client reconnects itself."""
    s = client.settings
    for delay in backoff_delays(s.backoff_initial, s.backoff_factor, s.backoff_max, s.backoff_jitter):
        try:
            await client.connect()
        except (AmiError, OSError) as exc:
            log.warning("AMI %s:%d: %s; retrying in %.1fs", s.host, s.port, exc, delay)
            await asyncio.sleep(delay)
        else:
            log.info("AMI connected to %s:%d (AMI %s)", s.host, s.port, client.version or "?")
            return


EVENTS_NICE = 10  # fallback where SCHED_IDLE is not allowed


def _yield_cpu_to_routing() -> None:
    """Put this (events) process under SCHED_IDLE: the routing process preempts it the moment a session needs
    the CPU. nice +10 alone still let a decision wait one scheduler slice (p99 3-4 ms at 5,000 AMI events/s);
    SCHED_IDLE brought it back to the idle figure (benchmarks/records_bench.py). Starvation would take routing
    saturating every core, thousands of sessions a second; then AMI backs up and resyncs after a reconnect."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(EVENTS_NICE)


EVENTS_STOP_SECONDS = DRAIN_SECONDS + 10.0


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


async def _serve(args: argparse.Namespace, holder: ConfigHolder, ami: AmiSettings | None, callers: CallerPolicy) -> int:
    """The routing process: FastAGI and survey ratings. AMI, MQTT and the wall run in a child process.

    Routing is the latency-critical path (a caller waits in silence for the decision); records, events
    and the wall are throughput work whose bursts (a busy hour of AMI events, a reconnect backlog) would
    otherwise hold the event loop for tens of ms (benchmarks/records_bench.py). So they run in their own
    process at idle CPU priority (SCHED_IDLE); both share only the database.
    """
    try:
        store = await Store.open(args.database)  # migrates once, before the events process opens it too
    except Exception as exc:  # the message names the URL (password hidden) and what failed
        log.error("database not usable, not serving: %s", exc)
        return 1
    writer = BatchWriter(store)
    await writer.start()
    survey_log: Path | None = args.survey_log

    def record(call_id: str, rating: int, at: dt.datetime) -> None:
        writer.submit_rating(call_id, rating, at)  # never blocks: the writer batches it off the call path
        if survey_log is not None:
            with survey_log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"call_id": call_id, "rating": rating, "at": at.isoformat()}) + "\n")

    server = FastAgiServer(
        holder,
        allow=args.allow or ("127.0.0.0/8", "::1/128"),
        limits=Limits(command=args.command_timeout, session=args.session_deadline),
        record_rating=record,
    )
    host, port = args.listen
    bound = await server.start(host, port)
    log.info("FastAGI controller on %s:%d serving %s (%s loop)", host, bound, args.config, event_loop.loop_name())
    events: subprocess.Popen[bytes] | None = None
    if ami is not None or args.mqtt is not None or args.wallboard is not None:
        events = subprocess.Popen(_events_command(args))  # same stdout/stderr, same environment
        log.info("events process (AMI, records, MQTT, wallboard) pid %d, idle CPU priority", events.pid)

    stop = _stop_on_signals()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, holder.reload)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        holder.reload_if_changed()  # file change picked up within a second
        if events is not None and events.poll() is not None:
            log.error("events process exited with %s; routing goes on, records and events stop", events.returncode)
            events = None

    # Stop taking work first, then flush: every rating reaches the database.
    await server.close()
    code = 0
    if events is not None:
        events.send_signal(signal.SIGTERM)
        try:
            await loop.run_in_executor(None, events.wait, EVENTS_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("events process did not stop in %.0fs; killed", EVENTS_STOP_SECONDS)
            events.kill()
            events.wait()
        code = 0 if events.returncode in (0, -signal.SIGTERM) else 1
    await writer.stop()
    await store.close()
    log.info("stopped; %d rows written", writer.written)
    return code


def _hostport(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _events_command(args: argparse.Namespace) -> list[str]:
    """The command line of serve's events process: the same options, less FastAGI's."""
    cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--events-process", "--config", str(args.config)]
    if args.database:
        cmd += ["--database", args.database]
    for flag, value in (("--ami", args.ami), ("--mqtt", args.mqtt), ("--wallboard", args.wallboard)):
        if value is not None:
            cmd += [flag, _hostport(value)]
    return cmd


async def _events(
    args: argparse.Namespace, holder: ConfigHolder, ami: AmiSettings | None, callers: CallerPolicy
) -> int:
    """AMI (records, transfers), MQTT (outbox, commands) and the wallboard, until SIGTERM/SIGINT."""
    stop = _stop_on_signals()
    # SIGHUP reloads here too: a reload sent to every serve process (pkill -HUP) must not end this one.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, holder.reload)
    try:
        store = await Store.open(args.database)
    except Exception as exc:
        log.error("database not usable, events process not serving: %s", exc)
        return 1
    writer = BatchWriter(store)
    await writer.start()
    client: AmiClient | None = None
    connecting: asyncio.Task[None] | None = None
    executor: TransferExecutor | None = None
    pipeline: RecordPipeline | None = None
    if ami is not None:
        client = AmiClient(ami)
        executor = TransferExecutor(client, PolicySource(holder), writer)
        # Built before the first login, so that login's resync (CoreShowChannels) adopts calls in progress.
        pipeline = RecordPipeline(client, RecordBuilder(holder.table.region, callers), writer)
        await pipeline.start()
    publisher: OutboxPublisher | None = None
    listener: CommandListener | None = None
    if args.mqtt is not None:
        mqtt = MqttSettings.from_env(*args.mqtt)
        publisher = OutboxPublisher(store, mqtt)
        commands = CommandSettings.from_env()  # checked in run() already; warns about a missing or unused token
        transfer = executor.execute if executor else None
        handler = CommandHandler(holder.table.region, commands, transfer, audit=writer, replies=store)
        listener = CommandListener(mqtt, handler)
        await publisher.start()
        await listener.start()
        log.info("MQTT on %s:%d, commands on %s", mqtt.host, mqtt.port, listener.topic_filter)
    wallboard: WallboardRunner | None = None
    if args.wallboard is not None:
        try:  # subscribed before the AMI login, so the first resync reaches it too
            wallboard = await start_wallboard(
                holder.table, host=args.wallboard[0], port=args.wallboard[1], ami=client, store=store, audit=writer
            )
        except (UsersFileError, ValueError, OSError) as exc:
            log.error("wallboard not started: %s", exc)
    if client is not None:
        connecting = asyncio.create_task(_keep_connecting(client), name="ami-connect")

    served_table = holder.table
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        holder.reload_if_changed()  # transfer targets and the wall follow the file, as routing does
        if holder.table is not served_table:
            served_table = holder.table
            if wallboard is not None:
                wallboard.set_table(served_table)

    if wallboard is not None:
        await wallboard.close()
    if listener is not None:
        await listener.stop()
    if connecting is not None:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
    if pipeline is not None:
        await pipeline.stop()  # calls still in progress are not written as finished
    if client is not None:
        await client.close()
    await writer.stop()
    if publisher is not None:
        if not await publisher.drain(DRAIN_SECONDS):
            log.warning("MQTT: unsent events stay in the outbox for the next start")
        await publisher.stop()
    await store.close()
    log.info("events process stopped; %d rows written", writer.written)
    return 0
