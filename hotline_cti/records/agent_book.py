"""What each agent is doing in each queue, kept from AMI events; the changes to store (pure, no I/O).

Fed with app_queue's member events (QueueMemberAdded, QueueMemberRemoved, QueueMemberPause) as they
come, and after every (re)connection with the members QueueStatus lists (``QueueMember``): whatever
differs from the book then changed while nobody listened (a controller restart, an AMI outage) and
is logged with ``source="resync"``. Loaded at start from the log's last row per agent and queue, so
a restart neither logs everybody in again nor loses a log-out made while it was down.

Also counts unanswered rings (AgentRingNoAnswer) per agent for the automatic pause after N in a row
(``agent_settings.autopause_after``; an answered call, a pause or a log-out starts the count again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from hotline_cti.records.agent_states import AgentState, AgentStateChange

AUTOPAUSE_REASON = "autopause"


@dataclass(frozen=True, slots=True)
class MemberState:
    """An agent logged in to one queue."""

    agent: str
    queue: str
    interface: str = ""
    penalty: int | None = None
    paused: bool = False
    reason: str = ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def member_of(event: Mapping[str, str]) -> MemberState | None:
    """The member an app_queue event names (QueueMember* events, or QueueStatus's QueueMember item);
    None when it names no queue or no member."""
    queue = event.get("Queue", "")
    interface = event.get("Interface") or event.get("Location") or ""
    agent = event.get("MemberName") or event.get("Name") or interface
    if not queue or not agent:
        return None
    return MemberState(
        agent=agent,
        queue=queue,
        interface=interface,
        penalty=_int(event.get("Penalty")),
        paused=event.get("Paused", "0") in ("1", "true", "yes"),
        reason=event.get("PausedReason", "") or "",
    )


class AgentBook:
    """Members by (agent, queue), and unanswered rings by agent."""

    def __init__(self, autopause_after: int = 0) -> None:
        self.autopause_after = autopause_after
        self.members: dict[tuple[str, str], MemberState] = {}
        self._rings: dict[str, int] = {}
        # How many member events were applied, and at which count each (agent, queue) last changed: a
        # QueueStatus list asked for at mark() is older than any event applied after it (see resync).
        self._applied = 0
        self._changed: dict[tuple[str, str], int] = {}

    def mark(self) -> int:
        """Where the event stream is now: pass it to :meth:`resync` for a list asked for at this point."""
        return self._applied

    def load(self, last: Iterable[AgentStateChange]) -> None:
        """Start from the log: each (agent, queue) whose last change was not a log-out is a member."""
        for change in last:
            key = (change.agent, change.queue)
            if change.state is AgentState.LOGOUT:
                self.members.pop(key, None)
                continue
            paused = change.state is AgentState.PAUSE
            old = self.members.get(key, MemberState(change.agent, change.queue, penalty=change.penalty))
            self.members[key] = replace(old, paused=paused, reason=change.reason if paused else "")

    def apply(self, event: Mapping[str, str], at: dt.datetime) -> list[AgentStateChange]:
        """The changes one AMI event makes (none for any other event, or one that changes nothing)."""
        name = event.get("Event", "")
        if name == "AgentConnect":
            self._rings.pop(event.get("MemberName") or event.get("Interface") or "", None)
            return []
        if name not in ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause"):
            return []
        member = member_of(event)
        if member is None:
            return []
        self._applied += 1
        self._changed[(member.agent, member.queue)] = self._applied
        if name == "QueueMemberRemoved":
            return self._leave(member, at, "ami")
        return self._arrive(member, at, "ami")

    def resync(
        self, listed: Iterable[Mapping[str, str]], at: dt.datetime, since: int | None = None
    ) -> list[AgentStateChange]:
        """The changes that make the book what QueueStatus lists now (dynamic members; static ones are
        the site's own and never logged in or out).

        ``since`` (:meth:`mark` when the list was asked for): a member an event changed after that keeps the
        event's state. The events on a live connection are complete and newer than the list, which a log-in
        or pause racing the request would otherwise undo (a LOGOUT, then a second LOGIN).
        """
        now: dict[tuple[str, str], MemberState] = {}
        for item in listed:
            if item.get("Membership", "dynamic") == "static":
                continue
            member = member_of(item)
            if member is not None:
                now[(member.agent, member.queue)] = member
        if since is not None:
            newer = {key for key, count in self._changed.items() if count > since}
            now = {key: member for key, member in now.items() if key not in newer}
        else:
            newer = set()
        changes: list[AgentStateChange] = []
        for key in sorted(set(self.members) - set(now) - newer):
            changes += self._leave(self.members[key], at, "resync")
        for key in sorted(now):
            changes += self._arrive(now[key], at, "resync")
        return changes

    def ring_no_answer(self, event: Mapping[str, str]) -> str | None:
        """Count an AgentRingNoAnswer of a logged-in agent; the agent to pause when it reached
        ``autopause_after`` in a row."""
        agent = event.get("MemberName") or event.get("Interface") or ""
        # Only agents who log in (dynamic members the book knows): a site's static members are its own.
        if not self.autopause_after or not any(m.agent == agent for m in self.members.values()):
            return None
        count = self._rings.get(agent, 0) + 1
        self._rings[agent] = count
        if count < self.autopause_after:
            return None
        paused = [m for m in self.members.values() if m.agent == agent and m.paused]
        self._rings.pop(agent, None)
        return None if paused else agent

    def interface_of(self, agent: str) -> str | None:
        """The member interface of a logged-in agent (any of its queues)."""
        return next((m.interface for m in self.members.values() if m.agent == agent and m.interface), None)

    def _arrive(self, member: MemberState, at: dt.datetime, source: str) -> list[AgentStateChange]:
        key = (member.agent, member.queue)
        old = self.members.get(key)
        self.members[key] = member
        changes: list[AgentStateChange] = []
        if old is None:
            changes.append(
                AgentStateChange(
                    at, member.agent, member.queue, AgentState.LOGIN, penalty=member.penalty, source=source
                )
            )
        if member.paused and (old is None or not old.paused or old.reason != member.reason):
            source = AUTOPAUSE_REASON if member.reason == AUTOPAUSE_REASON and source == "ami" else source
            changes.append(
                AgentStateChange(at, member.agent, member.queue, AgentState.PAUSE, member.reason, source=source)
            )
            self._rings.pop(member.agent, None)
        elif not member.paused and old is not None and old.paused:
            changes.append(AgentStateChange(at, member.agent, member.queue, AgentState.READY, source=source))
        return changes

    def _leave(self, member: MemberState, at: dt.datetime, source: str) -> list[AgentStateChange]:
        old = self.members.pop((member.agent, member.queue), None)
        if old is None:
            return []
        if not any(m.agent == member.agent for m in self.members.values()):
            self._rings.pop(member.agent, None)
        return [AgentStateChange(at, member.agent, member.queue, AgentState.LOGOUT, source=source)]
