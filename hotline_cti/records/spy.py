"""The audit row of a supervisor's listen, whisper or barge (监听 / 耳语 / 强插): plain data for storage and MQTT."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers


class SpyMode(StrEnum):
    """What the supervisor does on the agent's call (Asterisk ChanSpy options)."""

    LISTEN = "listen"  # hears agent and caller; nobody hears the supervisor
    WHISPER = "whisper"  # ChanSpy w: the agent hears the supervisor, the caller does not
    BARGE = "barge"  # ChanSpy B: agent and caller both hear the supervisor


@dataclass(frozen=True, slots=True)
class SpyRequest:
    """Listen to ``target`` (an agent's channel, or a call id) from ``phone``, asked by ``requested_by``."""

    target: str
    mode: SpyMode
    phone: str
    requested_by: str


@dataclass(slots=True)
class SpyRecord:
    """One request to listen in, and what became of the supervisor's spy leg (its start and end from Asterisk)."""

    call_id: str  # HOTLINE_CALL_ID of the call listened to ('' when refused before a call was found)
    at: dt.datetime  # UTC, when asked
    requested_by: str  # 'cli:<user>', 'wallboard:<user>'
    mode: SpyMode
    channel: str  # the agent's leg spied on (or what was asked for, when refused)
    supervisor_phone: str  # the endpoint called for the supervisor, e.g. PJSIP/sup1
    result: str  # ok | refused | failed | unknown
    reason: str = ""
    started: dt.datetime | None = None  # ChanSpyStart of the spy leg
    ended: dt.datetime | None = None  # ChanSpyStop or the spy leg's hang-up
    spy_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def seconds(self) -> float | None:
        """How long the supervisor was on the call."""
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("at", "started", "ended"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        data["mode"] = str(self.mode)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpyRecord:
        values = dict(data)
        for key in ("at", "started", "ended"):
            values[key] = dt.datetime.fromisoformat(values[key]) if values.get(key) else None
        values["mode"] = SpyMode(values["mode"])
        return cls(**values)

    def event(self, region: str) -> Event:
        """The ``spies`` event of this row (channel and reason with caller numbers masked)."""
        data = self.to_dict()
        data["channel"], data["reason"] = mask_numbers(self.channel), mask_numbers(self.reason)
        data["seconds"] = self.seconds
        return Event("spies", region, self.at, data)
