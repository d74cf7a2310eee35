"""``hotline-cti spy TARGET --mode listen|whisper|barge --phone PHONE``: a supervisor listens in (audited).

See docs/supervision.md. Exit codes: 0 the spy leg ran, 1 invalid config or AMI unreachable, 2 bad arguments or environment,
3 refused, 4 failed, 5 outcome unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path

from hotline_cti.adapters.ami.client import AmiSettings
from hotline_cti.adapters.ami.spy import FAILED, OK, REFUSED, SpyExecutor, SpyTimeouts
from hotline_cti.cli.audited_ami import audited_ami
from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.spy import SpyMode, SpyRecord, SpyRequest
from hotline_cti.text_output import key_values, to_json

EXIT = {OK: 0, REFUSED: 3, FAILED: 4}
EXIT_UNKNOWN = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``spy`` command."""
    p = sub.add_parser("spy", help="listen, whisper or barge in on an agent's call from a supervisor's phone (AMI)")
    p.add_argument("target", metavar="TARGET", help="the agent's channel (PJSIP/agent1001-00000012) or the call id")
    p.add_argument("--mode", choices=[str(m) for m in SpyMode], default=str(SpyMode.LISTEN), help="default listen")
    p.add_argument("--phone", required=True, metavar="PHONE", help="the supervisor's phone to call, e.g. PJSIP/sup1")
    p.add_argument("--config", required=True, type=Path, help="merger YAML (the region the audit events are for)")
    p.add_argument("--by", default="", metavar="WHO", help="who asks, for the audit (default cli:<login user>)")
    p.add_argument("--database", metavar="URL", help="audit database (default $DATABASE_URL or ./hotline-cti.db)")
    p.add_argument("--no-wait", action="store_true", help="return once listening started (the row keeps no end)")
    p.add_argument("--ring", type=float, default=30.0, metavar="S", help="seconds the phone may ring, default 30")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="longest wait per AMI action, default 5")
    p.add_argument("--json", action="store_true", help="print the audit row as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Listen in once; print the audit row (when it started, then when it ended)."""
    if not 0 < args.ring <= 600 or not 0 < args.timeout <= 120:
        print("error: --ring must be in (0, 600] and --timeout in (0, 120] seconds", file=sys.stderr)
        return 2
    try:
        region = load_checked(str(args.config)).model.region.id
    except ConfigError as exc:
        print_problems(exc, str(args.config), sys.stderr)
        return 1
    try:
        settings = AmiSettings.from_env(action_timeout=args.timeout)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("hotline_cti.adapters.ami.spy").setLevel(logging.ERROR)  # the printed row says it
    request = SpyRequest(args.target, SpyMode(args.mode), args.phone, args.by or f"cli:{getpass.getuser()}")
    return asyncio.run(_spy(args, settings, request, region))


async def _spy(args: argparse.Namespace, settings: AmiSettings, request: SpyRequest, region: str) -> int:
    async with audited_ami(args.database, settings) as session:
        if session is None:
            return 1
        client, writer = session
        executor = SpyExecutor(client, writer, region, timeouts=SpyTimeouts(action=args.timeout, ring=args.ring))
        record = await executor.execute(request)
        _print(args, record)
        if record.result == OK and not args.no_wait:
            record = await executor.ended(record)
            _print(args, record)
    return EXIT.get(record.result, EXIT_UNKNOWN)


def _print(args: argparse.Namespace, record: SpyRecord) -> None:
    data = record.to_dict()
    data["channel"], data["reason"] = mask_numbers(record.channel), mask_numbers(record.reason)
    data["seconds"] = record.seconds
    if args.json:
        print(to_json(data), flush=True)
    else:
        keys = ("result", "reason", "mode", "channel", "call_id", "started", "ended", "seconds")
        print(key_values([(k, data[k]) for k in keys]), flush=True)
