"""The KPI accumulator: add finished call records one at a time (O(1) each), read a snapshot at any moment.

The same code serves the report (all records of a period at once, :func:`compute_kpis`) and the
wallboard (today's records as they finish), so both show the same figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from hotline_cti.kpi.counts import ANSWER_TARGET, SHORT_ABANDON_S, AnswerCount
from hotline_cti.kpi.waits import WaitStats
from hotline_cti.records.model import RATING_LABELS, CallRecord, Outcome

MAIN_LINE = "12345"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
"""China Standard Time (no daylight saving): the hour-of-day figures are local hours."""


def origin_line(record: CallRecord) -> str:
    """The line a call counts against: its origin line, or 12345 itself."""
    return record.origin or MAIN_LINE


@dataclass(slots=True)
class LineKpi:
    """One origin line: its volume, how much of it still comes in on the old number, and its answer counts."""

    calls: int = 0
    old_number: int = 0  # dialled on the line's own number rather than 12345
    retired: int = 0  # reached a retired number after its transition window (prompt, hang-up)
    guidance: int = 0  # a line outside the merger: told where to call
    answers: AnswerCount = field(default_factory=AnswerCount)

    def copy(self) -> LineKpi:
        """An independent copy."""
        return LineKpi(self.calls, self.old_number, self.retired, self.guidance, self.answers.copy())


@dataclass(slots=True)
class KpiSnapshot:
    """The KPIs of a set of finished calls."""

    calls: int
    outcomes: dict[str, int]
    total: AnswerCount
    by_line: dict[str, LineKpi]
    by_queue: dict[str, AnswerCount]
    by_expert: dict[str, AnswerCount]
    by_subcentre: dict[str, AnswerCount]
    by_hour: dict[int, AnswerCount]  # local hour 0..23
    waits: WaitStats  # answered and counted-abandoned calls that waited in a queue
    answered_waits: WaitStats  # answered calls only (average speed of answer)
    transfers: dict[str, int]  # target -> transfers
    ratings: dict[int, int]  # 1 满意 / 2 基本满意 / 3 不满意 -> count
    target: float = ANSWER_TARGET
    short_abandon_s: float = SHORT_ABANDON_S

    @property
    def rated(self) -> int:
        """Calls with a rating."""
        return sum(self.ratings.values())

    @property
    def satisfaction(self) -> float | None:
        """满意率 = (满意 + 基本满意) / rated calls; None without ratings."""
        rated = self.rated
        return (self.ratings[1] + self.ratings[2]) / rated if rated else None

    def rating_shares(self) -> dict[str, float | None]:
        """Share of each rating label among rated calls."""
        rated = self.rated
        return {label: (self.ratings[k] / rated if rated else None) for k, label in RATING_LABELS.items()}

    def flagged(self) -> list[tuple[str, str, AnswerCount]]:
        """(kind, name, counts) of every line, queue, expert group and sub-centre below the answer target."""
        groups: list[tuple[str, dict[str, AnswerCount]]] = [
            ("line", {k: v.answers for k, v in self.by_line.items()}),
            ("queue", self.by_queue),
            ("expert", self.by_expert),
            ("subcentre", self.by_subcentre),
        ]
        return [(kind, name, c) for kind, table in groups for name, c in sorted(table.items()) if c.below(self.target)]


class KpiAccumulator:
    """Incremental KPIs: :meth:`add` each finished record (O(1)), :meth:`snapshot` whenever figures are needed.

    Records still ``active`` are ignored: add a call once, when it has finished.
    """

    def __init__(
        self, *, tz: dt.tzinfo = CHINA_TZ, target: float = ANSWER_TARGET, short_abandon_s: float = SHORT_ABANDON_S
    ) -> None:
        self.tz = tz
        self.target = target
        self.short_abandon_s = short_abandon_s
        self._calls = 0
        self._outcomes: dict[str, int] = {}
        self._total = AnswerCount()
        self._by_line: dict[str, LineKpi] = {}
        self._by_queue: dict[str, AnswerCount] = {}
        self._by_expert: dict[str, AnswerCount] = {}
        self._by_subcentre: dict[str, AnswerCount] = {}
        self._by_hour: dict[int, AnswerCount] = {}
        self._waits = WaitStats()
        self._answered_waits = WaitStats()
        self._transfers: dict[str, int] = {}
        self._ratings = dict.fromkeys(RATING_LABELS, 0)

    def add(self, record: CallRecord) -> None:
        """Count one finished call."""
        if record.outcome is Outcome.ACTIVE:
            return
        short = self.short_abandon_s
        self._calls += 1
        self._outcomes[str(record.outcome)] = self._outcomes.get(str(record.outcome), 0) + 1
        self._total.add(record, short)
        line = self._by_line.setdefault(origin_line(record), LineKpi())
        line.calls += 1
        line.old_number += bool(record.origin and record.mode != "main")
        line.retired += record.outcome is Outcome.RETIRED
        line.guidance += record.outcome is Outcome.GUIDANCE
        line.answers.add(record, short)
        if record.queue:
            self._by_queue.setdefault(record.queue, AnswerCount()).add(record, short)
        if record.expert:
            self._by_expert.setdefault(record.expert, AnswerCount()).add(record, short)
        if record.action == "subcentre" and record.target:
            self._by_subcentre.setdefault(record.target, AnswerCount()).add(record, short)
        hour = record.started.astimezone(self.tz).hour
        self._by_hour.setdefault(hour, AnswerCount()).add(record, short)
        self._add_wait(record)
        for target in record.transfers:
            self._transfers[target] = self._transfers.get(target, 0) + 1
        if record.rating in self._ratings:
            self._ratings[record.rating] += 1

    def _add_wait(self, record: CallRecord) -> None:
        if record.wait is None:
            return
        if record.outcome in (Outcome.ANSWERED, Outcome.TRANSFERRED):
            self._waits.add(record.wait)
            self._answered_waits.add(record.wait)
        elif record.outcome is Outcome.ABANDONED and record.wait >= self.short_abandon_s:
            self._waits.add(record.wait)

    def add_all(self, records: Iterable[CallRecord]) -> KpiAccumulator:
        """Add every record; returns self so a batch reads ``KpiAccumulator().add_all(recs).snapshot()``."""
        for record in records:
            self.add(record)
        return self

    def snapshot(self) -> KpiSnapshot:
        """The figures so far, as an independent copy (later :meth:`add` calls do not change it)."""
        return KpiSnapshot(
            calls=self._calls,
            outcomes=dict(self._outcomes),
            total=self._total.copy(),
            by_line={k: v.copy() for k, v in self._by_line.items()},
            by_queue={k: v.copy() for k, v in self._by_queue.items()},
            by_expert={k: v.copy() for k, v in self._by_expert.items()},
            by_subcentre={k: v.copy() for k, v in self._by_subcentre.items()},
            by_hour={k: v.copy() for k, v in self._by_hour.items()},
            waits=self._waits.copy(),
            answered_waits=self._answered_waits.copy(),
            transfers=dict(self._transfers),
            ratings=dict(self._ratings),
            target=self.target,
            short_abandon_s=self.short_abandon_s,
        )


def compute_kpis(
    records: Iterable[CallRecord],
    *,
    tz: dt.tzinfo = CHINA_TZ,
    target: float = ANSWER_TARGET,
    short_abandon_s: float = SHORT_ABANDON_S,
) -> KpiSnapshot:
    """The KPIs of ``records`` (finished calls of a period)."""
    return KpiAccumulator(tz=tz, target=target, short_abandon_s=short_abandon_s).add_all(records).snapshot()
