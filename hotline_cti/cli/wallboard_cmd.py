"""``hotline-cti wallboard``: the supervisor wallboard on its own, following Asterisk's AMI event stream, or,
without ``--ami``, the region centre's wall: every node read from the store (docs/scale.md).

``hotline-cti wallboard hash-password`` prints a users-file line for ``HOTLINE_WALLBOARD_USERS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from pathlib import Path

from hotline_cti import event_loop
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami import AmiClient, AmiSettings, AuthenticationFailed
from hotline_cti.adapters.ami.spy import SpyExecutor
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.serve.child import stop_on_signals
from hotline_cti.serve.options import listen_address as _listen
from hotline_cti.serve.options import node_name
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.store import ENV_DATABASE_URL, Store, resolve_url
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.auth import ROLES, UsersFileError, UsersSource, hash_password
from hotline_cti.wallboard.recordings import RecordingLibrary
from hotline_cti.wallboard.service import WallboardRunner, start_wallboard
from hotline_cti.wallboard.supervision import Listening
from hotline_cti.wallboard.throttle import LoginLimits

log = logging.getLogger("hotline_cti.wallboard")
RETRY_MAX = 30.0  # seconds between attempts to reach Asterisk at start-up


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``wallboard`` command and its ``hash-password`` helper."""
    p = sub.add_parser(
        "wallboard",
        help="supervisor wallboard: live queues, today's figures, merger view (HTTP)",
        description="Serve the wallboard beside a node (--ami and --config), or the region centre's wall with no "
        "Asterisk link (--config and --database: every node from the store), or print a users-file line with "
        "'hotline-cti wallboard hash-password --user NAME'. See docs/wallboard.md.",
    )
    p.add_argument(
        "--ami",
        type=_listen,
        metavar="HOST:PORT",
        help="Asterisk manager; user and secret from HOTLINE_AMI_*. Without it: every node from --database",
    )
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="merger YAML (line names, transition windows); reloaded on change"
    )
    p.add_argument(
        "--database", metavar="URL", help=f"seed this week's figures from this store (default ${ENV_DATABASE_URL})"
    )
    p.add_argument(
        "--listen", type=_listen, default=("127.0.0.1", 8080), metavar="HOST:PORT", help="default 127.0.0.1:8080"
    )
    p.add_argument("--users", type=Path, metavar="FILE", help="users file (default $HOTLINE_WALLBOARD_USERS)")
    p.add_argument(
        "--node",
        metavar="NAME",
        help="the Asterisk node --ami belongs to (as its serve --node names it); the other nodes' queues and calls "
        "come from --database. Default $HOTLINE_NODE, else the short host name",
    )
    p.set_defaults(func=run, wallboard_parser=p)
    actions = p.add_subparsers(dest="wallboard_action", metavar="[hash-password]", title="helpers")
    h = actions.add_parser("hash-password", help="print a user:role:hash line for the users file")
    h.add_argument("--user", required=True, help="login name (no ':')")
    h.add_argument("--role", choices=ROLES, default="viewer", help="supervisor or viewer (default viewer)")
    h.add_argument("--stdin", action="store_true", help="read the password from standard input instead of a prompt")
    h.set_defaults(func=cmd_hash_password)


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print ``user:role:pbkdf2_sha256$...``."""
    if ":" in args.user or not args.user.strip():
        print(
            f"hotline-cti wallboard hash-password: --user {args.user!r} must be non-empty and without ':'",
            file=sys.stderr,
        )
        return 2
    password = sys.stdin.readline().rstrip("\r\n") if args.stdin else getpass.getpass("password: ")
    if not password:
        print("hotline-cti wallboard hash-password: empty password", file=sys.stderr)
        return 2
    print(f"{args.user}:{args.role}:{hash_password(password)}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve the wallboard until SIGINT/SIGTERM."""
    parser: argparse.ArgumentParser = args.wallboard_parser
    if args.config is None:
        parser.error("--config FILE is required")
    if args.database or os.environ.get(ENV_DATABASE_URL):
        try:
            resolve_url(args.database)
        except ValueError as exc:  # named before anything starts, not a traceback from inside the loop
            parser.error(f"--database: {exc}")
    if args.ami is None:
        if not (args.database or os.environ.get(ENV_DATABASE_URL)):
            parser.error(
                f"--ami HOST:PORT or --database URL (or ${ENV_DATABASE_URL}) is required: a wall with no Asterisk "
                "link reads every node from the database"
            )
        if args.node:
            parser.error("--node names the node of --ami; a wall without --ami shows every node")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        holder = ConfigHolder(args.config)
        users = UsersSource(args.users) if args.users is not None else UsersSource.from_env()
        LoginLimits.from_env()  # a bad limit is an error now, not at the first login
        link = None  # the region centre's wall: no Asterisk link, every node from the store
        if args.ami is not None:
            link = (AmiSettings.from_env(host=args.ami[0], port=args.ami[1]), CallerPolicy.from_env())
            args.node = node_name(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except (UsersFileError, ValueError) as exc:
        print(f"hotline-cti wallboard: {exc}", file=sys.stderr)
        return 1
    if link is None:
        return event_loop.run(_serve_region(args, holder, users))
    return event_loop.run(_serve(args, holder, users, *link))


async def _follow(holder: ConfigHolder, runner: WallboardRunner, stop: asyncio.Event) -> None:
    """Until ``stop``: follow the merger file (a bad new file is refused and the old one keeps serving)."""
    served = holder.table
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        # Loaded off the loop: the new table shows up on a later tick. A bad file is refused and the old one serves.
        holder.reload_if_changed()
        if holder.table is not served:
            served = holder.table
            runner.set_table(served)


async def _serve_region(args: argparse.Namespace, holder: ConfigHolder, users: UsersSource) -> int:
    store = await Store.open(args.database or os.environ[ENV_DATABASE_URL])
    writer = BatchWriter(store)  # logins and supervisor actions are audited, as beside a node
    await writer.start()
    host, port = args.listen
    try:
        runner = await start_wallboard(
            holder.table, host=host, port=port, store=store, users=users, audit=writer, region=store
        )
    except BaseException:
        await writer.stop()
        await store.close()
        raise
    stop = stop_on_signals()
    log.info("wallboard on %s with no Asterisk link: every node from the database", runner.url)
    await _follow(holder, runner, stop)
    await runner.close()
    await writer.stop()
    holder.close()
    await store.close()
    return 0


async def _connect(client: AmiClient, stop: asyncio.Event) -> bool:
    """Reach Asterisk, retrying while it is down (the client reconnects by itself once logged in).

    False when the login is refused: retrying a wrong secret cannot help.
    """
    delay = 1.0
    while not stop.is_set():
        try:
            await client.connect()
            return True
        except AuthenticationFailed:
            log.error("AMI login refused: check HOTLINE_AMI_USER / HOTLINE_AMI_SECRET")
            stop.set()
            return False
        except OSError as exc:
            log.warning(
                "AMI %s:%d unreachable (%s); retrying in %.0f s", client.settings.host, client.settings.port, exc, delay
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RETRY_MAX)
    return True


async def _serve(
    args: argparse.Namespace, holder: ConfigHolder, users: UsersSource, settings: AmiSettings, callers: CallerPolicy
) -> int:
    store = await Store.open(args.database) if args.database or os.environ.get(ENV_DATABASE_URL) else None
    client = AmiClient(settings)
    host, port = args.listen
    writer = BatchWriter(store) if store is not None else None  # logins and supervisor actions are audited
    if writer is not None:
        await writer.start()
    # This link's one record builder: the wall's calls. Nothing is stored from it here (the events service of
    # `hotline-cti serve` keeps the records); built before the wall subscribes, so each event reaches it first.
    pipeline = RecordPipeline(client, RecordBuilder(holder.table.region, callers, node=args.node), None)
    await pipeline.start()
    # the recordings dir and supervisors' phones as the config named them at start (restart to change)
    model = load_config(holder.path).model
    library = RecordingLibrary.of(model, store) if store is not None else None
    spies = SpyExecutor(client, writer, holder.table.region, node=args.node)
    listening = Listening(spies, lambda: model.supervision.phones)
    runner = await start_wallboard(
        holder.table,
        host=host,
        port=port,
        ami=client,
        records=pipeline.records,
        store=store,
        users=users,
        audit=writer,
        recordings=library,
        listening=listening,
        node=args.node,
        peers=store,
    )
    stop = stop_on_signals()
    connecting = asyncio.create_task(_connect(client, stop))
    log.info("wallboard on %s following AMI %s:%d", runner.url, settings.host, settings.port)
    await _follow(holder, runner, stop)
    refused = connecting.done() and not connecting.cancelled() and connecting.result() is False
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    await runner.close()
    await pipeline.stop()
    await client.close()
    if writer is not None:
        await writer.stop()
    holder.close()
    if store is not None:
        await store.close()
    return 1 if refused else 0
