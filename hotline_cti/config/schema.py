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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from hotline_cti.core.hours import parse_hours
from hotline_cti.core.model import AfterTransition, Mode, Scope, Seats

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


def _tag(value: str) -> str:
    # It lands in CALLERID(name) through the dialplan: nothing Asterisk would parse or a phone cut oddly.
    if not re.match(r"^[^\s\[\](){}$,|\"\\;&<>]+$", value):
        raise ValueError(f"{value!r} is not a tag: letters, digits or Chinese, no spaces, brackets or punctuation")
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
Tag = Annotated[str, AfterValidator(_tag)]
AreaCode = Annotated[str, AfterValidator(_area_code)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(StrEnum):
    PROVINCE = "province"
    CITY = "city"


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
    wrapup: int = Field(default=5, ge=0, le=600, description="seconds after a call before the next one (话后处理)")


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
    public_holidays: bool = Field(
        default=True, description="the region's holidays and make-up working days apply (weekly hours only)"
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Holiday(Strict):
    """An exception date or run of dates (节假日 / 调休): closed, or a make-up working day (调休上班).

    Without ``departments`` it is the region's calendar (法定节假日): it closes every department with
    weekly service hours that keeps ``public_holidays``. With ``departments`` it is theirs alone and
    wins over the region's calendar on its days (a department's own closure, or its own open day).
    """

    date: dt.date
    until: dt.date | None = Field(default=None, description="last day, inclusive; default: date")
    name: str
    workday: bool = False
    hours_of: Weekday | None = None
    departments: list[Slug] = Field(default_factory=list)
    prompt: str | None = Field(default=None, description="played instead of 'closed' by a department it closes")
    message: str | None = Field(default=None, description="played on 12345 before the welcome (region-wide only)")


class CallerAction(Strict):
    """What a caller rule does to a call bound for a 12345 queue (emergency lines are never touched)."""

    prompt: str | None = Field(default=None, description="prompt id played before the rest")
    priority: int | None = Field(default=None, ge=-10, le=10, description="QUEUE_PRIO instead of the line's")
    queue: Slug | None = Field(default=None, description="12345 queue id the call goes to instead")
    tag: Tag | None = Field(default=None, max_length=8, description="shown to the agent in the caller-id name")


class CallerRule(Strict):
    """A repeat or nuisance caller rule (第二十九条: 无正当理由反复拨打、长时间占用热线资源)."""

    id: Slug
    more_than: int | None = Field(default=None, ge=1, le=1000, description="calls from one number ...")
    within_minutes: int | None = Field(default=None, ge=1, le=10080, description="... in this many minutes")
    list: Slug | None = Field(default=None, description="or: the number is on this managed list")
    action: CallerAction


class RepeatTag(Strict):
    """A caller who called the same line within the period is tagged for the agent (重复来电)."""

    within_hours: int = Field(default=24, ge=1, le=720)
    tag: Tag = Field(default="重复", min_length=1, max_length=8)


class Callers(Strict):
    """Repeat and nuisance callers: rules, the repeat tag, and the memory the counting may use."""

    rules: list[CallerRule] = Field(default_factory=list)
    repeat: RepeatTag | None = None
    max_numbers: int = Field(default=100_000, ge=100, le=10_000_000, description="numbers the window keeps")


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


_AGENT_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")


def is_agent_id(value: object) -> bool:
    """True for an agent id: letters and digits (the dialplan's agent pattern ``_[0-9A-Za-z]!`` and the PJSIP
    endpoint name), at most 40. Checked wherever one comes in (YAML, CLI, MQTT, wallboard) before it reaches AMI."""
    return isinstance(value, str) and _AGENT_ID.match(value) is not None


def _agent_id(value: str) -> str:
    if not is_agent_id(value):
        raise ValueError(f"{value!r} is not an agent id: use letters and digits only, e.g. agent1001 or 1001")
    return value


AgentId = Annotated[str, AfterValidator(_agent_id)]
SKILL_LEVELS = 10  # levels 0 (first choice) .. 9; widened general agents ring at 10 + their general level


class Skill(Strict):
    """One skill of an agent: exactly one of ``queue``, ``line``, ``expert`` or ``city``, at a level (0 rings first).

    ``queue``: a 12345 queue at the agent's centre; ``line``: the queue of that merged line (技能组);
    ``expert``: an expert-seat group (专家座席); ``city``: the general queue of that city's centre.
    """

    queue: Slug | None = None
    line: Digits | None = None
    expert: Slug | None = None
    city: Slug | None = None
    level: int = Field(default=0, ge=0, le=SKILL_LEVELS - 1)


class Agent(Strict):
    """An agent (座席) who logs in to the queues of their skills, with a penalty per level."""

    id: AgentId
    name: str
    centre: Slug | None = Field(default=None, description="home centre; default: the region-level centre")
    skills: list[Skill] = Field(min_length=1)


class PauseReason(Strict):
    """A reason an agent gives for a pause (示忙原因): dialled as its digit after the pause code."""

    code: Annotated[str, Field(pattern=r"^[0-9]$")]
    id: Slug
    name: str


class Widen(Strict):
    """A line or expert queue that also rings the centre's general agents once a caller waited ``after`` s."""

    queue: Slug | None = None
    expert: Slug | None = None
    after: int = Field(ge=1, le=3600)


def _default_reasons() -> list[PauseReason]:
    return [
        PauseReason(code="1", id="lunch", name="用餐"),
        PauseReason(code="2", id="training", name="培训"),
        PauseReason(code="3", id="acw", name="话后处理"),
    ]


class AgentSettings(Strict):
    """Agent state rules: pause reasons, automatic pause, queues that widen to general agents."""

    pause_reasons: list[PauseReason] = Field(default_factory=_default_reasons)
    autopause_after: int = Field(default=3, ge=0, le=20, description="unanswered rings in a row; 0: never")
    widen: list[Widen] = Field(default_factory=list)


_RECORDING_DIR = re.compile(r"^[A-Za-z0-9._/-]+$")


def _recording_dir(value: str) -> str:
    # The path goes into the dialplan (MONITOR_FILENAME) and is served by the wallboard: no dialplan syntax
    # (',', '$', '(', ';'), no spaces and no '..'.
    if not _RECORDING_DIR.match(value) or ".." in value.split("/") or value.strip("/") == "":
        raise ValueError(
            f"{value!r} is not a recordings directory: a path of letters, digits, '.', '_', '-' and '/',"
            " e.g. hotline (under Asterisk's monitor dir) or /srv/recordings"
        )
    return value.rstrip("/")


def _absolute_dir(value: str) -> str:
    value = _recording_dir(value)
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path, e.g. /var/spool/asterisk/monitor")
    return value


class Recording(Strict):
    """Call recording (通话录音): MixMonitor on the caller's channel from the moment an agent answers.

    ``enabled`` is the default of every 12345 queue and expert-seat queue; ``queues`` and
    ``expert_groups`` turn single queues on or off by id. Files are ``<dir>/<YYYYMMDD>/<call id>-<epoch>.<format>``
    (no caller number in any name) and are deleted after ``retention_days`` by ``hotline-cti recordings cleanup``.
    A relative ``dir`` is under Asterisk's monitor directory (``astspooldir``/monitor), which ``monitor_dir``
    names for the programs that read the files (cleanup, the wallboard).
    """

    enabled: bool = True
    format: Literal["wav", "gsm", "wav49"] = "wav"
    dir: Annotated[str, AfterValidator(_recording_dir)] = "hotline"
    monitor_dir: Annotated[str, AfterValidator(_absolute_dir)] = "/var/spool/asterisk/monitor"
    retention_days: int = Field(default=180, ge=1, le=3650)
    queues: dict[Slug, bool] = Field(default_factory=dict)
    expert_groups: dict[Slug, bool] = Field(default_factory=dict)


_PHONE = re.compile(r"^(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@+-]{1,80}$")
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _phones(value: dict[str, str]) -> dict[str, str]:
    for user, phone in value.items():
        if not _LOGIN.match(user):
            raise ValueError(f"{user!r} is not a wallboard user name")
        if not _PHONE.match(phone):
            raise ValueError(f"{phone!r} (for {user}) is not a phone to call: e.g. PJSIP/sup1")
    return value


class Supervision(Strict):
    """Listening in (监听/耳语/强插) from the wallboard: the phone Asterisk calls for each supervisor login.

    A supervisor with no phone here cannot listen in from the wallboard (the CLI names its ``--phone``).
    """

    phones: Annotated[dict[str, str], AfterValidator(_phones)] = Field(default_factory=dict)


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
    holidays: list[Holiday] = Field(default_factory=list, description="exception dates: holidays, 调休, closures")
    callers: Callers = Field(default_factory=Callers)
    hotlines: list[Hotline]
    agents: list[Agent] = Field(default_factory=list)
    agent_settings: AgentSettings = Field(default_factory=AgentSettings)
    recording: Recording = Field(default_factory=Recording)
    supervision: Supervision = Field(default_factory=Supervision)
