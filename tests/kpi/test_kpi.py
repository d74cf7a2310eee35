"""KPIs over call records: what counts as offered, answer rates against 95%, waits, satisfaction, live form."""

from __future__ import annotations

import datetime as dt

from hotline_cti.kpi.accumulator import KpiAccumulator, compute_kpis
from hotline_cti.kpi.waits import WaitStats
from hotline_cti.records.model import CallRecord, Outcome

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # 09:00 in China


def rec(n: int, outcome: Outcome, **kw: object) -> CallRecord:
    """A finished record n minutes after T0."""
    fields: dict[str, object] = {"queue": "gx-general", "action": "queue", "mode": "main"}
    fields.update(kw)
    return CallRecord(call_id=f"c{n}", region="gx", started=T0 + dt.timedelta(minutes=n), outcome=outcome, **fields)  # type: ignore[arg-type]


def sample() -> list[CallRecord]:
    """Twelve calls with hand-computed figures (see the assertions)."""
    return [
        rec(0, Outcome.ANSWERED, wait=10.0, rating=1),
        rec(1, Outcome.ANSWERED, wait=20.0, rating=2),
        rec(2, Outcome.ANSWERED, wait=30.0, rating=3),
        rec(3, Outcome.TRANSFERRED, wait=40.0, transfers=["110"]),
        rec(4, Outcome.ABANDONED, wait=60.0),
        rec(5, Outcome.ABANDONED, wait=2.0),  # short abandon: not offered
        rec(6, Outcome.ANSWERED, wait=5.5, origin="12315", mode="parallel", queue="gx-market", rating=1),
        rec(7, Outcome.OVERFLOWED, wait=120.0, origin="12315", mode="parallel", queue="gx-general"),
        rec(8, Outcome.RETIRED, origin="12300", mode="merge", action="retired", queue=""),
        rec(9, Outcome.GUIDANCE, origin="95598", mode="guidance", action="guidance", queue=""),
        rec(
            70,
            Outcome.ANSWERED,
            origin="12366",
            mode="subcentre",
            action="subcentre",
            target="gx-tax",
            queue="",
            transfers=["12366", "110"],
        ),
        rec(71, Outcome.ACTIVE, wait=1.0),  # still ringing: ignored
    ]


def test_answer_rate_counts_only_calls_offered_to_agents() -> None:
    k = compute_kpis(sample())
    assert k.calls == 11
    # offered: 5 answered/transferred + 1 abandon (60 s) + 1 overflowed + 1 sub-centre answered; short abandon out
    assert (k.total.offered, k.total.answered, k.total.abandoned, k.total.short_abandoned) == (8, 6, 1, 1)
    assert k.total.rate == 6 / 8
    assert k.total.abandon_rate == 1 / 8


def test_groups_and_the_95_percent_flag() -> None:
    k = compute_kpis(sample())
    general = k.by_queue["gx-general"]
    assert (general.offered, general.answered) == (6, 4)
    assert k.by_queue["gx-market"].rate == 1.0
    assert k.by_subcentre["gx-tax"].rate == 1.0
    line = k.by_line["12315"]
    assert (line.calls, line.old_number, line.answers.offered, line.answers.answered) == (2, 2, 2, 1)
    assert k.by_line["12300"].retired == 1 and k.by_line["12300"].answers.offered == 0
    assert k.by_line["95598"].guidance == 1
    assert k.by_line["12345"].calls == 6 and k.by_line["12345"].old_number == 0
    flagged = {(kind, name) for kind, name, _ in k.flagged()}
    assert flagged == {("line", "12345"), ("line", "12315"), ("queue", "gx-general")}


def test_hours_are_local_china_time() -> None:
    k = compute_kpis(sample())
    assert sorted(k.by_hour) == [9, 10]
    assert (k.by_hour[9].offered, k.by_hour[9].answered) == (7, 5)
    assert k.by_hour[10].rate == 1.0


def test_waits_mean_and_p90() -> None:
    k = compute_kpis(sample())
    # waits counted: 10, 20, 30, 40, 60 (abandon), 5.5, 120 is an overflow (not answered, not abandon) -> left out
    assert k.waits.count == 6
    assert k.waits.mean == (10 + 20 + 30 + 40 + 60 + 5.5) / 6
    assert k.waits.p90 == 60  # nearest rank ceil(0.9*6)=6th of 6
    assert k.answered_waits.mean == (10 + 20 + 30 + 40 + 5.5) / 5
    assert k.waits.percentile(50) == 20  # 3rd of [6, 10, 20, 30, 40, 60]


def test_wait_buckets_round_up_and_histogram() -> None:
    w = WaitStats()
    for wait in (0.0, 0.2, 19.5, 20.0, 21.0, 400.0):
        w.add(wait)
    assert w.percentile(100) == 400 and w.percentile(1) == 0 and w.p90 == 400
    assert w.histogram((0, 20, 60)) == [1, 3, 1, 1]
    assert WaitStats().p90 is None and WaitStats().mean is None


def test_transfers_and_satisfaction() -> None:
    k = compute_kpis(sample())
    assert k.transfers == {"110": 2, "12366": 1}
    assert k.ratings == {1: 2, 2: 1, 3: 1}
    assert k.satisfaction == 3 / 4
    assert k.rating_shares() == {"满意": 0.5, "基本满意": 0.25, "不满意": 0.25}


def test_short_abandon_threshold_is_a_parameter() -> None:
    k = compute_kpis(sample(), short_abandon_s=0)
    assert (k.total.offered, k.total.abandoned, k.total.short_abandoned) == (9, 2, 0)


def test_live_accumulator_matches_batch_and_snapshots_do_not_move() -> None:
    records = sample()
    acc = KpiAccumulator()
    acc.add(records[0])
    first = acc.snapshot()
    for r in records[1:]:
        acc.add(r)
    assert first.calls == 1 and first.total.offered == 1 and first.by_queue["gx-general"].offered == 1
    assert acc.snapshot() == compute_kpis(records)


def test_empty_input_has_no_rates() -> None:
    k = compute_kpis([])
    assert k.total.rate is None and k.satisfaction is None and k.flagged() == [] and k.waits.p90 is None
