"""Agent state through AMI (issue 18): log in, log out, pause with a reason, and the state log feed.

:class:`AgentControl` is what the CLI, MQTT commands and the wallboard call: ``QueueAdd`` into every
queue of the agent's skills at the YAML's penalties (``hotline_cti.dialplan.members``, the rule the
feature codes follow too), ``QueueRemove`` from every queue the agent is in, ``QueuePause`` with the
reason in all of them. Each action is sent once; an answer that never came is ``unknown``, never
retried (the client's rule).

:class:`AgentStateFeed` runs in the events service: every member event Asterisk sends, whoever
caused it, becomes a row of the agent state log; after every (re)connection QueueStatus is read and
what changed meanwhile is logged (``resync``); N unanswered rings in a row pause the agent with the
reason ``autopause``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hotline_cti.adapters.ami.client import ActionUnknownOutcome, AmiActionError, AmiClient, AmiError
from hotline_cti.adapters.ami.protocol import Message
from hotline_cti.clock import utc_now
from hotline_cti.config.schema import MergerConfig, is_agent_id
from hotline_cti.dialplan.members import agent_plans, member_interface
from hotline_cti.events import Event
from hotline_cti.records.agent_book import AUTOPAUSE_REASON, AgentBook, MemberState, member_of
from hotline_cti.records.agent_states import COMMANDS, AgentStateChange
from hotline_cti.records.builder import event_time

__all__ = ["ACTIONS", "AgentControl", "AgentOutcome", "AgentStateFeed"]

log = logging.getLogger(__name__)

ACTIONS = COMMANDS
OK, REFUSED, FAILED, UNKNOWN = "ok", "refused", "failed", "unknown"


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What became of one agent command."""

    agent: str
    action: str  # one of ACTIONS
    result: str  # ok, refused (not allowed / nothing to do), failed (Asterisk said no), unknown (no answer)
    queues: tuple[str, ...] = ()  # the queues it acted on
    reason: str = ""  # why refused, failed or unknown
    pause_reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "agent": self.agent,
            "action": self.action,
            "result": self.result,
            "queues": list(self.queues),
            "reason": self.reason,
            "pause_reason": self.pause_reason,
        }


class AgentControl:
    """Agent commands on one AMI client; ``config`` gives the merger config in service (agents, reasons)."""

    def __init__(self, client: AmiClient, config: Callable[[], MergerConfig]) -> None:
        self.client = client
        self.config = config

    async def run(self, action: str, agent: str, reason: str = "") -> AgentOutcome:
        """Dispatch one of :data:`ACTIONS` (MQTT and the wallboard name the action as text)."""
        if not is_agent_id(agent):
            return AgentOutcome(agent[:40], action, REFUSED, reason="not an agent id: letters and digits only")
        if action == "login":
            return await self.login(agent)
        if action == "logout":
            return await self.logout(agent)
        if action == "pause":
            return await self.pause(agent, reason)
        if action == "unpause":
            return await self.unpause(agent)
        return AgentOutcome(
            agent, action, REFUSED, reason=f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"
        )

    async def members(self, agent: str | None = None) -> list[MemberState]:
        """Every queue member Asterisk has now (QueueStatus), or one agent's (by member name or interface)."""
        fields = {"Member": agent} if agent else None
        result = await self.client.action("QueueStatus", fields)
        out = []
        for item in result.events:
            if item.name == "QueueMember" and item.get("Membership", "dynamic") != "static":
                member = member_of(item)
                if member is not None and (agent is None or agent in (member.agent, member.interface)):
                    out.append(member)
        return sorted(out, key=lambda m: (m.agent, m.queue))

    async def login(self, agent: str) -> AgentOutcome:
        """QueueAdd into every queue of the agent's skills; a queue it is in already counts as done."""
        plan = agent_plans(self.config()).get(agent)
        if plan is None:
            return AgentOutcome(agent, "login", REFUSED, reason=f"{agent!r} is not an agent of the merger config")
        done: list[str] = []
        for m in plan.memberships:
            fields = {
                "Queue": m.queue,
                "Interface": plan.interface,
                "Penalty": str(m.penalty),
                "MemberName": agent,
                "StateInterface": plan.state_interface,
            }
            failure = await self._send("QueueAdd", fields, allowed=("Already there",))
            if failure is not None:
                return AgentOutcome(agent, "login", failure[0], tuple(done), f"{m.queue}: {failure[1]}")
            done.append(m.queue)
        return AgentOutcome(agent, "login", OK, tuple(done))

    async def logout(self, agent: str) -> AgentOutcome:
        """QueueRemove from every queue the agent is in (whatever the YAML says now)."""
        try:
            members = await self.members(agent)
        except AmiError as exc:
            return AgentOutcome(agent, "logout", _result_of(exc), reason=str(exc))
        if not members:
            return AgentOutcome(agent, "logout", REFUSED, reason=f"{agent} is not logged in")
        done: list[str] = []
        for m in members:
            failure = await self._send(
                "QueueRemove", {"Queue": m.queue, "Interface": m.interface}, allowed=("Not there",)
            )
            if failure is not None:
                return AgentOutcome(agent, "logout", failure[0], tuple(done), f"{m.queue}: {failure[1]}")
            done.append(m.queue)
        return AgentOutcome(agent, "logout", OK, tuple(done))

    async def pause(self, agent: str, reason: str) -> AgentOutcome:
        """QueuePause in every queue with one of the YAML's pause reasons (示忙)."""
        reasons = [r.id for r in self.config().agent_settings.pause_reasons]
        if reason not in reasons:
            why = f"unknown pause reason {reason!r}: use one of {', '.join(reasons)}"
            return AgentOutcome(agent, "pause", REFUSED, reason=why, pause_reason=reason)
        return await self._pause(agent, True, reason)

    async def unpause(self, agent: str) -> AgentOutcome:
        """End the pause in every queue (示闲)."""
        return await self._pause(agent, False, "")

    async def autopause(self, agent: str, interface: str) -> AgentOutcome:
        """The automatic pause after unanswered rings (reason ``autopause``, not one a person may choose)."""
        return await self._pause(agent, True, AUTOPAUSE_REASON, interface)

    async def _pause(self, agent: str, paused: bool, reason: str, interface: str | None = None) -> AgentOutcome:
        action = "pause" if paused else "unpause"
        if interface is None:
            try:
                members = await self.members(agent)
            except AmiError as exc:
                return AgentOutcome(agent, action, _result_of(exc), reason=str(exc), pause_reason=reason)
            if not members:
                return AgentOutcome(agent, action, REFUSED, reason=f"{agent} is not logged in", pause_reason=reason)
            interface = members[0].interface or member_interface(agent)
            queues = tuple(m.queue for m in members)
        else:
            queues = ()
        fields = {"Interface": interface, "Paused": "true" if paused else "false"}
        if reason:
            fields["Reason"] = reason
        failure = await self._send("QueuePause", fields)
        if failure is not None:
            return AgentOutcome(agent, action, failure[0], reason=failure[1], pause_reason=reason)
        return AgentOutcome(agent, action, OK, queues, pause_reason=reason)

    async def _send(self, action: str, fields: dict[str, str], allowed: Sequence[str] = ()) -> tuple[str, str] | None:
        """None when Asterisk did it (or answered one of ``allowed``: nothing to do); else (result, why)."""
        try:
            await self.client.action(action, fields)
        except AmiActionError as exc:
            message = exc.response.get("Message", "")
            if any(text in message for text in allowed):
                return None
            return FAILED, message or str(exc)
        except AmiError as exc:
            return _result_of(exc), str(exc)
        return None


