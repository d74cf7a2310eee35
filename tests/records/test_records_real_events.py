"""The record builder on event sequences captured from a real Asterisk 22 under SIP load.

tests/data/asterisk_events/*.json hold every AMI event (of the classes serve reads) of one call of
tests/asterisk/test_asterisk_load.py's load, and Asterisk's own queue_log lines for it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome
from tests.paths import DATA

DATA = DATA / "asterisk_events"


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def build(events: list[dict[str, str]]) -> tuple[CallRecord, RecordBuilder]:
    builder = RecordBuilder("gx")
    records: list[CallRecord] = []
    for event in events:
        records += [o for o in builder.feed(event) if isinstance(o, CallRecord)]
    assert records, "no record came out"
    return records[-1], builder


def stamp(events: list[dict[str, str]], event: str, **fields: str) -> float:
    return next(
        float(e["Timestamp"]) for e in events if e["Event"] == event and all(e.get(k) == v for k, v in fields.items())
    )


def test_agent_complete_after_the_caller_hung_up_is_not_malformed() -> None:
    """The caller hung up first (Reason: caller): Asterisk's AgentComplete then carries no caller channel
    fields (no Uniqueid), only the member leg's. It was skipped as malformed 'no Uniqueid'."""
    data = capture("agentcomplete_after_caller_hangup")
    events = data["events"]
    complete = next(e for e in events if e["Event"] == "AgentComplete")
    assert "Uniqueid" not in complete and complete["Reason"] == "caller"
    rec, builder = build(events)
    assert builder.skipped == 0
    assert rec.call_id == data["call_id"] and rec.outcome is Outcome.ANSWERED
    assert rec.agent == complete["MemberName"] and rec.talk is not None
    talk = stamp(events, "Hangup", Uniqueid=data["call_id"]) - stamp(events, "AgentConnect")
    assert rec.talk == pytest.approx(talk, abs=0.01)


def test_agent_complete_of_a_call_in_progress_found_by_its_member_leg() -> None:
    """Without the caller's hang-up the call is still up when AgentComplete comes: it is found by its member
    leg, and the talk (from the member leg leaving the bridge) agrees with its TalkTime (whole seconds)."""
    data = capture("agentcomplete_after_caller_hangup")
    events = [e for e in data["events"] if not (e["Event"] == "Hangup" and e.get("Uniqueid") == data["call_id"])]
    builder = RecordBuilder("gx")
    for event in events:
        builder.feed(event)
    assert builder.skipped == 0
    (live,) = builder.snapshot()
    complete = next(e for e in events if e["Event"] == "AgentComplete")
    assert live.talk is not None and abs(live.talk - float(complete["TalkTime"])) < 1.0


def test_overflowed_calls_wait_counts_its_first_queue() -> None:
    """Timed out of its first queue (queue_log EXITWITHTIMEOUT), answered in the next: the wait runs from
    the first join to the answer, as queue_log's two waits add up; AMI's HoldTime counts only the last queue."""
    data = capture("overflowed_then_answered")
    events, qlog = data["events"], data["queue_log"]
    assert [q[4] for q in qlog][:4] == ["ENTERQUEUE", "EXITWITHTIMEOUT", "ENTERQUEUE", "CONNECT"]
    rec, builder = build(events)
    assert builder.skipped == 0
    assert rec.outcome is Outcome.ANSWERED and rec.overflowed
    first_join = stamp(events, "QueueCallerJoin")
    connect = next(e for e in events if e["Event"] == "AgentConnect")
    assert rec.wait == pytest.approx(float(connect["Timestamp"]) - first_join, abs=0.01)
    assert rec.wait is not None and rec.wait > float(connect["HoldTime"])
    queue_log_wait = int(qlog[1][7]) + int(qlog[3][5])  # EXITWITHTIMEOUT waittime + CONNECT holdtime
    assert abs(rec.wait - queue_log_wait) <= 2.0  # queue_log counts whole seconds, per queue


