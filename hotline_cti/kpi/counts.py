"""What counts as offered, answered and abandoned, and the per-group answer counter.

Definitions (docs/reports.md repeats them):

* **Offered** — a finished call that was put to agents of 12345, an expert seat, a department or a
  sub-centre: outcome answered, transferred, abandoned, overflowed or failed. Retired-number and
  guidance calls are never offered (a prompt, then hang-up), nor are emergency put-throughs (the
  emergency line's own seats, not ours), nor calls still active.
* **Short abandon** — the caller hung up within :data:`SHORT_ABANDON_S` seconds of joining the queue.
  Such a call is counted but left out of *offered*: nobody could have answered it in time.
* **Answer rate** (接通率) — answered / offered, against the operating rules' 95% floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline_cti.records.model import CallRecord, Outcome

ANSWER_TARGET = 0.95
"""接通率不低于95%: the operating rules' floor for 12345, expert seats and sub-centres."""

SHORT_ABANDON_S = 5.0
"""Abandons after less than this many seconds of waiting are not counted as offered."""

ANSWERED = frozenset({Outcome.ANSWERED, Outcome.TRANSFERRED})
UNANSWERED = frozenset({Outcome.ABANDONED, Outcome.OVERFLOWED, Outcome.FAILED})


def is_short_abandon(record: CallRecord, short_abandon_s: float = SHORT_ABANDON_S) -> bool:
    """True for an abandon whose wait is known and under ``short_abandon_s``."""
    return record.outcome is Outcome.ABANDONED and record.wait is not None and record.wait < short_abandon_s


@dataclass(slots=True)
class AnswerCount:
    """Offered, answered and abandoned calls of one group (line, queue, expert group, sub-centre, hour)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0  # counted abandons (short ones excluded)
    short_abandoned: int = 0

    @property
    def rate(self) -> float | None:
        """Answer rate 0..1; None when nothing was offered."""
        return self.answered / self.offered if self.offered else None

    @property
    def abandon_rate(self) -> float | None:
        """Counted abandons / offered; None when nothing was offered."""
        return self.abandoned / self.offered if self.offered else None

    def below(self, target: float = ANSWER_TARGET) -> bool:
        """True when calls were offered and the answer rate is under ``target``."""
        rate = self.rate
        return rate is not None and rate < target

    def add(self, record: CallRecord, short_abandon_s: float = SHORT_ABANDON_S) -> None:
        """Count one finished record; records never offered to agents change nothing."""
        if record.outcome in ANSWERED:
            self.offered += 1
            self.answered += 1
        elif is_short_abandon(record, short_abandon_s):
            self.short_abandoned += 1
        elif record.outcome in UNANSWERED:
            self.offered += 1
            if record.outcome is Outcome.ABANDONED:
                self.abandoned += 1

    def copy(self) -> AnswerCount:
        """An independent copy (snapshots must not move when the accumulator does)."""
        return AnswerCount(self.offered, self.answered, self.abandoned, self.short_abandoned)
