"""The merger config compiled into plain lookup tables for the routing core.

Compiling once per config load keeps :func:`hotline_cti.core.routing.decide`
to a few dictionary look-ups per call.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hotline_cti.config.schema import AfterTransition, Hotline, MergerConfig, Scope, Seats
from hotline_cti.core.diversion import DiversionRule, compile_diversions
from hotline_cti.core.hours import ALWAYS, ServiceHours, parse_hours
from hotline_cti.core.model import Decision, Mode
from hotline_cti.core.numbers import DialledNumber, is_short_code
from hotline_cti.core.prompts import line_prompt_ids

MAIN_NUMBER = "12345"
MOBILE_PREFIX_DIGITS = 7  # 号段 + HLR code: the part of a mobile number that names its city


@dataclass(frozen=True, slots=True)
class Target:
    """Somewhere outside 12345's queues that Asterisk dials."""

    id: str
    name: str
    dial: str
    hours: ServiceHours = ALWAYS


@dataclass(frozen=True, slots=True)
class QueuePlan:
    id: str
    overflow: str | None  # queue id
    max_wait: int


@dataclass(slots=True)
class LinePlan:
    """One configured line, with its dates as epoch seconds for quick phase checks."""

    number: str
    name: str
    unit: str
    mode: Mode
    seats: Seats
    queue: str
    expert: str | None
    department: Target | None
    subcentre_scope: Scope | None
    subcentre_id: str | None
    subcentre_all: Target | None  # region-wide sub-centre
    subcentre_sites: dict[str, Target]  # city id -> site, per-city sub-centres
    emergency: Target | None
    cutover: float | None
    window_start: float | None
    window_end: float | None
    after_transition: AfterTransition
    prompts: dict[str, str]
    priority: int
    landline_area: str | None  # area code of a landline number, None for short codes


@dataclass(slots=True)
class RoutingTable:
    """Everything :func:`decide` needs, built by :func:`compile_config`."""

    region: str
    timezone: ZoneInfo
    region_hours: ServiceHours
    default_centre: str
    centre_by_city: dict[str, str]
    city_names: dict[str, str]
    city_by_area: dict[str, str]  # only area codes that name exactly one city
    shared_areas: dict[str, tuple[str, ...]]  # area codes several cities share
    queues: dict[str, QueuePlan]
    overflow_target: str
    overflow_wait: int
    welcome_prompt: str
    short: dict[str, LinePlan]  # short codes and their aliases
    landline: dict[tuple[str, str], LinePlan]  # (area code, local number)
    landline_local: dict[str, LinePlan]  # local numbers that are unique in the region
    lines: dict[str, LinePlan]  # by canonical number
    # first MOBILE_PREFIX_DIGITS digits of a mobile number -> city id; built outside the core
    # (hotline_cti.config.mobile) from libphonenumber's data and passed in as plain data
    mobile_city: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[object, ...], object] = field(default_factory=dict)
    parsed: dict[str, DialledNumber] = field(default_factory=dict)  # dialled text -> parts, bounded
    # Asterisk queue name -> its diversion rules (core/diversion.py); the memo of diverted decisions
    diversions: dict[str, tuple[DiversionRule, ...]] = field(default_factory=dict)
    diverted: dict[tuple[int, int], tuple[Decision, Decision]] = field(default_factory=dict)


def _midnight(day: dt.date, tz: ZoneInfo) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole months, clamped to the month's end (2021-08-31 + 6 → 2022-02-28)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def transition_window(line: Hotline, default_months: int) -> tuple[dt.date, dt.date] | None:
    """The line's transition window as [start, end) dates, or None when it has none."""
    window = line.transition
    if window is None:
        if line.mode is not Mode.MERGE or line.cutover is None or default_months == 0:
            return None
        return line.cutover, add_months(line.cutover, default_months)
    start = window.start or line.cutover
    if start is None:
        return None
    if window.end is not None:
        return start, window.end
    return start, add_months(start, default_months if window.months is None else window.months)


def _dial(trunk: str, number: str) -> str:
    return f"PJSIP/{number}@{trunk}"


