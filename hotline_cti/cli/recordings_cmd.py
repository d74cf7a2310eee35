"""``hotline-cti recordings cleanup``: delete call recordings older than the retention period (audited).

See docs/recording.md. Exit codes: 0 done (or nothing to do), 1 invalid config or some files could not be
removed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import re
import sys
import time
from pathlib import Path

from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.dialplan.recording import recordings_root
from hotline_cti.records.actions import ActionRecord
from hotline_cti.storage.recordings import delete, old_recordings
from hotline_cti.storage.store import Store
from hotline_cti.text_output import to_json

ACTION = "recordings:cleanup"
_AGE = re.compile(r"^([0-9]{1,5})([dh]?)$")


def age(text: str) -> dt.timedelta:
    """``180d``, ``36h`` or ``180`` (days): at least one hour, at most 100 years."""
    match = _AGE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age: write e.g. 180d (days) or 36h (hours)")
    value, unit = int(match.group(1)), match.group(2) or "d"
    delta = dt.timedelta(hours=value) if unit == "h" else dt.timedelta(days=value)
    if not dt.timedelta(hours=1) <= delta <= dt.timedelta(days=36500):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: between 1h and 36500d")
    return delta


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``recordings`` command group."""
    p = sub.add_parser("recordings", help="call recordings: delete those past the retention period")
    rsub = p.add_subparsers(dest="recordings_command", metavar="SUBCOMMAND", required=True)
    c = rsub.add_parser("cleanup", help="delete recordings older than --older-than (default: the YAML's retention)")
    c.add_argument("--config", required=True, type=Path, help="merger YAML (recording.dir, retention_days)")
    c.add_argument("--older-than", type=age, metavar="AGE", help="e.g. 180d or 36h (default recording.retention_days)")
    c.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing (still audited)")
    c.add_argument("--by", default="", metavar="WHO", help="who asks, for the audit (default cli:<login user>)")
    c.add_argument("--database", metavar="URL", help="audit database (default $DATABASE_URL or ./hotline-cti.db)")
    c.add_argument("--json", action="store_true", help="print the summary (and the files) as JSON")
    c.set_defaults(func=cleanup)


def cleanup(args: argparse.Namespace) -> int:
    """Find (and unless --dry-run delete) the old recordings, audit, print a summary."""
    try:
        model = load_checked(str(args.config)).model
    except ConfigError as exc:
        print_problems(exc, str(args.config), sys.stderr)
        return 1
    older: dt.timedelta = args.older_than or dt.timedelta(days=model.recording.retention_days)
    root = Path(recordings_root(model))
    files = old_recordings(root, time.time() - older.total_seconds())
    removed, freed, errors = (0, 0, []) if args.dry_run else delete(files)
    size = sum(f.size for f in files)
    what = f"{len(files)} files ({size} bytes) older than {_days(older)} under {root}"
    detail = ("dry run: " if args.dry_run else f"deleted {removed} ({freed} bytes) of ") + what
    result = "failed" if errors else "ok"
    record = ActionRecord(
        dt.datetime.now(dt.UTC), args.by or f"cli:{getpass.getuser()}", ACTION, result, detail, "; ".join(errors)[:400]
    )
    asyncio.run(_audit(args.database, model.region.id, record))
    if args.json:
        summary = {
            "dry_run": args.dry_run,
            "root": str(root),
            "older_than_days": older.total_seconds() / 86400,
            "files": [str(f.path) for f in files],
            "bytes": size,
            "removed": removed,
            "errors": errors,
        }
        print(to_json(summary))
    else:
        for f in files:
            print(f"{'would delete' if args.dry_run else 'deleted'} {f.path}")
        print(detail)
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


def _days(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"


async def _audit(url: str | None, region: str, record: ActionRecord) -> None:
    store = await Store.open(url)
    try:
        await store.add_actions([record])
        await store.append_events([record.event(region)])
    finally:
        await store.close()
