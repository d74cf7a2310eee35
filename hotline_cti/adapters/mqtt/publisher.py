"""Publish the outbox to MQTT, QoS 1, in seq order; nothing is lost while the broker is away.

Events are first written to the database outbox (``Store.append_events`` via
the ``BatchWriter``). This publisher reads the unsent rows in seq order,
publishes a window of them, and marks as sent only the run of rows the broker
acknowledged from the start of the window. A broker restart therefore means at
most a few events delivered twice (QoS 1 is at-least-once), never one missing
or out of order.

The writer tells the publisher when it committed outbox rows (``BatchWriter.on_outbox_commit(publisher.notify)``),
so an event leaves for the broker as soon as it is in the database; a slow poll (``poll``, 5 s) remains as a
safety net for rows written by anyone else (a previous lease holder's unsent rows after a takeover).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

import aiomqtt

from hotline_cti.adapters.ami.client import backoff_delays
from hotline_cti.adapters.mqtt.settings import MqttSettings

log = logging.getLogger(__name__)

PUBLISH_SLICE = 25  # publishes started between two yields to the event loop
SAFETY_POLL = 5.0  # seconds between looks at the outbox when nobody said there are new rows
DATABASE_RETRY = 1.0  # seconds before reading or marking the outbox again after a database error
STOP_WAIT = 5.0  # seconds stop() waits for the publishing task to end


class Outbox(Protocol):
    """The part of ``hotline_cti.storage.store.Store`` the publisher uses."""

    async def pending_events(self, limit: int = 500) -> list[tuple[int, str, str]]: ...

    async def mark_sent(self, seqs: Sequence[int]) -> None: ...


class OutboxPublisher:
    """``await publisher.start()`` runs it in the background; ``await publisher.stop()`` ends it."""

    def __init__(
        self,
        outbox: Outbox,
        settings: MqttSettings,
        *,
        poll: float = SAFETY_POLL,
        window: int = 500,
        batch: int = 500,
        backoff: tuple[float, float, float] = (0.2, 2.0, 10.0),
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.poll = poll
        self.window = window
        self.batch = batch
        self.backoff = backoff
        self.published = 0  # rows acknowledged by the broker and marked sent
        self.connections = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Run in the background until ``stop``."""
        self._task = asyncio.create_task(self.run(), name="mqtt-publisher")

    async def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds passed (False); for a clean shutdown."""
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            self.notify()
            try:
                if not await self.outbox.pending_events(1):
                    return True
            except Exception as exc:  # the database went away: what is unsent stays there
                log.warning("outbox not readable while draining (%s)", exc)
                return False
            await asyncio.sleep(min(self.poll, 0.05))
        return False

    async def stop(self) -> None:
        """Stop publishing; unsent rows stay in the outbox for the next run."""
        if self._task is not None:
            self._task.cancel()
            # Bounded: a client stuck in a broker's disconnect must not hold up serve's shutdown.
            done, _ = await asyncio.wait({self._task}, timeout=STOP_WAIT)
            if not done:
                log.warning("MQTT publisher did not stop within %.0f s; left to the event loop", STOP_WAIT)
            self._task = None

    async def run(self) -> None:
        """Connect, publish, and on any broker trouble wait (with backoff) and connect again; forever."""
        delays = backoff_delays(*self.backoff, jitter=0.1)
        while True:
            try:
                async with self.settings.client("publisher", pending_threshold=self.window) as client:
                    self.connections += 1
                    delays = backoff_delays(*self.backoff, jitter=0.1)
                    log.info("MQTT publisher connected to %s:%d", self.settings.host, self.settings.port)
                    await self._pump(client)
            except aiomqtt.MqttError as exc:
                delay = next(delays)
                log.warning(
                    "MQTT broker %s:%d: %s; retrying in %.1fs", self.settings.host, self.settings.port, exc, delay
                )
                await asyncio.sleep(delay)

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            # Cleared before the read, not after: a notify while reading still wakes the wait below.
            self._wake.clear()
            try:
                rows = await self.outbox.pending_events(self.batch)
            except Exception as exc:  # the database may be down: the rows are safe in it, wait
                log.warning("outbox not readable (%s); retrying", exc)
                await asyncio.sleep(min(self.poll * 5, DATABASE_RETRY))
                continue
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                continue
            for start in range(0, len(rows), self.window):
                await self._send(client, rows[start : start + self.window])

    async def _send(self, client: aiomqtt.Client, rows: list[tuple[int, str, str]]) -> None:
        # paho writes the PUBLISH packets in call order (tasks start in creation order); gather only overlaps
        # the waits for PUBACK. A yield every PUBLISH_SLICE publishes keeps a full window from holding the
        # event loop (and a routing decision) for its whole length.
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, (_, topic, payload) in enumerate(rows, 1):
                tasks.append(asyncio.create_task(client.publish(topic, payload.encode("utf-8"), qos=1)))
                if i % PUBLISH_SLICE == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        acked: list[int] = []
        failure: BaseException | None = None
        for (seq, _, _), outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = outcome
                break
            acked.append(seq)
        if acked:
            await self._mark(acked)
        if failure is not None:
            if isinstance(failure, aiomqtt.MqttError):
                raise failure
            raise aiomqtt.MqttError(f"publish failed: {failure!r}")

    async def _mark(self, seqs: list[int]) -> None:
        while True:
            try:
                await self.outbox.mark_sent(seqs)
            except Exception as exc:  # unmarked rows would be sent again: retry rather than move on
                log.warning("outbox mark_sent failed (%s); retrying", exc)
                await asyncio.sleep(min(self.poll * 5, DATABASE_RETRY))
                continue
            self.published += len(seqs)
            return
