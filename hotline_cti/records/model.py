"""The call record and the transfer audit row: plain data shared by the record builder, storage, KPIs and MQTT.

A record is what a 12345 centre reports on: which number the citizen dialled
(and so how many still dial retired lines), how the call was routed, how long
they waited, who answered, where it was transferred and how they rated it.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from hotline_cti.core.model import TransferMode
from hotline_cti.events import NODE_RE, Event
from hotline_cti.privacy import mask_numbers


class Outcome(StrEnum):
    """How a call ended, from the centre's point of view."""

    ANSWERED = "answered"  # an agent (12345, expert seat, department or sub-centre) took it
    ABANDONED = "abandoned"  # the caller hung up while waiting
    TRANSFERRED = "transferred"  # answered, then handed to 110/119/120/122/12122, a sub-centre or an expert seat
    RETIRED = "retired"  # a retired number after its transition window: prompt, then hang-up
    GUIDANCE = "guidance"  # a line outside the merger: told where to call
    OVERFLOWED = "overflowed"  # left its queue for the overflow queue and was not answered there either
    EMERGENCY = "emergency"  # put straight through to an emergency line's own seats
    FAILED = "failed"  # ended without reaching anyone for another reason (congestion, no members)
    ACTIVE = "active"  # not finished yet (only in live views, never stored as final)


@dataclass(slots=True)
class TransferRecord:
    """One transfer of a live call, audited whoever asked for it (agent key, CLI, MQTT command)."""

    call_id: str  # the caller leg's Asterisk Uniqueid (HOTLINE_CALL_ID)
    at: dt.datetime  # UTC
    channel: str  # the channel the transfer acted on
    target: str  # 110 / 119 / ... / a sub-centre or expert-seat id / a 12345 queue
    mode: TransferMode
    requested_by: str  # agent id, 'cli:<user>', 'mqtt:<client>' or 'ami' when seen on the wire
    result: str  # ok | refused | failed | unknown
    reason: str = ""  # why refused or failed
    transfer_id: str = ""  # unique id of this transfer (uuid4 hex)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["mode"] = str(self.mode)
        return data

    def event(self, region: str) -> Event:
        """The ``transfers`` event of this audit row, caller numbers in channel and reason masked."""
        data = self.to_dict()
        data["channel"], data["reason"] = mask_numbers(self.channel), mask_numbers(self.reason)
        return Event("transfers", region, self.at, data)


@dataclass(slots=True)
class CallRecord:
    """One call, from the moment Asterisk created the caller's channel to its hang-up.

    ``caller`` is stored masked or hashed (see :mod:`hotline_cti.privacy`) unless
    the deployment configures otherwise; the builder never keeps the raw number.
    Times are UTC. Durations are seconds; ``None`` when that stage never happened.
    """

    call_id: str  # Asterisk Uniqueid of the caller leg (= HOTLINE_CALL_ID)
    region: str  # merger config region id, e.g. 'gx'
    started: dt.datetime
    ended: dt.datetime | None = None
    caller: str = ""  # masked / hashed
    dialled: str = ""  # the digits dialled (EXTEN)
    form: str = ""  # local / national / international
    origin: str = ""  # the old line, e.g. '12315' ('' for 12345 itself)
    mode: str = ""  # merge / parallel / subcentre / transfer / linked / guidance / main / unknown
    phase: str = ""  # before / transition / after / none
    action: str = ""  # queue / department / subcentre / emergency / guidance / retired / fallback
    target: str = ""  # decided queue, department, sub-centre site or emergency number
    centre: str = ""  # the 12345 centre that served the call
    city: str = ""
    queue: str = ""  # the queue actually joined last ('' when none)
    expert: str = ""  # expert seat group id
    caller_tag: str = ""  # repeat / nuisance caller tag the agent saw ('重复', a rule's tag; docs/callers.md)
    fallback: bool = False  # the controller gave no decision; the dialplan queued it on its own
    overflowed: bool = False  # left its first queue for the overflow queue
    wait: float | None = None  # seconds from joining the queue to answer or abandon
    agent: str = ""  # member name / interface of the agent who answered
    talk: float | None = None  # seconds talking with the agent
    transfers: list[str] = field(default_factory=list)  # targets, in order
    rating: int | None = None  # 1 满意 / 2 基本满意 / 3 不满意
    outcome: Outcome = Outcome.ACTIVE
    hangup_cause: int | None = None
    recording_file: str = ""  # the recording's file name (<call id>-<epoch>.wav), '' when not recorded
    recording_path: str = ""  # its full path, as Asterisk wrote it (under the config's recording.dir)
    node: str = ""  # the Asterisk node that carried the call (serve --node); '' before nodes were named

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the key names are the public interface of call events and reports.

        Field by field rather than ``dataclasses.asdict``: a record becomes a dict at every step of a call
        (each ``calls/*`` event and each write), and ``asdict`` recurses and deep-copies every field (~10x
        the cost). Every field is a scalar except ``transfers``, copied below.
        """
        data = dict(zip(_CALL_FIELDS, _call_values(self), strict=True))
        data["started"] = self.started.isoformat()
        data["ended"] = self.ended.isoformat() if self.ended else None
        data["outcome"] = str(self.outcome)
        data["transfers"] = list(self.transfers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallRecord:
        """The record :meth:`to_dict` made (unknown keys ignored)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["started"] = dt.datetime.fromisoformat(data["started"])
        values["ended"] = dt.datetime.fromisoformat(data["ended"]) if data.get("ended") else None
        values["outcome"] = Outcome(data["outcome"])
        values["transfers"] = list(data.get("transfers") or [])
        return cls(**values)


_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))
_call_values = operator.attrgetter(*_CALL_FIELDS)

RATING_LABELS = {1: "满意", 2: "基本满意", 3: "不满意"}


def call_key(node: str, uniqueid: str) -> str:
    """The call id of Asterisk's ``uniqueid`` on ``node`` everywhere outside Asterisk: ``<node>:<uniqueid>``.

    Two nodes can both produce ``1700000000.1``; the node makes the key unique across a province. Without a
    node (one Asterisk, tests) the key is the bare uniqueid, as before nodes were named. An id already keyed
    for this node is returned as it is.
    """
    if not node or uniqueid.startswith(f"{node}:"):
        return uniqueid
    return f"{node}:{uniqueid}"


def split_key(call_id: str) -> tuple[str, str]:
    """``nn-1:1700000000.1`` -> ``("nn-1", "1700000000.1")``; a bare uniqueid -> ``("", uniqueid)``."""
    node, sep, uniqueid = call_id.partition(":")
    return (node, uniqueid) if sep and NODE_RE.match(node) else ("", call_id)


def check_node(name: str, where: str) -> str:
    """``name`` when it can be a node name, else ValueError naming ``where`` (the flag or variable)."""
    if not NODE_RE.match(name):
        raise ValueError(
            f"{where}: {name!r} is not a node name (1-32 of A-Z a-z 0-9 _ . -, starting with a letter or digit)"
        )
    return name
