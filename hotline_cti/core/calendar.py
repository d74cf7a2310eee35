"""Exception dates compiled for the routing core: holidays (节假日), make-up working days (调休) and closures.

Every entry is turned, once per config load, into runs of epoch seconds between local midnights, so a
call costs one ``bisect`` on the seconds it already has: no date is parsed or built per call.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hotline_cti.config.schema import Department, Holiday, MergerConfig
from hotline_cti.core.hours import DAYS, parse_hours

MAX_ENTRY_DAYS = 366  # one entry spans at most a year: a typo in a year must not expand to millions of days


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: hashed by identity, cheap in the decision cache key
class DayEffect:
    """What one calendar entry does on its days."""

    name: str
    first: dt.date
    last: dt.date  # inclusive
    closed: bool  # False: a make-up working day (调休上班)
    hours_of: int  # weekday (0 = Monday) whose hours a make-up working day keeps
    prompt: str | None  # closed: played instead of 'closed' by the departments it closes
    message: str | None  # played on 12345 before the welcome (region-wide entries)

    @property
    def days(self) -> str:
        """``2026-10-01..2026-10-07`` or one date."""
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"

    def describe(self) -> str:
        """``2026-10-01..2026-10-07 国庆节 (closed)`` for reasons and views."""
        kind = "closed" if self.closed else f"make-up working day, {DAYS[self.hours_of]} hours"
        return f"{self.days} {self.name} ({kind})"


@dataclass(frozen=True, slots=True)
class DayCalendar:
    """Runs of days with an effect: ``effects[i]`` holds from ``bounds[i-1]`` until ``bounds[i]``."""

    bounds: tuple[float, ...]
    effects: tuple[DayEffect | None, ...]  # one more than bounds

    def at(self, ts: float) -> DayEffect | None:
        """The effect in force at epoch seconds ``ts``, or None on an ordinary day."""
        return self.effects[bisect_right(self.bounds, ts)]

    def entries(self) -> tuple[DayEffect, ...]:
        """Every effect once, in date order."""
        seen: dict[int, DayEffect] = {}
        for effect in self.effects:
            if effect is not None:
                seen.setdefault(id(effect), effect)
        return tuple(seen.values())

    def upcoming(self, ts: float) -> DayEffect | None:
        """The effect in force at ``ts``, else the next one to come, else None."""
        i = bisect_right(self.bounds, ts)
        for effect in self.effects[i:]:
            if effect is not None:
                return effect
        return None


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


def _midnight(day: dt.date, tz: ZoneInfo) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def build_calendar(days: dict[dt.date, DayEffect], tz: ZoneInfo) -> DayCalendar | None:
    """Runs of consecutive days with the same effect; None when there are no days."""
    if not days:
        return None
    bounds: list[float] = []
    effects: list[DayEffect | None] = [None]
    previous: dt.date | None = None
    for day in sorted(days):
        effect = days[day]
        if previous is None or day != previous + dt.timedelta(days=1) or effects[-1] is not effect:
            if previous is not None and day != previous + dt.timedelta(days=1):
                bounds.append(_midnight(previous + dt.timedelta(days=1), tz))
                effects.append(None)
            bounds.append(_midnight(day, tz))
            effects.append(effect)
        previous = day
    assert previous is not None
    bounds.append(_midnight(previous + dt.timedelta(days=1), tz))
    effects.append(None)
    return DayCalendar(tuple(bounds), tuple(effects))


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
