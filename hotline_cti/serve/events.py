"""The events service: AMI (call records, one-key transfers), MQTT (outbox, commands) and the wallboard.

Run by the supervisor as ``python -m hotline_cti.serve.events <serve options>``, at idle CPU
priority: its bursts (a busy hour of AMI events, a reconnect backlog) never delay a routing
decision in the routing process (benchmarks/records_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from hotline_cti import event_loop
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.client import AmiClient, AmiError, AmiSettings, backoff_delays
from hotline_cti.adapters.ami.spy import SpyExecutor
from hotline_cti.adapters.ami.transfer import TransferExecutor
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CallerLists, CommandHandler, CommandListener
from hotline_cti.adapters.mqtt.publisher import OutboxPublisher
from hotline_cti.adapters.mqtt.settings import MqttSettings
from hotline_cti.callers.hashing import NumberKeyError, number_key
from hotline_cti.callers.manage import ListChange, ListChangeResult, apply_change
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import Callback
from hotline_cti.core.table import RoutingTable
from hotline_cti.core.transfer import TransferPolicy
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.serve import options
from hotline_cti.serve.agent_service import AgentService
from hotline_cti.serve.callback_keeper import CallbackKeeper
from hotline_cti.serve.cdr_follow import CdrFollower
from hotline_cti.serve.child import start_child, stop_on_signals
from hotline_cti.serve.database_guard import DatabaseGuard
from hotline_cti.serve.heartbeat import Heartbeat
from hotline_cti.serve.launch import stop_startup_beats
from hotline_cti.serve.node_queues import NodeQueueSharer
from hotline_cti.serve.queue_feed import QueueFeed
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.serve.systemname import SystemNameCheck
from hotline_cti.storage.lease import Lease
from hotline_cti.storage.spool import Spool, SpoolBusy, spool_path
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.auth import UsersFileError
from hotline_cti.wallboard.recordings import RecordingLibrary
from hotline_cti.wallboard.service import WallboardRunner, start_wallboard
from hotline_cti.wallboard.supervision import Listening

log = logging.getLogger("hotline_cti.serve.events")

DRAIN_SECONDS = 3.0  # at shutdown, how long the last events may take to reach the broker


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


def _callback_policy(holder: ConfigHolder) -> Callback | None:
    """The served file's ``callback:`` section (read once at start: a change needs a restart of serve)."""
    try:
        return load_config(holder.path).model.callback
    except ConfigError:
        log.error("callbacks off: %s did not load again", holder.path)
        return None


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


def yield_cpu_to_routing() -> None:
    """Put this (events) process under SCHED_IDLE: the routing process preempts it the moment a session needs
    the CPU. nice +10 alone still let a decision wait one scheduler slice (p99 3-4 ms at 5,000 AMI events/s);
    SCHED_IDLE brought it back to the idle figure (benchmarks/records_bench.py). Starvation would take routing
    saturating every core, thousands of sessions a second; then AMI backs up and resyncs after a reconnect."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(EVENTS_NICE)


class GuardedOutbox:
    """The outbox as the publisher sees it: empty unless this service may write (schema current, lease held), so
    a standby never publishes and an outage costs one log line here rather than one a second."""

    def __init__(self, store: Store, guard: DatabaseGuard) -> None:
        self.store = store
        self.guard = guard

    async def pending_events(self, limit: int = 500) -> list[tuple[int, str, str]]:
        if not self.guard.may_write():
            return []
        return await self.store.pending_events(limit)

    async def mark_sent(self, seqs: Sequence[int]) -> None:
        await self.store.mark_sent(seqs)


SPOOL_GROUP_COMMIT = 0.005  # seconds of spool appends sharing one commit (spool.py): a busy hour's burst in bulk
SPOOL_BUSY_POLL = 1.0  # seconds between tries of a spool another events service holds
FIRST_ANSWER_WAIT = 5.0  # longest wait at start for the database to say who writes (a refused connection: none)


async def _open_spool(args: argparse.Namespace, stop: asyncio.Event) -> Spool | None:
    """This link's spool; while another events service on this host holds it, wait (standby). None: stopped."""
    path = spool_path(args.spool_dir, options.link_id(args))
    waiting = False
    while not stop.is_set():
        try:
            spool = Spool(path, max_bytes=args.spool_max_bytes, group_commit=SPOOL_GROUP_COMMIT)
        except SpoolBusy:
            if not waiting:
                waiting = True
                log.warning("standby: spool %s is held by another events service on this host; waiting", path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SPOOL_BUSY_POLL)
            continue
        if spool.count():
            log.warning(
                "spool %s holds %d rows from before; writing them when the database allows", path, spool.count()
            )
        return spool
    return None


