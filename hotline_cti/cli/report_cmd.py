"""``hotline-cti report``: KPIs of stored calls as a table, CSV or an HTML page with charts."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

import sqlalchemy as sa

from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.cli.db_errors import first_line
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.kpi.accumulator import CHINA_TZ
from hotline_cti.kpi.agent_time import agent_figures
from hotline_cti.kpi.callbacks import count_callbacks, with_callbacks
from hotline_cti.reports.render import FORMATS, render_report
from hotline_cti.storage.store import ENV_DATABASE_URL, Store, resolve_url
from hotline_cti.storage.tables import calls


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
    p.add_argument(
        "--node",
        metavar="NAME",
        help="only the calls of this Asterisk node (serve --node); default every node, combined, with a section per "
        "node ('' picks calls stored before nodes were named)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the merger file served: add the merger view (calls per old number per day, share, days left); its "
        "callback.counts_as_answered decides whether a reached callback answers its call",
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the calls, print or write the report."""
    if args.since and args.until and args.since >= args.until:
        print("hotline-cti report: error: argument --until: must be later than --since", file=sys.stderr)
        return 2
    try:
        url = resolve_url(args.database)
    except ValueError as exc:
        print(f"hotline-cti report: error: {exc}", file=sys.stderr)
        return 2
    missing = _missing_sqlite_file(url)
    if missing is not None:
        # Opening would create an empty database and report 0 calls as if the hotline had been silent.
        print(
            f"hotline-cti report: error: no database at {missing}: name the one serve writes to with "
            f"--database or ${ENV_DATABASE_URL}",
            file=sys.stderr,
        )
        return 1
    merger = None
    if args.config is not None:
        try:
            merger = load_config(args.config).model
        except ConfigError as exc:
            print(f"hotline-cti report: error: --config {args.config}:", file=sys.stderr)
            print_problems(exc, str(args.config), sys.stderr)
            return 1
    try:
        text, note = asyncio.run(_report(args, url, merger))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        print(f"hotline-cti report: error: cannot read {_shown(url)}: {first_line(exc)}", file=sys.stderr)
        return 1
    if note:
        print(f"hotline-cti report: {note}", file=sys.stderr)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _missing_sqlite_file(url: sa.URL) -> Path | None:
    """The SQLite file the URL names when it does not exist (None for PostgreSQL or in-memory)."""
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    path = Path(str(url.database))
    return None if path.exists() else path.resolve()


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


async def _report(args: argparse.Namespace, url: sa.URL, merger: MergerConfig | None) -> tuple[str, str]:
    """The report text, and a note for stderr when it has no calls (so 0 calls is never silent)."""
    store = await Store.open(url.render_as_string(hide_password=False))
    try:
        records = await store.calls_between(args.since, args.until, args.region, args.node)
        callbacks = await store.callbacks_between(args.since, args.until, args.region, args.node)
        note = "" if records else await _why_empty(store, url)
        # Agents (issue 18): the state log up to the window's end (who was in when it opened counts too).
        until = args.until or dt.datetime.now(dt.UTC)
        changes = await store.agent_states_between(None, until)
        since = args.since or min((c.at for c in changes), default=until)
        agents = agent_figures(changes, records, since, until)
    finally:
        await store.close()
    counts_as_answered = merger is not None and merger.callback is not None and merger.callback.counts_as_answered
    records = with_callbacks(records, callbacks, counts_as_answered)
    text = render_report(
        records,
        args.format,
        since=args.since,
        until=args.until,
        region=args.region,
        merger=merger,
        agents=agents,
        callbacks=count_callbacks(callbacks) if callbacks else None,
        node=args.node,
    )
    return text, note


async def _why_empty(store: Store, url: sa.URL) -> str:
    """Whether the database holds no calls at all or only none in the window asked for."""
    query = sa.select(sa.func.count(), sa.func.min(calls.c.started), sa.func.max(calls.c.started))
    async with store.engine.connect() as conn:
        count, first, last = (await conn.execute(query)).one()
    if not count:
        return f"the database {_shown(url)} holds no call records (is it the one serve writes to?)"
    return (
        f"no calls match; the database holds {count} call records from {_local(first)} to {_local(last)} (China time)"
    )


def _local(when: dt.datetime) -> str:
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
