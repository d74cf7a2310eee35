"""Today's figures for the wall: the KPI accumulator for ended calls, plus the calls still in progress.

Every figure is counted by :class:`hotline_cti.kpi.accumulator.KpiAccumulator`, the same code as
``hotline-cti report``, so the wall and the report agree on what is offered, answered and abandoned.
Ended calls are added once, when they hang up (O(1)); calls in progress are counted again at each view,
so an answered call, a caller on a retired number or a transfer to 110 shows at once. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hotline_cti.kpi.accumulator import KpiAccumulator, LineKpi, origin_line
from hotline_cti.kpi.counts import AnswerCount
from hotline_cti.records.model import CallRecord, Outcome


@dataclass(frozen=True, slots=True)
class DayView:
    """What the wall shows for today: finished calls plus those in progress."""

    calls: int  # every call that started today, finished or not
    total: AnswerCount
    by_line: dict[str, LineKpi]  # volume, old-number calls and answers by origin line
    by_queue: dict[str, AnswerCount]
    by_expert: dict[str, AnswerCount]
    by_subcentre: dict[str, AnswerCount]
    transfers: dict[str, int]  # target -> transfers
    ratings: dict[int, int]  # 1 满意 / 2 基本满意 / 3 不满意 -> count

    @property
    def satisfaction(self) -> float | None:
        """满意率: (满意 + 基本满意) / all ratings; None without ratings."""
        rated = sum(self.ratings.values())
        return (self.ratings[1] + self.ratings[2]) / rated if rated else None


def _plus(a: AnswerCount, b: AnswerCount) -> AnswerCount:
    return AnswerCount(
        a.offered + b.offered, a.answered + b.answered, a.abandoned + b.abandoned, a.short_abandoned + b.short_abandoned
    )


def _plus_map(a: dict[str, AnswerCount], b: dict[str, AnswerCount]) -> dict[str, AnswerCount]:
    return {key: _plus(a.get(key, AnswerCount()), b.get(key, AnswerCount())) for key in a.keys() | b.keys()}


def _plus_counts(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in a.keys() | b.keys()}


class DayFigures:
    """Ended calls go into a long-lived KPI accumulator (O(1) each); calls in progress are counted per view."""

    def __init__(self, tz: dt.tzinfo, ended: Iterable[CallRecord] = ()) -> None:
        self.tz = tz
        self.kpi = KpiAccumulator(tz=tz)
        self.counted: set[str] = set()  # call ids already in the accumulator
        for rec in ended:
            self.finish(rec)

    def finish(self, rec: CallRecord) -> None:
        """The call ended: count it (once)."""
        if rec.call_id not in self.counted:
            self.counted.add(rec.call_id)
            self.kpi.add(rec)

    def view(self, in_progress: Iterable[CallRecord] = ()) -> DayView:
        """Today's figures; costs the number of groups plus the calls in progress, not the day's calls.

        A call in progress counts by its outcome so far (answered once an agent took it, by the report's
        rules); one still waiting or ringing (outcome ``active``) counts in the volume only.
        """
        pending = [rec for rec in in_progress if rec.call_id not in self.counted]
        done = self.kpi.snapshot()
        live = KpiAccumulator(tz=self.tz).add_all(pending).snapshot()  # skips outcome 'active'
        by_line: dict[str, LineKpi] = {}
        for line in done.by_line.keys() | live.by_line.keys():
            a, b = done.by_line.get(line, LineKpi()), live.by_line.get(line, LineKpi())
            by_line[line] = LineKpi(
                a.calls + b.calls,
                a.old_number + b.old_number,
                a.retired + b.retired,
                a.guidance + b.guidance,
                _plus(a.answers, b.answers),
            )
        waiting = [rec for rec in pending if rec.outcome is Outcome.ACTIVE]
        for rec in waiting:
            line_kpi = by_line.setdefault(origin_line(rec), LineKpi())
            line_kpi.calls += 1
            line_kpi.old_number += bool(rec.origin and rec.mode != "main")
        return DayView(
            calls=done.calls + live.calls + len(waiting),
            total=_plus(done.total, live.total),
            by_line=by_line,
            by_queue=_plus_map(done.by_queue, live.by_queue),
            by_expert=_plus_map(done.by_expert, live.by_expert),
            by_subcentre=_plus_map(done.by_subcentre, live.by_subcentre),
            transfers=_plus_counts(done.transfers, live.transfers),
            ratings=_plus_counts(done.ratings, live.ratings),
        )
