"""The live accumulator against a direct count of the definitions, on random records."""

from __future__ import annotations

import datetime as dt
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti.kpi.accumulator import KpiAccumulator
from hotline_cti.records.model import CallRecord, Outcome

T0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)

records = st.builds(
    lambda i, outcome, queue, wait, minutes: CallRecord(
        call_id=str(i), region="gx", started=T0 + dt.timedelta(minutes=minutes), outcome=outcome, queue=queue, wait=wait
    ),
    st.integers(0, 10**6),
    st.sampled_from(list(Outcome)),
    st.sampled_from(["", "general", "complaint"]),
    st.one_of(st.none(), st.floats(0, 900, allow_nan=False)),
    st.integers(0, 2 * 24 * 60),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(records, max_size=60), st.integers(1, 59))
def test_accumulator_matches_the_definitions(recs: list[CallRecord], split: int) -> None:
    acc = KpiAccumulator()
    acc.add_all(recs[:split])
    early = acc.snapshot()
    acc.add_all(recs[split:])
    k = acc.snapshot()
    done = [r for r in recs if r.outcome is not Outcome.ACTIVE]
    short = [r for r in done if r.outcome is Outcome.ABANDONED and r.wait is not None and r.wait < 5]
    answered = [r for r in done if r.outcome in (Outcome.ANSWERED, Outcome.TRANSFERRED)]
    unanswered = [r for r in done if r.outcome in (Outcome.ABANDONED, Outcome.OVERFLOWED, Outcome.FAILED)]
    offered = len(answered) + len(unanswered) - len(short)
    assert (k.calls, k.total.offered, k.total.answered, k.total.short_abandoned) == (
        len(done),
        offered,
        len(answered),
        len(short),
    )
    assert sum(c.offered for c in k.by_hour.values()) == offered
    assert sum(line.calls for line in k.by_line.values()) == len(done)
    waits = sorted(
        math.ceil(r.wait)
        for r in done
        if r.wait is not None and (r in answered or (r.outcome is Outcome.ABANDONED and r.wait >= 5))
    )
    assert k.waits.count == len(waits)
    assert k.waits.p90 == (waits[math.ceil(0.9 * len(waits)) - 1] if waits else None)
    # an earlier snapshot never moves
    assert early.calls == len([r for r in recs[:split] if r.outcome is not Outcome.ACTIVE])
