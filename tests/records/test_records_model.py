"""The call record's JSON form: the key names and values are the public interface of call events and reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from hotline_cti.records.model import CallRecord, Outcome

T0 = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


def full_record() -> CallRecord:
    """A record with every field set to something other than its default."""
    values: dict[str, object] = {
        "call_id": "n1:1765072800.42",
        "region": "gx",
        "started": T0,
        "ended": T0 + dt.timedelta(seconds=95),
        "outcome": Outcome.TRANSFERRED,
        "transfers": ["110", "gx-l12315"],
        "rating": 2,
        "hangup_cause": 16,
        "wait": 3.25,
        "talk": 80.5,
        "fallback": True,
        "overflowed": True,
    }
    for f in dataclasses.fields(CallRecord):
        if f.name not in values:
            assert f.type == "str", f"full_record() sets no value for {f.name} ({f.type})"
            values[f.name] = f"{f.name}-value"
    return CallRecord(**values)  # type: ignore[arg-type]


def test_to_dict_has_every_field_in_order_with_times_and_outcome_as_text() -> None:
    record = full_record()
    data = record.to_dict()
    reference = dataclasses.asdict(record)
    reference.update(started=T0.isoformat(), ended=(T0 + dt.timedelta(seconds=95)).isoformat(), outcome="transferred")
    assert list(data) == [f.name for f in dataclasses.fields(CallRecord)]
    assert data == reference
    assert json.loads(json.dumps(data)) == data  # JSON-ready: nothing a JSON encoder refuses
    assert type(data["outcome"]) is str


def test_to_dict_of_a_record_without_end_and_its_round_trip() -> None:
    record = CallRecord("n1:1.1", "gx", T0)
    data = record.to_dict()
    assert data["ended"] is None and data["outcome"] == "active" and data["transfers"] == []
    assert CallRecord.from_dict(data) == record
    assert CallRecord.from_dict(full_record().to_dict()) == full_record()


def test_to_dict_copies_the_transfers_list() -> None:
    record = full_record()
    data = record.to_dict()
    data["transfers"].append("119")
    assert record.transfers == ["110", "gx-l12315"]
    record.transfers.append("120")
    assert data["transfers"] == ["110", "gx-l12315", "119"]
