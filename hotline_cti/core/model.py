"""Call facts in, routing decision out: the plain data the routing core speaks."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

Instant = dt.datetime | float
"""When a call is decided: an aware datetime, or POSIX seconds (the call path's clock: no datetime made)."""


def epoch_seconds(now: Instant) -> float:
    """``now`` as POSIX seconds; a datetime must be timezone-aware."""
    if type(now) is float:
        return now
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError(f"a routing time must be timezone-aware: {now.isoformat()}")
        return now.timestamp()
    return float(now)  # an int: whole seconds


class Mode(StrEnum):
    """How a line is folded into 12345 (归并方式)."""

    MERGE = "merge"  # 整体并入 / 直接合并
    PARALLEL = "parallel"  # 双号并行 / 设置远端座席
    SUBCENTRE = "subcentre"  # 设分中心
    TRANSFER = "transfer"  # 话务转接 (emergency lines)
    LINKED = "linked"  # 对接联通 (utilities)
    GUIDANCE = "guidance"  # 话务引导 (outside the merger)
    MAIN = "main"  # 12345 itself
    UNKNOWN = "unknown"  # a number the config does not know


class Phase(StrEnum):
    """Where the call falls against the line's cut-over date and window."""

    BEFORE = "before"
    TRANSITION = "transition"
    AFTER = "after"
    NONE = "none"  # the line has no cut-over date (12345, guidance, emergency)


class Action(StrEnum):
    """What Asterisk does with the call."""

    QUEUE = "queue"
    DEPARTMENT = "department"
    SUBCENTRE = "subcentre"
    EMERGENCY = "emergency"
    GUIDANCE = "guidance"
    RETIRED = "retired"
    RELEASE = "release"  # diverted before the wait: a prompt, then released (see core/diversion.py)


class Scope(StrEnum):
    """Where a sub-centre serves: the whole region (全区集中) or one city each (各市设置)."""

    PROVINCE = "province"
    CITY = "city"


class Seats(StrEnum):
    """Who answers a line's calls."""

    MERGED = "merged"  # seats folded into 12345
    DEPARTMENT = "department"  # 各自接听: the department keeps its own seats


class AfterTransition(StrEnum):
    """What a retired number does once its transition window is over."""

    HANGUP = "hangup"
    QUEUE = "queue"  # still put through to 12345


class TransferMode(StrEnum):
    """One-key transfer modes (话务转接)."""

    BLIND = "blind"
    ATTENDED = "attended"
    THREEWAY = "threeway"
    HANDOVER = "handover"  # 110 hands a non-police call into 12345


@dataclass(frozen=True, slots=True)
class Call:
    """The facts a routing decision depends on.

    ``city`` is a city id known from the inbound trunk; when absent the core
    derives it from the dialled area code or the caller's landline area code.
    ``ivr_choice`` is the digit pressed in the 12345 menu, ``topic`` the line
    number the caller chose for an expert seat.
    """

    dialled: str
    caller: str | None = None
    city: str | None = None
    ivr_choice: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a call goes and why. Every field is what the dialplan needs to finish the call."""

    number: str  # the configured line (or the dialled digits if unknown)
    form: str  # local / national / international
    mode: Mode
    phase: Phase
    action: Action
    target: str | None  # queue name, department id, sub-centre site id, emergency number
    dial: str | None  # Asterisk dial string for non-queue targets
    centre: str | None  # the 12345 centre serving the call
    city: str | None
    prompts: tuple[str, ...]
    origin: str | None  # the old line the agent sees (skill tag)
    expert: str | None  # expert seat group id
    expert_queue: str | None
    escalation: str | None  # dial string for professional questions (remote seat, sub-centre)
    priority: int
    overflow: str | None  # queue name taken when the target is full, closed or slow
    overflow_after: int  # seconds of waiting before the overflow is taken
    menu: bool  # play the 12345 main menu before queueing
    hangup: bool  # hang up after the prompts (guidance, retired)
    reason: str
    warnings: tuple[str, ...] = field(default=())
    diverted: str | None = None  # the queue condition that diverted the call (core/diversion.py), else None
    offer_callback: bool = False  # offer a callback before the caller joins the queue (a diversion's action)

    @property
    def skills(self) -> tuple[str, ...]:
        """Skill tags shown to the agent: origin line and expert group."""
        tags: list[str] = []
        if self.origin:
            tags.append(f"line:{self.origin}")
        if self.expert:
            tags.append(f"expert:{self.expert}")
        return tuple(tags)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the key names are a public interface for scripts."""
        data = asdict(self)
        data["prompts"] = list(self.prompts)
        data["warnings"] = list(self.warnings)
        data["skills"] = list(self.skills)
        for key in ("mode", "phase", "action"):
            data[key] = str(data[key])
        if self.diverted is None:  # only a diverted decision (live queue state, docs/queues.md) carries these
            del data["diverted"], data["offer_callback"]
        return data
