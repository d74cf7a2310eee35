"""A merger file loaded, validated and compiled: what every command and service starts from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hotline_cti.config.compile import compile_table
from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.loader import LoadedConfig, load_config
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.config.yamlsource import place_of
from hotline_cti.core.numbers import is_short_code
from hotline_cti.core.table import RoutingTable


@dataclass(frozen=True)
class Checked:
    """A loaded config and its compiled routing table."""

    path: str
    loaded: LoadedConfig
    table: RoutingTable

    @property
    def model(self) -> MergerConfig:
        """The validated merger config."""
        return self.loaded.model


def load_checked(path: str) -> Checked:
    """Load, validate and compile ``path``; raise :class:`ConfigError` with every problem.

    Compiling catches what the schema cannot, e.g. a ``region.timezone`` that
    the system's tz database does not know.
    """
    try:
        loaded = load_config(path)
    except ValueError as exc:
        # PyYAML builds dates itself and raises a bare ValueError for 2021-02-30; never a traceback.
        raise ConfigError([Problem(None, "", f"{path}: cannot read: {exc}")]) from exc
    try:
        compiled = compile_table(loaded.model)
    except Exception as exc:
        place = place_of(loaded.source, ("region", "timezone"))
        raise ConfigError([Problem(place, "region.timezone", f"cannot compile the routing table: {exc}")]) from exc
    return Checked(path, loaded, compiled)


def localise(when: dt.datetime | None, tz: ZoneInfo) -> dt.datetime:
    """``when`` as an aware time: naive times are in the config's timezone; None is now."""
    if when is None:
        return dt.datetime.now(tz)
    if when.tzinfo is None:
        return when.replace(tzinfo=tz)
    return when


def dialled_numbers(model: MergerConfig) -> dict[str, Hotline]:
    """Every number of the config (lines and aliases) in the form to dial it, mapped to its line.

    Short codes are dialled as they are; landline numbers with their city's
    area code (0771-2666110), because two cities may share a local number.
    """
    area_of = {c.id: c.area_code for c in model.cities}
    only_area = model.cities[0].area_code if len(model.cities) == 1 else None
    out: dict[str, Hotline] = {}
    for line in model.hotlines:
        for number in (line.number, *line.aliases):
            if is_short_code(number):
                out[number] = line
            else:
                area = area_of.get(line.city) if line.city else only_area
                out[f"{area}-{number}" if area else number] = line
    return out
