"""``hotline-cti serve``: the controller beside an Asterisk node (docs/cli.md).

A supervisor (:mod:`hotline_cti.serve.supervisor`) runs the routing service (FastAGI: the call
path, no database) and, with ``--ami``, ``--mqtt`` or ``--wallboard``, the events service
(records, transfers, outbox, commands, the wall), restarting either when it dies or stalls.
SIGTERM/SIGINT stop everything and flush the writers; SIGHUP reloads the config.
"""

from __future__ import annotations

import argparse
import logging

from hotline_cti.adapters.ami.client import AmiSettings
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.serve import options
from hotline_cti.serve.supervisor import Supervisor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="run the FastAGI controller (agi://host/route, /ivr), AMI, MQTT and the wall")
    options.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the config, then supervise the services until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    try:
        options.node_name(args)  # the events service names its calls by it: a bad name stops here, not there
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    if args.ami is not None:
        try:  # the events service reads the same environment: say what is wrong before starting it
            AmiSettings.from_env(host=args.ami[0], port=args.ami[1])
            CallerPolicy.from_env()
        except ValueError as exc:
            print(f"error: --ami: {exc}")
            return 2
    if args.mqtt is not None:
        try:
            CommandSettings.from_env()
        except ValueError as exc:
            print(f"error: --mqtt: {exc}")
            return 2
    return Supervisor(args).run()
