"""``hotline-cti callbacks``: the stored callbacks (回呼) an agent may act on, numbers masked."""

from __future__ import annotations

import argparse
import asyncio
import sys

import sqlalchemy as sa

from hotline_cti.kpi.accumulator import CHINA_TZ
from hotline_cti.privacy import mask_number
from hotline_cti.records.callback import CallbackRecord
from hotline_cti.storage.store import Store, resolve_url
from hotline_cti.text_output import table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``callbacks list``."""
    p = sub.add_parser(
        "callbacks",
        help="list the open callbacks (waiting, to retry, abandoned callers listed), numbers masked",
        description="The region's open callbacks from the database serve writes (docs/queues.md).",
    )
    psub = p.add_subparsers(dest="callbacks_command", required=True, metavar="ACTION")
    ls = psub.add_parser("list", help="print the open callbacks, oldest first")
    ls.add_argument("--database", metavar="URL", help="store to read (default $DATABASE_URL or ./hotline-cti.db)")
    ls.add_argument("--region", required=True, help="region id, e.g. gx")
    ls.set_defaults(func=run_list)


def _row(r: CallbackRecord) -> tuple[object, ...]:
    local = r.offered.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")
    retry = r.next_try.astimezone(CHINA_TZ).strftime("%H:%M") if r.next_try else None
    # The number is stored in clear while the callback is open; it is never printed so.
    return (
        r.callback_id,
        r.queue,
        mask_number(r.number),
        str(r.status),
        r.source,
        local,
        r.position,
        r.attempts,
        retry,
    )


def run_list(args: argparse.Namespace) -> int:
    try:
        url = resolve_url(args.database)
    except ValueError as exc:
        print(f"hotline-cti callbacks: error: {exc}", file=sys.stderr)
        return 2

    async def read() -> list[CallbackRecord]:
        store = await Store.open(url.render_as_string(hide_password=False))
        try:
            return await store.open_callbacks(args.region)
        finally:
            await store.close()

    try:
        rows = asyncio.run(read())
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        print(f"hotline-cti callbacks: error: cannot read the database: {type(exc).__name__}", file=sys.stderr)
        return 1
    headers = ("id", "queue", "number", "status", "source", "offered", "place", "attempts", "retry at")
    print(table(headers, [_row(r) for r in rows]))
    return 0
