"""The merger file's holidays (节假日), make-up working days (调休) and closures, compiled into the core's day
calendars (core/calendar.py) once per config load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from hotline_cti.config.schema import Department, Holiday, MergerConfig
from hotline_cti.core.calendar import MAX_ENTRY_DAYS, DayCalendar, DayEffect, build_calendar
from hotline_cti.core.hours import DAYS, parse_hours


def entry_days(entry: Holiday) -> list[dt.date]:
    """The dates an entry covers (at most :data:`MAX_ENTRY_DAYS`; the checks refuse longer ones)."""
    last = entry.until or entry.date
    count = min((last - entry.date).days + 1, MAX_ENTRY_DAYS)
    return [entry.date + dt.timedelta(days=i) for i in range(max(count, 0))]


def effect_of(entry: Holiday) -> DayEffect:
    """The effect of one entry."""
    hours_of = DAYS.index(entry.hours_of) if entry.hours_of else 0
    return DayEffect(
        entry.name, entry.date, entry.until or entry.date, not entry.workday, hours_of, entry.prompt, entry.message
    )


def _days(entries: Iterable[tuple[Holiday, DayEffect]]) -> dict[dt.date, DayEffect]:
    out: dict[dt.date, DayEffect] = {}
    for entry, effect in entries:
        for day in entry_days(entry):
            out[day] = effect
    return out


def follows_region(department: Department) -> bool:
    """Whether the region's calendar applies: weekly hours (a 7×24 service has no holidays) and public_holidays."""
    return department.public_holidays and not parse_hours(department.service_hours).always


def department_calendars(
    cfg: MergerConfig, tz: ZoneInfo, effects: list[tuple[Holiday, DayEffect]] | None = None
) -> dict[str, DayCalendar]:
    """Department id -> its calendar (the region's where it follows it, its own entries over them)."""
    effects = effects if effects is not None else [(entry, effect_of(entry)) for entry in cfg.holidays]
    region = _days((e, f) for e, f in effects if not e.departments)
    shared = build_calendar(region, tz)  # one object for every department on the plain region calendar
    out: dict[str, DayCalendar] = {}
    for dept in cfg.departments:
        own = [(e, f) for e, f in effects if dept.id in e.departments]
        base = region if follows_region(dept) else {}
        calendar = build_calendar({**base, **_days(own)}, tz) if own else (shared if base else None)
        if calendar is not None:
            out[dept.id] = calendar
    return out


def main_calendar(
    cfg: MergerConfig, tz: ZoneInfo, effects: list[tuple[Holiday, DayEffect]] | None = None
) -> DayCalendar | None:
    """12345's own calendar: only the region's entries that carry an exception ``message``."""
    effects = effects if effects is not None else [(entry, effect_of(entry)) for entry in cfg.holidays]
    return build_calendar(_days((e, f) for e, f in effects if not e.departments and e.message is not None), tz)


def calendar_effects(cfg: MergerConfig) -> list[tuple[Holiday, DayEffect]]:
    """Every entry with its effect, built once so the departments and 12345 share the objects."""
    return [(entry, effect_of(entry)) for entry in cfg.holidays]
