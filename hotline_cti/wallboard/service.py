"""Start and stop the wallboard: HTTP server, snapshot publisher, AMI subscription and store seeding.

``hotline-cti wallboard`` runs it alone; ``hotline-cti serve`` can run it beside the FastAGI controller
with :func:`start_wallboard`, passing its own AMI client, store and routing table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline_cti.clock import utc_now
from hotline_cti.core.table import RoutingTable
from hotline_cti.health import StatusError, read_status
from hotline_cti.records.actions import ActionSink
from hotline_cti.wallboard.app import AgentRunner, build_app
from hotline_cti.wallboard.auth import SessionSigner, User, UsersSource, session_secret
from hotline_cti.wallboard.hub import AmiFeed, CallSource, Clock, Hub, RecordSource
from hotline_cti.wallboard.peers import PeerStore, RegionStore
from hotline_cti.wallboard.recordings import RecordingLibrary
from hotline_cti.wallboard.supervision import Listening
from hotline_cti.wallboard.throttle import LoginLimits, LoginThrottle

log = logging.getLogger(__name__)


@dataclass
class WallboardRunner:
    """A running wallboard; :meth:`close` stops everything it started (not the AMI client or store)."""

    hub: Hub
    runner: web.AppRunner
    host: str
    port: int
    ami: AmiFeed | None = None
    records: RecordSource | None = None

    @property
    def url(self) -> str:
        """Base URL of the pages."""
        return f"http://{self.host}:{self.port}"

    def set_table(self, table: RoutingTable) -> None:
        """Follow a config reload."""
        self.hub.set_table(table)

    async def close(self) -> None:
        """Stop serving and unsubscribe from AMI."""
        if self.ami is not None:
            self.ami.off("*", self.hub.feed)
        if self.records is not None:
            self.records.remove_listener(self.hub.take)
        await self.hub.stop()
        await self.runner.cleanup()


def _health(path: Path) -> Callable[[], dict[str, Any] | None]:
    """The controller's health for the wall: the status file's, or a line saying why it is unknown."""

    def read() -> dict[str, Any] | None:
        try:
            return read_status(path).to_dict()
        except StatusError as exc:
            return {"healthy": False, "stale": True, "error": str(exc), "services": {}}

    return read


async def start_wallboard(
    table: RoutingTable,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    ami: AmiFeed | None = None,
    records: RecordSource | None = None,
    store: CallSource | None = None,
    users: Mapping[str, User] | UsersSource | None = None,
    secret: bytes | None = None,
    audit: ActionSink | None = None,
    limits: LoginLimits | None = None,
    clock: Clock = utc_now,
    max_rate: float = 2.0,
    secure_cookie: bool = False,
    status_file: Path | None = None,
    agents: AgentRunner | None = None,
    recordings: RecordingLibrary | None = None,
    listening: Listening | None = None,
    node: str = "",
    peers: PeerStore | None = None,
    region: RegionStore | None = None,
) -> WallboardRunner:
    """Serve the wallboard on ``host:port`` (0 = any free port; see ``runner.port``).

    ``ami``: subscribe to its events (queues and agents) and re-read QueueStatus after every (re)connect;
    register before ``ami.connect()`` so the first login's resync is not missed (it is also run here if
    already connected). ``records``: the same link's record builder (``RecordPipeline.records``), built
    before this call so its events come first: the wall's calls, finished and in progress.
    ``store``: seed this week's calls from it. ``users``: default ``$HOTLINE_WALLBOARD_USERS``, re-read when
    it changes; ``secret``: default ``$HOTLINE_WALLBOARD_SECRET`` or random. ``audit``: where login and
    supervisor-action rows go (a ``BatchWriter``); ``limits``: login lockout, default from the environment.
    ``status_file``: serve's ``--status-file``; the wall shows the controller's health from it.
    ``agents``: runs supervisors' agent commands (``AgentControl.run``); without it they get 503.
    ``recordings``: where supervisors play call recordings from (records table + recordings dir).
    ``listening``: the spy executor and supervisors' phones (listen / whisper / barge).
    ``node``: the Asterisk node of ``ami``; ``peers``: the store the other nodes share their queues and calls
    through (each queue then shows per node and in total).
    ``region``: a wall with no Asterisk link (the region centre's): every node's queues, calls and agent changes
    are read from this store, and what needs AMI (listening, agent commands, recordings) is refused.
    Raises ``UsersFileError`` on a bad users file, ``ValueError`` on a bad limit or an AMI link given with ``region``.
    """
    if region is not None and (ami is not None or records is not None or peers is not None):
        raise ValueError("a wall with region= has no Asterisk link: no ami, records or peers")
    health = None if status_file is None else _health(status_file)
    hub = Hub(
        table, clock=clock, max_rate=max_rate, health=health, records=records, node=node, peers=peers, region=region
    )
    if store is not None:
        await hub.seed(store)
    if ami is not None:
        ami.on("*", hub.feed)
        ami.add_resync_hook(hub.resync)
        if ami.connected:
            await hub.resync(ami)
    if isinstance(users, UsersSource):
        known = users
    else:
        known = UsersSource(users=users) if users is not None else UsersSource.from_env()
    if not known.current():
        log.warning("wallboard: no users configured (set HOTLINE_WALLBOARD_USERS); nobody can log in")
    throttle = LoginThrottle(limits if limits is not None else LoginLimits.from_env())
    app = build_app(
        hub,
        known,
        SessionSigner(secret or session_secret()),
        secure_cookie=secure_cookie,
        throttle=throttle,
        audit=audit,
        agents=agents,
        recordings=recordings,
        listening=listening,
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1]) if runner.addresses else port
    hub.start()
    log.info("wallboard on http://%s:%d", host, bound)
    return WallboardRunner(hub=hub, runner=runner, host=host, port=bound, ami=ami, records=records)
