"""Commands over MQTT: ``hotline/<region>/commands/#`` in, ``replies/...`` and ``errors`` out.

A command is a JSON object::

    {"v": 1, "id": "req-42", "type": "transfer",
     "channel": "PJSIP/agent1001-00000012", "to": "110", "mode": "blind", "by": "wallboard-3"}

or, naming the call instead of the agent's channel, ``"call": "nn-1:1700000000.1"`` (the call id of records
and events). With several Asterisk nodes on one broker every node's events service hears every command:
a transfer naming a call of another node (or ``"node": "nn-2"`` beside a channel) is left to that node,
silently (no reply, no error event, no audit here); one naming no node is acted on by each node that
hears it, as on a single node.

Who may send it is the broker's business (``HOTLINE_MQTT_COMMAND_AUTH=broker``, the default): every
client logs in with its own user, and the broker's ACL lets it publish only on
``hotline/<region>/commands/<its user>/<type>``, so the topic names the sender and no secret travels in a
payload. The reply goes to ``replies/<user>/<id>``, which only that user may read. The older ``token``
mode (a shared ``HOTLINE_MQTT_COMMAND_TOKEN`` in every command on ``commands/<type>``, replies on
``replies/<id>``) is kept for compatibility.

A command id is answered once: a replay of (sender, id) gets the first reply again and runs nothing
(:mod:`~hotline_cti.adapters.mqtt.replay`; in memory, and in the database across restarts). Commands wait in a bounded queue for a few workers (so a burst
never floods AMI into timeouts); past the bound the reply is ``busy`` at once. Anything malformed,
unauthenticated or unknown is answered with an event on ``hotline/<region>/errors`` naming the topic and
what is wrong (and a reply when the id is usable); nothing here ever stops the listener. Every command
with a usable id is audited (:class:`~hotline_cti.records.actions.ActionRecord`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
from pydantic import SecretStr

from hotline_cti.adapters.ami.agents import ACTIONS as AGENT_ACTIONS
from hotline_cti.adapters.ami.agents import AgentOutcome
from hotline_cti.adapters.ami.client import backoff_delays
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.replay import CommandLog, Key, ReplayCache, Reply
from hotline_cti.adapters.mqtt.settings import MqttSettings
from hotline_cti.callers.manage import ListChange, ListChangeError, ListChangeResult, audit_record
from hotline_cti.config.schema import is_agent_id
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import TransferRequest
from hotline_cti.events import Event, load_versioned, topic
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.actions import ActionRecord, ActionSink, audit
from hotline_cti.records.model import TransferRecord, split_key

log = logging.getLogger(__name__)

COMMAND_TYPES = ("transfer", "agent", "callers")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # becomes a topic level: no '/', '+' or '#'
_SENDER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # a broker user name as a topic level
MAX_PAYLOAD = 16_384
PURGE_EVERY = 3600.0  # seconds between deletions of stored replies older than the replay TTL

Transfer = Callable[[TransferRequest], Awaitable[TransferRecord]]
CallerLists = Callable[[ListChange], Awaitable[ListChangeResult]]  # puts a number on a list or takes it off

# Agent commands (issue 18): AgentControl.run(action, agent, reason).
Agents = Callable[[str, str, str], Awaitable[AgentOutcome]]


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """An agent command: log an agent in or out, pause (with a reason of the YAML) or unpause it."""

    agent: str
    action: str
    reason: str
    requested_by: str


class CommandError(ValueError):
    """A command that cannot run; the message says why."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Command:
    """An admitted command: who sent it (broker-verified in broker mode), its id and the transfer it asks for."""

    topic: str
    ident: str
    sender: str  # the broker user of the topic; '' in token mode (the token names nobody)
    request: TransferRequest | AgentRequest | ListChange

    @property
    def key(self) -> Key:
        """What a replay is recognised by."""
        return (self.sender, self.ident)

    @property
    def reply_to(self) -> str:
        """``replies/<sender>/<id>`` (broker mode) or ``replies/<id>`` (token mode), below the region."""
        return f"replies/{self.sender}/{self.ident}" if self.sender else f"replies/{self.ident}"


