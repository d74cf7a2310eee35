"""The plain lookup tables the routing core reads: a merger config, compiled.

Compiling (:func:`hotline_cti.config.compile.compile_config`) happens once per config load, outside
the core, and keeps :func:`hotline_cti.core.routing.decide` to a few dictionary look-ups per call.

A table and its line plans are frozen, their maps read-only: routing never writes them, so one table
can be shared by every session, test and thread. What routing remembers about a table (decisions,
parsed numbers) lives in a :class:`hotline_cti.core.memo.DecisionCache` its holder owns beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from hotline_cti.core.calendar import DayCalendar
from hotline_cti.core.callers import CallerPolicy
from hotline_cti.core.diversion import DiversionRule
from hotline_cti.core.hours import ALWAYS, ServiceHours
from hotline_cti.core.model import AfterTransition, Mode, Scope, Seats

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


def _read_only(value: object) -> object:
    """A dict as a read-only view of itself (the compiler hands over dicts it keeps no reference to)."""
    return MappingProxyType(value) if type(value) is dict else value


def _freeze_maps(obj: Any) -> None:
    """Every dict field of a frozen dataclass as a read-only view (from ``__post_init__``)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if type(value) is dict:
            object.__setattr__(obj, f.name, _read_only(value))


def _state(obj: Any) -> tuple[object, ...]:
    """The fields, read-only views as plain dicts: a view does not pickle (the reload worker sends tables)."""
    return tuple(
        dict(value) if type(value) is MappingProxyType else value
        for value in (getattr(obj, f.name) for f in fields(obj))
    )


def _restore(obj: Any, state: tuple[object, ...]) -> None:
    for f, value in zip(fields(obj), state, strict=True):
        object.__setattr__(obj, f.name, _read_only(value))


@dataclass(frozen=True, slots=True)
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
    subcentre_sites: Mapping[str, Target]  # city id -> site, per-city sub-centres
    emergency: Target | None
    cutover: float | None
    window_start: float | None
    window_end: float | None
    after_transition: AfterTransition
    prompts: Mapping[str, str]
    priority: int
    landline_area: str | None  # area code of a landline number, None for short codes

    def __post_init__(self) -> None:
        _freeze_maps(self)

    def __getstate__(self) -> tuple[object, ...]:
        return _state(self)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        _restore(self, state)


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakref: tests see a replaced table freed
class RoutingTable:
    """Everything :func:`decide` needs, built by :func:`hotline_cti.config.compile.compile_config`."""

    region: str
    timezone: ZoneInfo
    region_hours: ServiceHours
    default_centre: str
    centre_by_city: Mapping[str, str]
    city_names: Mapping[str, str]
    city_by_area: Mapping[str, str]  # only area codes that name exactly one city
    shared_areas: Mapping[str, tuple[str, ...]]  # area codes several cities share
    queues: Mapping[str, QueuePlan]
    overflow_target: str
    overflow_wait: int
    welcome_prompt: str
    short: Mapping[str, LinePlan]  # short codes and their aliases
    landline: Mapping[tuple[str, str], LinePlan]  # (area code, local number)
    landline_local: Mapping[str, LinePlan]  # local numbers that are unique in the region
    lines: Mapping[str, LinePlan]  # by canonical number
    # first MOBILE_PREFIX_DIGITS digits of a mobile number -> city id; built outside the core
    # (hotline_cti.config.mobile) from libphonenumber's data and passed in as plain data
    mobile_city: Mapping[str, str] = field(default_factory=dict)
    main_calendar: DayCalendar | None = None  # days 12345 plays an exception message before the welcome
    callers: CallerPolicy | None = None  # repeat and nuisance caller rules (core/callers.py)
    # Asterisk queue name -> its diversion rules (core/diversion.py)
    diversions: Mapping[str, tuple[DiversionRule, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _freeze_maps(self)

    def __getstate__(self) -> tuple[object, ...]:
        return _state(self)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        _restore(self, state)
