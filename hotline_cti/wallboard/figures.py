"""A day's figures from call records: answer rates, volume by origin line, transfers, satisfaction.

This is the wallboard's one counting function (:func:`day_figures`); when the KPI module of
issue #4 lands it can be swapped in here without touching the live state or the views.
Pure: records in, figures out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hotline_cti.records.model import CallRecord, Outcome

ANSWERED_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.TRANSFERRED})
UNANSWERED_OUTCOMES = frozenset({Outcome.ABANDONED, Outcome.OVERFLOWED, Outcome.FAILED})
MAIN_LINE = "12345"


@dataclass(slots=True)
class Rate:
    """Answered against not answered (abandoned, overflowed unanswered, failed); waiting calls are not counted."""

    answered: int = 0
    unanswered: int = 0

    @property
    def rate(self) -> float | None:
        """Answer rate 0..1, None before the first finished call."""
        done = self.answered + self.unanswered
        return self.answered / done if done else None

    def add(self, record: CallRecord) -> None:
        """Count one record if it reached an answer or gave up."""
        if record.outcome in ANSWERED_OUTCOMES:
            self.answered += 1
        elif record.outcome in UNANSWERED_OUTCOMES:
            self.unanswered += 1


@dataclass(slots=True)
class LineVolume:
    """Calls of one origin line: all of them, those dialled on the old number, and their answer rate."""

    calls: int = 0
    old_number: int = 0  # dialled on the line's own (old) number rather than through 12345's menu
    rate: Rate = field(default_factory=Rate)


@dataclass(slots=True)
class DayFigures:
    """What the wall shows for today (or any span of records)."""

    calls: int = 0
    total: Rate = field(default_factory=Rate)
    by_queue: dict[str, Rate] = field(default_factory=dict)
    by_line: dict[str, LineVolume] = field(default_factory=dict)
    by_expert: dict[str, Rate] = field(default_factory=dict)
    by_subcentre: dict[str, Rate] = field(default_factory=dict)  # calls routed to a sub-centre, by target
    transfers: dict[str, int] = field(default_factory=dict)  # target -> count
    ratings: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})

    @property
    def satisfaction(self) -> float | None:
        """满意率: (满意 + 基本满意) / all ratings; None without ratings."""
        total = sum(self.ratings.values())
        return (self.ratings[1] + self.ratings[2]) / total if total else None


def origin_line(record: CallRecord) -> str:
    """The line a call counts against: its origin, or 12345 itself."""
    return record.origin or MAIN_LINE


def day_figures(records: Iterable[CallRecord]) -> DayFigures:
    """Count ``records`` (the caller filters them to the day)."""
    out = DayFigures()
    for rec in records:
        out.calls += 1
        line = out.by_line.setdefault(origin_line(rec), LineVolume())
        line.calls += 1
        if rec.origin and rec.mode != "main":
            line.old_number += 1
        if rec.queue:
            out.total.add(rec)
            line.rate.add(rec)
            out.by_queue.setdefault(rec.queue, Rate()).add(rec)
            if rec.expert:
                out.by_expert.setdefault(rec.expert, Rate()).add(rec)
        if rec.action == "subcentre" and rec.target:
            out.by_subcentre.setdefault(rec.target, Rate()).add(rec)
        for target in rec.transfers:
            out.transfers[target] = out.transfers.get(target, 0) + 1
        if rec.rating is not None and rec.rating in out.ratings:
            out.ratings[rec.rating] += 1
    return out
