"""Callback (回呼) figures, and the policy that lets a reached callback count its original call as answered.

* **offered** — the caller pressed the callback key (or a diversion offered it);
* **accepted** — the caller confirmed a number;
* **answered** — an agent took the callback (and heard who it is);
* **reached** — the caller picked up and talked to that agent.

The original call of a callback ends without an agent (the caller left the queue with the key), so it
counts as offered and not answered, unless the merger file's ``callback.counts_as_answered`` is true:
then a call whose callback reached the caller counts as answered in the answer rate (docs/queues.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from hotline_cti.kpi.counts import UNANSWERED
from hotline_cti.records.callback import CallbackRecord, CallbackStatus
from hotline_cti.records.model import CallRecord, Outcome, call_key


@dataclass(slots=True)
class CallbackCounts:
    offered: int = 0
    accepted: int = 0
    answered: int = 0
    reached: int = 0
    given_up: int = 0
    listed: int = 0  # abandoned callers listed for a callback by policy (not offered: they had hung up)

    def add(self, rec: CallbackRecord) -> None:
        if rec.source == "abandoned":
            self.listed += 1
        else:
            self.offered += 1
        self.accepted += rec.accepted is not None
        self.answered += rec.answered is not None
        self.reached += rec.reached is not None
        self.given_up += rec.status is CallbackStatus.GIVEN_UP

    @property
    def reach_rate(self) -> float | None:
        """Reached / accepted; None when none was accepted."""
        return self.reached / self.accepted if self.accepted else None


def count_callbacks(records: Iterable[CallbackRecord]) -> CallbackCounts:
    counts = CallbackCounts()
    for rec in records:
        counts.add(rec)
    return counts


def with_callbacks(
    calls: Iterable[CallRecord], callbacks: Iterable[CallbackRecord], counts_as_answered: bool
) -> list[CallRecord]:
    """``calls`` as the answer rate counts them under the policy: with it on, an unanswered call whose
    callback reached the caller counts as answered (a copy; the stored record is unchanged)."""
    if not counts_as_answered:
        return list(calls)
    # Callbacks are kept by node and the Asterisk uniqueid of the call (the hold channel is named by it), calls
    # by '<node>:<uniqueid>': the key is the callback's node and id.
    reached = {call_key(c.node, c.callback_id) for c in callbacks if c.reached is not None}
    return [
        dataclasses.replace(r, outcome=Outcome.ANSWERED) if r.call_id in reached and r.outcome in UNANSWERED else r
        for r in calls
    ]
