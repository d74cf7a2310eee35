"""AMI events -> RecordBuilder -> BatchWriter and the listeners: the adapter around the pure builder.

One pipeline per AMI link. Every AMI event goes through its builder as it arrives (the builder is
fast and pure); what it finishes is handed to the writer, which never blocks, then to the
listeners of :attr:`RecordPipeline.records` (the wallboard), which also read its calls in progress.
After every (re)connection the client's resync hook re-reads the live
channels with CoreShowChannels, so calls that ended while the connection was
down are finished and calls that began meanwhile are adopted. A timer
expires calls whose hang-up never came.

Time: an event that carries Asterisk's ``Timestamp`` (manager.conf
``timestampevents = yes``, which we recommend) is recorded at that time, so a
record says when the call happened on the PBX, not when we heard of it (a
backlog after a reconnect, a replayed hour). Expiry and resync then use the
same clock: the last event time, moved on by the wall time since it arrived.
Without timestamps, everything uses the arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence

from hotline_cti.adapters.ami.client import AmiClient, AmiError
from hotline_cti.adapters.ami.protocol import Message, mask_numbers
from hotline_cti.clock import utc_now
from hotline_cti.events import Event
from hotline_cti.records.builder import Output, RecordBuilder, event_time
from hotline_cti.records.fanout import RecordFanout
from hotline_cti.records.model import CallRecord
from hotline_cti.storage.spool import Spool
from hotline_cti.storage.writer import BatchWriter

__all__ = ["RecordPipeline"]

log = logging.getLogger(__name__)


class RecordPipeline:
    """Feeds every event of ``client`` to ``builder`` and submits finished records and events to ``writer``
    (None: nothing is stored, e.g. a wallboard running alone), then to the listeners of :attr:`records`.

    Subscribes and registers the resync hook when built; ``start()`` runs the
    expiry timer, ``stop()`` stops it and unsubscribes. The writer's own
    ``start()``/``stop()`` stay with whoever owns it.
    """

    def __init__(
        self,
        client: AmiClient,
        builder: RecordBuilder,
        writer: BatchWriter | None,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        expire_every: float = 60.0,
        resync_timeout: float = 10.0,
        checkpoint: Spool | None = None,
        checkpoint_every: float = 0.5,
    ) -> None:
        self.client = client
        self.builder = builder
        self.records = RecordFanout(builder)  # the wallboard listens here: one builder per link
        self.writer = writer
        self.clock = clock
        self.expire_every = expire_every
        self.resync_timeout = resync_timeout
        self.resyncs = 0
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self._dirty = False
        self._checkpointing: asyncio.Task[None] | None = None
        self._stamped: tuple[dt.datetime, float] | None = None  # (last event Timestamp, loop time it arrived)
        self._timer: asyncio.Task[None] | None = None
        client.on("*", self.on_event)
        client.add_resync_hook(self.resync)

    async def start(self) -> None:
        """Take back the checkpointed calls in progress (before the first login's resync), start the timers."""
        if self.checkpoint is not None and self._checkpointing is None:
            items = []
            for body in self.checkpoint.load_open():
                with contextlib.suppress(ValueError):
                    items.append(json.loads(body))
            if items:
                log.info("records: %d call(s) in progress taken back from the last run", self.builder.restore(items))
            self._checkpointing = asyncio.create_task(self._checkpoint_loop(), name="records-checkpoint")
        if self._timer is None:
            self._timer = asyncio.create_task(self._expire_loop(), name="records-expiry")

    async def stop(self) -> None:
        """Stop the timers and stop listening (calls in progress stay in ``builder.snapshot()`` and the
        checkpoint, for the next run)."""
        self.client.off("*", self.on_event)
        for task in (self._timer, self._checkpointing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._timer = self._checkpointing = None
        if self.checkpoint is not None:
            self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        assert self.checkpoint is not None
        try:
            bodies = {cid: json.dumps(data, ensure_ascii=False) for cid, data in self.builder.open_calls().items()}
            self.checkpoint.save_open(bodies)
            self._dirty = False
        except Exception:
            log.exception("records: calls in progress not checkpointed")

    async def _checkpoint_loop(self) -> None:
        """Every ``checkpoint_every`` s (when something changed) save the calls in progress: a kill -9 loses at most
        that much of their progress, never the calls themselves."""
        while True:
            await asyncio.sleep(self.checkpoint_every)
            if self._dirty:
                self._save_checkpoint()

    def on_event(self, message: Message) -> None:
        """One AMI event: feed the builder, submit what it finished. Never raises (the event flow must go on)."""
        self._dirty = True
        try:
            at = self._event_time(message)
            self._submit(self.builder.feed(message, at))
        except Exception:
            log.exception("records: event %s not recorded: %s", message.name, mask_numbers(message.to_text()[:300]))

    def _event_time(self, message: Message) -> dt.datetime:
        at = event_time(message)  # a bad stamp falls back to the clock below: the event still counts
        if at is None:
            return self.now()
        self._stamped = (at, time.monotonic())
        return at

    def now(self) -> dt.datetime:
        """The pipeline's clock: the PBX's (last event Timestamp plus time since), else the wall clock."""
        if self._stamped is None:
            return self.clock()
        at, arrived = self._stamped
        return at + dt.timedelta(seconds=time.monotonic() - arrived)

    async def resync(self, client: AmiClient) -> None:
        """Resync hook: re-read the live channels and reconcile the calls in progress."""
        asked = self.now()
        try:
            result = await client.action("CoreShowChannels", timeout=self.resync_timeout)
        except AmiError as exc:
            log.warning("records: CoreShowChannels failed after reconnect (%s); calls in progress kept", exc)
            return
        channels = [m for m in result.events if m.name.lower() == "coreshowchannel"]
        self._dirty = True
        self._submit(self.builder.resync(channels, self.now(), seen_before=asked))
        self.resyncs += 1
        if self.checkpoint is not None:
            # Adopted calls go into the checkpoint now, not 0.5 s later: a process killed right after its login
            # (a restart loop) must not take the calls it adopted with it.
            self._save_checkpoint()

    def submit(self, outputs: Sequence[Output]) -> None:
        """Hand what the builder finished outside an AMI event (the CDR follower's) to the writer, as events do."""
        self._submit(outputs)

    def _submit(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        if self.checkpoint is None:
            self._submit_each(outputs)
        else:
            # A finished call's record and event are spooled, and the call leaves the checkpoint, in one
            # transaction: killed before it, the next run finishes the call from the checkpoint; after it, the
            # spool has it.
            with self.checkpoint.atomic():
                self._submit_each(outputs)
                self.checkpoint.forget_open(item.call_id for item in outputs if isinstance(item, CallRecord))
        self.records.publish(outputs)  # stored (or spooled) first: the wall never shows what was not kept

    def _submit_each(self, outputs: Sequence[Output]) -> None:
        if self.writer is None:
            return
        for item in outputs:
            if isinstance(item, CallRecord):
                self.writer.submit_call(item)
            elif isinstance(item, Event):
                self.writer.submit_event(item)
            else:
                self.writer.submit_transfer(item)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.expire_every)
            try:
                self._submit(self.builder.expire(self.now()))
            except Exception:
                log.exception("records: expiring old calls failed")
