"""``hotline-cti report``: KPIs of stored calls as a table, CSV or an HTML page with charts."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from hotline_cti.kpi.accumulator import CHINA_TZ
from hotline_cti.reports.render import FORMATS, render_report
from hotline_cti.storage.store import Store


def parse_when(text: str) -> dt.datetime:
    """An ISO date or date-time; without an offset it is China time (UTC+8). Raises ArgumentTypeError."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time (e.g. 2026-11-23 or 2026-11-23T08:00)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=CHINA_TZ)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="KPI report of stored calls (answer rate vs 95%%, waits, abandonment, transfers, satisfaction)",
        description="KPIs of the calls that started in [--since, --until): a table, CSV, or one HTML file with charts.",
    )
    p.add_argument("--database", metavar="URL", help="store to read (default $DATABASE_URL or ./hotline-cti.db)")
    p.add_argument("--since", type=parse_when, metavar="WHEN", help="first call start to include (ISO; China time)")
    p.add_argument("--until", type=parse_when, metavar="WHEN", help="calls starting before this (ISO; China time)")
    p.add_argument("--region", help="only this region id (e.g. gx)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the calls, print or write the report."""
    if args.since and args.until and args.since >= args.until:
        print("hotline-cti report: error: argument --until: must be later than --since", file=sys.stderr)
        return 2
    text = asyncio.run(_report(args))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


async def _report(args: argparse.Namespace) -> str:
    store = await Store.open(args.database)
    try:
        records = await store.calls_between(args.since, args.until, args.region)
    finally:
        await store.close()
    return render_report(records, args.format, since=args.since, until=args.until, region=args.region)
