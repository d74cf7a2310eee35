"""``hotline-cti callers add|remove|show``: the managed caller lists (repeat and nuisance callers).

Numbers are hashed with ``HOTLINE_NUMBER_KEY`` before anything is written; see docs/callers.md.
Exit codes: 0 done, 1 database error, 2 bad arguments or environment, 3 nothing to do (already on the
list, or not on it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from typing import Any

from hotline_cti.callers.hashing import NumberKeyError, number_key
from hotline_cti.callers.manage import HASH_SHOWN, ListChange, ListChangeError, apply_change, audit_record
from hotline_cti.storage.store import Store
from hotline_cti.text_output import table, to_json

EXIT_UNCHANGED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``callers`` (add, remove, show)."""
    p = sub.add_parser(
        "callers",
        help="managed caller lists for repeat and nuisance callers (numbers kept hashed)",
        description="Put numbers on the lists the merger file's 'callers' rules name, take them off, list them. "
        "Numbers are stored only as keyed hashes (HOTLINE_NUMBER_KEY); every change is audited. See docs/callers.md.",
    )
    csub = p.add_subparsers(dest="callers_command", required=True, metavar="ACTION")
    for op, text in (("add", "put a number on a list"), ("remove", "take a number off a list")):
        q = csub.add_parser(op, help=text, description=f"{text[0].upper()}{text[1:]}; exit 3 if nothing changes.")
        q.add_argument("list_name", metavar="LIST", help="list name, e.g. nuisance")
        q.add_argument("number", metavar="NUMBER", help="the caller's number, or - to read it from stdin")
        q.add_argument("--note", default="", help="why (kept with the entry; no personal data)")
        q.add_argument("--by", default="", metavar="WHO", help="who, for the audit (default cli:<login user>)")
        q.add_argument("--database", metavar="URL", help="database (default $DATABASE_URL or ./hotline-cti.db)")
        q.set_defaults(func=run_change, op=op, prog=q.prog)
    q = csub.add_parser("show", help="the entries of a list (hash prefixes, never numbers)")
    q.add_argument("list_name", metavar="LIST", nargs="?", help="one list (default: all)")
    q.add_argument("--database", metavar="URL", help="database (default $DATABASE_URL or ./hotline-cti.db)")
    q.add_argument("--json", action="store_true", help="print a JSON array")
    q.set_defaults(func=run_show, prog=q.prog)


def _error(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"{args.prog}: error: {message}", file=sys.stderr)
    return code


def run_change(args: argparse.Namespace) -> int:
    """Add or remove one number; audit it."""
    try:
        key = number_key()
    except NumberKeyError as exc:
        return _error(args, str(exc), 2)
    number = sys.stdin.readline().strip() if args.number == "-" else args.number
    by = args.by or f"cli:{getpass.getuser()}"
    change = ListChange(args.op, args.list_name, number, by if by.startswith("cli:") else f"cli:{by}", args.note)
    try:
        return asyncio.run(_change(args, key, change))
    except ListChangeError as exc:
        return _error(args, str(exc), 2)
    except ValueError as exc:  # a bad database URL
        return _error(args, str(exc), 2)


async def _change(args: argparse.Namespace, key: bytes, change: ListChange) -> int:
    now = dt.datetime.now(dt.UTC)
    try:
        store = await Store.open(args.database)
    except ValueError:  # a bad URL: reported by the caller as a usage error
        raise
    except Exception as exc:
        print(f"{args.prog}: error: database not reachable: {type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        try:
            outcome = await apply_change(store, key, change, now)
        except ListChangeError as exc:
            await store.add_actions([audit_record(change, None, now, str(exc))])
            raise
        await store.add_actions([audit_record(change, outcome, now)])
    finally:
        await store.close()
    print(f"{outcome.message}: {outcome.shown}")
    return 0 if outcome.result == "ok" else EXIT_UNCHANGED


def run_show(args: argparse.Namespace) -> int:
    """Print the entries of one list or of all."""
    try:
        rows = asyncio.run(_show(args.database, args.list_name))
    except ValueError as exc:
        return _error(args, str(exc), 2)
    except Exception as exc:
        return _error(args, f"database not reachable: {type(exc).__name__}", 1)
    shown = [
        {
            "list": r["list"],
            "hash": r["number_hash"][:HASH_SHOWN],
            "added_at": r["added_at"].isoformat(timespec="seconds"),
            "added_by": r["added_by"],
            "note": r["note"],
        }
        for r in rows
    ]
    if args.json:
        print(to_json(shown))
        return 0
    print(table(["list", "hash", "added at", "by", "note"], ([*r.values()] for r in shown)))
    print(f"{len(shown)} entries")
    return 0


async def _show(url: str | None, name: str | None) -> list[dict[str, Any]]:
    store = await Store.open(url)
    try:
        return await store.listed_rows(name)
    finally:
        await store.close()
