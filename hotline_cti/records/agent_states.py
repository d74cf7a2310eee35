"""Agent state log rows (issue 18): every log-in, log-out, pause and end of pause of an agent in a queue.

Written by the events service from what Asterisk reports on AMI (QueueMemberAdded, QueueMemberRemoved,
QueueMemberPause), whoever caused it: the agent's feature code, the CLI, an MQTT command, the wallboard,
or app_queue itself; and from the QueueStatus read after every (re)connection, for changes made while
the service was away (``source`` ``resync``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class AgentState(StrEnum):
    """What changed."""

    LOGIN = "login"  # joined the queue
    LOGOUT = "logout"  # left it
    PAUSE = "pause"  # paused (示忙), with a reason
    READY = "ready"  # the pause ended (示闲)


SOURCES = ("ami", "resync", "autopause")
COMMANDS = ("login", "logout", "pause", "unpause")  # what the CLI, MQTT and the wallboard may ask


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AgentStateChange:
    """One change of one agent in one queue."""

    at: dt.datetime  # UTC, Asterisk's event time when it sent one
    agent: str  # member name (the YAML's agent id)
    queue: str  # Asterisk queue name
    state: AgentState
    reason: str = ""  # pause reason id (lunch, training, autopause ...)
    penalty: int | None = None  # on log-in
    source: str = "ami"  # one of SOURCES
    change_id: str = field(default_factory=_new_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["state"] = str(self.state)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentStateChange:
        values = dict(data)
        values["at"] = dt.datetime.fromisoformat(values["at"])
        values["state"] = AgentState(values["state"])
        return cls(**values)
