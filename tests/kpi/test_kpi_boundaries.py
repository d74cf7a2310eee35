"""KPI figures at their boundaries: an abandon at exactly 5.0 s, an answer rate of exactly 95%, two short
abandons in one group, wait buckets and percentile ranks at their edges, and every group a record counts in."""

from __future__ import annotations

import datetime as dt

import pytest

from hotline_cti.kpi.accumulator import CHINA_TZ, KpiAccumulator, LineKpi, compute_kpis, origin_line
from hotline_cti.kpi.counts import ANSWER_TARGET, SHORT_ABANDON_S, AnswerCount, is_short_abandon
from hotline_cti.kpi.waits import WaitStats
from hotline_cti.records.model import CallRecord, Outcome

T0 = dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC)  # 09:30 in China


def rec(outcome: Outcome, wait: float | None = None, **kw: object) -> CallRecord:
    return CallRecord(call_id="c", region="gx", started=T0, outcome=outcome, wait=wait, **kw)  # type: ignore[arg-type]


def counted(*records: CallRecord, short: float = SHORT_ABANDON_S) -> AnswerCount:
    count = AnswerCount()
    for record in records:
        count.add(record, short)
    return count


def as_tuple(c: AnswerCount) -> tuple[int, int, int, int]:
    return (c.offered, c.answered, c.abandoned, c.short_abandoned)


# ---------------------------------------------------------------- what is offered, answered, abandoned


def test_the_operating_rules_figures() -> None:
    assert (ANSWER_TARGET, SHORT_ABANDON_S) == (0.95, 5.0)


@pytest.mark.parametrize(
    ("wait", "short"),
    [(0.0, True), (4.999, True), (5.0, False), (5.001, False), (None, False)],
)
def test_an_abandon_is_short_under_five_seconds(wait: float | None, short: bool) -> None:
    assert is_short_abandon(rec(Outcome.ABANDONED, wait)) is short


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.ABANDONED])
def test_only_abandons_are_short(outcome: Outcome) -> None:
    assert is_short_abandon(rec(outcome, 1.0)) is False


def test_the_short_abandon_threshold_is_a_parameter() -> None:
    assert is_short_abandon(rec(Outcome.ABANDONED, 9.0), 10.0)
    assert not is_short_abandon(rec(Outcome.ABANDONED, 10.0), 10.0)
    assert as_tuple(counted(rec(Outcome.ABANDONED, 9.0), short=10.0)) == (0, 0, 0, 1)
    assert as_tuple(counted(rec(Outcome.ABANDONED, 9.0), short=9.0)) == (1, 0, 1, 0)


@pytest.mark.parametrize(
    ("outcome", "wait", "counts"),
    [
        (Outcome.ANSWERED, 1.0, (1, 1, 0, 0)),
        (Outcome.TRANSFERRED, None, (1, 1, 0, 0)),
        (Outcome.ABANDONED, 5.0, (1, 0, 1, 0)),
        (Outcome.ABANDONED, 4.9, (0, 0, 0, 1)),
        (Outcome.ABANDONED, None, (1, 0, 1, 0)),
        (Outcome.OVERFLOWED, 1.0, (1, 0, 0, 0)),
        (Outcome.FAILED, None, (1, 0, 0, 0)),
        (Outcome.RETIRED, None, (0, 0, 0, 0)),
        (Outcome.GUIDANCE, None, (0, 0, 0, 0)),
        (Outcome.EMERGENCY, None, (0, 0, 0, 0)),
        (Outcome.ACTIVE, 1.0, (0, 0, 0, 0)),
    ],
)
def test_what_one_record_counts(outcome: Outcome, wait: float | None, counts: tuple[int, int, int, int]) -> None:
    assert as_tuple(counted(rec(outcome, wait))) == counts


def test_two_short_abandons_in_one_group() -> None:
    c = counted(rec(Outcome.ABANDONED, 1.0), rec(Outcome.ABANDONED, 2.0), rec(Outcome.ANSWERED, 3.0))
    assert as_tuple(c) == (1, 1, 0, 2)


def test_counts_add_up_over_several_records() -> None:
    c = counted(*(rec(Outcome.ANSWERED) for _ in range(3)), rec(Outcome.ABANDONED, 6.0), rec(Outcome.ABANDONED, 7.0))
    assert as_tuple(c) == (5, 3, 2, 0)
    assert (c.rate, c.abandon_rate) == (3 / 5, 2 / 5)


