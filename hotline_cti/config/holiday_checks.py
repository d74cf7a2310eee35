"""Checks of the ``holidays`` section (节假日, 调休, closures) that pydantic cannot do field by field.

Bad ranges, entries that overlap or contradict each other for the same department (or for the region),
unknown departments and prompts: each reported with the place of the value, like the rest of the file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline_cti.config.calendar import effect_of, entry_days
from hotline_cti.config.errors import Problem
from hotline_cti.config.schema import Holiday, MergerConfig
from hotline_cti.config.yamlsource import place_of
from hotline_cti.core.calendar import MAX_ENTRY_DAYS
from hotline_cti.core.hours import DAYS

WEEKEND = (5, 6)


def _label(entry: Holiday) -> str:
    return f"{effect_of(entry).days} {entry.name}"


def check_holidays(model: MergerConfig, tree: Any, prompt_ids: frozenset[str] | None = None) -> list[Problem]:
    """Every problem of ``model.holidays``; ``tree`` gives their places."""
    problems: list[Problem] = []

    def bad(loc: tuple[int | str, ...], message: str) -> None:
        path = "holidays" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in loc)
        problems.append(Problem(place_of(tree, ("holidays", *loc)), path, message))

    departments = {d.id for d in model.departments}
    # scope (None: the region's calendar, else a department id) -> date -> index of the entry holding it
    taken: dict[str | None, dict[dt.date, int]] = {}
    for i, entry in enumerate(model.holidays):
        label = _label(entry)
        last = entry.until or entry.date
        if last < entry.date:
            bad((i, "until"), f"{label}: ends ({last}) before it starts ({entry.date})")
            continue
        if (last - entry.date).days + 1 > MAX_ENTRY_DAYS:
            bad((i, "until"), f"{label}: an entry spans at most {MAX_ENTRY_DAYS} days; split it or check the year")
            continue
        if entry.hours_of is not None and not entry.workday:
            bad((i, "hours_of"), f"{label}: hours_of is for make-up working days (workday: true)")
        if entry.workday:
            weekdays = [d for d in entry_days(entry) if d.weekday() not in WEEKEND]
            if weekdays:
                day = weekdays[0]
                bad(
                    (i, "date"),
                    f"{label}: a make-up working day (调休上班) is a weekend day, but {day} is a {DAYS[day.weekday()]}",
                )
            if entry.prompt is not None:
                bad((i, "prompt"), f"{label}: a make-up working day closes nothing; 'prompt' is for closed days")
        if entry.message is not None and entry.departments:
            bad(
                (i, "message"),
                f"{label}: 'message' is 12345's exception message, for region-wide entries (without departments)",
            )
        listed: set[str] = set()
        for j, dept in enumerate(entry.departments):
            if dept not in departments:
                bad((i, "departments", j), f"{label}: unknown department {dept!r}")
            if dept in listed:
                bad((i, "departments", j), f"{label}: department {dept!r} is listed twice")
            listed.add(dept)
        for field in ("prompt", "message"):
            prompt = getattr(entry, field)
            if prompt is not None and prompt_ids is not None and prompt not in prompt_ids:
                bad(
                    (i, field),
                    f"{label}: prompt {prompt!r} is not in the catalogue (ivr_prompts/catalogue.yaml or this file's 'prompts')",
                )
        scopes: list[str | None] = list(listed) if entry.departments else [None]
        for scope in scopes:
            days = taken.setdefault(scope, {})
            clash = next((d for d in entry_days(entry) if d in days), None)
            if clash is not None:
                k = days[clash]
                other = model.holidays[k]
                first = place_of(tree, ("holidays", k))
                at = f" at line {first.line}" if first else ""
                whose = "the region's calendar" if scope is None else f"department {scope!r}"
                verb = "contradicts" if other.workday != entry.workday else "overlaps"
                bad(
                    (i, "date"),
                    f"{label}: {verb} holidays[{k}] {_label(other)}{at} on {clash} for {whose}; "
                    "give each day of a calendar once",
                )
                continue
            for d in entry_days(entry):
                days[d] = i
    return problems
