"""Live wallboard state. Pure: no I/O and no clock — every call passes ``now``.

Call records are not built here: the AMI link's one record builder (the events service's pipeline,
:class:`hotline_cti.records.fanout.RecordFanout`) hands finished records to :meth:`LiveState.take`
and its calls in progress are read through ``in_progress``, so the wall and the store see the same
calls under the same caller-number policy. Today's figures come from the KPI accumulator
(:mod:`hotline_cti.wallboard.figures`), the merger view from :mod:`hotline_cti.wallboard.merger`.
The AMI events themselves (:meth:`LiveState.apply`) give only what the wall alone needs: who is
waiting in each queue and since when, and each agent's state; plus thresholds, alerts and their
acknowledgements. Start-up seeds this week's records from the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hotline_cti.core.model import Mode
from hotline_cti.core.table import RoutingTable
from hotline_cti.kpi.accumulator import MAIN_LINE
from hotline_cti.kpi.counts import ANSWER_TARGET, AnswerCount
from hotline_cti.privacy import mask_number, mask_numbers
from hotline_cti.records.builder import Output
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.records.node_queues import FIGURES, NodeQueue, longest, queue_totals
from hotline_cti.wallboard.agent_live import AgentTimes
from hotline_cti.wallboard.figures import DayFigures, DayView
from hotline_cti.wallboard.merger import LineCounts, count_lines, day_start, merger_rows, week_start

log = logging.getLogger(__name__)

EMERGENCY_NUMBERS = ("110", "119", "120", "122")  # always shown, even with no transfer today
# QueueMemberStatus Status values (Asterisk AST_DEVICE_*): in use, busy, ringing, ring-in-use, on hold.
BUSY_STATUSES = frozenset({2, 3, 6, 7, 8})
FREE_STATUS = 1
UNKNOWN_VALUES = frozenset({"", "<unknown>"})


class BuilderView(Protocol):
    """The AMI link's record builder as the wall reads it (:class:`hotline_cti.records.fanout.RecordFanout`)."""

    def in_progress(self) -> list[CallRecord]: ...

    @property
    def skipped(self) -> int: ...


class EventError(ValueError):
    """An AMI event the wallboard understands but whose fields are missing or malformed."""


@dataclass(slots=True)
class Thresholds:
    """What turns a figure red; supervisors may change them from the wall."""

    answer_target: float = ANSWER_TARGET  # 0..1
    wait_alert: int = 60  # seconds a caller may wait before the queue is flagged

    def update(self, answer_target: object = None, wait_alert: object = None) -> None:
        """Change thresholds; raises ValueError naming the bad value and keeps the old ones."""
        target, wait = self.answer_target, self.wait_alert
        if answer_target is not None:
            if not isinstance(answer_target, int | float) or isinstance(answer_target, bool):
                raise ValueError(f"answer_target must be a number, got {answer_target!r}")
            target = float(answer_target)
            if not 0 < target <= 1:
                raise ValueError(f"answer_target must be in (0, 1], got {answer_target!r}")
        if wait_alert is not None:
            if not isinstance(wait_alert, int) or isinstance(wait_alert, bool) or not 1 <= wait_alert <= 3600:
                raise ValueError(f"wait_alert must be whole seconds 1..3600, got {wait_alert!r}")
            wait = wait_alert
        self.answer_target, self.wait_alert = target, wait


@dataclass(slots=True)
class Agent:
    """One queue member as the last QueueMemberStatus (or QueueStatus) described it."""

    name: str
    status: int
    paused: bool

    @property
    def state(self) -> str:
        """free / busy / paused / offline."""
        if self.paused:
            return "paused"
        if self.status in BUSY_STATUSES:
            return "busy"
        return "free" if self.status == FREE_STATUS else "offline"


@dataclass(slots=True)
class QueueLive:
    """Callers waiting in one Asterisk queue and its members."""

    waiting: dict[str, tuple[float, str]] = field(default_factory=dict)  # call id -> (joined ts, masked caller)
    agents: dict[str, Agent] = field(default_factory=dict)  # interface -> agent


def _field(event: Mapping[str, str], *names: str) -> str:
    """First non-empty, known value among ``names``."""
    for name in names:
        value = event.get(name, "").strip()
        if value not in UNKNOWN_VALUES:
            return value
    return ""


def _need(event: Mapping[str, str], *names: str) -> str:
    value = _field(event, *names)
    if not value:
        raise EventError(f"{event.get('Event', '?')} without {names[0]}")
    return value


