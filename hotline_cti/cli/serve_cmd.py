"""``hotline-cti serve``: the FastAGI controller beside an Asterisk node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
from pathlib import Path

from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.config.errors import ConfigError

log = logging.getLogger("hotline_cti.serve")


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:4573")
    return host.strip("[]") or "127.0.0.1", int(port)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="run the FastAGI controller (agi://host/route, /ivr, /survey)")
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
    p.add_argument("--survey-log", type=Path, help="append post-call ratings here as JSON lines")
    p.add_argument("--session-deadline", type=float, default=60.0, metavar="S", help="longest session, default 60 s")
    p.add_argument(
        "--command-timeout", type=float, default=10.0, metavar="S", help="longest wait for one reply, default 10 s"
    )
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
    return asyncio.run(_serve(args, holder))


async def _serve(args: argparse.Namespace, holder: ConfigHolder) -> int:
    survey_log: Path | None = args.survey_log

    def record(call_id: str, rating: int, at: dt.datetime) -> None:
        if survey_log is not None:  # a small append; the database sink replaces this with #4
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
    log.info("FastAGI controller on %s:%d serving %s", host, bound, args.config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, holder.reload)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        holder.reload_if_changed()  # file change picked up within a second
    await server.close()
    return 0
