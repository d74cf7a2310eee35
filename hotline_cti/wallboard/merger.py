"""The merger view: per retired or parallel line, this week's calls, the share still dialled on the old
number, and the days left in its transition window — the figure that says when a number can be switched off;
and the exception day (holiday, 调休, closure) its department keeps today or next.

Pure. Phases come from the routing core (:func:`hotline_cti.core.routing.phase_of`) and the window from the
compiled :class:`~hotline_cti.core.table.LinePlan`, so the wall and the router never disagree about dates.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hotline_cti.core.calendar import DayCalendar
from hotline_cti.core.model import Mode, Phase
from hotline_cti.core.routing import phase_of
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.model import CallRecord

MERGER_MODES = (Mode.MERGE, Mode.PARALLEL)  # 整体并入 (retired after the window) and 双号并行
DAY = 86400.0


def week_start(now: dt.datetime, table: RoutingTable) -> dt.datetime:
    """Monday 00:00 of ``now``'s week in the region's timezone."""
    local = now.astimezone(table.timezone)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=table.timezone)


def day_start(now: dt.datetime, table: RoutingTable) -> dt.datetime:
    """00:00 of ``now``'s day in the region's timezone."""
    local = now.astimezone(table.timezone)
    return dt.datetime(local.year, local.month, local.day, tzinfo=table.timezone)


@dataclass(frozen=True, slots=True)
class MergerRow:
    """One line of the merger view."""

    number: str
    name: str
    mode: str
    phase: str
    calls_week: int  # calls for this line this week, on the old number or through 12345's menu
    old_number_week: int  # of which dialled on the old number
    window_end: str | None  # last day of the transition window (local date), None without a window
    days_left: int | None  # whole days until the window closes, while in transition
    days_to_cutover: int | None  # whole days until the cut-over, before it
    calendar: str | None = None  # its department's exception day in force, else the next one (holidays, 调休)

    @property
    def old_share(self) -> float | None:
        """Share of this line's calls still dialled on the old number; None without calls."""
        return self.old_number_week / self.calls_week if self.calls_week else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the page."""
        return {
            "number": self.number,
            "name": self.name,
            "mode": self.mode,
            "phase": self.phase,
            "calls_week": self.calls_week,
            "old_number_week": self.old_number_week,
            "old_share": self.old_share,
            "window_end": self.window_end,
            "days_left": self.days_left,
            "days_to_cutover": self.days_to_cutover,
            "calendar": self.calendar,
        }


def calendar_text(calendar: DayCalendar | None, ts: float) -> str | None:
    """``today: 2026-10-01..2026-10-07 国庆节 (closed)`` or ``next: ...``; None without exception days to come."""
    if calendar is None:
        return None
    effect = calendar.upcoming(ts)
    if effect is None:
        return None
    return f"{'today' if calendar.at(ts) is effect else 'next'}: {effect.describe()}"


def _days_until(ts: float, until: float | None) -> int | None:
    return None if until is None else max(0, math.ceil((until - ts) / DAY))


LineCounts = dict[str, tuple[int, int]]  # origin line -> (calls, of which dialled on the old number)


def count_lines(records: Iterable[CallRecord], into: LineCounts | None = None) -> LineCounts:
    """Add ``records`` to per-line counts (a new dict unless ``into`` is given)."""
    counts = {} if into is None else into
    for rec in records:
        if rec.origin:
            calls, old = counts.get(rec.origin, (0, 0))
            counts[rec.origin] = (calls + 1, old + (rec.mode != Mode.MAIN))
    return counts


def merger_rows(table: RoutingTable, week: Iterable[CallRecord] | LineCounts, now: dt.datetime) -> list[MergerRow]:
    """Rows for every merge or parallel line, in config order; ``week`` is this week's calls or their counts."""
    counts = week if isinstance(week, dict) else count_lines(week)
    ts = now.timestamp()
    rows = []
    for number, line in table.lines.items():
        if line.mode not in MERGER_MODES:
            continue
        phase = phase_of(line, ts)
        end = line.window_end
        last_day = None
        if end is not None:  # window_end is the exclusive midnight: the window's last day is the day before
            last_day = (dt.datetime.fromtimestamp(end, table.timezone) - dt.timedelta(days=1)).date().isoformat()
        rows.append(
            MergerRow(
                number=number,
                name=line.name,
                mode=str(line.mode),
                phase=str(phase),
                calls_week=counts.get(number, (0, 0))[0],
                old_number_week=counts.get(number, (0, 0))[1],
                window_end=last_day,
                days_left=_days_until(ts, end) if phase is Phase.TRANSITION else None,
                days_to_cutover=_days_until(ts, line.cutover) if phase is Phase.BEFORE else None,
                calendar=calendar_text(line.department.calendar if line.department else None, ts),
            )
        )
    return rows
