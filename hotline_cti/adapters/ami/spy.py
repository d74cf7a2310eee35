"""Supervisor listen / whisper / barge through AMI: check the agent leg, call the supervisor's phone, audit.

The user names an agent's channel or a call; the channel handed to ChanSpy is only ever one Asterisk
lists right now (``CoreShowChannels``) that is bridged and carries ``HOTLINE_AGENT_LEG=1`` (set by the
agent-setup Gosub on queue members' channels and inherited by the agent's phone leg; cleared on transfer
targets' legs): never the caller, a transfer target, or a name typed by someone. For a call, the agent's
phone leg (not the Local channel in front of it) is chosen. The supervisor's phone is originated into ``[hotline-spy]`` with a ``ChannelId`` of
our own, so Asterisk's ``ChanSpyStart`` / ``ChanSpyStop`` for that spy leg give the start and end that
are stored (:class:`~hotline_cti.records.spy.SpyRecord`, one row, written again when the leg ends).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from hotline_cti.adapters.ami.client import AmiClient, AmiError
from hotline_cti.adapters.ami.protocol import Message
from hotline_cti.channel_vars import AGENT_LEG, CALL_ID, SPY_TARGET
from hotline_cti.clock import utc_now
from hotline_cti.dialplan.spy import CTX_SPY
from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.model import call_key, split_key
from hotline_cti.records.spy import SpyRecord, SpyRequest

log = logging.getLogger(__name__)

OK, REFUSED, FAILED, UNKNOWN = "ok", "refused", "failed", "unknown"
# A channel name as Asterisk makes them (tech/resource-sequence, ;1/;2 for Local): nothing ChanSpy or the
# dialplan would read as syntax (',', '(', '$', spaces).
CHANNEL = re.compile(r"^[A-Za-z0-9]+/[A-Za-z0-9_.@+#*-]+(;[12])?$")
PHONE = re.compile(r"^(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@+-]{1,80}$")
CALL = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


class SpySink(Protocol):
    """Where spy rows and their events go (``hotline_cti.storage.writer.BatchWriter``)."""

    def submit_spy(self, spy: SpyRecord) -> object: ...

    def submit_event(self, event: Event) -> object: ...


@dataclass(frozen=True, slots=True)
class SpyTimeouts:
    action: float = 5.0  # any AMI response
    ring: float = 30.0  # the supervisor's phone answering
    start: float = 5.0  # ChanSpyStart after the phone answered
    longest: float = 4 * 3600.0  # a spy leg still open after this is given up on (the row keeps no end)


class Refused(Exception):
    """The request names nothing a supervisor may listen to; the message says why."""


class SpyExecutor:
    """``await executor.execute(request)`` → the audit row once the spy leg started (or was refused / failed);
    ``await executor.ended(record)`` → the same row with its end, when the spy leg is over."""

    def __init__(
        self,
        client: AmiClient,
        sink: SpySink | None,
        region: str,
        *,
        timeouts: SpyTimeouts | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        node: str = "",
    ) -> None:
        self.client = client
        self.sink = sink
        self.region = region
        self.node = node  # the Asterisk node of ``client``: call ids '<node>:<Uniqueid>' in and out
        self.timeouts = timeouts or SpyTimeouts()
        self._clock = clock
        self._ends: dict[str, asyncio.Future[dt.datetime]] = {}
        self._watching: set[asyncio.Task[SpyRecord]] = set()  # held here: the loop keeps only weak references

    async def execute(self, request: SpyRequest) -> SpyRecord:
        """Check, originate, wait for ChanSpyStart, audit; never raises for a refused or failed request."""
        at = self._clock()
        record = SpyRecord("", at, request.requested_by, request.mode, request.target, request.phone, REFUSED)
        try:
            channel, call_id = await self._agent_leg(request)
        except Refused as exc:
            return self._audit(replace(record, reason=str(exc)))
        except AmiError as exc:
            return self._audit(replace(record, result=FAILED, reason=f"channel lookup failed: {exc}"))
        record = replace(record, call_id=call_key(self.node, call_id) if call_id else "", channel=channel)
        spyer = f"spy-{record.spy_id}"
        loop = asyncio.get_running_loop()
        started: asyncio.Future[dt.datetime] = loop.create_future()
        ended: asyncio.Future[dt.datetime] = loop.create_future()

        def on_start(message: Message) -> None:
            if _spyer_of(message) == spyer and not started.done():
                started.set_result(self._clock())

        def on_end(message: Message) -> None:
            kind = message.get("Event", "")
            mine = _spyer_of(message) == spyer if kind == "ChanSpyStop" else message.get("Uniqueid") == spyer
            if mine and not ended.done():
                ended.set_result(self._clock())

        def stop_listening(_: object = None) -> None:
            self.client.off("ChanSpyStart", on_start)
            self.client.off("ChanSpyStop", on_end)
            self.client.off("Hangup", on_end)
            self._ends.pop(record.spy_id, None)

        self.client.on("ChanSpyStart", on_start)
        self.client.on("ChanSpyStop", on_end)
        self.client.on("Hangup", on_end)
        try:
            answer = await self.client.originate(
                request.phone,
                context=CTX_SPY,
                exten=str(request.mode),
                caller_id=f'"{request.mode} {_short(channel)}" <spy>',
                variables={SPY_TARGET: channel, CALL_ID: call_id},
                ring_timeout=self.timeouts.ring,
                extra={"ChannelId": spyer},
            )
        except AmiError as exc:
            stop_listening()
            return self._audit(replace(record, result=UNKNOWN, reason=f"Originate: {exc}"))
        if answer.get("Response") != "Success":
            stop_listening()
            why = f"the supervisor's phone {request.phone} did not answer (reason {answer.get('Reason', '?')})"
            return self._audit(replace(record, result=FAILED, reason=why))
        try:
            when = await asyncio.wait_for(asyncio.shield(started), self.timeouts.start)
        except TimeoutError:
            stop_listening()
            with_end = ended.result() if ended.done() else None
            why = "ChanSpy did not start (the agent leg ended meanwhile?)"
            return self._audit(replace(record, result=FAILED, reason=why, ended=with_end))
        record = self._audit(replace(record, result=OK, started=when))
        ended.add_done_callback(stop_listening)
        self._ends[record.spy_id] = ended
        return record

    async def ended(self, record: SpyRecord, timeout: float | None = None) -> SpyRecord:
        """Wait for the spy leg of ``record`` to end and audit the row again with its end (same spy_id)."""
        future = self._ends.get(record.spy_id)
        if future is None:
            return record
        try:
            when = await asyncio.wait_for(asyncio.shield(future), timeout or self.timeouts.longest)
        except TimeoutError:
            return record
        return self._audit(replace(record, ended=when))

    def watch(self, record: SpyRecord) -> asyncio.Task[SpyRecord] | None:
        """Audit the end in the background (serve and the wallboard do not wait for it)."""
        if record.spy_id not in self._ends:
            return None
        task = asyncio.get_running_loop().create_task(self.ended(record), name=f"spy-end-{record.spy_id}")
        self._watching.add(task)
        task.add_done_callback(self._watching.discard)
        return task

    async def _agent_leg(self, request: SpyRequest) -> tuple[str, str]:
        """(agent leg, HOTLINE_CALL_ID) for the request, or :class:`Refused`."""
        if not PHONE.match(request.phone):
            raise Refused(f"{request.phone!r} is not a phone to call, e.g. PJSIP/sup1")
        target = request.target.strip()
        by_channel = "/" in target
        if not by_channel:  # a call id as the wall lists it ('<node>:<Uniqueid>'): this node's calls only
            owner, target = split_key(target)
            if self.node and owner not in ("", self.node):
                raise Refused(f"the call is on node {owner}, not on {self.node}")
        if by_channel and not CHANNEL.match(target):
            raise Refused("not a channel name")
        if not by_channel and not CALL.match(target):
            raise Refused("not a channel name or a call id")
        listing = await self.client.action("CoreShowChannels", timeout=self.timeouts.action)
        live = [m for m in listing.events if m.get("Channel")]
        if by_channel:
            me = next((m for m in live if m.get("Channel") == target), None)
            if me is None:
                raise Refused("no such channel now")
            candidates = [me]
        else:
            leg = next((m for m in live if m.get("Uniqueid") == target), None)
            if leg is None:
                raise Refused("no call with this id now")
            candidates = [m for m in live if m.get("Linkedid") == leg.get("Linkedid") and m.get("BridgeId")]
        agents: list[tuple[str, str]] = []
        for m in candidates:
            if not m.get("BridgeId"):
                continue
            name = m["Channel"]
            if await self._var(name, AGENT_LEG) == "1":
                agents.append((name, await self._var(name, CALL_ID)))
        if not agents:
            raise Refused("not an agent's leg in a call" if by_channel else "no agent is talking on this call")
        phones = [a for a in agents if not a[0].startswith("Local/")]
        agents = phones or agents  # the agent's own phone leg rather than the Local channel in front of it
        if len(agents) > 1:
            raise Refused(f"{len(agents)} agents on this call: name the agent's channel")
        name, call_id = agents[0]
        if not by_channel and target not in (call_id, _linked(live, name)):
            raise Refused("no agent is talking on this call")
        return name, call_id

    async def _var(self, channel: str, name: str) -> str:
        answer = await self.client.action(
            "Getvar", {"Channel": channel, "Variable": name}, timeout=self.timeouts.action, check=False
        )
        return (answer.get("Value", "") or "") if answer.success else ""

    def _audit(self, record: SpyRecord) -> SpyRecord:
        log.info(
            "spy %s %s by %s on %s: %s %s",
            record.spy_id,
            record.mode,
            record.requested_by,
            mask_numbers(record.channel),
            record.result,
            mask_numbers(record.reason),
        )
        if self.sink is not None:
            self.sink.submit_spy(record)
            self.sink.submit_event(record.event(self.region))
        return record


def _spyer_of(message: Message) -> str:
    return message.get("SpyerUniqueid", "")


def _linked(live: list[Message], channel: str) -> str:
    return next((m.get("Linkedid", "") for m in live if m.get("Channel") == channel), "")


def _short(channel: str) -> str:
    """The agent part of a channel name for the supervisor's display (no caller number can be in it)."""
    return mask_numbers(channel.split("/", 1)[-1].split("-", 1)[0].split("@", 1)[0])[:20]
