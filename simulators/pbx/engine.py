"""The simulated PBX: a discrete-event model of Asterisk's dialplan dispatch, app_queue and the survey.

One heap of ``(time, seq, kind, object)`` entries; handlers are looked up by
``kind`` in a list. Virtual time never sleeps. Everything random about a
caller is drawn by the load generator (:class:`Arrival`), and the only draw
made here (an agent letting a call ring out) comes from a seeded generator,
so a run is reproducible. AMI events are built only when a sink is set.

Simplifications (see docs/simulator.md): agent legs have no Newchannel/Hangup
of their own, ``ringall`` rings the first idle member in list order (the
others' AgentCalled are not sent), and Position/Count are approximate.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from hotline_cti import channel_vars as cv
from simulators.pbx.amievents import RING, Fields, cdr_time, channel_snapshot, head, member_status
from simulators.pbx.model import Arrival, PbxSettings, QueueSetup, QueueStats, Summary
from simulators.pbx.routing import Route

Sink = Callable[[Fields], None]
Router = Callable[[Arrival], Route]

# heap entry kinds
JOIN, ABANDON, OVERFLOW, RING_OK, RING_FAIL, TALK_END, WRAP_END, OUT_END, SURVEY_END, PROMPT_END = range(10)
DIAL_ANSWER, SHIFT, HANDOVER = 10, 11, 12
# call states
IVR, WAITING, RINGING, TALKING, OUT, SURVEY, DONE = range(7)
# agent states
IDLE, A_RINGING, BUSY, WRAP, OFF = range(5)

DIALLED_ACTIONS = frozenset({"department", "subcentre", "emergency"})


class _Agent:
    __slots__ = ("active", "call", "idx", "interface", "last_call", "name", "queue", "state", "taken")

    def __init__(self, queue: _Queue, idx: int) -> None:
        self.name = f"{queue.name}/agent{idx + 1:03d}"
        self.interface = f"Local/{queue.name}-{idx + 1:03d}@hotline-agents/n"
        self.idx = idx
        self.queue = queue
        self.state = OFF
        self.active = False
        self.last_call = 0.0
        self.taken = 0
        self.call: _Call | None = None


class _Queue:
    __slots__ = ("active", "agents", "idle", "name", "ringall", "ringing", "setup", "stats", "waiting")

    def __init__(self, setup: QueueSetup) -> None:
        self.name = setup.name
        self.setup = setup
        self.waiting: deque[_Call] = deque()
        self.idle: list[tuple[float, int, _Agent]] = []  # heap: (key, idx, agent)
        self.agents: list[_Agent] = []
        self.active = 0
        self.ringing = 0
        self.stats = QueueStats()
        self.ringall = setup.strategy == "ringall"


class _Call:
    __slots__ = (
        "agent",
        "agent_uid",
        "answered_at",
        "arrival",
        "channel",
        "first_join",
        "id",
        "patience_set",
        "queue",
        "route",
        "state",
    )

    def __init__(self, call_id: str, arrival: Arrival, route: Route) -> None:
        self.id = call_id
        self.arrival = arrival
        self.route = route
        self.state = IVR
        self.queue: _Queue | None = None
        self.first_join = -1.0
        self.agent: _Agent | None = None
        self.answered_at: float | None = None
        self.patience_set = False
        self.channel = ""
        self.agent_uid = ""


class Pbx:
    """The model. ``queue_setup(name)`` gives the set-up of a queue the first time a call joins it."""

    def __init__(
        self,
        router: Router | None,
        queue_setup: Callable[[str], QueueSetup],
        settings: PbxSettings | None = None,
        *,
        tz: ZoneInfo | None = None,
        sink: Sink | None = None,
        seed: int = 0,
        id_base: int | None = None,
        handover_queue: Callable[[Arrival], str] | None = None,
    ) -> None:
        self.router = router
        self.queue_setup = queue_setup
        self.settings = settings or PbxSettings()
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self.sink = sink
        self.rng = random.Random(seed)
        self.id_base = id_base
        # The queue a hand-over lands in (hotline-handover -> the fallback: the city's general queue).
        self.handover_queue = handover_queue or (lambda arrival: "general")
        self.summary = Summary()
        self.queues: dict[str, _Queue] = {}
        self.now = 0.0
        self.active_calls = 0
        self.pending_arrivals = True
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._uid = 0
        self._first: float | None = None
        self._handlers: list[Callable[[Any, float], None]] = [
            self._join,
            self._abandon,
            self._overflow,
            self._ring_ok,
            self._ring_fail,
            self._talk_end,
            self._wrap_end,
            self._out_end,
            self._survey_end,
            self._prompt_end,
            self._dial_answer,
            self._shift,
            self._handover,
        ]

    # ------------------------------------------------------------------ driving

    def run(self, arrivals: Iterable[Arrival], until: float | None = None) -> Summary:
        """Run in virtual time until every call has ended (or ``until``, epoch seconds). Arrivals in time order."""
        assert self.router is not None, "a router is needed to run arrivals synchronously"
        heap, pop, handlers, router, arrive = self._heap, heapq.heappop, self._handlers, self.router, self.arrive
        stop = math.inf if until is None else until
        it = iter(arrivals)
        nxt = next(it, None)
        while True:
            if nxt is not None and (not heap or nxt.at <= heap[0][0]):
                if nxt.at > stop:
                    nxt = None
                    self.pending_arrivals = False
                    continue
                arrive(nxt, router(nxt))
                nxt = next(it, None)
                if nxt is None:
                    self.pending_arrivals = False
            elif heap and (self.active_calls or nxt is not None):  # else only staffing changes are left
                if heap[0][0] > stop:
                    break
                t, _, kind, obj = pop(heap)
                self.now = t
                handlers[kind](obj, t)
            else:
                break
        self.pending_arrivals = False
        return self.finish()

    @property
    def timed_events(self) -> int:
        """Timed events scheduled so far (heap pushes)."""
        return self._seq

    def next_time(self) -> float:
        """Time of the next timed event (inf when none)."""
        return self._heap[0][0] if self._heap else math.inf

    def step(self) -> None:
        """Handle the next timed event."""
        t, _, kind, obj = heapq.heappop(self._heap)
        self.now = t
        self._handlers[kind](obj, t)

    def finish(self) -> Summary:
        """Close the books: calls still in progress count as unfinished."""
        s = self.summary
        s.unfinished = self.active_calls
        s.virtual_seconds = self.now - self._first if self._first is not None else 0.0
        for name, q in self.queues.items():
            s.queues[name] = q.stats
        return s

    def _push(self, t: float, kind: int, obj: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, obj))

    def _emit(self, fields: Fields) -> None:
        self.summary.events += 1
        self.sink(fields)  # type: ignore[misc]

    # ------------------------------------------------------------------ calls

    def arrive(self, arrival: Arrival, route: Route) -> None:
        """A call arrives at ``arrival.at`` and the dialplan dispatch has routed it to ``route``."""
        t = arrival.at
        self.now = t
        s = self.summary
        if s.arrivals == 0:
            if self.id_base is None:
                self.id_base = int(t)
            self._first = t
            self._schedule_shift(t)
        s.arrivals += 1
        s.actions[route.action] = s.actions.get(route.action, 0) + 1
        self._uid += 1
        call = _Call(f"{self.id_base}.{self._uid}", arrival, route)
        self.active_calls += 1
        if self.sink is not None:
            call.channel = f"PJSIP/pstn-{self._uid:08x}"
            self._emit(
                [
                    *head("Newchannel", "call", t),
                    *self._snap(call, state=RING, context="hotline-inbound", exten=arrival.dialled),
                ]
            )
            self._emit(
                [
                    *head("UserEvent", "user", t),
                    *self._snap(call),
                    ("UserEvent", cv.EVENT_ROUTE),
                    ("CallId", call.id),
                    ("Dialled", arrival.dialled),
                    ("Form", route.form),
                    ("Action", route.action),
                    ("Target", route.target),
                    ("Origin", route.origin),
                    ("Mode", route.mode),
                    ("Phase", route.phase),
                    ("Centre", route.centre),
                    ("City", route.city),
                    ("Expert", route.expert),
                ]
            )
        action = route.action
        if action == "queue" or action == "fallback":
            if route.menu:
                self._push(t + self.settings.menu, JOIN, call)
            else:
                self._join(call, t)
        elif action in DIALLED_ACTIONS:
            s.dialled += 1
            call.state = OUT
            if self.sink is not None:
                self._emit(self._dial_begin(call, route.dial, t))
            self._push(t + self.settings.dial_ring, DIAL_ANSWER, call)
        else:  # guidance, retired: prompts, then the dialplan hangs up
            s.announced += 1
            self._push(t + self.settings.prompt, PROMPT_END, call)

    def next_call_id(self, t: float) -> str:
        """The id (caller leg Uniqueid) the next arrival will get."""
        if self.id_base is None:
            self.id_base = int(t)
        return f"{self.id_base}.{self._uid + 1}"

    def _queue(self, name: str, t: float) -> _Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = _Queue(self.queue_setup(name))
            self._staff(q, q.setup.agents[self._hour(t)], t)
        return q

    def _join(self, call: _Call, t: float) -> None:
        route = call.route
        q = self._queue(route.target, t)
        call.queue, call.state, call.first_join = q, WAITING, t
        q.waiting.append(call)
        q.stats.offered += 1
        if self.sink is not None:
            self._emit(self._caller_join(call, q, t))
        if route.overflow and 0 < route.overflow_after < call.arrival.patience:
            self._push(t + route.overflow_after, OVERFLOW, call)
        self._dispatch(q, t)
        if call.state == WAITING:
            self._patience(call)

    def _patience(self, call: _Call) -> None:
        # Scheduled only once the caller really waits: most calls are answered at once in light load.
        if not call.patience_set:
            call.patience_set = True
            self._push(call.first_join + call.arrival.patience, ABANDON, call)

    def _dispatch(self, q: _Queue, t: float) -> None:
        """Ring idle agents for waiting callers (several at once with autofill, else one at a time)."""
        waiting, idle = q.waiting, q.idle
        while waiting and idle:
            if q.ringing and not q.setup.autofill:
                return
            call = waiting.popleft()
            if call.state != WAITING or call.queue is not q:
                continue  # left earlier (abandoned or overflowed): removed lazily
            agent = heapq.heappop(idle)[2]
            while agent.state != IDLE or not agent.active:
                if not idle:
                    waiting.appendleft(call)
                    return
                agent = heapq.heappop(idle)[2]
            self._ring(call, agent, t)

    def _ring(self, call: _Call, agent: _Agent, t: float) -> None:
        q = agent.queue
        q.ringing += 1
        agent.state, agent.call = A_RINGING, call
        call.state, call.agent = RINGING, agent
        share = self.settings.no_answer_share
        fails = share > 0.0 and self.rng.random() < share
        end = t + (q.setup.ring_timeout if fails else self.settings.ring)
        if end >= call.first_join + call.arrival.patience:
            self._patience(call)
        self._push(end, RING_FAIL if fails else RING_OK, call)
        if self.sink is not None:
            self._uid += 1
            call.agent_uid = f"{self.id_base}.{self._uid}"
            self._emit(self._agent_event("AgentCalled", call, agent, t, [], state=RING))
            self._emit(self._member(agent, 6, t))

    def _ring_ok(self, call: _Call, t: float) -> None:
        agent = call.agent
        assert agent is not None
        q = agent.queue
        q.ringing -= 1
        if call.state != RINGING:  # the caller hung up while it rang
            call.agent = None
            self._agent_free(agent, t)
            return
        wait = t - call.first_join
        s, qs = self.summary, q.stats
        s.answered += 1
        qs.answered += 1
        s.wait_total += wait
        qs.wait_total += wait
        if wait > self.settings.ring + 1e-6:  # waited for an agent, not just the ring
            s.waited += 1
            qs.waited += 1
        if wait <= self.settings.service_level:
            s.within_sl += 1
            qs.within_sl += 1
        call.state, call.answered_at = TALKING, t
        agent.state = BUSY
        self._push(t + call.arrival.service, TALK_END, call)
        if self.sink is not None:
            self._emit(self._caller_leave(call, q, t))
            self._emit(
                self._agent_event(
                    "AgentConnect",
                    call,
                    agent,
                    t,
                    [("HoldTime", str(int(wait))), ("RingTime", str(int(self.settings.ring)))],
                )
            )
            self._emit(self._member(agent, 2, t))

    def _ring_fail(self, call: _Call, t: float) -> None:
        agent = call.agent
        assert agent is not None
        q = agent.queue
        q.ringing -= 1
        self.summary.no_answer += 1
        agent.state, agent.call = WRAP, None  # Asterisk waits `retry` before ringing this member again
        self._push(t + q.setup.retry, WRAP_END, agent)
        if self.sink is not None:
            self._emit(
                self._agent_event(
                    "AgentRingNoAnswer", call, agent, t, [("RingTime", str(int(q.setup.ring_timeout)))], state=RING
                )
            )
        if call.state == RINGING:
            call.state, call.agent = WAITING, None
            q.waiting.appendleft(call)
            self._patience(call)
            self._dispatch(q, t)

    def _talk_end(self, call: _Call, t: float) -> None:
        agent = call.agent
        assert agent is not None and call.answered_at is not None
        q = agent.queue
        arrival = call.arrival
        agent.taken += 1
        agent.last_call = t
        agent.call = None
        if self.sink is not None:
            reason = "transfer" if arrival.transfer else "agent"
            self._emit(
                self._agent_event(
                    "AgentComplete",
                    call,
                    agent,
                    t,
                    [
                        ("HoldTime", str(int(call.answered_at - call.first_join))),
                        ("TalkTime", str(int(t - call.answered_at))),
                        ("Reason", reason),
                    ],
                )
            )
        if q.setup.wrapup > 0:
            agent.state = WRAP
            self._push(t + q.setup.wrapup, WRAP_END, agent)
            if self.sink is not None:
                self._emit(self._member(agent, 1, t, wrap=True))
        else:
            self._agent_free(agent, t)
        if arrival.transfer:
            self.summary.transferred += 1
            call.state = OUT
            if self.sink is not None:
                self._emit(
                    [
                        *head("BlindTransfer", "call", t),
                        ("Result", "Success"),
                        *self._agent_snap(call, prefix="Transferer"),
                        *self._snap(call, prefix="Transferee"),
                        ("IsExternal", "No"),
                        ("Context", "hotline-onekey"),
                        ("Extension", arrival.transfer),
                    ]
                )
                self._emit(self._dial_begin(call, f"PJSIP/{arrival.transfer}@pstn", t))
                self._emit(self._dial_end(call, t))
            self._push(t + self.settings.transfer_talk, OUT_END, call)
        elif arrival.rating is not None:
            call.state = SURVEY
            self._push(t + self.settings.survey, SURVEY_END, call)
        else:
            self._hangup(call, t)

    def _agent_free(self, agent: _Agent, t: float) -> None:
        q = agent.queue
        if not agent.active:
            agent.state = OFF
            if self.sink is not None:
                self._emit(self._member(agent, 5, t))
            return
        agent.state = IDLE
        heapq.heappush(q.idle, (agent.idx if q.ringall else agent.last_call, agent.idx, agent))
        if self.sink is not None:
            self._emit(self._member(agent, 1, t))
        if q.waiting:
            self._dispatch(q, t)

    def _wrap_end(self, agent: _Agent, t: float) -> None:
        self._agent_free(agent, t)

    def _abandon(self, call: _Call, t: float) -> None:
        if call.state != WAITING and call.state != RINGING:
            return
        q = call.queue
        assert q is not None
        self.summary.abandoned += 1
        q.stats.abandoned += 1
        if self.sink is not None:
            self._emit(
                [
                    *head("QueueCallerAbandon", "agent", t),
                    *self._snap(call),
                    ("Queue", q.name),
                    ("Position", "1"),
                    ("OriginalPosition", "1"),
                    ("HoldTime", str(int(t - call.first_join))),
                ]
            )
        self._hangup(call, t, cause=16)

    def _overflow(self, call: _Call, t: float) -> None:
        q = call.queue
        route = call.route
        if call.state != WAITING or q is None or q.name != route.target or not route.overflow:
            return
        self.summary.overflowed += 1
        q.stats.overflowed_out += 1
        to = self._queue(route.overflow, t)
        if self.sink is not None:
            self._emit(self._caller_leave(call, q, t))
            self._emit(
                [
                    *head("UserEvent", "user", t),
                    *self._snap(call),
                    ("UserEvent", cv.EVENT_OVERFLOW),
                    ("CallId", call.id),
                    ("From", q.name),
                    ("To", to.name),
                ]
            )
        call.queue = to
        to.waiting.append(call)
        if self.sink is not None:
            self._emit(self._caller_join(call, to, t))
        self._dispatch(to, t)

    def _dial_answer(self, call: _Call, t: float) -> None:
        call.answered_at = t
        if self.sink is not None:
            self._emit(self._dial_end(call, t))
        if call.arrival.handover and call.route.action == "emergency":
            self._push(t + self.settings.handover_talk, HANDOVER, call)
        else:
            self._push(t + call.arrival.service, OUT_END, call)

    def _handover(self, call: _Call, t: float) -> None:
        """110 hands the call to 12345, as hotline-handover does: marked, then the fallback's general queue."""
        self.summary.handed_over += 1
        self.summary.dialled -= 1  # queued now: counted as answered or abandoned there
        queue = self.handover_queue(call.arrival)
        emergency = call.route.target
        call.route = Route("fallback", queue, "", None, 0.0, False, form=call.route.form, city=call.route.city)
        call.answered_at = None
        if self.sink is not None:
            self._emit(
                [
                    *head("UserEvent", "user", t),
                    *self._snap(call, context="hotline-handover"),
                    ("UserEvent", cv.EVENT_HANDOVER),
                    ("CallId", call.id),
                    ("From", emergency),
                    ("Channel", call.channel),
                ]
            )
            self._emit(
                [
                    *head("UserEvent", "user", t),
                    *self._snap(call, context="hotline-fallback"),
                    ("UserEvent", cv.EVENT_ROUTE),
                    ("CallId", call.id),
                    ("Dialled", call.arrival.dialled),
                    ("Action", cv.FALLBACK_ACTION),
                    ("Target", queue),
                ]
            )
        self._join(call, t)

    def _out_end(self, call: _Call, t: float) -> None:
        self._hangup(call, t)

    def _survey_end(self, call: _Call, t: float) -> None:
        rating = call.arrival.rating
        assert rating is not None
        self.summary.ratings[rating] = self.summary.ratings.get(rating, 0) + 1
        if self.sink is not None:
            self._emit(
                [
                    *head("UserEvent", "user", t),
                    *self._snap(call, context="hotline-survey"),
                    ("UserEvent", cv.EVENT_RATING),
                    ("CallId", call.id),
                    ("Rating", str(rating)),
                ]
            )
        self._hangup(call, t)

    def _prompt_end(self, call: _Call, t: float) -> None:
        self._hangup(call, t)

    def _hangup(self, call: _Call, t: float, cause: int = 16) -> None:
        call.state = DONE
        self.active_calls -= 1
        if self.sink is None:
            return
        self._emit(
            [*head("Hangup", "call", t), *self._snap(call), ("Cause", str(cause)), ("Cause-txt", "Normal Clearing")]
        )
        start = call.arrival.at
        answered = call.answered_at
        self._emit(
            [
                *head("Cdr", "cdr", t),
                ("AccountCode", ""),
                ("Source", call.arrival.caller),
                ("Destination", call.arrival.dialled),
                ("DestinationContext", "hotline-inbound"),
                ("CallerID", f'"" <{call.arrival.caller}>'),
                ("Channel", call.channel),
                ("DestinationChannel", ""),
                ("LastApplication", "Queue" if call.route.queued else "Dial"),
                ("LastData", call.route.target),
                ("StartTime", cdr_time(start, self.tz)),
                ("AnswerTime", cdr_time(answered, self.tz)),
                ("EndTime", cdr_time(t, self.tz)),
                ("Duration", str(int(t - start))),
                ("BillableSeconds", str(int(t - answered)) if answered else "0"),
                ("Disposition", "ANSWERED" if answered is not None else "NO ANSWER"),
                ("AMAFlags", "DOCUMENTATION"),
                ("UniqueID", call.id),
                ("UserField", ""),
            ]
        )

    # ------------------------------------------------------------------ staffing

    def _hour(self, t: float) -> int:
        return int((t + self._offset(t)) // 3600) % 24

    def _offset(self, t: float) -> float:
        off = dt.datetime.fromtimestamp(t, self.tz).utcoffset()
        return off.total_seconds() if off is not None else 0.0

    def _schedule_shift(self, t: float) -> None:
        offset = self._offset(t)
        self._push((math.floor((t + offset) / 3600) + 1) * 3600 - offset, SHIFT, None)

    def _shift(self, _: object, t: float) -> None:
        hour = self._hour(t + 1)
        for q in self.queues.values():
            self._staff(q, q.setup.agents[hour], t)
        if self.pending_arrivals or self.active_calls:
            self._schedule_shift(t + 1)

    def _staff(self, q: _Queue, target: int, t: float) -> None:
        """Log agents in or out until ``target`` are active; busy ones leave after their call."""
        if target > q.active:
            for agent in q.agents:
                if q.active >= target:
                    break
                if not agent.active:
                    agent.active = True
                    q.active += 1
                    if agent.state == OFF:
                        self._agent_free(agent, t)
            while q.active < target:
                agent = _Agent(q, len(q.agents))
                q.agents.append(agent)
                agent.active = True
                q.active += 1
                self._agent_free(agent, t)
        elif target < q.active:
            # idle agents leave first, then the busiest-last ones after their call
            for agent in sorted(q.agents, key=lambda a: (a.state != IDLE, -a.idx)):
                if q.active <= target:
                    break
                if agent.active:
                    agent.active = False
                    q.active -= 1
                    if agent.state == IDLE:
                        agent.state = OFF
                        if self.sink is not None:
                            self._emit(self._member(agent, 5, t))

    # ------------------------------------------------------------------ AMI bodies

    def _snap(
        self, call: _Call, *, prefix: str = "", state: int = 6, context: str = "hotline-route", exten: str = "s"
    ) -> Fields:
        agent = call.agent
        return channel_snapshot(
            prefix,
            call.channel,
            call.id,
            call.id,
            call.arrival.caller,
            agent.name if agent is not None and call.state == TALKING else "",
            state=state,
            context=context,
            exten=exten,
        )

    def _agent_snap(self, call: _Call, state: int = 6, prefix: str = "Dest") -> Fields:
        agent = call.agent
        name = agent.interface.split("/n")[0] + ";1" if agent is not None else "Local/unknown;1"
        return channel_snapshot(
            prefix,
            name,
            call.agent_uid,
            call.id,
            agent.name if agent else "",
            call.arrival.caller,
            state=state,
            context="hotline-agents",
        )

    def _agent_event(self, name: str, call: _Call, agent: _Agent, t: float, extra: Fields, state: int = 6) -> Fields:
        """AgentCalled / AgentConnect / AgentRingNoAnswer / AgentComplete: caller, Dest* agent leg, member."""
        return [
            *head(name, "agent", t),
            *self._snap(call),
            *self._agent_snap(call, state),
            ("Queue", agent.queue.name),
            ("Interface", agent.interface),
            ("MemberName", agent.name),
            *extra,
        ]

    def _member(self, agent: _Agent, status: int, t: float, *, wrap: bool = False) -> Fields:
        q = agent.queue
        return member_status(
            q.name,
            agent.name,
            agent.interface,
            status=status,
            in_call=status == 2,
            taken=agent.taken,
            last=agent.last_call,
            paused=False,
            wrapup=q.setup.wrapup if wrap else 0,
            at=t,
        )

    def _caller_join(self, call: _Call, q: _Queue, t: float) -> Fields:
        return [
            *head("QueueCallerJoin", "agent", t),
            *self._snap(call),
            ("Queue", q.name),
            ("Position", str(len(q.waiting))),
            ("Count", str(len(q.waiting))),
        ]

    def _caller_leave(self, call: _Call, q: _Queue, t: float) -> Fields:
        return [
            *head("QueueCallerLeave", "agent", t),
            *self._snap(call),
            ("Queue", q.name),
            ("Position", "1"),
            ("Count", str(max(len(q.waiting) - 1, 0))),
        ]

    def _dial_begin(self, call: _Call, dial: str, t: float) -> Fields:
        self._uid += 1
        call.agent_uid = f"{self.id_base}.{self._uid}"
        return [
            *head("DialBegin", "call", t),
            *self._snap(call),
            *channel_snapshot(
                "Dest",
                dial.split("@")[0] + f"-{self._uid:08x}",
                call.agent_uid,
                call.id,
                dial.split("/")[-1].split("@")[0],
                call.arrival.caller,
                state=RING,
                context="hotline-dial",
            ),
            ("DialString", dial.split("/", 1)[-1]),
        ]

    def _dial_end(self, call: _Call, t: float) -> Fields:
        return [
            *head("DialEnd", "call", t),
            *self._snap(call),
            *channel_snapshot(
                "Dest",
                f"PJSIP/out-{call.agent_uid}",
                call.agent_uid,
                call.id,
                "",
                call.arrival.caller,
                context="hotline-dial",
            ),
            ("DialStatus", "ANSWER"),
        ]