class CommandHandler:
    """Turns one inbound message into the events that answer it (no I/O of its own besides ``transfer``)."""

    def __init__(
        self,
        region: str,
        settings: CommandSettings | str,
        transfer: Transfer | None,
        clock: Callable[[], dt.datetime] = _utcnow,
        *,
        audit: ActionSink | None = None,
        replies: CommandLog | None = None,
        agents: Agents | None = None,
        callers: CallerLists | None = None,
        node: str = "",
    ) -> None:
        """``settings``: a :class:`CommandSettings`, or a bare token string for the older token mode.

        ``audit``: where the audit rows go (a ``BatchWriter``). ``replies``: where first replies are kept
        across restarts (the ``Store``); without it a replay is only recognised while the process runs.
        """
        if isinstance(settings, str):
            settings = CommandSettings(auth="token", token=SecretStr(settings))
        self.region = region
        self.node = node  # this events service's Asterisk node: transfers for another node's calls are left alone
        self.settings = settings
        self._token = settings.token.get_secret_value().encode("utf-8")
        self._transfer = transfer
        self._agents = agents
        self._callers = callers  # type 'callers' (docs/callers.md); None: refused as not available
        self._clock = clock
        self._audit = audit
        self._replies = replies
        self._purged_at: float | None = None  # loop time of the last purge of old stored replies
        self.replay = ReplayCache(settings.replay_ttl, settings.replay_max)

    async def handle(self, topic_name: str, payload: bytes) -> list[Event]:
        """The reply and/or error events for one command message, run at once (no queue)."""
        admitted = self.admit(topic_name, payload)
        if isinstance(admitted, list):
            return admitted
        previous = self.replay.get(admitted.key)
        if previous is not None:
            return await self.replayed(admitted, previous)
        return await self.run(admitted, self.replay.start(admitted.key))

    def admit(self, topic_name: str, payload: bytes) -> Command | list[Event]:
        """The command of a message, or the error events refusing it."""
        body: dict[str, Any] = {}
        try:
            body = self._parse(payload)
            sender = self._authenticate(topic_name, body)
            if self._elsewhere(body):
                log.debug(
                    "MQTT command %s on %s is for node %s: left to it", body.get("id"), topic_name, self._for(body)
                )
                return []
            request = self._request(body, sender)
        except CommandError as exc:
            return self.error_events(topic_name, body, str(exc))
        if isinstance(request, AgentRequest):
            if self._agents is None:
                return self.error_events(topic_name, body, "agent commands are not available: serve runs without --ami")
        elif isinstance(request, ListChange):
            if self._callers is None:
                return self.error_events(
                    topic_name, body, "caller lists are not available: serve runs without HOTLINE_NUMBER_KEY"
                )
        elif self._transfer is None:
            return self.error_events(topic_name, body, "transfers are not available: serve runs without --ami")
        return Command(topic_name, body["id"], sender, request)

    async def run(self, command: Command, first: asyncio.Future[Reply]) -> list[Event]:
        """Run the transfer, settle ``first`` with its reply (for replays) and audit it.

        A reply stored before a restart answers instead, and nothing runs.
        """
        stored = await self._stored_reply(command)
        if stored is not None:
            if not first.done():
                first.set_result(stored)
            self._audit_command(command, "replayed", "command id answered before a restart: first reply sent again")
            return [Event(command.reply_to, self.region, self._clock(), {**stored, "replayed": True})]
        if isinstance(command.request, ListChange):
            changed = await self._change_list(command, command.request)
            if not first.done():
                first.set_result(changed)
            await self._store_reply(command, changed)
            return [Event(command.reply_to, self.region, self._clock(), changed)]
        try:
            reply = await self._execute(command)
        except Exception:  # a bug must not end the listener nor leave replays waiting forever
            log.exception("MQTT command %s on %s failed", command.ident, command.topic)
            reply = {"id": command.ident, "ok": False, "error": "internal error while running the command"}
            self._audit_command(command, "failed", "internal error")
        if not first.done():
            first.set_result(reply)
        await self._store_reply(command, reply)  # before the reply goes out: a retry after it finds it
        return [Event(command.reply_to, self.region, self._clock(), reply)]

    async def _execute(self, command: Command) -> Reply:
        """Run the transfer or agent command; its reply (audited)."""
        request = command.request
        if isinstance(request, AgentRequest):
            assert self._agents is not None
            outcome = await self._agents(request.action, request.agent, request.reason)
            self._audit_command(command, outcome.result, outcome.reason)
            return {
                "id": command.ident,
                "ok": outcome.result == "ok",
                "result": outcome.result,
                "agent": outcome.to_dict(),
            }
        assert self._transfer is not None and isinstance(request, TransferRequest)
        record = await self._transfer(request)
        data = record.to_dict()
        data["channel"], data["reason"] = mask_numbers(record.channel), mask_numbers(record.reason)
        self._audit_command(command, record.result, record.reason)
        return {"id": command.ident, "ok": record.result == "ok", "result": record.result, "transfer": data}

    async def _change_list(self, command: Command, change: ListChange) -> Reply:
        """Run a caller-list change; its reply. The number is hashed at once and appears nowhere."""
        assert self._callers is not None
        now = self._clock()
        try:
            outcome = await self._callers(change)
        except ListChangeError as exc:
            audit(self._audit, self.region, audit_record(change, None, now, str(exc)))
            return {"id": command.ident, "ok": False, "result": "refused", "error": str(exc)}
        except Exception as exc:  # the database is away: nothing changed, the sender may try again
            log.warning("MQTT command %s: caller list not changed (%s)", command.ident, type(exc).__name__)
            audit(self._audit, self.region, audit_record(change, None, now))
            return {"id": command.ident, "ok": False, "result": "failed", "error": "the caller lists are not reachable"}
        audit(self._audit, self.region, audit_record(change, outcome, now))
        return {
            "id": command.ident,
            "ok": True,
            "result": outcome.result,
            "list": change.list_name,
            "hash": outcome.shown,
            "message": outcome.message,
        }

    async def _stored_reply(self, command: Command) -> Reply | None:
        if self._replies is None:
            return None
        since = self._clock() - dt.timedelta(seconds=self.settings.replay_ttl)
        try:
            return await self._replies.command_reply(command.sender, command.ident, since)
        except Exception as exc:  # the database is down: run (memory still stops replays while we run)
            log.warning("MQTT command %s: stored replies not readable (%s); running it", command.ident, exc)
            return None

    async def _store_reply(self, command: Command, reply: Reply) -> None:
        if self._replies is None:
            return
        now = self._clock()
        try:
            await self._replies.add_command_reply(command.sender, command.ident, now, reply)
            loop_now = asyncio.get_running_loop().time()
            if self._purged_at is None or loop_now - self._purged_at > PURGE_EVERY:
                self._purged_at = loop_now
                await self._replies.purge_command_replies(now - dt.timedelta(seconds=self.settings.replay_ttl))
        except Exception as exc:  # not fatal: the memory still knows the id until a restart
            log.warning(
                "MQTT command %s: reply not stored (%s); a replay after a restart would run it", command.ident, exc
            )

    async def replayed(self, command: Command, first: asyncio.Future[Reply]) -> list[Event]:
        """The first reply of a command id seen before (waiting for it if still running); nothing runs."""
        self._audit_command(command, "replayed", "command id already answered: first reply sent again")
        reply = dict(await asyncio.shield(first))
        reply["replayed"] = True
        return [Event(command.reply_to, self.region, self._clock(), reply)]

    def busy(self, command: Command, waiting: int) -> list[Event]:
        """The refusal of a command that found the queue full (it may be sent again with the same id)."""
        message = f"busy: {waiting} command(s) already waiting; nothing was done, try again later"
        log.warning("MQTT command %s from %s refused: %s", command.ident, command.sender or "token", message)
        self._audit_command(command, "busy", message)
        reply = {"id": command.ident, "ok": False, "result": "busy", "error": message}
        return [Event(command.reply_to, self.region, self._clock(), reply)]

    def _audit_command(self, command: Command, result: str, reason: str) -> None:
        r = command.request
        if isinstance(r, ListChange):
            row = audit_record(r, None, self._clock())
            record = ActionRecord(
                row.at, r.by[:80], row.action, result, f"id={command.ident} {row.detail}", reason[:400]
            )
            audit(self._audit, self.region, record)
            return
        if isinstance(r, AgentRequest):
            detail = f"id={command.ident} agent={r.agent} action={r.action}" + (
                f" reason={r.reason}" if r.reason else ""
            )
            action = "command:agent"
        else:
            detail = f"id={command.ident} to={r.target} mode={r.mode} channel={r.channel}"
            if r.from_line:
                detail += f" from={r.from_line}"
            action = "command:transfer"
        record = ActionRecord(self._clock(), r.requested_by, action, result, detail, reason[:400])
        audit(self._audit, self.region, record)

    @staticmethod
    def _for(body: dict[str, Any]) -> str:
        """The node a transfer names: its ``call``'s (``<node>:<Uniqueid>``), else its ``node`` field; '' for none."""
        call, node = body.get("call"), body.get("node")
        owner = split_key(call)[0] if isinstance(call, str) else ""
        return owner or (node if isinstance(node, str) else "")

    def _elsewhere(self, body: dict[str, Any]) -> bool:
        """A transfer for another node's call (that node answers it); only once this service knows its node."""
        return bool(self.node) and body.get("type") == "transfer" and self._for(body) not in ("", self.node)

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

    def _authenticate(self, topic_name: str, body: dict[str, Any]) -> str:
        """The sender: the topic level after ``commands`` (broker mode), '' once the token matched (token mode)."""
        if self.settings.auth == "broker":
            levels = topic_name.split("/")
            if len(levels) < 5 or levels[2] != "commands" or not _SENDER_RE.match(levels[3]):
                raise CommandError(
                    f"publish commands on hotline/{self.region}/commands/<your broker user>/<type>"
                    " (HOTLINE_MQTT_COMMAND_AUTH=broker)"
                )
            return levels[3]
        if not self._token:
            raise CommandError("commands are disabled: HOTLINE_MQTT_COMMAND_TOKEN is not set")
        token = body.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode("utf-8"), self._token):
            raise CommandError("not authenticated: missing or wrong 'token'")
        return ""

    @staticmethod
    def _request(body: dict[str, Any], sender: str) -> TransferRequest | AgentRequest | ListChange:
        kind = body.get("type")
        if kind not in COMMAND_TYPES:
            raise CommandError(f"unknown command type {kind!r}; known: {', '.join(COMMAND_TYPES)}")
        who = body.get("by", "")
        who = who if isinstance(who, str) else ""
        if sender:  # the broker vouches for the sender; 'by' is only what the client says about itself
            requested_by = f"mqtt:{sender}" + (f"/{who}" if who and who != sender else "")
        else:
            requested_by = f"mqtt:{who}" if who else "mqtt"
        if kind == "agent":
            return _agent_request(body, requested_by[:80])
        if kind == "callers":
            for key in ("op", "list", "number"):
                if not isinstance(body.get(key), str) or not body[key]:
                    raise CommandError(f"callers needs a non-empty string {key!r}")
            note = body.get("note", "")
            return ListChange(
                body["op"], body["list"], body["number"], requested_by[:80], note[:200] if isinstance(note, str) else ""
            )
        if isinstance(body.get("call"), str) and body["call"] and "/" not in body["call"] and not body.get("channel"):
            body = {**body, "channel": body["call"]}  # the executor finds the agent's side of the call
        if not isinstance(body.get("channel"), str) or not body["channel"]:
            raise CommandError("transfer needs a non-empty string 'channel' (the agent's) or 'call' (a call id)")
        if not isinstance(body.get("to"), str) or not body["to"]:
            raise CommandError("transfer needs a non-empty string 'to'")
        mode = body.get("mode", "blind")
        if mode not in [str(m) for m in TransferMode]:
            raise CommandError(f"unknown mode {mode!r}; known: {', '.join(str(m) for m in TransferMode)}")
        return TransferRequest(
            channel=body["channel"],
            target=body["to"],
            mode=TransferMode(mode),
            requested_by=requested_by[:80],
            from_line=str(body.get("from", "")),
        )

    def error_events(self, topic_name: str, body: dict[str, Any], message: str) -> list[Event]:
        """An error event naming the topic, plus a refusal on the reply topic when the id is usable."""
        log.warning("MQTT command on %s refused: %s", topic_name, mask_numbers(message))
        ident = body.get("id") if isinstance(body.get("id"), str) and _ID_RE.match(body["id"]) else None
        now = self._clock()
        out = [Event("errors", self.region, now, {"topic": topic_name, "id": ident, "error": message})]
        if ident is not None:
            levels = topic_name.split("/")
            sender = levels[3] if self.settings.auth == "broker" and len(levels) >= 5 else ""
            sender = sender if _SENDER_RE.match(sender) else ""
            reply_to = f"replies/{sender}/{ident}" if sender else f"replies/{ident}"
            out.append(Event(reply_to, self.region, now, {"id": ident, "ok": False, "error": message}))
            # Audited too (who: the broker user, or 'mqtt' when only a token could have said who it was).
            actor = f"mqtt:{sender}" if sender else "mqtt"
            kind = body.get("type")
            action = f"command:{kind[:24]}" if isinstance(kind, str) else "command"
            record = ActionRecord(now, actor, action, "refused", f"id={ident}", message[:400])
            audit(self._audit, self.region, record)
        return out


