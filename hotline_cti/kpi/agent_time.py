"""Agent KPIs (issue 18) from the agent state log and the call records: logged-in time, pause time by
reason, talk time and occupancy (占用率), per agent and queue, over a window. Pure: no I/O.

* logged in: from a ``login`` to the ``logout`` of the same agent and queue, cut to the window (an agent
  still in at the window's end counts to the end);
* paused: from a ``pause`` to ``ready``, the next ``pause`` (a new reason) or ``logout``, by reason;
* talk: the call records' talk time of calls the agent answered in that queue (started in the window);
* occupancy: talk / (logged in - paused), the share of the available time spent talking; None when the
  agent was never available.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from hotline_cti.records.agent_states import AgentState, AgentStateChange
from hotline_cti.records.model import CallRecord


@dataclass
class AgentFigures:
    """One agent in one queue (``queue`` "" = all its queues together) over the window."""

    agent: str
    queue: str
    logged_in: float = 0.0  # seconds
    paused: dict[str, float] = field(default_factory=dict)  # reason -> seconds
    talk: float = 0.0
    calls: int = 0

    @property
    def paused_total(self) -> float:
        return sum(self.paused.values())

    @property
    def available(self) -> float:
        """Logged in and not paused."""
        return max(0.0, self.logged_in - self.paused_total)

    @property
    def occupancy(self) -> float | None:
        return min(1.0, self.talk / self.available) if self.available > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "agent": self.agent,
            "queue": self.queue,
            "logged_in": round(self.logged_in, 1),
            "paused": {k: round(v, 1) for k, v in sorted(self.paused.items())},
            "talk": round(self.talk, 1),
            "calls": self.calls,
            "occupancy": None if self.occupancy is None else round(self.occupancy, 4),
        }


Interval = tuple[dt.datetime, dt.datetime]


def _clip(start: dt.datetime, end: dt.datetime, since: dt.datetime, until: dt.datetime) -> list[Interval]:
    """[start, end) cut to [since, until); empty when outside."""
    s, e = max(start, since), min(end, until)
    return [(s, e)] if e > s else []


def _union_seconds(intervals: Iterable[Interval]) -> float:
    """Seconds covered by the union of ``intervals`` (an agent in three queues at once is logged in once)."""
    total, end = 0.0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += (e - s).total_seconds()
            end = e
        elif e > end:
            total += (e - end).total_seconds()
            end = e
    return total


def agent_figures(
    changes: Iterable[AgentStateChange], calls: Iterable[CallRecord], since: dt.datetime, until: dt.datetime
) -> list[AgentFigures]:
    """Figures per (agent, queue), then per agent over all its queues (queue ""), sorted by agent then queue.

    ``changes`` may start before ``since`` (they say who was logged in when the window opened); later
    than ``until`` they are ignored.
    """
    logins: dict[tuple[str, str], list[Interval]] = {}
    pauses: dict[tuple[str, str], dict[str, list[Interval]]] = {}
    by_key: dict[tuple[str, str], list[AgentStateChange]] = {}
    for change in changes:
        if change.at < until:
            by_key.setdefault((change.agent, change.queue), []).append(change)
    for key, items in by_key.items():
        ins, paused = logins.setdefault(key, []), pauses.setdefault(key, {})
        login: dt.datetime | None = None
        pause: tuple[dt.datetime, str] | None = None
        for c in sorted(items, key=lambda c: c.at):
            if pause is not None and c.state in (AgentState.PAUSE, AgentState.READY, AgentState.LOGOUT):
                paused.setdefault(pause[1], []).extend(_clip(pause[0], c.at, since, until))
                pause = None
            if c.state is AgentState.LOGIN and login is None:
                login = c.at
            elif c.state is AgentState.LOGOUT and login is not None:
                ins.extend(_clip(login, c.at, since, until))
                login = None
            elif c.state is AgentState.PAUSE:
                pause = (c.at, c.reason or "-")
        if login is not None:
            ins.extend(_clip(login, until, since, until))
        if pause is not None:
            paused.setdefault(pause[1], []).extend(_clip(pause[0], until, since, until))
    rows: dict[tuple[str, str], AgentFigures] = {}
    for key, ins in logins.items():
        seconds = {r: _union_seconds(i) for r, i in pauses[key].items() if i}
        if ins or seconds:
            rows[key] = AgentFigures(*key, logged_in=_union_seconds(ins), paused=seconds)
    for call in calls:
        if call.agent and call.talk and since <= call.started < until:
            figures = rows.setdefault((call.agent, call.queue), AgentFigures(call.agent, call.queue))
            figures.talk += call.talk
            figures.calls += 1
    totals: dict[str, AgentFigures] = {}
    for (agent, _queue), f in rows.items():
        t = totals.setdefault(agent, AgentFigures(agent, ""))
        t.talk += f.talk
        t.calls += f.calls
    for agent, t in totals.items():
        keys = [k for k in logins if k[0] == agent]
        t.logged_in = _union_seconds(i for k in keys for i in logins[k])
        reasons = {r for k in keys for r in pauses[k]}
        t.paused = {r: _union_seconds(i for k in keys for i in pauses[k].get(r, [])) for r in reasons}
        t.paused = {r: v for r, v in t.paused.items() if v}
    out = list(rows.values()) + list(totals.values())
    return sorted(out, key=lambda f: (f.agent, f.queue))
