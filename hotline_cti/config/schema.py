"""The merger list as telecom engineers write it (YAML), validated with pydantic v2.

Every model forbids unknown keys so a typo never passes silently. Cross
references (queues, expert groups, sub-centres, prompts) are checked in
:mod:`hotline_cti.config.checks`, which reports every problem with its place.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from hotline_cti.core.diversion import NEEDS_OVER, DivertTo, DivertWhen
from hotline_cti.core.hours import parse_hours
from hotline_cti.core.model import Mode

_DIGITS = re.compile(r"^[0-9]+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _digits(value: str) -> str:
    if not _DIGITS.match(value):
        raise ValueError(f"{value!r} is not a number: use digits only, e.g. 12345 or 2666110")
    return value


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(f"{value!r} is not a valid id: use lower-case letters, digits, '-' and '_'")
    return value


def _area_code(value: str) -> str:
    if not re.match(r"^0[1-9][0-9]{1,2}$", value):
        raise ValueError(f"{value!r} is not an area code: write it with its leading 0, e.g. 0771")
    return value


def _hours(value: str) -> str:
    parse_hours(value)  # raises ValueError with the bad part named
    return value


LINE_MODES = ", ".join(m.value for m in Mode if m not in (Mode.MAIN, Mode.UNKNOWN))


def _line_mode(value: object) -> object:
    # Checked before the enum so the message lists only the modes a line may have.
    if not isinstance(value, str) or value not in {m.value for m in Mode} - {"main", "unknown"}:
        raise ValueError(f"{value!r} is not a line mode: use one of {LINE_MODES}")
    return value


Digits = Annotated[str, AfterValidator(_digits)]
Hours = Annotated[str, AfterValidator(_hours)]
Slug = Annotated[str, AfterValidator(_slug)]
AreaCode = Annotated[str, AfterValidator(_area_code)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(StrEnum):
    PROVINCE = "province"
    CITY = "city"


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
    """One-key transfer styles for agents (一键转接)."""

    BLIND = "blind"
    ATTENDED = "attended"
    THREEWAY = "threeway"


class Region(Strict):
    id: Slug
    name: str
    level: Level
    timezone: str = "Asia/Shanghai"
    trunk: str = Field(default="pstn", description="Asterisk endpoint used to reach outside numbers")


class City(Strict):
    id: Slug
    name: str
    area_code: AreaCode


class Diversion(Strict):
    """A diversion rule of a queue (分流): when the queue's live state says so, the caller goes elsewhere.

    ``target`` is a queue id for ``overflow`` (default: the queue's overflow) and a sub-centre id for
    ``subcentre``; ``prompt`` is played first (for ``release`` it is what the caller hears).
    """

    when: DivertWhen
    over: int | None = Field(default=None, ge=0, le=3600)
    to: DivertTo
    target: Slug | None = None
    prompt: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Diversion:
        if self.when in NEEDS_OVER and self.over is None:
            raise ValueError(f"'{self.when.value}' needs 'over' (seconds or callers per agent)")
        if self.when not in NEEDS_OVER and self.over is not None:
            raise ValueError(f"'{self.when.value}' takes no 'over'")
        if self.to is DivertTo.SUBCENTRE and self.target is None:
            raise ValueError("'subcentre' needs 'target': the sub-centre's id")
        if self.to is DivertTo.RELEASE and self.target is not None:
            raise ValueError("'release' takes no 'target'; give the 'prompt' the caller hears")
        if self.to is DivertTo.RELEASE and self.prompt is None:
            raise ValueError("'release' needs 'prompt': the caller is told why before the call ends")
        return self


def _round_seconds(value: int) -> int:
    if value not in (0, 5, 10, 15, 20, 30):  # what app_queue accepts for announce-round-seconds
        raise ValueError(f"{value} is not one of 0, 5, 10, 15, 20, 30")
    return value


class Announcements(Strict):
    """排队播报: app_queue's position and expected-wait announcements, in Mandarin (docs/queues.md).

    The expected wait is app_queue's holdtime (the average wait of the queue's recent answers) less
    the time this caller has waited, in minutes (and seconds when ``round_seconds`` is set).
    """

    position: bool = True  # announce-position: "您现在排在第 N 位" / "您是下一位"
    holdtime: Literal["always", "once", "never"] = "once"  # announce-holdtime
    frequency: int = Field(default=60, ge=0, le=3600)  # announce-frequency: seconds between them (0: off)
    min_frequency: int = Field(default=15, ge=0, le=3600)  # min-announce-frequency
    only_up: bool = True  # announce-position-only-up: again only when the position improved
    periodic: int = Field(default=45, ge=0, le=3600)  # periodic-announce-frequency of queue-wait (0: off)
    round_seconds: Annotated[int, AfterValidator(_round_seconds)] = 0  # announce-round-seconds (0: whole minutes)


class Queue(Strict):
    """A 12345 queue; every centre runs each one as '<centre>-<id>'."""

    id: Slug
    name: str
    strategy: Literal[
        "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered"
    ] = "leastrecent"
    ring_timeout: int = Field(default=15, ge=1, le=600)
    wrapup: int = Field(default=5, ge=0, le=600)
    max_wait: int | None = Field(default=None, ge=1, le=3600)
    overflow: Slug | None = None
    announce: str | None = None
    maxlen: int | None = Field(default=None, ge=1, le=1000, description="callers waiting at most (app_queue maxlen)")
    announcements: Announcements | None = None  # default: the file's top-level 'announcements'
    diversion: list[Diversion] = Field(default_factory=list)


class Centre(Strict):
    """A 12345 centre. ``city`` null means the region-level centre (自治区/省级12345)."""

    id: Slug
    name: str
    city: Slug | None = None


class ExpertGroup(Strict):
    """Expert seats (专家座席) for professional questions of one or more lines."""

    id: Slug
    name: str
    strategy: Literal["ringall", "leastrecent", "fewestcalls", "rrmemory", "linear"] = "ringall"


class SubcentreSite(Strict):
    city: Slug
    dial: str


class Subcentre(Strict):
    """A department that keeps number and seats as a sub-centre (设分中心)."""

    id: Slug
    name: str
    scope: Scope
    dial: str | None = None
    sites: list[SubcentreSite] = Field(default_factory=list)


class Department(Strict):
    """Department seats for lines that keep them, and the old destination before cut-over."""

    id: Slug
    name: str
    dial: str
    service_hours: Hours = "7x24"


class Overflow(Strict):
    max_wait: int = Field(default=120, ge=1, le=3600)
    target: Slug = "general"


class Defaults(Strict):
    transition_months: int = Field(default=6, ge=0, le=60)
    after_transition: AfterTransition = AfterTransition.HANGUP
    transition_prompt: str = "transition-{number}"
    retired_prompt: str = "retired-{number}"
    guidance_prompt: str = "guidance-{number}"
    welcome_prompt: str = "welcome"


class Window(Strict):
    """A transition window: explicit dates, or a length in months from the cut-over."""

    start: dt.date | None = None
    end: dt.date | None = None
    months: int | None = Field(default=None, ge=0, le=60)


class LinePrompts(Strict):
    transition: str | None = None
    retired: str | None = None
    guidance: str | None = None
    before: str | None = None


class Hotline(Strict):
    """One line of the merger list."""

    number: Digits
    name: str
    unit: str = Field(description="responsible unit (责任单位)")
    mode: Annotated[Mode, BeforeValidator(_line_mode)]
    seats: Seats | None = None
    department: Slug | None = None
    queue: Slug | None = None
    expert: Slug | None = None
    subcentre: Slug | None = None
    cutover: dt.date | None = None
    transition: Window | None = None
    after_transition: AfterTransition | None = None
    prompts: LinePrompts = Field(default_factory=LinePrompts)
    aliases: list[Digits] = Field(default_factory=list)
    city: Slug | None = None
    priority: int = Field(default=0, ge=0, le=10)
    channel: str | None = Field(default=None, description="where a guidance line sends the caller")
    transfer_modes: list[TransferMode] = Field(default_factory=list)
    handover_to_12345: bool = False
    dial: str | None = None
    notes: str | None = None


class AbandonedCallers(StrEnum):
    """What happens to a caller who hung up after waiting over ``abandoned_over`` seconds."""

    LIST = "list"  # listed for callback (the wallboard shows them); an agent decides
    CALL = "call"  # called back like an accepted request, from the head of their queue


class Callback(Strict):
    """Callback instead of holding (回呼): the caller keeps their place and is called when it comes.

    ``dial`` is the dial string with ``{number}`` for the caller's number; default the region's trunk.
    """

    key: Annotated[str, AfterValidator(_digits)] = Field(default="9", min_length=1, max_length=1)
    queues: list[Slug] | None = None  # the queues whose waiting callers are offered it; default every queue
    dial: str | None = None
    ring: int = Field(default=30, ge=5, le=120)  # seconds the caller's phone rings per attempt
    retries: int = Field(default=2, ge=0, le=10)  # attempts after the first
    retry_after: int = Field(default=120, ge=10, le=3600)
    give_up_after: int = Field(default=7200, ge=60, le=86400)  # seconds after the request
    abandoned_over: int | None = Field(default=None, ge=1, le=3600)
    abandoned: AbandonedCallers = AbandonedCallers.LIST
    counts_as_answered: bool = False  # a reached callback counts its original call as answered in the KPIs


class MergerConfig(Strict):
    """A whole merger file after ``extends`` has been applied."""

    version: Literal[1, "1"] = 1  # digits stay strings in our YAML reader
    extends: str | None = None
    region: Region
    cities: list[City] = Field(default_factory=list)
    centres: list[Centre]
    queues: list[Queue]
    expert_groups: list[ExpertGroup] = Field(default_factory=list)
    subcentres: list[Subcentre] = Field(default_factory=list)
    departments: list[Department] = Field(default_factory=list)
    emergency_numbers: list[Digits] = Field(default_factory=lambda: ["110", "119", "120", "122", "12122"])
    service_hours: Hours = "7x24"
    overflow: Overflow = Field(default_factory=Overflow)
    defaults: Defaults = Field(default_factory=Defaults)
    prompts: dict[str, str] = Field(default_factory=dict, description="region-specific prompt texts")
    hotlines: list[Hotline]
    callback: Callback | None = None
    announcements: Announcements | None = None  # every queue's, unless the queue has its own
