"""``hotline-cti status``: the health of a running ``serve``, from its ``--status-file``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hotline_cti.health import StatusError, read_status


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` command."""
    p = sub.add_parser("status", help="health of a running serve (exit 0 healthy, 1 not, 2 no status file)")
    p.add_argument("--status-file", required=True, type=Path, help="the file serve was given as --status-file")
    p.add_argument("--json", action="store_true", help="print the health as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        health = read_status(args.status_file)
    except StatusError as exc:
        print(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(health.to_dict(), ensure_ascii=False))
        return 0 if health.healthy else 1
    verdict = "healthy" if health.healthy else "NOT HEALTHY"
    extra = f", not rewritten for {health.age:.0f} s: is serve running?" if health.stale else ""
    print(f"serve: {verdict}{extra}")
    for name, svc in sorted(health.services.items()):
        state = f"pid {svc.get('pid')}" if svc.get("running") else "not running"
        beat = svc.get("since_beat")
        beat_text = "no heartbeat yet" if beat is None else f"last heartbeat {beat:.2f} s ago"
        last = f", last exit: {svc['last_exit']}" if svc.get("last_exit") else ""
        print(
            f"  {name:8} {state}, {beat_text}, {svc.get('restarts', 0)} restarts, {svc.get('stalls', 0)} stalls{last}"
        )
    return 0 if health.healthy else 1
