"""Callbacks (回呼) as the dialplan reports them, and the retry and give-up rules. Pure: no I/O, no clock.

The generated dialplan sends one HotlineCallback UserEvent per step (hotline_cti/dialplan/callback.py):
``offered`` (the key was pressed), ``accepted`` (the number was confirmed; the placeholder joins the
queue at the caller's place), ``answered`` (an agent took the placeholder and hears who it is),
``dialled`` (the caller's phone was called: Result is Dial's DIALSTATUS) and ``unqueued`` (the
placeholder left the queue without an agent). :class:`CallbackBook` folds them into
:class:`CallbackRecord` rows and says when a callback is to be placed again; the events service stores
the rows and places the retries (hotline_cti/serve/callback_keeper.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from hotline_cti.privacy import mask_number


class CallbackStatus(StrEnum):
    OFFERED = "offered"  # the key was pressed, the number not confirmed (yet)
    WAITING = "waiting"  # the placeholder waits in the queue at the caller's place
    CALLING = "calling"  # an agent took it; the caller's phone rings
    RETRY = "retry"  # not reached; placed again at ``next_try``
    REACHED = "reached"  # the caller answered and talked to the agent
    GIVEN_UP = "given_up"  # every attempt failed, or the give-up time passed
    LISTED = "listed"  # an abandoned caller listed for a callback (policy); an agent decides
    DECLINED = "declined"  # offered, and the caller went back to their place (or hung up) instead


OPEN = frozenset({CallbackStatus.WAITING, CallbackStatus.CALLING, CallbackStatus.RETRY, CallbackStatus.LISTED})
CLOSED = frozenset({CallbackStatus.REACHED, CallbackStatus.GIVEN_UP, CallbackStatus.DECLINED})


@dataclass(frozen=True, slots=True)
class CallbackRules:
    """The merger file's ``callback:`` numbers the book needs."""

    retries: int = 2
    retry_after: float = 120.0
    give_up_after: float = 7200.0


@dataclass(slots=True)
class CallbackRecord:
    """One callback: the original call's id, where it waits, how far it got."""

    callback_id: str  # the original call's id (HOTLINE_CALL_ID)
    region: str
    queue: str
    number: str  # in clear while the callback is open (it must be dialled); masked once it is closed
    source: str  # key | divert | abandoned
    status: CallbackStatus
    offered: dt.datetime
    accepted: dt.datetime | None = None
    joined: dt.datetime | None = None  # when the caller first joined the queue
    position: int | None = None  # the caller's place when they pressed the key
    priority: int = 0
    attempts: int = 0  # calls placed to the caller
    next_try: dt.datetime | None = None
    answered: dt.datetime | None = None  # the last time an agent took it
    reached: dt.datetime | None = None
    agent: str = ""
    closed: dt.datetime | None = None
    node: str = ""  # the Asterisk node whose keeper keeps it (its hold channel lives there); '' on one unnamed node

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def view(self) -> dict[str, object]:
        """JSON-ready, with the number masked (the wallboard, MQTT)."""
        return {
            "id": self.callback_id,
            "queue": self.queue,
            "number": mask_number(self.number),
            "status": str(self.status),
            "source": self.source,
            "offered": self.offered.isoformat(),
            "joined": self.joined.isoformat() if self.joined else None,
            "position": self.position,
            "attempts": self.attempts,
            "next_try": self.next_try.isoformat() if self.next_try else None,
        }


class CallbackEventError(ValueError):
    """A HotlineCallback event whose fields are missing or malformed."""


