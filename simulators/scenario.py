"""Load scenarios: a day of calls described in YAML, and the arrivals drawn from it.

A scenario gives the calls per day and their hour-of-day profile (arrivals are
Poisson within each hour), the mix of dialled lines, callers' cities, 12345
menu choices, patience and service-time distributions, agents per queue by
shift, and transfer and rating shares. Problems are reported as
``file:line:col: path: message`` through the merger config's own YAML reader.
See docs/simulator.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import fnmatch
import itertools
import math
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.schema import MergerConfig
from hotline_cti.config.yamlsource import place_of, read_yaml, validation_problems
from hotline_cti.dialplan import names
from simulators.pbx.model import Arrival, PbxSettings, QueueSetup

HINT = "see docs/simulator.md"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    """A positive random duration: ``exponential`` (mean), ``lognormal`` (mean, sigma) or ``fixed``."""

    dist: Literal["exponential", "lognormal", "fixed"] = "exponential"
    mean: float = Field(gt=0)
    sigma: float = Field(default=0.5, gt=0, le=3)

    def sampler(self, rng: random.Random) -> Iterator[float]:
        """Endless draws from ``rng``."""
        if self.dist == "fixed":
            return itertools.repeat(self.mean)
        if self.dist == "exponential":
            rate = 1.0 / self.mean
            return (rng.expovariate(rate) for _ in itertools.count())
        mu = math.log(self.mean) - self.sigma**2 / 2  # so that the lognormal's mean is `mean`
        return (rng.lognormvariate(mu, self.sigma) for _ in itertools.count())


class Shift(_Strict):
    """``agents`` logged in from ``hours`` "8-20" (local time; "20-8" wraps past midnight)."""

    hours: str
    agents: int = Field(ge=0, le=10000)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value


class Staffing(_Strict):
    """Agents of the queues whose Asterisk names match ``queues`` (a glob like ``*-general``)."""

    queues: str
    shifts: list[Shift] = Field(min_length=1)
    autofill: bool = True

    def per_hour(self) -> tuple[int, ...]:
        """Agents in each hour 0-23 (overlapping shifts add up)."""
        counts = [0] * 24
        for shift in self.shifts:
            for hour in parse_hours(shift.hours):
                counts[hour] += shift.agents
        return tuple(counts)


class Transfers(_Strict):
    """Share of answered calls an agent transfers, and to which numbers."""

    share: float = Field(default=0.0, ge=0, le=1)
    targets: dict[str, float] = Field(default_factory=lambda: {"110": 1.0})


Rating = Literal["1", "2", "3"]


def _default_answers() -> dict[Rating, float]:
    return {"1": 0.85, "2": 0.1, "3": 0.05}


class Ratings(_Strict):
    """Share of answered callers who take the survey, and their answers (1 满意, 2 基本满意, 3 不满意)."""

    share: float = Field(default=0.0, ge=0, le=1)
    answers: dict[Rating, float] = Field(default_factory=_default_answers)


class Timings(_Strict):
    """Dialplan and people timings in seconds (see :class:`PbxSettings`)."""

    menu: float = Field(default=15.0, ge=0)
    prompt: float = Field(default=10.0, ge=0)
    ring: float = Field(default=3.0, ge=0)
    no_answer_share: float = Field(default=0.0, ge=0, le=1)
    dial_ring: float = Field(default=5.0, ge=0)
    survey: float = Field(default=8.0, ge=0)
    transfer_talk: float = Field(default=60.0, ge=0)
    handover_talk: float = Field(default=30.0, ge=0)
    service_level: float = Field(default=20.0, ge=0)


class Scenario(_Strict):
    """One simulated day of a region's hotline traffic."""

    name: str
    config: str  # the merger YAML, relative to the scenario file
    date: dt.date
    calls_per_day: float = Field(gt=0)
    hourly_profile: list[float] = Field(min_length=24, max_length=24)
    lines: dict[str, float] = Field(min_length=1)
    cities: dict[str, float] = Field(default_factory=dict)
    ivr: dict[str, float] = Field(default_factory=lambda: {"1": 1.0})
    expert_topics: dict[str, float] = Field(default_factory=dict)
    patience: Distribution = Distribution(dist="exponential", mean=180)
    service: Distribution = Distribution(dist="lognormal", mean=240, sigma=0.6)
    transfers: Transfers = Transfers()
    # emergency line -> share of its calls it hands over to 12345 (110 passes non-police calls on)
    handovers: dict[str, float] = Field(default_factory=dict)
    ratings: Ratings = Ratings()
    timings: Timings = Timings()
    staffing: list[Staffing] = Field(min_length=1)

    @field_validator("hourly_profile")
    @classmethod
    def _profile(cls, value: list[float]) -> list[float]:
        if any(v < 0 for v in value) or sum(value) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        return value

    @field_validator("lines", "cities", "ivr", "expert_topics")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if value and (any(v < 0 for v in value.values()) or sum(value.values()) <= 0):
            raise ValueError("shares must be >= 0 and not all 0")
        return value

    @field_validator("handovers")
    @classmethod
    def _handover_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 <= v <= 1 for v in value.values()):
            raise ValueError("each share must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _experts(self) -> Scenario:
        if "3" in self.ivr and not self.expert_topics:
            raise ValueError("menu choice 3 (expert seats) needs expert_topics")
        return self

    def settings(self) -> PbxSettings:
        """The PBX timings."""
        return PbxSettings(**self.timings.model_dump())

    def start(self, tz: dt.tzinfo) -> float:
        """Epoch seconds of the scenario day's local midnight."""
        return dt.datetime.combine(self.date, dt.time(0), tz).timestamp()


def parse_hours(text: str) -> list[int]:
    """ "8-20" -> [8..19]; "20-8" -> [20..23, 0..7]; "0-24" -> all day."""
    start_s, sep, end_s = text.partition("-")
    if not sep or not start_s.strip().isdigit() or not end_s.strip().isdigit():
        raise ValueError(f"hours {text!r} must look like 8-20")
    start, end = int(start_s), int(end_s)
    if not (0 <= start <= 23 and 1 <= end <= 24) or start == end:
        raise ValueError(f"hours {text!r}: start 0-23, end 1-24, not equal")
    return list(range(start, end)) if start < end else [*range(start, 24), *range(0, end)]


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario; returns it with its merger config's path. Raises ConfigError."""
    path = Path(path)
    tree = read_yaml(path)
    try:
        scenario = Scenario.model_validate(dict(tree))
    except ValidationError as exc:
        raise ConfigError([*tree.problems, *validation_problems(exc, tree, HINT)]) from None
    if tree.problems:
        raise ConfigError(list(tree.problems))
    config = (path.parent / scenario.config).resolve()
    if not config.is_file():
        raise ConfigError([Problem(place_of(tree, ("config",)), "config", f"merger file {config} does not exist")])
    return scenario, config


def check_against(scenario: Scenario, cfg: MergerConfig, source: str) -> list[Problem]:
    """Cities and expert topics the merger config does not know (dialled numbers may be unknown on purpose)."""
    problems = []
    cities = {c.id for c in cfg.cities}
    for city in scenario.cities:
        if city not in cities:
            problems.append(Problem(None, f"cities.{city}", f"{source}: city {city!r} is not in the merger config"))
    return problems


def queue_setups(scenario: Scenario, cfg: MergerConfig) -> QueueSetupTable:
    """The set-up of each Asterisk queue: app_queue settings from the merger config, agents from the scenario."""
    settings: dict[str, tuple[str, float, float]] = {}
    for centre in cfg.centres:
        for q in cfg.queues:
            settings[names.queue_name(centre.id, q.id)] = (q.strategy, q.ring_timeout, q.wrapup)
        for g in cfg.expert_groups:
            settings[names.expert_queue_name(centre.id, g.id)] = (g.strategy, 20, 5)  # as queues.conf renders them
    return QueueSetupTable(settings, scenario.staffing)


class QueueSetupTable:
    """``table(name)`` -> :class:`QueueSetup`; the first staffing entry whose glob matches gives the agents."""

    def __init__(self, settings: Mapping[str, tuple[str, float, float]], staffing: list[Staffing]) -> None:
        self.settings = settings
        self.staffing = [(s.queues, s.per_hour(), s.autofill) for s in staffing]

    def __call__(self, name: str) -> QueueSetup:
        """Set-up of queue ``name`` (an unknown queue gets leastrecent, 15 s, 5 s)."""
        strategy, timeout, wrapup = self.settings.get(name, ("leastrecent", 15, 5))
        agents: tuple[int, ...] = (0,) * 24
        autofill = True
        for pattern, per_hour, fill in self.staffing:
            if fnmatch.fnmatchcase(name, pattern):
                agents, autofill = per_hour, fill
                break
        return QueueSetup(name, strategy, float(timeout), float(wrapup), autofill=autofill, agents=agents)


class _Picker:
    """Weighted choice by bisecting cumulative weights (one random() per pick)."""

    def __init__(self, shares: Mapping[str, float]) -> None:
        self.keys = list(shares)
        total = sum(shares.values())
        self.cum = list(itertools.accumulate(v / total for v in shares.values()))

    def __call__(self, rng: random.Random) -> str:
        return self.keys[min(bisect.bisect(self.cum, rng.random()), len(self.keys) - 1)]


def generate(scenario: Scenario, tz: dt.tzinfo, *, seed: int = 0, hours: tuple[int, int] = (0, 24)) -> list[Arrival]:
    """Draw the day's arrivals (hours ``[start, end)`` local), in time order. Same seed, same arrivals."""
    rng = random.Random(seed)
    day = scenario.start(tz)
    weights = scenario.hourly_profile
    total_w = sum(weights)
    lines, ivr = _Picker(scenario.lines), _Picker(scenario.ivr)
    cities = _Picker(scenario.cities) if scenario.cities else None
    topics = _Picker(scenario.expert_topics) if scenario.expert_topics else None
    targets = _Picker(scenario.transfers.targets)
    answers = _Picker({str(k): v for k, v in scenario.ratings.answers.items()})
    patience, service = scenario.patience.sampler(rng), scenario.service.sampler(rng)
    t_share, r_share = scenario.transfers.share, scenario.ratings.share
    # Its own generator: a scenario without hand-overs draws exactly the calls it drew before.
    handovers, hand_rng = scenario.handovers, random.Random(f"{seed}-handover")
    out: list[Arrival] = []
    for hour in range(hours[0], hours[1]):
        rate = scenario.calls_per_day * weights[hour % 24] / total_w / 3600.0
        if rate <= 0:
            continue
        t = day + hour * 3600.0
        end = t + 3600.0
        while True:
            t += rng.expovariate(rate)
            if t >= end:
                break
            dialled = lines(rng)
            choice = ivr(rng) if dialled.endswith("12345") else None
            out.append(
                Arrival(
                    at=round(t, 3),
                    dialled=dialled,
                    caller=f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}",
                    city=cities(rng) if cities else None,
                    ivr=choice,
                    topic=topics(rng) if choice == "3" and topics else None,
                    patience=round(next(patience), 3),
                    service=round(next(service), 3),
                    transfer=targets(rng) if rng.random() < t_share else None,
                    rating=int(answers(rng)) if rng.random() < r_share else None,
                    handover=dialled in handovers and hand_rng.random() < handovers[dialled],
                )
            )
    return out
