"""Today's agent figures on the wall (issue 18): logged-in time, pause time by reason, occupancy per agent.

Fed with the same member events as the state log (QueueMemberAdded / Removed / Pause) and seeded from
the log at start; the figures are :func:`hotline_cti.kpi.agent_time.agent_figures` over today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from hotline_cti.kpi.agent_time import AgentFigures, agent_figures
from hotline_cti.records.agent_book import AgentBook
from hotline_cti.records.agent_states import AgentStateChange
from hotline_cti.records.builder import event_time
from hotline_cti.records.model import CallRecord

KEEP = dt.timedelta(days=2)  # changes older than this are folded away (today needs only who was in at 00:00)


class AgentTimes:
    """The state changes the wall has seen, and what they add up to today."""

    def __init__(self) -> None:
        self.book = AgentBook()
        self.changes: list[AgentStateChange] = []

    def seed(self, changes: Iterable[AgentStateChange]) -> None:
        """Stored changes (start-up), before any live event."""
        stored = sorted(changes, key=lambda c: c.at)
        self.book.load(stored)
        known = {c.change_id for c in self.changes}
        self.changes = sorted([*stored, *(c for c in self.changes if c.change_id not in known)], key=lambda c: c.at)

    def add_stored(self, changes: Iterable[AgentStateChange]) -> bool:
        """Changes read from the log while running (a wall with no AMI link follows agents this way); True when any
        was new. Read again with an overlap, so known ones are skipped; a late one never undoes a newer state."""
        known = {c.change_id for c in self.changes}
        fresh = [c for c in changes if c.change_id not in known]
        if not fresh:
            return False
        self.changes = sorted([*self.changes, *fresh], key=lambda c: c.at)
        touched = {(c.agent, c.queue) for c in fresh}
        latest: dict[tuple[str, str], AgentStateChange] = {}
        for change in self.changes:  # oldest first: the last one of each touched member is its state now
            if (change.agent, change.queue) in touched:
                latest[(change.agent, change.queue)] = change
        self.book.load(latest.values())
        return True

    def apply(self, event: Mapping[str, str], now: dt.datetime) -> bool:
        """Fold one AMI event in; True when it changed an agent's state."""
        new = self.book.apply(event, event_time(event) or now.astimezone(dt.UTC))
        self.changes += new
        return bool(new)

    def rows(self, calls: Iterable[CallRecord], day: dt.datetime, now: dt.datetime) -> list[dict[str, Any]]:
        """Each agent today over all its queues (``queue`` ""), with its state now (paused and why, in or
        out), then each agent in each queue (the same figures for that queue alone)."""
        cutoff = day - KEEP
        if self.changes and self.changes[0].at < cutoff:
            self.changes = [c for c in self.changes if c.at >= cutoff]
        paused = {m.agent: m.reason for m in self.book.members.values() if m.paused}
        logged = {m.agent for m in self.book.members.values()}
        every = agent_figures(self.changes, calls, day, now)
        figures = {f.agent: f for f in every if not f.queue}
        for agent in logged - figures.keys():  # logged in this very moment: nothing counted yet
            figures[agent] = AgentFigures(agent, "")
        out = []
        for agent, f in sorted(figures.items()):
            state = "paused" if agent in paused else ("in" if agent in logged else "out")
            out.append({**f.to_dict(), "state": state, "reason": paused.get(agent, "")})
        for f in every:
            if f.queue:
                member = self.book.members.get((f.agent, f.queue))
                state = "out" if member is None else ("paused" if member.paused else "in")
                out.append({**f.to_dict(), "state": state, "reason": member.reason if member else ""})
        return out