def _result_of(exc: AmiError) -> str:
    return UNKNOWN if isinstance(exc, ActionUnknownOutcome) else FAILED


class StateSink(Protocol):
    """Where state changes go (``hotline_cti.storage.writer.BatchWriter``)."""

    def submit_agent_state(self, change: AgentStateChange) -> object: ...

    def submit_event(self, event: Event) -> object: ...


@dataclass
class AgentStateFeed:
    """AMI member events and QueueStatus -> the agent state log, and the automatic pause.

    Subscribes when built; call :meth:`load` with the log's last rows before the first connection.
    """

    client: AmiClient
    sink: StateSink
    region: str
    control: AgentControl
    autopause_after: Callable[[], int] = lambda: 0
    clock: Callable[[], dt.datetime] = utc_now
    book: AgentBook = field(default_factory=AgentBook)
    resyncs: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for name in ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "AgentConnect"):
            self.client.on(name, self.on_event)
        self.client.on("AgentRingNoAnswer", self.on_ring_no_answer)
        self.client.add_resync_hook(self.resync)

    def load(self, last: Sequence[AgentStateChange]) -> None:
        """Start from the log's last change per agent and queue (``Store.last_agent_states``)."""
        self.book.load(last)

    def _submit(self, changes: Sequence[AgentStateChange]) -> None:
        for change in changes:
            self.sink.submit_agent_state(change)
            self.sink.submit_event(Event("agents", self.region, change.at, change.to_dict()))

    def on_event(self, message: Message) -> None:
        self._submit(self.book.apply(message, event_time(message) or self.clock()))

    def on_ring_no_answer(self, message: Message) -> None:
        self.book.autopause_after = self.autopause_after()
        agent = self.book.ring_no_answer(message)
        interface = message.get("Interface") or (self.book.interface_of(agent) if agent else None)
        if agent is None or not interface:
            return
        task = asyncio.create_task(self._autopause(agent, interface), name=f"autopause-{agent}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _autopause(self, agent: str, interface: str) -> None:
        outcome = await self.control.autopause(agent, interface)
        if outcome.result == OK:
            log.info("agent %s paused after %d unanswered rings", agent, self.book.autopause_after)
        else:
            log.warning("agent %s: automatic pause %s: %s", agent, outcome.result, outcome.reason)

    async def resync(self, client: AmiClient) -> None:
        """After a (re)connection: read QueueStatus in the background (the other resync hooks, e.g. the wall's,
        need not wait for it) and log what changed while nobody listened."""
        task = asyncio.create_task(self._resync(client), name="agents-resync")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resync(self, client: AmiClient) -> None:
        asked = self.book.mark()
        try:
            result = await client.action("QueueStatus")
        except AmiError as exc:
            log.warning("agent states not re-read after the AMI connection: %s", exc)
            return
        listed = [e for e in result.events if e.name == "QueueMember"]
        self._submit(self.book.resync(listed, self.clock(), since=asked))
        self.resyncs += 1

    async def close(self) -> None:
        """Unsubscribe; wait for automatic pauses under way."""
        for name in ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "AgentConnect"):
            self.client.off(name, self.on_event)
        self.client.off("AgentRingNoAnswer", self.on_ring_no_answer)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
