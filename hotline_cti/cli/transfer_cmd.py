"""``hotline-cti transfer CHANNEL --to TARGET``: one-key transfer (话务转接) of a live call through AMI.

See docs/transfer.md. Exit codes: 0 transferred, 1 invalid config or AMI
unreachable, 2 bad arguments or environment, 3 refused, 4 failed, 5 outcome
unknown (the action was sent but Asterisk did not say how it went).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from hotline_cti.adapters.ami.client import AmiSettings
from hotline_cti.adapters.ami.transfer import FAILED, OK, REFUSED, TransferExecutor, TransferTimeouts
from hotline_cti.cli.audited_ami import audited_ami
from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import TransferPolicy, TransferRequest
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.privacy import mask_numbers
from hotline_cti.serve.options import ENV_NODE
from hotline_cti.text_output import key_values, to_json

EXIT = {OK: 0, REFUSED: 3, FAILED: 4}
EXIT_UNKNOWN = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``transfer`` command."""
    p = sub.add_parser(
        "transfer",
        help="move a live call to 110/119/..., a sub-centre or expert seats (AMI from HOTLINE_AMI_* env)",
    )
    p.add_argument(
        "channel",
        metavar="CHANNEL",
        help="agent-side channel, e.g. PJSIP/agent1001-00000012, or a call id as records name it (nn-1:1700000000.1)",
    )
    p.add_argument("--to", required=True, metavar="TARGET", help="110, a sub-centre id, an expert group or a code")
    p.add_argument(
        "--mode",
        choices=[str(m) for m in TransferMode],
        default=str(TransferMode.BLIND),
        help="blind (default), attended, threeway, or handover (an emergency line gives the call to 12345)",
    )
    p.add_argument("--from", dest="from_line", default="", metavar="LINE", help="handover: the line handing over")
    p.add_argument("--config", required=True, type=Path, help="merger YAML naming the targets")
    p.add_argument("--by", default="", metavar="WHO", help="who asks, for the audit (default cli:<login user>)")
    p.add_argument("--database", metavar="URL", help="audit database (default $DATABASE_URL or ./hotline-cti.db)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="longest wait per AMI action, default 5")
    p.add_argument("--json", action="store_true", help="print the audit row as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Transfer once and print the audit row."""
    try:
        model = load_checked(str(args.config)).model
    except ConfigError as exc:
        print_problems(exc, str(args.config), sys.stderr)
        return 1
    try:
        settings = AmiSettings.from_env(action_timeout=args.timeout)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    policy = build_policy(model)
    # The executor logs each attempt for serve's log; here the printed row says the same.
    logging.getLogger("hotline_cti.adapters.ami.transfer").setLevel(logging.ERROR)
    request = TransferRequest(
        channel=args.channel,
        target=args.to,
        mode=TransferMode(args.mode),
        requested_by=args.by or f"cli:{getpass.getuser()}",
        from_line=args.from_line,
    )
    return asyncio.run(_transfer(args, settings, lambda: policy, request))


async def _transfer(
    args: argparse.Namespace, settings: AmiSettings, policy: Callable[[], TransferPolicy], request: TransferRequest
) -> int:
    async with audited_ami(args.database, settings) as session:
        if session is None:
            return 1
        client, writer = session
        timeouts = TransferTimeouts(action=args.timeout, event=args.timeout)
        # $HOTLINE_NODE: the node this host's AMI is (a call of another node is refused, not looked for here)
        executor = TransferExecutor(client, policy, writer, timeouts=timeouts, node=os.environ.get(ENV_NODE, ""))
        record = await executor.execute(request)
    data = record.to_dict()
    data["channel"], data["reason"] = mask_numbers(record.channel), mask_numbers(record.reason)
    if args.json:
        print(to_json(data))
    else:
        print(key_values([(k, data[k]) for k in ("result", "reason", "target", "mode", "channel", "call_id")]))
    return EXIT.get(record.result, EXIT_UNKNOWN)
