"""Service hours: ``7x24`` or weekly windows such as ``mon-fri 08:30-17:30; sat 09:00-12:00``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class ServiceHours:
    """Open windows per weekday (0 = Monday) as minutes since midnight; ``always`` for 7×24."""

    always: bool
    windows: tuple[tuple[int, int, int], ...] = ()

    def is_open(self, local: dt.datetime) -> bool:
        """Whether the service is open at the given local time."""
        if self.always:
            return True
        return self.is_open_as(local, local.weekday())

    def is_open_as(self, local: dt.datetime, day: int) -> bool:
        """Whether the service is open at ``local``'s time of day on weekday ``day`` (a make-up working day)."""
        if self.always:
            return True
        minute = local.hour * 60 + local.minute
        return any(d == day and start <= minute < end for d, start, end in self.windows)


ALWAYS = ServiceHours(True)


def _minutes(text: str) -> int:
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day")
    return hours * 60 + minutes


def parse_hours(text: str) -> ServiceHours:
    """Parse a service-hours string; raise ValueError naming the bad part."""
    spec = text.strip().lower().replace("×", "x")
    if spec in ("7x24", "24x7", "always"):
        return ALWAYS
    windows = []
    for part in (p.strip() for p in spec.split(";") if p.strip()):
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a window like 'mon-fri 08:30-17:30' (or use '7x24')")
        first, _, last = match["days"].partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{match['days']!r}: days are mon tue wed thu fri sat sun")
        a, b = DAYS.index(first), DAYS.index(last or first)
        start, end = _minutes(match["start"]), _minutes(match["end"])
        if end <= start:
            raise ValueError(f"{part!r}: the window closes before it opens")
        for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]:
            windows.append((day, start, end))
    if not windows:
        raise ValueError("no service window given (use '7x24' for round-the-clock service)")
    return ServiceHours(False, tuple(windows))
