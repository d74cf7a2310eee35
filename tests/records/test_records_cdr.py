"""Asterisk's CDR as the second source of call records (records/cdr.py, serve/cdr_follow.py): a call AMI never
showed is stored from the CDR once, with the CDR's times; a call AMI showed is never replaced nor announced twice;
the file is followed from a position kept in the spool, through restarts, partial lines and rotation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
from pathlib import Path

import pytest

from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.adapters.ami.protocol import Message
from hotline_cti.events import Event
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.cdr import CDR_FIELDS, custom_mapping, parse_line, record_from_rows
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.serve.cdr_follow import CdrFollower
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.spool import Spool
from hotline_cti.storage.spooled import event_id
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.pg_server import PgServer

T0 = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


def line(**values: object) -> str:
    """One CDR line in the columns cdr_custom writes (CDR_FIELDS), CSV-quoted as CSV_QUOTE does."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(str(values.get(f, "")) for f in CDR_FIELDS)
    return out.getvalue()


def caller_line(uid: str, start: float, end: float, **values: object) -> str:
    base: dict[str, object] = {
        "src": "13812345678",
        "dst": "12345",
        "channel": f"PJSIP/trunk-{uid}",
        "start": f"{start:.6f}",
        "end": f"{end:.6f}",
        "disposition": "ANSWERED",
        "lastapp": "AGI",
        "uniqueid": uid,
        "linkedid": uid,
    }
    return line(**{**base, **values})


def epoch(at: dt.datetime) -> float:
    return at.timestamp()


# ------------------------------------------------------------------------------------------------ parsing


def test_a_line_in_the_mapped_columns_is_read_and_anything_else_is_not() -> None:
    row = parse_line(caller_line("1700.1", epoch(T0), epoch(T0) + 42.5).rstrip("\n"))
    assert row is not None and row.caller_leg
    assert (row.uniqueid, row.src, row.dst, row.start, row.end) == (
        "1700.1",
        "13812345678",
        "12345",
        T0,
        T0 + dt.timedelta(seconds=42.5),
    )
    for bad in (
        "",
        "not,a,cdr",
        caller_line("", 1.0, 2.0),  # no unique id
        caller_line("1.1", 5.0, 2.0),  # ends before it starts
        caller_line("1.1", float("nan"), 2.0),
        caller_line("1.1", 1e300, 1e301),
        '"unterminated',
        "x" * 9000,
    ):
        assert parse_line(bad.rstrip("\n")) is None, bad[:40]
    assert "CDR(start,u)" in custom_mapping() and custom_mapping().startswith("Master.csv => ")


def test_a_record_from_the_caller_legs_rows() -> None:
    uid, start = "1700.7", epoch(T0)
    rows = [
        parse_line(caller_line(uid, start, start + 20, lastapp="Queue")),  # IVR, then the queue, an agent answers
        parse_line(
            caller_line(
                uid,
                start,
                start + 80,
                lastapp="Queue",
                dstchannel="PJSIP/8001-0000001a",
                answer=f"{start + 20:.6f}",
                billsec="60.000000",
            )
        ),
        parse_line(line(uniqueid="1700.8", linkedid=uid, start=start + 5, end=start + 80)),  # the agent's leg
    ]
    record = record_from_rows(uid, [r for r in rows if r is not None], "gx")
    assert record is not None
    assert (record.started, record.ended) == (T0, T0 + dt.timedelta(seconds=80))
    assert (record.outcome, record.agent, record.talk) == (Outcome.ANSWERED, "PJSIP/8001", 60.0)
    assert record.caller == "138****5678" and record.dialled == "12345"  # masked as every stored number
    abandoned = record_from_rows(uid, [r for r in rows[:1] if r is not None], "gx")
    assert abandoned is not None and abandoned.outcome is Outcome.ABANDONED
    ivr_only = parse_line(caller_line(uid, start, start + 9))
    assert ivr_only is not None
    failed = record_from_rows(uid, [ivr_only], "gx")
    assert failed is not None and failed.outcome is Outcome.FAILED
    assert record_from_rows("other", [ivr_only], "gx") is None


