"""The traffic file: calls per hour, mean handle time and patience per queue and per line before the merger.

Validated with the config's YAML place tracking, so a bad value is reported as ``file:line:column``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.schema import Digits, Slug, Strict
from hotline_cti.config.yamlsource import validation_problems

HINT = "see docs/staffing.md for the traffic file's keys"


class Targets(Strict):
    """What 'enough seats' means: a service level (80% in 20 s) and the 95% answered floor."""

    service_level: float = Field(default=0.8, gt=0, lt=1)
    within_s: float = Field(default=20, ge=0)
    answered: float = Field(default=0.95, gt=0, lt=1)


class Defaults(Strict):
    """Handle time and patience for entries that do not give their own."""

    aht_s: float = Field(default=240, gt=0)
    patience_s: float = Field(default=90, gt=0)


class Load(Strict):
    """Busy-hour traffic of one queue or line."""

    calls_per_hour: float = Field(ge=0)
    aht_s: float | None = Field(default=None, gt=0)
    patience_s: float | None = Field(default=None, gt=0)


class LineLoad(Load):
    """A line's traffic before the merger; ``professional`` is the share an expert seat or sub-centre must take."""

    professional: float = Field(default=0.0, ge=0, le=1)


class TrafficFile(Strict):
    """The whole traffic file (docs/staffing.md)."""

    region: str | None = None
    targets: Targets = Field(default_factory=Targets)
    defaults: Defaults = Field(default_factory=Defaults)
    main_queue: Slug = "general"
    main: Load | None = None  # 12345's own traffic before the merger
    queues: dict[Slug, Load] = Field(default_factory=dict)
    lines: dict[Digits, LineLoad] = Field(default_factory=dict)


def traffic_from_tree(tree: Any) -> TrafficFile:
    """Validate a YAML tree read by :func:`hotline_cti.config.yamlsource.read_yaml`; ConfigError names each place."""
    problems = list(getattr(tree, "problems", []))
    try:
        model = TrafficFile.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(problems + validation_problems(exc, tree, HINT)) from None
    if problems:
        raise ConfigError(problems)
    return model


@dataclass(frozen=True, slots=True)
class GroupLoad:
    """Resolved traffic of a group of seats: a call rate, a mean handle time and a mean patience."""

    calls_per_hour: float
    aht_s: float
    patience_s: float

    @property
    def erlangs(self) -> float:
        """Offered traffic in Erlangs."""
        return self.calls_per_hour * self.aht_s / 3600.0

    def share(self, fraction: float) -> GroupLoad:
        """The same calls, ``fraction`` of them."""
        return GroupLoad(self.calls_per_hour * fraction, self.aht_s, self.patience_s)


def resolve(load: Load, defaults: Defaults) -> GroupLoad:
    """A file entry with the defaults filled in."""
    return GroupLoad(load.calls_per_hour, load.aht_s or defaults.aht_s, load.patience_s or defaults.patience_s)


def pool(loads: Iterable[GroupLoad]) -> GroupLoad:
    """Several streams served by one group: rates add, handle time and patience are call-weighted means."""
    items = [x for x in loads if x.calls_per_hour > 0]
    calls = sum(x.calls_per_hour for x in items)
    if not calls:
        return GroupLoad(0.0, 1.0, 1.0)
    return GroupLoad(
        calls,
        sum(x.calls_per_hour * x.aht_s for x in items) / calls,
        sum(x.calls_per_hour * x.patience_s for x in items) / calls,
    )