async def _wait_for_lease(guard: DatabaseGuard, stop: asyncio.Event) -> bool:
    """At start: wait for the database's first answer; if another holds the lease, stand by until it is ours.

    With the database down (the first attempt failed, or no answer within FIRST_ANSWER_WAIT) the service starts
    at once and spools: AMI events must not wait for it. Returns False when stopped while waiting."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(guard.tried.wait(), FIRST_ANSWER_WAIT)
    if guard.decided.is_set() and not guard.acquired.is_set():
        acquired = asyncio.create_task(guard.acquired.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait((acquired, stopped), return_when=asyncio.FIRST_COMPLETED)
        acquired.cancel()
        stopped.cancel()
        return guard.acquired.is_set()
    if not guard.decided.is_set():
        log.warning("database not answering at start: taking AMI events into the spool meanwhile")
    return True


def list_changer(store: Store) -> CallerLists | None:
    """The MQTT ``callers`` command's action: change a managed caller list (None without HOTLINE_NUMBER_KEY)."""
    try:
        key = number_key()
    except NumberKeyError:
        return None

    async def change(request: ListChange) -> ListChangeResult:
        return await apply_change(store, key, request, dt.datetime.now(dt.UTC))

    return change


async def _seed_when_ready(wallboard: WallboardRunner, store: Store, guard: DatabaseGuard) -> None:
    """Seed the wall's week from the database once it is usable (a start during an outage shows live calls only)."""
    while not guard.migrated:
        await asyncio.sleep(1.0)
    for delay in backoff_delays(1.0, 2.0, 30.0, 0.1):
        try:
            await wallboard.hub.seed(store)
            return
        except Exception as exc:
            log.warning("wallboard: stored calls not loaded yet (%s); retrying in %.0f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)


async def run_events(
    args: argparse.Namespace, holder: ConfigHolder, ami: AmiSettings | None, callers: CallerPolicy
) -> int:
    """AMI (records, transfers), MQTT (outbox, commands) and the wallboard, until SIGTERM/SIGINT."""
    stop = stop_on_signals()
    heartbeat = Heartbeat.from_env()
    if heartbeat is not None:
        heartbeat.start()
    stop_startup_beats()  # the loop beats now: a stall must fall silent
    # Idle priority only from here. Set before the loop beats, a host busy at normal priority starved the main
    # thread holding the GIL, so the start-up thread's signs of life stopped too and the supervisor killed the
    # service as stalled after STARTUP_SILENCE, again at each restart. Its loop has EVENTS_STALL_LIMIT.
    yield_cpu_to_routing()
    # SIGHUP reloads here too: a reload sent to every serve process (pkill -HUP) must not end this one.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, holder.reload)
    try:
        node = options.node_name(args)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        store = Store.connect(args.database)  # no I/O: the database may be down, the guard waits for it
    except ValueError as exc:
        log.error("--database: %s", exc)
        return 2
    spool = await _open_spool(args, stop)
    if spool is None:
        await store.close()
        return 0
    if args.cdr_csv is not None and args.ami is not None:
        CdrFollower.anchor(args.cdr_csv, spool)
    host = args.node_id or socket.gethostname()
    # The spool file is in the holder id: a restart of this service on this host (same spool, so never two at
    # once: the spool is locked) takes its lease back at once instead of waiting for it to expire. The node is in
    # the link: another node's writer (whose AMI link may read alike, 127.0.0.1:5038) never blocks this one.
    lease = Lease(store, options.lease_link(args, node), f"{host}:{spool.path}", ttl=args.lease_seconds)
    log.info("node %s: writing for link %s", node, lease.link)
    store.fence = lease.fence
    guard = DatabaseGuard(store, lease, spool_path=spool.path)
    guarding = asyncio.create_task(guard.run(), name="database-guard")
    code = 0
    if not await _wait_for_lease(guard, stop):
        await _stop_guard(guarding, store, spool, heartbeat)
        return 0
    guard.serving = True
    if guard.took_over_from and spool.load_open():
        # Another holder wrote this link since our last run and finished or adopted our calls in progress:
        # finishing them again from our checkpoint would overwrite its records with later end times.
        log.warning("calls in progress of the last run dropped: link was written by %s since", guard.took_over_from)
        spool.save_open({})
    writer = BatchWriter(store, spool=spool, may_write=guard.may_write, node=node)
    await writer.start()
    client: AmiClient | None = None
    connecting: asyncio.Task[None] | None = None
    executor: TransferExecutor | None = None
    pipeline: RecordPipeline | None = None
    agents: AgentService | None = None
    follower: CdrFollower | None = None
    queue_feed: QueueFeed | None = None
    sharer: NodeQueueSharer | None = None
    keeper: CallbackKeeper | None = None
    if ami is not None:
        client = AmiClient(ami)
        client.add_resync_hook(SystemNameCheck(node))
        executor = TransferExecutor(client, PolicySource(holder), writer, node=node)
        # Built before the first login, so that login's resync (CoreShowChannels) adopts calls in progress.
        builder = RecordBuilder(holder.table.region, callers, node=node)
        pipeline = RecordPipeline(client, builder, writer, checkpoint=spool)
        await pipeline.start()
        agents = AgentService(client, holder, writer)  # its resync compares QueueStatus with the state log
        await agents.load(store)
        if args.cdr_csv is not None:
            follower = CdrFollower(args.cdr_csv, pipeline, spool, callers=callers)
            await follower.start()
        # Live queue state for the routing service's diversion rules (docs/queues.md).
        queue_feed = QueueFeed(client, options.queue_state_path(args), wanted=lambda: holder.table.diversions.keys())
        queue_feed.start()
        # ... and for the wallboards of every node (node_queues: each queue per node and in total).
        sharer = NodeQueueSharer(node, queue_feed.tracker, client, store, guard.may_write)
        sharer.start()
        callback_policy = _callback_policy(holder)
        if callback_policy is not None:  # subscribed before the first login, as the pipeline is
            keeper = CallbackKeeper(client, store, callback_policy, holder.table.region, node=node)
            keeper.start()
    publisher: OutboxPublisher | None = None
    listener: CommandListener | None = None
    if args.mqtt is not None:
        mqtt = MqttSettings.from_env(*args.mqtt)
        publisher = OutboxPublisher(GuardedOutbox(store, guard), mqtt)
        writer.on_outbox_commit(publisher.notify)  # told about committed rows; its poll is only a safety net
        commands = CommandSettings.from_env()  # checked by serve before start; warns about a missing or unused token
        transfer = executor.execute if executor else None
        handler = CommandHandler(
            holder.table.region,
            commands,
            transfer,
            audit=writer,
            replies=store,
            agents=agents.run if agents else None,
            callers=list_changer(store),
            node=node,
        )
        listener = CommandListener(mqtt, handler)
        await publisher.start()
        await listener.start()
        log.info("MQTT on %s:%d, commands on %s", mqtt.host, mqtt.port, listener.topic_filter)
    wallboard: WallboardRunner | None = None
    seeding: asyncio.Task[None] | None = None
    if args.wallboard is not None:
        try:  # subscribed before the AMI login, so the first resync reaches it too
            model = load_config(holder.path).model
            wallboard = await start_wallboard(
                holder.table,
                host=args.wallboard[0],
                port=args.wallboard[1],
                ami=client,
                records=pipeline.records if pipeline is not None else None,  # one builder per AMI link
                store=None,
                audit=writer,
                status_file=args.status_file,
                agents=agents.run if agents else None,
                # the recordings dir and supervisors' phones as the config named them at start (restart to change)
                recordings=RecordingLibrary.of(model, store),
                node=node,
                peers=store,  # the other nodes' queues and calls, as they share them through the store
                listening=None
                if client is None
                else Listening(
                    SpyExecutor(client, writer, holder.table.region, node=node), lambda: model.supervision.phones
                ),
            )
            seeding = asyncio.create_task(_seed_when_ready(wallboard, store, guard), name="wallboard-seed")
            if keeper is not None:
                wallboard.hub.callbacks = keeper.view
        except (UsersFileError, ValueError, OSError, ConfigError) as exc:
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
        if guard.lost.is_set():
            # Another events service writes this link now: stop; restarted, this one waits as a standby.
            code = 3
            break

    if seeding is not None:
        seeding.cancel()
    if wallboard is not None:
        await wallboard.close()
    if listener is not None:
        await listener.stop()
    if connecting is not None:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
    if follower is not None:
        await follower.stop()
    if keeper is not None:
        await keeper.stop()
    if queue_feed is not None:
        await queue_feed.stop()
    if sharer is not None:
        await sharer.stop()
    if pipeline is not None:
        await pipeline.stop()  # calls still in progress are not written as finished
    if agents is not None:
        await agents.close()
    if client is not None:
        await client.close()
    await writer.stop()
    if publisher is not None:
        if code == 0 and not await publisher.drain(DRAIN_SECONDS):
            log.warning("MQTT: unsent events stay in the outbox for the next start")
        await publisher.stop()
    if writer.pending:
        log.warning("%d rows stay in the spool %s for the next start", writer.pending, spool.path)
    log.info("events process stopping; %d rows written", writer.written)
    await _stop_guard(guarding, store, spool, heartbeat, release=lease if code == 0 else None)
    return code


async def _stop_guard(
    guarding: asyncio.Task[None],
    store: Store,
    spool: Spool,
    heartbeat: Heartbeat | None,
    release: Lease | None = None,
) -> None:
    guarding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await guarding
    if release is not None:
        try:  # a standby takes over at once rather than when the lease expires
            await asyncio.wait_for(release.release(), 3.0)
        except Exception as exc:
            log.info("writer lease not released (%s); it expires by itself", type(exc).__name__)
    await store.close()
    spool.close()
    if heartbeat is not None:
        heartbeat.stop()


def main(argv: list[str] | None = None) -> int:
    started = start_child("hotline-cti-events", argv)
    if started is None:
        return 1
    args, holder = started
    ami: AmiSettings | None = None
    callers = CallerPolicy()
    if args.ami is not None:
        try:
            ami = AmiSettings.from_env(host=args.ami[0], port=args.ami[1])
            callers = CallerPolicy.from_env()
        except ValueError as exc:
            log.error("--ami: %s", exc)
            return 2
    return event_loop.run(run_events(args, holder, ami, callers))


if __name__ == "__main__":
    sys.exit(main())