# ------------------------------------------------------------------------------------------ the builder


def ami(name: str, at: dt.datetime, **fields: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{epoch(at):.6f}", **fields}


def cdr_record(uid: str, start: dt.datetime, end: dt.datetime) -> CallRecord:
    row = parse_line(caller_line(uid, epoch(start), epoch(end)))
    assert row is not None
    record = record_from_rows(uid, [row], "gx")
    assert record is not None
    return record


def test_the_builder_says_what_a_cdr_adds_to_what_it_knows() -> None:
    builder = RecordBuilder("gx")
    end = T0 + dt.timedelta(seconds=30)
    # unknown: never seen on AMI
    assert builder.ended_per_cdr(cdr_record("u1", T0, end)) == ("unknown", [])
    # finished with its Hangup: nothing to add
    builder.feed(ami("Newchannel", T0, Uniqueid="h1", Linkedid="h1", Exten="12345"))
    builder.feed(ami("Hangup", end, Uniqueid="h1", Cause="16"))
    assert builder.ended_per_cdr(cdr_record("h1", T0, end)) == ("known", [])
    # open: its Hangup was lost; finished at the CDR's end, with its ended event
    builder.feed(ami("Newchannel", T0, Uniqueid="o1", Linkedid="o1", Exten="12345"))
    kind, out = builder.ended_per_cdr(cdr_record("o1", T0, end))
    assert kind == "open" and builder.active == 0
    assert [type(o).__name__ for o in out] == ["Event", "CallRecord"]
    assert isinstance(out[1], CallRecord) and out[1].ended == end
    # finished by a resync (when we found out, 20 s late, no cause): its end corrected, the record given again
    builder.feed(ami("Newchannel", T0, Uniqueid="r1", Linkedid="r1", Exten="12345"))
    builder.resync([], end + dt.timedelta(seconds=20))
    kind, out = builder.ended_per_cdr(cdr_record("r1", T0, end))
    assert kind == "corrected" and len(out) == 1
    assert isinstance(out[0], CallRecord) and out[0].ended == end
    assert builder.ended_per_cdr(cdr_record("r1", T0, end)) == ("known", [])  # corrected once


# -------------------------------------------------------------------------------------------- storage


async def check_recovered_written_once(store: Store) -> None:
    writer = BatchWriter(store)
    await writer.start()
    try:
        ami_record = CallRecord("a1", "gx", T0, T0 + dt.timedelta(seconds=9), action="queue", target="gx-general")
        ami_record.outcome = Outcome.ANSWERED
        writer.submit_call(ami_record)
        writer.submit_event(Event("calls/ended", "gx", T0, ami_record.to_dict()))
        assert await writer.flush()
        for _ in range(2):  # the second time as a replay after a crash, or the same line read by a successor
            writer.submit_recovered(cdr_record("a1", T0, T0 + dt.timedelta(seconds=9)))  # stored from AMI already
            writer.submit_recovered(cdr_record("c1", T0, T0 + dt.timedelta(seconds=30)))  # only in the CDR
            assert await writer.flush()
        # AMI's record of c1 arriving after the CDR's (a backlog): it replaces it, its end is not announced again
        late = cdr_record("c1", T0, T0 + dt.timedelta(seconds=30))
        late.action = "queue"
        writer.submit_call(late)
        writer.submit_event(Event("calls/ended", "gx", T0, late.to_dict()))
        assert await writer.flush()
    finally:
        await writer.stop()
    calls = {r.call_id: r for r in await store.calls_between()}
    assert set(calls) == {"a1", "c1"}
    assert calls["a1"].target == "gx-general"  # the AMI record was not replaced by the poorer CDR one
    assert calls["c1"].ended == T0 + dt.timedelta(seconds=30) and calls["c1"].action == "queue"
    ended = [json.loads(p)["data"]["call_id"] for _, t, p in await store.pending_events() if t.endswith("calls/ended")]
    assert sorted(ended) == ["a1", "c1"]


async def test_a_recovered_call_is_stored_once_and_never_replaces_the_ami_record_sqlite(sqlite_store: Store) -> None:
    await check_recovered_written_once(sqlite_store)


async def test_a_recovered_call_is_stored_once_and_never_replaces_the_ami_record_postgresql(
    pg_server: PgServer,
) -> None:
    store = await Store.open(pg_server.create_database())
    try:
        await check_recovered_written_once(store)
    finally:
        await store.close()


async def test_a_call_finished_without_its_hangup_takes_the_cdr_end_even_replayed_after_it(tmp_path: Path) -> None:
    """A restarted events service finished call x at its resync (late, no cause) and was killed before its CDR
    line settled; the next one replays that record from the spool and stores x from the CDR: x ends at the CDR's
    time, whatever the order of the lanes (the spool holds more calls than one batch)."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    writer = BatchWriter(store, max_batch=2)
    try:
        end = T0 + dt.timedelta(seconds=30)
        for i in range(4):
            writer.submit_call(CallRecord(f"o{i}", "gx", T0, end, hangup_cause=16))
        late = cdr_record("x", T0, end + dt.timedelta(seconds=20))  # as the resync finished it
        late.action = "queue"
        writer.submit_call(late)
        writer.submit_recovered(cdr_record("x", T0, end))
        hung_up = CallRecord("y", "gx", T0, end + dt.timedelta(seconds=5), hangup_cause=16)  # ended on AMI: kept
        writer.submit_call(hung_up)
        writer.submit_recovered(cdr_record("y", T0, end))
        await writer.start()
        assert await writer.flush()
        calls = {r.call_id: r for r in await store.calls_between()}
        assert (calls["x"].ended, calls["x"].action) == (end, "queue")
        assert calls["y"].ended == end + dt.timedelta(seconds=5)
    finally:
        await writer.stop()
        await store.close()


def test_a_calls_ended_event_has_one_id_per_call() -> None:
    one = Event("calls/ended", "gx", T0, {"call_id": "c1", "outcome": "failed"})
    again = Event("calls/ended", "gx", T0 + dt.timedelta(seconds=3), {"call_id": "c1", "outcome": "answered"})
    assert event_id(one) == event_id(again)
    assert event_id(Event("calls/ended", "gx", T0, {"call_id": "c2"})) != event_id(one)
    assert event_id(Event("calls/ended", "hn", T0, {"call_id": "c1"})) != event_id(one)
    started = Event("calls/started", "gx", T0, {"call_id": "c1"})
    assert event_id(started) != event_id(started)  # every other event is new each time


# ------------------------------------------------------------------------------------------ following


class Rig:
    """A pipeline (real AMI client, never connected), a spool file and a CDR file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cdr = tmp / "Master.csv"
        self.spool = Spool(tmp / "spool.db")
        self.writer = BatchWriter(Store.connect(f"sqlite+aiosqlite:///{tmp / 'unused.db'}"), spool=self.spool)
        client = AmiClient(AmiSettings(host="127.0.0.1", username="u", secret="s"))
        self.pipeline = RecordPipeline(client, RecordBuilder("gx"), self.writer, checkpoint=self.spool)

    def follower(self) -> CdrFollower:
        return CdrFollower(self.cdr, self.pipeline, self.spool, settle=5.0)

    def append(self, text: str | bytes) -> None:
        with self.cdr.open("ab") as fh:
            fh.write(text.encode() if isinstance(text, str) else text)

    def recovered(self) -> list[str]:
        return [json.loads(body)["record"]["call_id"] for _, body in self.spool.head("recovered", 1000)]


async def test_follower_acts_on_settled_lines_once_across_restarts(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.append(caller_line("old.1", 1.0, 2.0))  # before the first run: not read
    CdrFollower.anchor(rig.cdr, rig.spool)
    follower = rig.follower()
    await follower.start()
    await follower.stop()  # polled by hand below
    start = epoch(T0)
    rig.append(caller_line("u.1", start, start + 30))
    rig.append(caller_line("u.2", start, start + 31)[:25])  # still being written
    follower.poll(now=100.0)
    assert rig.recovered() == []  # read, not settled: its AMI events may still be on their way
    follower.poll(now=104.9)
    assert rig.recovered() == []
    follower.poll(now=105.0)
    assert rig.recovered() == ["u.1"]
    rig.append(caller_line("u.2", start, start + 31)[25:])
    rig.append(caller_line("u.3", start, start + 32))
    follower.poll(now=106.0)
    again = rig.follower()  # a restart: the spool's mark says where the last one got to
    await again.start()
    await again.stop()
    again.poll(now=200.0)
    again.poll(now=205.0)
    assert rig.recovered() == ["u.1", "u.2", "u.3"]  # u.1 not twice
    assert again.counts["unknown"] == 2


async def test_follower_finishes_a_call_whose_hangup_was_lost_at_the_cdr_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    CdrFollower.anchor(rig.cdr, rig.spool)
    follower = rig.follower()
    await follower.start()
    await follower.stop()
    rig.pipeline.on_event(
        Message([("Event", "Newchannel"), ("Uniqueid", "o.1"), ("Linkedid", "o.1"), ("Timestamp", f"{epoch(T0):.6f}")])
    )
    rig.pipeline.on_event(
        Message([("Event", "Newchannel"), ("Uniqueid", "h.1"), ("Linkedid", "h.1"), ("Timestamp", f"{epoch(T0):.6f}")])
    )
    rig.pipeline.on_event(
        Message([("Event", "Hangup"), ("Uniqueid", "h.1"), ("Cause", "16"), ("Timestamp", f"{epoch(T0) + 5:.6f}")])
    )
    rig.append(caller_line("h.1", epoch(T0), epoch(T0) + 5))
    rig.append(caller_line("o.1", epoch(T0), epoch(T0) + 7))
    follower.poll(now=10.0)
    follower.poll(now=15.0)
    assert rig.recovered() == []
    assert (follower.counts["known"], follower.counts["open"]) == (1, 1)
    records = [json.loads(body) for _, body in rig.spool.head("calls", 100)]
    assert [(r["call_id"], r["ended"]) for r in records] == [
        ("h.1", (T0 + dt.timedelta(seconds=5)).isoformat()),
        ("o.1", (T0 + dt.timedelta(seconds=7)).isoformat()),
    ]
    assert rig.spool.load_open() == []  # out of the checkpoint with its record, in one transaction


async def test_follower_reads_a_rotated_file_from_its_start_and_skips_what_is_not_a_cdr(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path)
    CdrFollower.anchor(rig.cdr, rig.spool)  # no file yet: read from the start when it appears
    follower = rig.follower()
    await follower.start()
    await follower.stop()
    rig.append(caller_line("a.1", 1.0, 2.0) + "garbage,line\n" + caller_line("a.2", 1.0, 3.0))
    follower.poll(now=0.0)
    follower.poll(now=5.0)
    assert rig.recovered() == ["a.1", "a.2"] and follower.counts["malformed"] == 1
    os.rename(rig.cdr, tmp_path / "Master.csv.1")  # logrotate
    rig.append(caller_line("b.1", 1.0, 2.0))
    follower.poll(now=10.0)
    follower.poll(now=15.0)
    assert rig.recovered() == ["a.1", "a.2", "b.1"]
    os.unlink(rig.cdr)
    rig.cdr.mkdir()  # a directory where the file was: one error, not one a second
    with caplog.at_level(logging.ERROR):
        for t in range(20, 30):
            follower.poll(now=float(t))
    assert sum("not a regular file" in r.message for r in caplog.records) == 1
