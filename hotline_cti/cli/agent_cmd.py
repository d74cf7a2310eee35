"""``hotline-cti agent login|logout|pause|unpause|status``: agent state through AMI (issue 18).

See docs/agents.md. The Asterisk manager comes from HOTLINE_AMI_* (as for ``transfer``); each command
but ``status`` is audited in the ``actions`` table (actor ``cli:<login user>`` or ``--by``). The state
log itself is written by the events service from what Asterisk reports. Exit codes: 0 done, 1 invalid
config or AMI unreachable, 2 bad arguments or environment, 3 refused (unknown agent or reason, not
logged in), 4 failed (Asterisk said no), 5 outcome unknown (sent, no answer).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from pathlib import Path

from hotline_cti.adapters.ami.agents import FAILED, OK, REFUSED, AgentControl, AgentOutcome
from hotline_cti.adapters.ami.client import AmiClient, AmiError, AmiSettings
from hotline_cti.cli.audited_ami import audited_ami
from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.schema import MergerConfig, is_agent_id
from hotline_cti.records.actions import ActionRecord, audit
from hotline_cti.text_output import key_values, to_json

EXIT = {OK: 0, REFUSED: 3, FAILED: 4}
EXIT_UNKNOWN = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``agent`` command and its actions."""
    p = sub.add_parser("agent", help="log agents in or out of their queues, pause them (AMI from HOTLINE_AMI_* env)")
    actions = p.add_subparsers(dest="agent_action", required=True, metavar="ACTION")
    for name, text in (
        ("login", "add the agent to every queue of its skills, at the YAML's penalties"),
        ("logout", "remove the agent from every queue it is in"),
        ("pause", "pause the agent in every queue, with a reason of agent_settings.pause_reasons"),
        ("unpause", "end the agent's pause"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("agent", metavar="AGENT", type=_agent_id, help="agent id of the merger YAML, e.g. agent1001")
        if name == "pause":
            a.add_argument("--reason", required=True, metavar="ID", help="pause reason id, e.g. lunch")
        _common(a)
        a.add_argument("--by", default="", metavar="WHO", help="who asks, for the audit (default cli:<login user>)")
        a.add_argument("--database", metavar="URL", help="audit database (default $DATABASE_URL or ./hotline-cti.db)")
        a.set_defaults(func=run)
    s = actions.add_parser("status", help="every logged-in agent: queue, penalty, pause and reason")
    s.add_argument("agent", nargs="?", metavar="AGENT", type=_agent_id, help="only this agent")
    _common(s)
    s.set_defaults(func=run)


def _agent_id(text: str) -> str:
    if not is_agent_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an agent id: letters and digits only, e.g. agent1001")
    return text


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="merger YAML naming the agents and pause reasons")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="longest wait per AMI action, default 5")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Run one agent action and print its outcome."""
    if not 0 < args.timeout <= 300:
        print(f"error: --timeout: {args.timeout} is not between 0 and 300 seconds", file=sys.stderr)
        return 2
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
    if args.agent_action == "status":
        return asyncio.run(_status(args, settings, model))
    return asyncio.run(_act(args, settings, model))


async def _connected(settings: AmiSettings) -> AmiClient | None:
    client = AmiClient(settings)
    try:
        await client.connect()
    except (AmiError, OSError) as exc:
        print(f"error: AMI {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        await client.close()
        return None
    return client


async def _act(args: argparse.Namespace, settings: AmiSettings, model: MergerConfig) -> int:
    async with audited_ami(args.database, settings) as session:
        if session is None:
            return 1
        client, writer = session
        outcome = await AgentControl(client, lambda: model).run(
            args.agent_action, args.agent, getattr(args, "reason", "")
        )
        by = args.by or f"cli:{getpass.getuser()}"
        audit(writer, model.region.id, _audit_row(by, outcome))
    data = outcome.to_dict()
    if args.json:
        print(to_json(data))
    else:
        rows = [(k, data[k]) for k in ("result", "agent", "action", "pause_reason", "reason") if data[k]]
        print(key_values([*rows, ("queues", ",".join(outcome.queues))]))
    return EXIT.get(outcome.result, EXIT_UNKNOWN)


def _audit_row(by: str, outcome: AgentOutcome) -> ActionRecord:
    detail = f"{outcome.agent} {','.join(outcome.queues)}".strip()
    if outcome.pause_reason:
        detail += f" reason={outcome.pause_reason}"
    return ActionRecord(
        at=dt.datetime.now(dt.UTC),
        actor=by,
        action=f"agent:{outcome.action}",
        result=outcome.result,
        detail=detail,
        reason=outcome.reason,
    )


async def _status(args: argparse.Namespace, settings: AmiSettings, model: MergerConfig) -> int:
    client = await _connected(settings)
    if client is None:
        return 1
    try:
        members = await AgentControl(client, lambda: model).members(args.agent)
    except AmiError as exc:
        print(f"error: AMI QueueStatus: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    rows = [
        {"agent": m.agent, "queue": m.queue, "penalty": m.penalty, "paused": m.paused, "reason": m.reason}
        for m in members
    ]
    if args.json:
        print(to_json(rows))
    elif not rows:
        print("no agent logged in" if args.agent is None else f"{args.agent} is not logged in")
    else:
        for r in rows:
            state = f"paused ({r['reason']})" if r["paused"] else "ready"
            print(f"{r['agent']:<12} {r['queue']:<28} penalty {r['penalty']!s:<3} {state}")
    return 0