def _int(event: Mapping[str, str], name: str, default: int | None = None) -> int:
    text = event.get(name, "").strip()
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError:
        raise EventError(f"{event.get('Event', '?')} {name} is not a number: {text!r}") from None


def _in_progress(rec: CallRecord) -> CallRecord:
    """A call still up, with the outcome it has so far: answered (or transferred) once an agent took it.

    An emergency put-through stays 'active' (volume only): the builder ends it as 'emergency', never offered.
    """
    if rec.outcome is Outcome.ACTIVE and rec.agent and rec.action != "emergency":
        rec.outcome = Outcome.TRANSFERRED if rec.transfers else Outcome.ANSWERED
    return rec


class LiveState:
    """The wall's state. Feed it with :meth:`apply`; read it with :meth:`snapshot`."""

    def __init__(
        self,
        table: RoutingTable,
        thresholds: Thresholds | None = None,
        records: BuilderView | None = None,
    ) -> None:
        self.table = table
        self.thresholds = thresholds or Thresholds()
        # The link's record builder (None: the wall shows queues, agents and the calls it is seeded with).
        self.records = records
        self.queues: dict[str, QueueLive] = {}
        self.calls: dict[str, CallRecord] = {}  # this week's ended (and stored) calls by call id
        self.acknowledged: set[str] = set()
        self.applied = 0  # events the wall used
        self.malformed = 0  # events skipped by the wall's own handlers (the builder counts its own)
        self._joined: dict[str, float] = {}  # call id -> when it joined its current queue
        # Snapshots count only today's calls; the earlier days of the week are counted once a day.
        self._day: dt.datetime | None = None  # start of the day _today holds
        self._today: dict[str, CallRecord] = {}  # ended calls of today
        self._past_counts: LineCounts | None = None  # merger counts of this week before today
        self._figures: DayFigures | None = None  # today's figures; None: count today's calls again
        self.agent_times = AgentTimes()  # logged-in and pause time per agent today (issue 18)
        self.node = ""  # this wall's Asterisk node (its AMI link's), named beside the other nodes
        self.peers: list[NodeQueue] = []  # every node's shared queue rows (wallboard/peers.py); own rows skipped
        # False: a wall with no Asterisk link (the region centre's). Every node is a peer, read from the store, and
        # no caller's join time is known, so there is no longest wait to show (None, not a made-up 0).
        self.linked = True

    @property
    def skipped(self) -> int:
        """Malformed events skipped (logged with numbers masked), by the wall's handlers or the record builder."""
        return self.malformed + (self.records.skipped if self.records is not None else 0)

    def calls_in_progress(self) -> list[CallRecord]:
        """The record builder's calls still up (copies)."""
        return self.records.in_progress() if self.records is not None else []

    # -- feeding -----------------------------------------------------------------------------------

    def seed(self, records: Iterable[CallRecord]) -> int:
        """Add stored records (start-up); a call already seen live keeps its live record. Returns how many."""
        added = 0
        live = {rec.call_id for rec in self.calls_in_progress()}
        for rec in records:
            if rec.call_id not in self.calls and rec.call_id not in live:
                self._ended(rec)
                added += 1
        return added

    def reset_queues(self) -> None:
        """Forget waiting callers and members before a QueueStatus re-read (after an AMI reconnect)."""
        self.queues.clear()
        self._joined.clear()

    def take(self, outputs: Sequence[Output]) -> bool:
        """What the record builder made of an event (a record listener): finished records are counted. True when
        there was anything: an event output (a call routed, queued, answered) changes the calls in progress too."""
        for out in outputs:
            if isinstance(out, CallRecord):
                self._ended(out)
        return bool(outputs)

    def apply(self, event: Mapping[str, str], now: dt.datetime) -> bool:
        """Fold one AMI event into the queues and agents; True when the wall used it. Malformed events are logged
        (masked) and skipped. Call records are not built here: see :meth:`take`."""
        used = False
        if self.agent_times.apply(event, now):
            used = True
        handler = _HANDLERS.get(event.get("Event", ""))
        if handler is not None:
            try:
                handler(self, event, now.timestamp())
                used = True
            except EventError as exc:
                self.malformed += 1
                log.warning("wallboard: skipped a malformed AMI event: %s", mask_numbers(str(exc)))
        self.applied += used
        return used

    def _ended(self, rec: CallRecord) -> None:
        """A finished record (or one again, e.g. rated after the hang-up): count it, or count today again."""
        self.calls[rec.call_id] = rec
        if self._day is None or rec.started >= self._day:
            self._today[rec.call_id] = rec
            if self._figures is not None:
                if rec.call_id in self._figures.counted:
                    self._figures = None  # changed after it was counted: count today again (rare)
                else:
                    self._figures.finish(rec)
        else:
            self._past_counts = None  # an earlier day changed: count the week again

    def _queue(self, name: str) -> QueueLive:
        return self.queues.setdefault(name, QueueLive())

    def _unqueue(self, call_id: str, queue: str | None = None) -> None:
        """Take a call out of the waiting lists."""
        for qname, q in self.queues.items():
            if queue is None or qname == queue:
                q.waiting.pop(call_id, None)
        self._joined.pop(call_id, None)

    def _wait_in(self, queue: str, uid: str, joined: float, event: Mapping[str, str]) -> None:
        caller = _field(event, "CallerIDNum")
        self._unqueue(uid)
        self._queue(queue).waiting[uid] = (joined, mask_number(caller) if caller else "")
        self._joined[uid] = joined

    def _on_join(self, event: Mapping[str, str], ts: float) -> None:
        self._wait_in(_need(event, "Queue"), _need(event, "Uniqueid"), ts, event)

    def _on_entry(self, event: Mapping[str, str], ts: float) -> None:
        """QueueStatus's QueueEntry (resync): a caller already waiting for ``Wait`` seconds."""
        queue, uid = _need(event, "Queue"), _need(event, "Uniqueid")
        self._wait_in(queue, uid, ts - _int(event, "Wait", 0), event)

    def _on_leave(self, event: Mapping[str, str], ts: float) -> None:
        self._unqueue(_need(event, "Uniqueid"), _need(event, "Queue"))

    def _on_answer_or_hangup(self, event: Mapping[str, str], ts: float) -> None:
        self._unqueue(_need(event, "Uniqueid"))

    def _on_member(self, event: Mapping[str, str], ts: float) -> None:
        queue = _need(event, "Queue")
        interface = _need(event, "Interface", "Location", "StateInterface")
        agent = Agent(
            name=_field(event, "MemberName", "Name") or interface,
            status=_int(event, "Status"),
            paused=_field(event, "Paused") == "1",
        )
        self._queue(queue).agents[interface] = agent

    def _on_member_removed(self, event: Mapping[str, str], ts: float) -> None:
        queue = _need(event, "Queue")
        self._queue(queue).agents.pop(_need(event, "Interface", "Location", "StateInterface"), None)

    # -- reading -----------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str) -> None:
        """Mark an alert seen (supervisors); it stays acknowledged while it lasts."""
        self.acknowledged.add(alert_id)

    def prune(self, now: dt.datetime) -> None:
        """Drop ended calls that started before this week (the state stays a week's worth)."""
        start = week_start(now, self.table)
        for call_id in [c for c, rec in self.calls.items() if rec.started < start]:
            del self.calls[call_id]

    def _roll(self, now: dt.datetime) -> dt.datetime:
        """Follow the day: on a new day, prune the week and pick today's calls again. Returns today's start."""
        day = day_start(now, self.table)
        if day != self._day:
            self._day = day
            self.prune(now)
            self._today = {c: rec for c, rec in self.calls.items() if rec.started >= day}
            self._past_counts = None
            self._figures = None
        return day

    def in_progress(self, now: dt.datetime) -> list[CallRecord]:
        """Today's calls still up (copies from the record builder), with their outcome so far."""
        day = self._roll(now)
        return [_in_progress(rec) for rec in self.calls_in_progress() if rec.started >= day]

    def today(self, now: dt.datetime) -> list[CallRecord]:
        """Calls that started today (region time), ended or not."""
        return [*self.in_progress(now), *self._today.values()]

    def snapshot(self, now: dt.datetime) -> dict[str, Any]:
        """Everything the pages show, JSON-ready. Caller numbers appear only masked."""
        pending = self.in_progress(now)
        if self._figures is None:
            self._figures = DayFigures(self.table.timezone, self._today.values())
        day = self._figures.view(pending)
        target = self.thresholds.answer_target
        queues = self._queue_rows(day.by_queue, now.timestamp())
        nodes = self._with_peers(queues, day.by_queue, now)
        lines = self._line_rows(day)
        totals = {
            "waiting": sum(q["waiting"] for q in queues),
            "longest_wait": longest(q["longest_wait"] for q in queues),
            "free": sum(q["free"] for q in queues),
            "busy": sum(q["busy"] for q in queues),
            "paused": sum(q["paused"] for q in queues),
            "calls_today": day.calls,
            **_rate_fields(day.total, target),
        }
        alerts = self._alerts(queues, lines, day)
        return {
            "at": now.astimezone(dt.UTC).isoformat(),
            "region": self.table.region,
            "asterisk": self.linked,  # False: listening, agent commands and recordings are not offered here
            "day": now.astimezone(self.table.timezone).date().isoformat(),
            "thresholds": {"answer_target": target, "wait_alert": self.thresholds.wait_alert},
            "totals": totals,
            "queues": queues,
            "nodes": nodes,
            "lines": lines,
            "experts": [{"expert": k, **_rate_fields(v, target)} for k, v in sorted(day.by_expert.items())],
            "subcentres": [{"target": k, **_rate_fields(v, target)} for k, v in sorted(day.by_subcentre.items())],
            "transfers": self._transfer_groups(day.transfers),
            "satisfaction": {"ratings": {str(k): v for k, v in day.ratings.items()}, "rate": day.satisfaction},
            "alerts": alerts,
            "merger": [row.to_dict() for row in merger_rows(self.table, self._week_counts(now, day), now)],
            "agents": self.agent_times.rows([*pending, *self._today.values()], day_start(now, self.table), now),
        }

    def _week_counts(self, now: dt.datetime, day: DayView) -> LineCounts:
        """Merger counts of this week: earlier days counted once a day, today from today's figures."""
        if self._past_counts is None:
            start, today = week_start(now, self.table), self._day
            self._past_counts = count_lines(
                r for r in self.calls.values() if start <= r.started and (today is None or r.started < today)
            )
        counts = dict(self._past_counts)
        for line, kpi in day.by_line.items():
            past_calls, past_old = counts.get(line, (0, 0))
            counts[line] = (past_calls + kpi.calls, past_old + kpi.old_number)
        return counts

    def _queue_rows(self, by_queue: Mapping[str, AnswerCount], ts: float) -> list[dict[str, Any]]:
        rows = []
        for name in sorted(set(self.queues) | set(by_queue)):
            q = self.queues.get(name, QueueLive())
            states = [a.state for a in q.agents.values()]
            oldest = min(q.waiting.items(), key=lambda item: item[1][0], default=None)
            rows.append(
                {
                    "queue": name,
                    "waiting": len(q.waiting),
                    "longest_wait": int(ts - oldest[1][0]) if oldest else 0,
                    "longest_caller": oldest[1][1] if oldest else "",  # already masked
                    "free": states.count("free"),
                    "busy": states.count("busy"),
                    "paused": states.count("paused"),
                    **_rate_fields(by_queue.get(name, AnswerCount()), self.thresholds.answer_target),
                }
            )
        return rows

    def _with_peers(
        self, queues: list[dict[str, Any]], by_queue: Mapping[str, AnswerCount], now: dt.datetime
    ) -> list[dict[str, Any]]:
        """With other nodes' queues known: each queue row becomes the sum over nodes, with a ``nodes`` list of each
        node's figures (a stale node listed, not summed); returns each node's sum. [] on a single node."""
        others = [p for p in self.peers if p.node != self.node or not self.linked]
        if not others:
            return []
        own = {q["queue"]: {**{k: q[k] for k in FIGURES}, "longest_wait": q["longest_wait"]} for q in queues}
        own = own if self.linked else {}
        per_queue, per_node = queue_totals((self.node or "-") if self.linked else None, own, others, now)
        rows = {q["queue"]: q for q in queues}
        for name, total in per_queue.items():
            row = rows.get(name)
            if row is None:  # a queue only other nodes have callers or agents in now
                rate = _rate_fields(by_queue.get(name, AnswerCount()), self.thresholds.answer_target)
                row = rows[name] = {"queue": name, "longest_wait": 0, "longest_caller": "", **rate}
                queues.append(row)
            row.update({k: total[k] for k in FIGURES})
            row["longest_wait"] = total["longest_wait"]  # the longest over nodes (this wall's own included)
            row["nodes"] = total["nodes"]
        queues.sort(key=lambda q: str(q["queue"]))
        return per_node

    def _line_rows(self, day: DayView) -> list[dict[str, Any]]:
        rows = []
        for number, kpi in sorted(day.by_line.items(), key=lambda item: (-item[1].calls, item[0])):
            line = self.table.lines.get(number)
            rows.append(
                {
                    "number": number,
                    "name": line.name if line else "",
                    "mode": str(line.mode) if line else ("main" if number == MAIN_LINE else "unknown"),
                    "calls": kpi.calls,
                    "old_number": kpi.old_number,
                    "retired": bool(line and line.mode is Mode.MERGE and kpi.old_number),
                    **_rate_fields(kpi.answers, self.thresholds.answer_target),
                }
            )
        return rows

    def _transfer_groups(self, transfers: Mapping[str, int]) -> dict[str, Any]:
        emergency = {n: 0 for n in EMERGENCY_NUMBERS}
        emergency.update({n: 0 for n, line in self.table.lines.items() if line.mode is Mode.TRANSFER})
        subcentre_ids = {line.subcentre_id: n for n, line in self.table.lines.items() if line.subcentre_id}
        subcentres: dict[str, int] = {}
        other = 0
        for target, count in transfers.items():
            if target in emergency:
                emergency[target] += count
            elif target in subcentre_ids or target.split("@")[0] in subcentre_ids:
                key = target.split("@")[0]
                subcentres[key] = subcentres.get(key, 0) + count
            elif (line := self.table.lines.get(target)) is not None and line.mode is Mode.SUBCENTRE:
                key = line.subcentre_id or target
                subcentres[key] = subcentres.get(key, 0) + count
            else:
                other += count
        return {
            "emergency": emergency,
            "subcentre": subcentres,
            "other": other,
            "total": sum(transfers.values()),
        }

    def _alerts(self, queues: list[dict[str, Any]], lines: list[dict[str, Any]], day: DayView) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        for q in queues:
            if q["below_target"]:
                alerts.append(
                    {"id": f"queue:{q['queue']}:rate", "kind": "rate", "subject": q["queue"], "value": q["answer_rate"]}
                )
            if q["longest_wait"] is not None and q["longest_wait"] > self.thresholds.wait_alert:
                alerts.append(
                    {
                        "id": f"queue:{q['queue']}:wait",
                        "kind": "wait",
                        "subject": q["queue"],
                        "value": q["longest_wait"],
                    }
                )
        for line in lines:
            if line["below_target"]:
                alerts.append(
                    {
                        "id": f"line:{line['number']}:rate",
                        "kind": "rate",
                        "subject": line["number"],
                        "value": line["answer_rate"],
                    }
                )
        for group, counts in (("expert", day.by_expert), ("subcentre", day.by_subcentre)):
            for key, count in sorted(counts.items()):
                if count.below(self.thresholds.answer_target):
                    alerts.append({"id": f"{group}:{key}:rate", "kind": "rate", "subject": key, "value": count.rate})
        live = {a["id"] for a in alerts}
        self.acknowledged &= live  # an acknowledgement ends with its alert; a new occurrence alerts again
        for alert in alerts:
            alert["acknowledged"] = alert["id"] in self.acknowledged
        return alerts


def _rate_fields(count: AnswerCount, target: float) -> dict[str, Any]:
    """Answered, offered-but-unanswered, abandoned, the rate and whether it is under ``target``."""
    return {
        "answered": count.answered,
        "unanswered": count.offered - count.answered,
        "abandoned": count.abandoned,
        "answer_rate": count.rate,
        "below_target": count.below(target),
    }


_Handler = Callable[[LiveState, Mapping[str, str], float], None]
# Only what the record builder does not keep: queue membership of waiting callers and agent states.
_HANDLERS: dict[str, _Handler] = {
    "QueueCallerJoin": LiveState._on_join,
    "QueueEntry": LiveState._on_entry,
    "QueueCallerLeave": LiveState._on_leave,
    "QueueCallerAbandon": LiveState._on_leave,
    "AgentConnect": LiveState._on_answer_or_hangup,
    "Hangup": LiveState._on_answer_or_hangup,
    "QueueMemberStatus": LiveState._on_member,
    "QueueMember": LiveState._on_member,
    "QueueMemberAdded": LiveState._on_member,
    "QueueMemberPause": LiveState._on_member,  # a pause (CLI, feature code, autopause) shows at once
    "QueueMemberRemoved": LiveState._on_member_removed,
}