def test_rates_without_offered_calls_are_none() -> None:
    c = counted(rec(Outcome.ABANDONED, 1.0))
    assert (c.rate, c.abandon_rate, c.below()) == (None, None, False)


def test_an_answer_rate_of_exactly_95_percent_is_not_below_the_target() -> None:
    at_target = counted(*(rec(Outcome.ANSWERED) for _ in range(19)), rec(Outcome.FAILED))
    assert at_target.rate == 0.95
    assert not at_target.below()
    assert at_target.below(0.951)
    just_under = counted(*(rec(Outcome.ANSWERED) for _ in range(18)), rec(Outcome.FAILED), rec(Outcome.FAILED))
    assert just_under.below() and not just_under.below(0.9)


def test_a_copy_does_not_move_with_the_original() -> None:
    c = counted(rec(Outcome.ANSWERED), rec(Outcome.ABANDONED, 9.0), rec(Outcome.ABANDONED, 1.0))
    copy = c.copy()
    assert as_tuple(copy) == as_tuple(c) == (2, 1, 1, 1)
    c.add(rec(Outcome.ANSWERED))
    assert as_tuple(copy) == (2, 1, 1, 1)


# ---------------------------------------------------------------- waits


def test_waits_bucket_up_to_the_whole_second() -> None:
    w = WaitStats()
    for wait in (1.0, 1.01, 2.0, -3.0):
        w.add(wait)
    assert w.buckets == {1: 1, 2: 2, 0: 1}
    assert (w.count, w.total, w.longest) == (4, 4.01, 2.0)
    assert w.mean == 4.01 / 4


def test_a_negative_wait_counts_as_zero() -> None:
    w = WaitStats()
    w.add(-5.0)
    assert (w.count, w.total, w.longest, w.buckets, w.p90) == (1, 0.0, 0.0, {0: 1}, 0)


def test_percentile_is_the_nearest_rank() -> None:
    w = WaitStats()
    for wait in range(1, 11):
        w.add(float(wait))
    assert [w.percentile(p) for p in (0.1, 10, 11, 50, 89, 90, 91, 100)] == [1, 1, 2, 5, 9, 9, 10, 10]
    assert w.p90 == 9


def test_percentile_rank_rounds_up() -> None:
    w = WaitStats()
    for wait in range(1, 11):
        w.add(float(wait))
    assert (w.percentile(50), w.percentile(50.5)) == (5, 6)


def test_percentile_counts_repeated_waits() -> None:
    w = WaitStats()
    for wait in (3.0, 3.0, 3.0, 8.0):
        w.add(wait)
    assert (w.percentile(75), w.percentile(76)) == (3, 8)


def test_histogram_edges_are_inclusive() -> None:
    w = WaitStats()
    for wait in (0.0, 10.0, 10.5, 30.0, 31.0):
        w.add(wait)
    assert w.histogram((10, 30)) == [2, 2, 1]
    assert w.histogram(()) == [5]
    assert WaitStats().histogram((10,)) == [0, 0]


def test_a_wait_copy_does_not_move() -> None:
    w = WaitStats()
    w.add(3.0)
    copy = w.copy()
    w.add(9.0)
    assert (copy.count, copy.total, copy.longest, copy.buckets) == (1, 3.0, 3.0, {3: 1})


# ---------------------------------------------------------------- the accumulator


def test_origin_line() -> None:
    assert origin_line(rec(Outcome.ANSWERED, origin="12315")) == "12315"
    assert origin_line(rec(Outcome.ANSWERED)) == "12345"


def test_a_call_counts_in_each_of_its_groups() -> None:
    k = compute_kpis(
        [
            rec(
                Outcome.ANSWERED,
                12.0,
                origin="12366",
                mode="subcentre",
                action="subcentre",
                target="tax@guilin",
                queue="guilin-general",
                expert="e12366",
                transfers=["110", "110"],
                rating=2,
            )
        ]
    )
    one = (1, 1, 0, 0)
    assert k.calls == 1 and k.outcomes == {"answered": 1}
    assert as_tuple(k.total) == one
    assert {name: as_tuple(c) for name, c in k.by_queue.items()} == {"guilin-general": one}
    assert {name: as_tuple(c) for name, c in k.by_expert.items()} == {"e12366": one}
    assert {name: as_tuple(c) for name, c in k.by_subcentre.items()} == {"tax@guilin": one}
    assert {hour: as_tuple(c) for hour, c in k.by_hour.items()} == {9: one}
    line = k.by_line["12366"]
    assert (line.calls, line.old_number, line.retired, line.guidance, as_tuple(line.answers)) == (1, 1, 0, 0, one)
    assert k.transfers == {"110": 2}
    assert k.ratings == {1: 0, 2: 1, 3: 0}
    assert (k.waits.count, k.answered_waits.count) == (1, 1)


def test_a_call_without_queue_expert_or_subcentre_target_counts_in_no_such_group() -> None:
    k = compute_kpis([rec(Outcome.ANSWERED, action="subcentre"), rec(Outcome.ANSWERED, action="queue", target="x")])
    assert (k.by_queue, k.by_expert, k.by_subcentre) == ({}, {}, {})


def test_old_number_retired_and_guidance_per_line() -> None:
    k = compute_kpis(
        [
            rec(Outcome.ANSWERED, origin="12315", mode="main"),  # chose line 12315 in the 12345 menu
            rec(Outcome.ANSWERED, origin="12315", mode="parallel"),
            rec(Outcome.RETIRED, origin="12300", mode="merge"),
            rec(Outcome.RETIRED, origin="12300", mode="merge"),
            rec(Outcome.GUIDANCE, origin="12339", mode="guidance"),
            rec(Outcome.GUIDANCE, origin="12339", mode="guidance"),
            rec(Outcome.ANSWERED, mode="main"),
        ]
    )
    table = {n: (v.calls, v.old_number, v.retired, v.guidance) for n, v in k.by_line.items()}
    assert table == {
        "12315": (2, 1, 0, 0),
        "12300": (2, 2, 2, 0),
        "12339": (2, 2, 0, 2),
        "12345": (1, 0, 0, 0),
    }
    assert k.outcomes == {"answered": 3, "retired": 2, "guidance": 2}


def test_active_records_are_ignored() -> None:
    acc = KpiAccumulator()
    acc.add(rec(Outcome.ACTIVE, 3.0, queue="q", rating=1, transfers=["110"]))
    assert acc.snapshot() == compute_kpis([])
    assert acc.snapshot().calls == 0


@pytest.mark.parametrize(
    ("outcome", "wait", "waits", "answered_waits"),
    [
        (Outcome.ANSWERED, 4.0, 1, 1),
        (Outcome.TRANSFERRED, 4.0, 1, 1),
        (Outcome.ABANDONED, 5.0, 1, 0),
        (Outcome.ABANDONED, 4.9, 0, 0),
        (Outcome.OVERFLOWED, 60.0, 0, 0),
        (Outcome.FAILED, 60.0, 0, 0),
        (Outcome.ANSWERED, None, 0, 0),
        (Outcome.ABANDONED, None, 0, 0),
    ],
)
def test_which_waits_are_counted(outcome: Outcome, wait: float | None, waits: int, answered_waits: int) -> None:
    k = compute_kpis([rec(outcome, wait)])
    assert (k.waits.count, k.answered_waits.count) == (waits, answered_waits)


def test_the_short_abandon_threshold_reaches_every_group() -> None:
    record = rec(Outcome.ABANDONED, 7.0, origin="12366", action="subcentre", target="tax", queue="q", expert="e")
    k = compute_kpis([record], short_abandon_s=8.0)
    short = (0, 0, 0, 1)
    groups = [k.total, k.by_line["12366"].answers, k.by_queue["q"], k.by_expert["e"], k.by_subcentre["tax"]]
    assert [as_tuple(c) for c in [*groups, *k.by_hour.values()]] == [short] * 6
    counted_abandon = compute_kpis([record], short_abandon_s=6.0)
    assert as_tuple(counted_abandon.by_expert["e"]) == as_tuple(counted_abandon.by_subcentre["tax"]) == (1, 0, 1, 0)


def test_the_short_abandon_threshold_reaches_the_waits() -> None:
    k = compute_kpis([rec(Outcome.ABANDONED, 7.0)], short_abandon_s=8.0)
    assert (k.waits.count, k.total.short_abandoned, k.short_abandon_s) == (0, 1, 8.0)


def test_hours_follow_the_given_time_zone() -> None:
    utc = compute_kpis([rec(Outcome.ANSWERED)], tz=dt.UTC)
    china = compute_kpis([rec(Outcome.ANSWERED)])
    assert (list(utc.by_hour), list(china.by_hour)) == ([1], [9])
    assert CHINA_TZ.utcoffset(None) == dt.timedelta(hours=8)


def test_ratings_outside_the_scale_are_not_counted() -> None:
    k = compute_kpis([rec(Outcome.ANSWERED, rating=r) for r in (1, 1, 3, 0, 4, None)])
    assert k.ratings == {1: 2, 2: 0, 3: 1}
    assert (k.rated, k.satisfaction) == (3, 2 / 3)
    assert k.rating_shares() == {"满意": 2 / 3, "基本满意": 0.0, "不满意": 1 / 3}
    assert compute_kpis([]).rating_shares() == {"满意": None, "基本满意": None, "不满意": None}


def test_flagged_lists_every_kind_below_the_target_in_name_order() -> None:
    failing = {"outcome": Outcome.FAILED, "origin": "12366", "mode": "subcentre", "action": "subcentre"}
    k = compute_kpis(
        [
            rec(**failing, target="tax@b", queue="q2", expert="e2"),  # type: ignore[arg-type]
            rec(**failing, target="tax@a", queue="q1", expert="e1"),  # type: ignore[arg-type]
            rec(Outcome.ANSWERED, queue="q3"),
        ]
    )
    assert [(kind, name) for kind, name, _ in k.flagged()] == [
        ("line", "12366"),
        ("queue", "q1"),
        ("queue", "q2"),
        ("expert", "e1"),
        ("expert", "e2"),
        ("subcentre", "tax@a"),
        ("subcentre", "tax@b"),
    ]
    assert all(c.rate == 0.0 for _, _, c in k.flagged())


def test_the_target_is_a_parameter_of_the_snapshot() -> None:
    records = [*(rec(Outcome.ANSWERED, queue="q") for _ in range(9)), rec(Outcome.FAILED, queue="q")]
    assert [name for _, name, _ in compute_kpis(records).flagged()] == ["12345", "q"]
    lenient = compute_kpis(records, target=0.9)
    assert lenient.target == 0.9 and lenient.flagged() == []
    acc = KpiAccumulator(target=0.9, short_abandon_s=2.0)
    assert (acc.snapshot().target, acc.snapshot().short_abandon_s) == (0.9, 2.0)


def test_a_snapshot_is_a_copy() -> None:
    acc = KpiAccumulator()
    acc.add(rec(Outcome.ANSWERED, 3.0, queue="q", expert="e", action="subcentre", target="s", rating=1))
    acc.add(rec(Outcome.ANSWERED, 3.0, origin="12315", mode="parallel", transfers=["110"]))
    before = acc.snapshot()
    frozen = (
        before.calls,
        dict(before.outcomes),
        as_tuple(before.total),
        {n: (v.calls, v.old_number, as_tuple(v.answers)) for n, v in before.by_line.items()},
        {n: as_tuple(c) for n, c in before.by_queue.items()},
        {n: as_tuple(c) for n, c in before.by_expert.items()},
        {n: as_tuple(c) for n, c in before.by_subcentre.items()},
        {n: as_tuple(c) for n, c in before.by_hour.items()},
        before.waits.count,
        before.answered_waits.count,
        dict(before.transfers),
        dict(before.ratings),
    )
    acc.add(rec(Outcome.ANSWERED, 3.0, queue="q", expert="e", action="subcentre", target="s", rating=1))
    acc.add(rec(Outcome.ANSWERED, 3.0, origin="12315", mode="parallel", transfers=["110"]))
    assert frozen == (
        before.calls,
        before.outcomes,
        as_tuple(before.total),
        {n: (v.calls, v.old_number, as_tuple(v.answers)) for n, v in before.by_line.items()},
        {n: as_tuple(c) for n, c in before.by_queue.items()},
        {n: as_tuple(c) for n, c in before.by_expert.items()},
        {n: as_tuple(c) for n, c in before.by_subcentre.items()},
        {n: as_tuple(c) for n, c in before.by_hour.items()},
        before.waits.count,
        before.answered_waits.count,
        before.transfers,
        before.ratings,
    )
    assert acc.snapshot().calls == 4


def test_a_line_copy_does_not_move() -> None:
    line = LineKpi(3, 2, 1, 0, counted(rec(Outcome.ANSWERED)))
    copy = line.copy()
    line.calls += 1
    line.answers.add(rec(Outcome.ANSWERED))
    assert (copy.calls, copy.old_number, copy.retired, copy.guidance, as_tuple(copy.answers)) == (
        3,
        2,
        1,
        0,
        (1, 1, 0, 0),
    )


def test_add_all_returns_the_accumulator() -> None:
    acc = KpiAccumulator()
    assert acc.add_all([rec(Outcome.ANSWERED)]) is acc
    assert acc.snapshot().calls == 1
