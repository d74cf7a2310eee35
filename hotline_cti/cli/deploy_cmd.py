"""``hotline-cti deploy NEW.yaml``: the cut-over in one command (see :mod:`hotline_cti.deploy`, docs/install.md).

Exit codes: 0 deployed (or the dry run shown), 1 refused (invalid file, failed checks, Asterisk
unreachable) or failed and rolled back, 2 bad arguments or environment, 3 the roll-back failed too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from hotline_cti.adapters.ami.client import ENV_SECRET, ENV_USER, AmiClient, AmiSettings
from hotline_cti.cli.config_cmd import parse_datetime
from hotline_cti.cli.render_args import add_render_arguments, render_options
from hotline_cti.deploy import AmiAsterisk, Plan, deploy
from hotline_cti.serve.options import address_type

DEFAULT_IN_SERVICE = "/etc/hotline-cti/merger.yaml"
DEFAULT_ASTERISK_DIR = "/etc/asterisk/hotline"


def _wait(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``deploy`` command."""
    p = sub.add_parser(
        "deploy",
        help="validate, diff, render, install into Asterisk, reload, verify, then the controller; roll back on failure",
        description="Take an edited merger file onto a running Asterisk and its controller: validate it, show the "
        "routing diff against the file in service, render the dialplan, write the changed files atomically into "
        "Asterisk's directory, reload through AMI (dialplan, queues, features, confbridge), verify through AMI "
        "that every inbound extension and queue is there, then install the file where the controller reads it. "
        "Any failure after the first write puts everything back. AMI credentials from HOTLINE_AMI_USER / "
        "HOTLINE_AMI_SECRET. See docs/install.md.",
    )
    p.add_argument("config", type=Path, help="the edited merger YAML")
    p.add_argument(
        "--in-service",
        type=Path,
        default=Path(DEFAULT_IN_SERVICE),
        metavar="FILE",
        help=f"the controller's merger file, diffed against and replaced last (default {DEFAULT_IN_SERVICE})",
    )
    p.add_argument(
        "--asterisk-dir",
        type=Path,
        default=Path(DEFAULT_ASTERISK_DIR),
        metavar="DIR",
        help=f"where Asterisk #includes the generated files from (default {DEFAULT_ASTERISK_DIR})",
    )
    p.add_argument(
        "--ami",
        type=address_type(5038),
        default=("127.0.0.1", 5038),
        metavar="HOST[:PORT]",
        help="Asterisk manager (default 127.0.0.1:5038)",
    )
    add_render_arguments(p)
    p.add_argument("--at", type=parse_datetime, help="instant of the routing diff (default now)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write and reload nothing")
    p.add_argument(
        "--wait",
        type=_wait,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another deploy into the same directory to finish (default 0: refuse at once)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the plan and deploy (AMI is reached after the lock and the checks; never for a dry run)."""
    try:
        options = render_options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = Plan(
        args.config, args.in_service, args.asterisk_dir, options, at=args.at, dry_run=args.dry_run, lock_wait=args.wait
    )
    if args.dry_run:
        return asyncio.run(deploy(plan, None, sys.stdout))
    host, port = args.ami
    try:
        settings = AmiSettings.from_env(host=host, port=port, backoff_max=2.0)
    except ValueError as exc:
        print(f"error: {exc} (needed for --ami; {ENV_USER} / {ENV_SECRET})", file=sys.stderr)
        return 2
    return asyncio.run(_deploy(plan, settings))


async def _deploy(plan: Plan, settings: AmiSettings) -> int:
    client = AmiClient(settings)
    try:
        return await deploy(plan, AmiAsterisk(client, connect=True), sys.stdout)
    finally:
        await client.close()
