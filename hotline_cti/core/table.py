"""The plain lookup tables the routing core reads: a merger config, compiled.

Compiling (:func:`hotline_cti.config.compile.compile_config`) happens once per config load, outside
the core, and keeps :func:`hotline_cti.core.routing.decide` to a few dictionary look-ups per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hotline_cti.core.calendar import DayCalendar
from hotline_cti.core.callers import CallerPolicy
from hotline_cti.core.hours import ALWAYS, ServiceHours
from hotline_cti.core.model import AfterTransition, Mode, Scope, Seats
from hotline_cti.core.numbers import DialledNumber

MAIN_NUMBER = "12345"
MOBILE_PREFIX_DIGITS = 7  # 号段 + HLR code: the part of a mobile number that names its city


@dataclass(frozen=True, slots=True)
class Target:
    """Somewhere outside 12345's queues that Asterisk dials."""

    id: str
    name: str
    dial: str
    hours: ServiceHours = ALWAYS
    calendar: DayCalendar | None = None  # holidays, make-up working days, closures (core/calendar.py)


@dataclass(frozen=True, slots=True)
class QueuePlan:
    id: str
    overflow: str | None  # queue id
    max_wait: int


@dataclass(slots=True)
class LinePlan:
    """One configured line, with its dates as epoch seconds for quick phase checks."""

    number: str
    name: str
    unit: str
    mode: Mode
    seats: Seats
    queue: str
    expert: str | None
    department: Target | None
    subcentre_scope: Scope | None
    subcentre_id: str | None
    subcentre_all: Target | None  # region-wide sub-centre
    subcentre_sites: dict[str, Target]  # city id -> site, per-city sub-centres
    emergency: Target | None
    cutover: float | None
    window_start: float | None
    window_end: float | None
    after_transition: AfterTransition
    prompts: dict[str, str]
    priority: int
    landline_area: str | None  # area code of a landline number, None for short codes


@dataclass(slots=True)
class RoutingTable:
    """Everything :func:`decide` needs, built by :func:`hotline_cti.config.compile.compile_config`."""

    region: str
    timezone: ZoneInfo
    region_hours: ServiceHours
    default_centre: str
    centre_by_city: dict[str, str]
    city_names: dict[str, str]
    city_by_area: dict[str, str]  # only area codes that name exactly one city
    shared_areas: dict[str, tuple[str, ...]]  # area codes several cities share
    queues: dict[str, QueuePlan]
    overflow_target: str
    overflow_wait: int
    welcome_prompt: str
    short: dict[str, LinePlan]  # short codes and their aliases
    landline: dict[tuple[str, str], LinePlan]  # (area code, local number)
    landline_local: dict[str, LinePlan]  # local numbers that are unique in the region
    lines: dict[str, LinePlan]  # by canonical number
    # first MOBILE_PREFIX_DIGITS digits of a mobile number -> city id; built outside the core
    # (hotline_cti.config.mobile) from libphonenumber's data and passed in as plain data
    mobile_city: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[object, ...], object] = field(default_factory=dict)
    parsed: dict[str, DialledNumber] = field(default_factory=dict)  # dialled text -> parts, bounded
    main_calendar: DayCalendar | None = None  # days 12345 plays an exception message before the welcome
    callers: CallerPolicy | None = None  # repeat and nuisance caller rules (core/callers.py)
