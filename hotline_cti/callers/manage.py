"""Changing a managed caller list: one place for the CLI and MQTT, each change audited in ``actions``.

The number given is hashed at once (:mod:`.hashing`) and forgotten: the table, the audit row, the reply
and the logs hold only the first characters of its hash.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from hotline_cti.callers.hashing import hash_number
from hotline_cti.records.actions import ActionRecord
from hotline_cti.storage.store import Store

OPS = ("add", "remove")
_LIST_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HASH_SHOWN = 12  # characters of a hash shown to people: enough to tell entries apart


class ListChangeError(ValueError):
    """A change that cannot be made as asked; the message says why (never quoting the number)."""


@dataclass(frozen=True, slots=True)
class ListChange:
    """Put a number on a list or take it off."""

    op: str  # add | remove
    list_name: str
    number: str  # as given; hashed by apply_change, never stored
    by: str  # 'cli:<user>', 'mqtt:<sender>'
    note: str = ""


@dataclass(frozen=True, slots=True)
class ListChangeResult:
    """What became of a change: ``ok`` (done) or ``unchanged`` (already on / not on the list)."""

    result: str
    number_hash: str
    message: str

    @property
    def shown(self) -> str:
        """The hash's first characters, as people see it."""
        return self.number_hash[:HASH_SHOWN]


def check_change(change: ListChange, key: bytes) -> str:
    """The hash of the change's number; raises :class:`ListChangeError` for a bad op, list or number."""
    if change.op not in OPS:
        raise ListChangeError(f"unknown op {change.op!r}; known: {', '.join(OPS)}")
    if not _LIST_RE.match(change.list_name):
        raise ListChangeError(
            f"{change.list_name[:40]!r} is not a list name: lower-case letters, digits, '-' and '_', at most 40"
        )
    if len(change.number) > 40 or any(not (c.isdigit() or c in "+-() ") for c in change.number):
        raise ListChangeError("the number must be digits (with +, -, spaces or brackets), at most 40 characters")
    number_hash = hash_number(key, change.number)
    if number_hash is None:
        raise ListChangeError("the number has no digits")
    return number_hash


async def apply_change(store: Store, key: bytes, change: ListChange, now: dt.datetime) -> ListChangeResult:
    """Make the change in the database; raises :class:`ListChangeError` (bad input) or the database's error."""
    number_hash = check_change(change, key)
    if change.op == "add":
        done = await store.add_listed(change.list_name, number_hash, now, change.by[:80], change.note[:200])
        message = f"added to {change.list_name}" if done else f"already on {change.list_name}"
    else:
        done = await store.remove_listed(change.list_name, number_hash)
        message = f"removed from {change.list_name}" if done else f"not on {change.list_name}"
    return ListChangeResult("ok" if done else "unchanged", number_hash, message)


def audit_record(
    change: ListChange, outcome: ListChangeResult | None, now: dt.datetime, error: str = ""
) -> ActionRecord:
    """The ``actions`` row of a change (``callers:add`` / ``callers:remove``); the number appears only hashed."""
    action = f"callers:{change.op}" if change.op in OPS else "callers"
    detail = f"list={change.list_name[:40]}"
    if outcome is not None:
        detail += f" number={outcome.shown}"
    if outcome is None:
        return ActionRecord(now, change.by[:80], action, "refused" if error else "failed", detail, error[:400])
    # 'unchanged' is no audit result of its own: the action ran and found nothing to do (reason says so)
    return ActionRecord(now, change.by[:80], action, "ok", detail, "" if outcome.result == "ok" else outcome.message)
