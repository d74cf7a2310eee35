"""How each kind of row is written into the spool (JSON text) and read back, unchanged.

Each row gets its database key when it is spooled, not when it is written, so a replay
of the spool after a crash writes the same key again and the write stays idempotent:
a transfer without a ``transfer_id`` gets one here, and every outbox event gets an
``event_id`` (the outbox inserts it once, ``storage/store.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

from hotline_cti.core.model import TransferMode
from hotline_cti.events import Event
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.agent_states import AgentStateChange
from hotline_cti.records.model import CallRecord, TransferRecord
from hotline_cti.records.spy import SpyRecord

__all__ = [
    "OutboxRow",
    "Rating",
    "Recovered",
    "decode_call",
    "decode_event",
    "decode_rating",
    "decode_recovered",
    "decode_spy",
    "decode_transfer",
    "encode_call",
    "encode_event",
    "encode_rating",
    "encode_recovered",
    "encode_spy",
    "encode_transfer",
    "event_id",
]

Rating = tuple[str, int, dt.datetime]
OutboxRow = tuple[str, str, str]  # (event_id, topic, payload)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_call(record: CallRecord) -> str:
    return _dumps(record.to_dict())


def decode_call(body: str) -> CallRecord:
    return CallRecord.from_dict(json.loads(body))


def encode_rating(rating: Rating) -> str:
    call_id, value, at = rating
    # The value is kept as given (even a wrong type): the database refuses it and the writer drops that row alone.
    return _dumps([call_id, value, at.isoformat()])


def decode_rating(body: str) -> Rating:
    call_id, value, at = json.loads(body)
    return (call_id, value, dt.datetime.fromisoformat(at))


def encode_transfer(transfer: TransferRecord) -> str:
    data = transfer.to_dict()
    data["transfer_id"] = transfer.transfer_id or uuid.uuid4().hex
    return _dumps(data)


def decode_transfer(body: str) -> TransferRecord:
    data: dict[str, Any] = json.loads(body)
    data["at"] = dt.datetime.fromisoformat(data["at"])
    data["mode"] = TransferMode(data["mode"])
    return TransferRecord(**data)


def encode_spy(spy: SpyRecord) -> str:
    return _dumps(spy.to_dict())


def decode_spy(body: str) -> SpyRecord:
    return SpyRecord.from_dict(json.loads(body))


def encode_action(action: ActionRecord) -> str:
    data = dataclasses.asdict(action)
    data["at"] = action.at.isoformat()
    return _dumps(data)


def decode_action(body: str) -> ActionRecord:
    data: dict[str, Any] = json.loads(body)
    data["at"] = dt.datetime.fromisoformat(data["at"])
    return ActionRecord(**data)


_ENDED = uuid.UUID("6f1c0a52-0d8e-4c4b-9a51-3c2b1e0f7a10")  # namespace of calls/ended event ids


def event_id(event: Event) -> str:
    """A new id, except for ``calls/ended``: one per call, derived from region and call id, so however many
    sources finish a call (its Hangup on AMI, a restarted service's resync, Asterisk's CDR read after an
    outage) the outbox holds its end once."""
    call_id = event.data.get("call_id") if event.type == "calls/ended" else None
    if isinstance(call_id, str) and call_id:
        return uuid.uuid5(_ENDED, f"{event.region}/{call_id}").hex
    return uuid.uuid4().hex


def encode_event(event: Event) -> str:
    return _dumps([event_id(event), event.topic, event.to_json()])


def decode_event(body: str) -> OutboxRow:
    event_id, topic, payload = json.loads(body)
    return (str(event_id), str(topic), str(payload))


def encode_agent_state(change: AgentStateChange) -> str:
    return _dumps(change.to_dict())


def decode_agent_state(body: str) -> AgentStateChange:
    return AgentStateChange.from_dict(json.loads(body))


Recovered = tuple[CallRecord, OutboxRow]  # a call known only from Asterisk's CDR, and its calls/ended event


def encode_recovered(item: tuple[CallRecord, Event]) -> str:
    record, event = item
    return _dumps({"record": record.to_dict(), "event": [event_id(event), event.topic, event.to_json()]})


def decode_recovered(body: str) -> Recovered:
    data = json.loads(body)
    event_id_, topic, payload = data["event"]
    return CallRecord.from_dict(data["record"]), (str(event_id_), str(topic), str(payload))
