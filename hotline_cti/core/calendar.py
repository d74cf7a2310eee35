"""Exception dates compiled for the routing core: holidays (节假日), make-up working days (调休) and closures.

Every entry is turned, once per config load, into runs of epoch seconds between local midnights, so a
call costs one ``bisect`` on the seconds it already has: no date is parsed or built per call.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hotline_cti.core.hours import DAYS

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