def test_the_dialplans_fallback_after_a_queue_timeout_keeps_the_decision() -> None:
    """The same call: the controller decided (12345, menu, hechi-general); the queue's overflow wait ran
    out with no overflow queue, so hotline-queue went on to hotline-fallback, which sent a HotlineRoute
    with Action: fallback and queued it in gx-general. The record keeps the controller's decision
    (not ``fallback``: that flag means the controller gave none) and counts the move as an overflow."""
    data = capture("overflowed_then_answered")
    events = data["events"]
    routes = [e for e in events if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"]
    assert [r["Action"] for r in routes] == ["queue", "queue", "fallback"]
    rec, _ = build(events)
    assert not rec.fallback and rec.action == "queue" and rec.target == routes[1]["Target"]
    assert rec.overflowed and rec.queue == routes[2]["Target"]


def test_a_members_late_dial_after_another_answered_is_no_transfer() -> None:
    """A plain answered call (queue_log ENTERQUEUE, CONNECT, COMPLETECALLER; the CDR one ANSWERED row), with
    a second member's Local;2 leg dialling its phone 5 ms after AgentConnect (its DialBegin carries the
    call's Linkedid). It was recorded 'transferred' with talk 0.005 s."""
    data = capture("answered_in_queue")
    events = data["events"]
    call_id = data["call_id"]
    connect_at = events.index(next(e for e in events if e["Event"] == "AgentConnect"))
    member_dial = next(e for e in events if e["Event"] == "DialBegin" and e.get("Uniqueid") != call_id)
    late = copy.deepcopy(member_dial)
    late["Timestamp"] = f"{float(events[connect_at]['Timestamp']) + 0.005:.6f}"
    late["Uniqueid"] = late["Uniqueid"] + "9"  # another member's Local;2 leg
    late["DestUniqueid"] = late["DestUniqueid"] + "9"
    rec, builder = build([*events[: connect_at + 1], late, *events[connect_at + 1 :]])
    assert builder.skipped == 0
    assert rec.outcome is Outcome.ANSWERED and rec.transfers == []
    assert rec.talk is not None and rec.talk > 1.0


def test_captured_answered_call_as_is() -> None:
    data = capture("answered_in_queue")
    rec, builder = build(data["events"])
    assert builder.skipped == 0
    assert (rec.outcome, rec.queue, rec.transfers) == (Outcome.ANSWERED, data["queue_log"][0][2], [])
    calltime = int(data["queue_log"][2][6])  # COMPLETECALLER holdtime|calltime|origposition
    assert rec.talk is not None and abs(rec.talk - calltime) <= 1.0


def test_a_member_answering_as_the_caller_times_out_of_the_queue_is_no_answer() -> None:
    """The captured answered call cut where the member's phone has answered (both DialEnd ANSWER: the
    Local;2 leg's and the queue's ring) but the queue never connected them (no QueueCallerLeave, no
    AgentConnect): the caller then times out of the queue, joins the overflow queue, which rings another
    member, and hangs up there. Asterisk's queue_log has no CONNECT: no answer and no transfer. It was
    recorded 'transferred' with a talk of 0.00007 s."""
    data = capture("answered_in_queue")
    events = data["events"]
    call_id = data["call_id"]
    cut = events.index(next(e for e in events if e["Event"] == "QueueCallerLeave"))
    head = [e for e in events[:cut] if e["Event"] != "BridgeEnter"]
    assert [e["DialStatus"] for e in head if e["Event"] == "DialEnd"] == ["ANSWER", "ANSWER"]
    t = float(head[-1]["Timestamp"])
    caller = next(e for e in events if e["Event"] == "Newchannel" and e["Uniqueid"] == call_id)
    base = {k: v for k, v in caller.items() if k not in ("Event", "Timestamp", "Exten", "Context", "Priority")}
    ring = next(e for e in head if e["Event"] == "DialBegin" and e["Uniqueid"] == call_id)

    def at(dt_: float, **fields: str) -> dict[str, str]:
        return {**base, **fields, "Timestamp": f"{t + dt_:.6f}"}

    tail = [
        at(0.01, Event="QueueCallerAbandon", Queue="gx-general", Position="1", OriginalPosition="1", HoldTime="2"),
        at(0.02, Event="QueueCallerLeave", Queue="gx-general", Count="0", Position="1"),
        at(0.1, Event="UserEvent", UserEvent="HotlineRoute", CallId=call_id, Action="fallback", Target="gx-general"),
        at(0.2, Event="QueueCallerJoin", Queue="gx-general", Position="1", Count="1"),
        {**ring, "Timestamp": f"{t + 0.25:.6f}", "DestUniqueid": ring["DestUniqueid"] + "9"},
        at(1.5, Event="QueueCallerAbandon", Queue="gx-general", Position="1", OriginalPosition="1", HoldTime="1"),
        at(1.5, Event="Hangup", Cause="16"),
    ]
    rec, builder = build([*head, *tail])
    assert builder.skipped == 0
    assert rec.transfers == [] and rec.outcome is Outcome.OVERFLOWED and rec.talk is None and rec.agent == ""
