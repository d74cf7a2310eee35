"""RecordBuilder: AMI event sequences (Asterisk 20 field names) -> one record per call, outcomes, bounds, resync."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from hotline_cti.core.model import TransferMode
from hotline_cti.events import Event
from hotline_cti.records.builder import Output, RecordBuilder
from hotline_cti.records.caller import CallerPolicy, CallerStorage
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
CALLER = "1700000000.1"
AGENT = "1700000000.2"
NUMBER = "13812345678"

Fields = dict[str, str]


def snapshot(uid: str = CALLER, linked: str = CALLER, prefix: str = "", **kw: str) -> Fields:
    base = {
        "Channel": kw.pop("Channel", "PJSIP/trunk-00000001" if uid == CALLER else "PJSIP/8001-00000002"),
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": kw.pop("CallerIDNum", NUMBER if uid == CALLER else "8001"),
        "CallerIDName": "<unknown>",
        "Context": "from-trunk",
        "Exten": kw.pop("Exten", "12315"),
        "Priority": "1",
        "Uniqueid": uid,
        "Linkedid": linked,
    }
    return {f"{prefix}{k}": v for k, v in base.items()} | kw


def ev(name: str, **fields: str) -> Fields:
    return {"Event": name, **fields}


def route(action: str = "queue", **kw: str) -> Fields:
    fields = {
        "UserEvent": "HotlineRoute",
        "CallId": CALLER,
        "Dialled": "12315",
        "Form": "local",
        "Action": action,
        "Target": "l12315",
        "Origin": "12315",
        "Mode": "parallel",
        "Phase": "transition",
        "Centre": "gx",
        "City": "nanning",
        "Expert": "e12315",
    }
    return ev("UserEvent", **(fields | kw))


def connect(hold: str = "12") -> Fields:
    return ev(
        "AgentConnect",
        **snapshot(),
        **snapshot(AGENT, CALLER, prefix="Dest"),
        Queue="l12315",
        Interface="PJSIP/8001",
        MemberName="Agent 8001",
        HoldTime=hold,
        RingTime="3",
    )


def answered_call() -> list[tuple[int, Fields]]:
    """A citizen dials 12315, is queued, answered, rates 满意 and hangs up: (seconds after T0, event)."""
    return [
        (0, ev("Newchannel", **snapshot())),
        (1, route()),
        (2, ev("QueueCallerJoin", **snapshot(), Queue="l12315", Position="1", Count="1")),
        (13, ev("Newchannel", **snapshot(AGENT, CALLER))),
        (13, ev("AgentCalled", **snapshot(), **snapshot(AGENT, CALLER, prefix="Dest"), Queue="l12315")),
        (14, ev("QueueCallerLeave", **snapshot(), Queue="l12315", Position="1", Count="0")),
        (14, connect()),
        (74, ev("BridgeLeave", **snapshot(AGENT, CALLER), BridgeUniqueid="b1")),
        (74, ev("Hangup", **snapshot(AGENT, CALLER), Cause="16", **{"Cause-txt": "Normal Clearing"})),
        (
            74,
            ev(
                "AgentComplete",
                **snapshot(),
                **snapshot(AGENT, CALLER, prefix="Dest"),
                Queue="l12315",
                HoldTime="12",
                TalkTime="60",
                Reason="agent",
            ),
        ),
        (80, ev("UserEvent", UserEvent="HotlineRating", CallId=CALLER, Rating="1")),
        (81, ev("Hangup", **snapshot(), Cause="16", **{"Cause-txt": "Normal Clearing"})),
    ]


def run(builder: RecordBuilder, script: list[tuple[int, Fields]]) -> list[Output]:
    out: list[Output] = []
    for offset, message in script:
        out.extend(builder.feed(message, T0 + dt.timedelta(seconds=offset)))
    return out


def records(out: list[Any]) -> list[CallRecord]:
    return [o for o in out if isinstance(o, CallRecord)]


def event_types(out: list[Any]) -> list[str]:
    return [o.type for o in out if isinstance(o, Event)]


def only_record(out: list[Any]) -> CallRecord:
    (rec,) = records(out)
    return rec


def test_answered_call_gives_one_complete_record_and_events_in_order() -> None:
    builder = RecordBuilder("gx")
    out = run(builder, answered_call())
    assert event_types(out) == [f"calls/{e}" for e in ("started", "routed", "queued", "answered", "rated", "ended")]
    rec = only_record(out)
    assert rec == CallRecord(
        call_id=CALLER,
        region="gx",
        started=T0,
        ended=T0 + dt.timedelta(seconds=81),
        caller="138****5678",
        dialled="12315",
        form="local",
        origin="12315",
        mode="parallel",
        phase="transition",
        action="queue",
        target="l12315",
        centre="gx",
        city="nanning",
        queue="l12315",
        expert="e12315",
        wait=12.0,
        agent="Agent 8001",
        talk=60.0,
        rating=1,
        outcome=Outcome.ANSWERED,
        hangup_cause=16,
    )
    ended = next(o for o in out if isinstance(o, Event) and o.type == "calls/ended")
    assert ended.data == rec.to_dict() and ended.region == "gx"
    assert builder.active == 0 and builder.snapshot() == []


def test_no_event_carries_the_raw_number() -> None:
    out = run(RecordBuilder("gx"), answered_call())
    assert all(NUMBER not in o.to_json() for o in out if isinstance(o, Event))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (CallerPolicy(), "138****5678"),
        (CallerPolicy(CallerStorage.CLEAR), NUMBER),
    ],
)
def test_caller_storage_modes(policy: CallerPolicy, expected: str) -> None:
    assert only_record(run(RecordBuilder("gx", policy), answered_call())).caller == expected


def test_hashed_caller_is_stable_per_salt_and_hides_the_number() -> None:
    first = CallerPolicy.from_env({"HOTLINE_CALLER_STORAGE": "hash", "HOTLINE_CALLER_SALT": "s1"})
    again = CallerPolicy(CallerStorage.HASH, "s1")
    other = CallerPolicy(CallerStorage.HASH, "s2")
    stored = only_record(run(RecordBuilder("gx", first), answered_call())).caller
    assert stored.startswith("h:") and "5678" not in stored
    assert again.protect("138-1234-5678") == stored != other.protect(NUMBER)


def test_caller_policy_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match="HOTLINE_CALLER_SALT"):
        CallerPolicy.from_env({"HOTLINE_CALLER_STORAGE": "hash"})
    with pytest.raises(ValueError, match="HOTLINE_CALLER_STORAGE must be mask, hash or clear, got 'plain'"):
        CallerPolicy.from_env({"HOTLINE_CALLER_STORAGE": "plain"})
    assert CallerPolicy.from_env({}).mode is CallerStorage.MASK


def queued(*more: tuple[int, Fields], action: str = "queue") -> list[tuple[int, Fields]]:
    return [
        (0, ev("Newchannel", **snapshot())),
        (1, route(action)),
        (2, ev("QueueCallerJoin", **snapshot(), Queue="l12315", Position="1", Count="1")),
        *more,
    ]


def hangup(at: int, cause: str = "16") -> tuple[int, Fields]:
    return (at, ev("Hangup", **snapshot(), Cause=cause))


def test_abandoned_while_waiting() -> None:
    script = queued(
        (32, ev("QueueCallerAbandon", **snapshot(), Queue="l12315", Position="1", OriginalPosition="1", HoldTime="30")),
        hangup(32),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.ABANDONED and rec.wait == 30.0 and rec.agent == ""


def test_overflowed_and_not_answered_in_the_overflow_queue() -> None:
    script = queued(
        (92, ev("UserEvent", UserEvent="HotlineOverflow", CallId=CALLER, From="l12315", To="general")),
        (92, ev("QueueCallerJoin", **snapshot(), Queue="general", Position="3", Count="3")),
        (
            150,
            ev("QueueCallerAbandon", **snapshot(), Queue="general", Position="2", OriginalPosition="3", HoldTime="58"),
        ),
        hangup(150),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.OVERFLOWED and rec.overflowed and rec.queue == "general"


def test_overflow_answered_counts_as_answered() -> None:
    script = queued(
        (92, ev("QueueCallerJoin", **snapshot(), Queue="general", Position="1", Count="1")),  # no UserEvent seen
        (95, connect("93")),
        hangup(200),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.ANSWERED and rec.overflowed and rec.wait == 93.0 and rec.talk == 105.0


@pytest.mark.parametrize(("action", "outcome"), [("retired", Outcome.RETIRED), ("guidance", Outcome.GUIDANCE)])
def test_prompt_only_routes(action: str, outcome: Outcome) -> None:
    script = [(0, ev("Newchannel", **snapshot())), (1, route(action, Target="")), hangup(20)]
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is outcome and rec.action == action and rec.wait is None


def test_fallback_route_is_flagged() -> None:
    script = [(0, ev("Newchannel", **snapshot())), (1, route("fallback", Mode="unknown")), hangup(5)]
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.fallback and rec.outcome is Outcome.FAILED


def dialled(action: str, status: str, dest: str = "PJSIP/sft-0000002a") -> list[tuple[int, Fields]]:
    leg = "1700000000.9"
    return [
        (0, ev("Newchannel", **snapshot())),
        (1, route(action, Target="sft")),
        (
            1,
            ev("DialBegin", **snapshot(), **snapshot(leg, CALLER, prefix="Dest", Channel=dest), DialString="12348@sft"),
        ),
        (9, ev("DialEnd", **snapshot(), **snapshot(leg, CALLER, prefix="Dest", Channel=dest), DialStatus=status)),
        hangup(60),
    ]


@pytest.mark.parametrize(
    ("action", "status", "outcome"),
    [
        ("department", "ANSWER", Outcome.ANSWERED),
        ("subcentre", "ANSWER", Outcome.ANSWERED),
        ("emergency", "ANSWER", Outcome.EMERGENCY),
        ("department", "CANCEL", Outcome.ABANDONED),
        ("department", "CONGESTION", Outcome.FAILED),
        ("subcentre", "NOANSWER", Outcome.FAILED),
    ],
)
def test_dialled_routes(action: str, status: str, outcome: Outcome) -> None:
    rec = only_record(run(RecordBuilder("gx"), dialled(action, status)))
    assert rec.outcome is outcome
    if status == "ANSWER":
        assert rec.agent == "PJSIP/sft" and rec.talk == 51.0


def test_blind_transfer_by_the_agent() -> None:
    script = queued(
        (14, connect()),
        (
            40,
            ev(
                "BlindTransfer",
                Result="Success",
                **snapshot(AGENT, CALLER, prefix="Transferer"),
                **snapshot(CALLER, CALLER, prefix="Transferee"),
                IsExternal="No",
                Context="hotline-transfer",
                Extension="110",
            ),
        ),
        hangup(300),
    )
    out = run(RecordBuilder("gx"), script)
    rec = only_record(out)
    assert "calls/transferred" in event_types(out)
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["110"] and rec.talk == 26.0


def test_blind_transfer_then_its_dial_out_is_one_transfer() -> None:
    leg = "1700000000.9"
    dest = snapshot(leg, CALLER, prefix="Dest", Channel="PJSIP/pstn-0001", Exten="s")
    script = queued(
        (14, connect()),
        (
            40,
            ev(
                "BlindTransfer",
                Result="Success",
                **snapshot(AGENT, CALLER, prefix="Transferer"),
                **snapshot(CALLER, CALLER, prefix="Transferee"),
                Context="hotline-onekey",
                Extension="110",
            ),
        ),
        (40, ev("DialBegin", **snapshot(), **dest, DialString="PJSIP/110@pstn")),
        (46, ev("DialEnd", **snapshot(), **dest, DialStatus="ANSWER")),
        hangup(300),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["110"]


def agent_key(target: str = "110", mode: str = "blind", result: str = "SUCCESS") -> Fields:
    """The HotlineTransfer event hotline-xfer sends when an agent presses a one-key transfer."""
    return ev(
        "UserEvent",
        UserEvent="HotlineTransfer",
        CallId=CALLER,
        Target=target,
        Mode=mode,
        Channel="PJSIP/8001-00000002",
        Result=result,
    )


def test_one_key_transfer_is_audited_with_the_agent_and_counted_once() -> None:
    leg = "1700000000.9"
    dest = snapshot(leg, CALLER, prefix="Dest", Channel="PJSIP/pstn-0001", Exten="s")
    script = queued(
        (14, connect()),
        (40, agent_key()),
        (40, ev("DialBegin", **snapshot(), **dest, DialString="PJSIP/110@pstn")),
        (46, ev("DialEnd", **snapshot(), **dest, DialStatus="ANSWER")),
        hangup(300),
    )
    out = run(RecordBuilder("gx"), script)
    (audit,) = [o for o in out if isinstance(o, TransferRecord)]
    assert (audit.call_id, audit.target, audit.mode, audit.requested_by, audit.result, audit.reason) == (
        CALLER,
        "110",
        TransferMode.BLIND,
        "agent:8001",
        "ok",
        "",
    )
    assert audit.at == T0 + dt.timedelta(seconds=40) and len(audit.transfer_id) == 32
    (event,) = [o for o in out if isinstance(o, Event) and o.type == "transfers"]
    assert (
        event.data["target"] == "110" and event.data["mode"] == "blind" and event.data["requested_by"] == "agent:8001"
    )
    rec = only_record(out)  # named by the key, not by the dial that follows (counted once)
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["110"] and rec.talk == 26.0


def test_one_key_transfer_of_a_caller_already_gone_is_audited_as_failed() -> None:
    out = run(RecordBuilder("gx"), queued((14, connect()), (40, agent_key("tax", "threeway", "NOCHANNEL"))))
    (audit,) = [o for o in out if isinstance(o, TransferRecord)]
    assert (audit.target, audit.mode, audit.result) == ("tax", TransferMode.THREEWAY, "failed")
    assert audit.reason == "ChannelRedirect: NOCHANNEL"
    assert "calls/transferred" not in event_types(out)


def test_one_key_transfer_without_a_known_mode_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    builder = RecordBuilder("gx")
    with caplog.at_level(logging.WARNING, logger="hotline_cti.records.builder"):
        out = run(builder, queued((14, connect()), (40, agent_key(mode="sideways"))))
    assert not [o for o in out if isinstance(o, TransferRecord)] and builder.skipped == 1
    assert "transfer mode 'sideways' is not a transfer mode" in caplog.text


def test_failed_transfer_is_not_a_transfer() -> None:
    script = queued(
        (14, connect()),
        (40, ev("BlindTransfer", Result="Invalid", **snapshot(AGENT, CALLER, prefix="Transferer"), Extension="110")),
        hangup(100),
    )
    assert only_record(run(RecordBuilder("gx"), script)).outcome is Outcome.ANSWERED


def test_attended_transfer_to_a_subcentre() -> None:
    script = queued(
        (14, connect()),
        (
            90,
            ev(
                "AttendedTransfer",
                Result="Success",
                **snapshot(AGENT, CALLER, prefix="OrigTransferer"),
                **snapshot("1700000000.5", "1700000000.5", prefix="SecondTransferer", Exten="12366"),
                DestType="Bridge",
            ),
        ),
        hangup(200),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["12366"]


def test_redirect_follows_the_agent_leg_not_agent_complete() -> None:
    """After a Redirect of the caller to 110, AgentComplete only comes at the caller's hang-up, with a long TalkTime."""
    leg110 = "1700000000.7"
    script = queued(
        (14, connect()),
        (74, ev("BridgeLeave", **snapshot(AGENT, CALLER), BridgeUniqueid="b1")),
        (74, ev("Hangup", **snapshot(AGENT, CALLER), Cause="16")),
        (
            75,
            ev(
                "DialBegin",
                **snapshot(),
                **snapshot(leg110, CALLER, prefix="Dest", Exten="110"),
                DialString="110@police",
            ),
        ),
        (80, ev("DialEnd", **snapshot(), **snapshot(leg110, CALLER, prefix="Dest", Exten="110"), DialStatus="ANSWER")),
        (
            300,
            ev(
                "AgentComplete",
                **snapshot(),
                **snapshot(AGENT, CALLER, prefix="Dest"),
                TalkTime="286",
                Reason="transfer",
            ),
        ),
        hangup(300),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.talk == 60.0 and rec.transfers == ["110"] and rec.agent == "Agent 8001"
    assert rec.outcome is Outcome.TRANSFERRED


def test_malformed_events_are_logged_masked_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    builder = RecordBuilder("gx")
    bad = [
        (0, ev("Newchannel", CallerIDNum=NUMBER, Channel="PJSIP/trunk-1")),  # no Uniqueid
        (0, ev("QueueCallerAbandon", **snapshot(), Queue="q", HoldTime="soon")),
        (0, ev("UserEvent", UserEvent="HotlineRating", CallId=CALLER, Rating="5")),
        (0, ev("UserEvent", UserEvent="HotlineRoute")),  # no CallId
        (0, ev("NoSuchEvent", Foo="bar")),
        (0, {"Response": "Success"}),
    ]
    with caplog.at_level(logging.WARNING, logger="hotline_cti.records.builder"):
        out = run(builder, bad[:1] + answered_call()[:3] + bad[1:] + answered_call()[3:])
    assert builder.skipped == 4
    assert NUMBER not in caplog.text and "138****5678" in caplog.text
    assert "HoldTime 'soon' is not a number" in caplog.text and "rating '5' is not 1, 2 or 3" in caplog.text
    assert only_record(out).outcome is Outcome.ANSWERED  # the call itself is still complete


def test_rating_after_hang_up_updates_the_record() -> None:
    builder = RecordBuilder("gx")
    script = [s for s in answered_call() if s[1].get("UserEvent") != "HotlineRating"]
    assert only_record(run(builder, script)).rating is None
    out = builder.feed(
        ev("UserEvent", UserEvent="HotlineRating", CallId=CALLER, Rating="3"), T0 + dt.timedelta(seconds=90)
    )
    assert event_types(out) == ["calls/rated"] and only_record(out).rating == 3


def test_cdr_fills_the_dialled_number_when_no_route_was_seen() -> None:
    builder = RecordBuilder("gx")
    run(builder, [(0, ev("Newchannel", **snapshot(Exten="s"))), hangup(3)])
    out = builder.feed(
        ev("Cdr", UniqueID=CALLER, Source=NUMBER, Destination="12345", Disposition="NO ANSWER"),
        T0 + dt.timedelta(seconds=4),
    )
    assert only_record(out).dialled == "12345"


def test_calls_without_hang_up_expire() -> None:
    builder = RecordBuilder("gx", max_age=dt.timedelta(hours=1))
    run(builder, queued())
    assert builder.active == 1 and builder.snapshot()[0].outcome is Outcome.ACTIVE
    other = "1700000100.1"
    out = builder.feed(ev("Newchannel", **snapshot(other, other)), T0 + dt.timedelta(hours=2))
    rec = only_record(out)
    assert rec.call_id == CALLER and rec.outcome is Outcome.FAILED and rec.ended == T0 + dt.timedelta(seconds=2)
    assert builder.active == 1


def test_max_calls_bounds_memory() -> None:
    builder = RecordBuilder("gx", max_calls=10)
    out: list[Any] = []
    for i in range(25):
        uid = f"1700000000.{100 + i}"
        out += builder.feed(ev("Newchannel", **snapshot(uid, uid)), T0 + dt.timedelta(seconds=i))
    out += builder.expire(T0 + dt.timedelta(seconds=30))
    assert builder.active == 10
    assert [r.call_id for r in records(out)][:3] == ["1700000000.100", "1700000000.101", "1700000000.102"]


def test_resync_finishes_vanished_calls_and_adopts_unknown_ones() -> None:
    builder = RecordBuilder("gx")
    gone_waiting, gone_answered, alive, new = "1.1", "2.1", "3.1", "4.1"
    for uid in (gone_waiting, gone_answered, alive):
        builder.feed(ev("Newchannel", **snapshot(uid, uid)), T0)
        builder.feed(ev("QueueCallerJoin", **snapshot(uid, uid), Queue="general"), T0)
    builder.feed(
        ev("AgentConnect", **snapshot(gone_answered, gone_answered), DestUniqueid="2.2", MemberName="A1", HoldTime="5"),
        T0,
    )
    later = T0 + dt.timedelta(minutes=5)
    channels = [
        {"Event": "CoreShowChannel", **snapshot(alive, alive)},
        {"Event": "CoreShowChannel", **snapshot(new, new), "Duration": "00:01:30"},
        {"Event": "CoreShowChannel", **snapshot("4.2", new)},
    ]
    out = builder.resync(channels, later)
    finished = {r.call_id: r for r in records(out)}
    assert finished[gone_waiting].outcome is Outcome.FAILED and finished[gone_waiting].ended == later
    assert finished[gone_answered].outcome is Outcome.ANSWERED and finished[gone_answered].talk == 300.0
    assert {r.call_id: r.started for r in builder.snapshot()} == {alive: T0, new: later - dt.timedelta(seconds=90)}
    assert "calls/started" in event_types(out)


def test_event_timestamp_is_used_when_no_time_is_given() -> None:
    builder = RecordBuilder("gx")
    out = builder.feed(ev("Newchannel", **snapshot(), Timestamp=str(T0.timestamp())))
    assert out[0].at == T0  # type: ignore[union-attr]


def test_resync_keeps_calls_that_began_after_the_channel_list_was_asked() -> None:
    builder = RecordBuilder("gx")
    asked = T0 + dt.timedelta(seconds=10)
    builder.feed(ev("Newchannel", **snapshot("1.1", "1.1")), T0)
    builder.feed(ev("Newchannel", **snapshot("2.1", "2.1")), asked + dt.timedelta(seconds=1))  # raced the list
    out = builder.resync([], asked + dt.timedelta(seconds=2), seen_before=asked)
    assert [r.call_id for r in records(out)] == ["1.1"]
    assert [r.call_id for r in builder.snapshot()] == ["2.1"]


def test_a_call_listed_at_a_login_whose_hangup_came_before_the_list_is_recorded_once() -> None:
    """An events service logs in while a call it never saw ends: AMI delivers the Hangup before CoreShowChannels'
    list, which still shows the call. It is started and finished at the Hangup, once; a later resync forgets it."""
    builder = RecordBuilder("gx")
    hung = T0 + dt.timedelta(seconds=3)
    assert records(builder.feed(ev("Hangup", **snapshot("5.1", "5.1"), Cause="16"), hung)) == []
    listed = [{"Event": "CoreShowChannel", **snapshot("5.1", "5.1"), "Duration": "00:00:20"}]
    out = builder.resync(listed, T0 + dt.timedelta(seconds=4), seen_before=T0)
    (rec,) = records(out)
    assert rec.call_id == "5.1" and rec.ended == hung and rec.hangup_cause == 16
    assert rec.started == T0 + dt.timedelta(seconds=4) - dt.timedelta(seconds=20)
    assert builder.active == 0 and event_types(out) == ["calls/started", "calls/ended"]
    # remembered only until that resync: the same id listed again (a new Asterisk run) is a call in progress
    again = builder.resync(listed, T0 + dt.timedelta(seconds=60))
    assert records(again) == [] and builder.active == 1


# ---------------------------------------------------------------- transfers as Asterisk 22 reports them


def consultation(
    at: int, code: str = "110", uid: str = "1700000000.6", context: str = "hotline-onekey"
) -> tuple[int, Fields]:
    """The atxfer consultation (or a three-way target) dialling out: Local/<code>@<context>;2 -> the seat."""
    return (
        at,
        ev(
            "DialBegin",
            **snapshot(uid, CALLER, Channel=f"Local/{code}@{context}-00000001;2", Exten=code),
            **snapshot("1700000000.8", CALLER, prefix="Dest", Channel="PJSIP/pstn-00000003"),
            DialString=f"{code}@pstn",
        ),
    )


def attended_done(at: int) -> tuple[int, Fields]:
    """AttendedTransfer as Asterisk 22 sends it for a Local agent: no TransferTarget*, SecondTransferer
    is the agent itself (Exten s)."""
    return (
        at,
        ev(
            "AttendedTransfer",
            Result="Success",
            **snapshot(AGENT, CALLER, prefix="OrigTransferer", Exten="s"),
            **snapshot(AGENT, CALLER, prefix="SecondTransferer", Exten="s"),
            DestType="Bridge",
        ),
    )


@pytest.mark.parametrize(("context", "audited"), [("hotline-onekey", True), ("hotline-onekey-cmd", False)])
def test_attended_transfer_by_the_agents_key_is_audited_a_commands_is_not_again(context: str, audited: bool) -> None:
    """The agent's own *2 consults through hotline-onekey and is audited from AttendedTransfer; the CLI
    and MQTT consult through hotline-onekey-cmd and audit themselves (no second row)."""
    out = run(RecordBuilder("gx"), queued((14, connect()), consultation(30, context=context), attended_done(60)))
    audits = [o for o in out if isinstance(o, TransferRecord)]
    if audited:
        (audit,) = audits
        assert (audit.call_id, audit.target, audit.mode, audit.requested_by, audit.result) == (
            CALLER,
            "110",
            TransferMode.ATTENDED,
            "agent:8001",
            "ok",
        )
        assert [e.type for e in out if isinstance(e, Event) and e.type == "transfers"] == ["transfers"]
    else:
        assert audits == []


def test_attended_transfer_is_counted_once_and_names_the_consulted_target() -> None:
    """Asterisk 22 with a Local agent: the consultation dials first, then AttendedTransfer names neither
    the target's channel nor its extension (SecondTransferer is the agent, Exten s)."""
    script = queued(
        (14, connect()),
        consultation(30),
        (
            60,
            ev(
                "AttendedTransfer",
                Result="Success",
                **snapshot(AGENT, CALLER, prefix="OrigTransferer", Exten="s"),
                **snapshot(AGENT, CALLER, prefix="SecondTransferer", Exten="s"),
                DestType="Bridge",
            ),
        ),
        hangup(200),
    )
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["110"]


def test_an_aborted_consultation_is_no_transfer() -> None:
    script = queued((14, connect()), consultation(30), hangup(200))
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.outcome is Outcome.ANSWERED and rec.transfers == []


def conference_join(at: int, channel: str, uid: str, conference: str = f"hotline-{CALLER}") -> tuple[int, Fields]:
    return (at, ev("ConfbridgeJoin", **snapshot(uid, uid, Channel=channel), Conference=conference, Admin="No"))


def test_three_way_target_joining_the_conference_is_the_transfer() -> None:
    """CLI, MQTT and *3 all call the target into hotline-<call id>; caller and agent joining are not
    transfers, and a second join event of the same leg is not a second transfer."""
    target = "Local/110@hotline-onekey-00000004;1"
    script = queued(
        (14, connect()),
        conference_join(20, "PJSIP/trunk-00000001", CALLER),
        conference_join(20, "PJSIP/8001-00000002", AGENT),
        consultation(21),
        conference_join(25, target, "1700000000.20"),
        conference_join(26, target, "1700000000.20"),
        (25, agent_key("110", "threeway")),
        hangup(200),
    )
    out = run(RecordBuilder("gx"), script)
    rec = only_record(out)
    assert rec.outcome is Outcome.TRANSFERRED and rec.transfers == ["110"]
    (audit,) = [o for o in out if isinstance(o, TransferRecord)]
    assert (audit.mode, audit.result) == (TransferMode.THREEWAY, "ok")


def test_three_way_key_whose_target_did_not_answer_is_audited_failed() -> None:
    key = agent_key("110", "threeway", "BUSY") | {"Step": "Originate"}
    out = run(RecordBuilder("gx"), queued((14, connect()), (40, key), hangup(100)))
    (audit,) = [o for o in out if isinstance(o, TransferRecord)]
    assert (audit.result, audit.reason) == ("failed", "Originate: BUSY")
    assert only_record(out).transfers == []


def test_handover_lists_12345_and_keeps_the_emergency_route() -> None:
    """HotlineHandover from hotline-handover, then the fallback's HotlineRoute: the record stays a 110 call."""
    seat = snapshot("1700000000.3", CALLER, prefix="Dest", Channel="PJSIP/pstn-00000003")
    script = [
        (0, ev("Newchannel", **snapshot())),
        (1, route("emergency", Target="110", Origin="110", Mode="transfer")),
        (2, ev("DialBegin", **snapshot(), **seat, DialString="110@pstn")),
        (4, ev("DialEnd", **snapshot(), **seat, DialStatus="ANSWER")),
        (30, ev("UserEvent", UserEvent="HotlineHandover", CallId=CALLER, From="110", Channel="PJSIP/trunk-00000001")),
        (30, route("fallback", Target="gx-general")),
        (31, ev("QueueCallerJoin", **snapshot(), Queue="gx-general", Position="1", Count="1")),
        (33, connect()),
        hangup(100),
    ]
    rec = only_record(run(RecordBuilder("gx"), script))
    assert rec.transfers == ["12345"] and rec.outcome is Outcome.TRANSFERRED
    assert (rec.action, rec.target, rec.fallback) == ("emergency", "110", False)


def test_user_events_of_a_local_caller_belong_to_its_call() -> None:
    """Behind a Local channel HOTLINE_CALL_ID is the ;2 leg (the one that ran the routing), tied to the
    call by its Linkedid: its route and its agent's key are the call's, not a second record's."""
    leg2 = "rig01-2"
    script = [
        (0, ev("Newchannel", **snapshot("rig01", "rig01", Channel="Local/12300@hotline-inbound-00000000;1"))),
        (0, ev("Newchannel", **snapshot(leg2, "rig01", Channel="Local/12300@hotline-inbound-00000000;2"))),
        (1, route(CallId=leg2)),
        (40, agent_key() | {"CallId": leg2, "Channel": "Local/lagent@rig-agent-00000001;1"}),
        (100, ev("Hangup", **snapshot("rig01", "rig01"), Cause="16")),
    ]
    out = run(RecordBuilder("gx"), script)
    (rec,) = {r.call_id: r for r in records(out)}.values()
    assert rec.call_id == "rig01" and rec.action == "queue" and rec.transfers == ["110"]
    (audit,) = [o for o in out if isinstance(o, TransferRecord)]
    assert audit.requested_by == "agent:lagent"
