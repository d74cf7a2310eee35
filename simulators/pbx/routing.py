"""Where the simulated dialplan sends a call: the routing core in-process, or FastAGI over TCP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hotline_cti import channel_vars as cv
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.confparse import parse_extensions
from simulators.dialplan_runner import DialplanRunner
from simulators.pbx.model import Arrival


@dataclass(frozen=True, slots=True)
class Route:
    """What the dialplan's dispatch does with a call, and the fields of its HotlineRoute UserEvent."""

    action: str  # queue | department | subcentre | emergency | guidance | retired | fallback
    target: str  # queue name or target id
    dial: str
    overflow: str | None
    overflow_after: float
    menu: bool
    form: str = ""
    mode: str = ""
    phase: str = ""
    centre: str = ""
    city: str = ""
    origin: str = ""
    expert: str = ""

    @property
    def queued(self) -> bool:
        """The call waits in an app_queue queue."""
        return self.action in ("queue", "fallback")


def route_of(decision: Decision) -> Route:
    """The simulator's view of a core decision."""
    return Route(
        action=str(decision.action),
        target=decision.target or "",
        dial=decision.dial or "",
        overflow=decision.overflow,
        overflow_after=float(decision.overflow_after),
        menu=decision.menu,
        form=decision.form,
        mode=str(decision.mode),
        phase=str(decision.phase),
        centre=decision.centre or "",
        city=decision.city or "",
        origin=decision.origin or "",
        expert=decision.expert or "",
    )


class CoreRouter:
    """The fast path: :func:`hotline_cti.core.routing.decide` in-process, decisions memoised per object."""

    __slots__ = ("_cache", "_routes", "table")

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self._cache = DecisionCache(table)  # the table's memo is this router's, as the FastAGI server's is its own
        # The core hands out cached Decision objects, so one Route per Decision object is enough.
        self._routes: dict[int, tuple[Decision, Route]] = {}

    def __call__(self, arrival: Arrival) -> Route:
        """Route one arrival at its own time."""
        now = dt.datetime.fromtimestamp(arrival.at, self.table.timezone)
        decision = decide(
            Call(arrival.dialled, arrival.caller, arrival.city, arrival.ivr, arrival.topic),
            self.table,
            now,
            self._cache,
        )
        hit = self._routes.get(id(decision))
        if hit is not None and hit[0] is decision:
            return hit[1]
        route = route_of(decision)
        self._routes[id(decision)] = (decision, route)
        return route


def route_from_variables(result_kind: str, target: str | None, variables: Mapping[str, str], fallback: str) -> Route:
    """A Route from what the generated dialplan set over FastAGI (``fallback``: the queue when nothing was decided)."""
    action = variables.get(cv.ACTION, "")
    if result_kind == "queue" and variables.get(cv.DECIDED) != cv.DECIDED_VALUE:
        action = cv.FALLBACK_ACTION
    if not action:
        action = cv.FALLBACK_ACTION if result_kind == "queue" else "retired"
    queue_target = target if result_kind == "queue" and target else variables.get(cv.TARGET, "") or fallback
    after = variables.get(cv.OVERFLOW_AFTER, "")
    return Route(
        action=action,
        target=queue_target if action in ("queue", cv.FALLBACK_ACTION) else variables.get(cv.TARGET, ""),
        dial=variables.get(cv.DIAL, "") or (target or "" if result_kind == "dial" else ""),
        overflow=variables.get(cv.OVERFLOW) or None,
        overflow_after=float(after) if after.isdigit() else 0.0,
        menu=variables.get(cv.MENU) == "1",  # the dialplan ran it; the model still spends its time
        form=variables.get(cv.FORM, ""),
        mode=variables.get(cv.MODE, ""),
        phase=variables.get(cv.PHASE, ""),
        centre=variables.get(cv.CENTRE, ""),
        city=variables.get(cv.CITY, ""),
        origin=variables.get(cv.ORIGIN, ""),
        expert=variables.get(cv.EXPERT, ""),
    )


def agi_runner(extensions_conf: str, source: str = "extensions.conf") -> DialplanRunner:
    """A dialplan runner over generated extensions.conf text (callers' keys are given per call)."""
    return DialplanRunner(parse_extensions(extensions_conf, source))


class AgiRouter:
    """The real path: the generated extensions.conf run by :class:`DialplanRunner`, asking a FastAGI controller."""

    def __init__(self, runner: DialplanRunner, fallback_queue: str) -> None:
        self.runner = runner
        self.fallback_queue = fallback_queue

    async def route(self, arrival: Arrival, call_id: str) -> Route:
        """Run the dialplan for one arrival (real FastAGI sessions over TCP)."""
        context = f"hotline-inbound-{arrival.city}" if arrival.city else "hotline-inbound"
        if arrival.city and context not in self.runner.contexts:
            context = "hotline-inbound"
        variables = {"CALLERID(num)": arrival.caller, "CALLERID(name)": ""}
        keys = () if arrival.ivr is None else (arrival.ivr, arrival.topic or "")  # the menu's key, then the topic
        result = await self.runner.run(context, arrival.dialled, variables, uniqueid=call_id, keys=keys)
        return route_from_variables(result.kind, result.target, result.variables, self.fallback_queue)


def prerouted(routes: Sequence[Route]) -> Callable[[Arrival], Route]:
    """A router that hands out routes decided earlier (e.g. by :func:`simulators.pbx.realtime.route_all`), in order."""
    it = iter(routes)
    return lambda arrival: next(it)
