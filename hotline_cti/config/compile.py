"""A loaded config compiled into the routing table a controller serves.

The routing core (:mod:`hotline_cti.core`) only reads the plain :class:`RoutingTable`; building it
from the pydantic model happens here, once per load. The data it needs from outside the config
file — the mobile prefixes of the region's cities, read from the ``phonenumbers`` package — is
gathered by :func:`compile_table` and passed in as a plain dict.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from hotline_cti.config.calendar import calendar_effects, department_calendars, main_calendar
from hotline_cti.config.callers import compile_callers
from hotline_cti.config.diversion import compile_diversions
from hotline_cti.config.mobile import mobile_city_prefixes
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.core.hours import parse_hours
from hotline_cti.core.model import Mode, Scope, Seats
from hotline_cti.core.naming import default_centre
from hotline_cti.core.numbers import is_short_code
from hotline_cti.core.prompts import line_prompt_ids
from hotline_cti.core.table import LinePlan, QueuePlan, RoutingTable, Target


def compile_table(cfg: MergerConfig) -> RoutingTable:
    """The routing table for ``cfg``, with its mobile prefixes."""
    return compile_config(cfg, mobile_city=mobile_city_prefixes(cfg))


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
    region_centre = default_centre(cfg.centres)
    areas: dict[str, list[str]] = {}
    for city in cfg.cities:
        areas.setdefault(city.area_code, []).append(city.id)
    effects = calendar_effects(cfg)
    calendars = department_calendars(cfg, tz, effects)
    departments = {
        d.id: Target(d.id, d.name, d.dial, parse_hours(d.service_hours), calendars.get(d.id)) for d in cfg.departments
    }
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
        numbers = (line.number, *line.aliases)
        # A landline needs its city's area code (the checks refuse one without); short codes have none.
        area = city_area[line.city] if line.city else only_area
        landline_area = area if area is not None and not all(map(is_short_code, numbers)) else None
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
            landline_area=landline_area,
        )
        lines[line.number] = plan
        for number in numbers:
            if is_short_code(number):
                short[number] = plan
            elif landline_area is not None:
                landline[(landline_area, number)] = plan
                local_count[number] = local_count.get(number, 0) + 1
    landline_local = {number: plan for (_, number), plan in landline.items() if local_count[number] == 1}
    return RoutingTable(
        region=cfg.region.id,
        timezone=tz,
        region_hours=parse_hours(cfg.service_hours),
        default_centre=region_centre,
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
        main_calendar=main_calendar(cfg, tz, effects),
        callers=compile_callers(cfg),
        diversions=compile_diversions(cfg, cfg.overflow.target),
    )
