"""Commands over MQTT: ``hotline/<region>/commands/#`` in, ``replies/<id>`` and ``errors`` out.

A command is a JSON object::

    {"v": 1, "id": "req-42", "token": "...", "type": "transfer",
     "channel": "PJSIP/agent1001-00000012", "to": "110", "mode": "blind", "by": "wallboard-3"}

It runs only when ``token`` equals the shared secret from
``HOTLINE_MQTT_COMMAND_TOKEN`` (compared in constant time); the broker login
(``HOTLINE_MQTT_USER`` / ``HOTLINE_MQTT_PASSWORD``) is the first gate. Anything
malformed, unauthenticated or unknown is answered with an event on
``hotline/<region>/errors`` naming the topic and what is wrong (and a reply on
``replies/<id>`` when the id is usable); nothing here ever stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from hotline_cti.adapters.ami.client import backoff_delays
from hotline_cti.adapters.mqtt.settings import MqttSettings
from hotline_cti.core.transfer import TransferRequest
from hotline_cti.events import Event, load_versioned, topic
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.model import TransferMode, TransferRecord

log = logging.getLogger(__name__)

COMMAND_TYPES = ("transfer",)
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # becomes a topic level: no '/', '+' or '#'
MAX_PAYLOAD = 16_384

Transfer = Callable[[TransferRequest], Awaitable[TransferRecord]]


class CommandError(ValueError):
    """A command that cannot run; the message says why."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CommandHandler:
    """Turns one inbound message into the events that answer it (no I/O of its own besides ``transfer``)."""

    def __init__(
        self,
        region: str,
        token: str,
        transfer: Transfer | None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.region = region
        self._token = token.encode("utf-8")
        self._transfer = transfer
        self._clock = clock

    async def handle(self, topic_name: str, payload: bytes) -> list[Event]:
        """The reply and/or error events for one command message."""
        body: dict[str, Any] = {}
        try:
            body = self._parse(payload)
            self._authenticate(body)
            request = self._request(body)
        except CommandError as exc:
            return self.error_events(topic_name, body, str(exc))
        if self._transfer is None:
            return self.error_events(topic_name, body, "transfers are not available: serve runs without --ami")
        record = await self._transfer(request)
        data = record.to_dict()
        data["channel"], data["reason"] = mask_numbers(record.channel), mask_numbers(record.reason)
        reply = {"id": body["id"], "ok": record.result == "ok", "result": record.result, "transfer": data}
        return [Event(f"replies/{body['id']}", self.region, self._clock(), reply)]

    @staticmethod
    def _parse(payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_PAYLOAD:
            raise CommandError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
        try:
            body = load_versioned(payload)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        ident = body.get("id")
        if not isinstance(ident, str) or not _ID_RE.match(ident):
            raise CommandError("'id' must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        return body

    def _authenticate(self, body: dict[str, Any]) -> None:
        if not self._token:
            raise CommandError("commands are disabled: HOTLINE_MQTT_COMMAND_TOKEN is not set")
        token = body.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode("utf-8"), self._token):
            raise CommandError("not authenticated: missing or wrong 'token'")

    @staticmethod
    def _request(body: dict[str, Any]) -> TransferRequest:
        kind = body.get("type")
        if kind not in COMMAND_TYPES:
            raise CommandError(f"unknown command type {kind!r}; known: {', '.join(COMMAND_TYPES)}")
        for key in ("channel", "to"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise CommandError(f"transfer needs a non-empty string {key!r}")
        mode = body.get("mode", "blind")
        if mode not in [str(m) for m in TransferMode]:
            raise CommandError(f"unknown mode {mode!r}; known: {', '.join(str(m) for m in TransferMode)}")
        who = body.get("by", "")
        return TransferRequest(
            channel=body["channel"],
            target=body["to"],
            mode=TransferMode(mode),
            requested_by=f"mqtt:{who}" if isinstance(who, str) and who else "mqtt",
            from_line=str(body.get("from", "")),
        )

    def error_events(self, topic_name: str, body: dict[str, Any], message: str) -> list[Event]:
        """An error event naming the topic, plus a refusal on ``replies/<id>`` when the id is usable."""
        log.warning("MQTT command on %s refused: %s", topic_name, mask_numbers(message))
        ident = body.get("id") if isinstance(body.get("id"), str) and _ID_RE.match(body["id"]) else None
        now = self._clock()
        out = [Event("errors", self.region, now, {"topic": topic_name, "id": ident, "error": message})]
        if ident is not None:
            out.append(Event(f"replies/{ident}", self.region, now, {"id": ident, "ok": False, "error": message}))
        return out


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


class CommandListener:
    """Subscribes to the command topic, runs each command in its own task and publishes the answers."""

    def __init__(
        self, settings: MqttSettings, handler: CommandHandler, backoff: tuple[float, float, float] = (0.2, 2.0, 10.0)
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.backoff = backoff
        self.subscribed = asyncio.Event()  # set while subscribed (tests wait on it)
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def topic_filter(self) -> str:
        """``hotline/<region>/commands/#``."""
        return topic(self.handler.region, "commands", "#")

    async def start(self) -> None:
        """Listen in the background until ``stop``."""
        self._task = asyncio.create_task(self.run(), name="mqtt-commands")

    async def stop(self) -> None:
        """Stop listening; commands still running are cancelled."""
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def run(self) -> None:
        """Subscribe and serve; reconnect with backoff whenever the broker goes away."""
        delays = backoff_delays(*self.backoff, jitter=0.1)
        while True:
            try:
                async with self.settings.client("commands") as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self.subscribed.set()
                    delays = backoff_delays(*self.backoff, jitter=0.1)
                    async for message in client.messages:
                        task = asyncio.create_task(self._serve(client, str(message.topic), message.payload))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                delay = next(delays)
                log.warning(
                    "MQTT commands %s:%d: %s; retrying in %.1fs", self.settings.host, self.settings.port, exc, delay
                )
                await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client, topic_name: str, payload: object) -> None:
        try:
            events = await self.handler.handle(topic_name, _payload_bytes(payload))
        except Exception:  # a bug must not end the listener; the requester sees an error event
            log.exception("MQTT command on %s failed", topic_name)
            events = self.handler.error_events(topic_name, {}, "internal error while running the command")
        for event in events:
            try:
                await client.publish(event.topic, event.to_json().encode("utf-8"), qos=1)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT answer to %s not published: %s", topic_name, exc)