def _int(event: Mapping[str, str], name: str) -> int | None:
    text = event.get(name, "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


def _epoch(event: Mapping[str, str], name: str) -> dt.datetime | None:
    value = _int(event, name)
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


class CallbackBook:
    """Open callbacks by id, fed with HotlineCallback events; each change returns the rows to store."""

    def __init__(self, region: str, rules: CallbackRules | None = None) -> None:
        self.region = region
        self.rules = rules or CallbackRules()
        self.records: dict[str, CallbackRecord] = {}

    def load(self, records: Iterable[CallbackRecord]) -> int:
        """Stored open callbacks (start-up: they survive a controller restart). Returns how many."""
        added = 0
        for rec in records:
            if rec.is_open:
                self.records[rec.callback_id] = rec
                added += 1
        return added

    def apply(self, event: Mapping[str, str], now: dt.datetime) -> list[CallbackRecord]:
        """Fold one HotlineCallback event in; the rows it changed. Raises CallbackEventError."""
        cid = event.get("CallId", "").strip()
        step = event.get("Step", "").strip()
        if not cid or len(cid) > 64:
            raise CallbackEventError(f"HotlineCallback {step or '?'} without a usable CallId")
        rec = self.records.get(cid)
        if step == "offered":
            if rec is not None and rec.is_open:
                return []  # a retry's placeholder does not offer; a second key press changes nothing
            rec = CallbackRecord(
                cid, self.region, event.get("Queue", "").strip(), "", "key", CallbackStatus.OFFERED, now
            )
            self.records[cid] = rec
            return [rec]
        if step == "accepted":
            number = event.get("Number", "").strip()
            if not number.isdigit() or not 5 <= len(number) <= 20:
                raise CallbackEventError(f"HotlineCallback accepted for {cid} without a number to call")
            if rec is None:
                rec = CallbackRecord(cid, self.region, "", "", "key", CallbackStatus.OFFERED, now)
                self.records[cid] = rec
            rec.queue = event.get("Queue", "").strip() or rec.queue
            rec.number, rec.status, rec.accepted = number, CallbackStatus.WAITING, now
            rec.joined = _epoch(event, "Joined")
            rec.position = _int(event, "Position")
            rec.priority = _int(event, "Priority") or 0
            rec.source = "divert" if rec.position is None else "key"
            return [rec]
        if rec is None:
            return []  # a step of a callback this book never saw (e.g. closed before a restart)
        if step == "answered":
            rec.status, rec.answered = CallbackStatus.CALLING, now
            rec.agent = event.get("Agent", "").strip()[:120]
            return [rec]
        if step == "dialled":
            rec.attempts += 1
            if event.get("Result", "").strip() == "ANSWER":
                rec.status, rec.reached = CallbackStatus.REACHED, now
                return [self._close(rec, now, CallbackStatus.REACHED)]
            return [self._failed(rec, now)]
        if step == "unqueued":
            # Out of the queue without an agent (its Originate timed out, the queue went away): try again or stop.
            if rec.status in (CallbackStatus.WAITING, CallbackStatus.RETRY):
                return [self._failed(rec, now)]
            return []
        raise CallbackEventError(f"HotlineCallback step {step[:40]!r} is not one of ours")

    def _failed(self, rec: CallbackRecord, now: dt.datetime) -> CallbackRecord:
        """Not reached: another attempt after ``retry_after``, unless the attempts or the time are used up."""
        deadline = (rec.accepted or rec.offered) + dt.timedelta(seconds=self.rules.give_up_after)
        next_try = now + dt.timedelta(seconds=self.rules.retry_after)
        if rec.attempts > self.rules.retries or next_try >= deadline:
            return self._close(rec, now, CallbackStatus.GIVEN_UP)
        rec.status, rec.next_try = CallbackStatus.RETRY, next_try
        return rec

    def _close(self, rec: CallbackRecord, now: dt.datetime, status: CallbackStatus) -> CallbackRecord:
        rec.status, rec.closed, rec.next_try = status, now, None
        rec.number = mask_number(rec.number)  # no longer needed in clear: kept masked, as in call records
        del self.records[rec.callback_id]
        return rec

    def declined(self, call_id: str, now: dt.datetime) -> CallbackRecord | None:
        """The caller left (hung up or went back to the queue) without confirming an offer."""
        rec = self.records.get(call_id)
        if rec is None or rec.status is not CallbackStatus.OFFERED:
            return None
        return self._close(rec, now, CallbackStatus.DECLINED)

    def due(self, now: dt.datetime) -> list[CallbackRecord]:
        """Callbacks whose retry time has come; each is marked waiting (its placeholder is being placed)."""
        out = []
        for rec in self.records.values():
            if rec.status is CallbackStatus.RETRY and rec.next_try is not None and rec.next_try <= now:
                rec.status, rec.next_try = CallbackStatus.WAITING, None
                out.append(rec)
        return out

    def expired(self, now: dt.datetime) -> list[CallbackRecord]:
        """Open callbacks past their give-up time (a placeholder lost with an Asterisk restart, a listed one)."""
        limit = dt.timedelta(seconds=self.rules.give_up_after)
        late = [r for r in self.records.values() if r.is_open and now - (r.accepted or r.offered) >= limit]
        return [self._close(r, now, CallbackStatus.GIVEN_UP) for r in late]

    def listed(self, call_id: str, queue: str, number: str, joined: dt.datetime, now: dt.datetime) -> CallbackRecord:
        """An abandoned caller listed for a callback by policy."""
        rec = CallbackRecord(
            call_id, self.region, queue, number, "abandoned", CallbackStatus.LISTED, now, joined=joined
        )
        self.records[call_id] = rec
        return rec
