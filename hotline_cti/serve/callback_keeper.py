"""The events service's side of callbacks: HotlineCallback events stored, retries placed, restarts survived.

Asterisk places a callback's first placeholder itself (the dialplan's Originate); this keeper stores
every step (:class:`~hotline_cti.records.callback.CallbackBook`), places the retries through AMI
``Originate`` (a placeholder at the head of the queue: the caller's turn had come), gives up by the
rules, lists (or calls back) abandoned callers who waited long, and on start loads the open callbacks
from the database, so a controller restart loses none. See docs/queues.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hotline_cti import channel_vars as cv
from hotline_cti.clock import utc_now
from hotline_cti.config.schema import AbandonedCallers, Callback
from hotline_cti.dialplan import names
from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.privacy import mask_number, mask_numbers
from hotline_cti.records.callback import (
    CallbackBook,
    CallbackEventError,
    CallbackRecord,
    CallbackRules,
    CallbackStatus,
)

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between looks at due retries, expiries and unsaved rows
LOST_AFTER = 10.0  # seconds: a waiting callback whose placeholder is in no queue after a re-read is placed again


class CallbackStore(Protocol):
    async def upsert_callbacks(self, records: Sequence[CallbackRecord]) -> None: ...

    async def open_callbacks(self, region: str, node: str | None = None) -> list[CallbackRecord]: ...


class Ami(Protocol):
    @property
    def connected(self) -> bool: ...

    def on(self, event: str, callback: Callable[[Any], Any]) -> None: ...

    def add_resync_hook(self, hook: Callable[[Any], Any]) -> None: ...

    async def action(self, name: str, fields: Mapping[str, str] | None = None) -> Any: ...


class CallbackKeeper:
    """Keeps the region's callbacks; feed it AMI events (it subscribes itself)."""

    def __init__(
        self,
        ami: Ami,
        store: CallbackStore,
        policy: Callback,
        region: str,
        clock: Callable[[], dt.datetime] = utc_now,
        node: str = "",
    ) -> None:
        self.ami = ami
        self.node = node  # this node's callbacks only: another node's keeper places its own
        self.store = store
        self.policy = policy
        self.clock = clock
        rules = CallbackRules(policy.retries, float(policy.retry_after), float(policy.give_up_after))
        self.book = CallbackBook(region, rules)
        self.unsaved: dict[str, CallbackRecord] = {}
        self.skipped = 0
        self.placed = 0  # retries placed through AMI
        self.loaded = False
        self._task: asyncio.Task[None] | None = None
        ami.on("UserEvent", self._on_user_event)
        ami.on("QueueCallerAbandon", self._on_abandon)
        ami.on("QueueCallerJoin", self._on_join)
        ami.on("Hangup", self._on_hangup)
        ami.add_resync_hook(self.resync)

    # -- AMI events --------------------------------------------------------------------------------------

    def _changed(self, records: Sequence[CallbackRecord]) -> None:
        for rec in records:
            rec.node = self.node
            self.unsaved[rec.callback_id] = rec

    def _on_user_event(self, event: Mapping[str, str]) -> None:
        if event.get("UserEvent") != cv.EVENT_CALLBACK:
            return
        try:
            self._changed(self.book.apply(event, self.clock()))
        except CallbackEventError as exc:
            self.skipped += 1
            log.warning("callback: skipped an event: %s", mask_numbers(str(exc)))

    def _on_join(self, event: Mapping[str, str]) -> None:
        # The caller went back to their place instead of confirming the offer.
        rec = self.book.declined(event.get("Uniqueid", ""), self.clock())
        if rec is not None:
            self._changed([rec])

    def _on_hangup(self, event: Mapping[str, str]) -> None:
        rec = self.book.declined(event.get("Uniqueid", ""), self.clock())
        if rec is not None:
            self._changed([rec])

    def _on_abandon(self, event: Mapping[str, str]) -> None:
        """A caller who hung up after waiting over ``abandoned_over`` s is listed (or called back) by policy."""
        limit = self.policy.abandoned_over
        channel = event.get("Channel", "")
        if limit is None or (channel.startswith("Local/") and f"@{names.CTX_CB_HOLD}" in channel):
            return
        wait = event.get("HoldTime", "").strip()
        number = event.get("CallerIDNum", "").strip()
        call_id = event.get("Uniqueid", "").strip()
        if not wait.isdigit() or int(wait) <= limit or not call_id or call_id in self.book.records:
            return
        if not number.isdigit() or not 5 <= len(number) <= 20:
            return  # no number to call back
        now = self.clock()
        rec = self.book.listed(call_id, event.get("Queue", ""), number, now - dt.timedelta(seconds=int(wait)), now)
        if self.policy.abandoned is AbandonedCallers.CALL:
            rec.status, rec.next_try = CallbackStatus.RETRY, now  # placed at the next tick
        self._changed([rec])
        log.info("callback: abandoned caller %s listed (waited %s s)", mask_number(number), wait)

    async def resync(self, client: Any) -> None:
        """After an AMI login: a waiting callback whose placeholder is in no queue (Asterisk restarted) is placed again."""
        result = await client.action("QueueStatus")
        present = {
            e.get("Channel", "").split("@")[0].removeprefix("Local/")
            for e in getattr(result, "events", ())
            if e.get("Event", "").lower() == "queueentry"
        }
        now = self.clock()
        for rec in list(self.book.records.values()):
            if rec.status is not CallbackStatus.WAITING or rec.callback_id in present:
                continue
            if rec.accepted is not None and (now - rec.accepted).total_seconds() < LOST_AFTER:
                continue  # just accepted: its placeholder may not have joined yet
            rec.status, rec.next_try = CallbackStatus.RETRY, now
            self._changed([rec])

    # -- placing and housekeeping -------------------------------------------------------------------------

    async def place(self, rec: CallbackRecord) -> bool:
        """Originate a placeholder for ``rec`` at the head of its queue; False when AMI refused."""
        remaining = self.policy.give_up_after - (self.clock() - (rec.accepted or rec.offered)).total_seconds()
        variables = {
            cv.CB_ID: rec.callback_id,
            cv.CB_NUMBER: rec.number,
            cv.CB_QUEUE: rec.queue,
            cv.CB_POSITION: "1",
            cv.CB_PRIO: str(rec.priority),
            cv.CB_ATTEMPT: str(rec.attempts + 1),
        }
        fields = {
            "Channel": f"Local/{rec.callback_id}@{names.CTX_CB_HOLD}",
            "Context": names.CTX_CB_DIAL,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(int(max(remaining, 60.0) * 1000)),
            "Async": "true",
            "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
        }
        try:
            await self.ami.action("Originate", fields)
        except Exception as exc:
            log.warning("callback %s not placed: %s; trying again later", rec.callback_id, type(exc).__name__)
            rec.status, rec.next_try = CallbackStatus.RETRY, self.clock() + dt.timedelta(seconds=TICK * 10)
            self._changed([rec])
            return False
        self.placed += 1
        return True

    async def tick(self) -> None:
        """Place due retries, give up expired callbacks, save unsaved rows (kept for the next tick on failure)."""
        now = self.clock()
        self._changed(self.book.expired(now))
        if self.ami.connected:
            for rec in self.book.due(now):
                self._changed([rec])
                await self.place(rec)
        if self.unsaved:
            rows = list(self.unsaved.values())
            try:
                await self.store.upsert_callbacks(rows)
            except Exception as exc:
                log.warning("callbacks not stored yet (%s); %d kept for the next try", type(exc).__name__, len(rows))
                return
            for rec in rows:
                if self.unsaved.get(rec.callback_id) is rec:
                    del self.unsaved[rec.callback_id]

    async def load(self) -> int:
        """The open callbacks stored before this start."""
        added = self.book.load(await self.store.open_callbacks(self.book.region, self.node))
        self.loaded = True
        if added:
            log.info("callback: %d open callback(s) taken over from the database", added)
        return added

    async def run(self) -> None:
        while not self.loaded:
            try:
                await self.load()
            except Exception as exc:
                log.warning("callback: stored callbacks not loaded yet (%s)", type(exc).__name__)
                await asyncio.sleep(TICK * 5)
        while True:
            await self.tick()
            await asyncio.sleep(TICK)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="callback-keeper")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self.tick()  # what changed last is stored before we go

    def view(self) -> dict[str, Any]:
        """The wallboard's callback tile: open callbacks (numbers masked), oldest first."""
        rows = sorted(self.book.records.values(), key=lambda r: r.offered)
        return {
            "open": [r.view() for r in rows if r.is_open],
            "waiting": sum(r.status is CallbackStatus.WAITING for r in rows),
            "retry": sum(r.status is CallbackStatus.RETRY for r in rows),
            "listed": sum(r.status is CallbackStatus.LISTED for r in rows),
        }