def compile_config(cfg: MergerConfig, mobile_city: Mapping[str, str] | None = None) -> RoutingTable:
    """Compile a validated config into a :class:`RoutingTable`.

    ``mobile_city`` maps the first :data:`MOBILE_PREFIX_DIGITS` digits of a mobile number to a
    city id (see :func:`hotline_cti.config.compile.compile_table`, which supplies it); without
    it a mobile caller names no city.
    """
    tz = ZoneInfo(cfg.region.timezone)
    default_centre = next(c.id for c in cfg.centres if c.city is None)
    areas: dict[str, list[str]] = {}
    for city in cfg.cities:
        areas.setdefault(city.area_code, []).append(city.id)
    departments = {d.id: Target(d.id, d.name, d.dial, parse_hours(d.service_hours)) for d in cfg.departments}
    subcentres = {s.id: s for s in cfg.subcentres}
    only_area = cfg.cities[0].area_code if len(cfg.cities) == 1 else None
    city_area = {c.id: c.area_code for c in cfg.cities}

    lines: dict[str, LinePlan] = {}
    short: dict[str, LinePlan] = {}
    landline: dict[tuple[str, str], LinePlan] = {}
    local_count: dict[str, int] = {}
    for line in cfg.hotlines:
        window = transition_window(line, cfg.defaults.transition_months)
        seats = line.seats or (Seats.MERGED if line.mode in (Mode.MERGE, Mode.PARALLEL) else Seats.DEPARTMENT)
        department = departments.get(line.department) if line.department else None
        if department is None and line.mode in (Mode.MERGE, Mode.PARALLEL, Mode.LINKED):
            # Before cut-over the call goes where it always went: the department's own number.
            department = Target(f"dept-{line.number}", line.unit, line.dial or _dial(cfg.region.trunk, line.number))
        sub = subcentres.get(line.subcentre) if line.subcentre else None
        plan = LinePlan(
            number=line.number,
            name=line.name,
            unit=line.unit,
            mode=line.mode,
            seats=seats,
            queue=line.queue or "general",
            expert=line.expert,
            department=department,
            subcentre_scope=sub.scope if sub else None,
            subcentre_id=sub.id if sub else None,
            subcentre_all=Target(sub.id, sub.name, sub.dial)
            if sub and sub.scope is Scope.PROVINCE and sub.dial
            else None,
            subcentre_sites={site.city: Target(f"{sub.id}@{site.city}", sub.name, site.dial) for site in sub.sites}
            if sub
            else {},
            emergency=Target(line.number, line.name, line.dial or _dial(cfg.region.trunk, line.number))
            if line.mode is Mode.TRANSFER
            else None,
            cutover=_midnight(line.cutover, tz) if line.cutover else None,
            window_start=_midnight(window[0], tz) if window else None,
            window_end=_midnight(window[1], tz) if window else None,
            after_transition=line.after_transition or cfg.defaults.after_transition,
            prompts=line_prompt_ids(line, cfg.defaults),
            priority=line.priority,
            landline_area=None,
        )
        lines[line.number] = plan
        for number in (line.number, *line.aliases):
            if is_short_code(number):
                short[number] = plan
            else:
                area = city_area[line.city] if line.city else only_area
                if area is None:
                    continue  # rejected by the checks: a landline needs its city
                plan.landline_area = area
                landline[(area, number)] = plan
                local_count[number] = local_count.get(number, 0) + 1
    landline_local = {number: plan for (_, number), plan in landline.items() if local_count[number] == 1}
    return RoutingTable(
        region=cfg.region.id,
        timezone=tz,
        region_hours=parse_hours(cfg.service_hours),
        default_centre=default_centre,
        centre_by_city={c.city: c.id for c in cfg.centres if c.city is not None},
        city_names={c.id: c.name for c in cfg.cities},
        city_by_area={area: ids[0] for area, ids in areas.items() if len(ids) == 1},
        shared_areas={area: tuple(ids) for area, ids in areas.items() if len(ids) > 1},
        queues={q.id: QueuePlan(q.id, q.overflow, q.max_wait or cfg.overflow.max_wait) for q in cfg.queues},
        overflow_target=cfg.overflow.target,
        overflow_wait=cfg.overflow.max_wait,
        welcome_prompt=cfg.defaults.welcome_prompt,
        short=short,
        landline=landline,
        landline_local=landline_local,
        lines=lines,
        mobile_city={p: c for p, c in (mobile_city or {}).items() if c in city_area},
        diversions=compile_diversions(cfg, cfg.overflow.target),
    )
