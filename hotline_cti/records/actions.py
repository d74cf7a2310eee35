"""Audit rows of supervisor actions and MQTT commands: who did what, when, and what came of it.

Transfers have their own audit (:class:`hotline_cti.records.model.TransferRecord`); this row covers the
rest a person can do to the system: log in to the wallboard (and be locked out), acknowledge an alert,
change thresholds, log out, and send an MQTT command (refused, busy, replayed or run).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers

# Results: the action ran (ok), was not allowed (refused), hit an error (failed), has an unknown outcome
# (unknown: an MQTT transfer whose AMI answer never came), found the command
# queue full (busy) or repeated a command id already answered (replayed).
RESULTS = ("ok", "refused", "failed", "unknown", "busy", "replayed")


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One audited action."""

    at: dt.datetime  # UTC
    actor: str  # 'wallboard:<user>', 'mqtt:<client>'
    action: str  # 'login', 'logout', 'ack', 'thresholds', 'command:transfer', ...
    result: str  # one of RESULTS
    detail: str = ""  # what was asked (alert id, new thresholds, command id and target); numbers masked
    reason: str = ""  # why refused or failed
    action_id: str = field(default_factory=_new_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, caller-number-like digit runs masked (the detail may quote a channel)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["detail"], data["reason"] = mask_numbers(self.detail), mask_numbers(self.reason)
        return data

    def event(self, region: str) -> Event:
        """The ``actions`` event of this audit row."""
        return Event("actions", region, self.at, self.to_dict())


class ActionSink(Protocol):
    """Where audit rows go (``hotline_cti.storage.writer.BatchWriter``)."""

    def submit_action(self, action: ActionRecord) -> object: ...

    def submit_event(self, event: Event) -> object: ...


def audit(sink: ActionSink | None, region: str, record: ActionRecord) -> None:
    """Hand ``record`` and its event to ``sink`` (nothing when there is no sink)."""
    if sink is not None:
        sink.submit_action(record)
        sink.submit_event(record.event(region))
