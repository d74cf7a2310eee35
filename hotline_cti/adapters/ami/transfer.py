"""Carry out a one-key transfer plan through AMI, judge the result as Asterisk 20/22 reports it, audit it.

Every attempt, refused ones included, becomes a :class:`TransferRecord` handed
to the audit sink (``BatchWriter.submit_transfer``) and an event on
``hotline/<region>/transfers`` (``BatchWriter.submit_event``). Every action has
a timeout; an action whose answer never came is audited as ``unknown`` and is
never re-sent (a second BlindTransfer could move someone else's call). An
attended transfer audited ``unknown`` because the agent was still consulting
is audited again, under the same ``transfer_id``, when its ``AttendedTransfer``
event comes later (the store updates the row).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hotline_cti.adapters.ami.client import ActionUnknownOutcome, AmiClient, AmiError, NotConnected
from hotline_cti.adapters.ami.lines import handover_refusal
from hotline_cti.adapters.ami.protocol import Message
from hotline_cti.channel_vars import CALL_ID, CENTRE
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import (
    TRANSFER_CONTEXT,
    TRANSFER_EXTEN,
    AmiStep,
    ChannelFacts,
    Refusal,
    TransferPlan,
    TransferPolicy,
    TransferRequest,
    plan_transfer,
    resolve,
)
from hotline_cti.dialplan.names import CTX_XFER_CMD, CTX_XFER_OUT
from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.model import TransferRecord, call_key, split_key

log = logging.getLogger(__name__)

OK, REFUSED, FAILED, UNKNOWN = "ok", "refused", "failed", "unknown"


class AuditSink(Protocol):
    """Where audit rows and their events go (``hotline_cti.storage.writer.BatchWriter``)."""

    def submit_transfer(self, transfer: TransferRecord) -> object: ...

    def submit_event(self, event: Event) -> object: ...


@dataclass(frozen=True, slots=True)
class TransferTimeouts:
    """Seconds to wait for each kind of answer."""

    action: float = 5.0  # any AMI response
    event: float = 5.0  # BlindTransfer event after a successful response
    attended: float = 60.0  # AttendedTransfer: the agent consults the target first
    attended_late: float = 1800.0  # after that wait, a late AttendedTransfer still settles the audit row
    originate: float = 45.0  # the target answering the three-way call


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def channel_facts(name: str, channels: list[Message]) -> ChannelFacts | None:
    """Facts about ``name`` from CoreShowChannel items; None when Asterisk does not know it."""
    me = next((c for c in channels if c.get("Channel") == name), None)
    if me is None:
        return None
    bridge = me.get("BridgeId", "")
    peer = next((c for c in channels if bridge and c.get("BridgeId") == bridge and c is not me), None)
    return ChannelFacts(
        name=name,
        uniqueid=me.get("Uniqueid", ""),
        linkedid=me.get("Linkedid", ""),
        peer=peer.get("Channel", "") if peer else "",
        peer_uniqueid=peer.get("Uniqueid", "") if peer else "",
    )


def agent_side(uniqueid: str, channels: list[Message]) -> str:
    """The channel bridged to the caller leg ``uniqueid`` (the agent's side of the call); '' when none is."""
    caller = next((c for c in channels if c.get("Uniqueid") == uniqueid), None)
    bridge = caller.get("BridgeId", "") if caller is not None else ""
    peer = next((c for c in channels if bridge and c.get("BridgeId") == bridge and c is not caller), None)
    return peer.get("Channel", "") if peer is not None else ""


MOVING_ACTIONS = ("Redirect", "BlindTransfer")  # steps that move a call (Setvar, PlayDTMF do not)
CONSULTATION_GRACE = 1.0  # seconds an AttendedTransfer may follow the end of its consultation call


class _Consultation:
    """The consultation call of one attended transfer, from Newchannel / Hangup events."""

    def __init__(self, loop: asyncio.AbstractEventLoop, prefix: str, linkedid: str) -> None:
        self.prefix, self.linkedid = prefix, linkedid
        self.legs: set[str] = set()
        self.dialled: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[str] = loop.create_future()  # the hang-up cause

    def on_new(self, message: Message) -> None:
        if message.get("Channel", "").startswith(self.prefix) and message.get("Linkedid") == self.linkedid:
            self.legs.add(message.get("Uniqueid", ""))
            if not self.dialled.done():
                self.dialled.set_result(None)

    def on_hangup(self, message: Message) -> None:
        ours = message.get("Uniqueid") in self.legs and message.get("Channel", "").endswith(";1")
        if ours and not self.ended.done():
            cause = f"{message.get('Cause', '?')} {message.get('Cause-txt', '')}".strip()
            self.ended.set_result(f"cause {cause}")


class TransferExecutor:
    """Runs one-key transfers against Asterisk: ``await executor.execute(request)`` → the audit row."""

    def __init__(
        self,
        client: AmiClient,
        policy: Callable[[], TransferPolicy],
        audit: AuditSink | None = None,
        *,
        timeouts: TransferTimeouts | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        node: str = "",
    ) -> None:
        self.client = client
        self.node = node  # the Asterisk node of ``client``: audit rows name calls '<node>:<Uniqueid>'
        self._policy = policy  # a callable: a reloaded config applies to the next transfer
        self.audit = audit
        self.timeouts = timeouts or TransferTimeouts()
        self._clearing: set[asyncio.Task[None]] = set()  # TRANSFER_EXTEN clean-ups in flight (kept referenced)
        self._clock = clock

    async def execute(self, request: TransferRequest) -> TransferRecord:
        """Check, plan, act, judge and audit one transfer; never raises for a refused or failed one."""
        policy = self._policy()
        at = self._clock()
        early = resolve(policy, request)
        if isinstance(early, Refusal):
            return self._audit(policy, request, at, "", early.target or request.target, REFUSED, early.reason)
        try:
            listing = await self.client.action("CoreShowChannels", timeout=self.timeouts.action)
        except AmiError as exc:
            return self._audit(policy, request, at, "", early.key, FAILED, f"channel lookup failed: {exc}")
        if "/" not in request.channel:  # a call id ('<node>:<Uniqueid>' or bare): act on its agent's side
            owner, uniqueid = split_key(request.channel)
            elsewhere = bool(self.node) and owner not in ("", self.node)  # no node here: cannot tell, look
            channel = "" if elsewhere else agent_side(uniqueid, list(listing.events))
            if not channel:
                where = f" (it is on node {owner}, this is {self.node})" if elsewhere else ""
                why = f"no agent is talking on call {request.channel} here{where}"
                return self._audit(policy, request, at, "", early.key, REFUSED, why)
            request = replace(request, channel=channel)
        facts = channel_facts(request.channel, list(listing.events))
        if request.mode is TransferMode.THREEWAY and facts is not None and facts.peer:
            call_id, centre = await self._channel_var(facts.name, CALL_ID), await self._channel_var(facts.name, CENTRE)
            facts = replace(facts, hotline_call_id=call_id, hotline_centre=centre)
        plan = plan_transfer(policy, request, facts)
        if isinstance(plan, Refusal):
            call_id = facts.call_id if facts else ""
            return self._audit(policy, request, at, call_id, plan.target or early.key, REFUSED, plan.reason)
        if request.mode is TransferMode.HANDOVER and facts is not None:  # the claimed line, checked on the channel
            wrong = await handover_refusal(self.client, facts, request.from_line, self.timeouts.action)
            if wrong is not None:
                return self._audit(policy, request, at, plan.call_id, plan.destination.key, REFUSED, wrong)
        result, reason = await self._run(plan)
        record = self._audit(policy, request, at, plan.call_id, plan.destination.key, result, reason)
        if result == UNKNOWN and plan.steps[-1].judge == "event_only":
            self._settle_later(policy, record)  # no await since _with_event stopped listening: no event missed
        return record

    async def _channel_var(self, channel: str, name: str) -> str:
        """A variable of the agent's channel for the three-way target leg (HOTLINE_CALL_ID names the conference,
        HOTLINE_CENTRE an expert target's queue); '' when it cannot be read."""
        try:
            answer = await self.client.action(
                "Getvar", {"Channel": channel, "Variable": name}, timeout=self.timeouts.action, check=False
            )
        except AmiError as exc:
            log.warning("transfer: %s of %s not read (%s)", name, mask_numbers(channel), exc)
            return ""
        return (answer.get("Value", "") or "") if answer.success else ""

    def _settle_later(self, policy: TransferPolicy, record: TransferRecord) -> None:
        """Listen on for the AttendedTransfer of an ``unknown`` attended transfer and audit it again."""
        loop = asyncio.get_running_loop()
        started = loop.time()

        def on_event(message: Message) -> None:
            if record.channel not in (message.get("TransfererChannel"), message.get("OrigTransfererChannel")):
                return
            stop()
            waited = loop.time() - started + self.timeouts.attended
            if message.get("Result", "").lower() == "success":
                settled = replace(record, result=OK, reason=f"AttendedTransfer after {waited:.0f}s")
            else:
                why = f"AttendedTransfer result {message.get('Result', '?')} after {waited:.0f}s"
                settled = replace(record, result=FAILED, reason=why)
            self._submit(policy, settled)

        def stop() -> None:
            self.client.off("AttendedTransfer", on_event)
            give_up.cancel()

        self.client.on("AttendedTransfer", on_event)
        give_up = loop.call_later(self.timeouts.attended_late, stop)

    async def _run(self, plan: TransferPlan) -> tuple[str, str]:
        for index, step in enumerate(plan.steps):
            try:
                result, reason = await self._step(step, plan.destination.code, plan.call_id)
            except NotConnected as exc:
                result, reason = FAILED, f"{step.action} not sent: {exc}"
            except ActionUnknownOutcome as exc:
                result, reason = UNKNOWN, f"{step.action} sent, no answer: {exc}"
            except AmiError as exc:
                result, reason = FAILED, f"{step.action}: {exc}"
            if result != OK:
                named = any(dict(s.fields).get("Variable") == TRANSFER_EXTEN for s in plan.steps[:index])
                if named and step.judge != "event_only":  # (the atxfer code's own step restores them itself)
                    await self._clear_transfer_exten(dict(step.fields)["Channel"])
                moved = [s.action for s in plan.steps[:index] if s.action in MOVING_ACTIONS]
                if moved:  # an earlier step already moved the call: say so
                    reason += f" (after {', '.join(moved)} succeeded)"
                return result, reason
        return OK, ""

    async def _step(self, step: AmiStep, code: str, call_id: str) -> tuple[str, str]:
        fields = dict(step.fields)
        if step.judge == "originate":
            answer = await self.client.action(
                step.action,
                fields,
                timeout=self.timeouts.originate + self.timeouts.action,
                check=False,
                wait_event=step.event,
            )
            if not answer.success:
                return FAILED, f"{step.action}: {answer.get('Message', 'error')}"
            event = answer.events[-1] if answer.events else None
            if event is None or event.get("Response", "").lower() != "success":
                why = event.get("Reason", "?") if event else "no OriginateResponse"
                return FAILED, f"target did not answer the three-way call (Reason {why})"
            return OK, ""
        if step.judge == "response":
            answer = await self.client.action(step.action, fields, timeout=self.timeouts.action, check=False)
            if not answer.success:
                return FAILED, f"{step.action}: {answer.get('Message', 'error')}"
            return OK, ""
        return await self._with_event(step, fields, code, call_id)

    async def _with_event(self, step: AmiStep, fields: dict[str, str], code: str, call_id: str) -> tuple[str, str]:
        """BlindTransfer (response + event) and the atxfer code (only the AttendedTransfer event counts).

        For the atxfer code the consultation call (``Local/<code>@hotline-onekey-cmd``, same Linkedid) is
        watched too: once it exists TRANSFER_EXTEN / TRANSFER_CONTEXT are restored, and when it ends with no AttendedTransfer
        (the target busy or not answering, the agent aborting) the transfer is ``failed`` at once.
        """
        channel = fields["Channel"]
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[Message] = loop.create_future()
        attended = step.judge == "event_only"
        consult = _Consultation(loop, f"Local/{code}@{CTX_XFER_CMD}-", call_id)

        def on_event(message: Message) -> None:
            mine = (message.get("TransfererChannel"), message.get("OrigTransfererChannel"))
            if channel in mine and not seen.done():
                seen.set_result(message)

        self.client.on(step.event, on_event)
        if attended:
            self.client.on("Newchannel", consult.on_new)
            self.client.on("Hangup", consult.on_hangup)
        try:
            answer = await self.client.action(step.action, fields, timeout=self.timeouts.action, check=False)
            if not answer.success:
                if attended:
                    await self._clear_transfer_exten(channel)
                return FAILED, f"{step.action}: {answer.get('Message', 'error')}"
            if attended:
                task = loop.create_task(self._clear_when_dialled(channel, consult.dialled))
                self._clearing.add(task)
                task.add_done_callback(self._clearing.discard)
            wait = self.timeouts.attended if attended else self.timeouts.event
            either: set[asyncio.Future[Any]] = {seen, consult.ended}
            done, _ = await asyncio.wait(either, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                return UNKNOWN, f"no {step.event} event within {wait:g}s"
            if not seen.done():  # the consultation ended: an AttendedTransfer may still be on its way
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(seen), CONSULTATION_GRACE)
            if not seen.done():
                why = consult.ended.result()
                return FAILED, f"the consultation call to {code} ended ({why}) with no {step.event}"
            event = seen.result()
            if event.get("Result", "").lower() != "success":
                return FAILED, f"{step.event} result {event.get('Result', '?')}"
            return OK, ""
        finally:
            self.client.off(step.event, on_event)
            self.client.off("Newchannel", consult.on_new)
            self.client.off("Hangup", consult.on_hangup)

    async def _clear_when_dialled(self, channel: str, dialled: asyncio.Future[None]) -> None:
        """Restore TRANSFER_EXTEN / TRANSFER_CONTEXT once the consultation call exists (at most ``event`` s later).

        Left set, the agent's own next ``*2`` would dial this target again without asking for digits
        (and be taken for a command's).
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(dialled), self.timeouts.event)
        await self._clear_transfer_exten(channel)

    async def _clear_transfer_exten(self, channel: str) -> None:
        """TRANSFER_EXTEN unset and TRANSFER_CONTEXT back to the agents' own (hotline-agent-setup's)."""
        for name, value in ((TRANSFER_EXTEN, ""), (TRANSFER_CONTEXT, CTX_XFER_OUT)):
            fields = {"Channel": channel, "Variable": name, "Value": value}
            try:
                await self.client.action("Setvar", fields, timeout=self.timeouts.action, check=False)
            except AmiError as exc:  # the channel may be gone already: nothing left to restore
                log.info("transfer: %s not restored on %s (%s)", name, mask_numbers(channel), exc)
                return

    def _audit(
        self,
        policy: TransferPolicy,
        request: TransferRequest,
        at: dt.datetime,
        call_id: str,
        target: str,
        result: str,
        reason: str,
    ) -> TransferRecord:
        record = TransferRecord(
            call_id=call_key(self.node, call_id) if call_id else "",
            at=at,
            channel=request.channel,
            target=target,
            mode=request.mode,
            requested_by=request.requested_by,
            result=result,
            reason=reason,
            transfer_id=uuid.uuid4().hex,
        )
        self._submit(policy, record)
        return record

    def _submit(self, policy: TransferPolicy, record: TransferRecord) -> None:
        """Log the audit row and hand it, and its event, to the audit sink."""
        level = logging.INFO if record.result == OK else logging.WARNING
        log.log(
            level,
            "transfer %s -> %s (%s) by %s: %s %s",
            mask_numbers(record.channel),
            record.target,
            record.mode,
            record.requested_by,
            record.result,
            mask_numbers(record.reason),
        )
        if self.audit is not None:
            self.audit.submit_transfer(record)
            self.audit.submit_event(record.event(policy.region))
