"""What each service process does first and last: die with the supervisor, parse serve's options,
load the config, and stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.config.errors import ConfigError
from hotline_cti.serve import options
from hotline_cti.serve.heartbeat import die_with_supervisor

log = logging.getLogger("hotline_cti.serve")


def start_child(prog: str, argv: list[str] | None = None) -> tuple[argparse.Namespace, ConfigHolder] | None:
    """The service's options and config; None (after logging every problem) when the config is invalid."""
    die_with_supervisor()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = options.parser(prog).parse_args(argv)
    try:
        return args, ConfigHolder(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return None


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop
