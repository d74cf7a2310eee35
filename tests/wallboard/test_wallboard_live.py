"""Live wallboard state from AMI event sequences (pure: events and clock in, snapshot out).

The event builders here are also the scripted load of the browser test (test_wallboard_browser.py).
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.core.table import RoutingTable
from hotline_cti.kpi.accumulator import compute_kpis
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.fanout import RecordFanout
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.wallboard.figures import DayFigures
from hotline_cti.wallboard.live import LiveState, Thresholds
from hotline_cti.wallboard.merger import merger_rows

TZ = ZoneInfo("Asia/Shanghai")
GENERAL_Q = "gx-general"
NOW = dt.datetime(2021, 12, 1, 10, 0, tzinfo=TZ)  # a Wednesday; 12300's window runs to 2022-02-28
Event = dict[str, str]


def arrive(
    uid: str,
    caller: str,
    *,
    dialled: str = "12345",
    origin: str = "",
    mode: str = "main",
    phase: str = "none",
    queue: str = "gx-general",
    action: str = "queue",
    target: str | None = None,
    expert: str = "",
) -> list[Event]:
    """A call arrives, is routed (HotlineRoute) and, for a queue action, joins ``queue``."""
    snap = {"Channel": f"PJSIP/trunk-{uid}", "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": caller}
    events: list[Event] = [
        {"Event": "Newchannel", **snap, "Exten": dialled},
        {
            "Event": "UserEvent",
            "UserEvent": "HotlineRoute",
            "CallId": uid,
            "Dialled": dialled,
            "Form": "local",
            "Action": action,
            "Target": target if target is not None else queue,
            "Origin": origin,
            "Mode": mode,
            "Phase": phase,
            "Centre": "gx",
            "City": "",
            "Expert": expert,
        },
    ]
    if action == "queue":
        events.append({"Event": "QueueCallerJoin", **snap, "Queue": queue, "Position": "1", "Count": "1"})
    return events


def answer(uid: str, queue: str = "gx-general", agent: str = "坐席01", hold: int = 5) -> list[Event]:
    """An agent takes the call."""
    return [
        {"Event": "QueueCallerLeave", "Uniqueid": uid, "Linkedid": uid, "Queue": queue, "Count": "0"},
        {
            "Event": "AgentConnect",
            "Uniqueid": uid,
            "Linkedid": uid,
            "Queue": queue,
            "MemberName": agent,
            "Interface": "Local/8001@hotline-agents",
            "HoldTime": str(hold),
            "RingTime": "2",
            "DestUniqueid": uid + "1",
        },
    ]


def abandon(uid: str, queue: str = "gx-general", hold: int = 40) -> list[Event]:
    """The caller gives up while waiting: Asterisk reports the abandon, then the caller leg's hang-up."""
    return [
        {"Event": "QueueCallerAbandon", "Uniqueid": uid, "Linkedid": uid, "Queue": queue, "HoldTime": str(hold)},
        {"Event": "Hangup", "Uniqueid": uid, "Linkedid": uid, "Cause": "16"},
    ]


def transfer(uid: str, extension: str) -> list[Event]:
    """The agent blind-transfers the call (one-key transfer seen on the wire)."""
    return [
        {
            "Event": "BlindTransfer",
            "Result": "Success",
            "TransfererUniqueid": uid + "1",
            "TransfereeUniqueid": uid,
            "TransfereeLinkedid": uid,
            "IsExternal": "No",
            "Context": "hotline-onekey",
            "Extension": extension,
        }
    ]


def hangup(uid: str, talk: int | None = 30) -> list[Event]:
    """The caller leg hangs up (after AgentComplete when ``talk`` is given)."""
    done: list[Event] = []
    if talk is not None:
        done.append({"Event": "AgentComplete", "Uniqueid": uid, "Linkedid": uid, "Queue": "q", "TalkTime": str(talk)})
    return [*done, {"Event": "Hangup", "Uniqueid": uid, "Linkedid": uid, "Cause": "16"}]


def rating(uid: str, value: int) -> list[Event]:
    """The caller's survey key."""
    return [{"Event": "UserEvent", "UserEvent": "HotlineRating", "CallId": uid, "Rating": str(value)}]


def member(queue: str, interface: str, status: int, paused: bool = False) -> Event:
    """A QueueMemberStatus event."""
    return {
        "Event": "QueueMemberStatus",
        "Queue": queue,
        "MemberName": interface.split("/")[1],
        "Interface": interface,
        "Status": str(status),
        "Paused": "1" if paused else "0",
    }


def wired_state(table: RoutingTable) -> LiveState:
    """The wall's state behind the link's one record builder, wired as the events service wires them."""
    records = RecordFanout(RecordBuilder(table.region))
    state = LiveState(table, records=records)
    records.add_listener(state.take)
    return state


def feed(state: LiveState, events: list[Event], at: dt.datetime = NOW) -> None:
    """AMI events as the link delivers them: the record builder first (it subscribed first), then the wall."""
    records = state.records
    assert isinstance(records, RecordFanout)
    for event in events:
        records.feed(event, at.astimezone(dt.UTC))
        state.apply(event, at)


@pytest.fixture
def state(small_table: RoutingTable) -> LiveState:
    return wired_state(small_table)


def test_waiting_and_longest_wait_follow_join_leave_and_the_clock(state: LiveState) -> None:
    feed(state, arrive("1.1", "13812345678"), NOW)
    feed(state, arrive("1.2", "13900001111"), NOW + dt.timedelta(seconds=20))
    snap = state.snapshot(NOW + dt.timedelta(seconds=50))
    (q,) = snap["queues"]
    assert (q["queue"], q["waiting"], q["longest_wait"], q["longest_caller"]) == ("gx-general", 2, 50, "138****5678")
    assert snap["totals"]["waiting"] == 2 and snap["totals"]["longest_wait"] == 50
    feed(state, answer("1.1"), NOW + dt.timedelta(seconds=55))
    snap = state.snapshot(NOW + dt.timedelta(seconds=60))
    assert snap["queues"][0]["waiting"] == 1
    assert snap["queues"][0]["longest_wait"] == 40  # now the second caller, who joined at +20
    assert snap["queues"][0]["longest_caller"] == "139****1111"


def test_no_caller_number_in_full_anywhere_in_the_snapshot(state: LiveState) -> None:
    feed(state, arrive("1.1", "13812345678") + arrive("1.2", "07712587066", dialled="12300", origin="12300"))
    text = json.dumps(state.snapshot(NOW), ensure_ascii=False)
    assert "13812345678" not in text and "07712587066" not in text
    assert "138****5678" in text


def test_agents_free_busy_paused_per_queue(state: LiveState) -> None:
    feed(
        state,
        [
            member("gx-general", "PJSIP/8001", 1),
            member("gx-general", "PJSIP/8002", 2),
            member("gx-general", "PJSIP/8003", 1, paused=True),
            member("gx-general", "PJSIP/8004", 5),  # unavailable: not counted
            member("gx-l12315", "PJSIP/8001", 1),
            member("gx-general", "PJSIP/8001", 6),  # now ringing: busy
        ],
    )
    snap = state.snapshot(NOW)
    rows = {q["queue"]: q for q in snap["queues"]}
    assert (rows["gx-general"]["free"], rows["gx-general"]["busy"], rows["gx-general"]["paused"]) == (0, 2, 1)
    assert (rows["gx-l12315"]["free"], rows["gx-l12315"]["busy"]) == (1, 0)
    assert (snap["totals"]["free"], snap["totals"]["busy"], snap["totals"]["paused"]) == (1, 2, 1)


def test_answer_rate_today_against_the_95_line(state: LiveState) -> None:
    for i in range(19):
        feed(state, arrive(f"2.{i}", "13800000000") + answer(f"2.{i}") + hangup(f"2.{i}"))
    snap = state.snapshot(NOW)
    assert snap["totals"]["answer_rate"] == 1.0 and not snap["totals"]["below_target"]
    feed(state, arrive("2.99", "13800000000") + abandon("2.99"))
    snap = state.snapshot(NOW)
    assert (snap["totals"]["answered"], snap["totals"]["unanswered"]) == (19, 1)
    assert snap["totals"]["answer_rate"] == pytest.approx(0.95)
    assert not snap["totals"]["below_target"]  # exactly on the line is not below it
    feed(state, arrive("2.100", "13800000000") + abandon("2.100"))
    snap = state.snapshot(NOW)
    assert snap["totals"]["below_target"] and snap["queues"][0]["below_target"]
    assert "queue:gx-general:rate" in {a["id"] for a in snap["alerts"]}


def test_calls_still_waiting_do_not_count_in_the_rate(state: LiveState) -> None:
    feed(state, arrive("3.1", "13800000000") + answer("3.1") + arrive("3.2", "13800000000"))
    snap = state.snapshot(NOW)
    assert snap["totals"]["calls_today"] == 2
    assert (snap["totals"]["answered"], snap["totals"]["unanswered"]) == (1, 0)


def test_yesterdays_calls_are_not_today(state: LiveState) -> None:
    feed(state, arrive("4.1", "13800000000") + answer("4.1"), NOW - dt.timedelta(days=1))
    feed(state, arrive("4.2", "13800000000") + abandon("4.2"), NOW)
    snap = state.snapshot(NOW)
    assert snap["totals"]["calls_today"] == 1 and snap["totals"]["answer_rate"] == 0.0


def test_volume_by_origin_line_flags_retired_numbers(state: LiveState) -> None:
    old = {"dialled": "12300", "origin": "12300", "mode": "merge", "phase": "transition"}
    feed(state, arrive("5.1", "13800000000", **old) + arrive("5.2", "13800000001", **old))
    feed(state, arrive("5.3", "13800000002", origin="12315", queue="gx-l12315", expert="e12315"))  # 12345 menu 3
    feed(state, arrive("5.4", "13800000003", dialled="12315", origin="12315", mode="parallel", queue="gx-l12315"))
    feed(state, arrive("5.5", "13800000004"))
    lines = {row["number"]: row for row in state.snapshot(NOW)["lines"]}
    assert (lines["12300"]["calls"], lines["12300"]["old_number"], lines["12300"]["retired"]) == (2, 2, True)
    assert lines["12300"]["name"] == "电信申诉"
    assert (lines["12315"]["calls"], lines["12315"]["old_number"], lines["12315"]["retired"]) == (2, 1, False)
    assert (lines["12345"]["calls"], lines["12345"]["old_number"]) == (1, 0)


def test_transfers_to_emergency_lines_and_subcentres(state: LiveState) -> None:
    feed(state, arrive("6.1", "13800000000") + answer("6.1") + transfer("6.1", "110") + hangup("6.1"))
    feed(state, arrive("6.2", "13800000000") + answer("6.2") + transfer("6.2", "120"))
    feed(state, arrive("6.3", "13800000000") + answer("6.3") + transfer("6.3", "tax"))
    feed(state, arrive("6.4", "13800000000") + answer("6.4") + transfer("6.4", "12313"))
    feed(state, arrive("6.5", "13800000000") + answer("6.5") + transfer("6.5", "gx-complaint"))
    failed = transfer("6.6", "119")
    failed[0]["Result"] = "Invalid"
    feed(state, arrive("6.6", "13800000000") + answer("6.6") + failed)
    snap = state.snapshot(NOW)
    xfer = snap["transfers"]
    assert xfer["emergency"] == {"110": 1, "119": 0, "120": 1, "122": 0}
    assert xfer["subcentre"] == {"tax": 1, "tobacco": 1}
    assert (xfer["other"], xfer["total"]) == (1, 5)
    assert state.calls["6.1"].outcome is Outcome.TRANSFERRED
    assert snap["totals"]["answer_rate"] == 1.0  # a transferred call was answered first


def test_subcentre_routes_and_expert_seats_have_their_own_rates(state: LiveState) -> None:
    feed(
        state,
        arrive(
            "7.1", "13800000000", dialled="12366", origin="12366", mode="subcentre", action="subcentre", target="tax"
        ),
    )
    feed(
        state,
        [
            {"Event": "DialEnd", "Uniqueid": "7.1", "Linkedid": "7.1", "DestChannel": "PJSIP/12366@pstn-0001",
             "DestUniqueid": "7.1b", "DialStatus": "ANSWER"},
            *hangup("7.1", talk=None),
        ],
    )  # fmt: skip
    feed(
        state,
        arrive(
            "7.2", "13800000000", dialled="12366", origin="12366", mode="subcentre", action="subcentre", target="tax"
        ),
    )
    feed(state, hangup("7.2", talk=None))
    feed(
        state,
        arrive("7.3", "13800000000", origin="12315", queue="gx-expert-e12315", expert="e12315")
        + abandon("7.3", "gx-expert-e12315"),
    )
    snap = state.snapshot(NOW)
    assert snap["subcentres"] == [
        {"target": "tax", "answered": 1, "unanswered": 1, "abandoned": 0, "answer_rate": 0.5, "below_target": True}
    ]
    assert snap["experts"][0]["expert"] == "e12315" and snap["experts"][0]["below_target"]
    ids = {a["id"] for a in snap["alerts"]}
    assert {"subcentre:tax:rate", "expert:e12315:rate"} <= ids


def test_satisfaction_counts_ratings(state: LiveState) -> None:
    for i, value in enumerate((1, 1, 2, 3)):
        feed(state, arrive(f"8.{i}", "13800000000") + answer(f"8.{i}") + hangup(f"8.{i}") + rating(f"8.{i}", value))
    sat = state.snapshot(NOW)["satisfaction"]
    assert sat["ratings"] == {"1": 2, "2": 1, "3": 1}
    assert sat["rate"] == pytest.approx(0.75)


def test_overflow_then_hangup_is_overflowed(state: LiveState) -> None:
    feed(state, arrive("9.1", "13800000000", queue="gx-l12315"))
    feed(
        state,
        [
            {
                "Event": "UserEvent",
                "UserEvent": "HotlineOverflow",
                "CallId": "9.1",
                "From": "gx-l12315",
                "To": "gx-general",
            },
            {"Event": "QueueCallerLeave", "Uniqueid": "9.1", "Queue": "gx-l12315"},
            {
                "Event": "QueueCallerJoin",
                "Uniqueid": "9.1",
                "Linkedid": "9.1",
                "Queue": "gx-general",
                "CallerIDNum": "13800000000",
            },
        ],
    )
    assert {q["queue"]: q["waiting"] for q in state.snapshot(NOW)["queues"]} == {"gx-general": 1, "gx-l12315": 0}
    feed(state, hangup("9.1", talk=None))
    rec = state.calls["9.1"]
    assert rec.outcome is Outcome.OVERFLOWED and rec.overflowed and rec.queue == "gx-general"
    assert state.snapshot(NOW)["totals"]["waiting"] == 0


def test_retired_and_guidance_calls_end_as_such(state: LiveState) -> None:
    feed(
        state,
        arrive(
            "10.1",
            "13800000000",
            dialled="12300",
            origin="12300",
            mode="merge",
            phase="after",
            action="retired",
            target="",
        ),
    )
    feed(state, arrive("10.2", "13800000000", dialled="12339", mode="guidance", action="guidance", target=""))
    feed(state, hangup("10.1", talk=None) + hangup("10.2", talk=None))
    assert state.calls["10.1"].outcome is Outcome.RETIRED
    assert state.calls["10.2"].outcome is Outcome.GUIDANCE


def test_resync_rebuilds_queues_from_queue_status(state: LiveState) -> None:
    feed(state, [*arrive("11.1", "13800000000"), member("gx-general", "PJSIP/8001", 2)])
    state.reset_queues()
    feed(
        state,
        [
            {"Event": "QueueParams", "Queue": "gx-general"},
            {
                "Event": "QueueMember",
                "Queue": "gx-general",
                "Name": "坐席02",
                "Location": "PJSIP/8002",
                "Status": "1",
                "Paused": "0",
            },
            {
                "Event": "QueueEntry",
                "Queue": "gx-general",
                "Uniqueid": "11.2",
                "CallerIDNum": "13911112222",
                "Wait": "30",
            },
        ],
    )
    (q,) = state.snapshot(NOW)["queues"]
    assert (q["waiting"], q["longest_wait"], q["longest_caller"], q["free"], q["busy"]) == (1, 30, "139****2222", 1, 0)


def test_malformed_events_are_skipped_counted_and_change_nothing(
    state: LiveState, caplog: pytest.LogCaptureFixture
) -> None:
    before = state.snapshot(NOW)
    bad = [
        {"Event": "QueueCallerJoin", "Uniqueid": "12.1", "CallerIDNum": "13812345678"},  # no Queue
        {"Event": "UserEvent", "UserEvent": "HotlineRating", "CallId": "12.2", "Rating": "9"},
        {"Event": "UserEvent", "UserEvent": "HotlineRating", "CallId": "12.3", "Rating": "x"},
        {"Event": "QueueMemberStatus", "Queue": "q", "Interface": "PJSIP/1", "Status": "busy"},
        {"Event": "UserEvent", "UserEvent": "HotlineRoute"},  # no CallId
    ]
    records = state.records
    assert isinstance(records, RecordFanout)
    for count, event in enumerate(bad, start=1):
        assert records.feed(event, NOW) == []  # the link's record builder sees each event first
        assert state.apply(event, NOW) is False
        assert state.skipped == count  # once each, whether the record builder or the wall refused it
    assert state.apply({"Event": "PeerStatus", "Peer": "PJSIP/1"}, NOW) is False  # unknown: ignored
    assert state.skipped == len(bad)
    assert "QueueCallerJoin without Queue" in caplog.text and "QueueMemberStatus Status is not a number" in caplog.text
    assert "13812345678" not in caplog.text
    assert state.snapshot(NOW)["queues"] == before["queues"]
    assert state.snapshot(NOW)["totals"]["calls_today"] == 0


def test_the_wall_builds_no_records_of_its_own(small_table: RoutingTable) -> None:
    """Events reach the wall's state for queues and agents only: a call exists on the wall when the link's one
    record builder says so (no second builder, no second caller-number policy)."""
    alone = LiveState(small_table)
    for event in arrive("16.1", "13800000000") + answer("16.1") + hangup("16.1"):
        alone.apply(event, NOW)
    assert alone.calls == {} and alone.in_progress(NOW) == []
    assert alone.snapshot(NOW)["totals"]["calls_today"] == 0
    wired = wired_state(small_table)
    builder = RecordBuilder(small_table.region)
    outputs = [out for event in arrive("16.9", "13800000000") for out in builder.feed(event, NOW)]
    assert outputs and not any(isinstance(out, CallRecord) for out in outputs)
    assert wired.take(outputs) is True  # a call routed or queued changes the wall: publish soon
    assert wired.take([]) is False and wired.calls == {}
    feed(wired, arrive("16.1", "13800000000") + answer("16.1"))
    assert [r.call_id for r in wired.in_progress(NOW)] == ["16.1"]  # read from the builder, not copied
    feed(wired, hangup("16.1"))
    assert wired.in_progress(NOW) == [] and wired.calls["16.1"].outcome is Outcome.ANSWERED


def test_acknowledged_alerts_stay_acknowledged_while_they_last(state: LiveState) -> None:
    feed(state, arrive("13.1", "13800000000") + abandon("13.1"))
    alerts = {a["id"]: a for a in state.snapshot(NOW)["alerts"]}
    assert set(alerts) == {"queue:gx-general:rate", "line:12345:rate"}
    assert not alerts["queue:gx-general:rate"]["acknowledged"]
    state.acknowledge("queue:gx-general:rate")
    alerts = {a["id"]: a for a in state.snapshot(NOW)["alerts"]}
    assert alerts["queue:gx-general:rate"]["acknowledged"] and not alerts["line:12345:rate"]["acknowledged"]
    feed(state, [e for i in range(30) for e in arrive(f"13.{i + 2}", "1") + answer(f"13.{i + 2}")])
    assert state.snapshot(NOW)["alerts"] == []  # recovered: the acknowledgement ends
    feed(state, [e for i in range(5) for e in arrive(f"14.{i}", "1") + abandon(f"14.{i}")])
    assert not state.snapshot(NOW)["alerts"][0]["acknowledged"]  # a new drop alerts again


def test_wait_alert_threshold(state: LiveState) -> None:
    feed(state, arrive("15.1", "13800000000"))
    assert state.snapshot(NOW + dt.timedelta(seconds=60))["alerts"] == []
    assert state.snapshot(NOW + dt.timedelta(seconds=61))["alerts"][0]["id"] == "queue:gx-general:wait"
    state.thresholds.update(wait_alert=120)
    assert state.snapshot(NOW + dt.timedelta(seconds=61))["alerts"] == []


@pytest.mark.parametrize(
    ("target", "wait"), [(0, None), (1.5, None), ("0.9", None), (True, None), (None, 0), (None, 5.5), (None, 7200)]
)
def test_bad_thresholds_are_refused_and_kept(target: object, wait: object) -> None:
    thresholds = Thresholds()
    with pytest.raises(ValueError, match=r"answer_target|wait_alert"):
        thresholds.update(target, wait)
    assert (thresholds.answer_target, thresholds.wait_alert) == (0.95, 60)


def test_seeded_records_count_and_live_records_win(state: LiveState) -> None:
    started = NOW.astimezone(dt.UTC) - dt.timedelta(hours=1)
    stored = [
        CallRecord("s.1", "gx", started, queue="gx-general", outcome=Outcome.ANSWERED, rating=1),
        CallRecord("s.2", "gx", started, queue="gx-general", outcome=Outcome.ABANDONED),
        CallRecord("1.1", "gx", started, queue="gx-general", outcome=Outcome.ABANDONED),  # seen live too
    ]
    feed(state, arrive("1.1", "13800000000") + answer("1.1"))
    assert state.seed(stored) == 2
    snap = state.snapshot(NOW)
    assert (snap["totals"]["calls_today"], snap["totals"]["answered"], snap["totals"]["unanswered"]) == (3, 2, 1)
    assert snap["satisfaction"]["ratings"]["1"] == 1


def test_calls_from_before_this_week_are_pruned(state: LiveState) -> None:
    feed(state, arrive("16.1", "13800000000") + answer("16.1") + hangup("16.1"), NOW - dt.timedelta(days=7))
    feed(state, arrive("16.2", "13800000000") + answer("16.2") + hangup("16.2"), NOW - dt.timedelta(days=2))  # Monday
    state.snapshot(NOW)
    assert set(state.calls) == {"16.2"}


def test_merger_view_counts_the_week_and_the_old_number_share(state: LiveState, small_table: RoutingTable) -> None:
    old = {"dialled": "12300", "origin": "12300", "mode": "merge", "phase": "transition"}
    feed(state, arrive("17.1", "1", **old) + arrive("17.2", "1", **old), NOW - dt.timedelta(days=2))
    feed(state, arrive("17.3", "1", **old), NOW - dt.timedelta(days=3))  # last Sunday: not this week
    feed(state, arrive("17.4", "1", origin="12300", queue="gx-general"), NOW)  # through 12345's menu
    rows = {row["number"]: row for row in state.snapshot(NOW)["merger"]}
    assert set(rows) == {"12300", "12301", "12315", "12348"}  # merge and parallel lines only
    r = rows["12300"]
    assert (r["calls_week"], r["old_number_week"], r["old_share"]) == (3, 2, pytest.approx(2 / 3))
    assert (r["phase"], r["window_end"]) == ("transition", "2022-02-27")
    assert r["days_left"] == 89  # 2021-12-01 10:00 to 2022-02-28 00:00, rounded up
    assert rows["12315"]["phase"] == "after" and rows["12315"]["days_left"] is None
    assert rows["12315"]["old_share"] is None


def test_merger_view_before_cutover_counts_down_to_it(small_table: RoutingTable) -> None:
    rows = {r.number: r for r in merger_rows(small_table, [], dt.datetime(2021, 8, 29, 12, 0, tzinfo=TZ))}
    assert rows["12300"].phase == "before" and rows["12300"].days_to_cutover == 2
    assert rows["12300"].days_left is None


def test_day_figures_count_calls_in_progress_and_ended_ones_once() -> None:
    at = NOW.astimezone(dt.UTC)
    figures = DayFigures(
        TZ,
        [
            CallRecord("b", "gx", at, origin="12315", mode="main", ended=at, queue="q", outcome=Outcome.ANSWERED),
            CallRecord("c", "gx", at, ended=at, queue="q", outcome=Outcome.ABANDONED, wait=30.0),
            CallRecord("e", "gx", at, ended=at, queue="q", outcome=Outcome.ABANDONED, wait=2.0),  # short abandon
        ],
    )
    talking = CallRecord("a", "gx", at, origin="12315", mode="parallel", queue="q", outcome=Outcome.ANSWERED)
    waiting = CallRecord("d", "gx", at, queue="q")  # outcome active: volume only
    view = figures.view([talking, waiting])
    lines = {k: (v.calls, v.old_number) for k, v in view.by_line.items()}
    assert (view.calls, lines) == (5, {"12315": (2, 1), "12345": (3, 0)})
    assert (view.total.answered, view.total.offered, view.total.short_abandoned) == (2, 3, 1)  # the report's rules
    talking.transfers.append("110")
    talking.outcome = Outcome.TRANSFERRED
    assert figures.view([talking]).transfers == {"110": 1}  # shown while the call is still up
    talking.ended = at
    figures.finish(talking)
    figures.finish(talking)  # a second report of the same end is not a second call
    view = figures.view([talking])  # a call both ended and still listed counts once
    assert (view.calls, view.total.answered, view.total.offered, view.transfers) == (4, 2, 3, {"110": 1})


def test_a_rating_after_the_hang_up_is_counted(state: LiveState) -> None:
    state.snapshot(NOW)
    feed(state, arrive("18.1", "13800000000") + answer("18.1") + hangup("18.1"))
    assert state.snapshot(NOW)["satisfaction"]["ratings"]["2"] == 0
    feed(state, rating("18.1", 2))
    assert state.snapshot(NOW)["satisfaction"]["ratings"]["2"] == 1


def test_the_wall_agrees_with_the_report_once_calls_have_ended(state: LiveState) -> None:
    for i in range(12):
        uid = f"19.{i}"
        events = arrive(uid, "13800000000", origin="12315" if i % 3 else "", queue="gx-l12315" if i % 2 else GENERAL_Q)
        queue = events[-1]["Queue"]
        events += answer(uid, queue) if i % 4 else abandon(uid, queue, hold=2 if i == 4 else 40)
        feed(state, [*events, *hangup(uid, talk=None), *rating(uid, 1 + i % 3)])
    snap = state.snapshot(NOW)
    report = compute_kpis(state.calls.values(), tz=TZ)
    assert (snap["totals"]["answered"], snap["totals"]["unanswered"]) == (
        report.total.answered,
        report.total.offered - report.total.answered,
    )
    assert {q["queue"]: q["answer_rate"] for q in snap["queues"]} == {k: v.rate for k, v in report.by_queue.items()}
    assert snap["satisfaction"]["rate"] == report.satisfaction
