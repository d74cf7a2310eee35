"""The options of ``hotline-cti serve``: one definition for the command line and its child services."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from hotline_cti.adapters.mqtt.settings import parse_address
from hotline_cti.records.model import check_node
from hotline_cti.storage.spool import DEFAULT_MAX_BYTES

ADDRESS_FLAGS = (("--ami", "ami"), ("--mqtt", "mqtt"), ("--wallboard", "wallboard"))
ENV_NODE = "HOTLINE_NODE"


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:4573")
    return host.strip("[]") or "127.0.0.1", int(port)


def address_type(default_port: int) -> Callable[[str], tuple[str, int]]:
    def parse(text: str) -> tuple[str, int]:
        try:
            return parse_address(text, default_port)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _clock_start(text: str) -> dt.datetime:
    try:
        start = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2021-09-01T10:00+08:00") from None
    if start.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset, e.g. 2021-09-01T10:00+08:00")
    return start


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600")
    return value


def _node(text: str) -> str:
    try:
        return check_node(text, "--node")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--node: ")) from None


def _size(text: str) -> int:
    """Bytes: a number, optionally with K, M or G (powers of 1024)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    raw = text.strip().upper().removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units else ""
    number = raw[: len(raw) - len(unit)]
    if not number.isdigit() or int(number) * units[unit] < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size of at least 1K, e.g. 256M")
    return int(number) * units[unit]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every serve option (the supervisor's and its children's)."""
    p.add_argument("--config", required=True, type=Path, help="merger YAML to serve; reloaded on SIGHUP and on change")
    p.add_argument(
        "--listen", type=listen_address, default=("127.0.0.1", 4573), metavar="HOST:PORT", help="default 127.0.0.1:4573"
    )
    p.add_argument(
        "--allow",
        action="append",
        metavar="ADDR",
        help="Asterisk peer address or network allowed to connect (repeat); default loopback",
    )
    p.add_argument("--session-deadline", type=_seconds, default=10.0, metavar="S", help="longest session, default 10 s")
    p.add_argument(
        "--command-timeout",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="longest wait for a reply to a command before the last, default 3 s",
    )
    p.add_argument(
        "--stall-limit",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="kill and restart the routing process when its event loop stops this long; default 1 s",
    )
    p.add_argument(
        "--clock-start",
        type=_clock_start,
        metavar="ISO",
        help="route as if it were this time when serve started (tests and drills); default: the real clock",
    )
    p.add_argument("--status-file", type=Path, metavar="PATH", help="write the processes' health here as JSON")
    p.add_argument(
        "--database", metavar="URL", help="SQLAlchemy URL; default $DATABASE_URL, else sqlite ./hotline-cti.db"
    )
    p.add_argument(
        "--spool-dir",
        type=Path,
        default=Path("hotline-cti-spool"),
        metavar="DIR",
        help="where records and events wait on disk until the database has them; default ./hotline-cti-spool",
    )
    p.add_argument(
        "--spool-max-bytes",
        type=_size,
        default=DEFAULT_MAX_BYTES,
        metavar="SIZE",
        help="bound of the spool (e.g. 512M); past it new rows are dropped with an error; default 256M",
    )
    p.add_argument(
        "--cdr-csv",
        type=Path,
        metavar="PATH",
        help="Asterisk's CDR file (cdr_custom, docs/reliability.md): calls AMI never showed are recorded from it",
    )
    p.add_argument(
        "--link-id",
        metavar="ID",
        help="the Asterisk link this events service writes for (one writer per link); default the --ami HOST:PORT",
    )
    p.add_argument(
        "--queue-state",
        type=Path,
        metavar="PATH",
        help="live queue snapshot the events service writes and routing reads (diversion rules); "
        "default <spool-dir>/queue-state.json",
    )
    p.add_argument(
        "--node",
        type=_node,
        metavar="NAME",
        help="the Asterisk node this serve sits beside (call ids '<node>:<Uniqueid>', the writer lease, events); "
        f"default ${ENV_NODE}, else the short host name",
    )
    p.add_argument("--node-id", metavar="ID", help="this host's name in the writer lease; default the host name")
    p.add_argument(
        "--lease-seconds",
        type=_seconds,
        default=15.0,
        metavar="S",
        help="writer lease length; a standby takes over this long after the writer died; default 15 s",
    )
    p.add_argument(
        "--ami",
        type=address_type(5038),
        metavar="HOST:PORT",
        help="Asterisk manager to connect to (user/secret from HOTLINE_AMI_USER/SECRET); off when not given",
    )
    p.add_argument(
        "--mqtt",
        type=address_type(1883),
        metavar="HOST:PORT",
        help="MQTT broker for events and commands (HOTLINE_MQTT_USER/PASSWORD); off when not given",
    )
    p.add_argument(
        "--wallboard",
        type=address_type(8080),
        metavar="HOST:PORT",
        help="serve the supervisor wallboard here (users from HOTLINE_WALLBOARD_USERS); off when not given",
    )


def parser(prog: str) -> argparse.ArgumentParser:
    """A parser of serve's options alone (a child service's command line)."""
    p = argparse.ArgumentParser(prog=prog)
    add_arguments(p)
    return p


def hostport(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def to_argv(args: argparse.Namespace) -> list[str]:
    """``args`` as a command line :func:`add_arguments` parses back to the same values."""
    argv = ["--config", str(args.config), "--listen", hostport(args.listen)]
    for addr in args.allow or ():
        argv += ["--allow", addr]
    argv += ["--session-deadline", repr(args.session_deadline), "--command-timeout", repr(args.command_timeout)]
    argv += ["--stall-limit", repr(args.stall_limit)]
    if args.clock_start is not None:
        argv += ["--clock-start", args.clock_start.isoformat()]
    if args.status_file is not None:
        argv += ["--status-file", str(args.status_file)]  # the wallboard shows it
    if args.database:
        argv += ["--database", args.database]
    argv += ["--spool-dir", str(args.spool_dir), "--spool-max-bytes", str(args.spool_max_bytes)]
    argv += ["--lease-seconds", repr(args.lease_seconds)]
    if args.cdr_csv is not None:
        argv += ["--cdr-csv", str(args.cdr_csv)]
    if args.queue_state is not None:
        argv += ["--queue-state", str(args.queue_state)]
    for flag, value in (("--link-id", args.link_id), ("--node-id", args.node_id), ("--node", args.node)):
        if value:
            argv += [flag, value]
    for flag, name in ADDRESS_FLAGS:
        value = getattr(args, name)
        if value is not None:
            argv += [flag, hostport(value)]
    return argv


def wants_events(args: argparse.Namespace) -> bool:
    """Whether serve needs its events service (AMI, MQTT or the wallboard)."""
    return any(getattr(args, name) is not None for _, name in ADDRESS_FLAGS)


def queue_state_path(args: argparse.Namespace) -> Path:
    """Where the live queue snapshot lives: --queue-state, else queue-state.json in the spool dir."""
    return Path(args.queue_state) if args.queue_state is not None else Path(args.spool_dir) / "queue-state.json"


def link_id(args: argparse.Namespace) -> str:
    """The Asterisk link the events service writes for: --link-id, else the AMI address."""
    if args.link_id:
        return str(args.link_id)
    if args.ami is not None:
        return hostport(args.ami)
    return "no-ami@" + hostport(args.listen)


def node_name(args: argparse.Namespace) -> str:
    """The Asterisk node: --node, else $HOTLINE_NODE, else this host's short name (ValueError naming the source
    when it cannot be a node name). A standby serve for the same Asterisk must name the same node."""
    if getattr(args, "node", None):
        return str(args.node)
    env = os.environ.get(ENV_NODE, "").strip()
    if env:
        return check_node(env, ENV_NODE)
    return check_node(socket.gethostname().split(".")[0], "the host name (give --node)")


def lease_link(args: argparse.Namespace, node: str) -> str:
    """The writer lease's link: ``<node>@<link>``, so nodes whose links read alike (127.0.0.1:5038 on each
    node's host) never block each other, and two writers for one node's link still cannot run at once."""
    return f"{node}@{link_id(args)}"


def clock(args: argparse.Namespace) -> Callable[[], float] | None:
    """The routing clock, in POSIX seconds: None for the real one; with --clock-start, that time plus the time since."""
    start: dt.datetime | None = args.clock_start
    if start is None:
        return None
    began, at = time.monotonic(), start.timestamp()
    return lambda: at + (time.monotonic() - began)