_REASON_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # the YAML's pause reason ids


def _agent_request(body: dict[str, Any], requested_by: str) -> AgentRequest:
    """``{"type": "agent", "agent": "agent1001", "action": "pause", "reason": "lunch"}``."""
    agent, action, reason = body.get("agent"), body.get("action"), body.get("reason", "")
    if not isinstance(agent, str) or not is_agent_id(agent):
        raise CommandError("agent needs 'agent': an agent id of letters and digits, e.g. agent1001")
    if action not in AGENT_ACTIONS:
        raise CommandError(f"unknown agent action {action!r}; known: {', '.join(AGENT_ACTIONS)}")
    if action == "pause" and (not isinstance(reason, str) or not _REASON_RE.match(reason)):
        raise CommandError("pause needs 'reason': a pause reason id of the merger config, e.g. lunch")
    return AgentRequest(agent, str(action), reason if action == "pause" else "", requested_by)


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


class CommandListener:
    """Subscribes to the command topic, queues each admitted command for a few workers, publishes the answers."""

    def __init__(
        self, settings: MqttSettings, handler: CommandHandler, backoff: tuple[float, float, float] = (0.2, 2.0, 10.0)
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.backoff = backoff
        self.subscribed = asyncio.Event()  # set while subscribed (tests wait on it)
        self._queue: asyncio.Queue[tuple[Command, asyncio.Future[Reply]]] = asyncio.Queue(handler.settings.queue)
        self._client: aiomqtt.Client | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def topic_filter(self) -> str:
        """``hotline/<region>/commands/#``."""
        return topic(self.handler.region, "commands", "#")

    async def start(self) -> None:
        """Listen in the background until ``stop``."""
        self._task = asyncio.create_task(self.run(), name="mqtt-commands")
        self._workers = [
            asyncio.create_task(self._work(), name=f"mqtt-command-worker-{n}")
            for n in range(self.handler.settings.workers)
        ]

    async def stop(self) -> None:
        """Stop listening; commands still running or waiting are cancelled."""
        tasks = [t for t in (self._task, *self._workers, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._workers = []

    async def run(self) -> None:
        """Subscribe and serve; reconnect with backoff whenever the broker goes away."""
        delays = backoff_delays(*self.backoff, jitter=0.1)
        while True:
            try:
                async with self.settings.client("commands") as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self._client = client
                    self.subscribed.set()
                    delays = backoff_delays(*self.backoff, jitter=0.1)
                    async for message in client.messages:
                        self._dispatch(str(message.topic), _payload_bytes(message.payload))
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                self._client = None
                delay = next(delays)
                log.warning(
                    "MQTT commands %s:%d: %s; retrying in %.1fs", self.settings.host, self.settings.port, exc, delay
                )
                await asyncio.sleep(delay)

    def _dispatch(self, topic_name: str, payload: bytes) -> None:
        """Decide at once, in arrival order: error, replay, busy or queued (nothing here awaits)."""
        handler = self.handler
        try:
            admitted = handler.admit(topic_name, payload)
        except Exception:  # a bug must not end the listener; the requester sees an error event
            log.exception("MQTT command on %s failed", topic_name)
            admitted = handler.error_events(topic_name, {}, "internal error while reading the command")
        if isinstance(admitted, list):
            self._spawn(self._publish(admitted))
            return
        previous = handler.replay.get(admitted.key)
        if previous is not None:
            self._spawn(self._answer_replay(admitted, previous))
        elif self._queue.full():
            self._spawn(self._publish(handler.busy(admitted, self._queue.qsize())))
        else:
            self._queue.put_nowait((admitted, handler.replay.start(admitted.key)))

    async def _answer_replay(self, command: Command, first: asyncio.Future[Reply]) -> None:
        await self._publish(await self.handler.replayed(command, first))

    async def _work(self) -> None:
        while True:
            command, first = await self._queue.get()
            try:
                await self._publish(await self.handler.run(command, first))
            finally:
                self._queue.task_done()

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def wrapped() -> None:
            await coro

        task = asyncio.create_task(wrapped())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _publish(self, events: list[Event]) -> None:
        client = self._client
        for event in events:
            if self.handler.node and not event.node:  # replies and errors name the node that answered
                event = dataclasses.replace(event, node=self.handler.node)
            if client is None:
                log.warning("MQTT answer on %s not published: not connected", event.topic)
                continue
            try:
                await client.publish(event.topic, event.to_json().encode("utf-8"), qos=1)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT answer on %s not published: %s", event.topic, exc)
